/**
 * Shared plumbing of the benchmark target servers: argument parsing, the ready line, and the ways
 * run.mjs controls a server (it never relies on anything else to stop one).
 *
 * - First stdout line: `{"target","port","pid",...}` once listening on 127.0.0.1.
 * - SIGTERM / SIGINT: exit at once (writing the CPU profile first when BENCH_CPU_PROFILE is set).
 * - stdin EOF: the parent went away (even if killed), so exit too: no orphaned servers.
 * - SIGUSR2: run a full GC when started with `--expose-gc` (memory measurements).
 * - stdin lines (memory benchmark, mass close): `watch` starts sampling the JS heap every 5 ms and
 *   monitoring event-loop delay, with the heap at that moment as the steady heap (reply
 *   `{"reply":"watch"}`); `report` answers
 *   with one JSON line `{"reply":"report",...}`: steady and peak heapUsed (and RSS), the longest
 *   event-loop delay, then stops both. Nothing is sampled outside a watch.
 */
import { writeFileSync } from "node:fs"
import { monitorEventLoopDelay } from "node:perf_hooks"

export const args = process.argv.slice(2)
export const deflate = args.includes("--deflate")
/** Large enough for the 16 MiB event-loop-delay message, and the same limit for every target. */
export const MAX_SIZE = 32 * 1024 * 1024

// BENCH_CPU_PROFILE=<file>: profile from the ready line to SIGTERM only (`node --cpu-prof` would
// also record the start-up); bench/profile.mjs sets it. BENCH_CPU_PROFILE_INTERVAL: sampling µs.
const profilePath = process.env.BENCH_CPU_PROFILE
const inspector = profilePath ? await import("node:inspector") : null
let session = null

const exit = () => {
  if (session === null) process.exit(0)
  session.post("Profiler.stop", (error, result) => {
    if (!error) writeFileSync(profilePath, JSON.stringify(result.profile))
    process.exit(0)
  })
  session = null
}
process.on("SIGTERM", exit)
process.on("SIGINT", exit)
process.on("SIGUSR2", () => globalThis.gc?.())
process.stdin.on("end", exit)
process.stdin.on("error", exit)
process.stdin.setEncoding("utf8")
let stdinLine = ""
process.stdin.on("data", (data) => {
  const lines = (stdinLine + data).split("\n")
  stdinLine = lines.pop()
  for (const line of lines) command(line.trim())
})

let watch = null
const command = (name) => {
  if (name === "watch") {
    watch?.stop()
    watch = startWatch()
    process.stdout.write(`${JSON.stringify({ reply: "watch" })}\n`)
  } else if (name === "report") {
    const report = watch?.stop() ?? { error: "no watch" }
    watch = null
    process.stdout.write(`${JSON.stringify({ reply: "report", ...report })}\n`)
  }
}

/**
 * Heap and event-loop watch of the mass close: samples every 5 ms (a sample cannot land inside a
 * stall, so a peak reached and collected within one stall is missed; the stall itself is not).
 */
const startWatch = () => {
  const steady = process.memoryUsage()
  let heapPeak = steady.heapUsed
  let rssPeak = steady.rss
  const delay = monitorEventLoopDelay({ resolution: 5 })
  delay.enable()
  const start = performance.now()
  let last = start
  let gapMax = 0
  let gapAt = 0
  const sample = () => {
    // The longest time between two samples, and when it began: where in the close the stall was.
    const now = performance.now()
    if (now - last > gapMax) {
      gapMax = now - last
      gapAt = last - start
    }
    last = now
    const m = process.memoryUsage()
    if (m.heapUsed > heapPeak) heapPeak = m.heapUsed
    if (m.rss > rssPeak) rssPeak = m.rss
  }
  const timer = setInterval(sample, 5)
  return {
    stop: () => {
      sample()
      clearInterval(timer)
      delay.disable()
      const now = process.memoryUsage()
      return {
        heapSteady: steady.heapUsed,
        heapPeak,
        heapEnd: now.heapUsed,
        rssSteady: steady.rss,
        rssPeak,
        rssEnd: now.rss,
        stallMaxMs: delay.max / 1e6,
        stallP99Ms: delay.percentile(99) / 1e6,
        sampleGapMaxMs: gapMax,
        sampleGapAtMs: gapAt
      }
    }
  }
}

export const ready = (target, port, info = {}) => {
  if (inspector !== null) {
    session = new inspector.Session()
    session.connect()
    session.post("Profiler.enable")
    session.post("Profiler.setSamplingInterval", { interval: Number(process.env.BENCH_CPU_PROFILE_INTERVAL ?? 200) })
    session.post("Profiler.start")
  }
  process.stdout.write(`${JSON.stringify({ target, port, pid: process.pid, deflate, ...info })}\n`)
}
