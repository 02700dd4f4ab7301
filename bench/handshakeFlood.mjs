/**
 * The handshake flood of issue 23, bounded, over loopback: HOLDERS connections send an upgrade
 * request and then nothing, SENDERS send one 1 MiB binary message each and never read, opened 200
 * at a time against a bench target (bench/servers: `ours`, the README echo; `ws`; `wsEffect`, `ws`
 * with the `effect` barrel loaded and no Effect code run). Prints one JSON
 * line per run: how long the flood took, failed handshakes, and the server's heap when the flood
 * started and at its peak (the targets' `watch`/`report`), its peak RSS and longest event-loop stall.
 * Stops by itself (two minutes at most). Run after `npm run build`:
 *   node bench/handshakeFlood.mjs [ours|ws|wsEffect] [HOLDERS=5000] [SENDERS=300]
 */
import { spawn } from "node:child_process"
import { randomBytes } from "node:crypto"
import * as net from "node:net"
import { fileURLToPath } from "node:url"

const MiB = 1024 * 1024
const BATCH = 200
const target = process.argv[2] ?? "ours"
const holders = Number(process.argv[3] ?? 5000)
const senders = Number(process.argv[4] ?? 300)

const server = spawn(
  process.execPath,
  ["--expose-gc", fileURLToPath(new URL(`./servers/${target}.mjs`, import.meta.url))],
  { stdio: ["pipe", "pipe", "inherit"] }
)
const hardStop = setTimeout(() => {
  console.log(JSON.stringify({ target, error: "timed out" }))
  server.kill("SIGKILL")
  process.exit(2)
}, 120_000)

// The target's JSON lines (its ready line, then replies), in order; other lines are skipped.
let pending = ""
const waiters = []
server.stdout.on("data", (chunk) => {
  pending += chunk
  for (let end = pending.indexOf("\n"); end >= 0; end = pending.indexOf("\n")) {
    const line = pending.slice(0, end)
    pending = pending.slice(end + 1)
    if (line.startsWith("{")) waiters.shift()?.(JSON.parse(line))
  }
})
const nextLine = () => new Promise((resolve) => waiters.push(resolve))

const upgradeRequest = () =>
  "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
  `Sec-WebSocket-Key: ${randomBytes(16).toString("base64")}\r\nSec-WebSocket-Version: 13\r\n\r\n`
/** One masked 1 MiB binary frame (a zero mask key: the payload is sent as is). */
const message = Buffer.concat([
  Buffer.from([0x82, 0x80 | 127, 0, 0, 0, 0, 0, 0x10, 0, 0, 0, 0, 0, 0]),
  Buffer.alloc(MiB)
])

const { port } = await nextLine()
server.stdin.write("watch\n")
await nextLine()

const sockets = []
let failed = 0
/** Resolves once the handshake got its answer (or failed); a sender then writes and stops reading. */
const connect = (sends) =>
  new Promise((resolve) => {
    const socket = net.connect({ host: "127.0.0.1", port })
    sockets.push(socket)
    let answered = false
    const fail = () => {
      if (answered) return
      answered = true
      failed++
      resolve()
    }
    socket.on("error", fail)
    socket.on("close", fail)
    socket.on("connect", () => socket.write(upgradeRequest()))
    socket.on("data", (chunk) => {
      if (answered) return
      answered = true
      if (!chunk.toString("latin1").startsWith("HTTP/1.1 101")) failed++
      if (sends) {
        socket.write(message)
        socket.pause()
      }
      resolve()
    })
  })

const total = holders + senders
const every = Math.max(1, Math.floor(total / Math.max(1, senders)))
const started = performance.now()
let sent = 0
for (let first = 0; first < total; first += BATCH) {
  const batch = []
  for (let i = first; i < Math.min(total, first + BATCH); i++) {
    const sends = sent < senders && i % every === 0
    if (sends) sent++
    batch.push(connect(sends))
  }
  await Promise.all(batch)
}
const seconds = (performance.now() - started) / 1000
// Let the senders' messages arrive before the peak is read.
await new Promise((resolve) => setTimeout(resolve, 1000))
server.stdin.write("report\n")
const report = await nextLine()
const mib = (bytes) => Math.round((bytes / MiB) * 10) / 10
console.log(
  JSON.stringify({
    target,
    holders,
    senders: sent,
    seconds: Math.round(seconds * 100) / 100,
    failed,
    heapSteadyMiB: mib(report.heapSteady),
    heapPeakMiB: mib(report.heapPeak),
    rssPeakMiB: mib(report.rssPeak),
    stallMaxMs: Math.round(report.stallMaxMs)
  })
)
for (const socket of sockets) socket.destroy()
clearTimeout(hardStop)
server.kill("SIGTERM")
setTimeout(() => process.exit(0), 200)
