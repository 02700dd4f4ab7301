/**
 * No per-connection residue (issue 23): a server that has served connections keeps nothing of
 * them. Thousands of connections are opened and closed over loopback, and the heap after a full
 * collection must not grow with their number: not through the spans that outlive them (the
 * server's `effect-websockets.serve`, a caller's span), whose events Effect's tracer logger fills
 * with the log lines of the fiber they are in, nor through any other collection.
 */
import * as net from "node:net"
import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import type * as Exit from "effect/Exit"
import * as Logger from "effect/Logger"
import * as LogLevel from "effect/LogLevel"
import * as Option from "effect/Option"
import * as Schedule from "effect/Schedule"
import * as Tracer from "effect/Tracer"
import * as Client from "../src/Client.js"
import { Opcode } from "../src/Frames.js"
import type { ServeOptions, WebSocketServer } from "../src/Server.js"
import {
  activeResources,
  bounded,
  closePayload,
  echo,
  frameBytes,
  handshakeRequest,
  LOCALHOST,
  portOf,
  realSleep,
  serveLocal,
  uriOf
} from "./fixtures/loopback.js"
import { liveObjectBytes } from "./fixtures/memory.js"

/**
 * Connections opened and closed before the measured ones, so that pools and caches are full. (What
 * the JIT compiles meanwhile is code, which `liveObjectBytes` leaves out.)
 */
const WARMUP = 500
/** Connections measured in each of two rounds: at the ~500 B each of two span events, 600 KiB. */
const MEASURED = 1200
/**
 * What a connection may leave behind, on average (issue 23). The live objects of a test worker
 * vary by about ±10 KiB from one snapshot to the next: ±8 B per connection here.
 */
const BYTES_PER_CONNECTION = 16
/** Connections from the library's client, whose spans and lines are checked but not its heap. */
const CLIENT_CONNECTIONS = 50
/** Connections in flight at once. */
const CONCURRENCY = 16

/** A masked close frame with 1000, as a client sends it. */
const CLOSE_FRAME = frameBytes(Opcode.Close, closePayload(1000), true)

/**
 * One connection from a raw client, which costs the test's process little beside the server: the
 * opening handshake, a close frame with 1000, then the server's close frame and TCP close.
 */
const rawCycle = (port: number): Promise<void> =>
  new Promise((resolve, reject) => {
    const socket = net.connect({ host: LOCALHOST, port })
    let open = false
    socket.on("connect", () => socket.write(handshakeRequest()))
    socket.on("data", (chunk: Buffer) => {
      if (open || !chunk.includes("\r\n\r\n")) return
      open = true
      socket.write(CLOSE_FRAME)
    })
    socket.on("end", () => socket.end())
    socket.on("error", reject)
    socket.on("close", () => (open ? resolve() : reject(new Error("closed before the handshake completed"))))
  })

/** Opens `count` connections to `server` and closes each once its handshake completed. */
const churn = (server: WebSocketServer, count: number, concurrency = CONCURRENCY) =>
  Effect.forEach(
    Array.from({ length: count }, (_, i) => i),
    () => Effect.promise(() => rawCycle(portOf(server))),
    { concurrency, discard: true }
  )

/** The same with the library's client: both sides of each connection in this process. */
const churnWithClient = (server: WebSocketServer, count: number) =>
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

/**
 * Bytes of live objects per connection that `MEASURED` connections leave behind, once warmed up:
 * the smaller figure of two rounds. What connections leave behind is left by every round; what
 * grows once (an array doubling its capacity, something made on first use) shows in one only.
 */
const growthPerConnection = (server: WebSocketServer) =>
  Effect.gen(function* () {
    // Four times as many in flight as measured: the arrays and tables whose capacity follows the
    // number of connections at once (queues, sets) reach their high-water mark here, not later.
    yield* churn(server, WARMUP, 4 * CONCURRENCY)
    yield* drained(server)
    // The first snapshot of a process loads what takes snapshots: not part of what is measured.
    let before = yield* Effect.sync(liveObjectBytes)
    before = yield* Effect.sync(liveObjectBytes)
    const rounds: Array<number> = []
    for (let round = 0; round < 2; round++) {
      yield* churn(server, MEASURED)
      yield* drained(server)
      const after = yield* Effect.sync(liveObjectBytes)
      rounds.push((after - before) / MEASURED)
      before = after
    }
    return Math.min(...rounds)
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
    180_000
  )

  it.scopedLive(
    "every line logged at Debug, with a tracer that exports: no long-lived span keeps them, nor the heap",
    () =>
      Effect.gen(function* () {
        const { counts, layer } = countingLogger()
        const { exporter, tracer } = exportingTracer()
        const perConnection = yield* Effect.gen(function* () {
          const server = yield* serveFor()
          // A few connections from the library's client too: its frame lines, logged in this
          // fiber, must not become events of the test's span.
          yield* churnWithClient(server, CLIENT_CONNECTIONS)
          return yield* growthPerConnection(server)
        }).pipe(
          Effect.withSpan("test"),
          Effect.withTracer(tracer),
          Effect.provide(layer),
          Logger.withMinimumLogLevel(LogLevel.Debug)
        )
        const connections = WARMUP + 2 * MEASURED + CLIENT_CONNECTIONS
        // Logged: the server's open and closed lines and its frames (close and EOF each way).
        expect(counts.lines).toBeGreaterThanOrEqual(6 * connections)
        // Exported: the connection and handshake spans of each, and of each client.
        expect(exporter.exported).toBeGreaterThanOrEqual(2 * connections + 2 * CLIENT_CONNECTIONS)
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
    180_000
  )
})
