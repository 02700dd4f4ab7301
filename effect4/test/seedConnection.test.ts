/**
 * The Effect 4 shell as test/seedConnection.test.ts, seedTypes.test.ts and seedAuth.test.ts check
 * the Effect 3 one, over real loopback sockets: `open`, `closed`, `latency`, a concurrent `recv`,
 * the read and write limits' marks, the branded `Origin` and `Subprotocol`, and the `username` and
 * `realm` that `Auth.basicAuth` authenticated.
 */
import type * as net from "node:net"
import { describe, expect, expectTypeOf, it } from "@effect/vitest"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Result from "effect/Result"
import * as Auth from "../src/Auth.js"
import * as Client from "../src/Client.js"
import { InvalidArgument } from "../src/Errors.js"
import type { WebSocketImpl } from "../src/internal/webSocket.js"
import * as Server from "../src/Server.js"
import { Origin, Subprotocol, type WebSocket } from "../src/WebSocket.js"
import { echo, eventually, portOf, recvOrDie, serveLocal, uriOf } from "./fixtures/loopback.js"

const impl = (ws: WebSocket): WebSocketImpl => ws as WebSocketImpl
const internals = (ws: WebSocket) => ws as unknown as { recvWaiting: boolean; drainWaiters: Set<unknown> | undefined }

describe("Effect 4 shell, seed: open / closed / latency", () => {
  it.live("seed: open while the connection is open, closed once it is closed", () =>
    Effect.gen(function* () {
      const server = yield* serveLocal(echo)
      const ws = yield* Client.connect(uriOf(server), { compression: null })
      expect([ws.open, ws.closed]).toEqual([true, false])
      yield* ws.close()
      expect([ws.open, ws.closed]).toEqual([false, true])
    })
  )

  it.live("seed: latency is 0 before any ping, then the round trip of the last ping() in seconds", () =>
    Effect.gen(function* () {
      const server = yield* serveLocal(echo, { pingInterval: null })
      const ws = yield* Client.connect(uriOf(server), { compression: null, pingInterval: null })
      expect(ws.latency).toBe(0)
      const millis = yield* yield* ws.ping()
      expect(ws.latency).toBeGreaterThan(0)
      expect(ws.latency).toBe(millis / 1000)
      const again = yield* yield* ws.ping("second")
      expect(ws.latency).toBe(again / 1000)
    })
  )
})

describe("Effect 4 shell, seed: recv concurrency", () => {
  it.live("seed: recv fails at once with ConcurrencyError when another fiber is already waiting", () =>
    Effect.gen(function* () {
      const server = yield* serveLocal(echo)
      const ws = yield* Client.connect(uriOf(server), { compression: null })
      const first = yield* Effect.forkChild(ws.recv)
      yield* eventually(() => (internals(ws).recvWaiting ? true : undefined))
      const error = yield* Effect.flip(ws.recv)
      expect(error._tag).toBe("ConcurrencyError")
      expect(error.message).toBe("cannot call recv while another fiber is already waiting for the next message")
      yield* ws.send("one")
      expect(yield* Fiber.join(first)).toBe("one")
      yield* ws.send("two")
      expect(yield* recvOrDie(ws)).toBe("two")
    })
  )

  it.live("seed: an interrupted recv lets the next recv wait (canceling recv is safe)", () =>
    Effect.gen(function* () {
      const server = yield* serveLocal(echo)
      const ws = yield* Client.connect(uriOf(server), { compression: null })
      const first = yield* Effect.forkChild(ws.recv)
      yield* eventually(() => (internals(ws).recvWaiting ? true : undefined))
      yield* Fiber.interrupt(first)
      const second = yield* Effect.forkChild(ws.recv)
      yield* ws.send("after")
      expect(yield* Fiber.join(second)).toBe("after")
    })
  )
})

describe("Effect 4 shell: forEachMessage", () => {
  it.live(
    "forEachMessage answers in order, waits on answers over writeLimit, and fails with the handler's failure",
    () =>
      Effect.gen(function* () {
        const server = yield* serveLocal(
          (ws) =>
            ws.forEachMessage(
              (message): Effect.Effect<unknown, unknown> =>
                message === "fail" ? Exit.fail("handler failed") : message === "skip" ? Effect.void : ws.send(message)
            ),
          { writeLimit: 1024 }
        )
        const ws = yield* Client.connect(uriOf(server), { compression: null })
        // 16 KiB answers over a 1 KiB writeLimit: each one waits for the socket, in order.
        const sent = Array.from({ length: 32 }, (_, i) => new Uint8Array(16 * 1024).fill(i))
        for (const message of sent) yield* ws.send(message)
        yield* ws.send("skip")
        yield* ws.send("last")
        for (const message of sent) {
          expect(Buffer.from(message).equals((yield* recvOrDie(ws)) as Uint8Array)).toBe(true)
        }
        expect(yield* recvOrDie(ws)).toBe("last")
        yield* ws.send("fail")
        const error = yield* Effect.flip(recvOrDie(ws))
        expect([error._tag, error.code]).toEqual(["ConnectionClosedError", 1011])
      })
  )

  it.live("an uninterruptible recv interrupted while it waits still waits, and gets the next message", () =>
    Effect.gen(function* () {
      const opened = yield* Deferred.make<WebSocket>()
      const server = yield* serveLocal((ws) => Effect.andThen(Deferred.succeed(opened, ws), ws.waitClosed))
      const ws = yield* Client.connect(uriOf(server), { compression: null })
      const serverWs = yield* Deferred.await(opened)
      const got = yield* Deferred.make<unknown>()
      const reader = yield* Effect.forkChild(
        Effect.uninterruptible(Effect.flatMap(ws.recv, (m) => Deferred.succeed(got, m)))
      )
      yield* eventually(() => (internals(ws).recvWaiting ? true : undefined))
      yield* Effect.forkChild(Fiber.interrupt(reader))
      // Still the waiting recv: another one fails at once.
      expect((yield* Effect.flip(ws.recv))._tag).toBe("ConcurrencyError")
      yield* serverWs.send("kept")
      expect(yield* Deferred.await(got)).toBe("kept")
      yield* Fiber.await(reader)
    })
  )
})

describe("Effect 4 shell, seed: read_limit and write_limit", () => {
  it.live("seed: read_limit is the high-water mark of the client's incoming buffer too", () =>
    Effect.gen(function* () {
      const server = yield* serveLocal(echo)
      const readLimit = 256 * 1024
      const ws = yield* Client.connect(uriOf(server), { compression: null, readLimit })
      expect((impl(ws).socket as net.Socket).readableHighWaterMark).toBe(readLimit)
    })
  )

  it.live("seed: a send waiting on write_limit resumes at the low-water mark, a quarter of the limit", () =>
    Effect.gen(function* () {
      const writeLimit = 64 * 1024
      const server = yield* serveLocal(echo)
      const ws = yield* Client.connect(uriOf(server), { compression: null, writeLimit })
      const socket = impl(ws).socket
      // The buffered byte count the connection sees, set by the test.
      let buffered = 100 * 1024
      Object.defineProperty(socket, "writableLength", { get: () => buffered, configurable: true })
      const sending = yield* Effect.forkChild(ws.send("x"))
      yield* eventually(() => (internals(ws).drainWaiters?.size === 1 ? true : undefined))
      // Between the low-water mark and the limit: still waiting.
      buffered = 32 * 1024
      socket.emit("drain")
      for (let i = 0; i < 20; i++) yield* Effect.yieldNow
      expect(sending.pollUnsafe()).toBeUndefined()
      expect(internals(ws).drainWaiters?.size).toBe(1)
      // At a quarter of the limit: the send completes.
      buffered = writeLimit / 4
      socket.emit("drain")
      yield* Fiber.join(sending)
      delete (socket as unknown as Record<string, unknown>).writableLength
    })
  )
})

describe("Effect 4 shell, seed: typing.Origin and typing.Subprotocol", () => {
  it("seed: Subprotocol is a distinct type: a branded string whose constructor checks a token", () => {
    const chat: Subprotocol = Subprotocol("chat")
    expect(chat).toBe("chat")
    expect(Subprotocol("v2.json+stream")).toBe("v2.json+stream")
    expect(() => Subprotocol("two words")).toThrow()
    const refused = Subprotocol.result("two words")
    expect(Result.isFailure(refused) && refused.failure.message).toBe('invalid subprotocol: "two words"')
    expect(Result.isFailure(Subprotocol.result(""))).toBe(true)
    expect(Subprotocol.is("chat, superchat")).toBe(false)
    expectTypeOf<Subprotocol>().toMatchTypeOf<string>()
    expectTypeOf<string>().not.toMatchTypeOf<Subprotocol>()
    expectTypeOf<WebSocket["subprotocol"]>().toEqualTypeOf<Subprotocol | undefined>()
  })

  it("seed: Origin is a distinct type: a branded string whose constructor checks an origin", () => {
    expect(Origin("https://example.com")).toBe("https://example.com")
    expect(Origin("http://[::1]:8080")).toBe("http://[::1]:8080")
    expect(Origin("null")).toBe("null")
    for (const bad of ["example.com", "https://example.com/path", "", "https:// example.com"]) {
      expect(Result.isFailure(Origin.result(bad))).toBe(true)
    }
    expectTypeOf<Origin>().toMatchTypeOf<string>()
    expectTypeOf<string>().not.toMatchTypeOf<Origin>()
  })

  it.live("seed: connect with a branded origin and subprotocols; the negotiated subprotocol", () =>
    Effect.gen(function* () {
      const seen = yield* Deferred.make<Subprotocol | undefined>()
      // Plain strings as inputs on the server, branded values on the client: both compile.
      const server = yield* serveLocal((ws) => Effect.andThen(Deferred.succeed(seen, ws.subprotocol), ws.waitClosed), {
        origins: ["https://example.com"],
        subprotocols: ["superchat", "chat"]
      })
      const ws = yield* Client.connect(uriOf(server), {
        origin: Origin("https://example.com"),
        subprotocols: [Subprotocol("chat")]
      })
      const negotiated: Subprotocol | undefined = ws.subprotocol
      expect(negotiated).toBe("chat")
      expect(yield* Deferred.await(seen)).toBe("chat")
      const refused = yield* Effect.flip(Client.connect(uriOf(server), { origin: "https://evil.example" }))
      expect(refused).toMatchObject({ _tag: "InvalidStatusCode", statusCode: 403 })
    })
  )
})

describe("Effect 4 shell, seed: basic_auth_protocol_factory", () => {
  it("seed: one of credentials or check_credentials must be provided but not both", () => {
    const check = () => Effect.succeed(true)
    // @ts-expect-error both: the options type is a union that rejects it
    expect(() => Auth.basicAuth({ realm: "r", credentials: ["a", "b"], checkCredentials: check })).toThrow(
      InvalidArgument
    )
    // @ts-expect-error neither
    expect(() => Auth.basicAuth({ realm: "r" })).toThrow("provide either credentials or checkCredentials")
    expect(() => Auth.basicAuth({ realm: "r", credentials: ["a", "b"] })).not.toThrow()
    expect(() => Auth.basicAuth({ realm: "r", checkCredentials: check })).not.toThrow()
  })

  it("seed: raises TypeError (InvalidArgument) if the credentials argument has the wrong type", () => {
    for (const credentials of [["a"], ["a", 1], "a:b", [["a", "b"], ["c"]], 42]) {
      expect(() => Auth.basicAuth({ realm: "r", credentials: credentials as never })).toThrow(InvalidArgument)
    }
  })

  it.live("seed: the connection exposes the authenticated username and the realm", () =>
    Effect.gen(function* () {
      const seen = yield* Deferred.make<readonly [string | undefined, string | undefined, string]>()
      const server = yield* Server.serve(
        (ws: WebSocket, user: string) =>
          Effect.andThen(Deferred.succeed(seen, [ws.username, ws.realm, user]), ws.waitClosed),
        {
          host: "127.0.0.1",
          port: 0,
          processRequest: Auth.basicAuth({ realm: "my dev server", credentials: ["hello", "iloveyou"] })
        }
      )
      const ws = yield* Client.connect(`ws://hello:iloveyou@127.0.0.1:${portOf(server)}/`)
      expect(yield* Deferred.await(seen)).toEqual(["hello", "my dev server", "hello"])
      // The client side was not authenticated by a basicAuth of its own.
      expect([ws.username, ws.realm]).toEqual([undefined, undefined])
    })
  )

  it.live("seed: without basicAuth, username is unset even when the request carries credentials", () =>
    Effect.gen(function* () {
      const seen = yield* Deferred.make<string | undefined>()
      const server = yield* serveLocal((ws: WebSocket) =>
        Effect.andThen(Deferred.succeed(seen, ws.username), ws.waitClosed)
      )
      yield* Client.connect(`ws://hello:iloveyou@127.0.0.1:${portOf(server)}/`)
      expect(yield* Deferred.await(seen)).toBeUndefined()
    })
  )
})
