/**
 * Fan-out load: `subs` subscriber connections spread over the servers on `--ports`, and one
 * publisher connection on the first, which sends `size`-byte binary messages that the server
 * publishes to every subscriber. Raw sockets and a minimal frame counter, so that the client costs
 * little next to the servers. Flow control: the publisher keeps at most `window` messages ahead of
 * the average subscriber (skipped deliveries are simply not counted).
 *
 * Prints one JSON line: delivered messages per second (over all subscribers), published messages
 * per second, and the servers' CPU microseconds per delivered message (/proc of `--pids`, summed).
 *
 *   node bench/clients/fanout.mjs --ports P1[,P2] --pids PID1[,PID2] [--subs N] [--size S]
 *        [--window W] [--warmup MS] [--duration MS]
 */
import { randomBytes } from "node:crypto"
import * as net from "node:net"
import { procCpuUs } from "../lib.mjs"

const argv = process.argv.slice(2)
const opt = (name, fallback) => {
  const i = argv.indexOf(name)
  return i >= 0 && i + 1 < argv.length ? argv[i + 1] : fallback
}
const ports = opt("--ports", "").split(",").map(Number)
const pids = opt("--pids", "").split(",").filter(Boolean).map(Number)
const subs = Number(opt("--subs", "1000"))
const size = Number(opt("--size", "16"))
const window = Number(opt("--window", "32"))
const warmup = Number(opt("--warmup", "500"))
const duration = Number(opt("--duration", "2000"))

const fail = (error) => {
  process.stdout.write(`${JSON.stringify({ ok: false, error: String(error) })}\n`)
  process.exit(1)
}
setTimeout(() => fail("timed out"), 60_000 + warmup + duration).unref()

const handshake = (port, path) =>
  new Promise((resolve, reject) => {
    const socket = net.connect({ host: "127.0.0.1", port })
    socket.setNoDelay(true)
    socket.once("error", reject)
    socket.once("connect", () =>
      socket.write(
        `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
          `Sec-WebSocket-Key: ${randomBytes(16).toString("base64")}\r\nSec-WebSocket-Version: 13\r\n\r\n`
      )
    )
    let head = Buffer.alloc(0)
    const onData = (chunk) => {
      head = Buffer.concat([head, chunk])
      const end = head.indexOf("\r\n\r\n")
      if (end < 0) return
      socket.off("data", onData)
      if (!head.subarray(0, 12).toString().includes("101")) return reject(new Error(head.toString()))
      resolve({ socket, rest: head.subarray(end + 4) })
    }
    socket.on("data", onData)
  })

let delivered = 0

/** Counts the unmasked frames a server sends: a header parser carried across chunks. */
const headerLength = (len7) => (len7 === 126 ? 4 : len7 === 127 ? 10 : 2)
const payloadLength = (buf, at) => {
  const len7 = buf[at + 1] & 0x7f
  return len7 === 126 ? buf.readUInt16BE(at + 2) : len7 === 127 ? Number(buf.readBigUInt64BE(at + 2)) : len7
}
const counter = () => {
  const partial = Buffer.alloc(10)
  let partialLength = 0
  let remaining = 0
  return (chunk) => {
    let i = 0
    const n = chunk.length
    while (i < n) {
      if (remaining > 0) {
        const take = Math.min(remaining, n - i)
        remaining -= take
        i += take
        if (remaining === 0) delivered++
        continue
      }
      let length
      if (partialLength === 0 && n - i >= 10) {
        length = payloadLength(chunk, i)
        i += headerLength(chunk[i + 1] & 0x7f)
      } else {
        // A header split across chunks: gather it byte by byte.
        partial[partialLength++] = chunk[i++]
        if (partialLength < 2 || partialLength < headerLength(partial[1] & 0x7f)) continue
        length = payloadLength(partial, 0)
        partialLength = 0
      }
      if (length === 0) delivered++
      else remaining = length
    }
  }
}

const main = async () => {
  const subscribers = []
  for (let i = 0; i < subs; i += 50) {
    const batch = []
    for (let j = i; j < Math.min(subs, i + 50); j++) batch.push(handshake(ports[j % ports.length], "/sub"))
    subscribers.push(...(await Promise.all(batch)))
  }
  for (const { socket, rest } of subscribers) {
    const count = counter()
    if (rest.length > 0) count(rest)
    socket.on("data", (chunk) => {
      count(chunk)
      schedulePump()
    })
  }
  const publisher = (await handshake(ports[0], "/pub")).socket
  // Masked with an all-zero key: the payload goes as it is.
  const frame = Buffer.alloc((size < 126 ? 6 : 8) + size, 0x61)
  frame[0] = 0x82
  if (size < 126) {
    frame[1] = 0x80 | size
    frame.fill(0, 2, 6)
  } else {
    frame[1] = 0x80 | 126
    frame.writeUInt16BE(size, 2)
    frame.fill(0, 4, 8)
  }
  let published = 0
  let lastProgress = performance.now()
  let lastDelivered = 0
  let pending = false
  const pump = () => {
    pending = false
    const now = performance.now()
    if (delivered !== lastDelivered) {
      lastDelivered = delivered
      lastProgress = now
    } else if (now - lastProgress > 200) {
      // Deliveries were skipped (a buffer over writeLimit): resume from what arrived.
      published = Math.floor(delivered / subs)
      lastProgress = now
    }
    const batch = []
    while (published - delivered / subs < window) {
      batch.push(frame)
      published++
    }
    if (batch.length > 0) publisher.write(batch.length === 1 ? batch[0] : Buffer.concat(batch))
  }
  const schedulePump = () => {
    if (pending) return
    pending = true
    setImmediate(pump)
  }
  const ticker = setInterval(schedulePump, 50)
  pump()
  await new Promise((resolve) => setTimeout(resolve, warmup))
  const d0 = delivered
  const p0 = published
  const cpu0 = pids.map(procCpuUs)
  const t0 = performance.now()
  await new Promise((resolve) => setTimeout(resolve, duration))
  const seconds = (performance.now() - t0) / 1e3
  const cpu1 = pids.map(procCpuUs)
  const count = delivered - d0
  clearInterval(ticker)
  const serverCpuUs = cpu1.reduce((sum, c, i) => sum + (c - cpu0[i]), 0)
  process.stdout.write(
    `${JSON.stringify({
      ok: count > 0,
      ...(count > 0 ? {} : { error: "nothing delivered" }),
      rate: count / seconds,
      publishedRate: (published - p0) / seconds,
      serverCpuUsPerMsg: count > 0 ? serverCpuUs / count : null,
      serverCpuShare: serverCpuUs / 1e6 / seconds
    })}\n`
  )
  process.exit(0)
}

main().catch(fail)
