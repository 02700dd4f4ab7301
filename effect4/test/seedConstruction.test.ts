/**
 * The Effect 4 shell as test/seedConstruction.test.ts checks the Effect 3 one: the seeds'
 * construction options that Node's `create_server` / `create_connection` took: `sock` (a listener
 * or socket the application made), `backlog`, `reuse_port`, `local_addr`, `family`, and the
 * deprecated `timeout` alias of `close_timeout`.
 */
import * as net from "node:net"
import { describe, expect, it } from "@effect/vitest"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Client from "../src/Client.js"
import { resolveOptions, type WebSocketImpl } from "../src/internal/webSocket.js"
import * as Server from "../src/Server.js"
import type { Address, WebSocket } from "../src/WebSocket.js"
import {
  echo,
  eventually,
  hasOpenssl,
  LOCALHOST,
  portOf,
  recvOrDie,
  selfSignedCertificate,
  uriOf
} from "./fixtures/loopback.js"

const hostOf = (address: Address | undefined) => (address?._tag === "TcpAddress" ? address.hostname : undefined)

/** A net.Server made by the test, closed with the scope if the server did not close it. */
const appServer = Effect.acquireRelease(
  Effect.sync(() => net.createServer({ allowHalfOpen: true })),
  (server) => Effect.sync(() => server.listening && server.close())
)

/** A socket connected to `port`, destroyed with the scope. */
const connectedSocket = (port: number) =>
  Effect.acquireRelease(
    Effect.callback<net.Socket>((resume) => {
      const socket = net.connect({ host: LOCALHOST, port, allowHalfOpen: true })
      socket.once("connect", () => resume(Effect.succeed(socket)))
    }),
    (socket) => Effect.sync(() => socket.destroy())
  )

describe("Effect 4 shell, seed: serve(..., sock=, backlog=, reuse_port=)", () => {
  it.live("seed: serve on a net.Server the application made (sock), which it listens on and closes", () =>
    Effect.gen(function* () {
      const app = yield* appServer
      const listening = yield* Deferred.make<boolean>()
      yield* Effect.scoped(
        Effect.gen(function* () {
          const server = yield* Server.serve(echo, { sock: app, host: LOCALHOST, port: 0 })
          yield* Deferred.succeed(listening, app.listening)
          expect(portOf(server)).toBe((app.address() as net.AddressInfo).port)
          const ws = yield* Client.connect(uriOf(server), { compression: null })
          yield* ws.send("over the application's listener")
          expect(yield* recvOrDie(ws)).toBe("over the application's listener")
        })
      )
      expect(yield* Deferred.await(listening)).toBe(true)
      expect(app.listening).toBe(false)
    })
  )

  it.live("seed: serve on a net.Server already listening (sock): its address is the server's", () =>
    Effect.gen(function* () {
      const app = yield* appServer
      yield* Effect.callback<void>((resume) => {
        app.listen({ host: LOCALHOST, port: 0 }, () => resume(Effect.void))
      })
      const server = yield* Server.serve(echo, { sock: app })
      expect(server.address).toEqual({
        _tag: "TcpAddress",
        hostname: LOCALHOST,
        port: (app.address() as net.AddressInfo).port
      })
      const ws = yield* Client.connect(uriOf(server), { compression: null })
      yield* ws.send("hi")
      expect(yield* recvOrDie(ws)).toBe("hi")
    })
  )

  it.live("seed: backlog is passed to listen", () =>
    Effect.gen(function* () {
      const app = yield* appServer
      const seen: Array<unknown> = []
      const listen = app.listen.bind(app) as (...args: Array<unknown>) => net.Server
      app.listen = ((...args: Array<unknown>) => {
        seen.push(args[0])
        return listen(...args)
      }) as typeof app.listen
      yield* Server.serve(echo, { sock: app, host: LOCALHOST, port: 0, backlog: 7 })
      expect(seen).toEqual([{ backlog: 7, host: LOCALHOST, port: 0 }])
    })
  )

  it.live("seed: reuse_port lets two servers share a port on Node >= 22.12, and fails clearly before", () =>
    Effect.gen(function* () {
      const [major = 0, minor = 0] = process.versions.node.split(".").map(Number)
      const supported = major > 23 || (major === 23 && minor >= 1) || (major === 22 && minor >= 12)
      const first = yield* Effect.result(Server.serve(echo, { host: LOCALHOST, port: 0, reusePort: true }))
      if (!supported) {
        expect(first._tag).toBe("Failure")
        if (first._tag === "Failure") expect(first.failure.message).toContain("reusePort needs Node 22.12 or later")
        return
      }
      if (first._tag === "Failure") return yield* Effect.die(first.failure)
      const second = yield* Server.serve(echo, { host: LOCALHOST, port: portOf(first.success), reusePort: true })
      expect(portOf(second)).toBe(portOf(first.success))
    })
  )
})

describe("Effect 4 shell, seed: connect(..., sock=, local_addr=, family=)", () => {
  it.live("seed: connect over a socket the application made (sock)", () =>
    Effect.gen(function* () {
      const server = yield* Server.serve(echo, { host: LOCALHOST, port: 0 })
      const sock = yield* connectedSocket(portOf(server))
      const ws = yield* Client.connect(uriOf(server), { compression: null, sock })
      expect((ws as WebSocketImpl).socket).toBe(sock)
      yield* ws.send("over the application's socket")
      expect(yield* recvOrDie(ws)).toBe("over the application's socket")
    })
  )

  it.live.skipIf(!hasOpenssl)("seed: connect(wss://..., sock=) runs TLS over the application's socket", () =>
    Effect.gen(function* () {
      const { cert, key } = selfSignedCertificate()
      const server = yield* Server.serve(echo, { host: LOCALHOST, port: 0, tls: { cert, key } })
      const sock = yield* connectedSocket(portOf(server))
      const ws = yield* Client.connect(`wss://localhost:${portOf(server)}/`, {
        compression: null,
        sock,
        tls: { ca: cert }
      })
      yield* ws.send("TLS over the application's socket")
      expect(yield* recvOrDie(ws)).toBe("TLS over the application's socket")
      yield* ws.close()
      yield* eventually(() => (sock.destroyed ? true : undefined))
    })
  )

  it.live("seed: connect from a local address (local_addr) and over one IP family (family)", () =>
    Effect.gen(function* () {
      const remote = yield* Deferred.make<Address | undefined>()
      const server = yield* Server.serve(
        (ws: WebSocket) => Effect.andThen(Deferred.succeed(remote, ws.remoteAddress), ws.waitClosed),
        { host: LOCALHOST, port: 0 }
      )
      const ws = yield* Client.connect(`ws://localhost:${portOf(server)}/`, {
        compression: null,
        family: 4,
        localAddress: LOCALHOST
      })
      expect(hostOf(ws.localAddress)).toBe(LOCALHOST)
      expect(hostOf(ws.remoteAddress)).toBe(LOCALHOST)
      expect(hostOf(yield* Deferred.await(remote))).toBe(LOCALHOST)
    })
  )
})

describe("Effect 4 shell, seed: timeout, the deprecated alias of close_timeout", () => {
  it("seed: timeout sets closeTimeout; closeTimeout wins when both are given", () => {
    expect(Duration.toMillis(resolveOptions({ timeout: "3 seconds" }).closeTimeout)).toBe(3000)
    expect(Duration.toMillis(resolveOptions({ timeout: 3000, closeTimeout: 1000 }).closeTimeout)).toBe(1000)
    expect(Duration.toMillis(resolveOptions({}).closeTimeout)).toBe(10_000)
  })

  it.live("seed: a connection made with timeout uses it as its close timeout", () =>
    Effect.gen(function* () {
      const server = yield* Server.serve(echo, { host: LOCALHOST, port: 0, timeout: "250 millis" })
      const ws = yield* Client.connect(uriOf(server), { compression: null, timeout: 1234 })
      expect(Duration.toMillis((ws as WebSocketImpl).options.closeTimeout)).toBe(1234)
    })
  )
})
