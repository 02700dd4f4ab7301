/**
 * The sans-I/O server connection (Python `websockets.server.ServerConnection`): the protocol state
 * machine of {@link Connection} plus the server side of the opening handshake (RFC 6455 §4.2).
 *
 * @since 0.1.0
 */

import { USER_AGENT } from "./ClientConnection.js"
import { Connection, type ConnectionOptions, State } from "./Connection.js"
import {
  type InvalidHandshakeFamily,
  InvalidHeader,
  InvalidMessage,
  InvalidOrigin,
  NegotiationError,
  ProtocolError
} from "./Errors.js"
import type { Extension, ServerExtensionFactory } from "./extensions/Extension.js"
import { acceptKey, checkRequest } from "./Handshake.js"
import { buildExtension, type ExtensionHeader, parseExtension, parseSubprotocol } from "./HeaderParsers.js"
import { Headers, type HeadersLike } from "./Headers.js"
import { type Request, RequestParser, Response, reasonPhrase } from "./Http11.js"
import { parseAll } from "./internal/headerValues.js"
import * as Result from "./internal/result.js"

/**
 * Chooses a subprotocol among those offered by the client (`undefined`/`null`: none).
 * @since 0.1.0
 * @category models
 */
export type SelectSubprotocol = (
  clientSubprotocols: ReadonlyArray<string>,
  serverSubprotocols: ReadonlyArray<string>
) => string | null | undefined

/**
 * Options of a server connection.
 * @since 0.1.0
 * @category models
 */
export interface ServerConnectionOptions extends ConnectionOptions {
  /** Acceptable values of the Origin header; include `null` to accept requests without one. */
  readonly origins?: ReadonlyArray<string | null> | undefined
  /** Supported extensions, in the order in which they should be used. */
  readonly extensions?: ReadonlyArray<ServerExtensionFactory> | undefined
  /** Supported subprotocols, in order of decreasing preference. */
  readonly subprotocols?: ReadonlyArray<string> | undefined
  /** Custom subprotocol selection; the default is {@link defaultSelectSubprotocol}. */
  readonly selectSubprotocol?: SelectSubprotocol | undefined
  /** Headers added to a successful handshake response: static, or a function of the path and request headers. */
  readonly extraHeaders?: HeadersLike | ((path: string, headers: Headers) => HeadersLike) | undefined
  /** Value of the Server header; `null` omits it. */
  readonly serverHeader?: string | null | undefined
  /** Maximum size of the request head in bytes, answered with 431 when over. Default 16 KiB (`MAX_HEADER_SIZE`). */
  readonly maxHeaderSize?: number | undefined
}

/**
 * The seeds' default selection: among the subprotocols both sides support, the one with the best
 * sum of ranks in the client's and the server's lists (equal weight to both); none if there is no
 * common subprotocol.
 * @since 0.1.0
 * @category utils
 */
export const defaultSelectSubprotocol: SelectSubprotocol = (client, server) => {
  let best: string | undefined
  let bestRank = Number.POSITIVE_INFINITY
  for (let i = 0; i < client.length; i++) {
    const j = server.indexOf(client[i]!)
    if (j >= 0 && i + j < bestRank) {
      best = client[i]
      bestRank = i + j
    }
  }
  return best
}

const HANDSHAKE_FAILED = "Failed to open a WebSocket connection"

/** No value (no origin, no subprotocol), shared by the handshakes that have none. */
const NONE: Result.Result<undefined> = Result.succeed(undefined)
/** No extension negotiated, shared: no response header, and the connection's extensions stay empty. */
const NO_EXTENSIONS: Result.Result<readonly [undefined, ReadonlyArray<Extension>]> = Result.succeed([
  undefined,
  Object.freeze([])
] as const)

let dateSecond = Number.NaN
let dateText = ""
/** The `Date` header's value (RFC 9110 §6.6.1), made once a second and shared by the responses in it. */
const httpDate = (): string => {
  const second = Math.floor(Date.now() / 1000)
  if (second !== dateSecond) {
    dateSecond = second
    dateText = new Date(second * 1000).toUTCString()
  }
  return dateText
}
/**
 * Sans-I/O server connection. Feed the client's bytes; once the `Request` event arrives, build the
 * response with `accept()` (or `reject()`) and send it with `sendResponse()`.
 * @since 0.1.0
 * @category models
 */
export class ServerConnection extends Connection {
  /** Origin of the request, once accepted. */
  origin: string | undefined = undefined
  /** Negotiated subprotocol, once accepted. */
  subprotocol: string | undefined = undefined
  private requestParser: RequestParser | undefined
  /**
   * Bytes received after the request but before our 101 response. They are dropped, not kept:
   * they fail the connection once the 101 is sent, and the application may take up to the open
   * timeout to answer, which must not let a client fill our memory meanwhile.
   */
  private earlyData = false
  /** Method of the request received: a response to `HEAD` goes without its body (RFC 9110 §9.3.2). */
  private requestMethod = "GET"

  constructor(readonly options: ServerConnectionOptions = {}) {
    // Options that name the state (a server's, made once for all its connections) are used as they are.
    super("server", options.state !== undefined ? options : { ...options, state: State.CONNECTING })
    this.requestParser = new RequestParser(options)
  }

  /**
   * Builds the handshake response to `request`: 101 when the handshake is valid, else an HTTP error
   * response (403 for a forbidden origin, 426 for a missing upgrade or an unsupported version, 400
   * for other invalid requests, 405 with `Allow: GET` for another method than GET, 500 when a
   * user callback throws), with `handshakeExc` set.
   */
  accept(request: Request): Response {
    // RFC 6455 §4.1: the handshake is a GET; RFC 9110 §15.5.6: 405 names the methods allowed.
    if (request.method !== "GET") {
      const error = new InvalidMessage({ detail: `unsupported HTTP method; expected GET; got ${request.method}` })
      this.handshakeExc = error
      const response = this.reject(405, `${HANDSHAKE_FAILED}: ${error.message}.\n`)
      response.headers.append("Allow", "GET")
      return response
    }
    let result: Result.Result<readonly [string, string | undefined, string | undefined], InvalidHandshakeFamily>
    try {
      result = this.processRequest(request)
    } catch (error) {
      // Only user callbacks (selectSubprotocol, extraHeaders) can throw here.
      this.handshakeExc = new InvalidMessage({ detail: "opening handshake failed", cause: error })
      return this.reject(500, `${HANDSHAKE_FAILED}.\nSee server log for more information.\n`)
    }
    if (Result.isFailure(result)) return this.rejectFor(Result.failureOf(result))
    // Indexed rather than destructured: destructuring may make an array iterator per handshake.
    const negotiated = Result.successOf(result)
    const accept = negotiated[0]
    const extensionsHeader = negotiated[1]
    const protocolHeader = negotiated[2]
    const { extraHeaders, serverHeader } = this.options
    if (
      extraHeaders === undefined &&
      extensionsHeader === undefined &&
      protocolHeader === undefined &&
      serverHeader !== null
    ) {
      // The usual 101, in the order below, its headers in an array of their size: the response is
      // kept as long as the connection (`ws.response`), and appending would leave room for more.
      const items = [
        "Date",
        httpDate(),
        "Upgrade",
        "websocket",
        "Connection",
        "Upgrade",
        "Sec-WebSocket-Accept",
        accept,
        "Server",
        serverHeader ?? USER_AGENT
      ]
      return new Response(101, "Switching Protocols", Headers.fromFlatItems(items))
    }
    const headers = new Headers()
    headers.append("Date", httpDate())
    headers.append("Upgrade", "websocket")
    headers.append("Connection", "Upgrade")
    headers.append("Sec-WebSocket-Accept", accept)
    if (extensionsHeader !== undefined) headers.append("Sec-WebSocket-Extensions", extensionsHeader)
    if (protocolHeader !== undefined) headers.append("Sec-WebSocket-Protocol", protocolHeader)
    if (extraHeaders !== undefined) {
      try {
        headers.update(typeof extraHeaders === "function" ? extraHeaders(request.path, request.headers) : extraHeaders)
      } catch (error) {
        this.handshakeExc = new InvalidMessage({ detail: "extraHeaders failed", cause: error })
        return this.reject(500, `${HANDSHAKE_FAILED}.\nSee server log for more information.\n`)
      }
    }
    // Only extraHeaders can have set Server (a lookup builds the headers' index: skipped without them).
    if (serverHeader !== null && (extraHeaders === undefined || !headers.has("Server"))) {
      headers.append("Server", serverHeader ?? USER_AGENT)
    }
    return new Response(101, "Switching Protocols", headers)
  }

  /**
   * Builds an HTTP error response with a plain-text body, closing the connection after it.
   */
  reject(status: number, text: string): Response {
    const body = new TextEncoder().encode(text)
    const headers = new Headers([
      ["Date", httpDate()],
      ["Connection", "close"],
      ["Content-Length", String(body.byteLength)],
      ["Content-Type", "text/plain; charset=utf-8"]
    ])
    if (this.options.serverHeader !== null) headers.append("Server", this.options.serverHeader ?? USER_AGENT)
    return new Response(status, reasonPhrase(status), headers, body)
  }

  /**
   * Sends the handshake response. After a 101 the connection is OPEN; after anything else the TCP
   * connection is closed.
   */
  sendResponse(response: Response): void {
    this.requestParser = undefined
    // The client may close the connection before the application answers; we then already
    // half-closed it (see `onEof`) and nothing may be written after SEND_EOF.
    if (this.eofSent) return
    // A response to HEAD has the headers of the response to GET, Content-Length included, and no body.
    const sent =
      this.requestMethod === "HEAD" && response.body.byteLength > 0
        ? new Response(response.statusCode, response.reasonPhrase, response.headers)
        : response
    this.writes.push(sent.serialize())
    if (response.statusCode === 101 && this.state === State.CONNECTING && !this.discarding) {
      this.state = State.OPEN
      this.logger?.info("connection open", this)
      // RFC 6455 §4.1: a client must wait for the server's response before sending frames.
      if (this.earlyData) {
        this.failWithError(new ProtocolError({ detail: "data received before the opening handshake completed" }))
      }
      return
    }
    // A success or a redirect is the request hook answering a plain HTTP request (a health check),
    // no rejection; either way there is no WebSocket, which is a handshake failure seen from here.
    const answered = response.statusCode >= 200 && response.statusCode < 400
    const status = `${response.statusCode} ${response.reasonPhrase}`
    if (answered) this.logger?.info(`HTTP request answered (${this.requestMethod} ${status})`, this)
    else if (response.statusCode !== 101) this.logger?.info(`connection rejected (${status})`, this)
    if (this.handshakeExc === undefined && response.statusCode !== 101) {
      this.handshakeExc = new InvalidMessage({
        detail: `${answered ? "answered" : "rejected"} with HTTP ${response.statusCode}`
      })
    }
    this.abandon()
  }

  protected override onData(data: Uint8Array): void {
    if (this.state !== State.CONNECTING) {
      super.onData(data)
      return
    }
    // The request parser copies what it keeps of a read (and the bytes after the request are
    // dropped): the caller may free the read at once, which a flood of oversized heads would
    // otherwise leave to the garbage collector, a 64 KiB read per connection.
    this.receivedDataKept = false
    const parser = this.requestParser
    if (parser === undefined) {
      // The request was received; frames must wait until our 101 is sent.
      this.earlyData = true
      return
    }
    const result = parser.feed(data)
    if (Result.isFailure(result)) {
      const error = Result.failureOf(result)
      this.handshakeExc = error
      this.requestParser = undefined
      // Answer a malformed request with an HTTP error, then close (RFC 7230 §3.2.5 / RFC 6585 §5 for limits).
      this.sendResponse(
        this.reject(error._tag === "SecurityError" ? 431 : 400, `${HANDSHAKE_FAILED}: ${error.message}.\n`)
      )
      return
    }
    const request = Result.successOf(result)
    if (request === undefined) return
    this.receiveRequest(request, parser.rest)
  }

  /**
   * Takes a request that was parsed elsewhere (by a Node `http` server) instead of reading it from
   * the connection's bytes, with the bytes received after it (`head`): the `Request` event follows,
   * as after `receiveData`. Only while waiting for the request.
   */
  receiveRequest(request: Request, rest: Uint8Array): void {
    if (this.state !== State.CONNECTING || this.requestParser === undefined) return
    this.requestParser = undefined
    this.requestMethod = request.method
    this.events.push(request)
    // Early data (frames before our 101) is dropped, as the parser does for bytes after the request.
    if (rest.byteLength > 0) this.earlyData = true
  }

  protected override onEof(): void {
    if (this.state === State.CONNECTING) {
      // EOF after the request but before our response fails the handshake too.
      const detail =
        this.requestParser !== undefined
          ? "connection closed while reading HTTP request"
          : "connection closed before the handshake response was sent"
      this.requestParser = undefined
      this.handshakeExc = new InvalidMessage({ detail })
      this.abandon()
      return
    }
    super.onEof()
  }

  private rejectFor(error: InvalidHandshakeFamily): Response {
    this.handshakeExc = error
    switch (error._tag) {
      case "InvalidOrigin":
        return this.reject(403, `${HANDSHAKE_FAILED}: ${error.message}.\n`)
      case "InvalidUpgrade": {
        const response = this.reject(
          426,
          `${HANDSHAKE_FAILED}: ${error.message}.\n\nYou cannot access a WebSocket server directly with a browser. You need a WebSocket client.\n`
        )
        response.headers.append("Upgrade", "websocket")
        return response
      }
      default: {
        // RFC 6455 §4.2.2 / §4.4: an unsupported version gets 426 with the versions we support (Python
        // answers 400; the RFC wins).
        if ("name" in error && error.name === "Sec-WebSocket-Version" && error._tag !== "InvalidHeaderFormat") {
          const response = this.reject(426, `${HANDSHAKE_FAILED}: ${error.message}.\n`)
          response.headers.append("Sec-WebSocket-Version", "13")
          return response
        }
        return this.reject(400, `${HANDSHAKE_FAILED}: ${error.message}.\n`)
      }
    }
  }

  /** Validates the request and negotiates origin, extensions and subprotocol (RFC 6455 §4.2.1). */
  private processRequest(
    request: Request
  ): Result.Result<readonly [string, string | undefined, string | undefined], InvalidHandshakeFamily> {
    // Plain checks rather than `Result.gen`: a generator closure per handshake costs V8 a new
    // hidden class each time.
    const headers = request.headers
    const key = checkRequest(headers)
    if (Result.isFailure(key)) return Result.fail(Result.failureOf(key))
    const origin = this.processOrigin(headers)
    if (Result.isFailure(origin)) return Result.fail(Result.failureOf(origin))
    this.origin = Result.successOf(origin)
    const negotiated = this.processExtensions(headers)
    if (Result.isFailure(negotiated)) return Result.fail(Result.failureOf(negotiated))
    const subprotocol = this.processSubprotocol(headers)
    if (Result.isFailure(subprotocol)) return Result.fail(Result.failureOf(subprotocol))
    this.subprotocol = Result.successOf(subprotocol)
    const extensionsHeader = Result.successOf(negotiated)[0]
    this.extensions = Result.successOf(negotiated)[1]
    return Result.succeed([acceptKey(Result.successOf(key)), extensionsHeader, this.subprotocol] as const)
  }

  private processOrigin(headers: Headers): Result.Result<string | undefined, InvalidHandshakeFamily> {
    // RFC 6454 §7.3: a user agent must not send more than one Origin header.
    const values = headers.getAll("Origin")
    if (values.length > 1) return Result.fail(new InvalidHeader({ name: "Origin", value: "multiple values" }))
    const origin = values[0]
    const origins = this.options.origins
    if (origins !== undefined && !origins.includes(origin === undefined ? null : origin)) {
      return Result.fail(new InvalidOrigin({ origin }))
    }
    return origin === undefined ? NONE : Result.succeed(origin)
  }

  private processExtensions(
    headers: Headers
  ): Result.Result<readonly [string | undefined, ReadonlyArray<Extension>], InvalidHandshakeFamily> {
    const available = this.options.extensions
    const values = headers.getAll("Sec-WebSocket-Extensions")
    if (values.length === 0 || available === undefined || available.length === 0) return NO_EXTENSIONS
    return Result.map(parseAll(values, parseExtension), (offers) => {
      const accepted: Array<Extension> = []
      const response: Array<ExtensionHeader> = []
      for (const [name, params] of offers) {
        for (const factory of available) {
          if (factory.name !== name) continue
          // A negotiation error declines this offer; the client may have made others (RFC 7692 §5).
          const result = factory.processRequestParams(params, accepted)
          if (Result.isFailure(result)) continue
          response.push([name, Result.successOf(result)[0]])
          accepted.push(Result.successOf(result)[1])
          break
        }
      }
      return [response.length > 0 ? buildExtension(response) : undefined, accepted] as const
    })
  }

  private processSubprotocol(headers: Headers): Result.Result<string | undefined, InvalidHandshakeFamily> {
    // No offer and no selectSubprotocol to ask: no subprotocol, with nothing to parse.
    if (this.options.selectSubprotocol === undefined && !headers.has("Sec-WebSocket-Protocol")) return NONE
    return Result.flatMap(parseAll(headers.getAll("Sec-WebSocket-Protocol"), parseSubprotocol), (offered) => {
      const available = this.options.subprotocols ?? []
      const select = this.options.selectSubprotocol
      if (select === undefined && (available.length === 0 || offered.length === 0)) return Result.succeed(undefined)
      const chosen = (select ?? defaultSelectSubprotocol)(offered, available)
      if (chosen === null || chosen === undefined) return Result.succeed(undefined)
      // RFC 6455 §4.2.2: the server must select one of the values the client offered.
      if (!offered.includes(chosen)) {
        return Result.fail(new NegotiationError({ detail: `selected subprotocol was not offered: ${chosen}` }))
      }
      return Result.succeed(chosen)
    })
  }
}
