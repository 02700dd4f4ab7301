/**
 * Client-side throughput: our client or the `ws` client (with bufferutil) against the plain echo
 * server (bench/servers/plain.mjs). Each of `conns` connections keeps `inflight` messages
 * outstanding and sends the next one when an echo arrives. Prints one JSON line: messages per
 * second and the client's own CPU microseconds per message (process.cpuUsage, every thread).
 *
 * `--lib ours` reads with the `messages` Stream (`Stream.runForEach`), as the seeds' API reads;
 * `--lib ours-loop` with `ws.forEachMessage`, a plain loop of Effects (issue 15: what the Stream
 * machinery costs per message).
 *
 *   node bench/clients/client.mjs --lib ours|ours-loop|ws --port P [--conns N] [--inflight K] [--size S]
 *        [--text] [--warmup MS] [--duration MS]
 */
import { Effect, Stream } from "effect"
import WebSocket from "ws"
import { Client } from "../../dist/index.js"

const argv = process.argv.slice(2)
const opt = (name, fallback) => {
  const i = argv.indexOf(name)
  return i >= 0 && i + 1 < argv.length ? argv[i + 1] : fallback
}
const lib = opt("--lib", "ours")
const port = Number(opt("--port", "0"))
const conns = Number(opt("--conns", "1"))
const inflight = Number(opt("--inflight", "16"))
const size = Number(opt("--size", "16"))
const text = argv.includes("--text")
const warmup = Number(opt("--warmup", "500"))
const duration = Number(opt("--duration", "2000"))
const MAX_SIZE = 32 * 1024 * 1024
const uri = `ws://127.0.0.1:${port}/`

// Same pseudo-text as the C load generator: ASCII, so valid UTF-8 for text messages.
const bytes = Buffer.alloc(size)
for (let i = 0; i < size; i++) bytes[i] = 97 + ((i * 7 + (i >> 3)) % 26)
const payload = text ? bytes.toString("latin1") : new Uint8Array(bytes)

let received = 0
const fail = (error) => {
  process.stdout.write(`${JSON.stringify({ ok: false, lib, error: String(error?.message ?? error) })}\n`)
  process.exit(1)
}
setTimeout(() => fail("timeout"), warmup + duration + 15000).unref()

/** Opens the connections, starts the traffic; resolves when traffic flows. */
const startWs = () =>
  Promise.all(
    Array.from(
      { length: conns },
      () =>
        new Promise((resolve, reject) => {
          const ws = new WebSocket(uri, { perMessageDeflate: false, maxPayload: MAX_SIZE })
          ws.on("error", reject)
          ws.on("open", () => {
            ws.on("message", () => {
              received++
              ws.send(payload)
            })
            for (let i = 0; i < inflight; i++) ws.send(payload)
            resolve()
          })
        })
    )
  )

const startOurs = () =>
  new Promise((resolve) => {
    const one = Effect.gen(function* () {
      const ws = yield* Client.connect(uri, { compression: null, pingInterval: null, maxSize: MAX_SIZE })
      for (let i = 0; i < inflight; i++) yield* ws.send(payload)
      return ws
    })
    const program = Effect.gen(function* () {
      const sockets = yield* Effect.forEach(Array.from({ length: conns }), () => one, { concurrency: "unbounded" })
      resolve()
      yield* Effect.forEach(
        sockets,
        (ws) =>
          lib === "ours-loop"
            ? ws.forEachMessage(() => {
                received++
                return ws.send(payload)
              })
            : Stream.runForEach(ws.messages, () => {
                received++
                return ws.send(payload)
              }),
        { concurrency: "unbounded", discard: true }
      )
    })
    // Any end of the program is a failure: the traffic never stops by itself.
    Effect.runPromise(Effect.scoped(program)).then(() => fail("connection closed"), fail)
  })

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

const main = async () => {
  const t = performance.now()
  await (lib === "ws" ? startWs() : startOurs())
  const connectMs = performance.now() - t
  await sleep(warmup)
  const m0 = received
  const c0 = process.cpuUsage()
  const t0 = performance.now()
  await sleep(duration)
  const m = received - m0
  const c = process.cpuUsage(c0)
  const seconds = (performance.now() - t0) / 1e3
  const cpu = c.user + c.system
  process.stdout.write(
    `${JSON.stringify({
      ok: true,
      lib,
      conns,
      inflight,
      size,
      text,
      messages: m,
      seconds,
      rate: m / seconds,
      clientCpuUs: cpu,
      clientCpuUsPerMsg: m > 0 ? cpu / m : -1,
      clientCpuShare: cpu / 1e6 / seconds,
      connectMs
    })}\n`
  )
  process.exit(0)
}

main().catch(fail)
