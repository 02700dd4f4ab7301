/**
 * `Server.onMessage`: a connection served per message, with no fiber between messages, over real
 * loopback sockets. The same contract as a `forEachMessage` handler: messages in order even when
 * the handler suspends, backpressure at maxQueue, failures logged and closed with 1011, messages
 * before a protocol violation answered before the close, shutdown waiting for handlers in flight,
 * nothing left behind.
 */
import { describe, expect, it } from "@effect/vitest"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Metric from "effect/Metric"
import * as Schedule from "effect/Schedule"
import * as Supervisor from "effect/Supervisor"
import * as Client from "../src/Client.js"
import { Opcode } from "../src/Frames.js"
import * as Server from "../src/Server.js"
import { CurrentWebSocket, type WebSocket } from "../src/WebSocket.js"
import {
  bounded,
  closeCodeOf,
  frameBytes,
  portOf,
  rawClient,
  realSleep,
  recordingLogger,
  serveLocal,
  uriOf
} from "./fixtures/loopback.js"

const echo = Server.onMessage((message, ws) => ws.send(message))

/** Counts the fibers started in the runtime it supervises. */
class FiberCounter extends Supervisor.AbstractSupervisor<number> {
  started = 0
  get value() {
    return Effect.sync(() => this.started)
  }
  override onStart(): void {
    this.started++
  }
}

/** Sends `count` messages one at a time, each after the echo of the previous one. */
const lockstep = (ws: WebSocket, count: number, size = 16) =>
  Effect.gen(function* () {
    for (let i = 0; i < count; i++) {
      const sent = new Uint8Array(size).fill(i & 0xff)
      yield* ws.send(i % 2 === 0 ? sent : `text ${i}`)
      const received = yield* ws.recv
      if (i % 2 === 0) expect(new Uint8Array(received as Uint8Array)).toEqual(sent)
      else expect(received).toBe(`text ${i}`)
    }
  })

describe("Server.onMessage", () => {
  it.scopedLive("echoes every message, in order", () =>
    Effect.gen(function* () {
      const server = yield* serveLocal(echo)
      const ws = yield* Client.connect(uriOf(server), { compression: null })
      for (let i = 0; i < 100; i++) yield* ws.send(i % 2 === 0 ? `text ${i}` : new Uint8Array([i]))
      for (let i = 0; i < 100; i++) {
        const message = yield* ws.recv
        if (i % 2 === 0) expect(message).toBe(`text ${i}`)
        else expect([...(message as Uint8Array)]).toEqual([i])
      }
    }).pipe(bounded())
  )

  it.scopedLive("a handler that suspends keeps the order: the next messages wait for it", () =>
    Effect.gen(function* () {
      const server = yield* serveLocal(
        Server.onMessage((message: string | Uint8Array, ws) =>
          // Earlier messages sleep longer: out of order if they ran concurrently.
          Effect.zipRight(realSleep(Math.max(0, 20 - Number(message))), ws.send(message))
        )
      )
      const ws = yield* Client.connect(uriOf(server), { compression: null })
      for (let i = 0; i < 20; i++) yield* ws.send(String(i))
      const received = []
      for (let i = 0; i < 20; i++) received.push(yield* ws.recv)
      expect(received).toEqual(Array.from({ length: 20 }, (_, i) => String(i)))
    }).pipe(bounded(5000))
  )

  it.scopedLive("the handler finds CurrentWebSocket and the value processRequest continued with", () =>
    Effect.gen(function* () {
      const server = yield* serveLocal(
        Server.onMessage((message, ws, user: string) =>
          Effect.flatMap(CurrentWebSocket, (current) => ws.send(`${user}: ${message} (${current === ws})`))
        ),
        { processRequest: (request) => Effect.succeed(Server.proceed(request.path.slice(1))) }
      )
      const ws = yield* Client.connect(uriOf(server, "/alice"), { compression: null })
      yield* ws.send("hi")
      expect(yield* ws.recv).toBe("alice: hi (true)")
    }).pipe(bounded())
  )

  it.scopedLive("a failure is logged and closes the connection with 1011; later messages are not handled", () =>
    Effect.gen(function* () {
      const { entries, layer } = recordingLogger()
      let handled = 0
      const server = yield* serveLocal(
        Server.onMessage((message) => {
          handled++
          return message === "boom" ? Effect.fail("boom" as const) : Effect.void
        })
      ).pipe(Effect.provide(layer))
      const ws = yield* Client.connect(uriOf(server), { compression: null })
      yield* ws.send("ok")
      yield* ws.send("boom")
      yield* ws.send("after")
      yield* ws.waitClosed
      expect(ws.closeCode).toBe(1011)
      expect(handled).toBe(2)
      const failures = entries.filter((entry) => entry.message === "connection handler failed")
      expect(failures).toHaveLength(1)
      expect(failures[0]!.level).toBe("ERROR")
    }).pipe(bounded())
  )

  it.scopedLive("sending on a connection the peer closed ends quietly (no log, no 1011)", () =>
    Effect.gen(function* () {
      const { entries, layer } = recordingLogger()
      const go = yield* Deferred.make<void>()
      const server = yield* serveLocal(
        Server.onMessage((message, ws) => Effect.zipRight(Deferred.await(go), ws.send(message)))
      ).pipe(Effect.provide(layer))
      const ws = yield* Client.connect(uriOf(server), { compression: null })
      yield* ws.send("late")
      yield* ws.close(1000)
      yield* Deferred.succeed(go, undefined)
      yield* Effect.repeat(
        Effect.sync(() => server.connections.size),
        { until: (size) => size === 0, schedule: Schedule.spaced("5 millis") }
      )
      expect(entries.filter((entry) => entry.level === "ERROR")).toEqual([])
    }).pipe(bounded())
  )

  it.scopedLive("reading pauses at maxQueue while the handler is busy, and resumes after", () =>
    Effect.gen(function* () {
      const test = { test: "onMessage-maxQueue" }
      const go = yield* Deferred.make<void>()
      const server = yield* serveLocal(
        Server.onMessage((message, ws) => Effect.zipRight(Deferred.await(go), ws.send(message))),
        { maxQueue: 2 }
      ).pipe(Effect.tagMetrics(test))
      const ws = yield* Client.connect(uriOf(server), { compression: null })
      for (let i = 0; i < 8; i++) yield* ws.send(`m${i}`)
      // The server stops reading once two messages wait behind the one being handled.
      yield* Effect.repeat(
        Metric.snapshot.pipe(
          Effect.map((pairs) =>
            pairs.some(
              (pair) =>
                pair.metricKey.name === "effect_websockets_backpressure_pauses_total" &&
                pair.metricKey.tags.some((tag) => tag.key === "test" && tag.value === test.test) &&
                Number((pair.metricState as unknown as { count: number }).count) >= 1
            )
          )
        ),
        { until: (paused) => paused, schedule: Schedule.spaced("5 millis") }
      )
      yield* Deferred.succeed(go, undefined)
      const received = []
      for (let i = 0; i < 8; i++) received.push(yield* ws.recv)
      expect(received).toEqual(Array.from({ length: 8 }, (_, i) => `m${i}`))
    }).pipe(bounded(5000))
  )

  it.scopedLive("a message before a protocol violation is answered before the closing frame, and no pong", () =>
    Effect.gen(function* () {
      const server = yield* serveLocal(echo)
      const peer = yield* rawClient(portOf(server))
      // In one write: a text message, a frame with a reserved opcode, then a ping.
      yield* peer.write(
        Buffer.concat([
          frameBytes(Opcode.Text, "first", true),
          frameBytes(3, "x", true),
          frameBytes(Opcode.Ping, "p", true)
        ])
      )
      const answer = yield* bounded()(peer.readFrame())
      expect(answer.opcode).toBe(Opcode.Text)
      expect(answer.payload.toString()).toBe("first")
      const close = yield* bounded()(peer.readFrame())
      expect(closeCodeOf(close)).toBe(1002)
    })
  )

  it.scopedLive("shutdown closes connections with 1001 and waits for a handler in flight", () =>
    Effect.gen(function* () {
      const started = yield* Deferred.make<void>()
      let finished = false
      const server = yield* serveLocal(
        Server.onMessage(() =>
          Effect.zipRight(
            Deferred.succeed(started, undefined),
            Effect.zipRight(
              realSleep(100),
              Effect.sync(() => {
                finished = true
              })
            )
          )
        )
      )
      const ws = yield* Client.connect(uriOf(server), { compression: null })
      yield* ws.send("work")
      yield* Deferred.await(started)
      yield* server.close
      expect(finished).toBe(true)
      yield* ws.waitClosed
      expect(ws.closeCode).toBe(1001)
      expect(server.connections.size).toBe(0)
    }).pipe(bounded(5000))
  )

  it.scopedLive("connections leave the server's set when they close", () =>
    Effect.gen(function* () {
      const server = yield* serveLocal(echo)
      for (let i = 0; i < 20; i++) {
        yield* Effect.scoped(
          Effect.gen(function* () {
            const ws = yield* Client.connect(uriOf(server), { compression: null })
            yield* ws.send("x")
            yield* ws.recv
          })
        )
      }
      yield* Effect.repeat(
        Effect.sync(() => server.connections.size),
        { until: (size) => size === 0, schedule: Schedule.spaced("5 millis") }
      )
    }).pipe(bounded(5000))
  )

  it.scopedLive("answers that complete at once start no fiber; other handlers one per read", () =>
    Effect.gen(function* () {
      const counter = new FiberCounter()
      const server = yield* serveLocal(echo).pipe(Effect.supervised(counter))
      const ws = yield* Client.connect(uriOf(server), { compression: null })
      yield* lockstep(ws, 1)
      const before = counter.started
      yield* lockstep(ws, 200)
      expect(counter.started - before).toBe(0)

      // The same answer built with flatMap is an Effect the server cannot see into: a fiber per
      // read (here one per message, since each waits for its echo). This checks the counter too.
      const other = yield* serveLocal(
        Server.onMessage((message, ws) => Effect.flatMap(Effect.void, () => ws.send(message)))
      ).pipe(Effect.supervised(counter))
      const ws2 = yield* Client.connect(uriOf(other), { compression: null })
      yield* lockstep(ws2, 1)
      const before2 = counter.started
      yield* lockstep(ws2, 50)
      expect(counter.started - before2).toBe(50)
    }).pipe(bounded(10_000))
  )

  it.scopedLive("a handler that answers only some messages, or throws, is served as before", () =>
    Effect.gen(function* () {
      const { entries, layer } = recordingLogger()
      const server = yield* serveLocal(
        Server.onMessage((message, ws) => {
          if (message === "throw") throw new Error("handler bug")
          return message === "skip" ? Effect.void : ws.send(message)
        })
      ).pipe(Effect.provide(layer))
      const ws = yield* Client.connect(uriOf(server), { compression: null })
      yield* ws.send("skip")
      yield* ws.send("one")
      expect(yield* ws.recv).toBe("one")
      yield* ws.send("throw")
      yield* ws.waitClosed
      expect(ws.closeCode).toBe(1011)
      const failures = entries.filter((entry) => entry.message === "connection handler failed")
      expect(failures).toHaveLength(1)
    }).pipe(bounded())
  )

  it.scopedLive("answers over writeLimit wait for the peer to read, in a fiber, in order", () =>
    Effect.gen(function* () {
      const counter = new FiberCounter()
      const server = yield* serveLocal(echo, { writeLimit: 1024 }).pipe(Effect.supervised(counter))
      // The client starts reading only after a while: its queue fills (maxQueue 1), its socket
      // stops reading, the server's write buffer grows over the limit and the answers must wait.
      const ws = yield* Client.connect(uriOf(server), { compression: null, maxQueue: 1 })
      const count = 64
      const size = 256 * 1024
      const sending = yield* Effect.fork(
        Effect.forEach(
          Array.from({ length: count }, (_, i) => i),
          (i) => ws.send(new Uint8Array(size).fill(i)),
          {
            discard: true
          }
        )
      )
      yield* realSleep(300)
      for (let i = 0; i < count; i++) {
        const message = (yield* ws.recv) as Uint8Array
        expect(message.byteLength).toBe(size)
        expect(message[0]).toBe(i)
        expect(message[size - 1]).toBe(i)
      }
      yield* sending.await
      expect(counter.started).toBeGreaterThan(0)
    }).pipe(bounded(20_000))
  )

  it.scopedLive("a large message with compression is answered in fragments of one message", () =>
    Effect.gen(function* () {
      const server = yield* serveLocal(echo, { compression: "deflate" })
      const ws = yield* Client.connect(uriOf(server))
      // Cut into fragments of 262,144 code units before it is encoded: a surrogate pair sits on the cut.
      const base = "compressible text é ".repeat(45_000)
      const text = `${base.slice(0, 262_143)}😀${base.slice(262_143)}`
      yield* ws.send(text)
      expect(yield* ws.recv).toBe(text)
      const bytes = new Uint8Array(1_000_000).map((_, i) => i % 251)
      yield* ws.send(bytes)
      expect(Buffer.compare((yield* ws.recv) as Uint8Array, bytes)).toBe(0)
    }).pipe(bounded(10_000))
  )
})
