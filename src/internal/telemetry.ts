/**
 * What connections tell the outside: logs (through Effect's loggers), spans (Effect's Tracer) and
 * metrics (Effect's Metric). Everything is read once from the fiber that starts a server or a
 * client connection, so that connections, which run in plain callbacks, need no fiber to log, trace
 * or count, and pay nothing for what is off: no logger when neither the connection lines (Debug by
 * default) nor the frames (Debug) would be shown, no span with tracing disabled or Effect's built-in
 * tracer, no metric with `metrics: false`. Nothing is added to a span that outlives its connection.
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
import type * as Logger from "effect/Logger"
import * as LogLevel from "effect/LogLevel"
import * as MetricLabel from "effect/MetricLabel"
import * as Option from "effect/Option"
import * as Tracer from "effect/Tracer"
import type { Connection, ConnectionLogger } from "../Connection.js"
import { closeCodeName } from "../Errors.js"
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
 * The level of a server's connection lines (`connection open`, `connection rejected (…)`,
 * `connection closed: …`) unless `connectionLogLevel` says otherwise: Debug, below Effect's default
 * minimum (Info), so that by default they are dropped before they are formatted, as Python's are
 * on its `websockets.server` logger, which prints nothing until the application configures logging.
 */
export const DEFAULT_CONNECTION_LOG_LEVEL: LogLevel.LogLevel = LogLevel.Debug

/** `connectionLogLevel` as a level (a literal such as `"Info"`, or a `LogLevel`). */
export const toLogLevel = (level: LogLevel.LogLevel | LogLevel.Literal | undefined): LogLevel.LogLevel =>
  level === undefined ? DEFAULT_CONNECTION_LOG_LEVEL : typeof level === "string" ? LogLevel.fromLiteral(level) : level

/**
 * A connection logger over the loggers of a fiber: lines go to every Effect logger it had, with its
 * log annotations and log spans, plus `connectionId`.
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

  private constructor(
    private readonly loggers: HashSet.HashSet<Logger.Logger<unknown, unknown>>,
    /** The fiber's references, in a context without its span. */
    private readonly fiberRefs: FiberRefs.FiberRefs,
    private readonly context: Context.Context<never>,
    minimum: LogLevel.LogLevel,
    private readonly connectionLevel: LogLevel.LogLevel,
    /** The span of the connection whose lines this logger writes, when it has one. */
    private readonly span: Tracer.AnySpan | undefined
  ) {
    this.debugEnabled = LogLevel.lessThanEqual(minimum, LogLevel.Debug)
    // `None` as the level of a line would pass any minimum: it means "off" here.
    this.connectionLinesEnabled = connectionLevel !== LogLevel.None && LogLevel.lessThanEqual(minimum, connectionLevel)
  }

  /** `undefined` when nothing these connections log would be shown. */
  static make(fiberRefs: FiberRefs.FiberRefs, connectionLevel: LogLevel.LogLevel): EffectConnectionLogger | undefined {
    const minimum = FiberRefs.getOrDefault(fiberRefs, FiberRef.currentMinimumLogLevel)
    const loggers = FiberRefs.getOrDefault(fiberRefs, FiberRef.currentLoggers)
    if (HashSet.size(loggers) === 0) return undefined
    const context = Context.omit(Tracer.ParentSpan)(FiberRefs.getOrDefault(fiberRefs, FiberRef.currentContext))
    const withoutSpan = FiberRefs.updateAs(fiberRefs, {
      fiberId: FiberId.none,
      fiberRef: FiberRef.currentContext,
      value: context
    })
    const logger = new EffectConnectionLogger(loggers, withoutSpan, context, minimum, connectionLevel, undefined)
    return logger.debugEnabled || logger.connectionLinesEnabled ? logger : undefined
  }

  /** The same logger, with the connection lines in `span` (made only when those lines are logged). */
  within(span: Tracer.AnySpan): EffectConnectionLogger {
    if (!this.connectionLinesEnabled) return this
    const minimum = FiberRefs.getOrDefault(this.fiberRefs, FiberRef.currentMinimumLogLevel)
    return new EffectConnectionLogger(this.loggers, this.fiberRefs, this.context, minimum, this.connectionLevel, span)
  }

  debug(message: string, connection: Connection): void {
    if (this.debugEnabled) this.log(LogLevel.Debug, message, connection, this.fiberRefs)
  }

  /** A connection line (Python logs them at INFO): at the server's `connectionLogLevel`. */
  info(message: string, connection: Connection): void {
    if (!this.connectionLinesEnabled) return
    const span = this.span
    const fiberRefs =
      span === undefined
        ? this.fiberRefs
        : FiberRefs.updateAs(this.fiberRefs, {
            fiberId: FiberId.none,
            fiberRef: FiberRef.currentContext,
            value: Context.add(this.context, Tracer.ParentSpan, span)
          })
    this.log(this.connectionLevel, message, connection, fiberRefs)
  }

  private log(logLevel: LogLevel.LogLevel, message: string, connection: Connection, context: FiberRefs.FiberRefs) {
    const entry = {
      fiberId: FiberId.none,
      logLevel,
      message,
      cause: Cause.empty,
      context,
      spans: FiberRefs.getOrDefault(context, FiberRef.currentLogSpan),
      annotations: HashMap.set(
        FiberRefs.getOrDefault(context, FiberRef.currentLogAnnotations),
        "connectionId",
        connection.id as unknown
      ),
      date: new Date()
    }
    for (const logger of this.loggers) logger.log(entry)
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
      readonly connectionLogLevel?: LogLevel.LogLevel | LogLevel.Literal | undefined
    }
  ): Effect.Effect<Telemetry> {
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
        EffectConnectionLogger.make(fiberRefs, toLogLevel(options.connectionLogLevel)),
        tracingEnabled ? exportingTracer(yield* Effect.tracer) : undefined,
        yield* Effect.clock,
        FiberRefs.getOrDefault(fiberRefs, FiberRef.currentTracerTimingEnabled)
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
