/**
 * CPU per empty continuation frame, ours against `ws` (issue 23): a raw client sends one message of
 * `--frames` empty continuation frames (FIN clear, no payload) and a final one, waits for its echo,
 * and reads the server process's CPU time (user + system, /proc/<pid>/stat) spent from the first
 * frame to the echo. `ws` runs without its fragment cap (`maxFragments: 0`), which would otherwise
 * close at 16,384. Loopback only. Run after `npm run build`:
 *   node bench/hostile/emptyFrames.mjs [--frames 1000000] [--reps 3] [--targets ours,ws]
 *     [--batch 4096] [--deflate]
 *
 * Measured 2026-12-07 (Node 20, 2 shared cores, median of 3, µs of server CPU per frame):
 * 4096 frames per write 0.22 ours / 0.22 ws; 16 per write 0.35 / 0.55; 1 per write 2.7 / 3.0;
 * compressed message (`--deflate`) 0.65 ours / 76 ws (`ws` inflates each fragment asynchronously).
 */
import { spawn } from "node:child_process"
import { randomBytes } from "node:crypto"
import { readFileSync } from "node:fs"
import * as net from "node:net"
import { fileURLToPath } from "node:url"

const ROOT = fileURLToPath(new URL("../..", import.meta.url))
const arg = (name, fallback) => {
  const i = process.argv.indexOf(`--${name}`)
  return i < 0 ? fallback : process.argv[i + 1]
}
const FRAMES = Number(arg("frames", 1_000_000))
const REPS = Number(arg("reps", 3))
const TARGETS = arg("targets", "ours,ws").split(",")
/** Frames per write; below 4096 each write waits for the next turn of the event loop (reads then carry few frames). */
const BATCH = Number(arg("batch", 4096))
/** `--deflate`: negotiate permessage-deflate and send a compressed message (RSV1 on its first frame). */
const DEFLATE = process.argv.includes("--deflate")
const TICK = 1 / 100 // /proc stat times are in clock ticks (USER_HZ, 100 on Linux)

const cpuSeconds = (pid) => {
  const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1].split(" ")
  return (Number(fields[11]) + Number(fields[12])) * TICK
}

const start = (target) =>
  new Promise((resolve, reject) => {
    const args =
      target === "ours"
        ? [`${ROOT}dist/bin/cli.js`, "serve", "--port", "0", "--max-size", String(1 << 20)]
        : [`${ROOT}bench/hostile/ws-server.mjs`, "0", "no-fragment-cap"]
    const child = spawn(process.execPath, args, { stdio: ["pipe", "pipe", "inherit"] })
    let out = ""
    child.stdout.on("data", (d) => {
      out += d
      const port = /"port":\s*(\d+)/.exec(out)?.[1] ?? /:(\d+)\b/.exec(out)?.[1]
      if (port !== undefined) {
        child.stdout.removeAllListeners("data")
        child.stdout.resume()
        resolve({ child, port: Number(port) })
      }
    })
    child.on("exit", (code) => reject(new Error(`${target} exited with ${code}: ${out}`)))
  })

const frame = (opcode, fin, rsv1 = false) => {
  const out = Buffer.alloc(6)
  out[0] = (fin ? 0x80 : 0) | (rsv1 ? 0x40 : 0) | opcode
  out[1] = 0x80
  randomBytes(4).copy(out, 2)
  return out
}

const run = (port, pid) =>
  new Promise((resolve, reject) => {
    const socket = net.connect({ host: "127.0.0.1", port })
    let buffer = Buffer.alloc(0)
    let open = false
    let cpuBefore = 0
    socket.setNoDelay(true)
    socket.on("error", reject)
    socket.on("data", async (chunk) => {
      buffer = Buffer.concat([buffer, chunk])
      if (!open) {
        const end = buffer.indexOf("\r\n\r\n")
        if (end < 0) return
        buffer = buffer.subarray(end + 4)
        open = true
        send().catch(reject)
        return
      }
      // The echo: a final text frame (an empty message, compressed or not), or a close.
      if (buffer.length >= 2) {
        const cpu = cpuSeconds(pid) - cpuBefore
        socket.destroy()
        if ((buffer[0] & 0x8f) === 0x81) resolve(cpu)
        else reject(new Error(`unexpected answer ${buffer.subarray(0, 8).toString("hex")}`))
      }
    })
    const write = (bytes) => new Promise((r) => (socket.write(bytes) ? r() : socket.once("drain", r)))
    const send = async () => {
      const batch = Buffer.concat(Array.from({ length: BATCH }, () => frame(0, false)))
      cpuBefore = cpuSeconds(pid)
      await write(frame(1, false, DEFLATE))
      for (let sent = 0; sent < FRAMES; sent += BATCH) {
        await write(batch)
        if (BATCH < 4096) await new Promise((r) => setImmediate(r))
      }
      await write(frame(0, true))
    }
    socket.write(
      `GET / HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
        `Sec-WebSocket-Key: ${randomBytes(16).toString("base64")}\r\nSec-WebSocket-Version: 13\r\n` +
        (DEFLATE ? "Sec-WebSocket-Extensions: permessage-deflate\r\n" : "") +
        "\r\n"
    )
  })

for (const target of TARGETS) {
  const { child, port } = await start(target)
  await new Promise((r) => setTimeout(r, 500))
  const perFrame = []
  for (let i = 0; i < REPS; i++) {
    const cpu = await run(port, child.pid)
    perFrame.push((cpu / (Math.ceil(FRAMES / BATCH) * BATCH)) * 1e6)
  }
  child.kill("SIGKILL")
  perFrame.sort((a, b) => a - b)
  console.log(
    JSON.stringify({
      target,
      frames: Math.ceil(FRAMES / BATCH) * BATCH,
      batch: BATCH,
      microsecondsPerFrame: perFrame.map((v) => Number(v.toFixed(2))),
      median: Number(perFrame[perFrame.length >> 1].toFixed(2))
    })
  )
}
process.exit(0)
