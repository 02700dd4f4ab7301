/**
 * Minimal HTTP/1.1 for the opening handshake, mirroring Python `websockets.http11`: a `Request`
 * (a `GET`, or any method for the server's request hook to answer) and a `Response`, each with
 * `serialize`, and incremental parsers that take chunks of any size, never throw, and enforce the
 * named security limits while bytes arrive.
 *
 * Bytes are decoded as latin1 (one byte, one char) so that any input decodes; `serialize` encodes
 * latin1 back, so parse → serialize is the identity on the wire.
 *
 * @since 0.1.0
 */

import { InvalidHeader, InvalidMessage, SecurityError } from "./Errors.js"
import { Headers, type HeadersLike } from "./Headers.js"
import * as Result from "./internal/result.js"

// ---------------------------------------------------------------------------
// Limits
// ---------------------------------------------------------------------------

/**
 * Maximum number of header lines in a request or response (Python's `MAX_NUM_HEADERS`).
 * @since 0.1.0
 * @category constants
 */
export const MAX_NUM_HEADERS = 128

/**
 * Maximum length of one line of the head, CRLF included (Python's `MAX_LINE_LENGTH`, 8 KiB).
 * @since 0.1.0
 * @category constants
 */
export const MAX_LINE_LENGTH = 8192

/**
 * Default maximum size of a request or response head: start line, header lines and the empty line
 * that ends them, CRLFs included. 16 KiB is the default of Node's `http` (`--max-http-header-size`,
 * `maxHeaderSize`), which browsers and proxies are used to. Python has no total cap, only
 * {@link MAX_NUM_HEADERS} lines of {@link MAX_LINE_LENGTH} bytes (1 MiB); this cap is what keeps a
 * pending handshake small.
 * @since 0.1.0
 * @category constants
 */
export const MAX_HEADER_SIZE = 16_384

/**
 * Options of the head parsers.
 * @since 0.1.0
 * @category models
 */
export interface HeadParserOptions {
  /**
   * Maximum size of the head in bytes (see {@link MAX_HEADER_SIZE}, the default): a head that has not
   * ended within this many bytes fails with `SecurityError` as soon as they arrived, and the parser
   * never buffers more of it.
   */
  readonly maxHeaderSize?: number | undefined
}

/**
 * Maximum size of a response body (Python's `MAX_BODY_SIZE`, 1 MiB).
 * @since 0.1.0
 * @category constants
 */
export const MAX_BODY_SIZE = 1_048_576

// ---------------------------------------------------------------------------
// Messages
// ---------------------------------------------------------------------------

const EMPTY = new Uint8Array(0)

/** A plain `Uint8Array` view of a Buffer, so that callers never see Buffer-specific behavior. */
const view = (buffer: Buffer): Uint8Array => new Uint8Array(buffer.buffer, buffer.byteOffset, buffer.byteLength)

/** latin1 when every char fits in a byte (the parse/serialize identity), else UTF-8 as Python does. */
const encode = (text: string): Uint8Array =>
  // biome-ignore lint/suspicious/noControlCharactersInRegex: the whole latin1 range is the point
  view(/[^\u0000-\u00ff]/.test(text) ? Buffer.from(text, "utf8") : Buffer.from(text, "latin1"))

/**
 * Writes `text` at `at` one byte per char and returns where it ended; -1 when a char does not fit
 * in a byte (not latin1), or when `at` is already -1.
 */
const putLatin1 = (bytes: Uint8Array, at: number, text: string): number => {
  if (at < 0) return at
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i)
    if (code > 0xff) return -1
    bytes[at + i] = code
  }
  return at + text.length
}

const CRLF = "\r\n"
const COLON_SPACE = ": "

/**
 * A head (the start line of four parts, the header lines, the empty line) and its body, written
 * straight into one buffer: the same bytes as `encode` of the head's text followed by the body,
 * without the text itself (a string per line and the flattened whole, per handshake). `undefined`
 * when a char is not latin1, which `encode` sends as UTF-8.
 */
const serializeLatin1 = (
  a: string,
  b: string,
  c: string,
  d: string,
  headers: Headers,
  body: Uint8Array
): Uint8Array | undefined => {
  const items = headers.flatItems
  let length = a.length + b.length + c.length + d.length + 4 + body.byteLength
  for (let i = 0; i < items.length; i += 2) length += items[i]!.length + items[i + 1]!.length + 4
  const bytes = view(Buffer.allocUnsafe(length))
  let at = putLatin1(bytes, putLatin1(bytes, putLatin1(bytes, putLatin1(bytes, 0, a), b), c), d)
  if (at < 0) return undefined
  at = putLatin1(bytes, at, CRLF)
  for (let i = 0; i < items.length && at >= 0; i += 2) {
    at = putLatin1(
      bytes,
      putLatin1(bytes, putLatin1(bytes, putLatin1(bytes, at, items[i]!), COLON_SPACE), items[i + 1]!),
      CRLF
    )
  }
  if (at < 0) return undefined
  at = putLatin1(bytes, at, CRLF)
  bytes.set(body, at)
  return bytes
}

/**
 * An HTTP/1.1 `GET` request of the opening handshake. `path` is the raw request-target
 * (RFC 7230 §5.3), neither decoded nor validated.
 * @since 0.1.0
 * @category models
 */
export class Request {
  constructor(
    readonly path: string,
    readonly headers: Headers,
    /**
     * `GET` for a handshake. The server parses other methods too (a health check by `HEAD` or
     * `POST`) so that its request hook may answer them; it refuses them an upgrade with 405.
     */
    readonly method: string = "GET"
  ) {}

  /** `{method} {path} HTTP/1.1\r\n`, the header lines, and the empty line. */
  serialize(): Uint8Array {
    return (
      serializeLatin1(this.method, " ", this.path, " HTTP/1.1", this.headers, EMPTY) ??
      encode(`${this.method} ${this.path} HTTP/1.1\r\n${this.headers.serialize()}`)
    )
  }
}

/**
 * An HTTP/1.1 response: the 101 that completes the handshake, or a rejection with a body.
 * @since 0.1.0
 * @category models
 */
export class Response {
  constructor(
    readonly statusCode: number,
    readonly reasonPhrase: string,
    readonly headers: Headers,
    readonly body: Uint8Array = EMPTY
  ) {}

  /** Status line, header lines, empty line, then the body as is (no header is added). */
  serialize(): Uint8Array {
    const fast = serializeLatin1("HTTP/1.1 ", String(this.statusCode), " ", this.reasonPhrase, this.headers, this.body)
    if (fast !== undefined) return fast
    const head = encode(`HTTP/1.1 ${this.statusCode} ${this.reasonPhrase}\r\n${this.headers.serialize()}`)
    return this.body.byteLength === 0 ? head : view(Buffer.concat([head, this.body]))
  }
}

/** RFC 7230 §3.3.3: 1xx, 204 and 304 responses never have a body (websockets sends no HEAD). */
const hasNoBody = (status: number): boolean => (status >= 100 && status < 200) || status === 204 || status === 304

const REASON_PHRASES: Readonly<Record<number, string>> = {
  100: "Continue",
  101: "Switching Protocols",
  102: "Processing",
  103: "Early Hints",
  200: "OK",
  201: "Created",
  202: "Accepted",
  203: "Non-Authoritative Information",
  204: "No Content",
  205: "Reset Content",
  206: "Partial Content",
  207: "Multi-Status",
  208: "Already Reported",
  226: "IM Used",
  300: "Multiple Choices",
  301: "Moved Permanently",
  302: "Found",
  303: "See Other",
  304: "Not Modified",
  305: "Use Proxy",
  307: "Temporary Redirect",
  308: "Permanent Redirect",
  400: "Bad Request",
  401: "Unauthorized",
  402: "Payment Required",
  403: "Forbidden",
  404: "Not Found",
  405: "Method Not Allowed",
  406: "Not Acceptable",
  407: "Proxy Authentication Required",
  408: "Request Timeout",
  409: "Conflict",
  410: "Gone",
  411: "Length Required",
  412: "Precondition Failed",
  413: "Content Too Large",
  414: "URI Too Long",
  415: "Unsupported Media Type",
  416: "Range Not Satisfiable",
  417: "Expectation Failed",
  418: "I'm a Teapot",
  421: "Misdirected Request",
  422: "Unprocessable Content",
  423: "Locked",
  424: "Failed Dependency",
  425: "Too Early",
  426: "Upgrade Required",
  428: "Precondition Required",
  429: "Too Many Requests",
  431: "Request Header Fields Too Large",
  451: "Unavailable For Legal Reasons",
  500: "Internal Server Error",
  501: "Not Implemented",
  502: "Bad Gateway",
  503: "Service Unavailable",
  504: "Gateway Timeout",
  505: "HTTP Version Not Supported",
  506: "Variant Also Negotiates",
  507: "Insufficient Storage",
  508: "Loop Detected",
  510: "Not Extended",
  511: "Network Authentication Required"
}

/**
 * The standard reason phrase of a status code (IANA registry, as Python's `http.HTTPStatus`),
 * or `""` for an unregistered code (an empty reason phrase is valid, RFC 7230 §3.1.2).
 * @since 0.1.0
 * @category utils
 */
export const reasonPhrase = (status: number): string => REASON_PHRASES[status] ?? ""

/**
 * Builds a response with the standard reason phrase. A string body is encoded as UTF-8. For a
 * status that carries a body, `Content-Length` is added when absent, so that the client need not
 * read to EOF. `headers` is copied, never changed.
 * @since 0.1.0
 * @category constructors
 */
export const makeResponse = (status: number, headers?: HeadersLike, body?: Uint8Array | string): Response => {
  const copy = new Headers(headers)
  const bytes = body === undefined ? EMPTY : typeof body === "string" ? view(Buffer.from(body, "utf8")) : body
  if (!hasNoBody(status) && !copy.has("Content-Length")) copy.append("Content-Length", String(bytes.byteLength))
  return new Response(status, reasonPhrase(status), copy, bytes)
}

// ---------------------------------------------------------------------------
// Byte classes (RFC 7230 §3.2, §3.2.6)
// ---------------------------------------------------------------------------

const CR = 0x0d
const LF = 0x0a
const SP = 0x20
const HTAB = 0x09
const COLON = 0x3a

/** tchar = "!" / "#" / "$" / "%" / "&" / "'" / "*" / "+" / "-" / "." / "^" / "_" / "`" / "|" / "~" / DIGIT / ALPHA */
const TCHAR: Uint8Array = (() => {
  const table = new Uint8Array(256)
  for (const c of "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ") {
    table[c.charCodeAt(0)] = 1
  }
  return table
})()

/** field-vchar / SP / HTAB: VCHAR (0x21-0x7E), obs-text (0x80-0xFF), SP, HTAB. No CTL, no DEL. */
const isFieldByte = (b: number): boolean => b === HTAB || (b >= SP && b !== 0x7f)

const isOws = (b: number | undefined): boolean => b === SP || b === HTAB

/** token = 1*tchar (RFC 9110 §5.6.2), as a method is. */
const isToken = (text: string): boolean => {
  if (text.length === 0) return false
  for (let i = 0; i < text.length; i++) if (TCHAR[text.charCodeAt(i)] !== 1) return false
  return true
}

// ---------------------------------------------------------------------------
// Incremental parser
// ---------------------------------------------------------------------------

type HeadError = InvalidMessage | SecurityError | InvalidHeader

const invalid = (detail: string) => Result.fail(new InvalidMessage({ detail }))
const insecure = (detail: string) => Result.fail(new SecurityError({ detail }))

/** Bounded, quoted excerpt of raw input for error messages. */
const quote = (text: string): string => JSON.stringify(text.length > 200 ? `${text.slice(0, 200)}...` : text)

/** Parser states, as small integers. */
const Phase = {
  StartLine: 0,
  HeaderLines: 1,
  BodyLength: 2,
  BodyToEof: 3,
  Done: 4,
  Failed: 5,
  /** Chunked body (RFC 9112 §7.1): a chunk-size line, its data, the CRLF after it, the trailer. */
  ChunkSize: 6,
  ChunkData: 7,
  ChunkEnd: 8,
  Trailer: 9
} as const
type Phase = (typeof Phase)[keyof typeof Phase]

/** Splits a start line (without CRLF) as Python's `line.split(b" ", 2)`; `undefined` unless three parts. */
const splitStartLine = (line: string): readonly [string, string, string] | undefined => {
  const first = line.indexOf(" ")
  if (first === -1) return undefined
  const second = line.indexOf(" ", first + 1)
  if (second === -1) return undefined
  return [common(line.slice(0, first)), common(line.slice(first + 1, second)), common(line.slice(second + 1))]
}

/**
 * The texts that most opening handshakes repeat (methods, versions, header names and values), to
 * be shared by every head that has them: a connection keeps its request and response for its life,
 * and a copy of each of these per connection cost about 250 bytes more.
 */
const COMMON_TEXTS = new Map<string, string>(
  [
    "GET",
    "/",
    "HTTP/1.1",
    "Switching Protocols",
    "101",
    "Host",
    "host",
    "Upgrade",
    "upgrade",
    "websocket",
    "WebSocket",
    "Connection",
    "connection",
    "Keep-Alive, Upgrade",
    "keep-alive, Upgrade",
    "Sec-WebSocket-Key",
    "sec-websocket-key",
    "Sec-WebSocket-Version",
    "sec-websocket-version",
    "13",
    "Sec-WebSocket-Extensions",
    "sec-websocket-extensions",
    "permessage-deflate",
    "permessage-deflate; client_max_window_bits",
    "Sec-WebSocket-Protocol",
    "sec-websocket-protocol",
    "Sec-WebSocket-Accept",
    "Origin",
    "origin",
    "User-Agent",
    "user-agent",
    "Accept-Encoding",
    "gzip, deflate, br",
    "gzip, deflate, br, zstd",
    "Accept-Language",
    "Cache-Control",
    "Pragma",
    "no-cache",
    "Date",
    "Server"
  ].map((text) => [text, text])
)

/** `text`, or the equal string shared by every head (`COMMON_TEXTS`). */
const common = (text: string): string => COMMON_TEXTS.get(text) ?? text

/** `COMMON_TEXTS` by length: what bytes of that length may spell. */
const COMMON_BY_LENGTH: ReadonlyArray<ReadonlyArray<string> | undefined> = (() => {
  const byLength: Array<Array<string> | undefined> = []
  for (const text of COMMON_TEXTS.keys()) {
    const group = byLength[text.length]
    if (group === undefined) byLength[text.length] = [text]
    else group.push(text)
  }
  return byLength
})()

/**
 * The common text that `buf[from, to)` spells (latin1), or `undefined`: a header line of a usual
 * name or value then makes no string at all (the text sliced only to be replaced by the shared one
 * was most of what parsing a request left behind).
 */
const commonAt = (buf: Uint8Array, from: number, to: number): string | undefined => {
  const candidates = COMMON_BY_LENGTH[to - from]
  if (candidates === undefined) return undefined
  for (let c = 0; c < candidates.length; c++) {
    const text = candidates[c]!
    let i = 0
    while (i < text.length && buf[from + i] === text.charCodeAt(i)) i++
    if (i === text.length) return text
  }
  return undefined
}

/** The buffer of a parser that completed (nothing is ever written to it). */
const NO_BYTES = Buffer.alloc(0)

/**
 * The bounds of the header lines a parser parsed during one `feed` (four numbers a line), shared by
 * every parser (a feed runs to its end before another starts): their strings are made only once
 * the head ends, or the feed does without it going over its limit. A read that takes a head over
 * its limit then makes no string of its lines (two of 8 KB a connection, in a flood of such heads).
 */
const PARSED_LINES: Array<number> = []
let parsedLinesLength = 0
let parsedLinesOwner: object | undefined

/** Capacity of a parser's first buffer. */
const MIN_CAPACITY = 256

/** Nothing to report yet: more bytes are needed. */
const NEED_MORE = Result.succeed(undefined)

const inHead = (phase: Phase): boolean => phase === Phase.StartLine || phase === Phase.HeaderLines

/**
 * Shared machinery of `RequestParser` and `ResponseParser`: one growable buffer holding the
 * unconsumed bytes, consumed line by line. `scan` remembers where the search for LF stopped, so
 * feeding one byte at a time stays linear.
 */
abstract class HeadParser<M> {
  private readonly maxHeaderSize: number
  /** Bytes received while the head was incomplete: at most `maxHeaderSize`. */
  private headBytes = 0
  /** Made at the first bytes that must wait for more (see `keepPending`). */
  private buf: Buffer = NO_BYTES
  /** First unconsumed byte. */
  protected start = 0
  /** End of received bytes. */
  protected end = 0
  /** Resume the LF search here: bytes in [start, scan) hold no LF. */
  private scan = 0
  /** Start of the line `nextLine` returned last. */
  protected lineStart = 0
  protected phase: Phase = Phase.StartLine
  protected headers = new Headers()
  private headerCount = 0
  /** Length of the body to read in `Phase.BodyLength`. */
  protected bodyLength = 0
  /** Chunked body: bytes left in the current chunk, the chunks' data so far and its size. */
  private chunkLeft = 0
  private chunks: Array<Uint8Array> = []
  private chunkedSize = 0
  private trailerLines = 0
  private message: M | undefined
  private error: HeadError | undefined
  private eof = false
  private restBytes: Uint8Array = EMPTY

  constructor(options: HeadParserOptions = {}) {
    const max = options.maxHeaderSize ?? MAX_HEADER_SIZE
    // Fail closed: a negative or NaN limit lets no head through rather than disabling the limit.
    this.maxHeaderSize = max >= 0 ? max : 0
  }

  /** Bytes received after the end of the message, valid once the message was returned. */
  get rest(): Uint8Array {
    return this.restBytes
  }

  /** Feeds the next chunk; `Right(undefined)` means more bytes are needed. */
  feed(chunk: Uint8Array): Result.Result<M | undefined, HeadError> {
    if (this.phase === Phase.Failed) return Result.fail(this.error!)
    if (this.phase === Phase.Done) {
      // Late bytes belong to whatever follows the message (WebSocket frames): keep them in `rest`.
      if (!this.eof && chunk.byteLength > 0) this.restBytes = view(Buffer.concat([this.restBytes, chunk]))
      return Result.succeed(this.message)
    }
    if (!inHead(this.phase)) {
      this.append(chunk)
      return this.run()
    }
    // Only the bytes that can still belong to the head are buffered: a chunk may also carry what
    // follows the head (a body, or the first WebSocket frames after a 101), fed once the head ended.
    const room = this.maxHeaderSize - this.headBytes
    const head = chunk.byteLength > room ? chunk.subarray(0, room) : chunk
    this.headBytes += head.byteLength
    // With no byte pending, the lines that lie whole in the chunk are parsed where they are: only
    // what is left once more is needed is copied (see `keepPending`). A head read at once is then
    // never copied, and one over a limit fails before any copy or string is made: a read keeps
    // nothing alive after `feed`, and the caller may free it at once.
    const own = this.start === this.end ? this.borrow(head) : undefined
    if (own === undefined) this.append(head)
    const result = this.run()
    if (inHead(this.phase)) {
      // `maxHeaderSize` bytes arrived and the head has not ended: it is over the limit.
      if (this.headBytes >= this.maxHeaderSize) {
        return this.fail(new SecurityError({ detail: `HTTP head too large: over ${this.maxHeaderSize} bytes` }))
      }
      // The header lines parsed become strings before the bytes they lie in are dropped or moved.
      this.keepHeaderLines()
    }
    if (own !== undefined) this.keepPending(own)
    if (Result.isFailure(result) || inHead(this.phase)) return result
    return head === chunk ? result : this.feed(chunk.subarray(room))
  }

  /** Signals the end of the stream: completes a body that runs to EOF, else fails if incomplete. */
  feedEof(): Result.Result<M, HeadError> {
    if (this.phase === Phase.Failed) return Result.fail(this.error!)
    if (this.phase === Phase.Done) {
      this.eof = true
      return Result.succeed(this.message!)
    }
    this.eof = true
    switch (this.phase) {
      case Phase.StartLine:
        return this.fail(new InvalidMessage({ detail: `connection closed while reading HTTP ${this.startLineName}` }))
      case Phase.HeaderLines:
        return this.fail(new InvalidMessage({ detail: "connection closed while reading HTTP headers" }))
      case Phase.BodyLength:
        return this.fail(
          new InvalidMessage({
            detail: `connection closed while reading HTTP body: got ${this.end - this.start} of ${this.bodyLength} bytes`
          })
        )
      case Phase.ChunkSize:
      case Phase.ChunkData:
      case Phase.ChunkEnd:
      case Phase.Trailer:
        return this.fail(
          new InvalidMessage({
            detail: `connection closed while reading chunked HTTP body: got ${this.chunkedSize} bytes`
          })
        )
      default: {
        const body = new Uint8Array(this.buf.subarray(this.start, this.end))
        this.start = this.end
        return this.complete(this.finish(body))
      }
    }
  }

  /** "request line" or "status line", for error messages. */
  protected abstract readonly startLineName: string
  /** Parses the start line (without CRLF); stores what it needs for `finish`. */
  protected abstract parseStartLine(line: string): Result.Result<void, HeadError>
  /** Called after the empty line; sets `phase` to Done or a body phase. */
  protected abstract endOfHead(): Result.Result<void, HeadError>
  /** Builds the message once the body (empty without one) is known. */
  protected abstract finish(body: Uint8Array): M
  /** RFC 7230 §3.5: a server SHOULD ignore at least one empty line before the request-line. */
  protected readonly skipsLeadingEmptyLine: boolean = false
  private skippedEmptyLine = false

  private fail(error: HeadError): Result.Result<never, HeadError> {
    this.phase = Phase.Failed
    this.error = error
    this.buf = NO_BYTES
    this.start = this.end = this.scan = 0
    if (parsedLinesOwner === this) parsedLinesOwner = undefined
    return Result.fail(error)
  }

  private complete(message: M): Result.Result<M, never> {
    this.phase = Phase.Done
    this.message = message
    this.restBytes = this.start < this.end ? new Uint8Array(this.buf.subarray(this.start, this.end)) : EMPTY
    // The buffer may be up to 1 MiB: drop it, only `rest` is kept.
    this.buf = NO_BYTES
    this.start = this.end = this.scan = 0
    if (parsedLinesOwner === this) parsedLinesOwner = undefined
    return Result.succeed(message)
  }

  /** Parses `bytes` where they lie (nothing is pending); returns the parser's own buffer. */
  private borrow(bytes: Uint8Array): Buffer {
    const own = this.buf
    this.buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)
    this.start = this.scan = 0
    this.end = bytes.byteLength
    return own
  }

  /** After parsing borrowed bytes: copies what is left of them into the parser's own buffer. */
  private keepPending(own: Buffer): void {
    // Done or failed: `complete` and `fail` dropped the bytes, having copied what they keep.
    if (this.phase === Phase.Done || this.phase === Phase.Failed) return
    const left = this.buf.subarray(this.start, this.end)
    const scan = this.scan - this.start
    this.buf = own
    this.start = this.end = 0
    this.append(left)
    this.scan = scan
  }

  /** Makes the strings of the header lines parsed since the last call (see `PARSED_LINES`). */
  private keepHeaderLines(): void {
    if (parsedLinesOwner === this) {
      for (let i = 0; i < parsedLinesLength; i += 4) {
        this.headers.append(
          this.sharedText(PARSED_LINES[i]!, PARSED_LINES[i + 1]!),
          this.sharedText(PARSED_LINES[i + 2]!, PARSED_LINES[i + 3]!)
        )
      }
    }
    parsedLinesOwner = undefined
    parsedLinesLength = 0
  }

  /** Records a valid header line, its name [from, nameEnd) and value [valueStart, valueEnd). */
  private recordHeaderLine(from: number, nameEnd: number, valueStart: number, valueEnd: number): void {
    if (parsedLinesOwner !== this) {
      parsedLinesOwner = this
      parsedLinesLength = 0
    }
    PARSED_LINES[parsedLinesLength] = from
    PARSED_LINES[parsedLinesLength + 1] = nameEnd
    PARSED_LINES[parsedLinesLength + 2] = valueStart
    PARSED_LINES[parsedLinesLength + 3] = valueEnd
    parsedLinesLength += 4
  }

  /**
   * Appends with amortized O(1) cost: compacts consumed bytes or doubles the capacity. While in the
   * head, the capacity never exceeds `maxHeaderSize` (at most that many head bytes are fed).
   */
  private append(chunk: Uint8Array): void {
    const n = chunk.byteLength
    if (this.end + n > this.buf.length) {
      const live = this.end - this.start
      if (live + n <= this.buf.length >>> 1) {
        this.buf.copyWithin(0, this.start, this.end)
      } else {
        const wanted = Math.max(this.buf.length * 2, MIN_CAPACITY)
        const doubled = inHead(this.phase) ? Math.min(wanted, this.maxHeaderSize) : wanted
        const grown = Buffer.allocUnsafe(Math.max(doubled, live + n))
        this.buf.copy(grown, 0, this.start, this.end)
        this.buf = grown
      }
      this.scan -= this.start
      this.end = live
      this.start = 0
    }
    this.buf.set(chunk, this.end)
    this.end += n
  }

  private run(): Result.Result<M | undefined, HeadError> {
    while (this.phase === Phase.StartLine || this.phase === Phase.HeaderLines) {
      const to = this.nextLine()
      if (to === undefined) return NEED_MORE
      if (typeof to !== "number") return this.fail(to)
      const from = this.lineStart
      const result = this.phase === Phase.StartLine ? this.onStartLine(from, to) : this.onHeaderLine(from, to)
      if (Result.isFailure(result)) return this.fail(Result.failureOf(result))
    }
    if (this.phase === Phase.BodyLength) {
      if (this.end - this.start < this.bodyLength) return NEED_MORE
      const body = new Uint8Array(this.buf.subarray(this.start, this.start + this.bodyLength))
      this.start += this.bodyLength
      return this.complete(this.finish(body))
    }
    if (this.phase === Phase.BodyToEof) {
      // Python's read_to_eof: fail as soon as the limit is exceeded, not at EOF.
      if (this.end - this.start > MAX_BODY_SIZE) {
        return this.fail(new SecurityError({ detail: `body too large: over ${MAX_BODY_SIZE} bytes` }))
      }
      return NEED_MORE
    }
    if (this.phase >= Phase.ChunkSize) return this.runChunked()
    return this.complete(this.finish(EMPTY))
  }

  /** Starts reading a chunked body after the head (RFC 9112 §7.1). */
  protected readChunked(): void {
    this.phase = Phase.ChunkSize
  }

  /**
   * Reads a chunked body as Python's `read_body` does: each chunk's data is taken out of the buffer
   * as it arrives, so the buffer holds at most a line and one read; the data itself counts against
   * {@link MAX_BODY_SIZE} as soon as a chunk-size line announces it; trailer lines are read and
   * dropped, at most {@link MAX_NUM_HEADERS}.
   */
  private runChunked(): Result.Result<M | undefined, HeadError> {
    for (;;) {
      switch (this.phase) {
        case Phase.ChunkSize: {
          const to = this.nextLine()
          if (to === undefined) return NEED_MORE
          if (typeof to !== "number") return this.fail(to)
          const line = this.text(this.lineStart, to)
          // chunk-size [ BWS ";" chunk-ext ]: extensions are ignored.
          const semicolon = line.indexOf(";")
          const digits = (semicolon === -1 ? line : line.slice(0, semicolon)).replace(/[ \t]+$/, "")
          if (!/^[0-9a-fA-F]+$/.test(digits))
            return this.fail(new InvalidMessage({ detail: `invalid chunk size: ${quote(line)}` }))
          const significant = digits.replace(/^0+/, "")
          // Eight hex digits exceed MAX_BODY_SIZE already; parsing longer ones would lose precision.
          const size = significant.length > 8 ? Number.POSITIVE_INFINITY : Number.parseInt(significant || "0", 16)
          if (size === 0) {
            this.phase = Phase.Trailer
          } else if (this.chunkedSize + size > MAX_BODY_SIZE) {
            return this.fail(
              new SecurityError({
                detail: `body too large: chunk of ${significant.length > 8 ? `0x${significant}` : size} bytes after ${this.chunkedSize} bytes`
              })
            )
          } else {
            this.chunkLeft = size
            this.chunkedSize += size
            this.phase = Phase.ChunkData
          }
          break
        }
        case Phase.ChunkData: {
          const take = Math.min(this.chunkLeft, this.end - this.start)
          if (take === 0) return NEED_MORE
          this.chunks.push(new Uint8Array(this.buf.subarray(this.start, this.start + take)))
          this.start = this.scan = this.start + take
          this.chunkLeft -= take
          if (this.chunkLeft === 0) this.phase = Phase.ChunkEnd
          break
        }
        case Phase.ChunkEnd: {
          if (this.end - this.start < 2) return NEED_MORE
          if (this.buf[this.start] !== CR || this.buf[this.start + 1] !== LF) {
            return this.fail(new InvalidMessage({ detail: "chunk without CRLF" }))
          }
          this.start = this.scan = this.start + 2
          this.phase = Phase.ChunkSize
          break
        }
        default: {
          const to = this.nextLine()
          if (to === undefined) return NEED_MORE
          if (typeof to !== "number") return this.fail(to)
          if (this.lineStart === to) {
            const body = this.chunks.length === 1 ? this.chunks[0]! : view(Buffer.concat(this.chunks))
            this.chunks = []
            return this.complete(this.finish(body))
          }
          if (++this.trailerLines > MAX_NUM_HEADERS)
            return this.fail(new SecurityError({ detail: "too many HTTP trailer lines" }))
        }
      }
    }
  }

  /**
   * The end of the next complete line, which is [lineStart, end) without its CRLF (two numbers, not
   * a pair: a head has a dozen lines), `undefined` when more bytes are needed, or the failure.
   * Python's `read_line` reads up to LF and then requires CRLF (RFC 7230 §3.5 allows bare LF, but
   * Python rejects it); the length limit counts the CRLF, as Python does.
   */
  private nextLine(): number | HeadError | undefined {
    // Searched in the whole buffer (a view per line would be garbage for each): an LF at or after
    // `end` is a stale byte, not one received.
    let lf = this.scan < this.end ? this.buf.indexOf(LF, this.scan) : -1
    if (lf >= this.end) lf = -1
    if (lf === -1) {
      this.scan = this.end
      // Any LF still to come would end a line longer than the limit: fail now, buffer nothing more.
      if (this.end - this.start >= MAX_LINE_LENGTH) return new SecurityError({ detail: "line too long" })
      return undefined
    }
    const from = this.start
    if (lf + 1 - from > MAX_LINE_LENGTH) return new SecurityError({ detail: "line too long" })
    if (lf === from || this.buf[lf - 1] !== CR) return new InvalidMessage({ detail: "line without CRLF" })
    this.lineStart = from
    this.start = this.scan = lf + 1
    return lf - 1
  }

  private text(from: number, to: number): string {
    return this.buf.toString("latin1", from, to)
  }

  /** `common(this.text(from, to))`, without slicing a text that is common. */
  private sharedText(from: number, to: number): string {
    return commonAt(this.buf, from, to) ?? this.text(from, to)
  }

  private onStartLine(from: number, to: number): Result.Result<void, HeadError> {
    if (from === to && this.skipsLeadingEmptyLine && !this.skippedEmptyLine) {
      this.skippedEmptyLine = true
      return Result.void_
    }
    const parsed = this.parseStartLine(this.text(from, to))
    if (Result.isSuccess(parsed)) this.phase = Phase.HeaderLines
    return parsed
  }

  /** RFC 7230 §3.2: header-field = field-name ":" OWS field-value OWS. */
  private onHeaderLine(from: number, to: number): Result.Result<void, HeadError> {
    if (from === to) {
      this.keepHeaderLines()
      return this.endOfHead()
    }
    if (this.headerCount === MAX_NUM_HEADERS) return insecure("too many HTTP headers")
    this.headerCount++
    const buf = this.buf
    // RFC 7230 §3.2.4: obs-fold is deprecated; Python rejects it, so do we.
    if (isOws(buf[from])) return invalid(`obsolete line folding isn't supported: ${quote(this.text(from, to))}`)
    const nameEnd = buf.indexOf(COLON, from)
    if (nameEnd === -1 || nameEnd >= to) return invalid(`invalid HTTP header line: ${quote(this.text(from, to))}`)
    if (nameEnd === from) return invalid(`invalid HTTP header name: ${quote("")}`)
    for (let i = from; i < nameEnd; i++) {
      if (TCHAR[buf[i]!] !== 1) return invalid(`invalid HTTP header name: ${quote(this.text(from, nameEnd))}`)
    }
    let valueStart = nameEnd + 1
    let valueEnd = to
    while (valueStart < valueEnd && isOws(buf[valueStart])) valueStart++
    while (valueEnd > valueStart && isOws(buf[valueEnd - 1])) valueEnd--
    for (let i = valueStart; i < valueEnd; i++) {
      if (!isFieldByte(buf[i]!)) {
        return invalid(`invalid HTTP header value: ${quote(this.text(valueStart, valueEnd))}`)
      }
    }
    this.recordHeaderLine(from, nameEnd, valueStart, valueEnd)
    return Result.void_
  }

  /** Shared `Content-Length` check: digits only (RFC 7230 §3.3.2), a single value. */
  protected contentLength(): Result.Result<number | undefined, HeadError> {
    const values = this.headers.getAll("Content-Length")
    if (values.length === 0) return Result.succeed(undefined)
    if (values.length > 1) return invalid(`multiple Content-Length headers: ${quote(values.join(", "))}`)
    const value = values[0]!
    if (!/^[0-9]+$/.test(value)) return invalid(`invalid Content-Length: ${quote(value)}`)
    return Result.succeed(Number(value))
  }
}

/**
 * Incremental parser of a handshake request head: feed chunks of any size. Only `HTTP/1.1` is
 * accepted, with exactly one `Host` header (RFC 6455 §4.1, RFC 7230 §5.4). A `GET` has no body,
 * as in Python. Any other method (a token, RFC 9110 §9.1) is parsed too, for the server's request
 * hook (a health check by `HEAD` or `POST`), which answers it and closes the connection: its body,
 * if any, is not read (whatever follows the head is `rest`).
 * @since 0.1.0
 * @category parsers
 */
export class RequestParser extends HeadParser<Request> {
  protected readonly startLineName = "request line"
  protected override readonly skipsLeadingEmptyLine = true
  private path = ""
  private method = "GET"

  protected parseStartLine(line: string): Result.Result<void, HeadError> {
    const parts = splitStartLine(line)
    if (parts === undefined) return invalid(`invalid HTTP request line: ${quote(line)}`)
    const [method, path, protocol] = parts
    if (protocol !== "HTTP/1.1") return invalid(`unsupported protocol; expected HTTP/1.1: ${quote(line)}`)
    if (!isToken(method)) return invalid(`invalid HTTP method: ${quote(method)}`)
    this.method = method
    this.path = path
    return Result.void_
  }

  protected endOfHead(): Result.Result<void, HeadError> {
    // RFC 7230 §3.3.3; as Python for a GET: no transfer coding, and Content-Length only when it is 0.
    if (this.method === "GET") {
      if (this.headers.has("Transfer-Encoding")) return invalid("transfer codings aren't supported")
      const length = this.contentLength()
      if (Result.isFailure(length)) return Result.fail(Result.failureOf(length))
      if (Result.successOf(length) !== undefined && Result.successOf(length) !== 0)
        return invalid("unsupported request body")
    }
    // RFC 7230 §5.4: a request without Host, or with more than one, gets 400 (Python accepts both).
    const hosts = this.headers.getAll("Host").length
    if (hosts !== 1) {
      return Result.fail(
        new InvalidHeader({ name: "Host", value: hosts === 0 ? undefined : "more than one Host header" })
      )
    }
    this.phase = Phase.Done
    return Result.void_
  }

  protected finish(): Request {
    return new Request(this.path, this.headers, this.method)
  }
}

/**
 * Incremental parser of a handshake response: feed chunks of any size. A 101 response has no
 * body; whatever follows its head is `rest` (the first WebSocket frames). Another response's body
 * is read by `Content-Length`, chunked (RFC 9112 §7.1) or up to EOF, at most {@link MAX_BODY_SIZE}
 * bytes, so that the client reports the status with its body (`InvalidStatusCode`).
 * @since 0.1.0
 * @category parsers
 */
export class ResponseParser extends HeadParser<Response> {
  protected readonly startLineName = "status line"
  private statusCode = 0
  private reason = ""

  protected parseStartLine(line: string): Result.Result<void, HeadError> {
    const parts = splitStartLine(line)
    if (parts === undefined) return invalid(`invalid HTTP status line: ${quote(line)}`)
    const [protocol, status, reason] = parts
    if (protocol !== "HTTP/1.1") return invalid(`unsupported protocol; expected HTTP/1.1: ${quote(line)}`)
    // RFC 7230 §3.1.2: status-code = 3DIGIT.
    if (!/^[0-9]{3}$/.test(status)) return invalid(`invalid status code; expected 3 digits; got ${quote(status)}`)
    const code = Number(status)
    if (code < 100 || code > 599) return invalid(`invalid status code; expected 100–599; got ${quote(status)}`)
    // reason-phrase = *( HTAB / SP / VCHAR / obs-text )
    for (let i = 0; i < reason.length; i++) {
      if (!isFieldByte(reason.charCodeAt(i))) return invalid(`invalid HTTP reason phrase: ${quote(reason)}`)
    }
    this.statusCode = code
    this.reason = reason
    return Result.void_
  }

  protected endOfHead(): Result.Result<void, HeadError> {
    if (hasNoBody(this.statusCode)) {
      this.phase = Phase.Done
      return Result.void_
    }
    // RFC 9112 §6.3: Transfer-Encoding wins over Content-Length. Chunked as the final coding is
    // decoded (what Node's http and @effect/platform send for a 404 of unknown length); any other
    // final coding delimits the body by the end of the connection. Other transfer codings (gzip...)
    // are not undone: a rejection's body is for display only.
    const codings = this.headers.getAll("Transfer-Encoding")
    if (codings.length > 0) {
      const final = codings
        .join(",")
        .split(",")
        .map((coding) => coding.trim().toLowerCase())
        .filter((coding) => coding !== "")
        .pop()
      if (final === "chunked") this.readChunked()
      else this.phase = Phase.BodyToEof
      return Result.void_
    }
    const length = this.contentLength()
    if (Result.isFailure(length)) return Result.fail(Result.failureOf(length))
    const bodyLength = Result.successOf(length)
    if (bodyLength === undefined) {
      this.phase = Phase.BodyToEof
    } else if (bodyLength > MAX_BODY_SIZE) {
      return insecure(`body too large: ${bodyLength} bytes`)
    } else {
      this.bodyLength = bodyLength
      this.phase = Phase.BodyLength
    }
    return Result.void_
  }

  protected finish(body: Uint8Array): Response {
    return new Response(this.statusCode, this.reason, this.headers, body)
  }
}
