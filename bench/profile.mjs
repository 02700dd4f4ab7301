/**
 * Where the time goes: runs one echo case against one target under V8's sampling CPU profiler (the
 * one behind `node --cpu-prof`, started through `node:inspector` once the server listens, so that
 * start-up is left out), then summarizes the profile: self time by area and by function, and
 * inclusive time by function.
 *
 *   node bench/profile.mjs [--target ours] [--size 16] [--conns 64] [--inflight 16] [--text]
 *        [--deflate] [--handshakes] [--duration 4000] [--top 25] [--skip-ms 1000] [--profile FILE]
 *
 * `--profile FILE` summarizes an existing profile instead (also one of `node --cpu-prof`); `--skip-ms`
 * leaves out the first milliseconds of samples (connection set-up and warm-up).
 *
 * Profiles are written to bench/.build/profiles/ (open them in Chrome DevTools or speedscope for a
 * flame graph).
 */
import { existsSync, mkdirSync, readFileSync } from "node:fs"
import { join, relative } from "node:path"
import { BUILD, buildLoadgen, killAll, ROOT, runLoadgen, startServer } from "./lib.mjs"

const argv = process.argv.slice(2)
const opt = (name, fallback) => {
  const i = argv.indexOf(name)
  return i >= 0 && i + 1 < argv.length ? argv[i + 1] : fallback
}
const target = opt("--target", "ours")
const size = Number(opt("--size", "16"))
const conns = Number(opt("--conns", "64"))
const inflight = Number(opt("--inflight", "16"))
const duration = Number(opt("--duration", "4000"))
const top = Number(opt("--top", "25"))
const skipMs = Number(opt("--skip-ms", "500"))
const text = argv.includes("--text")
const deflate = argv.includes("--deflate")

/** Groups a profile node into an area: our library, Effect, Node internals, V8 pseudo-frames. */
const areaOf = ({ functionName, url }) => {
  if (url === "") return functionName.startsWith("(") ? functionName : "(native / builtin)"
  if (url.includes("/node_modules/effect/")) return "effect"
  if (url.includes("/node_modules/")) return url.split("/node_modules/")[1].split("/")[0]
  if (url.includes("/dist/")) return `ours ${url.slice(url.indexOf("/dist/") + 6)}`
  if (url.startsWith("node:")) return url.replace(/^node:internal\//, "node:")
  if (url.includes("/bench/")) return "bench"
  return url
}

const label = ({ functionName, url, lineNumber }) => {
  const where = url === "" ? "" : ` ${url.replace(/^file:\/\//, "").replace(`${ROOT}/`, "")}:${lineNumber + 1}`
  return `${functionName || "(anonymous)"}${where}`
}

export const summarize = (profile, count = 25, skipMs = 0) => {
  const nodes = new Map(profile.nodes.map((n) => [n.id, n]))
  // Self time per node from the sample timeline (more exact than hitCount × average interval);
  // the first `skipMs` (start-up: module loading and compilation) are left out.
  const self = new Map()
  let total = 0
  let t = 0
  for (let i = 0; i < profile.samples.length; i++) {
    const dt = profile.timeDeltas[i + 1] ?? 0
    t += profile.timeDeltas[i] ?? 0
    if (t < skipMs * 1e3) continue
    self.set(profile.samples[i], (self.get(profile.samples[i]) ?? 0) + dt)
    total += dt
  }
  const idle = [...nodes.values()]
    .filter((n) => n.callFrame.functionName === "(idle)")
    .reduce((sum, n) => sum + (self.get(n.id) ?? 0), 0)
  const busy = total - idle
  const byFunction = new Map()
  const byArea = new Map()
  for (const [id, us] of self) {
    const frame = nodes.get(id).callFrame
    if (frame.functionName === "(idle)") continue
    const key = label(frame)
    byFunction.set(key, (byFunction.get(key) ?? 0) + us)
    const area = areaOf(frame)
    byArea.set(area, (byArea.get(area) ?? 0) + us)
  }
  // Inclusive time per function, counting a function once per stack (recursion).
  const children = new Map(profile.nodes.map((n) => [n.id, n.children ?? []]))
  const inclusive = new Map()
  const walk = (id, onStack) => {
    const node = nodes.get(id)
    let sum = self.get(id) ?? 0
    const key = label(node.callFrame)
    const fresh = !onStack.has(key)
    if (fresh) onStack.add(key)
    for (const child of children.get(id)) sum += walk(child, onStack)
    if (fresh) {
      onStack.delete(key)
      if (node.callFrame.functionName !== "(root)" && node.callFrame.functionName !== "(idle)")
        inclusive.set(key, (inclusive.get(key) ?? 0) + sum)
    }
    return sum
  }
  walk(profile.nodes[0].id, new Set())
  const sorted = (map) => [...map.entries()].sort((a, b) => b[1] - a[1]).slice(0, count)
  const pct = (us) => `${((100 * us) / busy).toFixed(1).padStart(5)}%`
  const lines = [
    `profile: ${(total / 1e3).toFixed(0)} ms sampled, ${(busy / 1e3).toFixed(0)} ms busy (percentages of busy)`
  ]
  lines.push("", "self time by area:")
  for (const [k, us] of sorted(byArea)) lines.push(`  ${pct(us)}  ${k}`)
  lines.push("", "self time by function:")
  for (const [k, us] of sorted(byFunction)) lines.push(`  ${pct(us)}  ${k}`)
  lines.push("", "inclusive time by function:")
  for (const [k, us] of sorted(inclusive)) lines.push(`  ${pct(us)}  ${k}`)
  return lines.join("\n")
}

const main = async () => {
  const existing = opt("--profile", null)
  if (existing !== null) {
    console.log(summarize(JSON.parse(readFileSync(existing, "utf8")), top, skipMs))
    return
  }
  const loadgen = buildLoadgen()
  if (!loadgen.ok) throw new Error(loadgen.note)
  const dir = join(BUILD, "profiles")
  mkdirSync(dir, { recursive: true })
  const file = join(dir, `${target}-${size}B-${conns}c${deflate ? "-deflate" : ""}-${Date.now()}.cpuprofile`)
  const server = await startServer(target, {
    deflate,
    env: { BENCH_CPU_PROFILE: file, BENCH_CPU_PROFILE_INTERVAL: "200" }
  })
  // `--handshakes`: connect–handshake–close cycles (`--conns` in flight) instead of echoes.
  const args = argv.includes("--handshakes")
    ? ["handshake", "--port", server.port, "--pid", server.pid, "--conns", conns]
    : ["echo", "--port", server.port, "--pid", server.pid, "--conns", conns, "--inflight", inflight, "--size", size]
  args.push("--warmup", 500, "--duration", duration)
  if (text) args.push("--text")
  if (deflate) args.push("--deflate")
  const result = await runLoadgen(args.map(String), duration + 15_000)
  console.log(JSON.stringify(result))
  await server.stop(10_000)
  if (!existsSync(file)) throw new Error("no profile written")
  console.log(`profile file: ${relative(ROOT, file)}`)
  console.log(summarize(JSON.parse(readFileSync(file, "utf8")), top, skipMs))
}

main()
  .catch((error) => {
    console.error(error?.stack ?? error)
    process.exitCode = 1
  })
  .finally(killAll)
