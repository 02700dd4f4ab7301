/**
 * What connections tell the outside: logs (through Effect's loggers), spans (Effect's Tracer) and
 * metrics (Effect's Metric). Everything is read once from the fiber that starts a server or a
 * client connection, so that connections, which run in plain callbacks, need no fiber to log, trace
 * or count, and pay nothing for what is off: no logger when the level is above Info, no frame
 * formatted above Debug, no span with tracing disabled, no metric with `metrics: false`.
 */
import type * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as LogLevel from "effect/LogLevel"
import * as Metric from "effect/Metric"
import * as Option from "effect/Option"
import * as References from "effect/References"
import type * as Tracer from "effect/Tracer"
import type { Connection, ConnectionLogger } from "../Connection.js"
import { Opcode } from "../Frames.js"
import * as Metrics from "../Metrics.js"
import type { WebSocketImpl } from "./webSocket.js"

type Side = "client" | "server"
/** The context a metric is updated in: the attributes of one series (and the fiber's metric registry). */
type Series = Context.Context<never>

/**
 * Updates the metrics of one side. The context of each series (its attributes) is made once:
 * Effect caches a metric's hook per attribute set, so an update is a lookup and an addition.
 */
export class MetricsRecorder {
  private readonly side: Series
  private readonly text: Series
  private readonly binary: Series
  private readonly pauses: Record<"maxQueue" | "writeLimit" | "send", Series>
  private readonly codes = new Map<string, Series>()
  private readonly errors = new Map<string, Series>()
  private readonly base: Metric.Metric.AttributeSet

  constructor(
    side: Side,
    private readonly context: Context.Context<never>
  ) {
    this.base = { ...Context.get(context, Metric.CurrentMetricAttributes), side }
    this.side = this.series({})
    this.text = this.series({ type: "text" })
    this.binary = this.series({ type: "binary" })
    const pause = (reason: string) => this.series({ reason })
    this.pauses = { maxQueue: pause("maxQueue"), writeLimit: pause("writeLimit"), send: pause("send") }
  }

  private series(attributes: Metric.Metric.AttributeSet): Series {
    return Context.add(this.context, Metric.CurrentMetricAttributes, { ...this.base, ...attributes })
  }

  received(opcode: number, bytes: number): void {
    const series = opcode === Opcode.Text ? this.text : this.binary
    Metrics.messagesReceived.updateUnsafe(1, series)
    Metrics.bytesReceived.updateUnsafe(bytes, series)
  }

  sent(opcode: number, bytes: number, fin: boolean): void {
    const series = opcode === Opcode.Text ? this.text : this.binary
    if (fin) Metrics.messagesSent.updateUnsafe(1, series)
    Metrics.bytesSent.updateUnsafe(bytes, series)
  }

  pingRoundTrip(millis: number): void {
    Metrics.pingRoundTrip.updateUnsafe(millis, this.side)
  }

  paused(reason: "maxQueue" | "writeLimit" | "send"): void {
    Metrics.backpressurePauses.updateUnsafe(1, this.pauses[reason])
  }

  opened(): void {
    Metrics.connectionsOpened.updateUnsafe(1, this.side)
    Metrics.connectionsOpen.modifyUnsafe(1, this.side)
  }

  closed(code: number): void {
    Metrics.connectionsOpen.modifyUnsafe(-1, this.side)
    Metrics.connectionsClosed.updateUnsafe(1, this.seriesFor(this.codes, "code", String(code)))
  }

  handshakeFailed(error: string): void {
    Metrics.handshakeFailures.updateUnsafe(1, this.seriesFor(this.errors, "error", error))
  }

  private seriesFor(cache: Map<string, Series>, key: string, value: string): Series {
    let series = cache.get(value)
    if (series === undefined) {
      series = this.series({ [key]: value })
      cache.set(value, series)
    }
    return series
  }
}

/**
 * A logger for the sans-I/O connection, over the loggers of the fiber that made it; `undefined`
 * when Info is below the minimum level, so that nothing is even formatted. Each line is logged by
 * a synchronous run of `Effect.log*` in that fiber's context (Effect 4's loggers take the fiber
 * they log from), annotated with the connection's id.
 */
export const effectLogger = (context: Context.Context<never>): ConnectionLogger | undefined => {
  const minimum = Context.get(context, References.MinimumLogLevel)
  if (LogLevel.isGreaterThan(minimum, "Info")) return undefined
  if (Context.get(context, References.CurrentLoggers).size === 0) return undefined
  const run = Effect.runSyncWith(context)
  const log = (logLevel: "Info" | "Debug", message: string, connection: Connection): void => {
    run(
      Effect.logWithLevel(logLevel)(message).pipe(
        Effect.annotateLogs({ connectionId: connection.id }),
        Effect.catchCause(() => Effect.void)
      )
    )
  }
  return {
    debugEnabled: LogLevel.isLessThanOrEqualTo(minimum, "Debug"),
    debug: (message, connection) => log("Debug", message, connection),
    info: (message, connection) => log("Info", message, connection)
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
      const context = yield* Effect.context<never>()
      const tracingEnabled = Context.get(context, References.TracerEnabled)
      const metrics = options.metrics === false ? undefined : new MetricsRecorder(side, context)
      return new Telemetry(
        side,
        metrics,
        effectLogger(context),
        tracingEnabled ? exportingTracer(yield* Effect.tracer) : undefined,
        yield* Effect.clockWith(Effect.succeed),
        Context.get(context, References.TracerTimingEnabled)
      )
    })
  }

  private now(): bigint {
    return this.timing ? this.clock.currentTimeNanosUnsafe() : BigInt(0)
  }

  /**
   * Starts the spans of a new connection, before it has a WebSocket (a client's starts with the TCP
   * connection); `parent` is the caller's span (clients; a server's connections are roots).
   */
  startSpans(parent: Option.Option<Tracer.AnySpan> = Option.none()): ConnectionSpans | undefined {
    const tracer = this.tracer
    if (tracer === undefined) return undefined
    const start = this.now()
    const connection = tracer.span({
      name: "effect-websockets.connection",
      parent,
      annotations: Context.empty(),
      links: [],
      startTime: start,
      kind: this.side,
      root: Option.isNone(parent),
      sampled: true
    })
    connection.attribute("websocket.side", this.side)
    const handshake = tracer.span({
      name: "effect-websockets.handshake",
      parent: Option.some(connection),
      annotations: Context.empty(),
      links: [],
      startTime: start,
      kind: "internal",
      root: false,
      sampled: true
    })
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
