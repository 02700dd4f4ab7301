/**
 * The Effect 4 shell over real loopback sockets: the README's echo server and client, close codes,
 * typed errors caught by tag, a rejected handshake, permessage-deflate, and a closing scope ending
 * the server and its connections.
 */
import * as net from "node:net"
import { describe, expect, it } from "@effect/vitest"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as References from "effect/References"
import * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import * as Client from "../src/Client.js"
import { type ConnectionClosed, isConnectionClosed, isInvalidHandshake } from "../src/Errors.js"
import * as Server from "../src/Server.js"
import { CurrentWebSocket, type WebSocket } from "../src/WebSocket.js"
import { recvOrDie } from "./fixtures/loopback.js"

const LOCALHOST = "127.0.0.1"

/** The README's echo handler. */
const echo = (ws: WebSocket) => Stream.runForEach(ws.messages, (message) => ws.send(message))

const uriOf = (server: Server.WebSocketServer, path = "/"): string =>
  server.address._tag === "TcpAddress" ? `ws://${LOCALHOST}:${server.address.port}${path}` : "ws://localhost/"

const serveLocal = <E, R, RP = never, A = undefined>(
  handler: Server.Handler<E, R, A>,
  options: Server.ServeOptions<RP, A> = {}
) =>
  // A generic pass-through: the overloads of `serve` pair a handler's value with its hook at the test's call.
  Server.serve(handler as Server.Handler<E, R>, { host: LOCALHOST, port: 0, ...options } as Server.ServeOptions<RP>)

/** Reads until the connection closes and returns how it closed. */
const recvUntilClosed = (ws: WebSocket): Effect.Effect<ConnectionClosed> => Effect.flip(Effect.forever(recvOrDie(ws)))

/** A port nobody listens on: bound, read, released. */
const freePort = Effect.callback<number>((resume) => {
  const probe = net.createServer()
  probe.listen(0, LOCALHOST, () => {
    const address = probe.address() as net.AddressInfo
    probe.close(() => resume(Effect.succeed(address.port)))
  })
})

describe("Effect 4 shell: echo", () => {
  it.live("the README's echo server answers text and binary messages", () =>
    Effect.gen(function* () {
      const server = yield* serveLocal(echo)
      const ws = yield* Client.connect(uriOf(server))
      yield* ws.send("Hello world!")
      expect(yield* ws.recv).toBe("Hello world!")
      yield* ws.send(new Uint8Array([1, 2, 3]))
      expect(yield* ws.recv).toEqual(new Uint8Array([1, 2, 3]))
      expect(ws.side).toBe("client")
      expect(server.connections.size).toBe(1)
    })
  )

  it.live("Server.onMessage answers every message, in order", () =>
    Effect.gen(function* () {
      const server = yield* serveLocal(Server.onMessage((message, ws) => ws.send(message)))
      const ws = yield* Client.connect(uriOf(server), { compression: null })
      for (let i = 0; i < 100; i++) yield* ws.send(`message ${i}`)
      const received: Array<unknown> = []
      for (let i = 0; i < 100; i++) received.push(yield* ws.recv)
      expect(received).toEqual(Array.from({ length: 100 }, (_, i) => `message ${i}`))
    })
  )

  it.live("a fragmented message sent from a Stream arrives whole", () =>
    Effect.gen(function* () {
      const server = yield* serveLocal(echo)
      const ws = yield* Client.connect(uriOf(server))
      yield* ws.send(Stream.make("frag", "men", "ted"))
      expect(yield* ws.recv).toBe("fragmented")
    })
  )

  it.live("ws.messages ends normally after a 1000 close from the peer", () =>
    Effect.gen(function* () {
      const server = yield* serveLocal((ws) => Effect.andThen(ws.send("bye"), ws.close()))
      const ws = yield* Client.connect(uriOf(server))
      const messages = yield* Stream.runCollect(ws.messages)
      expect(messages).toEqual(["bye"])
      expect(ws.closeCode).toBe(1000)
    })
  )

  it.live("the handler finds its connection as CurrentWebSocket", () =>
    Effect.gen(function* () {
      const server = yield* serveLocal(() =>
        Effect.gen(function* () {
          const current = yield* CurrentWebSocket
          yield* current.send(current.path)
          yield* current.waitClosed
        })
      )
      const ws = yield* Client.connect(uriOf(server, "/chat?room=1"))
      expect(yield* ws.recv).toBe("/chat?room=1")
    })
  )

  it.live("a handler runs without the stack frame of the serve call (no failure is annotated with it)", () =>
    Effect.gen(function* () {
      const frames = yield* Deferred.make<unknown>()
      const server = yield* serveLocal((ws) =>
        Effect.gen(function* () {
          yield* Deferred.succeed(frames, yield* References.CurrentStackFrame)
          yield* ws.waitClosed
        })
      )
      yield* Client.connect(uriOf(server))
      expect(yield* Deferred.await(frames)).toBeUndefined()
    })
  )
})

describe("Effect 4 shell: closing", () => {
  it.live("a close code and reason reach the other side, in ConnectionClosedError", () =>
    Effect.gen(function* () {
      let serverSide: ConnectionClosed | undefined
      const server = yield* serveLocal((ws) =>
        Effect.map(recvUntilClosed(ws), (closed) => {
          serverSide = closed
        })
      )
      const ws = yield* Client.connect(uriOf(server))
      yield* ws.close(4000, "going away now")
      expect(ws.closeCode).toBe(4000)
      yield* server.close
      expect(serverSide?._tag).toBe("ConnectionClosedError")
      expect(serverSide?.code).toBe(4000)
      expect(serverSide?.reason).toBe("going away now")
    })
  )

  it.live("recv after a normal closure fails with ConnectionClosedOK, caught by tag", () =>
    Effect.gen(function* () {
      const server = yield* serveLocal((ws) => ws.close())
      const ws = yield* Client.connect(uriOf(server))
      const code = yield* ws.recv.pipe(
        Effect.as(-1),
        Effect.catchTag("ConnectionClosedOK", (closed) => Effect.succeed(closed.code))
      )
      expect(code).toBe(1000)
    })
  )

  it.live("a handler that fails closes its connection with 1011", () =>
    Effect.gen(function* () {
      const server = yield* serveLocal(() => Effect.fail("handler failure"))
      const ws = yield* Client.connect(uriOf(server))
      const closed = yield* recvUntilClosed(ws)
      expect(closed._tag).toBe("ConnectionClosedError")
      expect(closed.code).toBe(1011)
    })
  )

  it.live("an invalid close code fails with ProtocolError and sends nothing", () =>
    Effect.gen(function* () {
      const server = yield* serveLocal(echo)
      const ws = yield* Client.connect(uriOf(server))
      const error = yield* Effect.flip(ws.close(1006))
      expect(error._tag).toBe("ProtocolError")
      yield* ws.send("still open")
      expect(yield* ws.recv).toBe("still open")
    })
  )

  it.live("closing the scope closes the server, its connections and the client", () =>
    Effect.gen(function* () {
      const scope = yield* Scope.make()
      const server = yield* Scope.provide(serveLocal(echo), scope)
      const uri = uriOf(server)
      const ws = yield* Scope.provide(Client.connect(uri), scope)
      yield* ws.send("before")
      expect(yield* ws.recv).toBe("before")
      const reading = yield* Effect.forkChild(recvUntilClosed(ws))
      yield* Scope.close(scope, Exit.void)
      const closed = yield* Fiber.join(reading)
      expect(isConnectionClosed(closed)).toBe(true)
      expect(ws.state).toBe(3)
      expect(server.connections.size).toBe(0)
      yield* server.waitClosed
      const again = yield* Effect.flip(Client.connect(uri))
      expect(again._tag).toBe("ConnectFailed")
    })
  )
})

describe("Effect 4 shell: typed errors", () => {
  it.live("connecting where nobody listens fails with ConnectFailed, caught by tag", () =>
    Effect.gen(function* () {
      const port = yield* freePort
      const outcome = yield* Client.connect(`ws://${LOCALHOST}:${port}/`).pipe(
        Effect.as("connected"),
        Effect.catchTag("ConnectFailed", (error) => Effect.succeed(`ConnectFailed: ${error.address}`))
      )
      expect(outcome).toBe(`ConnectFailed: ${LOCALHOST}:${port}`)
    })
  )

  it.live("an invalid URI fails with InvalidURI", () =>
    Effect.gen(function* () {
      const error = yield* Effect.flip(Client.connect("http://example.com/"))
      expect(error._tag).toBe("InvalidURI")
    })
  )

  it.live("a handshake rejected by processRequest fails with InvalidStatusCode, in the InvalidHandshake family", () =>
    Effect.gen(function* () {
      const server = yield* serveLocal(echo, {
        processRequest: (request) =>
          Effect.succeed(request.path === "/private" ? { status: 403, body: "Forbidden\n" } : undefined)
      })
      const error = yield* Effect.flip(Client.connect(uriOf(server, "/private")))
      expect(isInvalidHandshake(error)).toBe(true)
      const status = yield* Effect.fail(error).pipe(
        Effect.catchTag("InvalidStatusCode", (rejected) => Effect.succeed(rejected.statusCode)),
        Effect.orElseSucceed(() => 0)
      )
      expect(status).toBe(403)
      const ws = yield* Client.connect(uriOf(server, "/public"))
      yield* ws.send("public")
      expect(yield* ws.recv).toBe("public")
    })
  )

  it.live("a request that is no WebSocket handshake gets 400 and the server goes on", () =>
    Effect.gen(function* () {
      const server = yield* serveLocal(echo)
      const port = server.address._tag === "TcpAddress" ? server.address.port : 0
      const answer = yield* Effect.callback<string>((resume) => {
        const socket = net.connect(port, LOCALHOST, () => socket.write("GET / HTTP/1.1\r\nHost: x\r\n\r\n"))
        let received = ""
        socket.on("data", (chunk) => {
          received += chunk.toString("latin1")
        })
        socket.on("close", () => resume(Effect.succeed(received)))
        return Effect.sync(() => socket.destroy())
      })
      expect(answer.startsWith("HTTP/1.1 426") || answer.startsWith("HTTP/1.1 400")).toBe(true)
      const ws = yield* Client.connect(uriOf(server))
      yield* ws.send("after")
      expect(yield* ws.recv).toBe("after")
    })
  )

  it.live("a message over maxSize closes the connection with 1009", () =>
    Effect.gen(function* () {
      const server = yield* serveLocal(echo, { maxSize: 1024 })
      const ws = yield* Client.connect(uriOf(server), { compression: null })
      yield* ws.send("x".repeat(2048))
      const closed = yield* recvUntilClosed(ws)
      expect(closed._tag).toBe("ConnectionClosedError")
      expect(closed.code).toBe(1009)
    })
  )
})

describe("Effect 4 shell: compression", () => {
  it.live("permessage-deflate is negotiated by default and round-trips large messages", () =>
    Effect.gen(function* () {
      const server = yield* serveLocal(echo)
      const ws = yield* Client.connect(uriOf(server))
      expect(ws.responseHeaders.get("Sec-WebSocket-Extensions")).toContain("permessage-deflate")
      const text = "compressible ".repeat(50_000)
      yield* ws.send(text)
      expect(yield* ws.recv).toBe(text)
      const bytes = new Uint8Array(300_000).map((_, i) => i % 251)
      yield* ws.send(bytes)
      const received = yield* ws.recv
      expect(received).toBeInstanceOf(Uint8Array)
      expect(Buffer.compare(received as Uint8Array, bytes)).toBe(0)
    })
  )

  it.live("compression: null on either side leaves the extension out", () =>
    Effect.gen(function* () {
      const server = yield* serveLocal(echo, { compression: null })
      const ws = yield* Client.connect(uriOf(server))
      expect(ws.responseHeaders.get("Sec-WebSocket-Extensions")).toBeUndefined()
      yield* ws.send("plain")
      expect(yield* ws.recv).toBe("plain")
    })
  )
})
