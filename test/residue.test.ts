/**
 * No per-connection residue (issue 23): a server that has served connections keeps nothing of
 * them. Thousands of connections are opened and closed over loopback, and the heap after a full
 * collection must not grow with their number: not through the spans that outlive them (the
 * server's `effect-websockets.serve`, a caller's span), whose events Effect's tracer logger fills
 * with the log lines of the fiber they are in, nor through any other collection.
 */
import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import type * as Exit from "effect/Exit"
import * as Logger from "effect/Logger"
import * as LogLevel from "effect/LogLevel"
import * as Option from "effect/Option"
import * as Schedule from "effect/Schedule"
import * as Tracer from "effect/Tracer"
import * as Client from "../src/Client.js"
import type { ServeOptions, WebSocketServer } from "../src/Server.js"
import { activeResources, bounded, echo, realSleep, serveLocal, uriOf } from "./fixtures/loopback.js"
import { liveObjectBytes } from "./fixtures/memory.js"

/**
 * Connections opened and closed before the measured ones: the JIT compiles and optimizes the code
 * of a connection over the first thousand or so.
 */
const WARMUP = 1000
/** Connections measured: at the ~500 B each of two span events, 750 KiB of growth. */
const MEASURED = 1500
/**
 * What a connection may leave behind, on average (issue 23). The live objects of a test worker
 * vary by about ±10 KiB from one snapshot to the next: ±7 B per connection here.
 */
const BYTES_PER_CONNECTION = 16
/** Connections in flight at once. */
const CONCURRENCY = 16

/** Opens `count` connections to `server` and closes each once its handshake completed. */
const churn = (server: WebSocketServer, count: number) =>
  Effect.forEach(
    Array.from({ length: count }, (_, i) => i),
    () =>
      Effect.scoped(
        Effect.flatMap(Client.connect(uriOf(server), { compression: null, pingInterval: null }), (ws) => ws.close())
      ),
    { concurrency: CONCURRENCY, discard: true }
  )

/**
 * Every connection is over on both sides: none open, no TCP socket left but the listener's, and
 * the work that follows a socket's close (run on a later turn of the event loop) done.
 */
const drained = (server: WebSocketServer) =>
  Effect.suspend(() =>
    server.connections.size === 0 && (activeResources().TCPSocketWrap ?? 0) === 0 ? Effect.void : Effect.fail("open")
  ).pipe(Effect.retry(Schedule.spaced("2 millis")), bounded(10_000), Effect.zipRight(realSleep(20)))

/** Bytes of live objects per connection that `MEASURED` connections leave behind, once warmed up. */
const growthPerConnection = (server: WebSocketServer) =>
  Effect.gen(function* () {
    yield* churn(server, WARMUP)
    yield* drained(server)
    // The first snapshot of a process loads what takes snapshots: not part of what is measured.
    yield* Effect.sync(liveObjectBytes)
    const before = yield* Effect.sync(liveObjectBytes)
    yield* churn(server, MEASURED)
    yield* drained(server)
    return ((yield* Effect.sync(liveObjectBytes)) - before) / MEASURED
  })

/** A span that keeps what is recorded on it, as an exporter's spans do until they end. */
class ExportedSpan implements Tracer.Span {
  readonly _tag = "Span"
  readonly spanId = Math.random().toString(16).slice(2)
  readonly traceId: string
  readonly sampled = true
  status: Tracer.SpanStatus
  readonly attributes = new Map<string, unknown>()
  readonly links: Array<Tracer.SpanLink>
  readonly events: Array<[string, bigint, Record<string, unknown> | undefined]> = []

  constructor(
    private readonly exporter: { exported: number },
    readonly name: string,
    readonly parent: Option.Option<Tracer.AnySpan>,
    readonly context: Tracer.Span["context"],
    links: ReadonlyArray<Tracer.SpanLink>,
    startTime: bigint,
    readonly kind: Tracer.SpanKind
  ) {
    this.traceId = Option.isSome(parent) ? parent.value.traceId : this.spanId
    this.links = [...links]
    this.status = { _tag: "Started", startTime }
  }
  end(endTime: bigint, exit: Exit.Exit<unknown, unknown>): void {
    this.status = { _tag: "Ended", startTime: this.status.startTime, endTime, exit }
    this.exporter.exported++
  }
  attribute(key: string, value: unknown): void {
    this.attributes.set(key, value)
  }
  event(name: string, startTime: bigint, attributes?: Record<string, unknown>): void {
    this.events.push([name, startTime, attributes])
  }
  addLinks(links: ReadonlyArray<Tracer.SpanLink>): void {
    this.links.push(...links)
  }
}

/**
 * A tracer whose ended spans are handed to an exporter and forgotten; it counts them, and keeps the
 * spans that are not a connection's (the test's, the server's) and the last server connection span.
 */
const exportingTracer = () => {
  const exporter = {
    exported: 0,
    longLived: [] as Array<ExportedSpan>,
    lastConnection: undefined as ExportedSpan | undefined
  }
  const tracer = Tracer.make({
    span: (name, parent, context, links, startTime, kind) => {
      const span = new ExportedSpan(exporter, name, parent, context, links, startTime, kind)
      if (name === "effect-websockets.connection" && kind === "server") exporter.lastConnection = span
      else if (!name.startsWith("effect-websockets.")) exporter.longLived.push(span)
      else if (name === "effect-websockets.serve") exporter.longLived.push(span)
      return span
    },
    context: (f) => f()
  })
  return { exporter, tracer }
}

/** A logger that counts the lines it is given and keeps none (one that writes them somewhere). */
const countingLogger = () => {
  const counts = { lines: 0 }
  const logger = Logger.make(() => {
    counts.lines++
  })
  return { counts, layer: Logger.replace(Logger.defaultLogger, logger) }
}

const serveFor = (options: ServeOptions = {}) => serveLocal(echo, { pingInterval: null, ...options })

describe("no per-connection residue", () => {
  it.scopedLive(
    "default logger and tracer: the heap does not grow with connections served",
    () =>
      Effect.gen(function* () {
        const server = yield* serveFor()
        const perConnection = yield* growthPerConnection(server)
        expect(perConnection).toBeLessThanOrEqual(BYTES_PER_CONNECTION)
      }),
    90_000
  )

  it.scopedLive(
    "every line logged at Debug, with a tracer that exports: no long-lived span keeps them, nor the heap",
    () =>
      Effect.gen(function* () {
        const { counts, layer } = countingLogger()
        const { exporter, tracer } = exportingTracer()
        const perConnection = yield* Effect.gen(function* () {
          const server = yield* serveFor()
          return yield* growthPerConnection(server)
        }).pipe(
          Effect.withSpan("test"),
          Effect.withTracer(tracer),
          Effect.provide(layer),
          Logger.withMinimumLogLevel(LogLevel.Debug)
        )
        const connections = WARMUP + MEASURED
        // Logged: the server's open and closed lines and both sides' frames (close and EOF each way).
        expect(counts.lines).toBeGreaterThanOrEqual(8 * connections)
        // Exported: both sides' connection and handshake spans.
        expect(exporter.exported).toBeGreaterThanOrEqual(4 * connections)
        // The test's span and the server's: no event from any connection.
        expect(exporter.longLived.map((span) => span.name).sort()).toEqual(["effect-websockets.serve", "test"])
        for (const span of exporter.longLived) expect(span.events).toEqual([])
        // The connection lines are events of the connection's span, which ends with it.
        expect(exporter.lastConnection?.events.map(([name]) => name)).toEqual([
          "connection open",
          "connection closed: received 1000 (OK); then sent 1000 (OK)"
        ])
        expect(perConnection).toBeLessThanOrEqual(BYTES_PER_CONNECTION)
      }),
    90_000
  )
})
