/**
 * How connections reach the loggers, tracer and metrics of the fiber that starts them, in one Effect
 * major (Effect 3 here, Effect 4 in
 * `effect4/src/internal/effectTelemetry.ts`): the metrics recorder, the connection logger, and reading
 * them once from the fiber. internal/telemetry.ts, written once for both majors, builds on these.
 */
import * as Cause from "effect/Cause"
import type * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as FiberId from "effect/FiberId"
import * as FiberRef from "effect/FiberRef"
import * as FiberRefs from "effect/FiberRefs"
import * as HashMap from "effect/HashMap"
import * as HashSet from "effect/HashSet"
import type * as Logger from "effect/Logger"
import * as LogLevel from "effect/LogLevel"
import * as MetricLabel from "effect/MetricLabel"
import type * as Option from "effect/Option"
import * as Tracer from "effect/Tracer"
import type { Connection, ConnectionLogger } from "../Connection.js"
import { Opcode } from "../Frames.js"
import * as Metrics from "../Metrics.js"
import type { TelemetrySources } from "./telemetry.js"

/** Which end of connections a server or client is. */
export type Side = "client" | "server"
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

/** `connectionLogLevel`: a `LogLevel` or its literal (`"Info"`). */
export type ConnectionLogLevel = LogLevel.LogLevel | LogLevel.Literal

/** Reads loggers, tracer, clock and metric labels from the current fiber. */
export const readTelemetrySources = (
  side: Side,
  options: { readonly metrics?: boolean | undefined; readonly connectionLogLevel?: ConnectionLogLevel | undefined }
): Effect.Effect<TelemetrySources> =>
  Effect.gen(function* () {
    const fiberRefs = yield* Effect.getFiberRefs
    const tracingEnabled = FiberRefs.getOrDefault(fiberRefs, FiberRef.currentTracerEnabled)
    return {
      metrics:
        options.metrics === false
          ? undefined
          : recorderFor(side, FiberRefs.getOrDefault(fiberRefs, FiberRef.currentMetricLabels)),
      logger: EffectConnectionLogger.make(fiberRefs, toLogLevel(options.connectionLogLevel)),
      tracer: tracingEnabled ? exportingTracer(yield* Effect.tracer) : undefined,
      clock: yield* Effect.clock,
      timing: FiberRefs.getOrDefault(fiberRefs, FiberRef.currentTracerTimingEnabled)
    }
  })

/** The clock's time in nanoseconds, synchronously. */
export const currentTimeNanos = (clock: Clock.Clock): bigint => clock.unsafeCurrentTimeNanos()

/** Starts a span with no attributes or links. */
export const startSpan = (
  tracer: Tracer.Tracer,
  name: string,
  parent: Option.Option<Tracer.AnySpan>,
  startTime: bigint,
  kind: Tracer.SpanKind
): Tracer.Span => tracer.span(name, parent, Context.empty(), [], startTime, kind)
