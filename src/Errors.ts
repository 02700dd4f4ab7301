/**
 * The error hierarchy of effect-websockets, mirroring Python `websockets.exceptions`:
 *
 * ```text
 * WebSocketException
 * ├── ConnectionClosed
 * │   ├── ConnectionClosedError
 * │   └── ConnectionClosedOK
 * ├── InvalidHandshake
 * │   ├── SecurityError
 * │   ├── InvalidMessage
 * │   ├── InvalidHeader
 * │   │   ├── InvalidHeaderFormat
 * │   │   ├── InvalidHeaderValue
 * │   │   ├── InvalidOrigin
 * │   │   └── InvalidUpgrade
 * │   ├── InvalidStatusCode
 * │   ├── NegotiationError
 * │   │   ├── DuplicateParameter
 * │   │   ├── InvalidParameterName
 * │   │   └── InvalidParameterValue
 * │   ├── AbortHandshake
 * │   ├── RedirectHandshake
 * │   └── OpenTimeout            (Python raises the builtin TimeoutError)
 * ├── InvalidState
 * ├── ConcurrencyError           (Python ≥ 13; the seeds raise RuntimeError)
 * ├── InvalidURI
 * ├── PayloadTooBig
 * ├── ProtocolError              (alias: WebSocketProtocolError)
 * └── BackplaneError             (topics across processes; not in Python)
 *     ├── BackplaneUnavailable
 *     └── BackplaneFailure
 * MultipleValuesError, KeyError  (lookup errors of `Headers`, outside the hierarchy)
 * ConnectFailed, ListenFailed    (the socket could not be opened; Python raises OSError)
 * MessageDecodeError,            (a message does not match the application's Schema, see
 * MessageEncodeError              TypedMessages; not in Python, outside the hierarchy)
 * ```
 *
 * Each class is a yieldable `Data.TaggedError` whose `_tag` is exactly the Python class name.
 * Tagged classes cannot subclass each other (their `_tag` types would conflict), so a Python class
 * that has subclasses becomes a leaf (raised directly) plus a *family brand*: a symbol carried by
 * the leaf and by every descendant. `isInvalidHeader(e)` then tests the whole family, and
 * `Effect.catchIf(isInvalidHeader, ...)` removes exactly that family from the error channel.
 *
 * @since 0.1.0
 */
import * as Data from "effect/Data"
import * as Predicate from "effect/Predicate"
import type { SchemaError } from "./internal/schemaError.js"

// ---------------------------------------------------------------------------
// Family brands
// ---------------------------------------------------------------------------

/**
 * Brand carried by every error of this library.
 * @since 0.1.0
 * @category type ids
 */
export const WebSocketExceptionTypeId: unique symbol = Symbol.for("effect-websockets/WebSocketException")
/** @since 0.1.0 @category type ids */
export const ConnectionClosedTypeId: unique symbol = Symbol.for("effect-websockets/ConnectionClosed")
/** @since 0.1.0 @category type ids */
export const InvalidHandshakeTypeId: unique symbol = Symbol.for("effect-websockets/InvalidHandshake")
/** @since 0.1.0 @category type ids */
export const InvalidHeaderTypeId: unique symbol = Symbol.for("effect-websockets/InvalidHeader")
/** @since 0.1.0 @category type ids */
export const InvalidHeaderValueTypeId: unique symbol = Symbol.for("effect-websockets/InvalidHeaderValue")
/** @since 0.1.0 @category type ids */
export const NegotiationErrorTypeId: unique symbol = Symbol.for("effect-websockets/NegotiationError")
/** @since 0.1.0 @category type ids */
export const BackplaneErrorTypeId: unique symbol = Symbol.for("effect-websockets/BackplaneError")

const headerText = (value: string | undefined): string =>
  value === undefined ? "" : value === "" ? "empty " : `${JSON.stringify(value)} `

// ---------------------------------------------------------------------------
// WebSocketException (the root, raised directly only for generic failures)
// ---------------------------------------------------------------------------

/**
 * Generic failure of this library that fits no narrower class.
 * @since 0.1.0
 * @category errors
 */
export class WebSocketException extends Data.TaggedError("WebSocketException")<{
  readonly detail: string
  readonly cause?: unknown
}> {
  readonly [WebSocketExceptionTypeId] = WebSocketExceptionTypeId
  override get message(): string {
    return this.detail
  }
}

// ---------------------------------------------------------------------------
// ConnectionClosed family
// ---------------------------------------------------------------------------

const closeText = (code: number, reason: string): string => {
  const explanation =
    code === 1005
      ? "no status code [internal]"
      : code === 1006
        ? "connection closed abnormally [internal]"
        : closeCodeName(code)
  const codeText = `${code} (${explanation})`
  return reason === "" ? `received ${codeText}; no reason` : `received ${codeText}; reason ${JSON.stringify(reason)}`
}

/**
 * Human-readable name of a close code (RFC 6455 §7.4.1, IANA registry).
 * @since 0.1.0
 * @category utils
 */
export const closeCodeName = (code: number): string => {
  switch (code) {
    case 1000:
      return "OK"
    case 1001:
      return "going away"
    case 1002:
      return "protocol error"
    case 1003:
      return "unsupported type"
    case 1005:
      return "no status code [internal]"
    case 1006:
      return "connection closed abnormally [internal]"
    case 1007:
      return "invalid data"
    case 1008:
      return "policy violation"
    case 1009:
      return "message too big"
    case 1010:
      return "extension required"
    case 1011:
      return "unexpected error"
    case 1012:
      return "service restart"
    case 1013:
      return "try again later"
    case 1014:
      return "bad gateway"
    case 1015:
      return "TLS failure [internal]"
    default:
      return code >= 3000 && code < 4000 ? "registered" : code >= 4000 && code < 5000 ? "private use" : "unknown"
  }
}

/**
 * Fields shared by both members of the ConnectionClosed family.
 *
 * `code` and `reason` are the close code and reason *received* from the peer (1005 when the peer
 * sent a close frame without a code, 1006 when the TCP connection ended without a close frame).
 * `sentCode`/`sentReason` are those of the close frame we sent, when we sent one.
 * @since 0.1.0
 * @category models
 */
export interface ConnectionClosedFields {
  readonly code: number
  readonly reason: string
  readonly sentCode?: number | undefined
  readonly sentReason?: string | undefined
  /** Whether the peer's close frame was received before ours was sent (the peer started closing). */
  readonly rcvdThenSent?: boolean | undefined
  readonly cause?: unknown
}

/**
 * The connection terminated properly: close code 1000 (OK) or 1001 (going away) on both sides.
 * @since 0.1.0
 * @category errors
 */
export class ConnectionClosedOK extends Data.TaggedError("ConnectionClosedOK")<ConnectionClosedFields> {
  readonly [WebSocketExceptionTypeId] = WebSocketExceptionTypeId
  readonly [ConnectionClosedTypeId] = ConnectionClosedTypeId
  override get message(): string {
    return closeText(this.code, this.reason)
  }
}

/**
 * The connection terminated with an error: any close code other than 1000 and 1001, including
 * 1006 when the TCP connection was lost without a close frame.
 * @since 0.1.0
 * @category errors
 */
export class ConnectionClosedError extends Data.TaggedError("ConnectionClosedError")<ConnectionClosedFields> {
  readonly [WebSocketExceptionTypeId] = WebSocketExceptionTypeId
  readonly [ConnectionClosedTypeId] = ConnectionClosedTypeId
  override get message(): string {
    return closeText(this.code, this.reason)
  }
}

/**
 * Every error raised when interacting with a closed connection.
 * @since 0.1.0
 * @category errors
 */
export type ConnectionClosed = ConnectionClosedOK | ConnectionClosedError

/**
 * Builds the right ConnectionClosed member for a close code: ConnectionClosedOK when both the
 * received and the sent code (where one was sent) are 1000 or 1001.
 * @since 0.1.0
 * @category constructors
 */
export const connectionClosed = (fields: ConnectionClosedFields): ConnectionClosed => {
  const ok = (c: number | undefined) => c === undefined || c === 1000 || c === 1001
  return (fields.code === 1000 || fields.code === 1001) && ok(fields.sentCode)
    ? new ConnectionClosedOK(fields)
    : new ConnectionClosedError(fields)
}

// ---------------------------------------------------------------------------
// InvalidHandshake family
// ---------------------------------------------------------------------------

/**
 * The opening handshake failed, for a reason that fits no narrower class.
 * @since 0.1.0
 * @category errors
 */
export class InvalidHandshake extends Data.TaggedError("InvalidHandshake")<{
  readonly detail: string
  readonly cause?: unknown
}> {
  readonly [WebSocketExceptionTypeId] = WebSocketExceptionTypeId
  readonly [InvalidHandshakeTypeId] = InvalidHandshakeTypeId
  override get message(): string {
    return this.detail
  }
}

/**
 * A handshake request or response broke a security limit (header count, line length, size).
 * @since 0.1.0
 * @category errors
 */
export class SecurityError extends Data.TaggedError("SecurityError")<{ readonly detail: string }> {
  readonly [WebSocketExceptionTypeId] = WebSocketExceptionTypeId
  readonly [InvalidHandshakeTypeId] = InvalidHandshakeTypeId
  override get message(): string {
    return this.detail
  }
}

/**
 * A handshake request or response is malformed (including a connection that ends before a
 * complete HTTP head arrived, Python's `EOFError`).
 * @since 0.1.0
 * @category errors
 */
export class InvalidMessage extends Data.TaggedError("InvalidMessage")<{
  readonly detail: string
  readonly cause?: unknown
}> {
  readonly [WebSocketExceptionTypeId] = WebSocketExceptionTypeId
  readonly [InvalidHandshakeTypeId] = InvalidHandshakeTypeId
  override get message(): string {
    return this.detail
  }
}

/**
 * An HTTP header is missing, or has an invalid format or value.
 * `value` is `undefined` when the header is missing.
 * @since 0.1.0
 * @category errors
 */
export class InvalidHeader extends Data.TaggedError("InvalidHeader")<{
  readonly name: string
  readonly value?: string | undefined
}> {
  readonly [WebSocketExceptionTypeId] = WebSocketExceptionTypeId
  readonly [InvalidHandshakeTypeId] = InvalidHandshakeTypeId
  readonly [InvalidHeaderTypeId] = InvalidHeaderTypeId
  override get message(): string {
    if (this.value === undefined) return `missing ${this.name} header`
    if (this.value === "") return `empty ${this.name} header`
    return `invalid ${this.name} header: ${this.value}`
  }
}

/**
 * An HTTP header cannot be parsed: its format does not match the grammar for that header.
 * `pos` is the offset in `header` where parsing failed.
 * @since 0.1.0
 * @category errors
 */
export class InvalidHeaderFormat extends Data.TaggedError("InvalidHeaderFormat")<{
  readonly name: string
  readonly error: string
  readonly header: string
  readonly pos: number
}> {
  readonly [WebSocketExceptionTypeId] = WebSocketExceptionTypeId
  readonly [InvalidHandshakeTypeId] = InvalidHandshakeTypeId
  readonly [InvalidHeaderTypeId] = InvalidHeaderTypeId
  /** The raw header value, as in Python's `InvalidHeader.value`. */
  get value(): string {
    return this.header
  }
  override get message(): string {
    return `invalid ${this.name} header: ${this.error} at ${this.pos} in ${this.header}`
  }
}

/**
 * An HTTP header has a well-formed but unacceptable value.
 * @since 0.1.0
 * @category errors
 */
export class InvalidHeaderValue extends Data.TaggedError("InvalidHeaderValue")<{
  readonly name: string
  readonly value?: string | undefined
}> {
  readonly [WebSocketExceptionTypeId] = WebSocketExceptionTypeId
  readonly [InvalidHandshakeTypeId] = InvalidHandshakeTypeId
  readonly [InvalidHeaderTypeId] = InvalidHeaderTypeId
  readonly [InvalidHeaderValueTypeId] = InvalidHeaderValueTypeId
  override get message(): string {
    if (this.value === undefined) return `missing ${this.name} header`
    return `invalid ${this.name} header: ${headerText(this.value)}`.trimEnd()
  }
}

/**
 * The Origin header of a request is not allowed. `origin` is `undefined` when it is missing.
 * @since 0.1.0
 * @category errors
 */
export class InvalidOrigin extends Data.TaggedError("InvalidOrigin")<{
  readonly origin?: string | undefined
}> {
  readonly [WebSocketExceptionTypeId] = WebSocketExceptionTypeId
  readonly [InvalidHandshakeTypeId] = InvalidHandshakeTypeId
  readonly [InvalidHeaderTypeId] = InvalidHeaderTypeId
  /** Header value, as in Python's `InvalidHeader.value`. */
  get value(): string | undefined {
    return this.origin
  }
  override get message(): string {
    return this.origin === undefined ? "missing Origin header" : `invalid Origin header: ${this.origin}`
  }
}

/**
 * The Upgrade or Connection header of the handshake is not correct.
 * @since 0.1.0
 * @category errors
 */
export class InvalidUpgrade extends Data.TaggedError("InvalidUpgrade")<{
  readonly name: string
  readonly value?: string | undefined
}> {
  readonly [WebSocketExceptionTypeId] = WebSocketExceptionTypeId
  readonly [InvalidHandshakeTypeId] = InvalidHandshakeTypeId
  readonly [InvalidHeaderTypeId] = InvalidHeaderTypeId
  override get message(): string {
    if (this.value === undefined) return `missing ${this.name} header`
    return `invalid ${this.name} header: ${headerText(this.value)}`.trimEnd()
  }
}

/**
 * The handshake response has a status code other than 101 (and is not a followed redirect).
 * `headers` and `body` hold the rest of the response when it was read.
 * @since 0.1.0
 * @category errors
 */
export class InvalidStatusCode extends Data.TaggedError("InvalidStatusCode")<{
  readonly statusCode: number
  readonly headers?: ReadonlyArray<readonly [string, string]> | undefined
  readonly body?: Uint8Array | undefined
}> {
  readonly [WebSocketExceptionTypeId] = WebSocketExceptionTypeId
  readonly [InvalidHandshakeTypeId] = InvalidHandshakeTypeId
  /** Alias of `statusCode`, the name used by newer Python releases. */
  get status(): number {
    return this.statusCode
  }
  override get message(): string {
    return `server rejected WebSocket connection: HTTP ${this.statusCode}`
  }
}

/**
 * Negotiating an extension failed, for a reason that fits no narrower class.
 * @since 0.1.0
 * @category errors
 */
export class NegotiationError extends Data.TaggedError("NegotiationError")<{ readonly detail: string }> {
  readonly [WebSocketExceptionTypeId] = WebSocketExceptionTypeId
  readonly [InvalidHandshakeTypeId] = InvalidHandshakeTypeId
  readonly [NegotiationErrorTypeId] = NegotiationErrorTypeId
  override get message(): string {
    return this.detail
  }
}

/**
 * A parameter name is repeated in an extension header.
 * @since 0.1.0
 * @category errors
 */
export class DuplicateParameter extends Data.TaggedError("DuplicateParameter")<{ readonly name: string }> {
  readonly [WebSocketExceptionTypeId] = WebSocketExceptionTypeId
  readonly [InvalidHandshakeTypeId] = InvalidHandshakeTypeId
  readonly [NegotiationErrorTypeId] = NegotiationErrorTypeId
  override get message(): string {
    return `duplicate parameter: ${this.name}`
  }
}

/**
 * A parameter name in an extension header is invalid.
 * @since 0.1.0
 * @category errors
 */
export class InvalidParameterName extends Data.TaggedError("InvalidParameterName")<{ readonly name: string }> {
  readonly [WebSocketExceptionTypeId] = WebSocketExceptionTypeId
  readonly [InvalidHandshakeTypeId] = InvalidHandshakeTypeId
  readonly [NegotiationErrorTypeId] = NegotiationErrorTypeId
  override get message(): string {
    return `invalid parameter name: ${this.name}`
  }
}

/**
 * A parameter value in an extension header is invalid (`value` is `null` for a parameter sent
 * without a value).
 * @since 0.1.0
 * @category errors
 */
export class InvalidParameterValue extends Data.TaggedError("InvalidParameterValue")<{
  readonly name: string
  readonly value: string | null
}> {
  readonly [WebSocketExceptionTypeId] = WebSocketExceptionTypeId
  readonly [InvalidHandshakeTypeId] = InvalidHandshakeTypeId
  readonly [NegotiationErrorTypeId] = NegotiationErrorTypeId
  override get message(): string {
    return this.value === null
      ? `missing value for parameter ${this.name}`
      : this.value === ""
        ? `empty value for parameter ${this.name}`
        : `invalid value for parameter ${this.name}: ${this.value}`
  }
}

/**
 * Aborts the handshake on purpose with an HTTP response (what `processRequest` returns).
 * @since 0.1.0
 * @category errors
 */
export class AbortHandshake extends Data.TaggedError("AbortHandshake")<{
  readonly status: number
  readonly headers: ReadonlyArray<readonly [string, string]>
  readonly body: Uint8Array
}> {
  readonly [WebSocketExceptionTypeId] = WebSocketExceptionTypeId
  readonly [InvalidHandshakeTypeId] = InvalidHandshakeTypeId
  override get message(): string {
    return `HTTP ${this.status}, ${this.headers.length} headers, ${this.body.byteLength} bytes`
  }
}

/**
 * The handshake was redirected to `uri` (followed by the client up to a bound).
 * @since 0.1.0
 * @category errors
 */
export class RedirectHandshake extends Data.TaggedError("RedirectHandshake")<{ readonly uri: string }> {
  readonly [WebSocketExceptionTypeId] = WebSocketExceptionTypeId
  readonly [InvalidHandshakeTypeId] = InvalidHandshakeTypeId
  override get message(): string {
    return `redirect to ${this.uri}`
  }
}

/**
 * The opening handshake did not complete within `openTimeout` (Python raises `TimeoutError`).
 * @since 0.1.0
 * @category errors
 */
export class OpenTimeout extends Data.TaggedError("OpenTimeout")<{ readonly timeoutMillis: number }> {
  readonly [WebSocketExceptionTypeId] = WebSocketExceptionTypeId
  readonly [InvalidHandshakeTypeId] = InvalidHandshakeTypeId
  override get message(): string {
    return `timed out during opening handshake after ${this.timeoutMillis} ms`
  }
}

// ---------------------------------------------------------------------------
// Other members of WebSocketException
// ---------------------------------------------------------------------------

/**
 * An operation is forbidden in the current state (for example sending after close).
 * @since 0.1.0
 * @category errors
 */
export class InvalidState extends Data.TaggedError("InvalidState")<{ readonly detail: string }> {
  readonly [WebSocketExceptionTypeId] = WebSocketExceptionTypeId
  override get message(): string {
    return this.detail
  }
}

/**
 * Two fibers called `recv` at once: the second fails at once, since which of them would get the
 * next message is undefined (the seeds raise `RuntimeError: cannot call recv while another
 * coroutine is already waiting for the next message`; Python `websockets` 13 names it
 * `ConcurrencyError`). Read from one fiber, or share `messages`/`forEachMessage`.
 * @since 0.4.0
 * @category errors
 */
export class ConcurrencyError extends Data.TaggedError("ConcurrencyError")<{ readonly detail: string }> {
  readonly [WebSocketExceptionTypeId] = WebSocketExceptionTypeId
  override get message(): string {
    return this.detail
  }
}

/**
 * A URI is not a valid WebSocket URI.
 * @since 0.1.0
 * @category errors
 */
export class InvalidURI extends Data.TaggedError("InvalidURI")<{ readonly uri: string; readonly detail: string }> {
  readonly [WebSocketExceptionTypeId] = WebSocketExceptionTypeId
  override get message(): string {
    return `${this.uri} isn't a valid URI: ${this.detail}`
  }
}

/**
 * A frame or message exceeds the maximum size (close code 1009).
 * @since 0.1.0
 * @category errors
 */
export class PayloadTooBig extends Data.TaggedError("PayloadTooBig")<{
  readonly size: number | undefined
  readonly maxSize: number | null
  /** What was too big when it was not the size in bytes (the number of fragments). */
  readonly detail?: string | undefined
}> {
  readonly [WebSocketExceptionTypeId] = WebSocketExceptionTypeId
  override get message(): string {
    if (this.detail !== undefined) return `message too big: ${this.detail}`
    return this.size === undefined
      ? `message exceeds limit of ${this.maxSize} bytes`
      : `over size limit (${this.size} > ${this.maxSize} bytes)`
  }
}

/**
 * The other side broke the protocol, or a frame we were asked to send would break it.
 * @since 0.1.0
 * @category errors
 */
export class ProtocolError extends Data.TaggedError("ProtocolError")<{
  readonly detail: string
  readonly cause?: unknown
}> {
  readonly [WebSocketExceptionTypeId] = WebSocketExceptionTypeId
  override get message(): string {
    return this.detail
  }
}

/**
 * Alias of {@link ProtocolError}, as `websockets.exceptions.WebSocketProtocolError` is in the seeds.
 * The `_tag` stays `"ProtocolError"`.
 * @since 0.4.0
 * @category errors
 */
export const WebSocketProtocolError = ProtocolError
/** @since 0.4.0 @category errors */
export type WebSocketProtocolError = ProtocolError

/**
 * A text payload or close reason is not valid UTF-8 (close code 1007; Python's `UnicodeDecodeError`).
 * @since 0.1.0
 * @category errors
 */
export class InvalidUtf8 extends Data.TaggedError("InvalidUtf8")<{ readonly detail: string }> {
  readonly [WebSocketExceptionTypeId] = WebSocketExceptionTypeId
  override get message(): string {
    return this.detail
  }
}

/**
 * An argument of a public function is not acceptable (Python's `TypeError`/`ValueError` on
 * inputs, for example fragments of mixed types passed to `send`).
 * @since 0.1.0
 * @category errors
 */
export class InvalidArgument extends Data.TaggedError("InvalidArgument")<{ readonly detail: string }> {
  readonly [WebSocketExceptionTypeId] = WebSocketExceptionTypeId
  override get message(): string {
    return this.detail
  }
}

/**
 * The backplane that carries topic messages between processes (Redis) is not connected: the
 * message reached this process's subscribers only. The backplane reconnects on its own.
 * @since 0.1.0
 * @category errors
 */
export class BackplaneUnavailable extends Data.TaggedError("BackplaneUnavailable")<{
  readonly backplane: string
  readonly cause?: unknown
}> {
  readonly [WebSocketExceptionTypeId] = WebSocketExceptionTypeId
  readonly [BackplaneErrorTypeId] = BackplaneErrorTypeId
  override get message(): string {
    return `${this.backplane} backplane unavailable; the message reached local subscribers only`
  }
}

/**
 * The backplane refused or lost a command (for example an error reply from Redis, or the
 * connection dropped before the reply): the message may or may not have reached other processes.
 * @since 0.1.0
 * @category errors
 */
export class BackplaneFailure extends Data.TaggedError("BackplaneFailure")<{
  readonly backplane: string
  readonly operation: string
  readonly cause?: unknown
}> {
  readonly [WebSocketExceptionTypeId] = WebSocketExceptionTypeId
  readonly [BackplaneErrorTypeId] = BackplaneErrorTypeId
  override get message(): string {
    const cause = this.cause instanceof Error ? `: ${this.cause.message}` : ""
    return `${this.backplane} backplane: ${this.operation} failed${cause}`
  }
}

/**
 * `Headers.getSingle` found several values where one was expected. Outside the WebSocketException
 * hierarchy, as in Python (a `LookupError`).
 * @since 0.1.0
 * @category errors
 */
export class MultipleValuesError extends Data.TaggedError("MultipleValuesError")<{
  readonly name: string
  readonly values: ReadonlyArray<string>
}> {
  override get message(): string {
    return `${this.name} has ${this.values.length} values: ${this.values.join(", ")}`
  }
}

/**
 * `Headers.getStrict` found no value for a header. Outside the WebSocketException hierarchy, as
 * Python's `KeyError` that `headers[name]` raises.
 * @since 0.4.0
 * @category errors
 */
export class KeyError extends Data.TaggedError("KeyError")<{ readonly name: string }> {
  override get message(): string {
    return `missing ${this.name} header`
  }
}

/** The message of an underlying error (`connect ECONNREFUSED 127.0.0.1:8765`), whatever it is. */
const causeText = (cause: unknown): string =>
  cause instanceof Error && cause.message !== "" ? cause.message : String(cause)

/**
 * The client could not open its TCP, TLS or unix-socket connection: refused, unreachable, a name
 * that does not resolve, a TLS certificate rejected. Outside the WebSocketException hierarchy, as
 * in Python (an `OSError`); the message carries the cause's (`connect ECONNREFUSED ...`).
 * @since 0.1.0
 * @category errors
 */
export class ConnectFailed extends Data.TaggedError("ConnectFailed")<{
  /** Where the connection went: `host:port` or the unix socket path. */
  readonly address: string
  readonly cause: unknown
}> {
  override get message(): string {
    return `cannot connect to ${this.address}: ${causeText(this.cause)}`
  }
}

/**
 * The server could not listen: address in use, permission denied, no such interface. Outside the
 * WebSocketException hierarchy, as in Python (an `OSError`); the message carries the cause's.
 * @since 0.1.0
 * @category errors
 */
export class ListenFailed extends Data.TaggedError("ListenFailed")<{
  /** Where the server tried to listen: `host:port` or the unix socket path. */
  readonly address: string
  readonly cause: unknown
}> {
  override get message(): string {
    return `cannot listen on ${this.address}: ${causeText(this.cause)}`
  }
}

/**
 * A message received through `TypedMessages` does not decode: a Binary message where the codec
 * reads Text or the reverse (`reason: "UnexpectedFrame"`), or a payload its Schema rejects, invalid
 * JSON included (`reason: "InvalidPayload"`, with the `ParseError` as `cause`). `data` is the
 * message as received. The connection stays open: the application decides whether to skip the
 * message or close, with `closeCode` (what `TypedMessages.closeOnDecodeError` sends). Outside the
 * WebSocketException hierarchy: the peer broke the application's contract, not the protocol.
 * @since 0.3.0
 * @category errors
 */
export class MessageDecodeError extends Data.TaggedError("MessageDecodeError")<{
  readonly reason: "UnexpectedFrame" | "InvalidPayload"
  /** The message as received: `string` for Text, `Uint8Array` for Binary. */
  readonly data: string | Uint8Array
  /** Why the payload was rejected; `undefined` when the frame type was wrong. */
  readonly cause?: SchemaError | undefined
}> {
  /**
   * The close code for this failure (RFC 6455 §7.4.1): 1003 (unsupported data) for a message of
   * the wrong type, 1007 (invalid data) for a payload that does not decode.
   */
  get closeCode(): 1003 | 1007 {
    return this.reason === "UnexpectedFrame" ? 1003 : 1007
  }
  override get message(): string {
    const received = typeof this.data === "string" ? "text" : "binary"
    if (this.reason === "UnexpectedFrame") {
      return `expected a ${received === "text" ? "binary" : "text"} message, received a ${received} message`
    }
    return `invalid ${received} message: ${this.cause?.message ?? "rejected by its schema"}`
  }
}

/**
 * A value given to `TypedMessages.send` (or a codec's `encode`) does not encode with its Schema
 * (for example a refinement it breaks, or a value `JSON.stringify` rejects): nothing was sent.
 * @since 0.3.0
 * @category errors
 */
export class MessageEncodeError extends Data.TaggedError("MessageEncodeError")<{
  /** The value that did not encode. */
  readonly value: unknown
  readonly cause: SchemaError
}> {
  override get message(): string {
    return `cannot encode message: ${this.cause.message}`
  }
}

// ---------------------------------------------------------------------------
// Families and refinements
// ---------------------------------------------------------------------------

/** @since 0.1.0 @category errors */
export type NegotiationErrorFamily =
  | NegotiationError
  | DuplicateParameter
  | InvalidParameterName
  | InvalidParameterValue
/**
 * InvalidHeaderValue alone: InvalidOrigin and InvalidUpgrade are direct InvalidHeader members, as in
 * the seeds (`websockets.exceptions`). Kept as a name for code written against 0.1.
 * @since 0.1.0
 * @category errors
 */
export type InvalidHeaderValueFamily = InvalidHeaderValue
/** @since 0.1.0 @category errors */
export type InvalidHeaderFamily =
  | InvalidHeader
  | InvalidHeaderFormat
  | InvalidHeaderValue
  | InvalidOrigin
  | InvalidUpgrade
/** @since 0.1.0 @category errors */
export type InvalidHandshakeFamily =
  | InvalidHandshake
  | SecurityError
  | InvalidMessage
  | InvalidHeaderFamily
  | InvalidStatusCode
  | NegotiationErrorFamily
  | AbortHandshake
  | RedirectHandshake
  | OpenTimeout
/** @since 0.1.0 @category errors */
export type WebSocketExceptionFamily =
  | WebSocketException
  | ConnectionClosed
  | InvalidHandshakeFamily
  | InvalidState
  | ConcurrencyError
  | InvalidURI
  | PayloadTooBig
  | ProtocolError
  | InvalidUtf8
  | InvalidArgument
  | BackplaneError
/** @since 0.1.0 @category errors */
export type BackplaneError = BackplaneUnavailable | BackplaneFailure

/**
 * A refinement that narrows any union to the members of one family, so that
 * `Effect.catchIf(isX, handler)` removes exactly that family from the error type.
 * @since 0.1.0
 * @category refinements
 */
export type FamilyRefinement<F> = <E>(u: E) => u is unknown extends E ? F & E : Extract<E, F>

const family =
  <F>(typeId: symbol): FamilyRefinement<F> =>
  (u: unknown): u is any =>
    Predicate.hasProperty(u, typeId)

/** Every error of this library. @since 0.1.0 @category refinements */
export const isWebSocketException: FamilyRefinement<WebSocketExceptionFamily> = family(WebSocketExceptionTypeId)
/** ConnectionClosedOK or ConnectionClosedError. @since 0.1.0 @category refinements */
export const isConnectionClosed: FamilyRefinement<ConnectionClosed> = family(ConnectionClosedTypeId)
/** Every failure of the opening handshake. @since 0.1.0 @category refinements */
export const isInvalidHandshake: FamilyRefinement<InvalidHandshakeFamily> = family(InvalidHandshakeTypeId)
/** InvalidHeader and its descendants. @since 0.1.0 @category refinements */
export const isInvalidHeader: FamilyRefinement<InvalidHeaderFamily> = family(InvalidHeaderTypeId)
/**
 * InvalidHeaderValue (a leaf since 0.4.0: InvalidOrigin and InvalidUpgrade are its siblings under
 * InvalidHeader, as in the seeds). @since 0.1.0 @category refinements
 */
export const isInvalidHeaderValue: FamilyRefinement<InvalidHeaderValueFamily> = family(InvalidHeaderValueTypeId)
/** NegotiationError and its descendants. @since 0.1.0 @category refinements */
export const isNegotiationError: FamilyRefinement<NegotiationErrorFamily> = family(NegotiationErrorTypeId)
/** BackplaneUnavailable or BackplaneFailure. @since 0.1.0 @category refinements */
export const isBackplaneError: FamilyRefinement<BackplaneError> = family(BackplaneErrorTypeId)
