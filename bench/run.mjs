/**
 * The benchmark suite (issue 7): our server and client against `ws` (+ bufferutil) and a plain
 * `node:net` ceiling. See bench/README.md for what is measured and how.
 *
 *   npm run bench                      full run (about 40 min)
 *   npm run bench -- --quick           smoke run (< 1 min), what CI runs
 *   node bench/run.mjs [options]       after `npm run build`
 *
 * Options:
 *   --quick                  fewer cases, one repetition, short windows
 *   --reps N                 repetitions (default 3, quick 1)
 *   --duration MS            measurement window of each run (default 1500, quick 500)
 *   --only S1,S2             sections among echo, client, memory, handshake, lag, fanout
 *   --fanout-subs N          subscribers of the fan-out benchmark (default 1000, quick 200)
 *   --case TEXT              only the echo/client cases whose name contains TEXT
 *   --targets T1,T2          servers among ours, ws, plain, platform, ws-js (ws without bufferutil), ours-loop (a fiber per connection), ours-stream (the `messages` Stream), ours-nometrics, ours-quiet, and on Node 24: ws@24, ours@24, ours-stream@24, ours-e4@24, ours-e4-loop@24, ours-e4-stream@24 (the Effect 4 shell), ours-quiet@24, ours-e4-quiet@24; ws (ws@24 for the Node 24 ones) is the reference
 *   --node24 PATH            the Node 24 binary of the @24 targets (default: BENCH_NODE24, else .ci/run's cache, else /tmp/e4; without one they are skipped)
 *   --idle-conns N           connections of the memory benchmark (default 10000, quick 500)
 *   --memory-reps N          repetitions of the memory benchmark (default 1)
 *   --readme                 also write the tables into bench/README.md (between the results markers)
 *   --out FILE               JSON output (default bench/results/<date>.json, quick: bench/results/quick.json)
 */
import { spawnSync } from "node:child_process"
import { mkdirSync, readFileSync, writeFileSync } from "node:fs"
import * as os from "node:os"
import { join, relative } from "node:path"
import {
  BENCH,
  buildLoadgen,
  fileLimits,
  hasDeflate,
  isOurs,
  killAll,
  LOADGEN,
  machine,
  median,
  nodeLineOf,
  ROOT,
  referenceOf,
  resolveNodeLines,
  rotate,
  runClient,
  runFanout,
  runLoadgen,
  settle,
  sleep,
  spread,
  startIdle,
  startRedis,
  startServer
} from "./lib.mjs"

/** The commit whose code is measured, "+changes" when src/, effect4/src/ or bench/ (results aside) differ from it; "unknown" without git. */
const measuredCommit = () => {
  const git = (...args) => spawnSync("git", args, { cwd: ROOT, encoding: "utf8" })
  const head = git("rev-parse", "--short", "HEAD")
  if (head.status !== 0) return "unknown"
  const changes = git("status", "--porcelain", "--", "src", "effect4/src", "bench", ":!bench/results").stdout.trim()
  return `${head.stdout.trim()}${changes === "" ? "" : "+changes"}`
}

// ---------------------------------------------------------------------------
// Configuration
// ---------------------------------------------------------------------------

const argv = process.argv.slice(2)
const flag = (name) => argv.includes(name)
const opt = (name, fallback) => {
  const i = argv.indexOf(name)
  return i >= 0 && i + 1 < argv.length ? argv[i + 1] : fallback
}

const QUICK = flag("--quick")
/**
 * What the full run measures: the README echo and the two handler styles users write by habit (a
 * fiber per connection, the `messages` Stream; issue 26), the references, then the Node 24 targets
 * (issue 25).
 */
const FULL_TARGETS =
  "ours,ours-loop,ours-stream,ws,plain,platform,ours@24,ours-stream@24,ours-e4@24,ours-e4-loop@24,ours-e4-stream@24,ws@24"
/** Quick (CI): the Effect 4 shell's echo is exercised, on Node 24 beside ws there. */
const QUICK_TARGETS = "ours,ws,plain,platform,ours-e4@24,ws@24"
const KiB = 1024
const MiB = 1024 * 1024

const config = {
  quick: QUICK,
  reps: Number(opt("--reps", QUICK ? 1 : 3)),
  warmupMs: QUICK ? 200 : 500,
  serverWarmMs: QUICK ? 250 : 1000,
  durationMs: Number(opt("--duration", QUICK ? 500 : 1500)),
  idleConns: Number(opt("--idle-conns", QUICK ? 500 : 10_000)),
  // Memory is steady from run to run, and 10,000 handshakes take a while: one repetition.
  memoryReps: Number(opt("--memory-reps", 1)),
  lagSize: (QUICK ? 4 : 16) * MiB,
  lagReps: QUICK ? 1 : 3,
  // Soft budget: runs are skipped once it is spent (each run is bounded by its own timeout).
  // Issue 15 added the platform target, the 1-in-flight cells and handshakes: about 15 minutes in all;
  // issue 12 the fan-out (about 20 s quick, 1 minute full).
  // Issue 25 added the Node 24 targets (ws, the Effect 3 shell and the Effect 4 shell's two handlers;
  // quick: ws and the Effect 4 echo, without the event-loop delay); issue 26 the fiber and Stream
  // handlers on Node 20: about 40 minutes in all.
  budgetMs: QUICK ? 120_000 : 2_700_000,
  sections: opt("--only", "echo,client,memory,handshake,lag,fanout,observability").split(","),
  fanoutSubs: Number(opt("--fanout-subs", QUICK ? 200 : 1000)),
  fanoutSizes: QUICK ? [16] : [16, KiB],
  caseFilter: opt("--case", ""),
  targets: opt("--targets", QUICK ? QUICK_TARGETS : FULL_TARGETS).split(","),
  // Handshakes per second: this many connect–handshake–close cycles in flight (issue 15).
  handshakeConns: 64
}
// Every target's reference (ws on the same Node line) is measured with it.
for (const target of [...config.targets]) {
  const reference = referenceOf(target)
  if (!config.targets.includes(reference)) config.targets.push(reference)
}

const sizeLabel = (size) => (size >= MiB ? `${size / MiB} MiB` : size >= KiB ? `${size / KiB} KiB` : `${size} B`)

/** Several in flight per connection, fewer as messages grow (64 × 1 MiB is already 64 MiB in flight). */
const inflightFor = (size, conns) => (size <= KiB ? 16 : size <= 64 * KiB ? 4 : conns === 1 ? 2 : 1)

const echoCase = (size, conns, text, deflate = false, quick = false, inflight = inflightFor(size, conns)) => ({
  name: `${sizeLabel(size)} ${text ? "text" : "bin"} ${conns}c×${inflight}${deflate ? " deflate" : ""}`,
  size,
  conns,
  inflight,
  text,
  deflate,
  quick
})

/** One message in flight per connection: request/response traffic, one wake-up per message (issue 15). */
const lockstepCase = (size, conns, quick = false) => echoCase(size, conns, false, false, quick, 1)

const ECHO_CASES = [
  lockstepCase(16, 1),
  lockstepCase(16, 64, true),
  lockstepCase(KiB, 1),
  lockstepCase(KiB, 64),
  echoCase(16, 1, false),
  echoCase(16, 64, false, false, true),
  echoCase(KiB, 1, false),
  echoCase(KiB, 64, false),
  echoCase(KiB, 64, true),
  echoCase(64 * KiB, 1, false),
  echoCase(64 * KiB, 64, false, false, true),
  echoCase(64 * KiB, 64, true),
  echoCase(MiB, 1, false, false, true),
  echoCase(MiB, 64, false),
  echoCase(MiB, 1, true),
  // Compressed: permessage-deflate both ways, compressible text (the plain ceiling has no deflate).
  echoCase(16, 64, true, true),
  echoCase(KiB, 64, true, true, true),
  echoCase(64 * KiB, 64, true, true),
  echoCase(MiB, 1, true, true)
]

const clientCase = (size, conns, inflight, text, quick = false) => ({
  name: `${sizeLabel(size)} ${text ? "text" : "bin"} ${conns}c×${inflight}`,
  size,
  conns,
  inflight,
  text,
  quick
})

/**
 * What observability costs (issue 13): small messages, one in flight and pipelined, on our server
 * as it runs by default, without metrics, and with metrics, tracing and Info logs off.
 */
const OBSERVABILITY_CASES = [lockstepCase(16, 1, true), echoCase(16, 64, false, false, true)]
const OBSERVABILITY_TARGETS = ["ours", "ours-nometrics", "ours-quiet"]

const CLIENT_CASES = [
  clientCase(16, 16, 16, false, true),
  clientCase(KiB, 16, 16, true),
  clientCase(64 * KiB, 4, 4, false, true),
  clientCase(MiB, 1, 2, false)
]

/**
 * Client libraries: ours reading with the `messages` Stream (the targets), ours reading with
 * `forEachMessage`, and ws.
 */
const CLIENT_LIBS = ["ours", "ours-loop", "ws"]

const selected = (cases) =>
  cases.filter((c) => (!QUICK || c.quick) && (config.caseFilter === "" || c.name.includes(config.caseFilter)))

// ---------------------------------------------------------------------------
// Run bookkeeping
// ---------------------------------------------------------------------------

const started = performance.now()
const elapsed = () => performance.now() - started
const overBudget = () => elapsed() > config.budgetMs
const runs = []
const notes = []
const log = (line) => process.stderr.write(`${line}\n`)

const record = (run) => {
  runs.push(run)
  const what = `${run.section.padEnd(6)} ${String(run.case).padEnd(24)} ${run.target.padEnd(6)} #${run.rep}`
  if (run.skipped) return log(`  ${what}  skipped: ${run.skipped}`)
  if (!run.ok) return log(`  ${what}  ERROR: ${run.error}`)
  log(`  ${what}  ${run.summary ?? ""}`)
}

const fmtRate = (x) =>
  x === null || x === undefined
    ? "–"
    : x >= 1e6
      ? `${(x / 1e6).toFixed(2)}M`
      : x >= 1e4
        ? `${(x / 1e3).toFixed(1)}k`
        : x >= 1e3
          ? `${(x / 1e3).toFixed(2)}k`
          : x.toFixed(x >= 100 ? 0 : 1)
const fmtNum = (x, digits = 3) =>
  x === null || x === undefined ? "–" : x >= 10 ** digits ? x.toFixed(0) : x.toPrecision(digits)
const fmtRatio = (x) => (x === null || x === undefined ? "–" : x.toFixed(2))
const fmtPct = (x) => (x === null || x === undefined ? "–" : `${Math.round(x * 100)}`)
const ratio = (a, b) => (a === null || b === null || b === 0 ? null : a / b)

// ---------------------------------------------------------------------------
// Sections
// ---------------------------------------------------------------------------

/** Server echo throughput and CPU per message: every target, alternately, several repetitions. */
const echoSection = async (
  loadgen,
  { section = "echo", cases: all = ECHO_CASES, targets: echoTargets = config.targets } = {}
) => {
  const cases = selected(all).filter((c) => !c.deflate || loadgen.zlib)
  if (!loadgen.zlib) notes.push("the load generator was built without zlib: compressed cases skipped")
  const servers = new Map()
  const server = async (target, deflate) => {
    const key = `${target}/${deflate}`
    const current = servers.get(key)
    if (current?.alive()) return current
    if (current !== undefined) notes.push(`${target}${deflate ? " (deflate)" : ""} server died and was restarted`)
    const started = await startServer(target, { deflate })
    servers.set(key, started)
    await warm(started)
    return started
  }
  // JIT warm-up of a fresh server, not recorded: small text messages, then large binary ones.
  const warm = async (s) => {
    for (const [size, conns, inflight, text] of [
      [KiB, 16, 16, true],
      [64 * KiB, 4, 4, false]
    ]) {
      const args = ["echo", "--port", s.port, "--conns", conns, "--inflight", inflight, "--size", size]
      args.push("--warmup", 0, "--duration", config.serverWarmMs, "--timeout", config.serverWarmMs + 10_000)
      if (text) args.push("--text")
      if (s.deflate) args.push("--deflate")
      await runLoadgen(args.map(String), config.serverWarmMs + 10_000)
    }
  }
  const infos = {}
  for (const c of cases) {
    const targets = c.deflate ? echoTargets.filter(hasDeflate) : echoTargets
    log(`${section} ${c.name}`)
    for (let rep = 0; rep < config.reps; rep++) {
      for (const target of rotate(targets, rep)) {
        const base = { section, case: c.name, target, rep }
        if (overBudget()) {
          record({ ...base, ok: false, skipped: "time budget" })
          continue
        }
        let s
        try {
          s = await server(target, c.deflate)
          infos[target] = s.info
        } catch (error) {
          record({ ...base, ok: false, error: String(error.message) })
          continue
        }
        await settle(s.pid)
        const args = ["echo", "--port", s.port, "--pid", s.pid, "--conns", c.conns, "--inflight", c.inflight]
        args.push("--size", c.size, "--warmup", config.warmupMs, "--duration", config.durationMs)
        if (c.text) args.push("--text")
        if (c.deflate) args.push("--deflate")
        const timeout = config.warmupMs + config.durationMs + 10_000
        const result = await runLoadgen([...args.map(String), "--timeout", String(timeout)], timeout)
        const summary = result.ok
          ? `${fmtRate(result.rate)} msg/s  ${fmtNum(result.serverCpuUsPerMsg)} µs/msg (${fmtPct(result.serverSysShare)}% kernel)  server ${fmtPct(result.serverCpuShare)}% loadgen ${fmtPct(result.loadgenCpuShare)}% of a core`
          : undefined
        record({ ...base, ...result, summary })
      }
    }
  }
  for (const s of servers.values()) await s.stop()
  return { infos }
}

/** Client throughput: our client and the ws client against the plain echo server. */
const clientSection = async () => {
  const cases = selected(CLIENT_CASES)
  if (cases.length === 0) return
  const plain = await startServer("plain")
  for (const c of cases) {
    log(`client ${c.name}`)
    for (let rep = 0; rep < config.reps; rep++) {
      for (const lib of rotate(CLIENT_LIBS, rep)) {
        const base = { section: "client", case: c.name, target: lib, rep }
        if (overBudget()) {
          record({ ...base, ok: false, skipped: "time budget" })
          continue
        }
        await settle(plain.pid)
        const args = ["--lib", lib, "--port", plain.port, "--conns", c.conns, "--inflight", c.inflight]
        // A fresh client process each time: its warm-up includes the JIT's.
        const warmup = config.warmupMs + config.serverWarmMs
        args.push("--size", c.size, "--warmup", warmup, "--duration", config.durationMs)
        if (c.text) args.push("--text")
        const result = await runClient(args.map(String), warmup + config.durationMs + 15_000)
        const summary = result.ok
          ? `${fmtRate(result.rate)} msg/s  ${fmtNum(result.clientCpuUsPerMsg)} µs/msg  client ${fmtPct(result.clientCpuShare)}%`
          : undefined
        record({ ...base, ...result, summary })
      }
    }
  }
  await plain.stop()
}

/** Server memory per idle connection: RSS growth over N open connections, fresh server each time. */
const memorySection = async () => {
  let n = config.idleConns
  const limits = fileLimits()
  const needed = n + 256
  let nofile = 0
  if (limits.soft < needed) {
    if (limits.hard >= needed) nofile = needed
    else {
      const fewer = Math.max(100, Math.floor((limits.hard - 256) / 100) * 100)
      notes.push(`ulimit -n is at most ${limits.hard}: memory measured with ${fewer} connections instead of ${n}`)
      n = fewer
    }
  }
  const targets = config.targets
  log(`memory ${n} idle connections`)
  for (let rep = 0; rep < config.memoryReps; rep++) {
    for (const target of rotate(targets, rep)) {
      const base = { section: "memory", case: `${n} idle`, target, rep }
      if (overBudget()) {
        record({ ...base, ok: false, skipped: "time budget" })
        continue
      }
      let s
      try {
        // Ours with the library's defaults (keepalive on): what an idle connection costs by default.
        s = await startServer(target, {
          nodeArgs: ["--expose-gc"],
          args: isOurs(target) ? ["--keepalive"] : [],
          nofile
        })
      } catch (error) {
        record({ ...base, ok: false, error: String(error.message) })
        continue
      }
      await sleep(300)
      s.gc()
      await sleep(300)
      const rss0 = s.rssKiB()
      const fds0 = s.fdCount()
      const idle = await startIdle(["--port", String(s.port), "--conns", String(n)], QUICK ? 20_000 : 60_000)
      if (!idle.ready.ok) {
        record({ ...base, ...idle.ready })
        await idle.finish()
        await s.stop()
        continue
      }
      await sleep(QUICK ? 500 : 1000)
      const rssSettled = s.rssKiB()
      s.gc()
      await sleep(500)
      const rssGc = s.rssKiB()
      const close = await massClose(s, idle, fds0)
      const alive = s.alive()
      await s.stop()
      const ok = alive && rss0 !== null && rssGc !== null
      const result = {
        ok,
        ...(ok ? {} : { error: alive ? "RSS unreadable" : "server died" }),
        conns: n,
        connectMs: idle.ready.connectMs,
        rssBaseKiB: rss0,
        rssSettledKiB: rssSettled,
        rssGcKiB: rssGc,
        kibPerConn: (rssGc - rss0) / n,
        kibPerConnSettled: (rssSettled - rss0) / n,
        ...close
      }
      const closeSummary =
        close.heapPeakRatio === null
          ? `mass close: ${close.closeError}`
          : `mass close: heap peak ${fmtRatio(close.heapPeakRatio)}× steady, stall max ${fmtNum(close.stallMaxMs)} ms`
      const summary = `${fmtNum(result.kibPerConn)} KiB/conn after GC (${fmtNum(result.kibPerConnSettled)} before), base ${fmtNum(rss0 / 1024)} MiB; ${closeSummary}`
      record({ ...base, ...result, summary })
    }
  }
}

/**
 * After the idle measurement: every connection reset at once (the generator closes all its sockets
 * in one loop), while the server samples its heap and event-loop delay (common.mjs's `watch`). The
 * close is over once the server's descriptors are back to their number before the connections
 * (`fds0`) and its CPU use has settled; a last half second lets deferred work (finalizers, timers,
 * collections) show in the peak. The steady heap is the one after the forced GC, connections open.
 */
const massClose = async (s, idle, fds0) => {
  const fail = (closeError) => ({ heapPeakRatio: null, stallMaxMs: null, closeError })
  if ((await s.request("watch")) === null) return fail("the server did not start its watch")
  const t0 = performance.now()
  const cpu0 = s.cpuUs()
  await idle.finish()
  const deadline = t0 + (QUICK ? 10_000 : 30_000)
  while (fds0 !== null && (s.fdCount() ?? 0) > fds0 + 8 && performance.now() < deadline) await sleep(20)
  const fdsMs = performance.now() - t0
  await settle(s.pid, QUICK ? 3_000 : 10_000)
  const closeMs = performance.now() - t0
  await sleep(500)
  const report = await s.request("report", 30_000)
  // The server's CPU from the resets to its report: on a loaded machine `settle` may see a starved
  // server as idle, so the CPU of the close is read once the server has answered.
  const cpu1 = s.cpuUs()
  if (report === null || report.error !== undefined) return fail(report?.error ?? "no report from the server")
  return {
    heapSteadyKiB: report.heapSteady / 1024,
    heapPeakKiB: report.heapPeak / 1024,
    heapEndKiB: report.heapEnd / 1024,
    heapPeakRatio: report.heapPeak / report.heapSteady,
    rssPeakKiB: report.rssPeak / 1024,
    stallMaxMs: report.stallMaxMs,
    stallP99Ms: report.stallP99Ms,
    // The longest gap between two heap samples (≈ the stall) and when it began, after `watch`.
    sampleGapMaxMs: report.sampleGapMaxMs,
    sampleGapAtMs: report.sampleGapAtMs,
    // Until every socket is closed, and until the server is idle again; its CPU until its report.
    closeFdsMs: fdsMs,
    closeMs,
    closeCpuMs: cpu0 !== null && cpu1 !== null ? (cpu1 - cpu0) / 1e3 : null
  }
}

/** Handshakes per second: `handshakeConns` connect–handshake–close cycles in flight, every target alternately. */
const handshakeSection = async () => {
  const servers = new Map()
  const server = async (target) => {
    const current = servers.get(target)
    if (current?.alive()) return current
    if (current !== undefined) notes.push(`${target} server died and was restarted (handshakes)`)
    // Ours with its defaults (keepalive on), as in the memory section: what a connection costs by default.
    const started = await startServer(target, { args: isOurs(target) ? ["--keepalive"] : [] })
    servers.set(target, started)
    // JIT warm-up, not recorded.
    const args = ["handshake", "--port", started.port, "--conns", config.handshakeConns, "--warmup", 0]
    args.push("--duration", config.serverWarmMs, "--timeout", config.serverWarmMs + 10_000)
    await runLoadgen(args.map(String), config.serverWarmMs + 10_000)
    return started
  }
  // At least 1 s: 64 cycles in flight take a while each, and a window should hold many of them.
  const warmupMs = Math.max(config.warmupMs, 500)
  const durationMs = Math.max(config.durationMs, 1000)
  const name = `${config.handshakeConns} concurrent`
  log(`handshake ${name}`)
  for (let rep = 0; rep < config.reps; rep++) {
    for (const target of rotate(config.targets, rep)) {
      const base = { section: "handshake", case: name, target, rep }
      if (overBudget()) {
        record({ ...base, ok: false, skipped: "time budget" })
        continue
      }
      let s
      try {
        s = await server(target)
      } catch (error) {
        record({ ...base, ok: false, error: String(error.message) })
        continue
      }
      await settle(s.pid)
      const args = ["handshake", "--port", s.port, "--pid", s.pid, "--conns", config.handshakeConns]
      args.push("--warmup", warmupMs, "--duration", durationMs)
      const timeout = warmupMs + durationMs + 10_000
      let result = await runLoadgen([...args.map(String), "--timeout", String(timeout)], timeout)
      // A cycle can take longer than a short window on a loaded machine: no figure rather than 0.
      if (result.ok && !(result.handshakes > 0))
        result = { ...result, ok: false, error: "no handshake completed within the window" }
      const summary = result.ok
        ? `${fmtRate(result.rate)} handshakes/s  ${fmtNum(result.serverCpuUsPerHandshake)} µs/handshake  connect→101 ${fmtNum(result.handshakeMs)} ms  server ${fmtPct(result.serverCpuShare)}% of a core`
        : undefined
      record({ ...base, ...result, summary })
    }
  }
  for (const s of servers.values()) await s.stop()
}

/** Event-loop delay: ping-pong RTT on one connection while another echoes a 16 MiB compressed message. */
const lagSection = async (loadgen) => {
  if (!loadgen.zlib) {
    notes.push("the load generator was built without zlib: event-loop delay benchmark skipped")
    return
  }
  // Quick runs leave the Node 24 targets out of this section: CI's smoke run stays short.
  const targets = config.targets.filter((t) => hasDeflate(t) && !(QUICK && nodeLineOf(t) !== null))
  log(`lag ${sizeLabel(config.lagSize)} compressed message`)
  for (let rep = 0; rep < config.lagReps; rep++) {
    for (const target of rotate(targets, rep)) {
      const base = { section: "lag", case: `${sizeLabel(config.lagSize)} deflate`, target, rep }
      if (overBudget()) {
        record({ ...base, ok: false, skipped: "time budget" })
        continue
      }
      let s
      try {
        s = await startServer(target, { deflate: true })
      } catch (error) {
        record({ ...base, ok: false, error: String(error.message) })
        continue
      }
      const timeout = 30_000
      const args = ["lag", "--port", s.port, "--size", config.lagSize, "--deflate", "--text", "--timeout", timeout]
      const result = await runLoadgen(args.map(String), timeout)
      await s.stop()
      const summary = result.ok
        ? `echo of the big message ${fmtNum(result.bigEchoMs)} ms, other connection RTT max ${fmtNum(result.rttMaxMs)} ms p50 ${fmtNum(result.rttP50Ms)} ms`
        : undefined
      record({ ...base, ...result, summary })
    }
  }
}

/**
 * Fan-out: one publisher, N subscribers, each published message delivered to every subscriber.
 * Targets: ours in one process (Topics, in-memory backplane), ours in two processes through Redis
 * (subscribers split between them), and ws looping over its clients.
 */
const FANOUT_TARGETS = ["ours", "ours-redis", "ws"]
const fanoutSection = async () => {
  const redis = await startRedis()
  if (redis === null) notes.push("redis-server not found: the fan-out across processes was skipped")
  const start = async (target) => {
    if (target === "ws") return [await startServer("ws", { args: ["--fanout"] })]
    if (target === "ours") return [await startServer("ours", { args: ["--fanout"] })]
    const args = ["--fanout", "--redis", redis.url]
    return [await startServer("ours", { args }), await startServer("ours", { args })]
  }
  const targets = FANOUT_TARGETS.filter((t) => t !== "ours-redis" || redis !== null)
  const servers = {}
  const run = async (target, size, warmupMs, durationMs) => {
    servers[target] ??= await start(target)
    const group = servers[target]
    for (const s of group) await settle(s.pid)
    const args = ["--ports", group.map((s) => s.port).join(","), "--pids", group.map((s) => s.pid).join(",")]
    args.push("--subs", config.fanoutSubs, "--size", size, "--warmup", warmupMs, "--duration", durationMs)
    return runFanout(args.map(String), warmupMs + durationMs + 60_000)
  }
  for (const size of config.fanoutSizes) {
    const name = `${sizeLabel(size)} ×${config.fanoutSubs}`
    log(`fanout ${name}`)
    for (let rep = 0; rep < config.reps; rep++) {
      for (const target of rotate(targets, rep)) {
        const base = { section: "fanout", case: name, target, rep }
        if (overBudget()) {
          record({ ...base, ok: false, skipped: "time budget" })
          continue
        }
        try {
          // A fresh server's JIT warms up on a first, unrecorded run.
          if (servers[target] === undefined) await run(target, size, 0, config.serverWarmMs)
          const result = await run(target, size, config.warmupMs, config.durationMs)
          const summary = result.ok
            ? `${fmtRate(result.rate)} deliveries/s  ${fmtNum(result.serverCpuUsPerMsg)} µs/delivery  published ${fmtRate(result.publishedRate)}/s  servers ${fmtPct(result.serverCpuShare)}% of a core`
            : undefined
          record({ ...base, ...result, summary })
        } catch (error) {
          record({ ...base, ok: false, error: String(error.message) })
        }
      }
    }
  }
  for (const group of Object.values(servers)) for (const s of group) await s.stop()
  await redis?.stop()
}

// ---------------------------------------------------------------------------
// Summary
// ---------------------------------------------------------------------------

const okRuns = (section, name, target) =>
  runs.filter((r) => r.section === section && r.case === name && r.target === target && r.ok)

const statsOf = (list, key) => ({
  median: median(list.map((r) => r[key])),
  spread: spread(list.map((r) => r[key]))
})

const summarize = () => {
  const echo = []
  for (const name of [...new Set(runs.filter((r) => r.section === "echo").map((r) => r.case))]) {
    const row = { case: name, targets: {} }
    for (const target of config.targets) {
      const list = okRuns("echo", name, target)
      if (list.length === 0 && !runs.some((r) => r.section === "echo" && r.case === name && r.target === target))
        continue
      row.targets[target] = {
        n: list.length,
        rate: statsOf(list, "rate"),
        cpuUsPerMsg: statsOf(list, "serverCpuUsPerMsg"),
        serverCpuShare: median(list.map((r) => r.serverCpuShare)),
        serverSysShare: median(list.map((r) => r.serverSysShare)),
        loadgenCpuShare: median(list.map((r) => r.loadgenCpuShare))
      }
    }
    // Each against ws on the same Node line.
    for (const [target, t] of Object.entries(row.targets)) {
      const ws = row.targets[referenceOf(target)]
      t.rateVsWs = ratio(t.rate.median, ws?.rate.median ?? null)
      t.cpuVsWs = ratio(ws?.cpuUsPerMsg.median ?? null, t.cpuUsPerMsg.median)
    }
    echo.push(row)
  }
  const client = []
  for (const name of [...new Set(runs.filter((r) => r.section === "client").map((r) => r.case))]) {
    const row = { case: name, libs: {} }
    for (const lib of CLIENT_LIBS) {
      const list = okRuns("client", name, lib)
      row.libs[lib] = { n: list.length, rate: statsOf(list, "rate"), cpuUsPerMsg: statsOf(list, "clientCpuUsPerMsg") }
    }
    row.rateVsWs = ratio(row.libs.ours.rate.median, row.libs.ws.rate.median)
    row.cpuVsWs = ratio(row.libs.ws.cpuUsPerMsg.median, row.libs.ours.cpuUsPerMsg.median)
    row.loopCpuVsWs = ratio(row.libs.ws.cpuUsPerMsg.median, row.libs["ours-loop"].cpuUsPerMsg.median)
    client.push(row)
  }
  const memory = {}
  for (const target of config.targets) {
    const list = runs.filter((r) => r.section === "memory" && r.target === target && r.ok)
    if (list.length === 0) continue
    memory[target] = {
      n: list.length,
      conns: list[0].conns,
      kibPerConn: statsOf(list, "kibPerConn"),
      kibPerConnSettled: statsOf(list, "kibPerConnSettled"),
      rssBaseKiB: median(list.map((r) => r.rssBaseKiB)),
      connectMs: median(list.map((r) => r.connectMs)),
      heapSteadyKiB: median(list.map((r) => r.heapSteadyKiB)),
      heapPeakKiB: median(list.map((r) => r.heapPeakKiB)),
      heapPeakRatio: median(list.map((r) => r.heapPeakRatio)),
      stallMaxMs: median(list.map((r) => r.stallMaxMs)),
      closeMs: median(list.map((r) => r.closeMs))
    }
  }
  for (const [target, m] of Object.entries(memory))
    m.vsWs = ratio(m.kibPerConn.median, memory[referenceOf(target)]?.kibPerConn.median ?? null)
  const handshake = {}
  for (const target of config.targets) {
    const list = runs.filter((r) => r.section === "handshake" && r.target === target && r.ok)
    if (list.length === 0) continue
    handshake[target] = {
      n: list.length,
      conns: list[0].conns,
      rate: statsOf(list, "rate"),
      cpuUsPerHandshake: statsOf(list, "serverCpuUsPerHandshake"),
      handshakeMs: median(list.map((r) => r.handshakeMs)),
      serverCpuShare: median(list.map((r) => r.serverCpuShare))
    }
  }
  for (const [target, h] of Object.entries(handshake)) {
    const ws = handshake[referenceOf(target)]
    h.rateVsWs = ratio(h.rate.median, ws?.rate.median ?? null)
    h.cpuVsWs = ratio(ws?.cpuUsPerHandshake.median ?? null, h.cpuUsPerHandshake.median)
  }
  const lag = {}
  for (const target of config.targets) {
    const list = runs.filter((r) => r.section === "lag" && r.target === target && r.ok)
    if (list.length === 0) continue
    lag[target] = {
      n: list.length,
      bigEchoMs: statsOf(list, "bigEchoMs"),
      rttMaxMs: statsOf(list, "rttMaxMs"),
      rttP99Ms: median(list.map((r) => r.rttP99Ms)),
      rttP50Ms: median(list.map((r) => r.rttP50Ms)),
      baselineRttP50Ms: median(list.map((r) => r.baselineRttP50Ms))
    }
  }
  const fanout = []
  for (const name of [...new Set(runs.filter((r) => r.section === "fanout").map((r) => r.case))]) {
    const row = { case: name, targets: {} }
    for (const target of FANOUT_TARGETS) {
      const list = okRuns("fanout", name, target)
      if (list.length === 0) continue
      row.targets[target] = {
        n: list.length,
        rate: statsOf(list, "rate"),
        cpuUsPerMsg: statsOf(list, "serverCpuUsPerMsg")
      }
    }
    for (const t of Object.values(row.targets)) {
      t.rateVsWs = ratio(t.rate.median, row.targets.ws?.rate.median ?? null)
      t.cpuVsWs = ratio(row.targets.ws?.cpuUsPerMsg.median ?? null, t.cpuUsPerMsg.median)
    }
    fanout.push(row)
  }
  const observability = []
  const micro = runs.find((r) => r.section === "metrics-micro" && r.ok)
  for (const name of [...new Set(runs.filter((r) => r.section === "observability").map((r) => r.case))]) {
    const row = { case: name, targets: {} }
    for (const target of OBSERVABILITY_TARGETS) {
      const list = okRuns("observability", name, target)
      if (list.length > 0) row.targets[target] = { n: list.length, cpuUsPerMsg: statsOf(list, "serverCpuUsPerMsg") }
    }
    const cpu = (target) => row.targets[target]?.cpuUsPerMsg.median ?? null
    // Extra server CPU per message: of metrics, and of everything at its default.
    row.metricsCost = ratio(cpu("ours"), cpu("ours-nometrics"))
    row.defaultCost = ratio(cpu("ours"), cpu("ours-quiet"))
    // The metric updates of one echoed message, measured in-process, over ours' CPU per message.
    row.metricsNs = micro?.nsPerMessage ?? null
    // A logger at Info (frames not formatted) against none, parsing and answering one message.
    row.logNs = micro?.logNsPerMessage ?? null
    row.metricsShare = micro === undefined || cpu("ours") === null ? null : micro.nsPerMessage / 1000 / cpu("ours")
    observability.push(row)
  }
  return { echo, client, memory, handshake, lag, fanout, observability }
}

/**
 * The targets of issue 15, checked against this run (ratios of medians, ours to ws measured in the
 * same run). `metric` names what `got` is: a ratio of ours to ws ("CPU/msg ÷ ws" ≤ 1.25: at most
 * 25% more server CPU per message than ws), the mass close's heap peak over the steady heap, or
 * the longest event-loop stall in milliseconds.
 */
const checkTargets = (summary) => {
  const checks = []
  const isLarge = (name) => /^(64 KiB|1 MiB) /.test(name)
  for (const row of summary.echo) {
    const ours = row.targets.ours
    if (ours === undefined) continue
    const cpu = ours.cpuVsWs === null ? null : 1 / ours.cpuVsWs
    const deflate = row.case.includes("deflate")
    // Server CPU per message at most 1.25× ws in every cell, compressed ones included.
    checks.push({ what: `echo ${row.case}`, metric: "CPU/msg ÷ ws", need: 1.25, atMost: true, got: cpu })
    if (deflate) checks.push({ what: `echo ${row.case}`, metric: "msg/s ÷ ws", need: 1.0, got: ours.rateVsWs })
    else if (isLarge(row.case))
      checks.push({ what: `echo ${row.case}`, metric: "msg/s ÷ ws", need: 1.0, got: ours.rateVsWs })
    // What is ahead stays ahead: pipelined small messages on many connections.
    else if (/^(16 B|1 KiB) bin 64c×16$/.test(row.case))
      checks.push({ what: `echo ${row.case}`, metric: "msg/s ÷ ws", need: 2.0, got: ours.rateVsWs })
  }
  const m = summary.memory.ours
  if (m !== undefined) {
    checks.push({ what: "memory per idle connection", metric: "KiB/conn ÷ ws", need: 1.5, atMost: true, got: m.vsWs })
    checks.push({
      what: `${m.conns} connections closed at once: heap peak`,
      metric: "peak ÷ steady heap",
      need: 2.0,
      atMost: true,
      got: m.heapPeakRatio
    })
    checks.push({
      what: `${m.conns} connections closed at once: event-loop stall`,
      metric: "max stall ms",
      need: 100,
      atMost: true,
      got: m.stallMaxMs
    })
  }
  const h = summary.handshake.ours
  if (h !== undefined)
    checks.push({
      what: `handshakes per second (${h.conns} concurrent)`,
      metric: "handshakes/s ÷ ws",
      need: 0.8,
      got: h.rateVsWs
    })
  for (const row of summary.client) {
    const cpu = row.cpuVsWs === null ? null : 1 / row.cpuVsWs
    checks.push({ what: `client ${row.case}`, metric: "CPU/msg ÷ ws", need: 1.25, atMost: true, got: cpu })
    if (isLarge(row.case))
      checks.push({ what: `client ${row.case}`, metric: "msg/s ÷ ws", need: 1.0, got: row.rateVsWs })
  }
  // Issue 13: metrics cost at most 3% of server CPU per small message.
  for (const row of summary.observability)
    checks.push({
      what: `metrics, echo ${row.case}`,
      metric: "1 + metric updates ÷ CPU/msg",
      need: 1.03,
      atMost: true,
      got: row.metricsShare === null ? null : 1 + row.metricsShare
    })
  // Issue 12: in one process, at least twice the deliveries per second of ws looping over its clients.
  for (const row of summary.fanout)
    if (row.targets.ours !== undefined)
      checks.push({
        what: `fanout ${row.case}`,
        metric: "deliveries/s ÷ ws",
        need: 2.0,
        got: row.targets.ours.rateVsWs
      })
  for (const c of checks)
    c.ok = c.got === null || c.got === undefined ? null : c.atMost ? c.got <= c.need : c.got >= c.need
  return checks
}

// ---------------------------------------------------------------------------
// Tables
// ---------------------------------------------------------------------------

/** Renders rows as a padded terminal table or a Markdown table; the first column is left-aligned. */
const table = (headers, rows, markdown) => {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => String(r[i]).length)))
  const cell = (value, i) => (i === 0 ? String(value).padEnd(widths[i]) : String(value).padStart(widths[i]))
  if (markdown) {
    const line = (cells) => `| ${cells.map(cell).join(" | ")} |`
    const rule = `|${widths.map((w, i) => (i === 0 ? `:${"-".repeat(w + 1)}` : `${"-".repeat(w + 1)}:`)).join("|")}|`
    return [line(headers), rule, ...rows.map(line)].join("\n")
  }
  const line = (cells) => cells.map(cell).join("  ")
  return [line(headers), widths.map((w) => "-".repeat(w)).join("  "), ...rows.map(line)].join("\n")
}

const render = (summary, checks, markdown) => {
  const out = []
  const heading = (text) => out.push(markdown ? `\n#### ${text}\n` : `\n${text}\n`)
  // One echo table per Node line, each with its own ws as the reference.
  const lines = [...new Set(config.targets.map(nodeLineOf))]
  for (const line of summary.echo.length > 0 ? lines : []) {
    const targets = config.targets.filter((t) => nodeLineOf(t) === line)
    const reference = referenceOf(targets[0])
    const others = targets.filter((t) => t !== reference)
    const on = line === null ? (lines.length > 1 ? ` on Node ${process.version}` : "") : ` on Node ${line}`
    heading(
      `Server echo${on}: messages/s and server CPU µs per message (medians of ${config.reps}; ×ws = ratio to ${reference}, > 1 is better than ws)`
    )
    const headers = ["case"]
    for (const t of targets) headers.push(`${t} msg/s`)
    for (const t of others) headers.push(`${t} ×ws`)
    for (const t of targets) headers.push(`${t} µs/msg`)
    for (const t of others) headers.push(`${t} cpu ×ws`)
    headers.push("spread %")
    const rows = summary.echo.map((row) => {
      const get = (t) => row.targets[t]
      const cells = [row.case]
      for (const t of targets) cells.push(fmtRate(get(t)?.rate.median))
      for (const t of others) cells.push(fmtRatio(get(t)?.rateVsWs))
      for (const t of targets) cells.push(fmtNum(get(t)?.cpuUsPerMsg.median))
      for (const t of others) cells.push(fmtRatio(get(t)?.cpuVsWs))
      const spreads = targets
        .map(get)
        .filter((t) => t !== undefined)
        .flatMap((t) => [t.rate.spread, t.cpuUsPerMsg.spread])
      const worst = spreads.filter((x) => x !== null)
      cells.push(worst.length ? `${fmtPct(Math.max(...worst))}` : "–")
      return cells
    })
    out.push(table(headers, rows, markdown))
  }
  if (summary.client.length > 0) {
    heading("Client: our client vs the ws client against the plain echo server (client CPU µs per message)")
    const rows = summary.client.map((row) => [
      row.case,
      fmtRate(row.libs.ours.rate.median),
      fmtRate(row.libs.ws.rate.median),
      fmtRatio(row.rateVsWs),
      fmtNum(row.libs.ours.cpuUsPerMsg.median),
      fmtNum(row.libs.ws.cpuUsPerMsg.median),
      fmtRatio(row.cpuVsWs),
      fmtNum(row.libs["ours-loop"].cpuUsPerMsg.median),
      fmtRatio(row.loopCpuVsWs)
    ])
    out.push(
      table(
        [
          "case",
          "ours msg/s",
          "ws msg/s",
          "ours ×ws",
          "ours µs/msg",
          "ws µs/msg",
          "ours cpu ×ws",
          "ours-loop µs/msg",
          "ours-loop cpu ×ws"
        ],
        rows,
        markdown
      )
    )
  }
  const memory = Object.entries(summary.memory)
  if (memory.length > 0) {
    heading(
      `Server memory per idle connection (${memory[0][1].conns} connections, RSS growth / N; ×ws: to ws on the same Node, ws@24 for the @24 targets)`
    )
    const rows = memory.map(([target, m]) => [
      target,
      fmtNum(m.kibPerConn.median),
      fmtNum(m.kibPerConnSettled.median),
      fmtRatio(m.vsWs),
      fmtNum(m.rssBaseKiB / 1024),
      fmtNum(m.connectMs),
      fmtRatio(m.heapPeakRatio),
      fmtNum(m.stallMaxMs)
    ])
    out.push(
      table(
        [
          "target",
          "KiB/conn after GC",
          "KiB/conn before GC",
          "×ws (< 1 is better)",
          "base RSS MiB",
          "connect ms",
          "close: heap peak ×steady",
          "close: stall max ms"
        ],
        rows,
        markdown
      )
    )
  }
  const handshake = Object.entries(summary.handshake)
  if (handshake.length > 0) {
    heading(
      `Handshakes per second: ${handshake[0][1].conns} concurrent connect–handshake–close cycles (medians of ${config.reps}; ×ws: to ws on the same Node, > 1 is better)`
    )
    const rows = handshake.map(([target, h]) => [
      target,
      fmtRate(h.rate.median),
      fmtRatio(h.rateVsWs),
      fmtNum(h.cpuUsPerHandshake.median),
      fmtRatio(h.cpuVsWs),
      fmtNum(h.handshakeMs),
      fmtPct(Math.max(h.rate.spread ?? 0, h.cpuUsPerHandshake.spread ?? 0))
    ])
    out.push(
      table(["target", "handshakes/s", "×ws", "µs/handshake", "cpu ×ws", "connect→101 ms", "spread %"], rows, markdown)
    )
  }
  const lag = Object.entries(summary.lag)
  if (lag.length > 0) {
    heading(
      `Event-loop delay: RTT of 16 B messages on one connection while another echoes one ${sizeLabel(config.lagSize)} compressed message`
    )
    const rows = lag.map(([target, l]) => [
      target,
      fmtNum(l.bigEchoMs.median),
      fmtNum(l.rttMaxMs.median),
      fmtNum(l.rttP99Ms),
      fmtNum(l.rttP50Ms),
      fmtNum(l.baselineRttP50Ms)
    ])
    out.push(
      table(["target", "big echo ms", "RTT max ms", "RTT p99 ms", "RTT p50 ms", "idle RTT p50 ms"], rows, markdown)
    )
  }
  if (summary.fanout.length > 0) {
    heading(
      `Fan-out: one publisher, N subscribers; deliveries/s and server CPU µs per delivery (ours-redis: two processes through Redis, CPU of both)`
    )
    const headers = ["case"]
    for (const t of FANOUT_TARGETS) headers.push(`${t} /s`)
    for (const t of FANOUT_TARGETS) headers.push(`${t} µs`)
    headers.push("ours ×ws", "ours cpu ×ws")
    const rows = summary.fanout.map((row) => {
      const cells = [row.case]
      for (const t of FANOUT_TARGETS) cells.push(fmtRate(row.targets[t]?.rate.median))
      for (const t of FANOUT_TARGETS) cells.push(fmtNum(row.targets[t]?.cpuUsPerMsg.median))
      cells.push(fmtRatio(row.targets.ours?.rateVsWs), fmtRatio(row.targets.ours?.cpuVsWs))
      return cells
    })
    out.push(table(headers, rows, markdown))
  }
  if (summary.observability.length > 0) {
    heading(
      `Observability cost: server CPU µs per message of ours by default, without metrics, and quiet (no metrics, no tracing, logs above Info); medians of ${config.reps}`
    )
    const rows = summary.observability.map((row) => [
      row.case,
      ...OBSERVABILITY_TARGETS.map((t) => fmtNum(row.targets[t]?.cpuUsPerMsg.median)),
      row.metricsCost === null ? "–" : `${((row.metricsCost - 1) * 100).toFixed(1)}`,
      row.defaultCost === null ? "–" : `${((row.defaultCost - 1) * 100).toFixed(1)}`,
      fmtNum(row.metricsNs),
      fmtNum(row.logNs),
      row.metricsShare === null ? "–" : (row.metricsShare * 100).toFixed(2)
    ])
    const headers = ["case", ...OBSERVABILITY_TARGETS.map((t) => `${t} µs`)]
    headers.push("metrics % end to end", "defaults % end to end", "metric updates ns/msg", "Info logger ns/msg")
    headers.push("metrics % (updates ÷ CPU)")
    out.push(table(headers, rows, markdown))
  }
  if (checks.length > 0) {
    heading("Targets of issues 15 and 13 (ours against ws, measured in the same run; metrics against none)")
    const rows = checks.map((c) => [
      c.what,
      c.metric,
      `${c.atMost ? "≤" : "≥"} ${c.metric.endsWith("ms") ? c.need : c.need.toFixed(2)}`,
      c.metric.endsWith("ms") ? fmtNum(c.got) : fmtRatio(c.got),
      c.ok === null ? "n/a" : c.ok ? "met" : "MISSED"
    ])
    out.push(table(["target", "metric", "need", "got", ""], rows, markdown))
  }
  return out.join("\n")
}

// ---------------------------------------------------------------------------
// Main
// ---------------------------------------------------------------------------

const updateReadme = (text) => {
  const path = join(BENCH, "README.md")
  const START = "<!-- bench:results:start -->"
  const END = "<!-- bench:results:end -->"
  const readme = readFileSync(path, "utf8")
  const a = readme.indexOf(START)
  const b = readme.indexOf(END)
  if (a < 0 || b < a) {
    log(`bench/README.md has no ${START} … ${END} markers: not updated`)
    return
  }
  writeFileSync(path, `${readme.slice(0, a + START.length)}\n${text}\n${readme.slice(b)}`)
  log("bench/README.md updated")
}

const main = async () => {
  try {
    readFileSync(join(ROOT, "dist", "index.js"))
  } catch {
    log("dist/index.js is missing: run `npm run build` first (or `npm run bench`)")
    process.exit(1)
  }
  const info = machine()
  const date = new Date()
  const commit = measuredCommit()
  log(
    `effect-websockets benchmark ${QUICK ? "(quick) " : ""}${date.toISOString()} · ${info.nproc} × ${info.cpuModel} · Node ${info.node} · load ${os.loadavg()[0].toFixed(2)}`
  )
  // The Node 24 targets run on a Node 24 binary; without one they are left out, with a note.
  const node24 = config.targets.some((t) => nodeLineOf(t) === 24)
    ? resolveNodeLines(opt("--node24", process.env.BENCH_NODE24))
    : null
  if (node24 !== null) {
    if (node24.path === null) {
      const dropped = config.targets.filter((t) => nodeLineOf(t) === 24)
      config.targets = config.targets.filter((t) => nodeLineOf(t) !== 24)
      notes.push(`${node24.note}: ${dropped.join(", ")} skipped`)
      log(`note: ${notes.at(-1)}`)
    } else {
      info.node24 = node24.version
      log(`Node 24: ${node24.path} (${node24.version})`)
    }
  }
  if (config.targets.some((t) => t.startsWith("ours-e4"))) {
    try {
      info.effect4 = JSON.parse(
        readFileSync(join(ROOT, "effect4", "node_modules", "effect", "package.json"), "utf8")
      ).version
      readFileSync(join(ROOT, "dist", "effect4", "index.js"))
    } catch {
      log("dist/effect4/index.js or effect4/node_modules/effect is missing: run `npm ci` and `npm run build` first")
      process.exit(1)
    }
  }
  const loadgen = buildLoadgen()
  log(`load generator: ${relative(ROOT, LOADGEN)} ${loadgen.note}`)
  if (!loadgen.ok) {
    log("the load generator could not be built: gcc is required for the server benchmarks")
    process.exit(1)
  }
  const loadBefore = os.loadavg()
  let serverInfo = {}
  if (config.sections.includes("echo")) serverInfo = (await echoSection(loadgen)).infos
  if (config.sections.includes("client")) await clientSection()
  if (config.sections.includes("memory")) await memorySection()
  if (config.sections.includes("handshake")) await handshakeSection()
  if (config.sections.includes("lag")) await lagSection(loadgen)
  if (config.sections.includes("fanout")) await fanoutSection()
  if (config.sections.includes("observability")) {
    await echoSection(loadgen, { section: "observability", cases: OBSERVABILITY_CASES, targets: OBSERVABILITY_TARGETS })
    const micro = spawnSync(process.execPath, [join(BENCH, "metricsCost.mjs")], { encoding: "utf8", timeout: 60_000 })
    try {
      record({
        section: "metrics-micro",
        case: "updates",
        target: "ours",
        rep: 0,
        ok: true,
        ...JSON.parse(micro.stdout)
      })
    } catch {
      record({
        section: "metrics-micro",
        case: "updates",
        target: "ours",
        rep: 0,
        ok: false,
        error: micro.stderr || "no output"
      })
    }
  }
  killAll()

  const summary = summarize()
  const checks = checkTargets(summary)
  const seconds = elapsed() / 1e3
  const header = `${date.toISOString().slice(0, 16).replace("T", " ")} UTC · ${info.nproc} × ${info.cpuModel} · Node ${info.node}${info.node24 ? ` and ${info.node24}` : ""} · effect ${info.effect}${info.effect4 ? ` and ${info.effect4}` : ""} · ws ${info.ws} (bufferutil ${info.bufferutil}) · ${QUICK ? "quick, " : ""}${config.reps} reps × ${config.durationMs} ms · load average ${loadBefore[0].toFixed(2)} → ${os.loadavg()[0].toFixed(2)} · ${seconds.toFixed(0)} s · commit ${commit}`
  const errors = runs.filter((r) => !r.ok && !r.skipped)
  const skipped = runs.filter((r) => r.skipped)
  if (skipped.length > 0) notes.push(`${skipped.length} runs skipped: time budget of ${config.budgetMs / 1000} s spent`)
  if (errors.length > 0) notes.push(`${errors.length} runs failed (see "runs" in the JSON)`)

  process.stdout.write(`\n${header}\n${render(summary, checks, false)}\n`)
  for (const note of notes) process.stdout.write(`note: ${note}\n`)

  const result = {
    date: date.toISOString(),
    commit,
    machine: info,
    loadAverage: { before: loadBefore, after: os.loadavg() },
    config,
    loadgen: { zlib: loadgen.zlib },
    servers: serverInfo,
    seconds,
    summary,
    targets: checks,
    notes,
    runs: runs.map(({ summary: _, ...run }) => run)
  }
  const outPath =
    opt("--out", null) ??
    join(BENCH, "results", QUICK ? "quick.json" : `${date.toISOString().slice(0, 19).replace(/:/g, "-")}.json`)
  mkdirSync(join(outPath, ".."), { recursive: true })
  writeFileSync(outPath, `${JSON.stringify(result, null, 2)}\n`)
  // `npm run lint` checks bench/**, JSON included: write it the way Biome formats it (best effort).
  spawnSync(join(ROOT, "node_modules", ".bin", "biome"), ["format", "--write", outPath], {
    stdio: "ignore",
    timeout: 30_000
  })
  log(`results: ${relative(ROOT, outPath)}`)
  if (flag("--readme")) {
    const notesMd = notes.map((n) => `- ${n}`).join("\n")
    updateReadme(`_${header}_\n${render(summary, checks, true)}\n${notesMd ? `\n${notesMd}\n` : ""}`)
  }
  process.exit(errors.length > 0 ? 1 : 0)
}

main().catch((error) => {
  log(`benchmark failed: ${error?.stack ?? error}`)
  killAll()
  process.exit(1)
})
