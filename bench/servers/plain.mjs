/**
 * Target: the ceiling. A plain `node:net` server that answers the opening handshake and echoes
 * every frame back unmasked, as it arrives, with no validation, no buffering of messages and no
 * extensions: it parses frame headers, unmasks payload chunks in place (bufferutil when the chunk
 * is large enough to be worth a native call) and writes every reply of one read in a single write
 * (one copied buffer when small, a writev of the pieces when large).
 * Also the fixed echo server of the client-side benchmark.
 */
import { createHash } from "node:crypto"
import { createRequire } from "node:module"
import * as net from "node:net"
import { ready } from "./common.mjs"

const require = createRequire(import.meta.url)
const GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
const NATIVE_THRESHOLD = 32
/** Replies up to this size are copied into one buffer; larger ones go out as a writev of their pieces. */
const COPY_LIMIT = 16384

let nativeUnmask = null
try {
  nativeUnmask = require("bufferutil").unmask
} catch {}

const rotated = Buffer.alloc(4)
/** XORs `buf` with `key`, where buf[0] pairs with key[keyPos]. */
const unmask = (buf, key, keyPos) => {
  const n = buf.length
  if (nativeUnmask !== null && n >= NATIVE_THRESHOLD) {
    for (let i = 0; i < 4; i++) rotated[i] = key[(keyPos + i) & 3]
    nativeUnmask(buf, rotated)
    return
  }
  for (let i = 0; i < n; i++) buf[i] ^= key[(keyPos + i) & 3]
}

const replyHeader = (b0, len) => {
  if (len < 126) return Buffer.from([b0, len])
  if (len < 65536) return Buffer.from([b0, 126, len >> 8, len & 255])
  const h = Buffer.alloc(10)
  h[0] = b0
  h[1] = 127
  h.writeUIntBE(len, 4, 6)
  return h
}

const onSocket = (socket) => {
  socket.setNoDelay(true)
  socket.on("error", () => {})
  let handshake = Buffer.alloc(0)
  let upgraded = false
  // Frame parser state.
  const hdr = Buffer.alloc(14)
  let hlen = 0
  let left = 0
  const key = Buffer.alloc(4)
  let keyPos = 0
  let opcode = 0
  let closing = false

  socket.on("data", (chunk) => {
    if (!upgraded) {
      handshake = Buffer.concat([handshake, chunk])
      const end = handshake.indexOf("\r\n\r\n")
      if (end < 0) {
        if (handshake.length > 16384) socket.destroy()
        return
      }
      const match = /^sec-websocket-key:[ \t]*(\S+)/im.exec(handshake.subarray(0, end).toString("latin1"))
      if (match === null) return socket.end("HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n")
      const accept = createHash("sha1")
        .update(match[1] + GUID)
        .digest("base64")
      socket.write(
        `HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n\r\n`
      )
      upgraded = true
      chunk = handshake.subarray(end + 4)
      handshake = null
    }
    const out = []
    let outBytes = 0
    let pos = 0
    const n = chunk.length
    while (pos < n && !closing) {
      if (left > 0) {
        const take = Math.min(left, n - pos)
        const part = chunk.subarray(pos, pos + take)
        unmask(part, key, keyPos)
        keyPos = (keyPos + take) & 3
        left -= take
        pos += take
        if (opcode !== 10) {
          out.push(part)
          outBytes += take
        }
        if (left === 0 && opcode === 8) closing = true
        continue
      }
      // Header: in place when it is whole in this chunk, byte by byte across chunks otherwise.
      let h
      let start
      if (hlen === 0 && n - pos >= 2) {
        const len7 = chunk[pos + 1] & 127
        const need = 2 + (len7 === 126 ? 2 : len7 === 127 ? 8 : 0) + 4
        if (n - pos >= need) {
          h = chunk
          start = pos
          pos += need
        }
      }
      if (h === undefined) {
        hdr[hlen++] = chunk[pos++]
        if (hlen < 2) continue
        const len7 = hdr[1] & 127
        const need = 2 + (len7 === 126 ? 2 : len7 === 127 ? 8 : 0) + 4
        if (hlen < need) continue
        h = hdr
        start = 0
        hlen = 0
      }
      const len7 = h[start + 1] & 127
      let len = len7
      let k = start + 2
      if (len7 === 126) {
        len = h.readUInt16BE(k)
        k += 2
      } else if (len7 === 127) {
        len = h.readUIntBE(k + 2, 6)
        k += 8
      }
      for (let i = 0; i < 4; i++) key[i] = h[k + i]
      keyPos = 0
      opcode = h[start] & 15
      left = len
      if (opcode !== 10) {
        // A ping is answered with a pong; a pong needs no answer; anything else is echoed.
        const reply = replyHeader(opcode === 9 ? (h[start] & 0xf0) | 10 : h[start], len)
        out.push(reply)
        outBytes += reply.length
      }
      if (len === 0 && opcode === 8) closing = true
    }
    if (out.length === 1) socket.write(out[0])
    else if (out.length > 1 && outBytes <= COPY_LIMIT) socket.write(Buffer.concat(out, outBytes))
    else if (out.length > 1) {
      // Large payloads are not copied: one writev of every piece.
      socket.cork()
      for (const piece of out) socket.write(piece)
      socket.uncork()
    }
    if (closing) socket.end()
  })
}

const server = net.createServer(onSocket)
server.listen({ host: "127.0.0.1", port: 0 }, () =>
  ready("plain", server.address().port, { bufferutil: nativeUnmask !== null })
)
