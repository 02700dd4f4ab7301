/**
 * Issue 14's hostile inputs against our CLI echo server and a `ws` echo server, one fresh server
 * process per input: the close code (or HTTP status) each gives, how long it took, and the peak RSS
 * growth of the server process (VmHWM after the input minus VmRSS before it, /proc). Loopback only;
 * every input is bounded in count and time. Run after `npm run build`:
 *   node bench/hostile/run.mjs [ours|ws] [input...]
 */
import { spawn } from "node:child_process"
import { randomBytes } from "node:crypto"
import { readFileSync, writeFileSync } from "node:fs"
import * as net from "node:net"
import { fileURLToPath } from "node:url"

const ROOT = fileURLToPath(new URL("../..", import.meta.url))
const MiB = 1024 * 1024
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

const freePort = () =>
  new Promise((resolve) => {
    const s = net.createServer().listen(0, "127.0.0.1", () => {
      const { port } = s.address()
      s.close(() => resolve(port))
    })
  })

const status = (pid, field) => {
  const m = new RegExp(`${field}:\\s+(\\d+) kB`).exec(readFileSync(`/proc/${pid}/status`, "utf8"))
  return m ? Number(m[1]) * 1024 : Number.NaN
}

const startServer = async (target) => {
  const port = await freePort()
  const args =
    target === "ours"
      ? [`${ROOT}dist/bin/cli.js`, "serve", "--port", String(port)]
      : [`${ROOT}bench/hostile/ws-server.mjs`, String(port)]
  const child = spawn(process.execPath, args, { stdio: ["pipe", "ignore", "inherit"] })
  for (let i = 0; i < 200; i++) {
    const ok = await new Promise((resolve) => {
      const s = net.connect({ host: "127.0.0.1", port }, () => {
        s.destroy()
        resolve(true)
      })
      s.on("error", () => resolve(false))
    })
    if (ok) break
    await sleep(50)
  }
  await sleep(500)
  return { child, port }
}

// --- the raw peer -----------------------------------------------------------------------------

const frame = (opcode, payload, { fin = true, rsv = 0, declared } = {}) => {
  const length = declared ?? payload.length
  const head = length < 126 ? 2 : length < 65536 ? 4 : 10
  const out = Buffer.alloc(head + 4 + payload.length)
  out[0] = (fin ? 0x80 : 0) | rsv | opcode
  if (head === 2) out[1] = 0x80 | length
  else if (head === 4) {
    out[1] = 0x80 | 126
    out.writeUInt16BE(length, 2)
  } else {
    out[1] = 0x80 | 127
    out.writeBigUInt64BE(BigInt(length), 2)
  }
  const key = randomBytes(4)
  key.copy(out, head)
  for (let i = 0; i < payload.length; i++) out[head + 4 + i] = payload[i] ^ key[i & 3]
  return out
}

/** A raw client after the handshake; `close` resolves with the first close code (or "EOF"). */
const client = (port, extensions) =>
  new Promise((resolve, reject) => {
    const socket = net.connect({ host: "127.0.0.1", port })
    let buffer = Buffer.alloc(0)
    let open = false
    let onClose
    const close = new Promise((r) => (onClose = r))
    socket.on("error", () => onClose("reset"))
    socket.on("close", () => onClose("EOF"))
    socket.on("data", (chunk) => {
      buffer = buffer.length === 0 ? chunk : Buffer.concat([buffer, chunk])
      if (!open) {
        const end = buffer.indexOf("\r\n\r\n")
        if (end < 0) return
        const head = buffer.subarray(0, end).toString("latin1")
        buffer = buffer.subarray(end + 4)
        if (!head.startsWith("HTTP/1.1 101")) return reject(new Error(head))
        open = true
        resolve({ socket, close })
      }
      // Scan frames for a close (server frames are unmasked).
      while (buffer.length >= 2) {
        let len = buffer[1] & 0x7f
        let off = 2
        if (len === 126) {
          if (buffer.length < 4) return
          len = buffer.readUInt16BE(2)
          off = 4
        } else if (len === 127) {
          if (buffer.length < 10) return
          len = Number(buffer.readBigUInt64BE(2))
          off = 10
        }
        if (buffer.length < off + len) return
        if ((buffer[0] & 0x0f) === 8) onClose(len >= 2 ? buffer.readUInt16BE(off) : 1005)
        buffer = buffer.subarray(off + len)
      }
    })
    socket.write(
      `GET / HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
        `Sec-WebSocket-Key: ${randomBytes(16).toString("base64")}\r\nSec-WebSocket-Version: 13\r\n` +
        (extensions ? `Sec-WebSocket-Extensions: ${extensions}\r\n` : "") +
        "\r\n"
    )
  })

const write = (socket, bytes) =>
  new Promise((resolve) => {
    if (socket.destroyed || socket.write(bytes)) return resolve()
    socket.once("drain", resolve)
    socket.once("close", resolve)
  })

/** Writes message fragments of `payload` until the server closes, `maxFrames`, or `deadline`. */
const fragments = async (c, payload, maxFrames, deadline) => {
  let code
  c.close.then((v) => (code = v))
  const first = frame(1, payload, { fin: false })
  const cont = frame(0, payload, { fin: false })
  const batch = Buffer.concat(Array.from({ length: 1024 }, () => cont))
  await write(c.socket, first)
  let sent = 1
  while (code === undefined && sent < maxFrames && Date.now() < deadline) {
    await write(c.socket, batch)
    sent += 1024
    await new Promise((r) => setImmediate(r))
  }
  const result = await Promise.race([c.close, sleep(Math.max(0, deadline - Date.now()))])
  return { code: result ?? "none", sent }
}

// --- inputs ---------------------------------------------------------------------------------

const INPUTS = {
  "empty continuations": async (port) => {
    const c = await client(port)
    const r = await fragments(c, Buffer.alloc(0), 4_000_000, Date.now() + 20_000)
    return `${r.code} after ${r.sent} frames sent`
  },
  "4 × 1-byte continuations": async (port) => {
    const deadline = Date.now() + 30_000
    const rs = await Promise.all(
      [0, 1, 2, 3].map(async () => fragments(await client(port), Buffer.from("*"), 2_000_000, deadline))
    )
    return `${rs.map((r) => r.code).join("/")} after ≤${Math.max(...rs.map((r) => r.sent))} frames`
  },
  "10 × ping flood, never reading (15 s)": async (port) => {
    const cs = await Promise.all(Array.from({ length: 10 }, () => client(port)))
    const pings = Buffer.concat(Array.from({ length: 500 }, (_, i) => frame(9, Buffer.alloc(125, i))))
    const deadline = Date.now() + 15_000
    let written = 0
    const codes = cs.map(() => "open")
    cs.forEach((c, i) => {
      c.socket.pause()
      c.close.then((v) => (codes[i] = v))
    })
    await Promise.all(
      cs.map(async (c) => {
        while (Date.now() < deadline && !c.socket.destroyed) {
          await Promise.race([write(c.socket, pings), sleep(Math.max(0, deadline - Date.now()))])
          written += pings.length
        }
      })
    )
    for (const c of cs) c.socket.destroy()
    const distinct = [...new Set(codes)].join("/")
    return `${distinct} (paused reader sees no close); ${(written / MiB).toFixed(0)} MiB of pings accepted`
  },
  "RSV2, declared 1 MiB, no payload": async (port) => {
    const c = await client(port)
    const t = Date.now()
    c.socket.write(frame(2, Buffer.alloc(0), { rsv: 0x20, declared: MiB }))
    const code = await Promise.race([c.close, sleep(3000).then(() => "none in 3 s")])
    return `${code} in ${Date.now() - t} ms`
  },
  "RSV1 without deflate, declared 1 MiB, no payload": async (port) => {
    const c = await client(port)
    const t = Date.now()
    c.socket.write(frame(2, Buffer.alloc(0), { rsv: 0x40, declared: MiB }))
    const code = await Promise.race([c.close, sleep(3000).then(() => "none in 3 s")])
    return `${code} in ${Date.now() - t} ms`
  },
  "500 handshakes of 127 lines × 8 KB, never finished": async (port) => {
    const line = `X-Filler: ${"a".repeat(8000)}\r\n`
    const results = []
    const t = Date.now()
    await Promise.all(
      Array.from({ length: 500 }, async () => {
        const socket = net.connect({ host: "127.0.0.1", port })
        socket.on("error", () => {})
        let answer = "none"
        socket.on("data", (d) => {
          if (answer === "none") answer = d.toString("latin1").split("\r\n")[0].split(" ")[1] ?? "?"
        })
        await new Promise((r) => socket.once("connect", r))
        await write(socket, `GET / HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n`)
        for (let i = 0; i < 127 && !socket.destroyed && answer === "none"; i++) await write(socket, line)
        results.push(() => answer)
        results.sockets ??= []
        results.sockets.push(socket)
      })
    )
    await sleep(200)
    const answers = [...new Set(results.map((f) => f()))].join("/")
    for (const s of results.sockets ?? []) s.destroy()
    return `${answers} (${Date.now() - t} ms)`
  },
  "request without Host": async (port) => {
    const socket = net.connect({ host: "127.0.0.1", port })
    const answer = await new Promise((resolve) => {
      socket.on("data", (d) => resolve(d.toString("latin1").split("\r\n")[0]))
      socket.on("error", () => resolve("reset"))
      socket.write(
        `GET / HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
          `Sec-WebSocket-Key: ${randomBytes(16).toString("base64")}\r\nSec-WebSocket-Version: 13\r\n\r\n`
      )
    })
    socket.destroy()
    return answer
  }
}

const targets =
  process.argv[2] && !INPUTS[process.argv[2]] && ["ours", "ws"].includes(process.argv[2])
    ? [process.argv[2]]
    : ["ours", "ws"]
const selected = process.argv.slice(2).filter((a) => INPUTS[a])
const rows = []
for (const name of selected.length > 0 ? selected : Object.keys(INPUTS)) {
  for (const target of targets) {
    const { child, port } = await startServer(target)
    const before = status(child.pid, "VmRSS")
    // Reset the peak RSS to the current RSS (Linux clear_refs 5), so VmHWM is this input's peak.
    try {
      writeFileSync(`/proc/${child.pid}/clear_refs`, "5")
    } catch {}
    let outcome
    try {
      outcome = await INPUTS[name](port)
    } catch (error) {
      outcome = `error: ${error.message.split("\r\n")[0]}`
    }
    const peak = status(child.pid, "VmHWM")
    const alive = child.exitCode === null
    child.kill("SIGKILL")
    const row = { input: name, target, outcome, peakGrowthMiB: ((peak - before) / MiB).toFixed(1), alive }
    rows.push(row)
    console.log(JSON.stringify(row))
  }
}
