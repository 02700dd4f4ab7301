/**
 * What connections tell the outside: logs (through Effect's loggers), spans (Effect's Tracer) and
 * metrics (Effect's Metric). Everything is read once from the fiber that starts a server or a
 * client connection, so that connections, which run in plain callbacks, need no fiber to log, trace
 * or count, and pay nothing for what is off: no logger when neither the connection lines (Debug by
 * default) nor the frames (Debug) would be shown, no span with tracing disabled or Effect's built-in
 * tracer, no metric with `metrics: false`. Nothing is added to a span that outlives its connection.
 *
 * Written once for both Effect majors; how each major's loggers, tracer and metrics are reached is
 * in internal/effectTelemetry.ts.
 */
import type * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Option from "effect/Option"
import type * as Tracer from "effect/Tracer"
import type { Connection, ConnectionLogger } from "../Connection.js"
import { closeCodeName } from "../Errors.js"
import {
  type ConnectionLogLevel,
  currentTimeNanos,
  type EffectConnectionLogger,
  type MetricsRecorder,
  readTelemetrySources,
  type Side,
  startSpan
} from "./effectTelemetry.js"
import type { WebSocketImpl } from "./webSocket.js"

export type { MetricsRecorder } from "./effectTelemetry.js"

/** What a server or a client reads once from the fiber that starts it. */
export interface TelemetrySources {
  /** `undefined` with `metrics: false`. */
  readonly metrics: MetricsRecorder | undefined
  /** `undefined` when nothing connections log would be shown. */
  readonly logger: EffectConnectionLogger | undefined
  /** `undefined` when tracing is disabled or the tracer exports nothing. */
  readonly tracer: Tracer.Tracer | undefined
  readonly clock: Clock.Clock
  /** Whether spans carry their start and end times. */
  readonly timing: boolean
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
      readonly connectionLogLevel?: ConnectionLogLevel | undefined
    }
  ): Effect.Effect<Telemetry> {
    return Effect.map(
      readTelemetrySources(side, options),
      (sources) => new Telemetry(side, sources.metrics, sources.logger, sources.tracer, sources.clock, sources.timing)
    )
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
    return this.timing ? currentTimeNanos(this.clock) : BigInt(0)
  }

  /**
   * Starts the spans of a new connection, before it has a WebSocket (a client's starts with the TCP
   * connection); `parent` is the caller's span (clients; a server's connections are roots).
   */
  startSpans(parent: Option.Option<Tracer.AnySpan> = Option.none()): ConnectionSpans | undefined {
    const tracer = this.tracer
    if (tracer === undefined) return undefined
    const start = this.now()
    const connection = startSpan(tracer, "effect-websockets.connection", parent, start, this.side)
    connection.attribute("websocket.side", this.side)
    const handshake = startSpan(tracer, "effect-websockets.handshake", Option.some(connection), start, "internal")
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
    // The code alone: the exception is made only for a span that fails with it.
    this.metrics?.closed(protocol.closeCode!)
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
    span.end(this.now(), intended ? Exit.void : Exit.fail(protocol.parserExc ?? protocol.closeExc))
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
