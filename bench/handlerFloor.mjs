/**
 * What Effect itself costs a connection's reader, without this library (issue 26): F fibers each
 * wait for a wake-up (an `Effect.async`/`Effect.callback` without canceler, as `recv` and
 * `forEachMessage` wait) and handle one element per wake-up, either in a plain loop (a fiber per
 * connection) or as `Stream.runForEach` over a stream that emits one chunk per wake-up (the
 * `messages` Stream). Reports the heap each waiting reader holds and CPU µs per wake-up; then what
 * one reader costs from start to end (what a handler costs each connection, a short one included):
 * started, woken once, ended, `fibers` at a time (2026-12-07, Node 20: in Effect 3.22 a loop costs
 * 4.7 µs, `Stream.runForEach` 286 µs, 205 over `Stream.empty`; in Effect 4.1 on Node 24, 1.1 and 3.0).
 *
 *   node --expose-gc bench/handlerFloor.mjs [--effect 3|4] [--fibers 64] [--rounds 20000] [--runs 20000]
 *        [--size S]
 *
 * `--effect 4` loads the Effect 4 of the effect4 workspace (Node ≥ 22.12).
 */
const argv = process.argv.slice(2)
const opt = (name, fallback) => {
  const i = argv.indexOf(name)
  return i >= 0 && i + 1 < argv.length ? argv[i + 1] : fallback
}
const major = opt("--effect", "3")
const fibers = Number(opt("--fibers", 64))
const rounds = Number(opt("--rounds", 20000))
const runs = Number(opt("--runs", 20000))
// `--size S`: each wake-up brings a new S-byte Buffer (a message) instead of a constant.
const size = Number(opt("--size", 0))
if (typeof global.gc !== "function") throw new Error("run with node --expose-gc")

const { Chunk, Channel, Effect, Stream } =
  major === "4" ? await import("../effect4/node_modules/effect/dist/index.js") : await import("effect")

let readers = []
let handled = 0
const wait =
  major === "4"
    ? Effect.callback((resume) => {
        readers.push(() => resume(Effect.void))
      })
    : Effect.async((resume) => {
        readers.push(() => resume(Effect.void))
      })
// The element is dropped, as a handler that has used it drops it.
const handle = (_element) => {
  handled++
  return Effect.void
}
const element = () => (size > 0 ? Buffer.alloc(size) : 1)
const loop = Effect.suspend(() => Effect.flatMap(wait, () => Effect.flatMap(handle(element()), () => loop)))
const stream =
  major === "4"
    ? Stream.fromPull(Effect.succeed(Effect.flatMap(wait, () => Effect.sync(() => [element()]))))
    : Stream.fromChannel(
        Channel.suspend(function pull() {
          return Channel.flatMap(Channel.fromEffect(wait), () =>
            Channel.flatMap(Channel.write(Chunk.of(element())), () => Channel.suspend(pull))
          )
        })
      )
const styles = { loop, stream: Stream.runForEach(stream, handle) }

const heap = () => {
  global.gc()
  global.gc()
  return process.memoryUsage().heapUsed
}
const tick = () => new Promise((resolve) => setImmediate(resolve))

for (const [style, program] of Object.entries(styles)) {
  readers = []
  handled = 0
  const before = heap()
  // Left waiting when done: the next style's heap is measured from its own start.
  for (let i = 0; i < fibers; i++) Effect.runFork(program)
  await tick()
  const idleKiB = (heap() - before) / fibers / 1024
  const cpu = process.cpuUsage()
  for (let r = 0; r < rounds; r++) {
    const waiting = readers
    readers = []
    for (const wake of waiting) wake()
    await tick()
  }
  const used = process.cpuUsage(cpu)
  const usPerWake = (used.user + used.system) / handled
  console.log(
    `Effect ${major} ${style.padEnd(6)} ${idleKiB.toFixed(2).padStart(6)} KiB per waiting reader  ${usPerWake.toFixed(2).padStart(6)} µs per wake-up  (${fibers} fibers, ${handled} wake-ups)`
  )
}
// One reader's life: started, woken once (its element handled), ended; `fibers` at a time.
let wakes = 0
const once = (signal) => {
  const readOnce = Effect.flatMap(wait, () => Effect.sync(() => wakes++))
  return signal === "loop"
    ? readOnce
    : Stream.runForEach(Stream.take(Stream.fromEffect(readOnce), 1), () => Effect.void)
}
const lives = {
  loop: once("loop"),
  stream: once("stream"),
  "stream of nothing": Stream.runForEach(Stream.empty, handle)
}
for (const [style, program] of Object.entries(lives)) {
  for (let pass = 0; pass < 2; pass++) {
    const cpu = process.cpuUsage()
    for (let started = 0; started < runs; started += fibers) {
      readers = []
      const running = []
      for (let i = 0; i < fibers; i++) running.push(Effect.runPromise(program))
      await tick()
      for (const wake of readers) wake()
      await Promise.all(running)
    }
    const used = process.cpuUsage(cpu)
    // The first pass warms the JIT up.
    if (pass === 1)
      console.log(
        `Effect ${major} ${style.padEnd(17)} ${((used.user + used.system) / runs).toFixed(2).padStart(7)} µs per reader from start to end  (${runs} readers, ${fibers} at a time)`
      )
  }
}
process.exit(0)
