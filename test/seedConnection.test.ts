/**
 * The connection attributes and limits of the seeds' `WebSocketCommonProtocol` / `Connection`:
 * `open`, `closed`, `latency`, concurrent `recv`, `close_exc`, `read_limit` and `write_limit`
 * (their low-water marks), over real loopback sockets.
 */
import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Client from "../src/Client.js"
import { Connection, State } from "../src/Connection.js"
import { InvalidState } from "../src/Errors.js"
import { Opcode } from "../src/Frames.js"
import type { WebSocketImpl } from "../src/internal/webSocket.js"
import type { WebSocket } from "../src/WebSocket.js"
import {
  acceptHandshake,
  bounded,
  echo,
  frameBytes,
  rawServer,
  realSleep,
  serveLocal,
  uriOf
} from "./fixtures/loopback.js"

const impl = (ws: WebSocket): WebSocketImpl => ws as WebSocketImpl

const RAW: Client.ConnectOptions = { compression: null, closeTimeout: 100 }

/** A raw server the test drives frame by frame, and a client whose handshake it accepted. */
const rawPair = (options: Client.ConnectOptions = {}) =>
  Effect.gen(function* () {
    const raw = yield* rawServer()
    const fiber = yield* Effect.fork(Client.connect(`ws://127.0.0.1:${raw.port}/`, { ...RAW, ...options }))
    const peer = yield* raw.accept
    yield* acceptHandshake(peer)
    const ws = yield* Fiber.join(fiber)
    return { ws, peer }
  })

/** Polls a condition that an event on a socket makes true (no fixed sleep: bounded by the test). */
const eventually = (condition: () => boolean) => Effect.repeat(realSleep(1), { until: condition })

describe("seed: WebSocketCommonProtocol.open / closed", () => {
  it.scopedLive("seed: open is True while the connection is open; open and closed are both False while closing", () =>
    Effect.gen(function* () {
      const { ws, peer } = yield* rawPair()
      expect([ws.open, ws.closed]).toEqual([true, false])
      const closing = yield* Effect.fork(ws.close())
      const frame = yield* peer.readFrame()
      expect(frame.opcode).toBe(Opcode.Close)
      expect(ws.state).toBe(State.CLOSING)
      expect([ws.open, ws.closed]).toEqual([false, false])
      yield* peer.write(frameBytes(Opcode.Close, frame.payload, false))
      peer.socket.end()
      yield* Fiber.join(closing)
      expect([ws.open, ws.closed]).toEqual([false, true])
    }).pipe(bounded())
  )
})

describe("seed: latency", () => {
  it.scopedLive("seed: latency is 0 before any ping, then the round trip of the last ping() in seconds", () =>
    Effect.gen(function* () {
      const server = yield* serveLocal(echo, { pingInterval: null })
      const ws = yield* Client.connect(uriOf(server), { compression: null, pingInterval: null })
      expect(ws.latency).toBe(0)
      const millis = yield* yield* ws.ping()
      expect(ws.latency).toBeGreaterThan(0)
      expect(ws.latency).toBe(millis / 1000)
      const again = yield* yield* ws.ping("second")
      expect(ws.latency).toBe(again / 1000)
    }).pipe(bounded())
  )

  it.scopedLive("seed: latency is updated by keepalive pings", () =>
    Effect.gen(function* () {
      const { ws, peer } = yield* rawPair({ pingInterval: 10, pingTimeout: 5000 })
      const ping = yield* peer.readFrame()
      expect(ping.opcode).toBe(Opcode.Ping)
      expect(ws.latency).toBe(0)
      yield* peer.write(frameBytes(Opcode.Pong, ping.payload, false))
      yield* eventually(() => ws.latency > 0)
      expect(ws.latency).toBeLessThan(5)
    }).pipe(bounded())
  )
})

describe("seed: recv concurrency", () => {
  it.scopedLive("seed: recv raises at once when another coroutine is already waiting (ConcurrencyError)", () =>
    Effect.gen(function* () {
      const server = yield* serveLocal(echo)
      const ws = yield* Client.connect(uriOf(server), { compression: null })
      const first = yield* Effect.fork(ws.recv)
      // The first recv is waiting once it registered as the connection's reader.
      yield* eventually(() => (ws as unknown as { recvWaiting: boolean }).recvWaiting)
      const error = yield* Effect.flip(ws.recv)
      expect(error._tag).toBe("ConcurrencyError")
      expect(error.message).toBe("cannot call recv while another fiber is already waiting for the next message")
      // The waiting recv is unaffected and gets the next message; recv works again afterwards.
      yield* ws.send("one")
      expect(yield* Fiber.join(first)).toBe("one")
      yield* ws.send("two")
      expect(yield* ws.recv).toBe("two")
    }).pipe(bounded())
  )

  it.scopedLive("seed: an interrupted recv lets the next recv wait (canceling recv is safe)", () =>
    Effect.gen(function* () {
      const server = yield* serveLocal(echo)
      const ws = yield* Client.connect(uriOf(server), { compression: null })
      const first = yield* Effect.fork(ws.recv)
      yield* eventually(() => (ws as unknown as { recvWaiting: boolean }).recvWaiting)
      yield* Fiber.interrupt(first)
      const second = yield* Effect.fork(ws.recv)
      yield* ws.send("after")
      expect(yield* Fiber.join(second)).toBe("after")
    }).pipe(bounded())
  )
})

describe("seed: Connection.close_exc", () => {
  it("seed: close_exc raises (InvalidState) while the connection isn't CLOSED", () => {
    const connection = new Connection("client")
    expect(connection.state).toBe(State.OPEN)
    expect(() => connection.closeExc).toThrow(InvalidState)
    expect(() => connection.closeExc).toThrow("closeExc read while the connection is OPEN, not CLOSED")
    connection.receiveEof()
    expect(connection.state).toBe(State.CLOSED)
    expect(connection.closeExc).toMatchObject({ _tag: "ConnectionClosedError", code: 1006 })
  })
})

describe("seed: read_limit and write_limit", () => {
  it.scopedLive("seed: read_limit is the high-water mark of the client's incoming buffer too", () =>
    Effect.gen(function* () {
      const readLimit = 256 * 1024
      const { ws, peer } = yield* rawPair({ readLimit, maxQueue: 1 })
      const socket = impl(ws).socket as import("node:net").Socket
      expect(socket.readableHighWaterMark).toBe(readLimit)
      // The application does not read: after one queued message the client pauses, and the socket
      // buffers about readLimit before it stops reading from the kernel (then TCP pushes back).
      // 32 MiB: more than the loopback socket buffers absorb, so the peer's writes back up.
      const frame = frameBytes(Opcode.Binary, new Uint8Array(256 * 1024), false)
      for (let i = 0; i < 128; i++) yield* peer.write(frame)
      // Node reads from the kernel until it holds readLimit (Node's own default would stop at 16 or
      // 64 KiB), in chunks of up to 64 KiB: one chunk past the mark at most.
      yield* eventually(() => socket.isPaused() && socket.readableLength >= readLimit)
      expect(socket.readableLength).toBeLessThanOrEqual(readLimit + 65_536)
    }).pipe(bounded(5000))
  )

  it.scopedLive("seed: a send waiting on write_limit resumes at the low-water mark, a quarter of the limit", () =>
    Effect.gen(function* () {
      const writeLimit = 64 * 1024
      const { ws } = yield* rawPair({ writeLimit })
      const socket = impl(ws).socket
      // The buffered byte count the connection sees, set by the test.
      let buffered = 100 * 1024
      Object.defineProperty(socket, "writableLength", { get: () => buffered, configurable: true })
      const sending = yield* Effect.fork(ws.send("x"))
      yield* eventually(() => (ws as unknown as { drainWaiters: Set<unknown> | undefined }).drainWaiters?.size === 1)
      // Between the low-water mark and the limit: still waiting.
      buffered = 32 * 1024
      socket.emit("drain")
      for (let i = 0; i < 20; i++) yield* Effect.yieldNow()
      expect(sending.unsafePoll()).toBeNull()
      expect((ws as unknown as { drainWaiters: Set<unknown> | undefined }).drainWaiters?.size).toBe(1)
      // At a quarter of the limit: the send completes.
      buffered = writeLimit / 4
      socket.emit("drain")
      yield* Fiber.join(sending)
      delete (socket as unknown as Record<string, unknown>).writableLength
    }).pipe(bounded())
  )
})
