/**
 * The sans-I/O client connection (Python `websockets.client.ClientConnection`): the protocol state
 * machine of {@link Connection} plus the client side of the opening handshake (RFC 6455 §4.1).
 *
 * @since 0.1.0
 */

import { Connection, type ConnectionOptions, State } from "./Connection.js"
import {
  type InvalidHandshakeFamily,
  InvalidHeader,
  InvalidMessage,
  InvalidStatusCode,
  NegotiationError
} from "./Errors.js"
import type { ClientExtensionFactory, Extension } from "./extensions/Extension.js"
import { checkResponse, generateKey } from "./Handshake.js"
import {
  buildAuthorizationBasic,
  buildExtension,
  buildSubprotocol,
  parseExtension,
  parseSubprotocol
} from "./HeaderParsers.js"
import { fromHeadersLike, Headers, type HeadersLike } from "./Headers.js"
import { Request, type Response, ResponseParser } from "./Http11.js"
import { parseAll } from "./internal/headerValues.js"
import * as Result from "./internal/result.js"
import { hostHeader, type WebSocketURI } from "./Uri.js"

/**
 * Default `User-Agent` header of the client.
 * @since 0.1.0
 * @category constants
 */
export const USER_AGENT = "effect-websockets/0.1.0"

/**
 * Options of a client connection.
 * @since 0.1.0
 * @category models
 */
export interface ClientConnectionOptions extends ConnectionOptions {
  /** Value of the Origin header (to pass servers' Cross-Site WebSocket Hijacking checks). */
  readonly origin?: string | undefined
  /** Supported extensions, in the order in which they should be tried. */
  readonly extensions?: ReadonlyArray<ClientExtensionFactory> | undefined
  /** Supported subprotocols, in order of decreasing preference. */
  readonly subprotocols?: ReadonlyArray<string> | undefined
  /** Arbitrary HTTP headers added to the request. */
  readonly extraHeaders?: HeadersLike | undefined
  /** Value of the User-Agent header; `null` omits it. */
  readonly userAgent?: string | null | undefined
  /** Maximum size of the response head in bytes, a `SecurityError` when over. Default 16 KiB (`MAX_HEADER_SIZE`). */
  readonly maxHeaderSize?: number | undefined
}

/**
 * Sans-I/O client connection. Call `connect()` to build the handshake request, `sendRequest()` to
 * send it, then feed the server's bytes.
 * @since 0.1.0
 * @category models
 */
export class ClientConnection extends Connection {
  /** The Sec-WebSocket-Key of this connection's handshake. */
  readonly key: string = generateKey()
  /** Subprotocol chosen by the server, if any. */
  subprotocol: string | undefined = undefined
  private responseParser: ResponseParser | undefined

  constructor(
    readonly wsuri: WebSocketURI,
    readonly options: ClientConnectionOptions = {}
  ) {
    super("client", { ...options, state: options.state ?? State.CONNECTING })
    // A connection created OPEN skips the opening handshake: its first bytes are frames, not an
    // HTTP response.
    this.responseParser =
      this.state === State.CONNECTING ? new ResponseParser({ maxHeaderSize: options.maxHeaderSize }) : undefined
  }

  /**
   * Builds the handshake request (RFC 6455 §4.1). It may be modified (for example to add headers)
   * before `sendRequest`.
   */
  connect(): Request {
    const { extensions, extraHeaders, origin, subprotocols, userAgent } = this.options
    const headers = new Headers()
    const extra = extraHeaders === undefined ? undefined : fromHeadersLike(extraHeaders)
    // RFC 7230 §5.4: one Host header. A Host among the extra headers replaces the URI's (as with a
    // virtual host behind the TCP destination) rather than making a second one, which servers reject.
    const hosts = extra?.getAll("Host") ?? []
    if (hosts.length === 0) headers.append("Host", hostHeader(this.wsuri))
    for (const host of hosts) headers.append("Host", host)
    if (this.wsuri.userInfo !== undefined) {
      headers.append("Authorization", buildAuthorizationBasic(this.wsuri.userInfo[0], this.wsuri.userInfo[1]))
    }
    if (origin !== undefined) headers.append("Origin", origin)
    headers.append("Upgrade", "websocket")
    headers.append("Connection", "Upgrade")
    headers.append("Sec-WebSocket-Key", this.key)
    headers.append("Sec-WebSocket-Version", "13")
    if (extensions !== undefined && extensions.length > 0) {
      headers.append(
        "Sec-WebSocket-Extensions",
        buildExtension(extensions.map((factory) => [factory.name, factory.getRequestParams()] as const))
      )
    }
    if (subprotocols !== undefined && subprotocols.length > 0) {
      headers.append("Sec-WebSocket-Protocol", buildSubprotocol(subprotocols))
    }
    if (extra !== undefined) {
      for (const [name, value] of extra.rawItems()) if (name.toLowerCase() !== "host") headers.append(name, value)
    }
    if (userAgent !== null && !headers.has("User-Agent")) headers.append("User-Agent", userAgent ?? USER_AGENT)
    return new Request(this.wsuri.resourceName, headers)
  }

  /** Sends the handshake request. */
  sendRequest(request: Request): void {
    this.writes.push(request.serialize())
  }

  protected override onData(data: Uint8Array): void {
    const parser = this.responseParser
    if (parser === undefined) {
      super.onData(data)
      return
    }
    this.handleResponse(parser.feed(data))
  }

  protected override onEof(): void {
    const parser = this.responseParser
    if (parser === undefined) {
      super.onEof()
      return
    }
    const result = parser.feedEof()
    if (Result.isSuccess(result) && Result.successOf(result) === undefined) {
      this.failHandshake(new InvalidMessage({ detail: "connection closed while reading HTTP response" }))
      return
    }
    this.handleResponse(result)
  }

  private handleResponse(result: Result.Result<Response | undefined, InvalidHandshakeFamily>): void {
    if (Result.isFailure(result)) {
      this.failHandshake(Result.failureOf(result))
      return
    }
    const response = Result.successOf(result)
    if (response === undefined) return
    const parser = this.responseParser!
    this.responseParser = undefined
    const processed = this.processResponse(response)
    this.events.push(response)
    if (Result.isFailure(processed)) {
      this.failHandshake(Result.failureOf(processed))
      return
    }
    this.extensions = Result.successOf(processed)
    this.state = State.OPEN
    const rest = parser.rest
    if (rest.byteLength > 0) super.onData(rest)
  }

  /** Checks the server's response (RFC 6455 §4.1, steps 1–6 of the client's validation). */
  private processResponse(response: Response): Result.Result<ReadonlyArray<Extension>, InvalidHandshakeFamily> {
    if (response.statusCode !== 101) {
      return Result.fail(
        new InvalidStatusCode({
          statusCode: response.statusCode,
          headers: [...response.headers.rawItems()],
          body: response.body
        })
      )
    }
    const headers = response.headers
    return Result.gen(this, function* () {
      // Connection, Upgrade and Sec-WebSocket-Accept (RFC 6455 §4.1, steps 2–4).
      yield* checkResponse(headers, this.key)
      const extensions = yield* this.processExtensions(headers)
      this.subprotocol = yield* this.processSubprotocol(headers)
      return extensions
    })
  }

  private processExtensions(headers: Headers): Result.Result<ReadonlyArray<Extension>, InvalidHandshakeFamily> {
    const available = this.options.extensions
    return Result.gen(function* () {
      const accepted: Array<Extension> = []
      const values = headers.getAll("Sec-WebSocket-Extensions")
      if (values.length === 0) return accepted
      if (available === undefined || available.length === 0) {
        return yield* Result.fail(new NegotiationError({ detail: "no extensions supported" }))
      }
      const parsed = yield* parseAll(values, parseExtension)
      for (const [name, params] of parsed) {
        let matched = false
        for (const factory of available) {
          if (factory.name !== name) continue
          const extension = factory.processResponseParams(params, accepted)
          if (Result.isFailure(extension)) continue
          accepted.push(Result.successOf(extension))
          matched = true
          break
        }
        // The server accepted an extension we did not offer, or with parameters we cannot accept.
        if (!matched) {
          return yield* Result.fail(
            new NegotiationError({
              detail: `unsupported extension: name = ${name}, params = ${JSON.stringify(params)}`
            })
          )
        }
      }
      return accepted
    })
  }

  private processSubprotocol(headers: Headers): Result.Result<string | undefined, InvalidHandshakeFamily> {
    const available = this.options.subprotocols
    return Result.gen(function* () {
      const values = headers.getAll("Sec-WebSocket-Protocol")
      if (values.length === 0) return undefined
      if (available === undefined || available.length === 0) {
        return yield* Result.fail(new NegotiationError({ detail: "no subprotocols supported" }))
      }
      const parsed = yield* parseAll(values, parseSubprotocol)
      if (parsed.length > 1) {
        return yield* Result.fail(
          new InvalidHeader({ name: "Sec-WebSocket-Protocol", value: `multiple values: ${parsed.join(", ")}` })
        )
      }
      const subprotocol = parsed[0]!
      if (!available.includes(subprotocol)) {
        return yield* Result.fail(new NegotiationError({ detail: `unsupported subprotocol: ${subprotocol}` }))
      }
      return subprotocol
    })
  }

  private failHandshake(error: InvalidHandshakeFamily): void {
    this.responseParser = undefined
    this.handshakeExc = error
    // The handshake failed: close the TCP connection (RFC 6455 §4.1: "_Fail the WebSocket Connection_").
    this.abandon()
  }
}
