/**
 * Parsers and serializers for the HTTP headers of the WebSocket opening handshake, mirroring
 * Python `websockets.headers`.
 *
 * The parsers implement by hand the ABNF of RFC 6455 §9.1 and RFC 7230 Appendix B. Each small
 * parser takes `(header, pos, name)` and returns `[value, newPos]` or an `InvalidHeaderFormat`
 * carrying the header name and the position where parsing failed; list parsers combine them.
 * Header values are assumed to be stripped of leading and trailing whitespace, as the HTTP
 * parser does.
 *
 * @since 0.1.0
 */

import { InvalidArgument, InvalidHeaderFormat, InvalidHeaderValue } from "./Errors.js"
import * as Result from "./internal/result.js"

/**
 * An extension parameter: name and value, `null` when the parameter has no value.
 * @since 0.1.0
 * @category models
 */
export type ExtensionParameter = readonly [name: string, value: string | null]

/**
 * An extension offered or accepted in `Sec-WebSocket-Extensions`: name and parameters.
 * @since 0.1.0
 * @category models
 */
export type ExtensionHeader = readonly [name: string, parameters: ReadonlyArray<ExtensionParameter>]

/**
 * The result of a position-passing parser: the parsed value and the position after it.
 * @since 0.1.0
 * @category models
 */
export type Parsed<A> = Result.Result<readonly [value: A, pos: number], InvalidHeaderFormat>

/**
 * A position-passing parser for one item of a header value.
 * @since 0.1.0
 * @category models
 */
export type ItemParser<A> = (header: string, pos: number, name: string) => Parsed<A>

const CONNECTION = "Connection"
const UPGRADE = "Upgrade"
const SEC_WEBSOCKET_EXTENSIONS = "Sec-WebSocket-Extensions"
const SEC_WEBSOCKET_PROTOCOL = "Sec-WebSocket-Protocol"
const AUTHORIZATION = "Authorization"

const formatError = (name: string, error: string, header: string, pos: number) =>
  Result.fail(new InvalidHeaderFormat({ name, error, header, pos }))

/** Runs a sticky regex at `pos` and returns the end of the match, or -1. */
const matchAt = (re: RegExp, header: string, pos: number): number => {
  re.lastIndex = pos
  return re.test(header) ? re.lastIndex : -1
}

// ---------------------------------------------------------------------------
// Primitives (RFC 7230 §3.2.3, §3.2.6)
// ---------------------------------------------------------------------------

/** RFC 7230 §3.2.3: `OWS = *( SP / HTAB )`. */
const OWS_RE = /[\t ]*/y
/** RFC 7230 §3.2.6: `token = 1*tchar`. */
const TOKEN_RE = /[-!#$%&'*+.^_`|~0-9a-zA-Z]+/y
const TOKEN_FULL_RE = /^[-!#$%&'*+.^_`|~0-9a-zA-Z]+$/
/**
 * RFC 7230 §3.2.6: `quoted-string = DQUOTE *( qdtext / quoted-pair ) DQUOTE`, where qdtext
 * includes obs-text (0x80-0xFF). Python leaves obs-text out of qdtext, so its parser refuses what
 * its `build_quoted_string` produces for such characters; we follow the RFC.
 */
const QUOTED_STRING_RE = /"(?:[\t\x20\x21\x23-\x5b\x5d-\x7e\x80-\xff]|\\[\t\x20-\x7e\x80-\xff])*"/y
const UNQUOTE_RE = /\\([\t\x20-\x7e\x80-\xff])/g
/** Characters that a quoted-string can carry (RFC 7230 §3.2.6). */
const QUOTABLE_RE = /^[\t\x20-\x7e\x80-\xff]*$/
const QUOTE_RE = /(["\\])/g
/** RFC 7230 §6.7: `protocol = protocol-name ["/" protocol-version]`, both tokens. */
const PROTOCOL_RE = /[-!#$%&'*+.^_`|~0-9a-zA-Z]+(?:\/[-!#$%&'*+.^_`|~0-9a-zA-Z]+)?/y
/** RFC 7235 §2.1: `token68 = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="`. */
const TOKEN68_RE = /[A-Za-z0-9\-._~+/]+=*/y
/** RFC 4648 §4 base64 with mandatory padding; anything else in a token68 is refused. */
const BASE64_RE = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/

/**
 * Whether `value` is an RFC 7230 §3.2.6 token.
 * @since 0.1.0
 * @category predicates
 */
export const isToken = (value: string): boolean => TOKEN_FULL_RE.test(value)

/** The character at `pos`, or `undefined` at the end: we never need to look further ahead. */
const peekAhead = (header: string, pos: number): string | undefined => (pos < header.length ? header[pos] : undefined)

/** Skips optional whitespace; always succeeds. */
const parseOWS = (header: string, pos: number): number => matchAt(OWS_RE, header, pos)

/**
 * Parses a token (RFC 7230 §3.2.6) at `pos`.
 * @since 0.1.0
 * @category parsing
 */
export const parseToken: ItemParser<string> = (header, pos, name) => {
  const end = matchAt(TOKEN_RE, header, pos)
  return end === -1 ? formatError(name, "expected token", header, pos) : Result.succeed([header.slice(pos, end), end])
}

/**
 * Parses a quoted-string (RFC 7230 §3.2.6) at `pos` and returns its unquoted value.
 * @since 0.1.0
 * @category parsing
 */
export const parseQuotedString: ItemParser<string> = (header, pos, name) => {
  const end = matchAt(QUOTED_STRING_RE, header, pos)
  return end === -1
    ? formatError(name, "expected quoted string", header, pos)
    : Result.succeed([header.slice(pos + 1, end - 1).replace(UNQUOTE_RE, "$1"), end])
}

/**
 * Formats `value` as a quoted-string; the reverse of `parseQuotedString`.
 *
 * Throws when `value` holds characters that a quoted-string cannot carry (controls other than
 * HTAB, DEL, code points above U+00FF): values come from the application, so this is a bug.
 *
 * @since 0.1.0
 * @category formatting
 */
export const buildQuotedString = (value: string): string => {
  if (!QUOTABLE_RE.test(value)) throw new TypeError("invalid characters for quoted-string encoding")
  return `"${value.replace(QUOTE_RE, "\\$1")}"`
}

/**
 * Parses a comma-separated list `1#item` (RFC 7230 §7) from `pos` to the end of `header`.
 *
 * RFC 7230 §7: "a recipient MUST parse and ignore a reasonable number of empty list elements",
 * hence the loops that skip extra commas.
 *
 * @since 0.1.0
 * @category parsing
 */
export const parseList = <A>(
  parseItem: ItemParser<A>,
  header: string,
  pos: number,
  name: string
): Result.Result<Array<A>, InvalidHeaderFormat> => {
  // Skip empty elements before the first item.
  while (peekAhead(header, pos) === ",") pos = parseOWS(header, pos + 1)

  const items: Array<A> = []
  for (;;) {
    // Loop invariant: an item starts at pos.
    const parsed = parseItem(header, pos, name)
    if (Result.isFailure(parsed)) return Result.fail(Result.failureOf(parsed))
    items.push(Result.successOf(parsed)[0])
    pos = parseOWS(header, Result.successOf(parsed)[1])

    if (pos === header.length) break

    // There must be a delimiter after each item except the last one.
    if (peekAhead(header, pos) !== ",") return formatError(name, "expected comma", header, pos)
    pos = parseOWS(header, pos + 1)

    // Skip empty elements before the next item.
    while (peekAhead(header, pos) === ",") pos = parseOWS(header, pos + 1)

    if (pos === header.length) break
  }
  return Result.succeed(items)
}

// ---------------------------------------------------------------------------
// Connection and Upgrade (RFC 7230 §6.1, §6.7)
// ---------------------------------------------------------------------------

/**
 * Parses a `Connection` header (RFC 7230 §6.1): a list of connection options (tokens).
 * @since 0.1.0
 * @category parsing
 */
export const parseConnection = (header: string): Result.Result<ReadonlyArray<string>, InvalidHeaderFormat> =>
  parseList(parseToken, header, 0, CONNECTION)

const parseUpgradeProtocol: ItemParser<string> = (header, pos, name) => {
  const end = matchAt(PROTOCOL_RE, header, pos)
  return end === -1
    ? formatError(name, "expected protocol", header, pos)
    : Result.succeed([header.slice(pos, end), end])
}

/**
 * Parses an `Upgrade` header (RFC 7230 §6.7): a list of protocols such as `websocket` or `h2c/1.0`.
 * @since 0.1.0
 * @category parsing
 */
export const parseUpgrade = (header: string): Result.Result<ReadonlyArray<string>, InvalidHeaderFormat> =>
  parseList(parseUpgradeProtocol, header, 0, UPGRADE)

// ---------------------------------------------------------------------------
// Sec-WebSocket-Extensions (RFC 6455 §9.1)
// ---------------------------------------------------------------------------

/** `extension-param = token [ "=" (token | quoted-string) ]` */
const parseExtensionParam: ItemParser<ExtensionParameter> = (header, pos, name) => {
  const paramName = parseToken(header, pos, name)
  if (Result.isFailure(paramName)) return Result.fail(Result.failureOf(paramName))
  pos = parseOWS(header, Result.successOf(paramName)[1])
  let value: string | null = null
  if (peekAhead(header, pos) === "=") {
    pos = parseOWS(header, pos + 1)
    if (peekAhead(header, pos) === '"') {
      const quoted = parseQuotedString(header, pos, name)
      if (Result.isFailure(quoted)) return Result.fail(Result.failureOf(quoted))
      // RFC 6455 §9.1: "the value after quoted-string unescaping MUST conform to the 'token' ABNF".
      if (!isToken(Result.successOf(quoted)[0])) return formatError(name, "invalid quoted header content", header, pos)
      ;[value, pos] = Result.successOf(quoted)
    } else {
      const token = parseToken(header, pos, name)
      if (Result.isFailure(token)) return Result.fail(Result.failureOf(token))
      ;[value, pos] = Result.successOf(token)
    }
    pos = parseOWS(header, pos)
  }
  return Result.succeed([[Result.successOf(paramName)[0], value], pos])
}

/** `extension = extension-token *( ";" extension-param )` */
const parseExtensionItem: ItemParser<ExtensionHeader> = (header, pos, name) => {
  const extensionName = parseToken(header, pos, name)
  if (Result.isFailure(extensionName)) return Result.fail(Result.failureOf(extensionName))
  pos = parseOWS(header, Result.successOf(extensionName)[1])
  const parameters: Array<ExtensionParameter> = []
  while (peekAhead(header, pos) === ";") {
    const parameter = parseExtensionParam(header, parseOWS(header, pos + 1), name)
    if (Result.isFailure(parameter)) return Result.fail(Result.failureOf(parameter))
    parameters.push(Result.successOf(parameter)[0])
    pos = Result.successOf(parameter)[1]
  }
  return Result.succeed([[Result.successOf(extensionName)[0], parameters], pos])
}

/**
 * Parses a `Sec-WebSocket-Extensions` header (RFC 6455 §9.1) into
 * `[[extensionName, [[parameterName, value | null], ...]], ...]`.
 * @since 0.1.0
 * @category parsing
 */
export const parseExtension = (header: string): Result.Result<ReadonlyArray<ExtensionHeader>, InvalidHeaderFormat> =>
  parseList(parseExtensionItem, header, 0, SEC_WEBSOCKET_EXTENSIONS)

/**
 * Builds a `Sec-WebSocket-Extensions` header; the reverse of `parseExtension`. Values are
 * written as tokens, never quoted: RFC 6455 §9.1 requires them to be tokens anyway.
 * @since 0.1.0
 * @category formatting
 */
export const buildExtension = (extensions: ReadonlyArray<ExtensionHeader>): string =>
  extensions
    .map(([name, parameters]) =>
      [name, ...parameters.map(([param, value]) => (value === null ? param : `${param}=${value}`))].join("; ")
    )
    .join(", ")

// ---------------------------------------------------------------------------
// Sec-WebSocket-Protocol (RFC 6455 §4.3)
// ---------------------------------------------------------------------------

/**
 * Parses a `Sec-WebSocket-Protocol` header (RFC 6455 §4.3): a list of subprotocols (tokens).
 * @since 0.1.0
 * @category parsing
 */
export const parseSubprotocol = (header: string): Result.Result<ReadonlyArray<string>, InvalidHeaderFormat> =>
  parseList(parseToken, header, 0, SEC_WEBSOCKET_PROTOCOL)

/**
 * Builds a `Sec-WebSocket-Protocol` header; the reverse of `parseSubprotocol`.
 * @since 0.1.0
 * @category formatting
 */
export const buildSubprotocol = (subprotocols: ReadonlyArray<string>): string => subprotocols.join(", ")

/**
 * Checks that every subprotocol is a token (RFC 6455 §4.1), so `buildSubprotocol` makes a
 * valid header.
 * @since 0.1.0
 * @category validation
 */
export const validateSubprotocols = (subprotocols: ReadonlyArray<string>): Result.Result<void, InvalidArgument> => {
  for (const subprotocol of subprotocols) {
    if (!isToken(subprotocol))
      return Result.fail(new InvalidArgument({ detail: `invalid subprotocol: ${subprotocol}` }))
  }
  return Result.void_
}

// ---------------------------------------------------------------------------
// HTTP Basic Auth (RFC 7235, RFC 7617)
// ---------------------------------------------------------------------------

/**
 * Builds a `WWW-Authenticate` header for HTTP Basic Auth (RFC 7617 §2, §2.1):
 * `Basic realm="...", charset="UTF-8"`.
 *
 * Throws, like `buildQuotedString`, when `realm` cannot be written as a quoted-string.
 *
 * @since 0.1.0
 * @category formatting
 */
export const buildWwwAuthenticateBasic = (realm: string): string =>
  `Basic realm=${buildQuotedString(realm)}, charset=${buildQuotedString("UTF-8")}`

const utf8Decoder = new TextDecoder("utf-8", { fatal: true })

/**
 * Parses an `Authorization` header for HTTP Basic Auth (RFC 7235 §2.1, RFC 7617 §2) and returns
 * `[username, password]`.
 *
 * Fails with `InvalidHeaderFormat` when the header does not match `scheme SP token68`, and with
 * `InvalidHeaderValue` when the scheme is not `Basic` or the credentials are not strict base64
 * (RFC 4648 §4, canonical padding) of UTF-8 `username:password`. Python decodes base64 leniently
 * (dropping characters outside the alphabet) and lets invalid UTF-8 escape as an exception.
 *
 * @since 0.1.0
 * @category parsing
 */
export const parseAuthorizationBasic = (
  header: string
): Result.Result<readonly [username: string, password: string], InvalidHeaderFormat | InvalidHeaderValue> => {
  const scheme = parseToken(header, 0, AUTHORIZATION)
  if (Result.isFailure(scheme)) return Result.fail(Result.failureOf(scheme))
  let pos = Result.successOf(scheme)[1]
  if (Result.successOf(scheme)[0].toLowerCase() !== "basic") {
    return Result.fail(
      new InvalidHeaderValue({ name: AUTHORIZATION, value: `unsupported scheme: ${Result.successOf(scheme)[0]}` })
    )
  }
  if (peekAhead(header, pos) !== " ") return formatError(AUTHORIZATION, "expected space after scheme", header, pos)
  pos += 1
  const end = matchAt(TOKEN68_RE, header, pos)
  if (end === -1) return formatError(AUTHORIZATION, "expected token68", header, pos)
  if (end < header.length) return formatError(AUTHORIZATION, "trailing data", header, end)

  const credentials = header.slice(pos, end)
  const bytes = BASE64_RE.test(credentials) ? Buffer.from(credentials, "base64") : undefined
  // Re-encoding catches non-zero padding bits, which a strict decoder refuses (RFC 4648 §3.5).
  if (bytes === undefined || bytes.toString("base64") !== credentials) {
    return Result.fail(new InvalidHeaderValue({ name: AUTHORIZATION, value: "expected base64-encoded credentials" }))
  }
  let userPass: string
  try {
    userPass = utf8Decoder.decode(bytes)
  } catch {
    // RFC 7617 §2.1: we announce charset="UTF-8" in the challenge.
    return Result.fail(new InvalidHeaderValue({ name: AUTHORIZATION, value: "expected UTF-8-encoded credentials" }))
  }
  const colon = userPass.indexOf(":")
  if (colon === -1) {
    return Result.fail(new InvalidHeaderValue({ name: AUTHORIZATION, value: "expected username:password credentials" }))
  }
  return Result.succeed([userPass.slice(0, colon), userPass.slice(colon + 1)])
}

/**
 * Builds an `Authorization` header for HTTP Basic Auth (RFC 7617 §2); the reverse of
 * `parseAuthorizationBasic`. Credentials are encoded as UTF-8 (RFC 7617 §2.1).
 *
 * Throws when `username` contains `:`, which RFC 7617 §2 forbids: a bug in the caller
 * (`parseUri` already refuses such user info).
 *
 * @since 0.1.0
 * @category formatting
 */
export const buildAuthorizationBasic = (username: string, password: string): string => {
  if (username.includes(":")) throw new TypeError("username cannot contain a colon (RFC 7617 §2)")
  return `Basic ${Buffer.from(`${username}:${password}`, "utf8").toString("base64")}`
}
