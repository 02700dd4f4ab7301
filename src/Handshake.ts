/**
 * Headers of the opening handshake (RFC 6455 §4), mirroring Python `websockets.handshake`.
 *
 * A client builds its request headers with `buildRequest` and checks the response with
 * `checkResponse`; a server checks the request with `checkRequest` and builds the 101 response
 * headers with `buildResponse`. Checking the method, status code, HTTP version, `Host` and
 * `Origin` is the caller's job, as in Python: the parsers of `Http11` check the first four, and
 * `ServerConnection` the origin.
 *
 * @since 0.1.0
 */
import { hash, randomBytes } from "node:crypto"
import { InvalidHeader, type InvalidHeaderFormat, InvalidHeaderValue, InvalidUpgrade } from "./Errors.js"
import { parseConnection, parseUpgrade } from "./HeaderParsers.js"
import { type Headers, isAsciiCaseInsensitive } from "./Headers.js"
import * as Result from "./internal/result.js"

/**
 * The GUID appended to the key before hashing (RFC 6455 §1.3).
 * @since 0.1.0
 * @category constants
 */
export const GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

/** Size of the nonce behind `Sec-WebSocket-Key` (RFC 6455 §4.1: "a randomly selected 16-byte value"). */
const KEY_BYTES = 16

/**
 * Base64 of exactly 16 bytes: 22 base64 chars and `==`. Strict like Python's
 * `b64decode(validate=True)`: no whitespace, no URL-safe alphabet, padding required.
 */
const KEY_RE = /^[A-Za-z0-9+/]{22}==$/

/**
 * The errors of `checkRequest` and `checkResponse`.
 * @since 0.1.0
 * @category errors
 */
export type HandshakeError = InvalidUpgrade | InvalidHeader | InvalidHeaderValue | InvalidHeaderFormat

/**
 * A fresh `Sec-WebSocket-Key`: 16 random bytes, base64-encoded (RFC 6455 §4.1).
 * @since 0.1.0
 * @category utils
 */
export const generateKey = (): string => randomBytes(KEY_BYTES).toString("base64")

/**
 * The `Sec-WebSocket-Accept` value for a key: base64(SHA-1(key + GUID)) (RFC 6455 §4.2.2).
 * @since 0.1.0
 * @category utils
 */
export const acceptKey = (key: string): string => hash("sha1", key + GUID, "base64")

/**
 * Sets the handshake headers of a client request (RFC 6455 §4.1) and returns the key to pass to
 * `checkResponse`. Existing values of these headers are replaced, so that none is duplicated.
 * @since 0.1.0
 * @category constructors
 */
export const buildRequest = (headers: Headers): string => {
  const key = generateKey()
  headers.set("Upgrade", "websocket")
  headers.set("Connection", "Upgrade")
  headers.set("Sec-WebSocket-Key", key)
  headers.set("Sec-WebSocket-Version", "13")
  return key
}

/**
 * Sets the handshake headers of the server's 101 response (RFC 6455 §4.2.2) for the key that
 * `checkRequest` returned.
 * @since 0.1.0
 * @category constructors
 */
export const buildResponse = (headers: Headers, key: string): void => {
  headers.set("Upgrade", "websocket")
  headers.set("Connection", "Upgrade")
  headers.set("Sec-WebSocket-Accept", acceptKey(key))
}

/** Parses every value of a list header and flattens them (RFC 7230 §3.2.2: repeated = joined). */
const parseAll = (
  headers: Headers,
  name: string,
  parse: (header: string) => Result.Result<ReadonlyArray<string>, InvalidHeaderFormat>
): Result.Result<ReadonlyArray<string>, InvalidHeaderFormat> => {
  const items: Array<string> = []
  for (const value of headers.getAll(name)) {
    const parsed = parse(value)
    if (Result.isFailure(parsed)) return Result.fail(Result.failureOf(parsed))
    items.push(...Result.successOf(parsed))
  }
  return Result.succeed(items)
}

/**
 * `Connection` must contain `upgrade` and `Upgrade` must be exactly `websocket`, both
 * case-insensitively (RFC 6455 §4.2.1 items 3-4; the RFC writes "WebSocket" in §11.2, so
 * Python ignores case, and so do we). An absent header is reported with `value: undefined`.
 */
const checkUpgrade = (headers: Headers): Result.Result<void, InvalidUpgrade | InvalidHeaderFormat> => {
  // What nearly every client sends (`Connection: Upgrade`, `Upgrade: websocket`) passes without
  // parsing either list.
  const connectionValue = headers.onlyValue("Connection")
  const upgradeValue = headers.onlyValue("Upgrade")
  if (
    connectionValue !== undefined &&
    upgradeValue !== undefined &&
    isAsciiCaseInsensitive(connectionValue, "upgrade") &&
    isAsciiCaseInsensitive(upgradeValue, "websocket")
  ) {
    return Result.void_
  }
  const connection = parseAll(headers, "Connection", parseConnection)
  if (Result.isFailure(connection)) return Result.fail(Result.failureOf(connection))
  if (!Result.successOf(connection).some((option) => option.toLowerCase() === "upgrade")) {
    const value = headers.has("Connection") ? Result.successOf(connection).join(", ") : undefined
    return Result.fail(new InvalidUpgrade({ name: "Connection", value }))
  }
  const upgrade = parseAll(headers, "Upgrade", parseUpgrade)
  if (Result.isFailure(upgrade)) return Result.fail(Result.failureOf(upgrade))
  if (!(Result.successOf(upgrade).length === 1 && Result.successOf(upgrade)[0]!.toLowerCase() === "websocket")) {
    const value = headers.has("Upgrade") ? Result.successOf(upgrade).join(", ") : undefined
    return Result.fail(new InvalidUpgrade({ name: "Upgrade", value }))
  }
  return Result.void_
}

/** Exactly one value of `name`: missing or repeated is `InvalidHeader`, as in Python. */
const single = (headers: Headers, name: string): Result.Result<string, InvalidHeader> => {
  const value = singleValue(headers, name)
  return typeof value === "string" ? Result.succeed(value) : Result.fail(value)
}

/** `single` without its result: the value, or the error (no result made per header checked). */
const singleValue = (headers: Headers, name: string): string | InvalidHeader =>
  headers.onlyValue(name) ??
  (headers.has(name)
    ? new InvalidHeader({ name, value: `more than one ${name} header found` })
    : new InvalidHeader({ name }))

/**
 * Checks the handshake headers of a client request (RFC 6455 §4.2.1) and returns its
 * `Sec-WebSocket-Key`, to pass to `buildResponse`. On failure the server should answer
 * 400 Bad Request.
 * @since 0.1.0
 * @category validation
 */
export const checkRequest = (headers: Headers): Result.Result<string, HandshakeError> => {
  // Plain checks (once per handshake): a generator here was a measurable part of a handshake.
  const upgrade = checkUpgrade(headers)
  if (Result.isFailure(upgrade)) return Result.fail(Result.failureOf(upgrade))
  const key = singleValue(headers, "Sec-WebSocket-Key")
  if (typeof key !== "string") return Result.fail(key)
  if (!KEY_RE.test(key)) return Result.fail(new InvalidHeaderValue({ name: "Sec-WebSocket-Key", value: key }))
  const version = singleValue(headers, "Sec-WebSocket-Version")
  if (typeof version !== "string") return Result.fail(version)
  // RFC 6455 §4.2.2: a server that does not speak the requested version may answer 426 with
  // the versions it supports; Python just rejects, as we do.
  if (version !== "13") return Result.fail(new InvalidHeaderValue({ name: "Sec-WebSocket-Version", value: version }))
  return Result.succeed(key)
}

/**
 * Checks the handshake headers of the server's response (RFC 6455 §4.1, steps 2-4 of the client
 * requirements) against the key that `buildRequest` returned.
 * @since 0.1.0
 * @category validation
 */
export const checkResponse = (headers: Headers, key: string): Result.Result<void, HandshakeError> => {
  const upgrade = checkUpgrade(headers)
  if (Result.isFailure(upgrade)) return Result.fail(Result.failureOf(upgrade))
  const accept = single(headers, "Sec-WebSocket-Accept")
  if (Result.isFailure(accept)) return Result.fail(Result.failureOf(accept))
  if (Result.successOf(accept) !== acceptKey(key)) {
    return Result.fail(new InvalidHeaderValue({ name: "Sec-WebSocket-Accept", value: Result.successOf(accept) }))
  }
  return Result.void_
}
