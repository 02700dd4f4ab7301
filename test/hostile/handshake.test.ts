/**
 * Hostile peers against the opening handshake, over loopback: raw TCP peers that send request
 * heads far over the size cap and never finish them, requests without a Host or with two, a raw
 * server that sends our client an endless response head, and what a dead server left at a unix
 * socket path; against both shells (test/conformance/shells.ts). The bystander connection and the
 * unix-socket client are Effect 3 clients of this process: the shell under test is the server.
 */
import { execFileSync } from "node:child_process"
import { existsSync, lstatSync, readFileSync, writeFileSync } from "node:fs"
import * as net from "node:net"
import { join } from "node:path"
import { describe, expect, it } from "@effect/vitest"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Client from "../../src/Client.js"
import { MAX_HEADER_SIZE } from "../../src/Http11.js"
import { describeShells } from "../conformance/shells.js"
import { bounded, LOCALHOST, rawConnect, rawServer, tempDir } from "../fixtures/loopback.js"

const NO_COMPRESSION: Client.ConnectOptions = { compression: null }

/** The request line and 127 header lines of 8 KB, never ended by the empty line: about 1 MB. */
const HUGE_HEAD = Buffer.from(
  `GET / HTTP/1.1\r\nHost: ${LOCALHOST}\r\n${`X-Filler: ${"f".repeat(8000)}\r\n`.repeat(127)}`,
  "latin1"
)

/**
 * A raw peer that writes `head` and never finishes it; yields the first line it gets back ("" if
 * the connection closes without an answer).
 */
const unfinishedHandshake = (port: number, head: Uint8Array): Effect.Effect<string> =>
  Effect.async<string>((resume) => {
    const socket = net.connect({ host: LOCALHOST, port })
    let received = ""
    let done = false
    const finish = () => {
      if (done) return
      done = true
      socket.destroy()
      const end = received.indexOf("\r\n")
      resume(Effect.succeed(end === -1 ? "" : received.slice(0, end)))
    }
    socket.on("data", (chunk: Buffer) => {
      received += chunk.toString("latin1")
      if (received.includes("\r\n")) finish()
    })
    // The server closes the connection once it answered, usually while we are still writing.
    socket.on("error", finish)
    socket.on("close", finish)
    socket.on("connect", () => socket.write(head))
    return Effect.sync(() => socket.destroy())
  })

describeShells("hostile peers: opening handshake", (shell) => {
  /** An echo server of the shell under test, without compression, on 127.0.0.1 or a unix socket. */
  const serveEcho = (options: Record<string, unknown> = {}, unix?: string) =>
    shell.serve("echo", { compression: null, ...options }, unix === undefined ? {} : { unix })

  it.scopedLive(
    "server receives 500 unfinished 1 MB heads: 431 each at the cap, bounded memory, other connections echo",
    () =>
      Effect.gen(function* () {
        // An open timeout far beyond the test's: every answer comes from the size cap.
        const server = yield* serveEcho({ openTimeout: "5 minutes" })
        const ws = yield* Client.connect(`ws://${LOCALHOST}:${server.port}/`, NO_COMPRESSION)
        yield* ws.send("warm up")
        expect(yield* ws.recv).toBe("warm up")
        const before = (yield* shell.usage).retained
        const pingPong = Effect.forEach(
          Array.from({ length: 20 }, (_, i) => `meanwhile ${i}`),
          (message) => Effect.zipRight(ws.send(message), ws.recv),
          { concurrency: 1 }
        )
        const [answers, echoes] = yield* Effect.all(
          [
            Effect.forEach(
              Array.from({ length: 500 }, () => unfinishedHandshake(server.port, HUGE_HEAD)),
              (peer) => peer,
              { concurrency: "unbounded" }
            ),
            pingPong
          ],
          { concurrency: "unbounded" }
        )
        const growth = (yield* shell.usage).retained - before
        const statuses = new Map<string, number>()
        for (const answer of answers) statuses.set(answer, (statuses.get(answer) ?? 0) + 1)
        expect(Object.fromEntries(statuses)).toEqual({ "HTTP/1.1 431 Request Header Fields Too Large": 500 })
        expect(echoes).toEqual(Array.from({ length: 20 }, (_, i) => `meanwhile ${i}`))
        // 500 MB were offered; what the server keeps is a small constant per connection, and none
        // of them is left once answered.
        expect(growth).toBeLessThan(64 * 1024 * 1024)
        yield* ws.send("still open")
        expect(yield* ws.recv).toBe("still open")
      }).pipe(bounded(60_000)),
    90_000
  )

  it.scopedLive("server with maxHeaderSize receives that many bytes of an unfinished head: 431 at once", () =>
    Effect.gen(function* () {
      const server = yield* serveEcho({ openTimeout: "5 minutes", maxHeaderSize: 4096 })
      const peer = yield* rawConnect(server.port)
      const start = `GET / HTTP/1.1\r\nHost: ${LOCALHOST}\r\nX-Pad: `
      // Exactly 4096 bytes, the last header line complete but not the head: it cannot fit any more.
      yield* peer.write(`${start}${"p".repeat(4096 - start.length - 2)}\r\n`)
      const head = yield* peer.readHead()
      expect(head).toMatch(/^HTTP\/1\.1 431 Request Header Fields Too Large\r\n/)
      yield* Deferred.await(peer.ended)
    }).pipe(bounded(10_000))
  )

  for (const [name, hostLines, value] of [
    ["without Host", "", "missing Host header"],
    ["with two Host headers", `Host: ${LOCALHOST}\r\nHost: evil.example\r\n`, "invalid Host header"]
  ] as const) {
    it.scopedLive(`server receives a request ${name}: 400 (RFC 7230 §5.4)`, () =>
      Effect.gen(function* () {
        const server = yield* serveEcho()
        const peer = yield* rawConnect(server.port)
        yield* peer.write(
          `GET / HTTP/1.1\r\n${hostLines}Upgrade: websocket\r\nConnection: Upgrade\r\n` +
            "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        )
        const head = yield* peer.readHead()
        expect(head).toMatch(/^HTTP\/1\.1 400 Bad Request\r\n/)
        yield* Deferred.await(peer.ended)
        expect(peer.received.toString("utf8")).toContain(value)
      }).pipe(bounded(10_000))
    )
  }

  it.scopedLive("client receives an endless response head: SecurityError, and it closes the connection", () =>
    Effect.gen(function* () {
      const { accept, port } = yield* rawServer()
      const connecting = yield* Effect.fork(
        Effect.flip(shell.connectEcho(`ws://${LOCALHOST}:${port}/`, { ...NO_COMPRESSION, openTimeout: "5 minutes" }))
      )
      const peer = yield* accept
      yield* peer.readHead()
      // 8 MB of header lines and no end: the client must give up at the cap, long before.
      yield* peer.write(`HTTP/1.1 101 Switching Protocols\r\n${`X-Endless: ${"e".repeat(1000)}\r\n`.repeat(8000)}`)
      const error = yield* connecting.await.pipe(Effect.flatten)
      expect(error).toMatchObject({
        tag: "SecurityError",
        message: `HTTP head too large: over ${MAX_HEADER_SIZE} bytes`
      })
      yield* Deferred.await(peer.closed)
    }).pipe(bounded(10_000))
  )

  describe("unix socket path", () => {
    it.scopedLive("a socket file left by a dead server is removed, and the server listens", () =>
      Effect.gen(function* () {
        const path = join(yield* tempDir, "stale.sock")
        // A server process that exits without closing its socket leaves the file behind.
        execFileSync(process.execPath, [
          "-e",
          `require("node:net").createServer().listen(${JSON.stringify(path)}, () => process.exit(0))`
        ])
        expect(lstatSync(path).isSocket()).toBe(true)
        const server = yield* serveEcho({}, path)
        expect(server.address).toEqual({ _tag: "UnixAddress", path })
        const ws = yield* Client.unixConnect(path, "ws://localhost/", NO_COMPRESSION)
        yield* ws.send("after a dead server")
        expect(yield* ws.recv).toBe("after a dead server")
      }).pipe(bounded(10_000))
    )

    it.scopedLive("a live server's socket is not taken over: listening fails, the live server keeps serving", () =>
      Effect.gen(function* () {
        const path = join(yield* tempDir, "live.sock")
        yield* serveEcho({}, path)
        const error = yield* Effect.flip(serveEcho({}, path))
        expect(error).toMatchObject({ tag: "ListenFailed", address: path, causeCode: "EADDRINUSE" })
        const ws = yield* Client.unixConnect(path, "ws://localhost/", NO_COMPRESSION)
        yield* ws.send("first server")
        expect(yield* ws.recv).toBe("first server")
      }).pipe(bounded(10_000))
    )

    it.scopedLive("a regular file at the path is never removed: listening fails with ListenFailed", () =>
      Effect.gen(function* () {
        const path = join(yield* tempDir, "not-a-socket")
        writeFileSync(path, "precious data\n")
        const error = yield* Effect.flip(serveEcho({}, path))
        expect(error).toMatchObject({ tag: "ListenFailed", address: path, causeCode: "EADDRINUSE" })
        expect(existsSync(path)).toBe(true)
        expect(readFileSync(path, "utf8")).toBe("precious data\n")
      }).pipe(bounded(10_000))
    )
  })
})
