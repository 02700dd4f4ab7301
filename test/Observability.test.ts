/**
 * What connections tell the outside (issue 13), over real loopback sockets: the spans of a normal
 * connection, a rejected handshake, a protocol error and a keepalive timeout (an in-memory tracer);
 * the metrics after a known exchange (Effect's metric snapshot); the debug log of a known exchange,
 * line by line, in Python's format.
 */
import { describe, expect, it } from "@effect/vitest"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import type * as Exit from "effect/Exit"
import * as Logger from "effect/Logger"
import * as LogLevel from "effect/LogLevel"
import * as Metric from "effect/Metric"
import type * as MetricPair from "effect/MetricPair"
import * as Option from "effect/Option"
import * as Schedule from "effect/Schedule"
import * as Tracer from "effect/Tracer"
import * as Client from "../src/Client.js"
import { Opcode } from "../src/Frames.js"
import * as Server from "../src/Server.js"
import type { WebSocket } from "../src/WebSocket.js"
import {
  bounded,
  closeCodeOf,
  echo,
  frameBytes,
  portOf,
  rawClient,
  recordingLogger,
  serveLocal,
  uriOf
} from "./fixtures/loopback.js"

// ---------------------------------------------------------------------------
// An in-memory tracer
// ---------------------------------------------------------------------------

let nextId = 0

class RecordedSpan implements Tracer.Span {
  readonly _tag = "Span"
  readonly spanId = `span${++nextId}`
  readonly traceId: string
  readonly sampled = true
  status: Tracer.SpanStatus
  readonly attributes = new Map<string, unknown>()
  readonly links: Array<Tracer.SpanLink>
  readonly events: Array<string> = []

  constructor(
    readonly name: string,
    readonly parent: Option.Option<Tracer.AnySpan>,
    readonly context: Tracer.Span["context"],
    links: ReadonlyArray<Tracer.SpanLink>,
    startTime: bigint,
    readonly kind: Tracer.SpanKind
  ) {
    this.traceId = Option.isSome(parent) ? parent.value.traceId : `trace${nextId}`
    this.links = [...links]
    this.status = { _tag: "Started", startTime }
  }
  end(endTime: bigint, exit: Exit.Exit<unknown, unknown>): void {
    this.status = { _tag: "Ended", startTime: this.status.startTime, endTime, exit }
  }
  attribute(key: string, value: unknown): void {
    this.attributes.set(key, value)
  }
  event(name: string): void {
    this.events.push(name)
  }
  addLinks(links: ReadonlyArray<Tracer.SpanLink>): void {
    this.links.push(...links)
  }

  get ended(): boolean {
    return this.status._tag === "Ended"
  }
  /** The tag of the failure it ended with, "success", or undefined while it runs. */
  get outcome(): string | undefined {
    if (this.status._tag !== "Ended") return undefined
    const exit = this.status.exit
    if (exit._tag === "Success") return "success"
    return exit.cause._tag === "Fail" ? (exit.cause.error as { _tag: string })._tag : exit.cause._tag
  }
  get parentId(): string | undefined {
    return Option.isSome(this.parent) ? this.parent.value.spanId : undefined
  }
}

const memoryTracer = () => {
  const spans: Array<RecordedSpan> = []
  const tracer = Tracer.make({
    span: (name, parent, context, links, startTime, kind) => {
      const span = new RecordedSpan(name, parent, context, links, startTime, kind)
      spans.push(span)
      return span
    },
    context: (f) => f()
  })
  return { spans, tracer }
}

/** Polls until `f` returns a value (spans end in socket callbacks, after the Effects that caused them). */
const eventually = <A>(f: () => A | undefined): Effect.Effect<A, unknown> =>
  Effect.suspend(() => {
    const value = f()
    return value === undefined ? Effect.fail("not yet") : Effect.succeed(value)
  }).pipe(Effect.retry(Schedule.spaced("5 millis")), bounded(5000))

const connectionSpans = (spans: ReadonlyArray<RecordedSpan>, side: "server" | "client") =>
  spans.filter((span) => span.name === "effect-websockets.connection" && span.kind === side)

const childOf = (spans: ReadonlyArray<RecordedSpan>, parent: RecordedSpan, name: string) =>
  spans.find((span) => span.name === name && span.parentId === parent.spanId)

describe("spans", () => {
  it.scopedLive("a normal connection: one span per side covering its life, the handshake as a child", () =>
    Effect.gen(function* () {
      const { spans, tracer } = memoryTracer()
      yield* Effect.gen(function* () {
        const server = yield* serveLocal(
          (ws) => ws.forEachMessage((message) => ws.send(message).pipe(Effect.withSpan("app.echo"))),
          { subprotocols: ["chat"], compression: "deflate" }
        )
        yield* Effect.scoped(
          Effect.gen(function* () {
            const ws = yield* Client.connect(uriOf(server, "/room?id=7"), { subprotocols: ["chat"] })
            yield* ws.send("hello")
            expect(yield* ws.recv).toBe("hello")
            yield* ws.close(1000, "bye")
          })
        )
      }).pipe(Effect.withSpan("test"), Effect.withTracer(tracer), Effect.scoped)

      const test = spans.find((span) => span.name === "test")!
      const server = yield* eventually(() => connectionSpans(spans, "server").find((span) => span.ended))
      expect(server.parentId).toBeUndefined()
      expect(server.outcome).toBe("success")
      expect(Object.fromEntries(server.attributes)).toMatchObject({
        "websocket.side": "server",
        "url.path": "/room?id=7",
        "client.address": "127.0.0.1",
        "websocket.subprotocol": "chat",
        "websocket.close.received.code": 1000,
        "websocket.close.received.reason": "bye",
        "websocket.close.sent.code": 1000,
        "websocket.close.sent.reason": "bye",
        "websocket.close.clean": true,
        "websocket.messages.received": 1,
        "websocket.messages.sent": 1,
        "websocket.bytes.received": 5,
        "websocket.bytes.sent": 5
      })
      expect(server.attributes.get("websocket.extensions")).toMatch(/^permessage-deflate/)
      expect(typeof server.attributes.get("client.port")).toBe("number")
      expect(typeof server.attributes.get("websocket.connection.id")).toBe("string")
      expect(childOf(spans, server, "effect-websockets.handshake")?.outcome).toBe("success")
      // The handler runs in the connection's span: the application's spans nest under it.
      expect(childOf(spans, server, "app.echo")?.outcome).toBe("success")

      const [client] = connectionSpans(spans, "client")
      expect(client!.parentId).toBe(test.spanId)
      expect(client!.outcome).toBe("success")
      expect(client!.attributes.get("server.address")).toBe("127.0.0.1")
      expect(Object.fromEntries(client!.attributes)).toMatchObject({
        "websocket.side": "client",
        "websocket.close.sent.code": 1000,
        "websocket.close.received.code": 1000,
        "websocket.close.clean": true,
        "websocket.messages.sent": 1,
        "websocket.messages.received": 1
      })
      expect(childOf(spans, client!, "effect-websockets.handshake")?.outcome).toBe("success")
    })
  )

  it.scopedLive("a rejected handshake fails the handshake and connection spans of both sides", () =>
    Effect.gen(function* () {
      const { spans, tracer } = memoryTracer()
      const error = yield* Effect.gen(function* () {
        const server = yield* serveLocal(echo, {
          processRequest: () => Effect.succeed({ status: 403, body: "no\n" })
        })
        return yield* Effect.flip(Effect.scoped(Client.connect(uriOf(server))))
      }).pipe(Effect.withTracer(tracer), Effect.scoped)
      expect(error._tag).toBe("InvalidStatusCode")

      const server = yield* eventually(() => connectionSpans(spans, "server").find((span) => span.ended))
      expect(server.outcome).toBe("InvalidMessage")
      expect(childOf(spans, server, "effect-websockets.handshake")?.outcome).toBe("InvalidMessage")
      const client = yield* eventually(() => connectionSpans(spans, "client").find((span) => span.ended))
      expect(client.outcome).toBe("InvalidStatusCode")
      expect(childOf(spans, client, "effect-websockets.handshake")?.outcome).toBe("InvalidStatusCode")
    })
  )

  it.scopedLive("a clean close with an application's code (4000) ends both connection spans without error", () =>
    Effect.gen(function* () {
      const { spans, tracer } = memoryTracer()
      yield* Effect.gen(function* () {
        // The server closes with 4001 on one path, the client with 4000 on the other.
        const server = yield* serveLocal(
          (ws: WebSocket): Effect.Effect<void, unknown> =>
            ws.path === "/server-closes" ? ws.close(4001, "done") : echo(ws, undefined)
        )
        const ws = yield* Client.connect(uriOf(server), { compression: null })
        yield* ws.close(4000, "bye")
        const other = yield* Client.connect(uriOf(server, "/server-closes"), { compression: null })
        yield* other.waitClosed
      }).pipe(Effect.withTracer(tracer), Effect.scoped)

      for (const side of ["server", "client"] as const) {
        const ended = yield* eventually(() => {
          const found = connectionSpans(spans, side).filter((span) => span.ended)
          return found.length === 2 ? found : undefined
        })
        for (const span of ended) {
          expect(span.attributes.get("websocket.close.clean")).toBe(true)
          expect(span.outcome).toBe("success")
        }
        const codes = ended.map((span) => span.attributes.get("websocket.close.sent.code")).sort()
        expect(codes).toEqual([4000, 4001])
      }
    })
  )

  it.scopedLive("a clean close with 1011 after a handler failed still fails the spans", () =>
    Effect.gen(function* () {
      const { spans, tracer } = memoryTracer()
      yield* Effect.gen(function* () {
        const server = yield* serveLocal((_ws: WebSocket) => Effect.fail("boom"))
        const ws = yield* Client.connect(uriOf(server), { compression: null })
        yield* ws.waitClosed
        expect(ws.closeCode).toBe(1011)
      }).pipe(Effect.withTracer(tracer), Logger.withMinimumLogLevel(LogLevel.None), Effect.scoped)
      for (const side of ["server", "client"] as const) {
        const span = yield* eventually(() => connectionSpans(spans, side).find((s) => s.ended))
        expect(span.attributes.get("websocket.close.clean")).toBe(true)
        expect(span.outcome).toBe("ConnectionClosedError")
      }
    })
  )

  it.scopedLive("a protocol error from the peer fails the server's connection span, with the 1002 it sent", () =>
    Effect.gen(function* () {
      const { spans, tracer } = memoryTracer()
      const server = yield* serveLocal(echo).pipe(Effect.withTracer(tracer))
      const peer = yield* rawClient(portOf(server))
      // Opcode 3 is reserved (RFC 6455 §5.2).
      yield* peer.write(frameBytes(3, "x", true))
      expect(closeCodeOf(yield* bounded()(peer.readFrame()))).toBe(1002)

      const span = yield* eventually(() => connectionSpans(spans, "server").find((s) => s.ended))
      expect(span.outcome).toBe("ProtocolError")
      expect(span.attributes.get("websocket.close.sent.code")).toBe(1002)
      expect(span.attributes.get("websocket.close.clean")).toBe(false)
    })
  )

  it.scopedLive("a keepalive timeout fails the connection span, with the 1011 it sent", () =>
    Effect.gen(function* () {
      const { spans, tracer } = memoryTracer()
      const server = yield* serveLocal(echo, { pingInterval: 20, pingTimeout: 20 }).pipe(Effect.withTracer(tracer))
      // A raw peer never answers pings.
      const peer = yield* rawClient(portOf(server))
      const frames = []
      for (;;) {
        const frame = yield* bounded()(peer.readFrame())
        frames.push(frame.opcode)
        if (frame.opcode === Opcode.Close) {
          expect(closeCodeOf(frame)).toBe(1011)
          break
        }
      }
      expect(frames[0]).toBe(Opcode.Ping)
      const span = yield* eventually(() => connectionSpans(spans, "server").find((s) => s.ended))
      expect(span.outcome).toBe("ConnectionClosedError")
      expect(span.attributes.get("websocket.close.sent.code")).toBe(1011)
      expect(span.attributes.get("websocket.close.sent.reason")).toBe("keepalive ping timeout")
    })
  )

  it.scopedLive("with tracing disabled, connections make no span", () =>
    Effect.gen(function* () {
      const { spans, tracer } = memoryTracer()
      yield* Effect.gen(function* () {
        const server = yield* serveLocal(echo)
        const ws = yield* Client.connect(uriOf(server), { compression: null })
        yield* ws.send("x")
        yield* ws.recv
        yield* ws.close()
      }).pipe(Effect.withTracerEnabled(false), Effect.withTracer(tracer), Effect.scoped)
      expect(spans).toEqual([])
    })
  )
})

// ---------------------------------------------------------------------------
// Metrics
// ---------------------------------------------------------------------------

/** Values of a metric whose labels include every label of `labels`, read from Effect's snapshot. */
const metricValues = (name: string, labels: Record<string, string>) =>
  Effect.map(Metric.snapshot, (pairs) =>
    pairs
      .filter(
        (pair: MetricPair.MetricPair.Untyped) =>
          pair.metricKey.name === name &&
          Object.entries(labels).every(([key, value]) =>
            pair.metricKey.tags.some((tag) => tag.key === key && tag.value === value)
          )
      )
      .map((pair) => ({
        labels: Object.fromEntries(pair.metricKey.tags.map((tag) => [tag.key, tag.value])),
        state: pair.metricState as unknown as { count?: number | bigint; value?: number | bigint }
      }))
  )

/** The value of a counter or gauge with exactly these labels (plus the test's), 0 if absent. */
const metricValue = (name: string, labels: Record<string, string>) =>
  Effect.map(metricValues(name, labels), (found) => {
    const exact = found.filter((entry) => Object.keys(entry.labels).length === Object.keys(labels).length)
    return exact.length === 0 ? 0 : Number(exact[0]!.state.count ?? exact[0]!.state.value)
  })

describe("metrics", () => {
  it.scopedLive("counters after a known exchange, by side, type and close code", () =>
    Effect.gen(function* () {
      const test = { test: "known-exchange" }
      yield* Effect.gen(function* () {
        const server = yield* serveLocal(echo)
        yield* Effect.scoped(
          Effect.gen(function* () {
            const ws = yield* Client.connect(uriOf(server), { compression: null })
            expect(yield* metricValue("effect_websockets_connections_open", { ...test, side: "client" })).toBe(1)
            yield* ws.send("a")
            yield* ws.send("bb")
            yield* ws.send(new Uint8Array(3))
            for (let i = 0; i < 3; i++) yield* ws.recv
            const pong = yield* ws.ping()
            yield* pong
            yield* ws.close(1000)
          })
        )
        yield* server.close
      }).pipe(Effect.tagMetrics(test), Effect.scoped)

      for (const side of ["server", "client"]) {
        const labels = { ...test, side }
        const text = { ...labels, type: "text" }
        const binary = { ...labels, type: "binary" }
        expect(yield* metricValue("effect_websockets_messages_received_total", text)).toBe(2)
        expect(yield* metricValue("effect_websockets_messages_received_total", binary)).toBe(1)
        expect(yield* metricValue("effect_websockets_messages_sent_total", text)).toBe(2)
        expect(yield* metricValue("effect_websockets_messages_sent_total", binary)).toBe(1)
        expect(yield* metricValue("effect_websockets_bytes_received_total", text)).toBe(3)
        expect(yield* metricValue("effect_websockets_bytes_sent_total", binary)).toBe(3)
        expect(yield* metricValue("effect_websockets_connections_opened_total", labels)).toBe(1)
        expect(yield* metricValue("effect_websockets_connections_closed_total", { ...labels, code: "1000" })).toBe(1)
        expect(yield* metricValue("effect_websockets_connections_open", labels)).toBe(0)
      }
      const [rtt] = yield* metricValues("effect_websockets_ping_rtt_ms", { ...test, side: "client" })
      expect(rtt!.state.count).toBe(1)
    })
  )

  it.scopedLive("handshake failures by error, and backpressure pauses by reason", () =>
    Effect.gen(function* () {
      const test = { test: "failures-and-pauses" }
      yield* Effect.gen(function* () {
        const rejecting = yield* serveLocal(echo, { processRequest: () => Effect.succeed({ status: 403 }) })
        yield* Effect.flip(Effect.scoped(Client.connect(uriOf(rejecting))))
        // A handler that does not read until told: reading pauses at maxQueue.
        const go = yield* Deferred.make<void>()
        const slow = yield* serveLocal((ws) => Effect.zipRight(Deferred.await(go), echo(ws, undefined)), {
          maxQueue: 2
        })
        const ws = yield* Client.connect(uriOf(slow), { compression: null })
        for (let i = 0; i < 4; i++) yield* ws.send(`m${i}`)
        // The server's reading pauses once two messages wait: then let the handler read.
        yield* metricValue("effect_websockets_backpressure_pauses_total", {
          ...test,
          side: "server",
          reason: "maxQueue"
        }).pipe(Effect.repeat({ schedule: Schedule.spaced("5 millis"), until: (count) => count >= 1 }), bounded(5000))
        yield* Deferred.succeed(go, undefined)
        for (let i = 0; i < 4; i++) yield* ws.recv
        yield* ws.close()
      }).pipe(Effect.tagMetrics(test), Effect.scoped)
      expect(
        yield* metricValue("effect_websockets_handshake_failures_total", {
          ...test,
          side: "server",
          error: "InvalidMessage"
        })
      ).toBe(1)
      expect(
        yield* metricValue("effect_websockets_handshake_failures_total", {
          ...test,
          side: "client",
          error: "InvalidStatusCode"
        })
      ).toBe(1)
      expect(
        yield* metricValue("effect_websockets_backpressure_pauses_total", {
          ...test,
          side: "server",
          reason: "maxQueue"
        })
      ).toBeGreaterThanOrEqual(1)
    })
  )

  it.scopedLive("a send over writeLimit that the kernel takes at once does not pause the sender", () =>
    Effect.gen(function* () {
      const test = { test: "send-over-write-limit" }
      yield* Effect.gen(function* () {
        const server = yield* serveLocal(echo)
        const ws = yield* Client.connect(uriOf(server), { compression: null, writeLimit: 1024 })
        // 4 KiB, over the limit of 1 KiB, to an idle loopback connection: the kernel takes it whole
        // (its send buffer starts at 16 KiB), so `send` completes without waiting for 'drain'.
        const message = new Uint8Array(4096).fill(7)
        for (let i = 0; i < 20; i++) {
          yield* ws.send(message)
          expect(Buffer.compare((yield* ws.recv) as Uint8Array, message)).toBe(0)
        }
        yield* ws.close()
      }).pipe(Effect.tagMetrics(test), Effect.scoped)
      expect(
        yield* metricValue("effect_websockets_messages_sent_total", { ...test, side: "client", type: "binary" })
      ).toBe(20)
      expect(
        yield* metricValue("effect_websockets_backpressure_pauses_total", { ...test, side: "client", reason: "send" })
      ).toBe(0)
    })
  )

  it.scopedLive("metrics: false updates none", () =>
    Effect.gen(function* () {
      const test = { test: "metrics-off" }
      yield* Effect.gen(function* () {
        const server = yield* serveLocal(echo, { metrics: false })
        const ws = yield* Client.connect(uriOf(server), { compression: null, metrics: false })
        yield* ws.send("x")
        yield* ws.recv
        yield* ws.close()
      }).pipe(Effect.tagMetrics(test), Effect.scoped)
      const found = yield* metricValues("effect_websockets_messages_received_total", test)
      expect(found).toEqual([])
    })
  )
})

// ---------------------------------------------------------------------------
// Logs
// ---------------------------------------------------------------------------

describe("logs", () => {
  it.scopedLive("at Debug, the server logs every frame of a known exchange in Python's format", () =>
    Effect.gen(function* () {
      const { entries, layer } = recordingLogger()
      const serverId = yield* Deferred.make<string>()
      yield* Effect.gen(function* () {
        const server = yield* serveLocal(
          (ws: WebSocket) => Effect.zipRight(Deferred.succeed(serverId, ws.id), echo(ws, undefined)),
          {
            compression: "deflate"
          }
        )
        const ws = yield* Client.connect(uriOf(server))
        yield* ws.send("hello")
        yield* ws.recv
        yield* ws.send(new Uint8Array([1, 2, 3]))
        yield* ws.recv
        yield* ws.close(1000)
        yield* server.close
      }).pipe(Effect.provide(layer), Logger.withMinimumLogLevel(LogLevel.Debug), Effect.scoped)

      const id = yield* Deferred.await(serverId)
      const lines = entries.filter((entry) => entry.annotations.connectionId === id)
      expect(lines.map((entry) => `${entry.level} ${entry.message}`)).toEqual([
        "DEBUG connection open",
        "DEBUG < TEXT 'hello' [5 bytes]",
        "DEBUG > TEXT 'hello' [5 bytes]",
        "DEBUG < BINARY 01 02 03 [3 bytes]",
        "DEBUG > BINARY 01 02 03 [3 bytes]",
        "DEBUG < CLOSE 1000 (OK) [2 bytes]",
        "DEBUG > CLOSE 1000 (OK) [2 bytes]",
        "DEBUG > EOF",
        "DEBUG < EOF",
        "DEBUG connection closed: received 1000 (OK); then sent 1000 (OK)"
      ])
      // The client logs its frames too, under its own id.
      const client = entries.filter((entry) => entry.annotations.connectionId !== id)
      expect(client.map((entry) => entry.message)).toContain("> TEXT 'hello' [5 bytes]")
    })
  )

  it.scopedLive("at the default level (Info), nothing is logged: the connection lines are at Debug", () =>
    Effect.gen(function* () {
      const { entries, layer } = recordingLogger()
      yield* Effect.gen(function* () {
        const server = yield* serveLocal(echo)
        const ws = yield* Client.connect(uriOf(server), { compression: null })
        yield* ws.send("hello")
        yield* ws.recv
        yield* ws.close()
        yield* server.close
      }).pipe(Effect.provide(layer), Effect.scoped)
      expect(entries).toEqual([])
    })
  )

  it.scopedLive("connectionLogLevel Info: the server's open, rejected and closed lines at Info, no frame", () =>
    Effect.gen(function* () {
      const { entries, layer } = recordingLogger()
      yield* Effect.gen(function* () {
        const server = yield* serveLocal(echo, {
          connectionLogLevel: "Info",
          processRequest: (request) =>
            Effect.succeed(request.path === "/private" ? { status: 403, body: "no\n" } : undefined)
        })
        const ws = yield* Client.connect(uriOf(server), { compression: null })
        yield* ws.send("hello")
        yield* ws.recv
        yield* ws.close()
        yield* Effect.flip(Effect.scoped(Client.connect(uriOf(server, "/private"))))
        yield* server.close
      }).pipe(Effect.provide(layer), Effect.scoped)
      expect(entries.map((entry) => `${entry.level} ${entry.message}`)).toEqual([
        "INFO connection open",
        "INFO connection closed: received 1000 (OK); then sent 1000 (OK)",
        "INFO connection rejected (403 Forbidden)"
      ])
      expect(entries.every((entry) => typeof entry.annotations.connectionId === "string")).toBe(true)
    })
  )

  it.scopedLive("a connection the server closed with 1009 is logged with the code it sent", () =>
    Effect.gen(function* () {
      const { entries, layer } = recordingLogger()
      const server = yield* serveLocal(echo, { maxSize: 16, connectionLogLevel: "Info" }).pipe(Effect.provide(layer))
      const peer = yield* rawClient(portOf(server))
      yield* peer.write(frameBytes(Opcode.Binary, new Uint8Array(17), true))
      expect(closeCodeOf(yield* bounded()(peer.readFrame()))).toBe(1009)
      // The peer goes away without its close frame.
      peer.socket.destroy()
      const closed = yield* eventually(() =>
        entries.find((entry) => String(entry.message).startsWith("connection closed"))
      )
      expect(closed.message).toBe(
        "connection closed: sent 1009 (message too big) over size limit (17 > 16 bytes); no close frame received"
      )
    })
  )

  it.scopedLive("a handler's own log lines carry its connectionId, as the library's do", () =>
    Effect.gen(function* () {
      const { entries, layer } = recordingLogger()
      const ids = yield* Deferred.make<string>()
      const server = yield* serveLocal(
        (ws: WebSocket) =>
          Effect.gen(function* () {
            yield* Deferred.succeed(ids, ws.id)
            const message = yield* ws.recv
            yield* Effect.log(`handler got ${String(message)}`)
            // A fiber the handler forks inherits them.
            yield* Effect.fork(Effect.logWarning("forked"))
            yield* ws.send(message)
            yield* ws.recv
          }),
        {
          processRequest: () => Effect.as(Effect.log("hook"), undefined)
        }
      ).pipe(Effect.provide(layer))
      const onMessage = yield* serveLocal(
        Server.onMessage((message, ws) =>
          Effect.zipRight(Effect.log(`onMessage got ${String(message)}`), ws.send(message))
        )
      ).pipe(Effect.provide(layer))
      for (const target of [server, onMessage]) {
        const ws = yield* Client.connect(uriOf(target), { compression: null })
        yield* ws.send("x")
        yield* ws.recv
        // The client's own lines: with the connection's annotations added by the application.
        yield* Effect.log("client got x").pipe(Effect.annotateLogs(ws.logAnnotations), Effect.provide(layer))
        expect(ws.logAnnotations).toEqual({ connectionId: ws.id })
        const clientId = ws.id
        yield* ws.close()
        expect(
          entries.find((entry) => entry.message === "client got x" && entry.annotations.connectionId === clientId)
        ).toBeDefined()
        entries.splice(
          entries.findIndex((entry) => entry.message === "client got x"),
          1
        )
      }
      const id = yield* Deferred.await(ids)
      const byMessage = (message: string) => entries.find((entry) => entry.message === message)
      for (const message of ["hook", "handler got x", "forked"]) {
        expect(byMessage(message)?.annotations.connectionId).toBe(id)
      }
      const other = byMessage("onMessage got x")
      expect(typeof other?.annotations.connectionId).toBe("string")
      expect(other?.annotations.connectionId).not.toBe(id)
    })
  )
})
