/**
 * Shared plumbing of the benchmark target servers: argument parsing, the ready line, and the ways
 * run.mjs controls a server (it never relies on anything else to stop one).
 *
 * - First stdout line: `{"target","port","pid",...}` once listening on 127.0.0.1.
 * - SIGTERM / SIGINT: exit at once (writing the CPU profile first when BENCH_CPU_PROFILE is set).
 * - stdin EOF: the parent went away (even if killed), so exit too: no orphaned servers.
 * - SIGUSR2: run a full GC when started with `--expose-gc` (memory measurements).
 */
import { writeFileSync } from "node:fs"

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
process.stdin.resume()

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
