/**
 * Parsing and validation of WebSocket URIs (RFC 6455 §3), mirroring Python `websockets.uri`.
 *
 * A small hand-written RFC 3986 parser rather than the WHATWG `URL` class: `URL` silently
 * normalises (drops default ports, treats `\` as `/` for the special `ws` scheme, rewrites IPv4
 * shorthands, encodes user info), while a WebSocket client needs the exact host for the `Host`
 * header and the TLS handshake and the exact resource name for the request line.
 *
 * @since 0.1.0
 */

import { isIPv6 } from "node:net"
import { domainToASCII } from "node:url"
import { InvalidURI } from "./Errors.js"
import * as Result from "./internal/result.js"

/**
 * A parsed WebSocket URI.
 * @since 0.1.0
 * @category models
 */
export interface WebSocketURI {
  /** `true` for `wss`, `false` for `ws`. */
  readonly secure: boolean
  /** Lower-cased host name (punycode for IDNs), IPv4 address, or IPv6 literal without brackets. */
  readonly host: string
  /** Always set, even when it is the default (80 for `ws`, 443 for `wss`). */
  readonly port: number
  /** Path and query, for the request line: `"/"` when the path is empty, `"?query"` when there is a query. */
  readonly resourceName: string
  /** Percent-decoded `[username, password]` from the URI, for HTTP Basic Auth. */
  readonly userInfo: readonly [username: string, password: string] | undefined
}

/**
 * Default port of `ws` URIs (RFC 6455 §3).
 * @since 0.1.0
 * @category constants
 */
export const DEFAULT_PORT = 80

/**
 * Default port of `wss` URIs (RFC 6455 §3).
 * @since 0.1.0
 * @category constants
 */
export const DEFAULT_SECURE_PORT = 443

/** Largest TCP port number. */
const MAX_PORT = 65535

/** RFC 3986 §3.1: `scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." )`, followed by ":". */
const SCHEME_RE = /^([A-Za-z][A-Za-z0-9+.-]*):/
/** WHATWG URL (and Python's `urlsplit`) remove ASCII tabs and newlines anywhere. */
const TAB_OR_NEWLINE_RE = /[\t\n\r]/g
/** In a `u` regex a surrogate class matches only unpaired surrogates, which UTF-8 cannot encode. */
const LONE_SURROGATE_RE = /[\uD800-\uDFFF]/u
/** RFC 3986 §3.2.2 `reg-name` (unreserved / sub-delims), also covering IPv4 addresses; pct-encoded is refused. */
const REG_NAME_RE = /^[A-Za-z0-9\-._~!$&'()*+,;=]+$/
/** Characters of an IPv6 address; zone identifiers (RFC 6874) are not supported. */
const IPV6_CHARS_RE = /^[0-9A-Fa-f:.]+$/
const DIGITS_RE = /^[0-9]+$/

/** Strips leading and trailing C0 controls and spaces, like WHATWG URL (Python strips leading ones only). */
const trimC0OrSpace = (s: string): string => {
  let start = 0
  let end = s.length
  while (start < end && s.charCodeAt(start) <= 0x20) start++
  while (end > start && s.charCodeAt(end - 1) <= 0x20) end--
  return s.slice(start, end)
}

const isAscii = (s: string): boolean => {
  for (let i = 0; i < s.length; i++) if (s.charCodeAt(i) > 0x7f) return false
  return true
}

const invalid = (uri: string, detail: string) => Result.fail(new InvalidURI({ uri, detail }))

// ---------------------------------------------------------------------------
// Percent-encoding
// ---------------------------------------------------------------------------

/**
 * Characters that `quote` leaves alone: RFC 3986 unreserved characters plus the `safe` set that
 * Python's `parse_uri` passes to `urllib.parse.quote` (`!#$%&'()*+,/:;=?@[]~`). `%` is safe so
 * that sequences which are already percent-encoded stay as they are.
 */
const QUOTE_SAFE = (() => {
  const safe = new Uint8Array(128)
  const chars = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~!#$%&'()*+,/:;=?@[]"
  for (let i = 0; i < chars.length; i++) safe[chars.charCodeAt(i)] = 1
  return safe
})()

const HEX = "0123456789ABCDEF"
const utf8Encoder = new TextEncoder()

/**
 * Percent-encodes (as UTF-8) every character outside `QUOTE_SAFE`, like Python's
 * `urllib.parse.quote(s, safe="!#$%&'()*+,/:;=?@[]~")`.
 *
 * Python quotes only IRIs (URIs with non-ASCII characters) and passes ASCII URIs through. We
 * always quote, which changes only ASCII characters that RFC 3986 forbids in a URI anyway (space,
 * `"`, `<`, `>`, `\`, `^`, `` ` ``, `{`, `|`, `}`, controls): left raw, they would corrupt the
 * request line of the opening handshake (RFC 7230 §3.1.1).
 */
const quote = (s: string): string => {
  let out = ""
  let start = 0
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i)
    if (c < 128 && QUOTE_SAFE[c] === 1) continue
    out += s.slice(start, i)
    // Take the whole code point so that surrogate pairs encode as one 4-byte UTF-8 sequence.
    const cp = s.codePointAt(i)!
    const ch = String.fromCodePoint(cp)
    for (const byte of utf8Encoder.encode(ch)) out += `%${HEX[byte >> 4]}${HEX[byte & 15]}`
    i += ch.length - 1
    start = i + 1
  }
  return start === 0 ? s : out + s.slice(start)
}

const isHexDigit = (c: number): boolean => (c >= 48 && c <= 57) || (c >= 65 && c <= 70) || (c >= 97 && c <= 102)

/**
 * Percent-decodes `s` as UTF-8, leaving a `%` that does not start a `%XX` sequence as is (like
 * Python's `unquote`). Returns `undefined` when the decoded bytes are not valid UTF-8.
 */
const unquote = (s: string): string | undefined => {
  if (!s.includes("%")) return s
  const bytes: Array<number> = []
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i)
    if (c === 37 && i + 2 < s.length && isHexDigit(s.charCodeAt(i + 1)) && isHexDigit(s.charCodeAt(i + 2))) {
      bytes.push(Number.parseInt(s.slice(i + 1, i + 3), 16))
      i += 2
    } else {
      const cp = s.codePointAt(i)!
      const ch = String.fromCodePoint(cp)
      for (const byte of utf8Encoder.encode(ch)) bytes.push(byte)
      i += ch.length - 1
    }
  }
  try {
    return new TextDecoder("utf-8", { fatal: true }).decode(Uint8Array.from(bytes))
  } catch {
    return undefined
  }
}

/** Percent-encodes user info so that `formatUri` output parses back to the same credentials. */
const quoteUserInfo = (s: string): string =>
  Array.from(utf8Encoder.encode(s), (byte) =>
    (byte >= 48 && byte <= 57) ||
    (byte >= 65 && byte <= 90) ||
    (byte >= 97 && byte <= 122) ||
    "-._~".includes(String.fromCharCode(byte))
      ? String.fromCharCode(byte)
      : `%${HEX[byte >> 4]}${HEX[byte & 15]}`
  ).join("")

// ---------------------------------------------------------------------------
// Parsing
// ---------------------------------------------------------------------------

/**
 * Parses and validates a WebSocket URI (RFC 6455 §3):
 * `ws-URI = "ws:" "//" host [ ":" port ] path [ "?" query ]`, and likewise for `wss`.
 *
 * - The scheme is case-insensitive; only `ws` and `wss` are accepted.
 * - The host is required; host names are lower-cased, non-ASCII host names are converted to
 *   punycode (IDNA), IPv6 literals lose their brackets.
 * - The port must be in 1..65535; an empty or missing port means the default one.
 * - A fragment is refused, even an empty one (RFC 6455 §3: fragment identifiers "MUST NOT be
 *   used"; Python only refuses non-empty fragments, we follow the RFC).
 * - User info must have the form `user:password` (a username alone makes no sense for HTTP
 *   Basic Auth); both parts are percent-decoded, and the username cannot contain `:` (RFC 7617 §2).
 * - Path and query are percent-encoded as UTF-8 where needed; existing `%XX` sequences stay.
 *
 * Never throws: every failure is an `InvalidURI` whose `detail` says what is wrong.
 *
 * @since 0.1.0
 * @category parsing
 */
export const parseUri = (uri: string): Result.Result<WebSocketURI, InvalidURI> => {
  if (LONE_SURROGATE_RE.test(uri)) return invalid(uri, "URI contains an unpaired surrogate")
  const input = trimC0OrSpace(uri).replace(TAB_OR_NEWLINE_RE, "")

  const schemeMatch = SCHEME_RE.exec(input)
  const scheme = schemeMatch?.[1]?.toLowerCase()
  if (scheme !== "ws" && scheme !== "wss") return invalid(uri, "scheme isn't ws or wss")
  const secure = scheme === "wss"
  let rest = input.slice(scheme.length + 1)

  // RFC 3986 §3.5: the fragment starts at the first "#".
  const hashIndex = rest.indexOf("#")
  if (hashIndex !== -1) return invalid(uri, "fragment identifier is meaningless")

  if (!rest.startsWith("//")) return invalid(uri, "hostname isn't provided")
  rest = rest.slice(2)

  // RFC 3986 §3.2: the authority ends at the next "/", "?" or end of input.
  let authorityEnd = rest.length
  for (let i = 0; i < rest.length; i++) {
    const c = rest.charCodeAt(i)
    if (c === 47 || c === 63) {
      authorityEnd = i
      break
    }
  }
  const authority = rest.slice(0, authorityEnd)
  const pathAndQuery = rest.slice(authorityEnd)
  const queryIndex = pathAndQuery.indexOf("?")
  const path = queryIndex === -1 ? pathAndQuery : pathAndQuery.slice(0, queryIndex)
  const query = queryIndex === -1 ? "" : pathAndQuery.slice(queryIndex + 1)

  // RFC 3986 §3.2.1: user info ends at the last "@" (as in Python's `urlsplit`).
  const atIndex = authority.lastIndexOf("@")
  let userInfo: readonly [string, string] | undefined
  if (atIndex !== -1) {
    const rawUserInfo = authority.slice(0, atIndex)
    const colonIndex = rawUserInfo.indexOf(":")
    if (colonIndex === -1) return invalid(uri, "username provided without password")
    const username = unquote(rawUserInfo.slice(0, colonIndex))
    const password = unquote(rawUserInfo.slice(colonIndex + 1))
    if (username === undefined || password === undefined) return invalid(uri, "user info isn't valid UTF-8")
    // RFC 7617 §2: the user-id cannot contain a colon, else Basic credentials are ambiguous.
    if (username.includes(":")) return invalid(uri, "username contains a colon")
    userInfo = [username, password]
  }
  const hostPort = authority.slice(atIndex + 1)

  let host: string
  let portText: string | undefined
  if (hostPort.startsWith("[")) {
    // RFC 3986 §3.2.2: IP-literal = "[" IPv6address "]".
    const close = hostPort.indexOf("]")
    if (close === -1) return invalid(uri, "invalid IPv6 address")
    const address = hostPort.slice(1, close)
    if (!IPV6_CHARS_RE.test(address) || !isIPv6(address)) return invalid(uri, "invalid IPv6 address")
    host = address.toLowerCase()
    const after = hostPort.slice(close + 1)
    if (after !== "") {
      if (!after.startsWith(":")) return invalid(uri, "invalid host")
      portText = after.slice(1)
    }
  } else {
    const colonIndex = hostPort.indexOf(":")
    const name = colonIndex === -1 ? hostPort : hostPort.slice(0, colonIndex)
    if (colonIndex !== -1) portText = hostPort.slice(colonIndex + 1)
    if (name === "") return invalid(uri, "hostname isn't provided")
    if (!isAscii(name)) {
      // An IRI host: convert it to an A-label (RFC 5891); domainToASCII returns "" on failure.
      host = domainToASCII(name)
      if (host === "") return invalid(uri, "invalid internationalized domain name")
    } else {
      host = name.toLowerCase()
    }
    if (!REG_NAME_RE.test(host)) return invalid(uri, "invalid host")
  }

  let port = secure ? DEFAULT_SECURE_PORT : DEFAULT_PORT
  // RFC 3986 §3.2.3: an empty port is the same as no port.
  if (portText !== undefined && portText !== "") {
    if (!DIGITS_RE.test(portText)) return invalid(uri, "port isn't a valid integer")
    const value = Number.parseInt(portText, 10)
    if (value < 1 || value > MAX_PORT) return invalid(uri, "port is out of range")
    port = value
  }

  const quotedPath = quote(path)
  const quotedQuery = quote(query)
  // As in Python, an empty query ("ws://host/?") is dropped from the resource name.
  const resourceName = (quotedPath === "" ? "/" : quotedPath) + (quotedQuery === "" ? "" : `?${quotedQuery}`)

  return Result.succeed({ secure, host, port, resourceName, userInfo })
}

// ---------------------------------------------------------------------------
// Formatting
// ---------------------------------------------------------------------------

const isDefaultPort = (wsuri: WebSocketURI): boolean =>
  wsuri.port === (wsuri.secure ? DEFAULT_SECURE_PORT : DEFAULT_PORT)

/**
 * The value of the `Host` header for a URI (RFC 7230 §5.4, RFC 6455 §4.1 item 4): IPv6
 * addresses in brackets (RFC 3986 §3.2.2), `:port` only when it is not the default one.
 * Python's `build_host`.
 *
 * @since 0.1.0
 * @category formatting
 */
export const hostHeader = (wsuri: WebSocketURI): string => {
  // A reg-name or IPv4 address cannot contain ":", so a colon means an IPv6 address.
  const host = wsuri.host.includes(":") ? `[${wsuri.host}]` : wsuri.host
  return isDefaultPort(wsuri) ? host : `${host}:${wsuri.port}`
}

/**
 * Rebuilds a URI string: `ws://host[:port]/resource`, with the port only when it is not the
 * default one. User info is left out unless `includeUserInfo` is set, so that the result can
 * be logged without leaking credentials; with it, `parseUri(formatUri(u, { includeUserInfo: true }))`
 * gives back `u`.
 *
 * @since 0.1.0
 * @category formatting
 */
export const formatUri = (wsuri: WebSocketURI, options?: { readonly includeUserInfo?: boolean }): string => {
  const userInfo =
    options?.includeUserInfo === true && wsuri.userInfo !== undefined
      ? `${quoteUserInfo(wsuri.userInfo[0])}:${quoteUserInfo(wsuri.userInfo[1])}@`
      : ""
  return `${wsuri.secure ? "wss" : "ws"}://${userInfo}${hostHeader(wsuri)}${wsuri.resourceName}`
}
