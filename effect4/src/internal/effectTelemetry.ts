/**
 * How connections reach the loggers, tracer and metrics of the fiber that starts them, in one Effect
 * major (Effect 4 here, Effect 3 in
 * `src/internal/effectTelemetry.ts`): the metrics recorder, the connection logger, and reading
 * them once from the fiber. internal/telemetry.ts, written once for both majors, builds on these.
 */
import type * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as LogLevel from "effect/LogLevel"
import * as Metric from "effect/Metric"
import * as Option from "effect/Option"
import * as References from "effect/References"
import * as Tracer from "effect/Tracer"
import type { Connection, ConnectionLogger } from "../Connection.js"
import { Opcode } from "../Frames.js"
import * as Metrics from "../Metrics.js"
import type { TelemetrySources } from "./telemetry.js"

/** Which end of connections a server or client is. */
export type Side = "client" | "server"
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

/** `connectionLogLevel`: a `LogLevel` (Effect 4's levels are their literals, such as `"Info"`). */
export type ConnectionLogLevel = LogLevel.LogLevel

/** Reads loggers, tracer, clock and metric attributes from the current fiber. */
export const readTelemetrySources = (
  side: Side,
  options: { readonly metrics?: boolean | undefined; readonly connectionLogLevel?: ConnectionLogLevel | undefined }
): Effect.Effect<TelemetrySources> =>
  Effect.gen(function* () {
    const context = yield* Effect.context<never>()
    const tracingEnabled = Context.get(context, References.TracerEnabled)
    return {
      metrics: options.metrics === false ? undefined : new MetricsRecorder(side, context),
      logger: EffectConnectionLogger.make(context, toLogLevel(options.connectionLogLevel)),
      tracer: tracingEnabled ? exportingTracer(yield* Effect.tracer) : undefined,
      clock: yield* Effect.clockWith(Effect.succeed),
      timing: Context.get(context, References.TracerTimingEnabled)
    }
  })

/** The clock's time in nanoseconds, synchronously. */
export const currentTimeNanos = (clock: Clock.Clock): bigint => clock.currentTimeNanosUnsafe()

/** Starts a span with no attributes or links. */
export const startSpan = (
  tracer: Tracer.Tracer,
  name: string,
  parent: Option.Option<Tracer.AnySpan>,
  startTime: bigint,
  kind: Tracer.SpanKind
): Tracer.Span =>
  tracer.span({
    name,
    parent,
    annotations: Context.empty(),
    links: [],
    startTime,
    kind,
    root: Option.isNone(parent),
    sampled: true
  })
