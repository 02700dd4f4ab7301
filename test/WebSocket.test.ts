/**
 * The connection API (`WebSocket`) over real loopback sockets: echo of every kind of message,
 * fragmentation, recv interruption, ping/pong, every close path, keepalive, close timeout and
 * backpressure in both directions.
 */
import { describe, expect, it } from "@effect/vitest"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Option from "effect/Option"
import * as Stream from "effect/Stream"
import * as TestClock from "effect/TestClock"
import * as Client from "../src/Client.js"
import { State } from "../src/Connection.js"
import type { ConnectionClosed } from "../src/Errors.js"
import { Opcode } from "../src/Frames.js"
import type { WebSocketImpl } from "../src/internal/webSocket.js"
import type { Data, WebSocket } from "../src/WebSocket.js"
import {
  acceptHandshake,
  bounded,
  closeCodeOf,
  closePayload,
  echo,
  frameBytes,
  portOf,
  rawClient,
  rawServer,
  realSleep,
  recvOrDie,
  serveLocal,
  uriOf
} from "./fixtures/loopback.js"

const MiB = 1_048_576

/** Polls until `condition` holds. */
const eventually = (condition: () => boolean) => Effect.repeat(realSleep(1), { until: condition })

/** Options of clients facing raw servers: a short close timeout, since raw peers never close TCP. */
const RAW: Client.ConnectOptions = { compression: null, closeTimeout: 100 }

/** A raw server (a peer the test drives frame by frame) and a client whose handshake it accepted. */
const rawPair = (options: Client.ConnectOptions = {}) =>
  Effect.gen(function* () {
    const raw = yield* rawServer()
    const fiber = yield* Effect.fork(Client.connect(`ws://127.0.0.1:${raw.port}/`, { ...RAW, ...options }))
    const peer = yield* raw.accept
    yield* acceptHandshake(peer)
    const ws = yield* Fiber.join(fiber)
    return { ws, peer }
  })

/** An echo server and a client connected to it. */
const echoPair = (options: Client.ConnectOptions = {}) =>
  Effect.gen(function* () {
    const server = yield* serveLocal(echo)
    const ws = yield* Client.connect(uriOf(server), { compression: null, ...options })
    return { server, ws }
  })

/** A server whose handler hands its connection to the test, then runs `rest`. */
const serverWith = (rest: (ws: WebSocket) => Effect.Effect<void, unknown>, options = {}) =>
  Effect.gen(function* () {
    const opened = yield* Deferred.make<WebSocket>()
    const done = yield* Deferred.make<ConnectionClosed | undefined>()
    const server = yield* serveLocal(
      (ws) =>
        Deferred.succeed(opened, ws).pipe(
          Effect.zipRight(rest(ws)),
          Effect.tapError((e) =>
            Deferred.succeed(
              done,
              (e as { _tag?: string })._tag?.startsWith("ConnectionClosed") ? (e as never) : undefined
            )
          ),
          Effect.tap(() => Deferred.succeed(done, undefined))
        ),
      options
    )
    return { server, opened, done }
  })

/** The internal connection behind the public interface (for socket-level assertions). */
const impl = (ws: WebSocket): WebSocketImpl => ws as WebSocketImpl

const bytes = (n: number, seed = 7): Uint8Array => {
  const out = new Uint8Array(n)
  for (let i = 0; i < n; i++) out[i] = (i * 31 + seed) & 0xff
  return out
}

describe("WebSocket echo over TCP", () => {
  const cases: ReadonlyArray<readonly [string, Data]> = [
    ["text", "Hello, ☃ world"],
    ["binary", bytes(300)],
    ["empty text", ""],
    ["empty binary", new Uint8Array(0)],
    ["1 MiB binary", bytes(MiB)],
    ["1 MiB text", "x".repeat(MiB)],
    // Large text is decoded as Latin-1 when it is ASCII: the bytes just over 0x7f must not be.
    ["2 KiB ASCII text", "~\u007f".repeat(1024)],
    ["2 KiB text ending in é", `${"a".repeat(2048)}é`],
    ["2 KiB text of 2-byte characters", "é".repeat(1024)]
  ]
  for (const [name, message] of cases) {
    it.scopedLive(`client sends ${name} and receives it back`, () =>
      Effect.gen(function* () {
        const { ws } = yield* echoPair()
        yield* ws.send(message)
        const received = yield* ws.recv
        expect(typeof received).toBe(typeof message)
        if (typeof message === "string") expect(received).toBe(message)
        else expect(Buffer.from(received as Uint8Array).equals(Buffer.from(message))).toBe(true)
      }).pipe(bounded())
    )
  }

  it.scopedLive("client sends fragmented text from an iterable and receives one message", () =>
    Effect.gen(function* () {
      const { ws } = yield* echoPair()
      yield* ws.send(["Hel", "lo", "", " ☃"])
      expect(yield* ws.recv).toBe("Hello ☃")
    }).pipe(bounded())
  )

  it.scopedLive("client sends fragmented binary from a Stream and receives one message", () =>
    Effect.gen(function* () {
      const { ws } = yield* echoPair()
      yield* ws.send(Stream.make(new Uint8Array([1, 2]), new Uint8Array([3]), new Uint8Array([4, 5, 6])))
      expect([...((yield* ws.recv) as Uint8Array)]).toEqual([1, 2, 3, 4, 5, 6])
    }).pipe(bounded())
  )

  it.scopedLive("fragments go out as one Text frame then Continuation frames, FIN on the last", () =>
    Effect.gen(function* () {
      const { ws, peer } = yield* rawPair({ pingInterval: null })
      yield* ws.send(Stream.make("a", "b", "c"))
      const frames = [yield* peer.readFrame(), yield* peer.readFrame(), yield* peer.readFrame()]
      expect(frames.map((f) => [f.opcode, f.fin, f.masked, f.payload.toString()])).toEqual([
        [Opcode.Text, false, true, "a"],
        [Opcode.Continuation, false, true, "b"],
        [Opcode.Continuation, true, true, "c"]
      ])
      yield* ws.send([])
      yield* ws.send("after")
      // An empty iterable sends nothing at all.
      expect((yield* peer.readFrame()).payload.toString()).toBe("after")
    }).pipe(bounded())
  )

  it.scopedLive("server receives a fragmented message sent by a raw client as one message", () =>
    Effect.gen(function* () {
      const { server, opened } = yield* serverWith((ws) => ws.waitClosed)
      const peer = yield* rawClient(portOf(server))
      const ws = yield* Deferred.await(opened)
      yield* peer.write(frameBytes(Opcode.Binary, new Uint8Array([1]), true, false))
      yield* peer.write(frameBytes(Opcode.Ping, "p", true))
      yield* peer.write(frameBytes(Opcode.Continuation, new Uint8Array([2]), true, true))
      expect([...((yield* ws.recv) as Uint8Array)]).toEqual([1, 2])
      // The ping in the middle of the message was answered.
      const pong = yield* peer.readFrame()
      expect([pong.opcode, pong.payload.toString()]).toEqual([Opcode.Pong, "p"])
    }).pipe(bounded())
  )

  for (const [name, fragments] of [
    ["iterable", ["text", new Uint8Array([1])]],
    ["Stream", Stream.make<Array<Data>>(new Uint8Array([1]), "text")]
  ] as const) {
    it.scopedLive(`client sends mixed-type fragments from an ${name}: InvalidArgument, closed with 1011`, () =>
      Effect.gen(function* () {
        const { server, done } = yield* serverWith((ws) => Effect.forever(ws.recv))
        const client = yield* Client.connect(uriOf(server), { compression: null })
        const error = yield* Effect.flip(client.send(fragments as Iterable<Data>))
        expect(error._tag).toBe("InvalidArgument")
        yield* client.waitClosed
        // Failing the connection sent 1011; the client then ignores the server's answer (RFC 6455 §7.1.7).
        const closed = yield* Effect.flip(recvOrDie(client))
        expect([closed._tag, closed.code, closed.sentCode]).toEqual(["ConnectionClosedError", 1006, 1011])
        expect(closed.sentReason).toBe("error in fragmented message")
        // The server saw the 1011 close frame.
        const serverError = yield* Deferred.await(done)
        expect([serverError?._tag, serverError?.code]).toEqual(["ConnectionClosedError", 1011])
      }).pipe(bounded())
    )
  }

  it.scopedLive("a Stream of fragments that fails midway fails send and closes the connection with 1011", () =>
    Effect.gen(function* () {
      const { ws } = yield* echoPair()
      const fragments = Stream.concat(Stream.make("a", "b"), Stream.fail("boom" as const))
      const error = yield* Effect.flip(ws.send(fragments))
      expect(error).toBe("boom")
      yield* ws.waitClosed
      // After failing the connection the client ignores the server's answer (RFC 6455 §7.1.7): 1006.
      const closed = yield* Effect.flip(recvOrDie(ws))
      expect([closed._tag, closed.code, closed.sentCode]).toEqual(["ConnectionClosedError", 1006, 1011])
    }).pipe(bounded())
  )

  it.scopedLive("many messages keep their order", () =>
    Effect.gen(function* () {
      const { ws } = yield* echoPair()
      const count = 2000
      yield* Effect.fork(
        Effect.forEach(
          Array.from({ length: count }, (_, i) => String(i)),
          (m) => ws.send(m)
        )
      )
      const received = yield* Stream.runCollect(Stream.take(ws.messages, count))
      expect([...received]).toEqual(Array.from({ length: count }, (_, i) => String(i)))
    }).pipe(bounded())
  )
})

describe("WebSocket size limits", () => {
  it.scopedLive("a message over maxSize closes the connection with 1009 on both sides", () =>
    Effect.gen(function* () {
      const { server, done } = yield* serverWith((ws) => Effect.forever(ws.recv), { maxSize: 1000 })
      const ws = yield* Client.connect(uriOf(server), { compression: null })
      yield* ws.send(bytes(1000))
      yield* ws.send(bytes(1001))
      const serverError = yield* Deferred.await(done)
      expect([serverError?._tag, serverError?.sentCode]).toEqual(["ConnectionClosedError", 1009])
      expect(serverError?.cause).toMatchObject({ _tag: "PayloadTooBig" })
      const error = yield* Effect.flip(recvOrDie(ws))
      expect([error._tag, error.code]).toEqual(["ConnectionClosedError", 1009])
    }).pipe(bounded())
  )

  it.scopedLive("maxSize counts every fragment of a message", () =>
    Effect.gen(function* () {
      const server = yield* serveLocal(echo)
      const ws = yield* Client.connect(uriOf(server), { compression: null, maxSize: 1500 })
      yield* ws.send([bytes(1000), bytes(1000)])
      const error = yield* Effect.flip(recvOrDie(ws))
      expect([error._tag, error.sentCode]).toEqual(["ConnectionClosedError", 1009])
    }).pipe(bounded())
  )

  it.scopedLive("maxSize null accepts messages over 1 MiB", () =>
    Effect.gen(function* () {
      const server = yield* serveLocal(echo, { maxSize: null })
      const ws = yield* Client.connect(uriOf(server), { compression: null, maxSize: null })
      yield* ws.send(bytes(3 * MiB))
      expect(((yield* ws.recv) as Uint8Array).byteLength).toBe(3 * MiB)
    }).pipe(bounded())
  )
})

describe("WebSocket recv", () => {
  it.scopedLive("interrupting recv loses no message: the next recv returns it", () =>
    Effect.gen(function* () {
      const { opened, server } = yield* serverWith((ws) => ws.waitClosed)
      const ws = yield* Client.connect(uriOf(server), { compression: null })
      const serverWs = yield* Deferred.await(opened)
      const pending = yield* Effect.fork(ws.recv)
      yield* realSleep(20)
      yield* Fiber.interrupt(pending)
      yield* serverWs.send("first")
      yield* serverWs.send("second")
      // Several interrupted readers in a row, some racing the arrival of the messages.
      for (let i = 0; i < 5; i++) yield* Fiber.interrupt(yield* Effect.fork(ws.recv))
      expect(yield* ws.recv).toBe("first")
      expect(yield* ws.recv).toBe("second")
    }).pipe(bounded())
  )

  it.scopedLive("recv timed out again and again leaves a bounded set of waiting readers, and no ConcurrencyError", () =>
    Effect.gen(function* () {
      const { opened, server } = yield* serverWith((ws) => ws.waitClosed)
      const ws = yield* Client.connect(uriOf(server), { compression: null })
      const serverWs = yield* Deferred.await(opened)
      // Each timed-out recv is interrupted in its wait: what it left behind is swept out.
      for (let i = 0; i < 50; i++) {
        expect(yield* Effect.timeout(ws.recv, "1 millis").pipe(Effect.option)).toEqual(Option.none())
      }
      const readers = (ws as unknown as { readers: ReadonlyArray<unknown> | undefined }).readers
      expect(readers?.length ?? 0).toBeLessThanOrEqual(4)
      expect((ws as unknown as WebSocketImpl).recvWaiting).toBe(false)
      // Another fiber reads, and gets the next message.
      const next = yield* Effect.fork(ws.recv)
      yield* eventually(() => (ws as unknown as WebSocketImpl).recvWaiting)
      yield* serverWs.send("after")
      expect(yield* Fiber.join(next)).toBe("after")
    }).pipe(bounded())
  )

  it.scopedLive("an uninterruptible recv interrupted while it waits still waits, and gets the next message", () =>
    Effect.gen(function* () {
      const { opened, server } = yield* serverWith((ws) => ws.waitClosed)
      const ws = yield* Client.connect(uriOf(server), { compression: null })
      const serverWs = yield* Deferred.await(opened)
      const got = yield* Deferred.make<Data>()
      const reader = yield* Effect.fork(
        Effect.uninterruptible(Effect.flatMap(ws.recv, (m) => Deferred.succeed(got, m)))
      )
      yield* eventually(() => (ws as unknown as WebSocketImpl).recvWaiting)
      yield* Fiber.interruptFork(reader)
      // Still the waiting recv: another one fails at once.
      expect((yield* Effect.flip(ws.recv))._tag).toBe("ConcurrencyError")
      yield* serverWs.send("kept")
      expect(yield* Deferred.await(got)).toBe("kept")
      yield* Fiber.await(reader)
    }).pipe(bounded())
  )

  it.scopedLive("a quiet connection keeps no message: the messages Stream lets the last one go", () =>
    Effect.gen(function* () {
      const server = yield* serveLocal((ws) => Effect.andThen(ws.send(new Uint8Array(MiB)), ws.waitClosed))
      const ws = yield* Client.connect(uriOf(server), { compression: null })
      const handled = yield* Deferred.make<WeakRef<object>>()
      // The stream keeps running (waiting for the next message) while the heap is looked at.
      yield* Effect.fork(
        Stream.runForEach(ws.messages, (message) => Deferred.succeed(handled, new WeakRef(message as Uint8Array)))
      )
      const ref = yield* Deferred.await(handled)
      const gc = (globalThis as { gc?: () => void }).gc!
      yield* Effect.repeat(
        Effect.andThen(realSleep(1), () => gc()),
        { until: () => ref.deref() === undefined, times: 50 }
      )
      expect(ref.deref()).toBeUndefined()
      expect(ws.state).toBe(State.OPEN)
    }).pipe(bounded())
  )

  it.scopedLive("messages ends normally when the peer closes with 1000", () =>
    Effect.gen(function* () {
      const server = yield* serveLocal((ws) =>
        Effect.gen(function* () {
          yield* ws.send("a")
          yield* ws.send("b")
          yield* ws.close(1000, "done")
        })
      )
      const ws = yield* Client.connect(uriOf(server), { compression: null })
      expect([...(yield* Stream.runCollect(ws.messages))]).toEqual(["a", "b"])
      expect(ws.closeCode).toBe(1000)
      expect(ws.closeReason).toBe("done")
      const error = yield* Effect.flip(recvOrDie(ws))
      expect(error._tag).toBe("ConnectionClosedOK")
    }).pipe(bounded())
  )

  it.scopedLive(
    "a large text is decoded in a later turn: the messages after it keep their order, the close comes last",
    () =>
      Effect.gen(function* () {
        // 5 MiB of text (over DECODE_LATER_FROM), then small messages, a second large text and a
        // close, all written by the server at once: the client receives them in one burst of reads.
        const big = (c: string) => `${c}é`.repeat(Math.ceil((5 * MiB) / 3))
        const server = yield* serveLocal(
          (ws) =>
            Effect.gen(function* () {
              yield* ws.send(big("a"))
              yield* ws.send("small 1")
              yield* ws.send(new Uint8Array([1, 2, 3]))
              yield* ws.send(big("b"))
              yield* ws.send("small 2")
              yield* ws.close(1000, "done")
            }),
          { maxSize: null }
        )
        const ws = yield* Client.connect(uriOf(server), { compression: null, maxSize: null })
        const received = [...(yield* Stream.runCollect(ws.messages))]
        expect(received.map((m) => (typeof m === "string" ? m.slice(0, 7) : [...m]))).toEqual([
          "aéaéaéa",
          "small 1",
          [1, 2, 3],
          "bébébéb",
          "small 2"
        ])
        expect(received[0]).toBe(big("a"))
        expect(received[3]).toBe(big("b"))
        expect(ws.closeCode).toBe(1000)
        // Also through recv, after the close: the same messages were all delivered first.
        const error = yield* Effect.flip(recvOrDie(ws))
        expect(error._tag).toBe("ConnectionClosedOK")
      }).pipe(bounded(20_000))
  )

  it.scopedLive("a large text still being decoded when the TCP connection ends is delivered before the end", () =>
    Effect.gen(function* () {
      const { ws, peer } = yield* rawPair({ maxSize: null })
      const big = "z".repeat(5 * MiB)
      // The message, a close frame and the end of the TCP connection, in one write.
      const bytes = Buffer.concat([
        frameBytes(Opcode.Text, big, false),
        frameBytes(Opcode.Text, "after", false),
        frameBytes(Opcode.Close, closePayload(1000, "bye"), false)
      ])
      yield* Effect.async<void>((resume) => {
        peer.socket.end(bytes, () => resume(Effect.void))
      })
      expect(yield* ws.recv).toBe(big)
      expect(yield* ws.recv).toBe("after")
      expect((yield* Effect.flip(recvOrDie(ws)))._tag).toBe("ConnectionClosedOK")
    }).pipe(bounded(20_000))
  )

  it.scopedLive("a large text waiting to be decoded counts against maxQueue", () =>
    Effect.gen(function* () {
      const server = yield* serveLocal(
        (ws) =>
          Effect.gen(function* () {
            yield* ws.send("x".repeat(4 * MiB))
            for (let i = 0; i < 10; i++) yield* ws.send(`m${i}`)
            yield* ws.waitClosed
          }),
        { maxSize: null }
      )
      const ws = yield* Client.connect(uriOf(server), { compression: null, maxSize: null, maxQueue: 4 })
      const received: Array<Data> = []
      for (let i = 0; i < 11; i++) received.push(yield* ws.recv)
      expect((received[0] as string).length).toBe(4 * MiB)
      expect(received.slice(1)).toEqual(Array.from({ length: 10 }, (_, i) => `m${i}`))
    }).pipe(bounded(20_000))
  )

  it.scopedLive("messages fails with ConnectionClosedError when the peer closes with 1008", () =>
    Effect.gen(function* () {
      const server = yield* serveLocal((ws) => Effect.zipRight(ws.send("a"), ws.close(1008, "policy")))
      const ws = yield* Client.connect(uriOf(server), { compression: null })
      const received: Array<Data> = []
      const error = yield* Effect.flip(Stream.runForEach(ws.messages, (m) => Effect.sync(() => received.push(m))))
      expect(received).toEqual(["a"])
      expect(error._tag).toBe("ConnectionClosedError")
      expect([error.code, error.reason]).toEqual([1008, "policy"])
    }).pipe(bounded())
  )
})

describe("WebSocket ping and pong", () => {
  it.scopedLive("ping completes with the latency when the pong arrives", () =>
    Effect.gen(function* () {
      const { ws } = yield* echoPair()
      const latency = yield* Effect.flatten(ws.ping())
      expect(latency).toBeGreaterThanOrEqual(0)
      expect(latency).toBeLessThan(1000)
      const withData = yield* ws.ping("payload")
      expect(yield* withData).toBeGreaterThanOrEqual(0)
    }).pipe(bounded())
  )

  it.scopedLive("a second ping with the same payload while the first is pending fails with InvalidState", () =>
    Effect.gen(function* () {
      const { ws, peer } = yield* rawPair()
      const first = yield* ws.ping("same")
      const error = yield* Effect.flip(ws.ping("same"))
      expect(error._tag).toBe("InvalidState")
      const frame = yield* peer.readFrame()
      expect([frame.opcode, frame.payload.toString()]).toEqual([Opcode.Ping, "same"])
      // A pong for a later ping acknowledges the earlier ones too (RFC 6455 §5.5.3).
      const second = yield* ws.ping("later")
      yield* peer.write(frameBytes(Opcode.Pong, "later", false))
      yield* Effect.all([first, second])
      // An unsolicited pong is sent as is.
      yield* ws.pong("beat")
      yield* peer.readFrame()
      const pong = yield* peer.readFrame()
      expect([pong.opcode, pong.payload.toString()]).toEqual([Opcode.Pong, "beat"])
    }).pipe(bounded())
  )
})

describe("WebSocket close paths", () => {
  it.scopedLive("close with an invalid code or an over-long reason fails with ProtocolError and sends nothing", () =>
    Effect.gen(function* () {
      const server = yield* serveLocal(echo)
      const ws = yield* Client.connect(uriOf(server), { compression: null })
      for (const code of [999, 1005, 1006, 1015, 2999, 5000, 1000.5]) {
        const error = yield* Effect.flip(ws.close(code))
        expect(error).toMatchObject({ _tag: "ProtocolError", detail: `invalid status code ${code}` })
      }
      expect((yield* Effect.flip(ws.close(1000, "x".repeat(124))))._tag).toBe("ProtocolError")
      // Nothing went out: the connection is still open and echoes.
      expect(ws.state).toBe(State.OPEN)
      yield* ws.send("still open")
      expect(yield* ws.recv).toBe("still open")
      yield* ws.close(4000, "x".repeat(123))
      expect([ws.closeCode, ws.closeReason?.length]).toEqual([4000, 123])
    }).pipe(bounded())
  )

  it.scopedLive("client-initiated close: both sides see 1000 and ConnectionClosedOK", () =>
    Effect.gen(function* () {
      const { server, opened, done } = yield* serverWith((ws) => Effect.forever(ws.recv))
      const ws = yield* Client.connect(uriOf(server), { compression: null })
      yield* Deferred.await(opened)
      yield* ws.close(1000, "bye")
      expect(ws.state).toBe(State.CLOSED)
      expect(ws.closeCode).toBe(1000)
      expect(ws.closeReason).toBe("bye")
      const clientError = yield* Effect.flip(recvOrDie(ws))
      expect(clientError._tag).toBe("ConnectionClosedOK")
      const serverError = yield* Deferred.await(done)
      expect(serverError?._tag).toBe("ConnectionClosedOK")
      expect([serverError?.code, serverError?.reason]).toEqual([1000, "bye"])
      // close is idempotent.
      yield* ws.close(4000)
      expect(ws.closeCode).toBe(1000)
      // Later operations fail with the same ConnectionClosedOK.
      expect((yield* Effect.flip(ws.send("late")))._tag).toBe("ConnectionClosedOK")
      expect((yield* Effect.flip(ws.ping()))._tag).toBe("ConnectionClosedOK")
      expect((yield* Effect.flip(ws.pong()))._tag).toBe("ConnectionClosedOK")
    }).pipe(bounded())
  )

  it.scopedLive("server-initiated close: the client sees the code and reason", () =>
    Effect.gen(function* () {
      const server = yield* serveLocal((ws) => ws.close(4000, "app"))
      const ws = yield* Client.connect(uriOf(server), { compression: null })
      const error = yield* Effect.flip(recvOrDie(ws))
      expect(error._tag).toBe("ConnectionClosedError")
      expect([error.code, error.reason, error.sentCode, error.rcvdThenSent]).toEqual([4000, "app", 4000, true])
      expect(ws.closeCode).toBe(4000)
    }).pipe(bounded())
  )

  it.scopedLive("a recv pending when the peer closes fails with ConnectionClosedOK", () =>
    Effect.gen(function* () {
      const { opened, server } = yield* serverWith((ws) => ws.waitClosed)
      const ws = yield* Client.connect(uriOf(server), { compression: null })
      const serverWs = yield* Deferred.await(opened)
      const pending = yield* Effect.fork(recvOrDie(ws))
      yield* realSleep(10)
      yield* serverWs.close(1001)
      const error = yield* Effect.flip(Fiber.join(pending))
      expect([error._tag, error.code]).toEqual(["ConnectionClosedOK", 1001])
    }).pipe(bounded())
  )

  it.scopedLive("a raw client vanishing mid-frame: the server sees 1006 ConnectionClosedError", () =>
    Effect.gen(function* () {
      const { server, opened, done } = yield* serverWith((ws) => Effect.forever(ws.recv))
      const peer = yield* rawClient(portOf(server))
      const ws = yield* Deferred.await(opened)
      // A masked binary frame announcing 100 bytes, of which only 10 are written.
      const frame = frameBytes(Opcode.Binary, bytes(100), true)
      yield* peer.write(frame.subarray(0, 16))
      yield* realSleep(10)
      peer.socket.destroy()
      const error = yield* Deferred.await(done)
      expect(error?._tag).toBe("ConnectionClosedError")
      expect(error?.code).toBe(1006)
      yield* ws.waitClosed
      expect(ws.closeCode).toBe(1006)
      expect(server.connections.size).toBe(0)
    }).pipe(bounded())
  )

  it.scopedLive("a raw server vanishing mid-frame: the client sees 1006 ConnectionClosedError", () =>
    Effect.gen(function* () {
      const { ws, peer } = yield* rawPair()
      const frame = frameBytes(Opcode.Text, "x".repeat(200), false)
      yield* peer.write(frame.subarray(0, 50))
      yield* realSleep(10)
      peer.socket.destroy()
      const error = yield* Effect.flip(recvOrDie(ws))
      expect([error._tag, error.code]).toEqual(["ConnectionClosedError", 1006])
      expect(ws.state).toBe(State.CLOSED)
    }).pipe(bounded())
  )

  it.scopedLive("close timeout: a peer that never answers the close frame is aborted after closeTimeout", () =>
    Effect.gen(function* () {
      const { ws, peer } = yield* rawPair({ closeTimeout: 150 })
      const start = performance.now()
      yield* ws.close(1000, "bye")
      const elapsed = performance.now() - start
      expect(elapsed).toBeGreaterThanOrEqual(140)
      expect(elapsed).toBeLessThan(1000)
      const frame = yield* peer.readFrame()
      expect([closeCodeOf(frame), frame.payload.subarray(2).toString()]).toEqual([1000, "bye"])
      // The TCP connection was aborted: the raw peer sees it end.
      yield* Deferred.await(peer.ended)
      expect(impl(ws).socket.destroyed).toBe(true)
      expect(ws.closeCode).toBe(1006)
      expect((yield* Effect.flip(recvOrDie(ws)))._tag).toBe("ConnectionClosedError")
    }).pipe(bounded())
  )

  it.scopedLive("close timeout on the server: a client that never closes TCP is aborted", () =>
    Effect.gen(function* () {
      const { server, opened } = yield* serverWith((ws) => ws.waitClosed, { closeTimeout: 100 })
      const peer = yield* rawClient(portOf(server), "/", true)
      const ws = yield* Deferred.await(opened)
      const start = performance.now()
      const closing = yield* Effect.fork(ws.close(1000))
      const frame = yield* peer.readFrame()
      expect(closeCodeOf(frame)).toBe(1000)
      // The raw peer answers the close frame but keeps its half of TCP open.
      yield* peer.write(frameBytes(Opcode.Close, closePayload(1000), true))
      // The server closes its half first (RFC 6455 §7.1.1), then waits for the client's.
      yield* Deferred.await(peer.ended)
      yield* Fiber.join(closing)
      expect(performance.now() - start).toBeGreaterThanOrEqual(90)
      expect(impl(ws).socket.destroyed).toBe(true)
      expect(ws.closeCode).toBe(1000)
      expect((yield* Effect.flip(recvOrDie(ws)))._tag).toBe("ConnectionClosedOK")
    }).pipe(bounded())
  )
})

describe("WebSocket close during a send", () => {
  it.scopedLive("close while a fragmented message is being sent fails the connection with 1011", () =>
    Effect.gen(function* () {
      const { server, done } = yield* serverWith((ws) => Effect.forever(ws.recv))
      const ws = yield* Client.connect(uriOf(server), { compression: null })
      const gate = yield* Deferred.make<void>()
      const fragments = Stream.concat(Stream.make("a", "b"), Stream.fromEffect(Effect.as(Deferred.await(gate), "c")))
      const sending = yield* Effect.fork(ws.send(fragments))
      yield* realSleep(20)
      yield* ws.close(1000)
      yield* Deferred.succeed(gate, undefined)
      const sendError = yield* Effect.flip(Fiber.join(sending))
      expect(sendError._tag).toBe("ConnectionClosedError")
      const closed = yield* Effect.flip(recvOrDie(ws))
      expect([closed.sentCode, closed.sentReason]).toEqual([1011, "close during fragmented message"])
      // The server saw a close frame in the middle of a fragmented message (RFC 6455 §5.4 allows
      // control frames there, but Python treats it as incomplete and answers 1002).
      const serverError = yield* Deferred.await(done)
      expect(serverError?.code).toBe(1011)
    }).pipe(bounded())
  )

  it.scopedLive("interrupting a fragmented send after its first fragment closes the connection with 1011", () =>
    Effect.gen(function* () {
      const { server, done } = yield* serverWith((ws) => Effect.forever(ws.recv))
      const ws = yield* Client.connect(uriOf(server), { compression: null })
      const sending = yield* Effect.fork(ws.send(Stream.concat(Stream.make("a", "b"), Stream.never)))
      yield* realSleep(20)
      yield* Fiber.interrupt(sending)
      const closed = yield* Effect.flip(recvOrDie(ws))
      expect([closed.sentCode, closed.sentReason]).toEqual([1011, "fragmented message interrupted"])
      expect((yield* Deferred.await(done))?.code).toBe(1011)
    }).pipe(bounded())
  )

  it.scopedLive("a send waiting on backpressure fails with ConnectionClosedError when the connection dies", () =>
    Effect.gen(function* () {
      const { ws, peer } = yield* rawPair({ writeLimit: 1024 })
      peer.socket.pause()
      const sending = yield* Effect.fork(Effect.forever(ws.send(bytes(64 * 1024))))
      yield* Effect.repeat(realSleep(5), { until: () => impl(ws).socket.writableLength > 1024 })
      yield* realSleep(50)
      expect(sending.unsafePoll()).toBeNull()
      peer.socket.destroy()
      const error = yield* Effect.flip(Fiber.join(sending))
      expect(error).toMatchObject({ _tag: "ConnectionClosedError", code: 1006 })
    }).pipe(bounded())
  )
})

describe("WebSocket keepalive", () => {
  it.scopedLive("client: a server that never answers pings is closed with 1011 after pingTimeout", () =>
    Effect.gen(function* () {
      const { ws, peer } = yield* rawPair({ pingInterval: 50, pingTimeout: 100, closeTimeout: 100 })
      const start = performance.now()
      const ping = yield* peer.readFrame()
      expect(ping.opcode).toBe(Opcode.Ping)
      expect(ping.payload.length).toBe(4)
      const userPing = yield* ws.ping("mine")
      yield* peer.readFrame()
      const close = yield* peer.readFrame()
      expect(closeCodeOf(close)).toBe(1011)
      expect(close.payload.subarray(2).toString()).toBe("keepalive ping timeout")
      expect(performance.now() - start).toBeGreaterThanOrEqual(90)
      // Pending and later operations fail with ConnectionClosedError once the TCP connection is gone.
      const pending = yield* Effect.flip(userPing)
      expect(pending._tag).toBe("ConnectionClosedError")
      // The client waited closeTimeout for the server to close TCP, then aborted it.
      yield* Deferred.await(peer.ended)
      const error = yield* Effect.flip(recvOrDie(ws))
      expect([error._tag, error.code, error.sentCode]).toEqual(["ConnectionClosedError", 1006, 1011])
      expect((yield* Effect.flip(ws.send("x")))._tag).toBe("ConnectionClosedError")
    }).pipe(bounded())
  )

  it.scopedLive("server: a client that never answers pings is closed with 1011", () =>
    Effect.gen(function* () {
      const { server, opened, done } = yield* serverWith((ws) => Effect.forever(ws.recv), {
        pingInterval: 50,
        pingTimeout: 50,
        closeTimeout: 100
      })
      const peer = yield* rawClient(portOf(server))
      const ws = yield* Deferred.await(opened)
      expect((yield* peer.readFrame()).opcode).toBe(Opcode.Ping)
      expect(closeCodeOf(yield* peer.readFrame())).toBe(1011)
      // The server half-closes at once when failing the connection (RFC 6455 §7.1.7).
      yield* Deferred.await(peer.ended)
      const error = yield* Deferred.await(done)
      expect([error?._tag, error?.sentCode]).toEqual(["ConnectionClosedError", 1011])
      yield* ws.waitClosed
      yield* Deferred.await(peer.closed)
      expect(server.connections.size).toBe(0)
    }).pipe(bounded())
  )

  it.scopedLive("keepalive pings are answered by a live peer: the connection stays open", () =>
    Effect.gen(function* () {
      const { ws } = yield* echoPair({ pingInterval: 20, pingTimeout: 1000 })
      yield* realSleep(150)
      yield* ws.send("still open")
      expect(yield* ws.recv).toBe("still open")
    }).pipe(bounded())
  )

  it.scoped("keepalive under TestClock: ping after pingInterval, 1011 after pingTimeout", () =>
    Effect.gen(function* () {
      const { ws, peer } = yield* rawPair({ openTimeout: null })
      // Adjust only once the keepalive fiber's sleep is registered, else the adjust passes it by.
      yield* waitSleeps
      yield* TestClock.adjust("19 seconds")
      yield* realSleep(20)
      expect(peer.received.length).toBe(0)
      yield* TestClock.adjust("1 second")
      expect((yield* peer.readFrame()).opcode).toBe(Opcode.Ping)
      yield* waitSleeps
      yield* TestClock.adjust("20 seconds")
      expect(closeCodeOf(yield* peer.readFrame())).toBe(1011)
      expect(ws.state).toBe(State.CLOSING)
      // The close timer sleeps on the TestClock too: end the connection from the peer's side.
      peer.socket.destroy()
      yield* ws.waitClosed
    }).pipe(bounded())
  )
})

/** Waits until some fiber sleeps on the TestClock. */
const waitSleeps = Effect.gen(function* () {
  for (let i = 0; i < 500; i++) {
    const sleeps = yield* TestClock.sleeps()
    if (sleeps.length > 0) return
    yield* realSleep(2)
  }
  return yield* Effect.die(new Error("no sleep registered on the TestClock"))
})

describe("WebSocket forEachMessage", () => {
  it.scopedLive(
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
        const sent = Array.from({ length: 32 }, (_, i) => bytes(16 * 1024).fill(i))
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
      }).pipe(bounded())
  )
})

describe("WebSocket backpressure", () => {
  const MESSAGE = 64 * 1024
  const COUNT = 256 // 16 MiB: more than the loopback socket buffers can absorb.

  it.scopedLive("server send waits while a raw client does not read, with a bounded write buffer", () =>
    Effect.gen(function* () {
      const writeLimit = 32 * 1024
      let sent = 0
      let maxBuffered = 0
      const { server, opened } = yield* serverWith(
        (ws) =>
          Effect.forEach(
            Array.from({ length: COUNT }),
            () =>
              Effect.zipRight(
                ws.send(bytes(MESSAGE)),
                Effect.sync(() => {
                  sent++
                  maxBuffered = Math.max(maxBuffered, impl(ws).socket.writableLength)
                })
              ),
            { discard: true }
          ).pipe(Effect.zipRight(ws.waitClosed)),
        { writeLimit }
      )
      const peer = yield* Effect.acquireRelease(
        Effect.gen(function* () {
          const p = yield* rawClient(portOf(server))
          p.socket.pause()
          return p
        }),
        () => Effect.void
      )
      yield* Deferred.await(opened)
      yield* realSleep(200)
      const stalled = sent
      yield* realSleep(100)
      expect(sent).toBe(stalled)
      expect(sent).toBeLessThan(COUNT)
      // Never more than one message above writeLimit is buffered in Node.
      expect(maxBuffered).toBeLessThanOrEqual(writeLimit + MESSAGE + 14)
      // Reading resumes: the sender completes, and every byte arrives.
      let total = peer.received.length
      peer.socket.removeAllListeners("data")
      peer.socket.on("data", (chunk: Buffer) => {
        total += chunk.length
      })
      peer.socket.resume()
      const frameSize = MESSAGE + 10 // 64 KiB needs the 64-bit length form (RFC 6455 §5.2)
      yield* Effect.repeat(realSleep(5), { until: () => total >= COUNT * frameSize })
      expect(sent).toBe(COUNT)
      expect(total).toBe(COUNT * frameSize)
    }).pipe(bounded(8000))
  )

  it.scopedLive("client send waits while a raw server does not read", () =>
    Effect.gen(function* () {
      const { ws, peer } = yield* rawPair({ writeLimit: 16 * 1024 })
      peer.socket.pause()
      let sent = 0
      const sender = yield* Effect.fork(
        Effect.forEach(
          Array.from({ length: COUNT }),
          () =>
            Effect.zipRight(
              ws.send(bytes(MESSAGE)),
              Effect.sync(() => sent++)
            ),
          { discard: true }
        )
      )
      yield* realSleep(300)
      expect(sent).toBeLessThan(COUNT)
      expect(impl(ws).socket.writableLength).toBeLessThanOrEqual(16 * 1024 + MESSAGE + 14)
      expect(sender.unsafePoll()).toBeNull()
      // Reading resumes (the data is discarded): the sender completes.
      peer.socket.removeAllListeners("data")
      peer.socket.resume()
      yield* Fiber.join(sender)
      expect(sent).toBe(COUNT)
    }).pipe(bounded(8000))
  )

  it.scopedLive("maxQueue: the server stops reading while messages are not consumed, then resumes", () =>
    Effect.gen(function* () {
      const release = yield* Deferred.make<void>()
      const received: Array<number> = []
      const { server, opened } = yield* serverWith(
        (ws) =>
          Effect.gen(function* () {
            yield* Deferred.await(release)
            for (;;) {
              const message = (yield* ws.recv) as Uint8Array
              received.push(Buffer.from(message.buffer, message.byteOffset, message.byteLength).readUInt32BE(0))
            }
          }),
        { maxQueue: 4 }
      )
      const ws = yield* Client.connect(uriOf(server), { compression: null })
      const serverWs = yield* Deferred.await(opened)
      const count = 512
      let sent = 0
      const sender = yield* Effect.fork(
        Effect.forEach(
          Array.from({ length: count }, (_, i) => i),
          (i) => {
            const message = Buffer.alloc(32 * 1024)
            message.writeUInt32BE(i, 0)
            return Effect.zipRight(
              ws.send(message),
              Effect.sync(() => sent++)
            )
          },
          { discard: true }
        )
      )
      yield* realSleep(300)
      // The server paused its socket: TCP flow control made the client's send wait.
      expect(impl(serverWs).socket.isPaused()).toBe(true)
      expect(sent).toBeLessThan(count)
      expect(sender.unsafePoll()).toBeNull()
      yield* Deferred.succeed(release, undefined)
      yield* Fiber.join(sender)
      yield* Effect.repeat(realSleep(5), { until: () => received.length === count })
      expect(received).toEqual(Array.from({ length: count }, (_, i) => i))
      expect(impl(serverWs).socket.isPaused()).toBe(false)
    }).pipe(bounded(8000))
  )
})

describe("WebSocket attributes", () => {
  it.scopedLive("both sides expose addresses, path, headers and state", () =>
    Effect.gen(function* () {
      const { server, opened } = yield* serverWith((ws) => ws.waitClosed)
      const ws = yield* Client.connect(uriOf(server, "/chat?room=1"), {
        compression: null,
        extraHeaders: { "X-Test": "yes" }
      })
      const serverWs = yield* Deferred.await(opened)
      expect(ws.side).toBe("client")
      expect(serverWs.side).toBe("server")
      expect(ws.id).not.toBe(serverWs.id)
      expect(ws.path).toBe("/chat?room=1")
      expect(serverWs.path).toBe("/chat?room=1")
      expect(serverWs.requestHeaders.get("X-Test")).toEqual(ws.requestHeaders.get("X-Test"))
      expect(ws.responseHeaders.getAll("Upgrade")).toEqual(["websocket"])
      expect(ws.state).toBe(State.OPEN)
      expect(ws.closeCode).toBeUndefined()
      expect(ws.remoteAddress).toEqual({ _tag: "TcpAddress", hostname: "127.0.0.1", port: portOf(server) })
      expect(serverWs.localAddress).toEqual(ws.remoteAddress)
      expect(serverWs.remoteAddress).toEqual(ws.localAddress)
      expect(ws.subprotocol).toBeUndefined()
    }).pipe(bounded())
  )

  // Bound to one address, the server takes its connections' local address from the listener; bound
  // to a wildcard it must ask each socket (the address the client reached).
  it.scopedLive("a server bound to a wildcard reports the local address the client reached", () =>
    Effect.gen(function* () {
      const { server, opened } = yield* serverWith((ws) => ws.waitClosed, { host: "0.0.0.0" })
      expect(server.address).toMatchObject({ _tag: "TcpAddress", hostname: "0.0.0.0" })
      const ws = yield* Client.connect(`ws://127.0.0.1:${portOf(server)}/`, { compression: null })
      const serverWs = yield* Deferred.await(opened)
      expect(serverWs.localAddress).toEqual({ _tag: "TcpAddress", hostname: "127.0.0.1", port: portOf(server) })
      expect(serverWs.localAddress).toEqual(ws.remoteAddress)
      expect(serverWs.remoteAddress).toEqual(ws.localAddress)
    }).pipe(bounded())
  )
})

describe("large compressed messages", () => {
  it.scopedLive("are sent as fragments yielding between them, and concurrent sends wait for the whole message", () =>
    Effect.gen(function* () {
      const server = yield* serveLocal(echo, { compression: "deflate" })
      const ws = yield* Client.connect(uriOf(server), { compression: "deflate" })
      expect(ws.responseHeaders.getFirst("Sec-WebSocket-Extensions")).toMatch(/^permessage-deflate/)
      // Under the server's 1 MiB limit, over three fragments of 256 KiB.
      const big = new Uint8Array(900_000)
      for (let i = 0; i < big.length; i++) big[i] = (i * 2654435761) >>> 24
      // While the big message is being compressed fragment by fragment, the event loop keeps turning.
      let ticks = 0
      const timer = setInterval(() => ticks++, 0)
      const sender = yield* Effect.fork(ws.send(big))
      const small = yield* Effect.fork(Effect.forEach(["a", "b", "c"], (m) => ws.send(m), { discard: true }))
      yield* Fiber.join(sender)
      yield* Fiber.join(small)
      clearInterval(timer)
      const first = yield* ws.recv
      expect(first instanceof Uint8Array && Buffer.compare(first, big) === 0).toBe(true)
      expect([yield* ws.recv, yield* ws.recv, yield* ws.recv]).toEqual(["a", "b", "c"])
      expect(ticks).toBeGreaterThan(0)
    }).pipe(bounded(10_000))
  )

  it.scopedLive("an interrupted send closes with 1011 or leaves the compressor intact for the next message", () =>
    Effect.gen(function* () {
      const server = yield* serveLocal(echo, { compression: "deflate" })
      const big = new Uint8Array(900_000)
      for (let i = 0; i < big.length; i++) big[i] = (i * 2654435761) >>> 26
      // Interrupted before, while or after its fragments are compressed on the thread pool.
      for (const delay of [0, 1, 2, 4, 8]) {
        const ws = yield* Client.connect(uriOf(server), { compression: "deflate" })
        const sending = yield* Effect.fork(ws.send(big))
        yield* realSleep(delay)
        yield* Fiber.interrupt(sending)
        const after = yield* Effect.either(ws.send("after"))
        const received: Array<Data> = []
        const outcome = yield* Effect.either(
          Effect.gen(function* () {
            for (;;) {
              const message = yield* recvOrDie(ws)
              if (message === "after") return
              received.push(message)
            }
          })
        )
        if (Either.isLeft(outcome)) {
          expect([outcome.left.sentCode, outcome.left.sentReason]).toEqual([1011, "message interrupted"])
        } else {
          expect(Either.isRight(after)).toBe(true)
          // Sent whole before the interruption, or not at all; either way intact.
          expect(received.every((m) => m instanceof Uint8Array && Buffer.compare(m, big) === 0)).toBe(true)
          expect(received.length).toBeLessThanOrEqual(1)
        }
        yield* ws.close()
      }
    }).pipe(bounded(20_000))
  )
})

describe("optional durations", () => {
  it("null and Option.none disable, undefined keeps the default, Option.some and inputs decode", async () => {
    const { resolveOptionalDuration } = await import("../src/WebSocket.js")
    const { Duration, Option } = await import("effect")
    expect(resolveOptionalDuration(null, "20 seconds")).toBeNull()
    expect(resolveOptionalDuration(Option.none(), "20 seconds")).toBeNull()
    expect(resolveOptionalDuration(undefined, "20 seconds")).toEqual(Duration.seconds(20))
    expect(resolveOptionalDuration(Option.some("50 millis"), "20 seconds")).toEqual(Duration.millis(50))
    expect(resolveOptionalDuration(1500, "20 seconds")).toEqual(Duration.millis(1500))
  })
})
