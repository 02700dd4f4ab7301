/**
 * The Effect client over real loopback sockets: connect and its failures (refused, open timeout,
 * rejected, invalid responses), redirects, the scope as the connection's lifetime, reconnection
 * after a server restart, the Client service and a test double, and leaks.
 */
import { describe, expect, it } from "@effect/vitest"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Queue from "effect/Queue"
import * as Schedule from "effect/Schedule"
import * as Scope from "effect/Scope"
import * as TestClock from "effect/TestClock"
import * as Client from "../src/Client.js"
import { State } from "../src/Connection.js"
import {
  ConnectFailed,
  type ConnectionClosed,
  InvalidHeader,
  InvalidUpgrade,
  NegotiationError,
  OpenTimeout
} from "../src/Errors.js"
import { Opcode } from "../src/Frames.js"
import type { WebSocketImpl } from "../src/internal/webSocket.js"
import type { Data, WebSocket } from "../src/WebSocket.js"
import {
  acceptHandshake,
  bounded,
  closeCodeOf,
  echo,
  LOCALHOST,
  portOf,
  rawServer,
  realSleep,
  recvOrDie,
  resourceBaseline,
  serveLocal,
  settledLeaks,
  uriOf
} from "./fixtures/loopback.js"

const NO_COMPRESSION: Client.ConnectOptions = { compression: null }

/** Polls `condition` in real time until it holds. */
const eventually = (condition: () => boolean) => Effect.repeat(realSleep(2), { until: condition })

describe("Client connect", () => {
  it.scopedLive("connects to a ws:// URI and exchanges messages", () =>
    Effect.gen(function* () {
      const server = yield* serveLocal(echo)
      const ws = yield* Client.connect(uriOf(server, "/path?query=1"), NO_COMPRESSION)
      expect(ws.path).toBe("/path?query=1")
      expect(ws.requestHeaders.getAll("Host")).toEqual([`${LOCALHOST}:${portOf(server)}`])
      expect(ws.requestHeaders.getAll("User-Agent")).toHaveLength(1)
      yield* ws.send("hello")
      expect(yield* ws.recv).toBe("hello")
    }).pipe(bounded())
  )

  it.scopedLive("negotiates permessage-deflate by default and exchanges compressible messages", () =>
    Effect.gen(function* () {
      const server = yield* serveLocal(echo, { compression: "deflate" })
      const ws = yield* Client.connect(uriOf(server))
      expect(ws.responseHeaders.getAll("Sec-WebSocket-Extensions")[0]).toContain("permessage-deflate")
      const text = "compress me ".repeat(10_000)
      yield* ws.send(text)
      expect(yield* ws.recv).toBe(text)
    }).pipe(bounded())
  )

  it.scopedLive("the host and port options override the TCP destination, not the Host header", () =>
    Effect.gen(function* () {
      const server = yield* serveLocal(echo)
      const ws = yield* Client.connect("ws://example.invalid/", {
        ...NO_COMPRESSION,
        host: LOCALHOST,
        port: portOf(server)
      })
      expect(ws.requestHeaders.getAll("Host")).toEqual(["example.invalid"])
      yield* ws.send("routed")
      expect(yield* ws.recv).toBe("routed")
    }).pipe(bounded())
  )

  it.scopedLive("a refused connection fails with ConnectFailed, whose message says ECONNREFUSED", () =>
    Effect.gen(function* () {
      const scope = yield* Scope.make()
      const server = yield* serveLocal(echo).pipe(Scope.extend(scope))
      const uri = uriOf(server)
      yield* Scope.close(scope, Exit.void)
      const error = yield* Effect.flip(Client.connect(uri, NO_COMPRESSION))
      expect(error).toMatchObject({ _tag: "ConnectFailed", address: `${LOCALHOST}:${portOf(server)}` })
      expect(error.message).toBe(
        `cannot connect to ${LOCALHOST}:${portOf(server)}: connect ECONNREFUSED ${LOCALHOST}:${portOf(server)}`
      )
    }).pipe(bounded())
  )

  it.scopedLive("an invalid URI fails with InvalidURI", () =>
    Effect.gen(function* () {
      const error = yield* Effect.flip(Client.connect("http://127.0.0.1/", NO_COMPRESSION))
      expect(error._tag).toBe("InvalidURI")
    }).pipe(bounded())
  )

  it.scopedLive("open timeout: a server that never answers the handshake gives OpenTimeout, socket destroyed", () =>
    Effect.gen(function* () {
      const raw = yield* rawServer()
      const start = performance.now()
      const attempt = yield* Effect.fork(Client.connect(`ws://127.0.0.1:${raw.port}/`, { openTimeout: 100 }))
      const peer = yield* raw.accept
      const error = yield* Effect.flip(Fiber.join(attempt))
      const elapsed = performance.now() - start
      expect(error).toMatchObject({ _tag: "OpenTimeout", timeoutMillis: 100 })
      expect(elapsed).toBeGreaterThanOrEqual(90)
      expect(elapsed).toBeLessThan(1000)
      // The request arrived; the socket is destroyed right after the timeout, not when the test ends.
      expect(peer.received.toString("latin1")).toMatch(/^GET \/ HTTP\/1\.1\r\n/)
      yield* Deferred.await(peer.ended).pipe(bounded(500))
    }).pipe(bounded())
  )

  it.scoped("open timeout under TestClock: the default 10 seconds", () =>
    Effect.gen(function* () {
      const raw = yield* rawServer()
      const attempt = yield* Effect.fork(Client.connect(`ws://127.0.0.1:${raw.port}/`))
      const peer = yield* raw.accept
      yield* peer.waitUntil((b) => b.includes("\r\n\r\n"))
      // The timeout is registered on the TestClock when the attempt starts.
      expect((yield* TestClock.sleeps()).length).toBeGreaterThan(0)
      yield* TestClock.adjust("9 seconds")
      expect(attempt.unsafePoll()).toBeNull()
      yield* TestClock.adjust("1 second")
      const error = yield* Effect.flip(Fiber.join(attempt))
      expect(error).toMatchObject({ _tag: "OpenTimeout", timeoutMillis: 10_000 })
    }).pipe(bounded())
  )

  it.scopedLive("a non-101 response fails with InvalidStatusCode carrying status, headers and body", () =>
    Effect.gen(function* () {
      const raw = yield* rawServer()
      const attempt = yield* Effect.fork(Client.connect(`ws://127.0.0.1:${raw.port}/`, NO_COMPRESSION))
      const peer = yield* raw.accept
      yield* peer.readHead()
      yield* peer.write("HTTP/1.1 404 Not Found\r\nContent-Length: 5\r\nX-Why: gone\r\n\r\nnope!")
      const error = yield* Effect.flip(Fiber.join(attempt))
      expect(error._tag).toBe("InvalidStatusCode")
      if (error._tag !== "InvalidStatusCode") return
      expect(error.statusCode).toBe(404)
      expect(error.headers).toContainEqual(["X-Why", "gone"])
      expect(Buffer.from(error.body ?? []).toString()).toBe("nope!")
      yield* Deferred.await(peer.ended)
    }).pipe(bounded())
  )

  it.scopedLive("a 101 with a wrong Sec-WebSocket-Accept fails the handshake", () =>
    Effect.gen(function* () {
      const raw = yield* rawServer()
      const attempt = yield* Effect.fork(Client.connect(`ws://127.0.0.1:${raw.port}/`, NO_COMPRESSION))
      const peer = yield* raw.accept
      yield* peer.readHead()
      yield* peer.write(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
          "Sec-WebSocket-Accept: d3JvbmcgYWNjZXB0IGtleSE=\r\n\r\n"
      )
      const error = yield* Effect.flip(Fiber.join(attempt))
      expect(error).toMatchObject({ _tag: "InvalidHeaderValue", name: "Sec-WebSocket-Accept" })
    }).pipe(bounded())
  )

  it.scopedLive("a server closing before its response fails with InvalidMessage", () =>
    Effect.gen(function* () {
      const raw = yield* rawServer()
      const attempt = yield* Effect.fork(Client.connect(`ws://127.0.0.1:${raw.port}/`, NO_COMPRESSION))
      const peer = yield* raw.accept
      yield* peer.readHead()
      peer.socket.end("HTTP/1.1 101 Switching")
      const error = yield* Effect.flip(Fiber.join(attempt))
      expect(error._tag).toBe("InvalidMessage")
    }).pipe(bounded())
  )
})

describe("Client redirects", () => {
  const redirecting = (status: number) =>
    serveLocal(echo, {
      processRequest: ({ path }) =>
        Effect.succeed(
          path === "/old"
            ? { status, headers: { Location: "/new" } }
            : path === "/loop"
              ? { status, headers: { Location: "/loop" } }
              : undefined
        )
    })

  for (const status of [301, 302, 303, 307, 308]) {
    it.scopedLive(`follows a ${status} redirect to the new location`, () =>
      Effect.gen(function* () {
        const server = yield* redirecting(status)
        const ws = yield* Client.connect(uriOf(server, "/old"), NO_COMPRESSION)
        expect(ws.path).toBe("/new")
        yield* ws.send("redirected")
        expect(yield* ws.recv).toBe("redirected")
      }).pipe(bounded())
    )
  }

  it.scopedLive("follows an absolute redirect to another server", () =>
    Effect.gen(function* () {
      const target = yield* serveLocal(echo)
      const server = yield* serveLocal(echo, {
        processRequest: () => Effect.succeed({ status: 302, headers: { Location: uriOf(target, "/there") } })
      })
      const ws = yield* Client.connect(uriOf(server), NO_COMPRESSION)
      expect(ws.path).toBe("/there")
      expect(ws.remoteAddress).toMatchObject({ port: portOf(target) })
    }).pipe(bounded())
  )

  it.scopedLive("a redirect loop stops after maxRedirects with InvalidMessage", () =>
    Effect.gen(function* () {
      let requests = 0
      const server = yield* serveLocal(echo, {
        processRequest: () =>
          Effect.sync(() => {
            requests++
            return { status: 302, headers: { Location: "/loop" } }
          })
      })
      const error = yield* Effect.flip(Client.connect(uriOf(server, "/loop"), { ...NO_COMPRESSION, maxRedirects: 3 }))
      expect(error).toMatchObject({ _tag: "InvalidMessage", detail: "too many redirects (more than 3)" })
      expect(requests).toBe(4)
    }).pipe(bounded())
  )

  it.scopedLive("a redirect without Location fails with InvalidStatusCode", () =>
    Effect.gen(function* () {
      const server = yield* serveLocal(echo, { processRequest: () => Effect.succeed({ status: 302 }) })
      const error = yield* Effect.flip(Client.connect(uriOf(server), NO_COMPRESSION))
      expect(error).toMatchObject({ _tag: "InvalidStatusCode", statusCode: 302 })
    }).pipe(bounded())
  )
})

describe("Client lifetime", () => {
  it.scopedLive("closing the connection's scope performs the closing handshake with 1000", () =>
    Effect.gen(function* () {
      const closed = yield* Deferred.make<ConnectionClosed>()
      const server = yield* serveLocal((ws) =>
        Effect.flip(Effect.forever(recvOrDie(ws))).pipe(Effect.flatMap((e) => Deferred.succeed(closed, e)))
      )
      const ws = yield* Effect.scoped(Client.connect(uriOf(server), NO_COMPRESSION))
      expect(ws.state).toBe(State.CLOSED)
      expect(impl(ws).socket.destroyed).toBe(true)
      const error = yield* Deferred.await(closed)
      expect([error._tag, error.code]).toEqual(["ConnectionClosedOK", 1000])
    }).pipe(bounded())
  )

  it.scopedLive("the client half-closes only after the server did (RFC 6455 §7.1.1)", () =>
    Effect.gen(function* () {
      const raw = yield* rawServer()
      const attempt = yield* Effect.fork(
        Client.connect(`ws://127.0.0.1:${raw.port}/`, { ...NO_COMPRESSION, closeTimeout: 1000 })
      )
      const peer = yield* raw.accept
      yield* acceptHandshake(peer)
      const ws = yield* Fiber.join(attempt)
      yield* peer.write(Buffer.from([0x88, 0x02, 0x03, 0xe8])) // close 1000 from the server
      const answer = yield* peer.readFrame()
      expect([answer.opcode, answer.masked, closeCodeOf(answer)]).toEqual([Opcode.Close, true, 1000])
      yield* realSleep(30)
      expect(yield* Deferred.isDone(peer.ended)).toBe(false)
      peer.socket.end()
      yield* Deferred.await(peer.ended)
      yield* ws.waitClosed
      expect(ws.closeCode).toBe(1000)
    }).pipe(bounded())
  )

  it.live("nothing leaks: after the scope closes, client and server sockets are destroyed", () =>
    Effect.gen(function* () {
      const before = yield* resourceBaseline
      let server: { connections: ReadonlySet<WebSocket> } | undefined
      const clients: Array<WebSocket> = []
      yield* Effect.scoped(
        Effect.gen(function* () {
          const s = yield* serveLocal(echo)
          server = s
          for (let i = 0; i < 3; i++) {
            const ws = yield* Client.connect(uriOf(s), { ...NO_COMPRESSION, pingInterval: 20 })
            clients.push(ws)
            yield* ws.send(`m${i}`)
            yield* ws.recv
          }
          yield* realSleep(50)
          // A failed attempt leaves nothing behind either.
          yield* Effect.flip(Client.connect(uriOf(s), { ...NO_COMPRESSION, subprotocols: ["x"], openTimeout: 1 }))
        })
      )
      expect(server?.connections.size).toBe(0)
      for (const ws of clients) {
        expect(ws.state).toBe(State.CLOSED)
        expect(impl(ws).socket.destroyed).toBe(true)
      }
      expect(yield* settledLeaks(before)).toEqual({})
    }).pipe(bounded())
  )
})

describe("Client reconnect", () => {
  it.live("reconnects after the server restarts on the same port", () =>
    Effect.gen(function* () {
      const first = yield* Scope.make()
      const server1 = yield* serveLocal(echo).pipe(Scope.extend(first))
      const port = portOf(server1)
      const connections: Array<WebSocket> = []
      const loop = yield* Effect.fork(
        Client.reconnect(
          `ws://127.0.0.1:${port}/`,
          (ws) =>
            Effect.gen(function* () {
              connections.push(ws)
              yield* ws.send(`hello ${connections.length}`)
              expect(yield* ws.recv).toBe(`hello ${connections.length}`)
              yield* Effect.forever(ws.recv)
            }),
          { ...NO_COMPRESSION, schedule: Schedule.spaced("20 millis") }
        )
      )
      yield* eventually(() => connections.length === 1)
      yield* Scope.close(first, Exit.void)
      // Reconnection attempts fail (connection refused) while the server is down.
      yield* realSleep(80)
      expect(connections.length).toBe(1)
      expect(connections[0]!.closeCode).toBe(1001)
      yield* Effect.scoped(
        Effect.gen(function* () {
          yield* serveLocal(echo, { port })
          yield* eventually(() => connections.length === 2)
          expect(connections[1]!.state).toBe(State.OPEN)
          yield* Fiber.interrupt(loop)
        })
      )
      // Interrupting the loop closed the current connection.
      expect(connections[1]!.state).toBe(State.CLOSED)
    }).pipe(bounded())
  )

  it.live("a fatal handler error stops the loop", () =>
    Effect.gen(function* () {
      let sessions = 0
      yield* Effect.scoped(
        Effect.gen(function* () {
          // The server ends each connection at once (1000), which ends each session.
          const server = yield* serveLocal(() => Effect.void)
          const error = yield* Effect.flip(
            Client.reconnect(
              uriOf(server),
              () =>
                Effect.suspend(() => {
                  sessions++
                  return sessions < 3 ? Effect.void : Effect.fail({ _tag: "Fatal" as const })
                }),
              { ...NO_COMPRESSION, schedule: Schedule.spaced("10 millis") }
            )
          )
          expect(error).toEqual({ _tag: "Fatal" })
        })
      )
      // Handlers that return normally reconnect once the connection closes.
      expect(sessions).toBe(3)
    }).pipe(bounded())
  )

  it.live("isRetryable decides which connection failures are fatal", () =>
    Effect.gen(function* () {
      let requests = 0
      yield* Effect.scoped(
        Effect.gen(function* () {
          const server = yield* serveLocal(echo, {
            processRequest: () =>
              Effect.sync(() => {
                requests++
                return { status: 403 }
              })
          })
          const options = { ...NO_COMPRESSION, schedule: Schedule.spaced("10 millis") }
          // By default a rejected handshake is retried...
          const retrying = yield* Effect.fork(Client.reconnect(uriOf(server), () => Effect.void, options))
          yield* eventually(() => requests >= 3)
          yield* Fiber.interrupt(retrying)
          // ...unless isRetryable says otherwise.
          const error = yield* Effect.flip(
            Client.reconnect(uriOf(server), () => Effect.void, {
              ...options,
              isRetryable: (e) => e._tag !== "InvalidStatusCode"
            })
          )
          expect(error).toMatchObject({ _tag: "InvalidStatusCode", statusCode: 403 })
        })
      )
    }).pipe(bounded())
  )
})

describe("Client reconnect with a Client service double", () => {
  /** A Client whose connect fails with `failures` in turn, then delegates to the real one. */
  const scripted = (failures: ReadonlyArray<Client.ConnectError>) => {
    const attempts = { count: 0 }
    const real = Client.make(NO_COMPRESSION)
    const double = Layer.succeed(Client.Client, {
      connect: (uri, options) =>
        Effect.suspend(() => {
          const failure = failures[attempts.count++]
          return failure !== undefined ? Effect.fail(failure) : real.connect(uri, options)
        }),
      unixConnect: () => Effect.die("not used")
    })
    return { attempts, double }
  }

  it.live("once the schedule is exhausted, it fails with the last error instead of starting over", () =>
    Effect.gen(function* () {
      const refused = (n: number) => new ConnectFailed({ address: `attempt ${n}`, cause: new Error("ECONNREFUSED") })
      const { attempts, double } = scripted([1, 2, 3, 4, 5, 6].map(refused))
      const error = yield* Effect.flip(
        Client.reconnect("ws://127.0.0.1:1/", () => Effect.void, { schedule: Schedule.recurs(2) }).pipe(
          Effect.provide(double)
        )
      )
      // The first attempt and two retries, through the Client service.
      expect(attempts.count).toBe(3)
      expect(error).toMatchObject({ _tag: "ConnectFailed", address: "attempt 3" })
    }).pipe(bounded())
  )

  it.scopedLive("every error of establishing the connection is retried by default, an invalid URI is not", () =>
    Effect.gen(function* () {
      const server = yield* serveLocal(echo)
      const { attempts, double } = scripted([
        new ConnectFailed({ address: "x", cause: new Error("ECONNREFUSED") }),
        new InvalidUpgrade({ name: "Upgrade", value: "h2c" }),
        new InvalidHeader({ name: "Sec-WebSocket-Accept", value: "bad" }),
        new NegotiationError({ detail: "unsupported extension" }),
        new OpenTimeout({ timeoutMillis: 10 })
      ])
      const error = yield* Effect.flip(
        Client.reconnect(
          uriOf(server),
          (ws) => Effect.zipRight(ws.send("x"), Effect.fail({ _tag: "Fatal" as const, subprotocol: ws.subprotocol })),
          { schedule: Schedule.spaced("5 millis") }
        ).pipe(Effect.provide(double))
      )
      expect(attempts.count).toBe(6)
      expect(error).toEqual({ _tag: "Fatal", subprotocol: undefined })
      const invalid = yield* Effect.flip(Client.reconnect("http://x/", () => Effect.void))
      expect(invalid._tag).toBe("InvalidURI")
      expect(Client.isRetryableByDefault(invalid)).toBe(false)
    }).pipe(bounded())
  )
})

describe("Client service", () => {
  /** An application that depends on the Client service only. */
  const app = (uri: string) =>
    Effect.gen(function* () {
      const client = yield* Client.Client
      return yield* Effect.scoped(
        Effect.gen(function* () {
          const ws = yield* client.connect(uri)
          yield* ws.send("ping")
          return [yield* ws.recv, ws.subprotocol] as const
        })
      )
    })

  it.scopedLive("Client.layer provides real connections with default options", () =>
    Effect.gen(function* () {
      const server = yield* serveLocal(echo, { subprotocols: ["v1"] })
      const result = yield* app(uriOf(server)).pipe(
        Effect.provide(Client.layer({ compression: null, subprotocols: ["v1"] }))
      )
      expect(result).toEqual(["ping", "v1"])
    }).pipe(bounded())
  )

  it.effect("a test double layer replaces the network", () =>
    Effect.gen(function* () {
      const inbox = yield* Queue.unbounded<Data>()
      const fake = {
        send: (message: Data) => Queue.offer(inbox, `echo: ${String(message)}`),
        recv: Queue.take(inbox),
        subprotocol: "fake"
      } as unknown as WebSocket
      const double = Layer.succeed(Client.Client, {
        connect: () => Effect.succeed(fake),
        unixConnect: () => Effect.succeed(fake)
      })
      expect(yield* app("ws://nowhere.invalid/").pipe(Effect.provide(double))).toEqual(["echo: ping", "fake"])
    })
  )
})

/** The internal connection behind the public interface (for socket-level assertions). */
const impl = (ws: WebSocket): WebSocketImpl => ws as WebSocketImpl
