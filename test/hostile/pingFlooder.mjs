/**
 * The attacker of test/hostile/pingFlood.test.ts, in its own process so that the test's peak RSS
 * counts only our side: `connections` raw peers that send pings (125 bytes, 500 per write) as fast
 * as TCP allows, waiting for 'drain' like a TCP sender, never reading, until `limit` bytes each.
 *
 *   node pingFlooder.mjs client <port> <connections> <limit>   raw clients against our server
 *   node pingFlooder.mjs server 0 <connections> <limit>        a raw server for our clients
 *
 * Reports over IPC: `{ listening: port }` (server mode), `{ open: n }` once all connections are
 * open, then `{ written, done }` after every write (bytes written by all, connections at their
 * limit). Own frame encoder, as the other hostile tests' (not src/Frames.ts). Exits on disconnect.
 */
import { createHash, randomBytes } from "node:crypto"
import * as net from "node:net"
import { write } from "./flooderSocket.mjs"

const [mode, portArg, connectionsArg, limitArg] = process.argv.slice(2)
const connections = Number(connectionsArg)
const limit = Number(limitArg)
const masked = mode === "client"

/** A ping of 125 bytes of `fill`, masked with a random key when sent by a client. */
const ping = (fill) => {
  const payload = Buffer.alloc(125, fill)
  if (!masked) return Buffer.concat([Buffer.from([0x89, 125]), payload])
  const key = randomBytes(4)
  const out = Buffer.alloc(6 + 125)
  out[0] = 0x89
  out[1] = 0x80 | 125
  key.copy(out, 2)
  for (let i = 0; i < 125; i++) out[6 + i] = payload[i] ^ key[i & 3]
  return out
}
const pings = Buffer.concat(Array.from({ length: 500 }, (_, i) => ping(i & 0xff)))

const sockets = []
let written = 0
let done = 0

const flood = async (socket) => {
  let mine = 0
  while (mine < limit && !socket.destroyed) {
    await write(socket, pings)
    mine += pings.length
    written += pings.length
    if (mine >= limit) done++
    if (process.connected) process.send({ written, done })
  }
}

/** Completes once the socket received an HTTP head; returns it. */
const head = (socket) =>
  new Promise((resolve, reject) => {
    let buffer = ""
    const onData = (chunk) => {
      buffer += chunk.toString("latin1")
      const end = buffer.indexOf("\r\n\r\n")
      if (end < 0) return
      socket.off("data", onData)
      resolve(buffer.slice(0, end))
    }
    socket.on("data", onData)
    socket.on("error", reject)
  })

const opened = (socket) => {
  // Never read what the peer answers: its pongs back up through both kernels' buffers.
  socket.pause()
  sockets.push(socket)
  if (sockets.length === connections) {
    if (process.connected) process.send({ open: connections })
    for (const s of sockets) flood(s)
  }
}

if (mode === "client") {
  for (let i = 0; i < connections; i++) {
    const socket = net.connect({ host: "127.0.0.1", port: Number(portArg) })
    socket.on("error", () => {})
    const key = randomBytes(16).toString("base64")
    socket.write(
      `GET / HTTP/1.1\r\nHost: 127.0.0.1:${portArg}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
        `Sec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n\r\n`
    )
    head(socket).then((response) => {
      if (!response.startsWith("HTTP/1.1 101")) throw new Error(`handshake failed: ${response}`)
      opened(socket)
    })
  }
} else {
  const server = net.createServer(async (socket) => {
    socket.on("error", () => {})
    const request = await head(socket)
    const key = /sec-websocket-key:\s*(\S+)/i.exec(request)?.[1] ?? ""
    const accept = createHash("sha1").update(`${key}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`).digest("base64")
    socket.write(
      "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
        `Sec-WebSocket-Accept: ${accept}\r\n\r\n`
    )
    opened(socket)
  })
  server.listen(0, "127.0.0.1", () => {
    if (process.connected) process.send({ listening: server.address().port })
  })
}

process.on("disconnect", () => {
  for (const socket of sockets) socket.destroy()
  process.exit(0)
})
