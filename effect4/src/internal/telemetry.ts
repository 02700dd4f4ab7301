/**
 * What connections tell the outside: logs (through Effect's loggers), spans (Effect's Tracer) and
 * metrics (Effect's Metric). Everything is read once from the fiber that starts a server or a
 * client connection, so that connections, which run in plain callbacks, need no fiber to log, trace
 * or count, and pay nothing for what is off: no logger when neither the connection lines (Debug by
 * default) nor the frames (Debug) would be shown, no span with tracing disabled or Effect's built-in
 * tracer, no metric with `metrics: false`. Nothing is added to a span that outlives its connection.
 */
import type * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as LogLevel from "effect/LogLevel"
import * as Metric from "effect/Metric"
import * as Option from "effect/Option"
import * as References from "effect/References"
import * as Tracer from "effect/Tracer"
import type { Connection, ConnectionLogger } from "../Connection.js"
import { closeCodeName } from "../Errors.js"
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
 * The level of a server's connection lines (`connection open`, `connection rejected (…)`,
 * `connection closed: …`) unless `connectionLogLevel` says otherwise: Debug, below Effect's default
 * minimum (Info), so that by default they are dropped before they are formatted, as Python's are
 * on its `websockets.server` logger, which prints nothing until the application configures logging.
 */
export const DEFAULT_CONNECTION_LOG_LEVEL: LogLevel.LogLevel = "Debug"

/** `connectionLogLevel` as a level (Effect 4's levels are their literals). */
export const toLogLevel = (level: LogLevel.LogLevel | undefined): LogLevel.LogLevel =>
  level ?? DEFAULT_CONNECTION_LOG_LEVEL

/**
 * A connection logger over the loggers of a fiber: each line is logged by a synchronous run of
 * `Effect.logWithLevel` in that fiber's context (Effect 4's loggers take the fiber they log from),
 * with its log annotations, plus `connectionId`.
 *
 * Never in the fiber's span: Effect's tracer logger turns each line into an event of the span its
 * context holds, and the fiber that starts a server is in the server's `effect-websockets.serve`
 * span, which lives as long as the server; two events per connection would grow it without bound
 * (issue 23). The connection lines go to the connection's own span when it has one ({@link within}),
 * which ends with it; frame lines go to no span (a span per frame of a long connection would grow
 * it with every message).
 */
export class EffectConnectionLogger implements ConnectionLogger {
  readonly debugEnabled: boolean
  /** Whether the connection lines (at `connectionLevel`) pass the minimum level. */
  readonly connectionLinesEnabled: boolean
  private readonly run: <A, E>(effect: Effect.Effect<A, E>) => A
  /** Runs the connection lines: in the connection's span when there is one. */
  private readonly runLine: <A, E>(effect: Effect.Effect<A, E>) => A

  private constructor(
    /** The fiber's context, without its span. */
    private readonly context: Context.Context<never>,
    minimum: LogLevel.LogLevel,
    private readonly connectionLevel: LogLevel.LogLevel,
    /** The span of the connection whose lines this logger writes, when it has one. */
    span: Tracer.AnySpan | undefined
  ) {
    this.debugEnabled = LogLevel.isLessThanOrEqualTo(minimum, "Debug")
    // `None` as the level of a line would pass any minimum: it means "off" here.
    this.connectionLinesEnabled = connectionLevel !== "None" && LogLevel.isLessThanOrEqualTo(minimum, connectionLevel)
    this.run = Effect.runSyncWith(context)
    this.runLine = span === undefined ? this.run : Effect.runSyncWith(Context.add(context, Tracer.ParentSpan, span))
  }

  /** `undefined` when nothing these connections log would be shown. */
  static make(context: Context.Context<never>, connectionLevel: LogLevel.LogLevel): EffectConnectionLogger | undefined {
    if (Context.get(context, References.CurrentLoggers).size === 0) return undefined
    const minimum = Context.get(context, References.MinimumLogLevel)
    const logger = new EffectConnectionLogger(
      Context.omit(Tracer.ParentSpan)(context),
      minimum,
      connectionLevel,
      undefined
    )
    return logger.debugEnabled || logger.connectionLinesEnabled ? logger : undefined
  }

  /** The same logger, with the connection lines in `span` (made only when those lines are logged). */
  within(span: Tracer.AnySpan): EffectConnectionLogger {
    if (!this.connectionLinesEnabled) return this
    const minimum = Context.get(this.context, References.MinimumLogLevel)
    return new EffectConnectionLogger(this.context, minimum, this.connectionLevel, span)
  }

  debug(message: string, connection: Connection): void {
    if (this.debugEnabled) this.log(this.run, "Debug", message, connection)
  }

  /** A connection line (Python logs them at INFO): at the server's `connectionLogLevel`. */
  info(message: string, connection: Connection): void {
    // Enabled, the level is not "None"; "All" (the lowest) logs as the lowest severity.
    if (this.connectionLinesEnabled)
      this.log(
        this.runLine,
        this.connectionLevel === "All" ? "Trace" : (this.connectionLevel as LogLevel.Severity),
        message,
        connection
      )
  }

  private log(
    run: <A, E>(effect: Effect.Effect<A, E>) => A,
    logLevel: LogLevel.Severity,
    message: string,
    connection: Connection
  ): void {
    run(
      Effect.logWithLevel(logLevel)(message).pipe(
        Effect.annotateLogs({ connectionId: connection.id }),
        Effect.catchCause(() => Effect.void)
      )
    )
  }
}

/**
 * How a connection ended, in Python's words (`ConnectionClosed.__str__`): what was received and
 * sent, and in which order, so that a connection we closed with 1009 reads `sent 1009 (message too
 * big); no close frame received`, not `received 1006`.
 */
export const describeClosure = (connection: Connection): string => {
  const rcvd = connection.closeRcvd
  const sent = connection.closeSent
  if (rcvd === undefined)
    return sent === undefined ? "no close frame received or sent" : `sent ${closeText(sent)}; no close frame received`
  if (sent === undefined) return `received ${closeText(rcvd)}; no close frame sent`
  return connection.closeRcvdThenSent === true
    ? `received ${closeText(rcvd)}; then sent ${closeText(sent)}`
    : `sent ${closeText(sent)}; then received ${closeText(rcvd)}`
}

/** `1009 (message too big)`, then the reason if there is one (Python's `Close.__str__`). */
const closeText = (close: { readonly code: number; readonly reason: string }): string => {
  const text = `${close.code} (${closeCodeName(close.code)})`
  return close.reason === "" ? text : `${text} ${close.reason}`
}

/**
 * Whether a clean closure (close frames sent and received) ended the connection as intended: 1000,
 * 1001 and 1005 (Python's `OK_CLOSE_CODES`) and the codes of applications (3000-4999, RFC 6455
 * §7.4.2), such as `close(4000, "bye")`. Protocol and server errors (1002-1015 but 1005) are not.
 */
const isIntendedCode = (code: number): boolean =>
  code === 1000 || code === 1001 || code === 1005 || (code >= 3000 && code <= 4999)

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
    /** `undefined` when nothing connections log would be shown. */
    readonly logger: EffectConnectionLogger | undefined,
    /** `undefined` when tracing is disabled. */
    private readonly tracer: Tracer.Tracer | undefined,
    private readonly clock: Clock.Clock,
    private readonly timing: boolean
  ) {}

  /** Reads loggers, tracer, clock and metric labels from the current fiber. */
  static make(
    side: Side,
    options: {
      readonly metrics?: boolean | undefined
      readonly connectionLogLevel?: LogLevel.LogLevel | undefined
    }
  ): Effect.Effect<Telemetry> {
    return Effect.gen(function* () {
      const context = yield* Effect.context<never>()
      const tracingEnabled = Context.get(context, References.TracerEnabled)
      const metrics = options.metrics === false ? undefined : new MetricsRecorder(side, context)
      return new Telemetry(
        side,
        metrics,
        EffectConnectionLogger.make(context, toLogLevel(options.connectionLogLevel)),
        tracingEnabled ? exportingTracer(yield* Effect.tracer) : undefined,
        yield* Effect.clockWith(Effect.succeed),
        Context.get(context, References.TracerTimingEnabled)
      )
    })
  }

  /**
   * The logger of a connection with these spans: the shared one, or one that writes the connection
   * lines into the connection's span, when there are both such lines and a span.
   */
  loggerFor(spans: ConnectionSpans | undefined): ConnectionLogger | undefined {
    const logger = this.logger
    return logger === undefined || spans === undefined ? logger : logger.within(spans.connection)
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
    if (this.side === "server" && this.logger?.connectionLinesEnabled === true)
      protocol.logger?.info(`connection closed: ${describeClosure(protocol)}`, protocol)
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
    const clean = rcvd !== undefined && sent !== undefined
    span.attribute("websocket.close.clean", clean)
    span.attribute("websocket.messages.received", ws.messagesReceived)
    span.attribute("websocket.messages.sent", ws.messagesSent)
    span.attribute("websocket.bytes.received", ws.bytesReceived)
    span.attribute("websocket.bytes.sent", ws.bytesSent)
    // A protocol violation, a keepalive timeout or a lost connection fail the span; a clean close
    // with 1000/1001 or an application's code (`close(4000, "bye")`) does not.
    const intended = clean && protocol.parserExc === undefined && isIntendedCode(rcvd.code) && isIntendedCode(sent.code)
    span.end(this.now(), intended ? Exit.void : Exit.fail(protocol.parserExc ?? exc))
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
