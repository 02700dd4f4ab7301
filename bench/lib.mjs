/**
 * Process plumbing shared by bench/run.mjs and bench/profile.mjs: building the C load generator,
 * starting target servers, running the load generator and the Node clients with bounded waits,
 * and killing every child on the way out (also on errors and signals).
 */

import { spawn, spawnSync } from "node:child_process"
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync } from "node:fs"
import * as net from "node:net"
import * as os from "node:os"
import { dirname, join } from "node:path"
import { fileURLToPath } from "node:url"

export const BENCH = dirname(fileURLToPath(import.meta.url))
export const ROOT = dirname(BENCH)
export const BUILD = join(BENCH, ".build")
const LOADGEN_SRC = join(BENCH, "loadgen.c")
export const LOADGEN = join(BUILD, "loadgen")

/** How long a server may take to print its ready line (the platform's imports are slow to load on a busy machine). */
const SERVER_START_MS = 30_000
/** Grace period on top of a child's own timeout before it is killed. */
const KILL_GRACE_MS = 5_000

// ---------------------------------------------------------------------------
// Children: tracked, and all killed when this process ends, however it ends.
// ---------------------------------------------------------------------------

const children = new Set()

const track = (child) => {
  children.add(child)
  child.once("exit", () => children.delete(child))
  return child
}

export const killAll = () => {
  for (const child of children) {
    try {
      child.kill("SIGKILL")
    } catch {}
  }
  children.clear()
}

process.on("exit", killAll)
for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"]) {
  process.on(signal, () => {
    killAll()
    process.exit(130)
  })
}

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

/** Resolves with the child's exit code, or kills it after `ms` and resolves with null. */
const waitExit = (child, ms) =>
  new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve(child.exitCode)
    const timer = setTimeout(() => {
      child.kill("SIGKILL")
      resolve(null)
    }, ms)
    child.once("exit", (code) => {
      clearTimeout(timer)
      resolve(code)
    })
  })

/** Collects a stream's lines; keeps only the last few (servers may log a lot). */
const lineCollector = (stream, onLine, keep = 20) => {
  const tail = []
  let partial = ""
  stream.setEncoding("utf8")
  stream.on("data", (data) => {
    const lines = (partial + data).split("\n")
    partial = lines.pop()
    for (const line of lines) {
      tail.push(line)
      if (tail.length > keep) tail.shift()
      onLine?.(line)
    }
  })
  return tail
}

// ---------------------------------------------------------------------------
// Machine
// ---------------------------------------------------------------------------

export const machine = () => {
  let cpuModel = os.cpus()[0]?.model ?? "unknown"
  try {
    const match = /^model name\s*:\s*(.+)$/m.exec(readFileSync("/proc/cpuinfo", "utf8"))
    if (match) cpuModel = match[1].trim()
  } catch {}
  const versionOf = (name) => {
    try {
      return JSON.parse(readFileSync(join(ROOT, "node_modules", name, "package.json"), "utf8")).version
    } catch {
      return null
    }
  }
  return {
    nproc: typeof os.availableParallelism === "function" ? os.availableParallelism() : os.cpus().length,
    cpuModel,
    node: process.version,
    platform: `${os.type()} ${os.release()} ${os.arch()}`,
    memoryGiB: Math.round((os.totalmem() / 2 ** 30) * 10) / 10,
    ws: versionOf("ws"),
    bufferutil: versionOf("bufferutil"),
    effect: versionOf("effect")
  }
}

/** Soft and hard limits on open files, as the shell reports them. */
export const fileLimits = () => {
  const read = (flag) => {
    const out = spawnSync("sh", ["-c", `ulimit ${flag}`], { encoding: "utf8" }).stdout?.trim()
    return out === "unlimited" ? Number.POSITIVE_INFINITY : Number(out) || 1024
  }
  return { soft: read("-Sn"), hard: read("-Hn") }
}

// ---------------------------------------------------------------------------
// Load generator
// ---------------------------------------------------------------------------

/**
 * Builds bench/.build/loadgen with gcc when missing or older than its source: with zlib when
 * `-lz` links, without (compressed cases then unavailable) otherwise.
 * Returns { ok, zlib, note }.
 */
export const buildLoadgen = () => {
  mkdirSync(BUILD, { recursive: true })
  const stamp = join(BUILD, "loadgen.zlib")
  if (existsSync(LOADGEN) && statSync(LOADGEN).mtimeMs >= statSync(LOADGEN_SRC).mtimeMs) {
    const zlib = existsSync(stamp) && readFileSync(stamp, "utf8") === "1"
    return { ok: true, zlib, note: "up to date" }
  }
  const gcc = (extra) =>
    spawnSync("gcc", ["-O2", "-Wall", "-o", LOADGEN, LOADGEN_SRC, ...extra], { encoding: "utf8", timeout: 60_000 })
  let result = gcc(["-lz"])
  if (result.error) return { ok: false, zlib: false, note: `gcc not available: ${result.error.message}` }
  let zlib = true
  if (result.status !== 0) {
    result = gcc(["-DNO_ZLIB"])
    zlib = false
    if (result.status !== 0) return { ok: false, zlib, note: `gcc failed:\n${result.stderr}` }
  }
  spawnSync("sh", ["-c", `printf ${zlib ? 1 : 0} > '${stamp}'`])
  return { ok: true, zlib, note: zlib ? "built with zlib" : "built without zlib (no -lz)" }
}

/** Runs the load generator to completion; resolves with its last JSON line (or an error object). */
export const runLoadgen = async (args, timeoutMs) => {
  const child = track(spawn(LOADGEN, args, { stdio: ["ignore", "pipe", "pipe"] }))
  const out = lineCollector(child.stdout)
  const err = lineCollector(child.stderr)
  const code = await waitExit(child, timeoutMs + KILL_GRACE_MS)
  return lastJson(out, code, err, "loadgen")
}

const lastJson = (lines, code, errLines, what) => {
  for (let i = lines.length - 1; i >= 0; i--) {
    try {
      const value = JSON.parse(lines[i])
      if (value !== null && typeof value === "object") return value
    } catch {}
  }
  const detail = errLines.join(" ").slice(-300)
  return { ok: false, error: code === null ? `${what} killed after its timeout` : `${what} exited ${code} ${detail}` }
}

/**
 * Starts the idle-connections mode and resolves once every connection is open, with
 * { ready, finish }: `finish()` makes the generator reset the connections and exit.
 */
export const startIdle = (args, timeoutMs) =>
  new Promise((resolve) => {
    const child = track(spawn(LOADGEN, ["idle", ...args, "--timeout", String(timeoutMs)], { stdio: "pipe" }))
    const err = lineCollector(child.stderr)
    let settled = false
    const finish = async () => {
      child.stdin.end()
      await waitExit(child, KILL_GRACE_MS)
    }
    const out = lineCollector(child.stdout, (line) => {
      if (settled) return
      try {
        const value = JSON.parse(line)
        settled = true
        resolve({ ready: value, finish })
      } catch {}
    })
    waitExit(child, timeoutMs + KILL_GRACE_MS).then((code) => {
      if (settled) return
      settled = true
      resolve({ ready: lastJson(out, code, err, "loadgen"), finish })
    })
  })

// ---------------------------------------------------------------------------
// Servers and clients
// ---------------------------------------------------------------------------

/**
 * Node lines other than this process's: the binary each runs on, or null when none was found.
 * `resolveNodeLines` fills it (run.mjs: `--node24 PATH`, `BENCH_NODE24`, or a known location).
 */
export const NODE_LINES = { 24: null }

/** Where a Node 24 binary is looked for: `.ci/run`'s cache of the registry's binaries, then /tmp/e4. */
const node24Candidates = () => {
  const arch = { x64: "x64", arm64: "arm64" }[process.arch] ?? process.arch
  const cache = process.env.XDG_CACHE_HOME ?? join(os.homedir(), ".cache")
  const bin = join("node_modules", `node-linux-${arch}`, "bin", "node")
  return [join(cache, "effect-websockets", "node", "24", bin), join("/tmp", "e4", bin)]
}

/**
 * Finds the Node 24 binary: `explicit` (a path) if given, else the first candidate that runs and
 * says v24. Returns { path, version } or { path: null, note } (the Node 24 targets are then skipped).
 */
export const resolveNodeLines = (explicit) => {
  const tried = explicit ? [explicit] : node24Candidates()
  for (const path of tried) {
    const out = spawnSync(path, ["--version"], { encoding: "utf8", timeout: 10_000 })
    const version = out.status === 0 ? out.stdout.trim() : ""
    if (version.startsWith("v24.")) {
      NODE_LINES[24] = path
      return { path, version }
    }
  }
  return { path: null, note: `no Node 24 binary (tried ${tried.join(", ")}; --node24 PATH or BENCH_NODE24)` }
}

/** Targets: a server script, its arguments and environment. */
export const TARGETS = {
  ours: { script: "servers/ours.mjs", env: {} },
  ws: { script: "servers/ws.mjs", env: {} },
  "ws-js": { script: "servers/ws.mjs", env: { WS_NO_BUFFER_UTIL: "1" } },
  plain: { script: "servers/plain.mjs", env: {} },
  // `HttpServerRequest.upgrade` of @effect/platform-node (ws underneath): no permessage-deflate.
  platform: { script: "servers/platform.mjs", env: {}, noDeflate: true },
  // Issue 13: ours without metrics, and ours with every observability feature off (no metrics, no
  // tracing, logs above Info): what metrics, and spans and logs at their defaults, cost.
  "ours-nometrics": { script: "servers/ours.mjs", args: ["--no-metrics"], env: {} },
  "ours-quiet": { script: "servers/ours.mjs", args: ["--quiet"], env: {} },
  // Ours with a fiber per connection (`ws.forEachMessage`) instead of `Server.onMessage`.
  "ours-loop": { script: "servers/ours.mjs", args: ["--loop"], env: {} },
  // Ours with the `messages` Stream as the handler, `Stream.runForEach(ws.messages, ws.send)`.
  "ours-stream": { script: "servers/ours.mjs", args: ["--stream"], env: {} },
  // On Node 24 (issue 25), each against `ws@24`: the Effect 3 shell, the Effect 4 shell
  // (`effect-websockets/effect4`, README echo and the Stream handler) and ws.
  "ws@24": { script: "servers/ws.mjs", env: {}, node: 24 },
  "ours@24": { script: "servers/ours.mjs", env: {}, node: 24 },
  "ours-stream@24": { script: "servers/ours.mjs", args: ["--stream"], env: {}, node: 24 },
  "ours-e4@24": { script: "servers/oursEffect4.mjs", env: {}, node: 24 },
  "ours-e4-stream@24": { script: "servers/oursEffect4.mjs", args: ["--stream"], env: {}, node: 24 },
  "ours-e4-loop@24": { script: "servers/oursEffect4.mjs", args: ["--loop"], env: {}, node: 24 },
  // Both shells with metrics, tracing and Info logs off: the Effect 4 shell logs its connection
  // lines at Info, the Effect 3 shell at Debug (issue 26), which weighs on handshakes.
  "ours-quiet@24": { script: "servers/ours.mjs", args: ["--quiet"], env: {}, node: 24 },
  "ours-e4-quiet@24": { script: "servers/oursEffect4.mjs", args: ["--quiet"], env: {}, node: 24 }
}

/** The Node line a target runs on: null for this process's own. */
export const nodeLineOf = (name) => TARGETS[name]?.node ?? null

/** The `ws` server a target is compared with: `ws` on the same Node line. */
export const referenceOf = (name) => (nodeLineOf(name) === null ? "ws" : `ws@${nodeLineOf(name)}`)

/** Whether a target is one of our servers (they take `--keepalive` for their defaults). */
export const isOurs = (name) => TARGETS[name]?.script.startsWith("servers/ours") === true

/** Whether a target can serve the compressed cases (`plain` and `platform` cannot). */
export const hasDeflate = (name) => name !== "plain" && TARGETS[name]?.noDeflate !== true

/**
 * Starts a target server; resolves with { name, pid, port, info, alive(), stop(), rssKiB(), gc() }.
 * `nodeArgs` go before the script (`--expose-gc`), `args` after it, `env` adds variables. `nofile` raises the soft limit
 * on open files through the shell when the current one is lower.
 */
export const startServer = async (
  name,
  { deflate = false, nodeArgs = [], args = [], env: extraEnv = {}, nofile = 0 } = {}
) => {
  const target = TARGETS[name]
  if (target === undefined) throw new Error(`unknown target ${name}`)
  const argv = [
    ...nodeArgs,
    join(BENCH, target.script),
    ...(target.args ?? []),
    ...(deflate ? ["--deflate"] : []),
    ...args
  ]
  const env = { ...process.env, ...target.env, ...extraEnv }
  // bench/profile.mjs and other callers that did not resolve the Node lines: BENCH_NODE24 or the defaults.
  const node =
    target.node === undefined
      ? process.execPath
      : (NODE_LINES[target.node] ?? resolveNodeLines(process.env.BENCH_NODE24).path)
  if (node === null || node === undefined) throw new Error(`${name}: no Node ${target.node} binary`)
  const child =
    nofile > 0
      ? spawn("sh", ["-c", `ulimit -n ${nofile} && exec "$0" "$@"`, node, ...argv], { env, cwd: ROOT })
      : spawn(node, argv, { env, cwd: ROOT })
  track(child)
  // Replies to `request` (common.mjs's stdin commands): JSON lines with a `reply` field.
  const pending = []
  const info = await new Promise((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`${name} did not start within ${SERVER_START_MS} ms`)),
      SERVER_START_MS
    )
    const err = lineCollector(child.stderr, null, 40)
    let started = false
    lineCollector(child.stdout, (line) => {
      // Only JSON lines concern us; the server's log lines (two per connection) are skipped
      // without a throwing parse, which would cost this process CPU beside the server.
      if (line.charCodeAt(0) !== 123) return
      let value
      try {
        value = JSON.parse(line)
      } catch {
        return
      }
      if (!started) {
        started = true
        clearTimeout(timer)
        resolve(value)
      } else if (value !== null && typeof value === "object" && "reply" in value) pending.shift()?.(value)
    })
    child.once("exit", (code) => {
      clearTimeout(timer)
      reject(new Error(`${name} exited ${code} before listening: ${err.join("\n").slice(-600)}`))
    })
  }).catch((error) => {
    child.kill("SIGKILL")
    throw error
  })
  const pid = info.pid
  return {
    name,
    deflate,
    pid,
    port: info.port,
    info,
    alive: () => child.exitCode === null && child.signalCode === null,
    /** SIGTERM (the server exits, writing a CPU profile if asked), SIGKILL if it lingers. */
    stop: async (graceMs = 3_000) => {
      if (child.exitCode !== null || child.signalCode !== null) return
      child.kill("SIGTERM")
      if ((await waitExit(child, graceMs)) === null) child.kill("SIGKILL")
    },
    rssKiB: () => {
      try {
        const match = /^VmRSS:\s*(\d+)\s*kB/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"))
        return match ? Number(match[1]) : null
      } catch {
        return null
      }
    },
    /** CPU time (utime + stime, every thread) in microseconds, null if unreadable. */
    cpuUs: () => procCpuUs(pid),
    /** Open file descriptors (sockets included), null if unreadable. */
    fdCount: () => {
      try {
        return readdirSync(`/proc/${pid}/fd`).length
      } catch {
        return null
      }
    },
    /**
     * Sends a command of common.mjs (`watch`, `report`) on the server's stdin; resolves with its
     * JSON reply, or null after `ms` or if the server is gone.
     */
    request: (command, ms = 10_000) =>
      new Promise((resolve) => {
        if (child.exitCode !== null || child.signalCode !== null) return resolve(null)
        const timer = setTimeout(() => {
          const i = pending.indexOf(done)
          if (i >= 0) pending.splice(i, 1)
          resolve(null)
        }, ms)
        const done = (value) => {
          clearTimeout(timer)
          resolve(value)
        }
        pending.push(done)
        child.stdin.write(`${command}\n`)
      }),
    gc: () => {
      try {
        process.kill(pid, "SIGUSR2")
      } catch {}
    }
  }
}

const CLOCK_TICK_US = 1e6 / (Number(spawnSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).stdout) || 100)

/** utime + stime of /proc/<pid>/stat (fields 14 and 15, after the parenthesised command name). */
export const procCpuUs = (pid) => {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8")
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ")
    return (Number(fields[11]) + Number(fields[12])) * CLOCK_TICK_US
  } catch {
    return null
  }
}

/** Waits (at most `maxMs`) until a process uses less than 10% of a core: work left over from a run is done. */
export const settle = async (pid, maxMs = 1_500) => {
  const end = performance.now() + maxMs
  let before = procCpuUs(pid)
  while (before !== null && performance.now() < end) {
    await sleep(50)
    const after = procCpuUs(pid)
    if (after === null || after - before <= 5_000) return
    before = after
  }
}

/** Runs the Node client benchmark (bench/clients/client.mjs) to completion. */
export const runClient = async (args, timeoutMs) => {
  const child = track(spawn(process.execPath, [join(BENCH, "clients/client.mjs"), ...args], { cwd: ROOT }))
  const out = lineCollector(child.stdout)
  const err = lineCollector(child.stderr)
  const code = await waitExit(child, timeoutMs + KILL_GRACE_MS)
  return lastJson(out, code, err, "client")
}

/** Runs the fan-out client (bench/clients/fanout.mjs); resolves with its JSON line. */
export const runFanout = async (args, timeoutMs) => {
  const child = track(spawn(process.execPath, [join(BENCH, "clients/fanout.mjs"), ...args], { cwd: ROOT }))
  const out = lineCollector(child.stdout)
  const err = lineCollector(child.stderr)
  const code = await waitExit(child, timeoutMs + KILL_GRACE_MS)
  return lastJson(out, code, err, "fanout")
}

const REDIS_SERVER = "/usr/bin/redis-server"

/** Starts redis-server on a free loopback port without persistence; null when it is not installed. */
export const startRedis = async () => {
  if (spawnSync(REDIS_SERVER, ["-v"], { stdio: "ignore" }).status !== 0) return null
  const port = await new Promise((resolve) => {
    const server = net.createServer()
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address()
      server.close(() => resolve(port))
    })
  })
  const child = track(
    spawn(REDIS_SERVER, ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"], {
      stdio: "ignore"
    })
  )
  const end = performance.now() + SERVER_START_MS
  for (;;) {
    const up = await new Promise((resolve) => {
      const socket = net.connect(port, "127.0.0.1")
      socket.once("connect", () => {
        socket.destroy()
        resolve(true)
      })
      socket.once("error", () => resolve(false))
    })
    if (up) break
    if (performance.now() > end) throw new Error("redis-server did not start")
    await sleep(50)
  }
  return {
    url: `redis://127.0.0.1:${port}`,
    stop: async () => {
      child.kill("SIGTERM")
      if ((await waitExit(child, KILL_GRACE_MS)) === null) child.kill("SIGKILL")
    }
  }
}

// ---------------------------------------------------------------------------
// Statistics
// ---------------------------------------------------------------------------

export const median = (values) => {
  const v = values.filter((x) => typeof x === "number" && Number.isFinite(x)).sort((a, b) => a - b)
  if (v.length === 0) return null
  const mid = v.length >> 1
  return v.length % 2 === 1 ? v[mid] : (v[mid - 1] + v[mid]) / 2
}

/** Spread of repeated measurements: (max - min) / median. */
export const spread = (values) => {
  const v = values.filter((x) => typeof x === "number" && Number.isFinite(x))
  const m = median(v)
  if (v.length < 2 || !m) return null
  return (Math.max(...v) - Math.min(...v)) / m
}

/** Rotates `list` by `k`, so that every target takes every position across repetitions. */
export const rotate = (list, k) => list.map((_, i) => list[(i + k) % list.length])
