/**
 * The attacker of test/hostile/headFlood.test.ts, in its own process so that the test's peak RSS
 * counts only our side: `connections` raw clients that each send a request line, a Host line and
 * then 127 header lines of 8 KB (about 1 MB, far over the server's head limit), one line per write
 * with 'drain' waited for, never ending the head, and stop at the first byte of an answer; as
 * bench/hostile/run.mjs's "500 handshakes of 127 lines × 8 KB, never finished".
 *
 *   node headFlooder.mjs <port> <connections>
 *
 * Reports over IPC once every connection has an answer or was closed: `{ statuses }`, the number
 * of connections by the first line they got back, or else by the code of the error that ended them
 * ("" when closed without either). Exits on disconnect.
 */
import * as net from "node:net"
import { write } from "./flooderSocket.mjs"

const [portArg, connectionsArg] = process.argv.slice(2)
const port = Number(portArg)
const connections = Number(connectionsArg)
const line = `X-Filler: ${"a".repeat(8000)}\r\n`
const sockets = []

/** Sends the endless head; resolves with the first line of the answer ("" if closed without one). */
const flood = (socket) =>
  new Promise((resolve) => {
    let received = ""
    let answer
    const finish = (error) => {
      if (answer !== undefined) return
      const end = received.indexOf("\r\n")
      answer = end !== -1 ? received.slice(0, end) : error?.code !== undefined ? error.code : ""
      resolve(answer)
    }
    socket.on("data", (chunk) => {
      received += chunk.toString("latin1")
      if (received.includes("\r\n")) finish()
    })
    socket.on("error", finish)
    socket.on("close", () => finish())
    socket.on("connect", async () => {
      await write(socket, `GET / HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n`)
      for (let i = 0; i < 127 && answer === undefined && !socket.destroyed; i++) await write(socket, line)
    })
  })

const answers = await Promise.all(
  Array.from({ length: connections }, () => {
    const socket = net.connect({ host: "127.0.0.1", port })
    sockets.push(socket)
    return flood(socket)
  })
)
const statuses = {}
for (const answer of answers) statuses[answer] = (statuses[answer] ?? 0) + 1
for (const socket of sockets) socket.destroy()
if (process.connected) process.send({ statuses })

process.on("disconnect", () => {
  for (const socket of sockets) socket.destroy()
  process.exit(0)
})
