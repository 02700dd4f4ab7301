/**
 * An open WebSocket connection, the same type on both sides (Python's `WebSocketCommonProtocol`,
 * `WebSocketServerProtocol` and `WebSocketClientProtocol`), and the options every connection takes.
 *
 * @since 0.1.0
 */
import type * as Brand from "effect/Brand"
import type * as Duration from "effect/Duration"
import type * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import type * as Stream from "effect/Stream"
import type { State } from "./Connection.js"
import type {
  ConcurrencyError,
  ConnectionClosed,
  ConnectionClosedError,
  InvalidArgument,
  InvalidState,
  ProtocolError
} from "./Errors.js"
import type { Headers } from "./Headers.js"
import { type DurationInput, decodeDuration, refinedString, Service } from "./internal/effectCompat.js"

/**
 * A message: `string` for a Text message, `Uint8Array` for a Binary message.
 * @since 0.1.0
 * @category models
 */
export type Data = string | Uint8Array

/**
 * A value of the Origin header (RFC 6454 §7): `scheme://host[:port]`, or `null` for an opaque
 * origin. A branded string (the seeds' `typing.Origin`): inputs take plain strings too, the
 * constructor `Origin(value)` checks one (throwing on a bad value; `Origin.either` in Effect 3 and
 * `Origin.result` in Effect 4 do not).
 * @since 0.4.0
 * @category models
 */
export type Origin = string & Brand.Brand<"effect-websockets/Origin">

const ORIGIN = /^(?:null|[A-Za-z][A-Za-z0-9+.-]*:\/\/[^\s/?#]+)$/

/**
 * @since 0.4.0
 * @category constructors
 */
export const Origin = refinedString<Origin>(
  (value) => ORIGIN.test(value),
  (value) => `invalid origin: ${JSON.stringify(value)}`
)

/**
 * A subprotocol name (RFC 6455 §4.1: a token, RFC 9110 §5.6.2). A branded string (the seeds'
 * `typing.Subprotocol`): `ws.subprotocol` is one; inputs take plain strings too, and the
 * constructor `Subprotocol(name)` checks one.
 * @since 0.4.0
 * @category models
 */
export type Subprotocol = string & Brand.Brand<"effect-websockets/Subprotocol">

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/

/**
 * @since 0.4.0
 * @category constructors
 */
export const Subprotocol = refinedString<Subprotocol>(
  (value) => TOKEN.test(value),
  (value) => `invalid subprotocol: ${JSON.stringify(value)}`
)

/**
 * What `send` accepts: one message, or the fragments of one message as an iterable or a `Stream`.
 * An `ArrayBuffer` or any view of one (`DataView`, typed arrays) is sent as Binary, its bytes as
 * they are in memory.
 * @since 0.1.0
 * @category models
 */
export type Message<E = never, R = never> =
  | Data
  | ArrayBuffer
  | ArrayBufferView
  | Iterable<Data>
  | Stream.Stream<Data, E, R>

/**
 * Address of one end of a connection: TCP host and port, or a unix socket path.
 * @since 0.1.0
 * @category models
 */
export type Address =
  | { readonly _tag: "TcpAddress"; readonly hostname: string; readonly port: number }
  | { readonly _tag: "UnixAddress"; readonly path: string }

/**
 * An open WebSocket connection. Every operation is an `Effect` whose failures are typed.
 * @since 0.1.0
 * @category models
 */
export interface WebSocket {
  /** Unique identifier of the connection, useful in logs. */
  readonly id: string
  /**
   * The log annotations of this connection, `{ connectionId: id }`: what Python's connection-scoped
   * `logger` adds to each line. A server's handler needs none: its fiber already carries them, as
   * the library's own lines do. Elsewhere (a client's code, a fiber the handler forks into another
   * scope), add them with `Effect.annotateLogs(ws.logAnnotations)`.
   *
   * @example
   * ```ts
   * const ws = yield* Client.connect("ws://localhost:8765")
   * yield* Effect.log("connected").pipe(Effect.annotateLogs(ws.logAnnotations))
   * // level=INFO message=connected connectionId=…
   * ```
   */
  readonly logAnnotations: { readonly connectionId: string }
  /** Which side of the connection this is. */
  readonly side: "client" | "server"
  /**
   * The next message: `string` for Text, `Uint8Array` for Binary. Interrupting it loses no message:
   * the next `recv` returns it. Once the connection is closed it fails with ConnectionClosedOK after
   * a normal closure (1000/1001 both ways) and ConnectionClosedError otherwise. A `recv` called while
   * another fiber's `recv` is waiting fails at once with ConcurrencyError (the seeds' RuntimeError).
   */
  readonly recv: Effect.Effect<Data, ConnectionClosed | ConcurrencyError>
  /**
   * Every incoming message. Ends normally when the connection closes with 1000 or 1001 and fails
   * with ConnectionClosedError otherwise (Python's `async for message in websocket`).
   */
  readonly messages: Stream.Stream<Data, ConnectionClosedError>
  /**
   * Runs `f` on every incoming message, one after the other, until the connection closes: the same
   * as `Stream.runForEach(ws.messages, f)` (ends normally after 1000/1001 both ways, fails with
   * ConnectionClosedError otherwise, or with the first failure of `f`), at a fraction of its cost
   * per message. The fastest way to serve request/response traffic.
   */
  forEachMessage<E, R>(
    f: (message: Data) => Effect.Effect<unknown, E, R>
  ): Effect.Effect<void, ConnectionClosedError | E, R>
  /**
   * Sends a message: a string as Text, bytes as Binary, an iterable or a `Stream` of fragments as
   * one fragmented message (all fragments of one type, else InvalidArgument and the connection is
   * closed with 1011). Waits while the write buffer is above `writeLimit`.
   *
   * A value that is none of these (a `Map`, a number, `null`, an iterable whose first item is no
   * string or Uint8Array) fails with InvalidArgument, Python's TypeError, before anything is sent:
   * the connection stays open and usable.
   */
  send<E = never, R = never>(message: Message<E, R>): Effect.Effect<void, ConnectionClosed | InvalidArgument | E, R>
  /**
   * Performs the closing handshake with `code` (default 1000) and `reason`, and waits until the TCP
   * connection is closed, at most about `closeTimeout` before aborting it. Idempotent. A code that
   * may not be sent (999, 1005, 1006...) or a reason over 123 bytes fails with ProtocolError and
   * sends nothing (Python raises it too).
   */
  close(): Effect.Effect<void>
  close(code: number, reason?: string): Effect.Effect<void, ProtocolError>
  /** Completes when the connection is closed, whatever the cause. */
  readonly waitClosed: Effect.Effect<void>
  /**
   * Sends a Ping (4 random bytes by default) and returns an Effect that completes, with the latency
   * in milliseconds, when the matching Pong arrives. Fails with InvalidState if a ping with the same
   * payload is already waiting for its pong.
   */
  ping(data?: Data): Effect.Effect<Effect.Effect<number, ConnectionClosed>, ConnectionClosed | InvalidState>
  /** Sends an unsolicited Pong, a unidirectional heartbeat. */
  pong(data?: Data): Effect.Effect<void, ConnectionClosed>
  /** Local address, `undefined` when unknown. */
  readonly localAddress: Address | undefined
  /** Remote address, `undefined` when unknown. */
  readonly remoteAddress: Address | undefined
  /** Path (request target) of the opening handshake request. */
  readonly path: string
  /** Headers of the opening handshake request. */
  readonly requestHeaders: Headers
  /** Headers of the opening handshake response. */
  readonly responseHeaders: Headers
  /**
   * The username that `Auth.basicAuth` authenticated for this connection, `undefined` without
   * it (the seeds' `BasicAuthWebSocketServerProtocol.username`).
   */
  readonly username: string | undefined
  /** The realm of the `Auth.basicAuth` that authenticated this connection, `undefined` without it. */
  readonly realm: string | undefined
  /** Negotiated subprotocol, if any. */
  readonly subprotocol: Subprotocol | undefined
  /** Protocol state. */
  readonly state: State
  /**
   * `true` while the connection is OPEN (the seeds' `open` attribute). Both `open` and `closed` are
   * `false` while the closing handshake is in progress.
   */
  readonly open: boolean
  /** `true` once the connection is CLOSED (the seeds' `closed` attribute). */
  readonly closed: boolean
  /**
   * Round trip of the last ping answered by a pong, in seconds, as in Python `websockets`; `0`
   * before any. Updated by keepalive pings and by the application's `ping`.
   */
  readonly latency: number
  /** Close code once the connection is closed (1005 without code, 1006 without close frame). */
  readonly closeCode: number | undefined
  /** Close reason once the connection is closed. */
  readonly closeReason: string | undefined
}

/**
 * A duration that can be disabled: `null` or `Option.none()` (Python's `None`) turns the feature
 * off, `undefined` keeps the default.
 * @since 0.1.0
 * @category models
 */
export type OptionalDuration = DurationInput | Option.Option<DurationInput> | null | undefined

/**
 * Resolves an {@link OptionalDuration}: `null` when disabled, else the duration or the default.
 * @since 0.1.0
 * @category utils
 */
export const resolveOptionalDuration = (value: OptionalDuration, fallback: DurationInput): Duration.Duration | null => {
  if (value === null) return null
  if (value === undefined) return decodeDuration(fallback)
  if (Option.isOption(value)) return Option.match(value, { onNone: () => null, onSome: decodeDuration })
  return decodeDuration(value)
}

/**
 * Options of every connection, with the defaults of Python `websockets`.
 * @since 0.1.0
 * @category models
 */
export interface WebSocketOptions {
  /** Interval between keepalive pings; `null` disables keepalive. Default 20 seconds. */
  readonly pingInterval?: OptionalDuration
  /** Time to wait for a keepalive pong before failing with 1011; `null` waits forever. Default 20 seconds. */
  readonly pingTimeout?: OptionalDuration
  /** Time allowed for the closing handshake and the TCP close before aborting. Default 10 seconds. */
  readonly closeTimeout?: DurationInput | undefined
  /**
   * Alias of `closeTimeout`, which wins when both are set (the seeds' `timeout`).
   * @deprecated Use `closeTimeout`.
   */
  readonly timeout?: DurationInput | undefined
  /** Maximum size of incoming messages in bytes; `null` disables the limit. Default 1 MiB. */
  readonly maxSize?: number | null | undefined
  /** Maximum number of received messages waiting to be read before reading pauses; `null`: no limit. Default 32. */
  readonly maxQueue?: number | null | undefined
  /** High-water mark of the socket's incoming byte buffer while reading is paused. Default 64 KiB. */
  readonly readLimit?: number | undefined
  /** High-water mark of the outgoing buffer: `send` waits while more bytes than this are buffered. Default 64 KiB. */
  readonly writeLimit?: number | undefined
  /**
   * Whether connections update the metrics of the `Metrics` module. Default `true`. (Spans follow
   * Effect's tracing, off with `Effect.withTracerEnabled(false)`; logs follow the log level.)
   */
  readonly metrics?: boolean | undefined
}

/**
 * The options of every connection that `Server.config` and `Client.config` read from Effect
 * `Config`, each one present only when its key is set.
 * @since 0.3.0
 * @category models
 */
export interface ConnectionConfig {
  /** `OPEN_TIMEOUT`: a duration, or `null` (`none`) for no timeout. */
  readonly openTimeout?: Duration.Duration | null
  /** `PING_INTERVAL`: a duration, or `null` (`none`) for no keepalive pings. */
  readonly pingInterval?: Duration.Duration | null
  /** `PING_TIMEOUT`: a duration, or `null` (`none`) to wait for keepalive pongs forever. */
  readonly pingTimeout?: Duration.Duration | null
  /** `CLOSE_TIMEOUT`: a duration. */
  readonly closeTimeout?: Duration.Duration
  /** `MAX_SIZE`: bytes, or `null` (`none`) for no limit. */
  readonly maxSize?: number | null
  /** `MAX_QUEUE`: messages, or `null` (`none`) for no limit. */
  readonly maxQueue?: number | null
  /** `READ_LIMIT`: bytes. */
  readonly readLimit?: number
  /** `WRITE_LIMIT`: bytes. */
  readonly writeLimit?: number
  /** `MAX_HEADER_SIZE`: bytes. */
  readonly maxHeaderSize?: number
  /** `COMPRESSION`: `"deflate"`, or `null` (`none`). */
  readonly compression?: "deflate" | null
  /** `METRICS`: `false` (or `off`, `0`) turns metrics off. */
  readonly metrics?: boolean
}

/**
 * Default values of {@link WebSocketOptions}, as documented by Python `websockets`.
 * @since 0.1.0
 * @category constants
 */
export const defaults = {
  pingInterval: "20 seconds",
  pingTimeout: "20 seconds",
  closeTimeout: "10 seconds",
  openTimeout: "10 seconds",
  maxSize: 1_048_576,
  maxQueue: 32,
  readLimit: 65_536,
  writeLimit: 65_536
} as const

/**
 * The connection a handler is serving, as a service (useful to reach it deep in a call tree).
 * @since 0.1.0
 * @category tags
 */
export class CurrentWebSocket extends Service<CurrentWebSocket, WebSocket>()("effect-websockets/CurrentWebSocket") {}
