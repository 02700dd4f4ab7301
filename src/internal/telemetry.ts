/**
 * What connections tell the outside: logs (through Effect's loggers), spans (Effect's Tracer) and
 * metrics (Effect's Metric). Everything is read once from the fiber that starts a server or a
 * client connection, so that connections, which run in plain callbacks, need no fiber to log, trace
 * or count, and pay nothing for what is off: no logger when the level is above Info, no frame
 * formatted above Debug, no span with tracing disabled, no metric with `metrics: false`.
 */
import * as Cause from "effect/Cause"
import type * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as FiberId from "effect/FiberId"
import * as FiberRef from "effect/FiberRef"
import * as FiberRefs from "effect/FiberRefs"
import * as HashMap from "effect/HashMap"
import * as HashSet from "effect/HashSet"
import * as LogLevel from "effect/LogLevel"
import * as MetricLabel from "effect/MetricLabel"
import * as Option from "effect/Option"
import type * as Tracer from "effect/Tracer"
import type { Connection, ConnectionLogger } from "../Connection.js"
import { Opcode } from "../Frames.js"
import * as Metrics from "../Metrics.js"
import type { WebSocketImpl } from "./webSocket.js"

type Side = "client" | "server"
type Labels = ReadonlyArray<MetricLabel.MetricLabel>

/**
 * Updates the metrics of one side. Label arrays are made once: Effect caches a metric's hook per
 * array, so an update is a lookup in a WeakMap and an addition.
 */
export class MetricsRecorder {
  private readonly side: Labels
  private readonly text: Labels
  private readonly binary: Labels
  private readonly pauses: Record<"maxQueue" | "writeLimit" | "send", Labels>
  private readonly codes = new Map<string, Labels>()
  private readonly errors = new Map<string, Labels>()

  constructor(side: Side, base: Labels) {
    this.side = [...base, MetricLabel.make("side", side)]
    this.text = [...this.side, MetricLabel.make("type", "text")]
    this.binary = [...this.side, MetricLabel.make("type", "binary")]
    const pause = (reason: string) => [...this.side, MetricLabel.make("reason", reason)]
    this.pauses = { maxQueue: pause("maxQueue"), writeLimit: pause("writeLimit"), send: pause("send") }
  }

  received(opcode: number, bytes: number): void {
    const labels = opcode === Opcode.Text ? this.text : this.binary
    Metrics.messagesReceived.unsafeUpdate(1, labels)
    Metrics.bytesReceived.unsafeUpdate(bytes, labels)
  }

  /** One frame of a message sent: bytes now, the message once its last frame is sent. */
  sent(opcode: number, bytes: number, fin: boolean): void {
    const labels = opcode === Opcode.Text ? this.text : this.binary
    if (fin) Metrics.messagesSent.unsafeUpdate(1, labels)
    Metrics.bytesSent.unsafeUpdate(bytes, labels)
  }

  pingRoundTrip(millis: number): void {
    Metrics.pingRoundTrip.unsafeUpdate(millis, this.side)
  }

  paused(reason: "maxQueue" | "writeLimit" | "send"): void {
    Metrics.backpressurePauses.unsafeUpdate(1, this.pauses[reason])
  }

  opened(): void {
    Metrics.connectionsOpened.unsafeUpdate(1, this.side)
    Metrics.connectionsOpen.unsafeModify(1, this.side)
  }

  closed(code: number): void {
    Metrics.connectionsOpen.unsafeModify(-1, this.side)
    Metrics.connectionsClosed.unsafeUpdate(1, this.labelsFor(this.codes, "code", String(code)))
  }

  handshakeFailed(error: string): void {
    Metrics.handshakeFailures.unsafeUpdate(1, this.labelsFor(this.errors, "error", error))
  }

  /** The side's labels plus `key=value`, made once per value (Effect caches hooks per array). */
  private labelsFor(cache: Map<string, Labels>, key: string, value: string): Labels {
    let labels = cache.get(value)
    if (labels === undefined) {
      labels = [...this.side, MetricLabel.make(key, value)]
      cache.set(value, labels)
    }
    return labels
  }
}

/** Recorders without extra labels, shared by every server and client of the process. */
const sharedRecorders: Partial<Record<Side, MetricsRecorder>> = {}

const recorderFor = (side: Side, base: Labels): MetricsRecorder => {
  if (base.length > 0) return new MetricsRecorder(side, base)
  sharedRecorders[side] ??= new MetricsRecorder(side, base)
  return sharedRecorders[side]
}

/**
 * A connection logger over the loggers of a fiber: lines go to every Effect logger it had, with its
 * log annotations and spans, plus `connectionId`. `undefined` when nothing at Info would be shown.
 */
export const effectLogger = (fiberRefs: FiberRefs.FiberRefs): ConnectionLogger | undefined => {
  const minimum = FiberRefs.getOrDefault(fiberRefs, FiberRef.currentMinimumLogLevel)
  if (LogLevel.greaterThan(minimum, LogLevel.Info)) return undefined
  const loggers = FiberRefs.getOrDefault(fiberRefs, FiberRef.currentLoggers)
  if (HashSet.size(loggers) === 0) return undefined
  const annotations = FiberRefs.getOrDefault(fiberRefs, FiberRef.currentLogAnnotations)
  const spans = FiberRefs.getOrDefault(fiberRefs, FiberRef.currentLogSpan)
  const log = (logLevel: LogLevel.LogLevel, message: string, connection: Connection): void => {
    const entry = {
      fiberId: FiberId.none,
      logLevel,
      message,
      cause: Cause.empty,
      context: fiberRefs,
      spans,
      annotations: HashMap.set(annotations, "connectionId", connection.id as unknown),
      date: new Date()
    }
    for (const logger of loggers) logger.log(entry)
  }
  return {
    debugEnabled: LogLevel.lessThanEqual(minimum, LogLevel.Debug),
    debug: (message, connection) => log(LogLevel.Debug, message, connection),
    info: (message, connection) => log(LogLevel.Info, message, connection)
  }
}

/** Effect's built-in tracer, whose spans nobody exports (read once, on first use). */
let builtinTracer: Tracer.Tracer | undefined

/**
 * The tracer connections report to: `undefined` when tracing is off, or when it is Effect's
 * built-in tracer, which exports nothing. Spans live as long as connections (about 1.5 KiB each
 * with their ids), so that no exporter means no span rather than spans nobody reads.
 */
const exportingTracer = (tracer: Tracer.Tracer): Tracer.Tracer | undefined => {
  builtinTracer ??= Effect.runSync(Effect.tracer)
  return tracer === builtinTracer ? undefined : tracer
}

/** The spans of one connection: its life, and its opening handshake while it lasts. */
export interface ConnectionSpans {
  readonly connection: Tracer.Span
  handshake: Tracer.Span | undefined
}

/**
 * What a server, or a client's `connect`, records about its connections: made once from the fiber
 * that starts it, shared by its connections.
 */
export class Telemetry {
  private constructor(
    readonly side: Side,
    /** `undefined` with `metrics: false`. */
    readonly metrics: MetricsRecorder | undefined,
    /** `undefined` when logs at Info and below are off. */
    readonly logger: ConnectionLogger | undefined,
    /** `undefined` when tracing is disabled. */
    private readonly tracer: Tracer.Tracer | undefined,
    private readonly clock: Clock.Clock,
    private readonly timing: boolean
  ) {}

  /** Reads loggers, tracer, clock and metric labels from the current fiber. */
  static make(side: Side, options: { readonly metrics?: boolean | undefined }): Effect.Effect<Telemetry> {
    return Effect.gen(function* () {
      const fiberRefs = yield* Effect.getFiberRefs
      const tracingEnabled = FiberRefs.getOrDefault(fiberRefs, FiberRef.currentTracerEnabled)
      const metrics =
        options.metrics === false
          ? undefined
          : recorderFor(side, FiberRefs.getOrDefault(fiberRefs, FiberRef.currentMetricLabels))
      return new Telemetry(
        side,
        metrics,
        effectLogger(fiberRefs),
        tracingEnabled ? exportingTracer(yield* Effect.tracer) : undefined,
        yield* Effect.clock,
        FiberRefs.getOrDefault(fiberRefs, FiberRef.currentTracerTimingEnabled)
      )
    })
  }

  private now(): bigint {
    return this.timing ? this.clock.unsafeCurrentTimeNanos() : BigInt(0)
  }

  /**
   * Starts the spans of a new connection, before it has a WebSocket (a client's starts with the TCP
   * connection); `parent` is the caller's span (clients; a server's connections are roots).
   */
  startSpans(parent: Option.Option<Tracer.AnySpan> = Option.none()): ConnectionSpans | undefined {
    const tracer = this.tracer
    if (tracer === undefined) return undefined
    const start = this.now()
    const connection = tracer.span("effect-websockets.connection", parent, Context.empty(), [], start, this.side)
    connection.attribute("websocket.side", this.side)
    const handshake = tracer.span(
      "effect-websockets.handshake",
      Option.some(connection),
      Context.empty(),
      [],
      start,
      "internal"
    )
    return { connection, handshake }
  }

  /**
   * The opening handshake succeeded. The connection's attributes are set when it ends: an open
   * connection keeps its span small (spans live as long as connections).
   */
  opened(ws: WebSocketImpl): void {
    this.metrics?.opened()
    const spans = ws.spans
    if (spans === undefined) return
    spans.handshake?.end(this.now(), Exit.void)
    spans.handshake = undefined
  }

  /** The connection closed before its opening handshake completed. */
  handshakeFailed(ws: WebSocketImpl, error: { readonly _tag: string }): void {
    this.metrics?.handshakeFailed(error._tag)
    if (ws.spans === undefined) return
    this.describe(ws.spans.connection, ws)
    this.failedEarly(ws.spans, Exit.fail(error))
  }

  /**
   * Ends both spans of a connection that did not open with `exit`: also the end of a client whose
   * TCP or TLS connection failed, before it had a WebSocket.
   */
  failedEarly(spans: ConnectionSpans | undefined, exit: Exit.Exit<unknown, unknown>): void {
    if (spans === undefined) return
    const end = this.now()
    spans.handshake?.end(end, exit)
    spans.handshake = undefined
    spans.connection.end(end, exit)
  }

  /** The TCP connection of an open connection closed. */
  closed(ws: WebSocketImpl): void {
    const protocol = ws.protocol
    const exc = protocol.closeExc
    this.metrics?.closed(exc.code)
    if (this.logger !== undefined && this.side === "server")
      this.logger.info(`connection closed: ${exc.message}`, protocol)
    const spans = ws.spans
    if (spans === undefined) return
    const span = spans.connection
    this.describe(span, ws)
    if (ws.subprotocol !== undefined) span.attribute("websocket.subprotocol", ws.subprotocol)
    const extensions = ws.responseHeaders.get("Sec-WebSocket-Extensions")
    if (extensions !== undefined) span.attribute("websocket.extensions", extensions)
    const rcvd = protocol.closeRcvd
    const sent = protocol.closeSent
    if (rcvd !== undefined) {
      span.attribute("websocket.close.received.code", rcvd.code)
      span.attribute("websocket.close.received.reason", rcvd.reason)
    }
    if (sent !== undefined) {
      span.attribute("websocket.close.sent.code", sent.code)
      span.attribute("websocket.close.sent.reason", sent.reason)
    }
    span.attribute("websocket.close.clean", rcvd !== undefined && sent !== undefined)
    span.attribute("websocket.messages.received", ws.messagesReceived)
    span.attribute("websocket.messages.sent", ws.messagesSent)
    span.attribute("websocket.bytes.received", ws.bytesReceived)
    span.attribute("websocket.bytes.sent", ws.bytesSent)
    // A protocol violation, a keepalive timeout or a lost connection fail the span; 1000/1001 do not.
    span.end(this.now(), exc._tag === "ConnectionClosedOK" ? Exit.void : Exit.fail(protocol.parserExc ?? exc))
  }

  /** What identifies a connection: its id, path and peer. */
  private describe(span: Tracer.Span, ws: WebSocketImpl): void {
    span.attribute("websocket.connection.id", ws.id)
    if (ws.path !== "") span.attribute("url.path", ws.path)
    setAddress(span, this.side === "server" ? "client" : "server", ws.remoteAddress)
  }
}

const setAddress = (span: Tracer.Span, prefix: "client" | "server", address: WebSocketImpl["remoteAddress"]): void => {
  if (address === undefined) return
  if (address._tag === "TcpAddress") {
    span.attribute(`${prefix}.address`, address.hostname)
    span.attribute(`${prefix}.port`, address.port)
  } else {
    span.attribute(`${prefix}.address`, address.path)
  }
}
