/**
 * The seeds' `serve(...)` / `connect(...)` construction options that Node's `create_server` /
 * `create_connection` took: `sock` (a listener or socket the application made), `backlog`,
 * `reuse_port`, `local_addr`, `family`, and the deprecated `timeout` alias of `close_timeout`.
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
  bounded,
  echo,
  hasOpenssl,
  LOCALHOST,
  portOf,
  realSleep,
  selfSignedCertificate,
  uriOf
} from "./fixtures/loopback.js"

const hostOf = (address: Address | undefined) => (address?._tag === "TcpAddress" ? address.hostname : undefined)

/** A net.Server made by the test, closed with the scope if the server did not close it. */
const appServer = Effect.acquireRelease(
  Effect.sync(() => net.createServer({ allowHalfOpen: true })),
  (server) => Effect.sync(() => server.listening && server.close())
)

describe("seed: serve(..., sock=, backlog=, reuse_port=)", () => {
  it.scopedLive("seed: serve on a net.Server the application made (sock), which it listens on and closes", () =>
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
          expect(yield* ws.recv).toBe("over the application's listener")
        })
      )
      expect(yield* Deferred.await(listening)).toBe(true)
      // The server owned the listener: shutting down closed it.
      expect(app.listening).toBe(false)
    }).pipe(bounded())
  )

  it.scopedLive("seed: serve on a net.Server already listening (sock): its address is the server's", () =>
    Effect.gen(function* () {
      const app = yield* appServer
      yield* Effect.async<void>((resume) => {
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
      expect(yield* ws.recv).toBe("hi")
    }).pipe(bounded())
  )

  it.scopedLive("seed: backlog is passed to listen", () =>
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
    }).pipe(bounded())
  )

  it.scopedLive("seed: reuse_port lets two servers share a port on Node >= 22.12, and fails clearly before", () =>
    Effect.gen(function* () {
      const [major = 0, minor = 0] = process.versions.node.split(".").map(Number)
      const supported = major > 23 || (major === 23 && minor >= 1) || (major === 22 && minor >= 12)
      const first = yield* Effect.either(Server.serve(echo, { host: LOCALHOST, port: 0, reusePort: true }))
      if (!supported) {
        expect(first._tag).toBe("Left")
        if (first._tag === "Left") expect(first.left.message).toContain("reusePort needs Node 22.12 or later")
        return
      }
      if (first._tag === "Left") return yield* Effect.die(first.left)
      const second = yield* Server.serve(echo, { host: LOCALHOST, port: portOf(first.right), reusePort: true })
      expect(portOf(second)).toBe(portOf(first.right))
    }).pipe(bounded())
  )
})

describe("seed: connect(..., sock=, local_addr=, family=)", () => {
  it.scopedLive("seed: connect over a socket the application made (sock)", () =>
    Effect.gen(function* () {
      const server = yield* Server.serve(echo, { host: LOCALHOST, port: 0 })
      const sock = yield* Effect.acquireRelease(
        Effect.async<net.Socket>((resume) => {
          const socket = net.connect({ host: LOCALHOST, port: portOf(server), allowHalfOpen: true })
          socket.once("connect", () => resume(Effect.succeed(socket)))
        }),
        (socket) => Effect.sync(() => socket.destroy())
      )
      const ws = yield* Client.connect(uriOf(server), { compression: null, sock })
      expect((ws as WebSocketImpl).socket).toBe(sock)
      yield* ws.send("over the application's socket")
      expect(yield* ws.recv).toBe("over the application's socket")
    }).pipe(bounded())
  )

  it.scopedLive.skipIf(!hasOpenssl)("seed: connect(wss://..., sock=) runs TLS over the application's socket", () =>
    Effect.gen(function* () {
      const { cert, key } = selfSignedCertificate()
      const server = yield* Server.serve(echo, { host: LOCALHOST, port: 0, tls: { cert, key } })
      const sock = yield* Effect.acquireRelease(
        Effect.async<net.Socket>((resume) => {
          const socket = net.connect({ host: LOCALHOST, port: portOf(server), allowHalfOpen: true })
          socket.once("connect", () => resume(Effect.succeed(socket)))
        }),
        (socket) => Effect.sync(() => socket.destroy())
      )
      const ws = yield* Client.connect(`wss://localhost:${portOf(server)}/`, {
        compression: null,
        sock,
        tls: { ca: cert }
      })
      yield* ws.send("TLS over the application's socket")
      expect(yield* ws.recv).toBe("TLS over the application's socket")
      // The TLS socket wraps the application's: closing the connection ends it too.
      yield* ws.close()
      yield* Effect.repeat(realSleep(1), { until: () => sock.destroyed })
    }).pipe(bounded())
  )

  it.scopedLive("seed: connect from a local address (local_addr) and over one IP family (family)", () =>
    Effect.gen(function* () {
      const remote = yield* Deferred.make<Address | undefined>()
      const server = yield* Server.serve(
        (ws: WebSocket) => Effect.zipRight(Deferred.succeed(remote, ws.remoteAddress), ws.waitClosed),
        {
          host: LOCALHOST,
          port: 0
        }
      )
      const ws = yield* Client.connect(`ws://localhost:${portOf(server)}/`, {
        compression: null,
        family: 4,
        localAddress: LOCALHOST
      })
      expect(hostOf(ws.localAddress)).toBe(LOCALHOST)
      expect(hostOf(ws.remoteAddress)).toBe(LOCALHOST)
      expect(hostOf(yield* Deferred.await(remote))).toBe(LOCALHOST)
    }).pipe(bounded())
  )
})

describe("seed: timeout, the deprecated alias of close_timeout", () => {
  it("seed: timeout sets closeTimeout; closeTimeout wins when both are given", () => {
    expect(Duration.toMillis(resolveOptions({ timeout: "3 seconds" }).closeTimeout)).toBe(3000)
    expect(Duration.toMillis(resolveOptions({ timeout: 3000, closeTimeout: 1000 }).closeTimeout)).toBe(1000)
    expect(Duration.toMillis(resolveOptions({}).closeTimeout)).toBe(10_000)
  })

  it.scopedLive("seed: a connection made with timeout uses it as its close timeout", () =>
    Effect.gen(function* () {
      const server = yield* Server.serve(echo, { host: LOCALHOST, port: 0, timeout: "250 millis" })
      const ws = yield* Client.connect(uriOf(server), { compression: null, timeout: 1234 })
      expect(Duration.toMillis((ws as WebSocketImpl).options.closeTimeout)).toBe(1234)
    }).pipe(bounded())
  )
})
