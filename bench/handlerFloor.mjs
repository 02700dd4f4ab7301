/**
 * What Effect itself costs a connection's reader, without this library (issue 26): F fibers each
 * wait for a wake-up (an `Effect.async`/`Effect.callback` without canceler, as `recv` and
 * `forEachMessage` wait) and handle one element per wake-up, either in a plain loop (a fiber per
 * connection) or as `Stream.runForEach` over a stream that emits one chunk per wake-up (the
 * `messages` Stream). Reports the heap each waiting reader holds and CPU µs per wake-up.
 *
 *   node --expose-gc bench/handlerFloor.mjs [--effect 3|4] [--fibers 64] [--rounds 20000]
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
const handle = () => {
  handled++
  return Effect.void
}
const loop = Effect.suspend(() => Effect.flatMap(wait, () => Effect.flatMap(handle(), () => loop)))
const one = [1]
const stream =
  major === "4"
    ? Stream.fromPull(Effect.succeed(Effect.flatMap(wait, () => Effect.succeed(one))))
    : Stream.fromChannel(
        Channel.suspend(function pull() {
          return Channel.flatMap(Channel.fromEffect(wait), () =>
            Channel.flatMap(Channel.write(Chunk.unsafeFromArray(one)), () => Channel.suspend(pull))
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
process.exit(0)
