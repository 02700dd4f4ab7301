/**
 * The WebSocket client (Python `websockets.client.connect` / `unix_connect`): opens a TCP, TLS or
 * unix-socket connection, performs the opening handshake and yields an open {@link WebSocket}
 * whose lifetime is the caller's `Scope`. Also a `WebSocketClient` service with a layer, and
 * automatic reconnection with a replaceable `Schedule`.
 *
 * @since 0.1.0
 */

import * as net from "node:net"
import type { Duplex } from "node:stream"
import * as tls from "node:tls"
import type * as Config from "effect/Config"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Schedule from "effect/Schedule"
import * as Scope from "effect/Scope"
import { ClientConnection } from "./ClientConnection.js"
import {
  ConnectFailed,
  type InvalidHandshakeFamily,
  InvalidMessage,
  InvalidURI,
  isConnectionClosed,
  isInvalidHandshake,
  OpenTimeout
} from "./Errors.js"
import type { ClientExtensionFactory } from "./extensions/Extension.js"
import { enableClientPermessageDeflate } from "./extensions/PermessageDeflate.js"
import type { HeadersLike } from "./Headers.js"
import type { Request, Response } from "./Http11.js"
import {
  type ConfigError,
  callback,
  firstError,
  forkScope,
  fromResult,
  interrupted,
  provideScope,
  Service,
  shorterDelay,
  timeoutFail
} from "./internal/effectCompat.js"
import { connectionConfig } from "./internal/optionsConfig.js"
import * as Result from "./internal/result.js"
import { type ConnectionSpans, Telemetry } from "./internal/telemetry.js"
import { Timers } from "./internal/timers.js"
import { resolveOptions, WebSocketImpl } from "./internal/webSocket.js"
import { formatUri, parseUri, type WebSocketURI } from "./Uri.js"
import {
  type ConnectionConfig,
  defaults,
  type OptionalDuration,
  resolveOptionalDuration,
  type WebSocket,
  type WebSocketOptions
} from "./WebSocket.js"

/**
 * Maximum number of redirects followed by `connect` (Python's `MAX_REDIRECTS`).
 * @since 0.1.0
 * @category constants
 */
export const MAX_REDIRECTS = 10

/**
 * Options of `connect`, with Python's defaults.
 * @since 0.1.0
 * @category models
 */
export interface ConnectOptions extends WebSocketOptions {
  /** Value of the Origin header. */
  readonly origin?: string | undefined
  /** Supported subprotocols, in order of decreasing preference. */
  readonly subprotocols?: ReadonlyArray<string> | undefined
  /** Extra HTTP headers of the handshake request. */
  readonly extraHeaders?: HeadersLike | undefined
  /** User-Agent header; `null` omits it. */
  readonly userAgent?: string | null | undefined
  /** Timeout of the TCP connection and opening handshake; `null` disables it. Default 10 seconds. */
  readonly openTimeout?: OptionalDuration
  /**
   * Maximum size in bytes of the handshake response's head (status line, headers, CRLFs): a larger
   * one fails with `SecurityError` as soon as this many bytes arrived. Default 16 KiB, as Node's `http`.
   */
  readonly maxHeaderSize?: number | undefined
  /** `"deflate"` (default) enables permessage-deflate; `null` disables compression. */
  readonly compression?: "deflate" | null | undefined
  /** Extensions offered, in order of preference (permessage-deflate is added by `compression`). */
  readonly extensions?: ReadonlyArray<ClientExtensionFactory> | undefined
  /** Destination host of the TCP connection, instead of the URI's (the URI's host stays in Host and SNI). */
  readonly host?: string | undefined
  /** Destination port of the TCP connection, instead of the URI's. */
  readonly port?: number | undefined
  /** TLS options for `wss://` URIs (a default secure context otherwise). */
  readonly tls?: tls.ConnectionOptions | undefined
  /** Maximum number of redirects to follow. Default {@link MAX_REDIRECTS}. */
  readonly maxRedirects?: number | undefined
  /**
   * Connect over this socket instead of opening one (the seeds' `sock`): a connected `net.Socket`,
   * or any `Duplex` (a tunnel through a proxy, an in-memory pair). For a `wss://` URI, TLS runs over
   * it. The connection owns it and destroys it when it ends. Redirects open sockets of their own.
   */
  readonly sock?: Duplex | undefined
  /** Local address to connect from (the seeds' `local_addr` host; `create_connection`'s option). */
  readonly localAddress?: string | undefined
  /** Local port to connect from (the seeds' `local_addr` port). */
  readonly localPort?: number | undefined
  /** IP version of the connection: 4, 6, or 0 for either (the seeds' `family`). Default 0. */
  readonly family?: 0 | 4 | 6 | undefined
}

/**
 * Everything `connect` can fail with: an invalid URI, a socket that cannot be opened
 * (`ConnectFailed`), or a failed opening handshake (including `OpenTimeout` and `InvalidStatusCode`).
 * @since 0.1.0
 * @category errors
 */
export type ConnectError = InvalidURI | ConnectFailed | InvalidHandshakeFamily

/** Opens the transport and waits until it is connected (TLS: after its handshake). */
const openSocket = (
  wsuri: WebSocketURI,
  options: ConnectOptions,
  unixPath: string | undefined
): Effect.Effect<Duplex, ConnectFailed, Scope.Scope> =>
  Effect.acquireRelease(
    callback<Duplex, ConnectFailed>((resume) => {
      const host = options.host ?? wsuri.host
      const port = options.port ?? wsuri.port
      const address = unixPath ?? (host.includes(":") ? `[${host}]:${port}` : `${host}:${port}`)
      // allowHalfOpen: the protocol decides when to half-close (the server closes first, RFC 6455 §7.1.1).
      const destination =
        unixPath !== undefined
          ? { path: unixPath }
          : {
              host,
              port,
              ...(options.localAddress !== undefined ? { localAddress: options.localAddress } : {}),
              ...(options.localPort !== undefined ? { localPort: options.localPort } : {}),
              ...(options.family !== undefined ? { family: options.family } : {})
            }
      // highWaterMark: a paused socket (maxQueue reached) buffers at most readLimit bytes before it
      // stops reading from the kernel, as on the server.
      const highWaterMark = options.readLimit ?? defaults.readLimit
      // allowHalfOpen and highWaterMark are honoured by tls.connect (it creates the TLSSocket with
      // them; it ignores readableHighWaterMark) but not typed there.
      const tlsOptions: tls.ConnectionOptions & { allowHalfOpen: boolean; highWaterMark: number } = {
        ...destination,
        servername: net.isIP(wsuri.host) ? "" : wsuri.host,
        ALPNProtocols: ["http/1.1"],
        ...options.tls,
        allowHalfOpen: true,
        highWaterMark
      }
      // Node's Socket takes its Duplex's readableHighWaterMark; @types/node 20 does not list it. Only
      // the readable side: a 64 KiB writable one (Node 20's default is 16 KiB) made a client echoing
      // large compressed messages twice as slow on Node 20 (test/hostile/closeAnsweredPromptly).
      const netOptions: net.NetConnectOpts & { readableHighWaterMark: number } = {
        ...destination,
        allowHalfOpen: true,
        readableHighWaterMark: highWaterMark
      }
      const sock = options.sock
      if (sock !== undefined && !wsuri.secure) {
        // The application's socket, connected already (the seeds' `sock`).
        ;(sock as Partial<net.Socket>).setNoDelay?.(true)
        resume(Effect.succeed(sock))
        return
      }
      // A wss:// URI over the application's socket: TLS runs over it.
      const socket: net.Socket = wsuri.secure
        ? tls.connect(sock !== undefined ? { ...tlsOptions, socket: sock } : tlsOptions)
        : net.connect(netOptions)
      socket.setNoDelay?.(true)
      const onError = (cause: Error) => resume(Effect.fail(new ConnectFailed({ address, cause })))
      socket.once("error", onError)
      socket.once(wsuri.secure ? "secureConnect" : "connect", () => {
        socket.off("error", onError)
        resume(Effect.succeed(socket))
      })
      return Effect.sync(() => socket.destroy())
    }),
    (socket) => Effect.sync(() => socket.destroy())
  )

/** One connection attempt to one URI, without redirects. */
const connectOnce = (
  wsuri: WebSocketURI,
  options: ConnectOptions,
  unixPath: string | undefined
): Effect.Effect<WebSocketImpl, ConnectFailed | InvalidHandshakeFamily, Scope.Scope> =>
  Effect.gen(function* () {
    // Timers of this connection (close timer, keepalive) end with its scope; this finalizer runs last.
    const timers = yield* Timers.make
    // The connection's span starts with the TCP connection, under the caller's span.
    const telemetry = yield* Telemetry.make("client", options)
    const spans = telemetry.startSpans(yield* Effect.option(Effect.currentParentSpan))
    const socket = yield* openSocket(wsuri, options, unixPath).pipe(
      Effect.onExit((exit) =>
        Exit.isSuccess(exit) ? Effect.void : Effect.sync(() => telemetry.failedEarly(spans, exit))
      )
    )
    const ws = yield* handshakeOver(
      socket,
      wsuri,
      options,
      timers,
      (ws) => {
        // The peer's end of a unix socket is the path; ours is unnamed (as getpeername/getsockname say).
        if (unixPath !== undefined) ws.remoteAddress = { _tag: "UnixAddress", path: unixPath }
      },
      { telemetry, spans }
    )
    return ws
  })

/**
 * Performs the client's opening handshake over an open transport and returns the open connection;
 * closing the scope performs the closing handshake.
 * @internal
 */
export const handshakeOver = (
  socket: Duplex,
  wsuri: WebSocketURI,
  options: ConnectOptions,
  timers: Timers,
  prepare?: (ws: WebSocketImpl) => void,
  observed?: { readonly telemetry: Telemetry; readonly spans: ConnectionSpans | undefined }
): Effect.Effect<WebSocketImpl, InvalidHandshakeFamily, Scope.Scope> =>
  Effect.gen(function* () {
    const telemetry = observed?.telemetry ?? (yield* Telemetry.make("client", options))
    const spans =
      observed !== undefined ? observed.spans : telemetry.startSpans(yield* Effect.option(Effect.currentParentSpan))
    const extensions =
      options.compression === null ? options.extensions : enableClientPermessageDeflate(options.extensions)
    const protocol = new ClientConnection(wsuri, {
      origin: options.origin,
      subprotocols: options.subprotocols,
      extraHeaders: options.extraHeaders,
      userAgent: options.userAgent,
      maxHeaderSize: options.maxHeaderSize,
      extensions,
      maxSize: options.maxSize === undefined ? defaults.maxSize : options.maxSize,
      logger: telemetry.logger
    })
    const ws = new WebSocketImpl(protocol, socket, resolveOptions(options), timers, telemetry)
    ws.spans = spans
    prepare?.(ws)
    // Closing the scope performs the closing handshake; close() is bounded by the close timer.
    yield* Effect.addFinalizer(() => ws.close())
    const request: Request = protocol.connect()
    protocol.sendRequest(request)
    ws.flushAndWatch()
    const response = (yield* Deferred.await(ws.handshakeEvent)) as Response
    ws.handshakeCompleted(request, response, protocol.subprotocol)
    return ws
  })

/** Follows redirects (RFC 7231 §6.4) up to `maxRedirects`, each attempt in a scope of its own. */
const connectFollowingRedirects = (
  uri: string,
  options: ConnectOptions,
  unixPath: string | undefined
): Effect.Effect<WebSocket, ConnectError, Scope.Scope> =>
  Effect.gen(function* () {
    const outer = yield* Effect.scope
    let wsuri = yield* fromResult(parseUri(uri))
    const maxRedirects = options.maxRedirects ?? MAX_REDIRECTS
    for (let redirects = 0; ; redirects++) {
      const scope = yield* forkScope(outer)
      const exit = yield* provideScope(connectOnce(wsuri, options, unixPath), scope).pipe(
        // An attempt interrupted (by openTimeout, or a caller's timeout) releases its socket now,
        // not when the caller's scope closes.
        Effect.onInterrupt(() => Scope.close(scope, interrupted)),
        Effect.exit
      )
      if (Exit.isSuccess(exit)) return exit.value as WebSocket
      yield* Scope.close(scope, exit)
      const error = firstError(exit.cause)
      const location =
        error?._tag === "InvalidStatusCode" && [301, 302, 303, 307, 308].includes(error.statusCode)
          ? error.headers?.find(([name]) => name.toLowerCase() === "location")?.[1]
          : undefined
      if (location === undefined) return yield* Effect.failCause(exit.cause)
      if (redirects >= maxRedirects) {
        return yield* Effect.fail(new InvalidMessage({ detail: `too many redirects (more than ${maxRedirects})` }))
      }
      wsuri = yield* resolveRedirect(wsuri, location)
      // A redirect to another host cannot keep a TCP destination override, a unix socket, or the
      // application's socket (which the first attempt owned and closed).
      unixPath = undefined
      if (options.sock !== undefined) options = { ...options, sock: undefined }
    }
  })

const resolveRedirect = (wsuri: WebSocketURI, location: string) =>
  Effect.suspend(() => {
    let target: string
    try {
      const base = formatUri(wsuri).replace(/^ws/, "http")
      target = new URL(location, base).href.replace(/^http/, "ws")
    } catch (cause) {
      return Effect.fail(new InvalidURI({ uri: location, detail: `invalid redirect location: ${String(cause)}` }))
    }
    const next = parseUri(target)
    // RFC 6455 §10.7 spirit: never downgrade a secure connection through a redirect.
    if (Result.isSuccess(next) && wsuri.secure && !Result.successOf(next).secure) {
      return Effect.fail(new InvalidURI({ uri: target, detail: "redirect from a secure to an insecure URI" }))
    }
    return fromResult(next)
  })

const withOpenTimeout = <A, E, R>(
  effect: Effect.Effect<A, E, R>,
  options: ConnectOptions
): Effect.Effect<A, E | OpenTimeout, R> => {
  const duration = resolveOptionalDuration(options.openTimeout, defaults.openTimeout)
  if (duration === null) return effect
  return timeoutFail(effect, duration, () => new OpenTimeout({ timeoutMillis: Duration.toMillis(duration) }))
}

/**
 * Connects to the WebSocket server at `uri` and performs the opening handshake. The connection is
 * closed (closing handshake, bounded by `closeTimeout`) when the enclosing `Scope` closes.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Client } from "effect-websockets"
 *
 * const program = Effect.scoped(Effect.gen(function* () {
 *   const ws = yield* Client.connect("ws://127.0.0.1:8765/")
 *   yield* ws.send("Hello")
 *   console.log(yield* ws.recv)
 * }))
 * ```
 * @since 0.1.0
 * @category constructors
 */
export const connect = (
  uri: string,
  options: ConnectOptions = {}
): Effect.Effect<WebSocket, ConnectError, Scope.Scope> =>
  withOpenTimeout(connectFollowingRedirects(uri, options, undefined), options)

/**
 * Like {@link connect}, over the unix socket at `path`. `uri` gives the Host header and the
 * resource name.
 * @since 0.1.0
 * @category constructors
 */
export const unixConnect = (
  path: string,
  uri = "ws://localhost/",
  options: ConnectOptions = {}
): Effect.Effect<WebSocket, ConnectError, Scope.Scope> =>
  withOpenTimeout(connectFollowingRedirects(uri, options, path), options)

/**
 * Options of {@link reconnect}.
 * @since 0.1.0
 * @category models
 */
export interface ReconnectOptions<E> extends ConnectOptions {
  /**
   * Delays between attempts to open a connection; default {@link defaultBackoff}. Once the schedule
   * is exhausted, `reconnect` fails with the last error.
   */
  readonly schedule?: Schedule.Schedule<unknown, unknown> | undefined
  /**
   * Which failures trigger a reconnection; default {@link isRetryableByDefault}. Anything else
   * (from opening the connection or from the handler) ends the loop with that error.
   */
  readonly isRetryable?: ((error: ConnectError | E) => boolean) | undefined
}

/**
 * The default reconnection backoff: starts at 3 seconds, grows by the golden ratio with jitter, and
 * stays at 60 seconds at most (Python's documented behaviour).
 * @since 0.1.0
 * @category constants
 */
export const defaultBackoff: Schedule.Schedule<unknown, unknown> = shorterDelay(
  Schedule.jittered(Schedule.exponential("3 seconds", 1.618)),
  Schedule.spaced("60 seconds")
)

/**
 * The failures {@link reconnect} retries unless told otherwise. As in Python, every error "while
 * establishing the connection" (a socket that cannot be opened, any failed or timed-out opening
 * handshake) and a handler ended by ConnectionClosed; not an invalid URI, which no retry can fix,
 * nor any other failure of the handler.
 * @since 0.1.0
 * @category predicates
 */
export const isRetryableByDefault = (error: unknown): boolean =>
  error instanceof ConnectFailed || isInvalidHandshake(error) || isConnectionClosed(error)

/**
 * Keeps a connection to `uri` alive: connects, runs `handler` on the connection, and when the
 * connection fails or closes, reconnects (Python's `async for websocket in connect(...)`).
 * Opening a connection is retried after each delay of `schedule` while the failure is retryable;
 * once the schedule is exhausted, `reconnect` fails with the last error. Once a connection has
 * opened, a retryable end of the handler (ConnectionClosed by default), or its normal return,
 * reconnects at once, with the schedule starting over. Any other failure ends the loop.
 *
 * Connections are opened by the {@link Client} service when one is provided (so that a test
 * double replaces them), else by {@link connect}.
 * @since 0.1.0
 * @category combinators
 */
export const reconnect = <E, R>(
  uri: string,
  handler: (ws: WebSocket) => Effect.Effect<void, E, R>,
  options: ReconnectOptions<E> = {}
): Effect.Effect<never, ConnectError | E, R> =>
  Effect.flatMap(Effect.serviceOption(Client), (service) => {
    const client = Option.getOrElse(service, () => defaultClient)
    const isRetryable = options.isRetryable ?? isRetryableByDefault
    // Only opening a connection backs off. Effect.retry fails with the last error once the
    // schedule is exhausted, and that failure is not caught below: it ends the loop.
    const open = Effect.retry(client.connect(uri, options), {
      schedule: options.schedule ?? defaultBackoff,
      while: isRetryable
    })
    const session = Effect.scoped(
      Effect.flatMap(open, (ws) =>
        handler(ws).pipe(
          Effect.andThen(ws.close()),
          Effect.catchIf(isRetryable, () => Effect.void)
        )
      )
    )
    return Effect.forever(session)
  })

/**
 * The client as a service, so that applications can be tested with it swapped out.
 * @since 0.1.0
 * @category models
 */
export interface WebSocketClient {
  readonly connect: (uri: string, options?: ConnectOptions) => Effect.Effect<WebSocket, ConnectError, Scope.Scope>
  readonly unixConnect: (
    path: string,
    uri?: string,
    options?: ConnectOptions
  ) => Effect.Effect<WebSocket, ConnectError, Scope.Scope>
}

/**
 * Tag of the {@link WebSocketClient} service.
 * @since 0.1.0
 * @category tags
 */
export class Client extends Service<Client, WebSocketClient>()("effect-websockets/WebSocketClient") {}

/**
 * Builds a client whose connections use `defaults` unless a call overrides them.
 * @since 0.1.0
 * @category constructors
 */
export const make = (defaultOptions: ConnectOptions = {}): WebSocketClient => ({
  connect: (uri, options) => connect(uri, { ...defaultOptions, ...options }),
  unixConnect: (path, uri, options) => unixConnect(path, uri, { ...defaultOptions, ...options })
})

/**
 * A layer providing the {@link Client} service over Node sockets.
 * @since 0.1.0
 * @category layers
 */
export const layer = (defaultOptions: ConnectOptions = {}): Layer.Layer<Client> =>
  Layer.succeed(Client, make(defaultOptions))

/** What {@link reconnect} uses when no {@link Client} service is provided. */
const defaultClient: WebSocketClient = make()

// ---------------------------------------------------------------------------
// Options from Effect Config
// ---------------------------------------------------------------------------

/**
 * The connection options that {@link config} reads, each one present only when its key is set.
 * @since 0.3.0
 * @category models
 */
export type ClientConfig = ConnectionConfig

/**
 * The connection options read from Effect `Config` (the environment by default), under flat names:
 * `OPEN_TIMEOUT`, `PING_INTERVAL`, `PING_TIMEOUT`, `CLOSE_TIMEOUT` (durations as `Config.duration`
 * reads them, such as `20 seconds`, or a number of milliseconds), `MAX_SIZE`, `MAX_QUEUE`,
 * `READ_LIMIT`, `WRITE_LIMIT`, `MAX_HEADER_SIZE` (non-negative integers) and `COMPRESSION`
 * (`deflate` or `none`). The same names as the server's (see `Server.config`), without `HOST`,
 * `PORT` and `UNIX`: where to connect is the URI's business.
 *
 * A missing key leaves its option out, so the value given in code, or else the default, applies.
 * `none` or `off` (any case) disables `OPEN_TIMEOUT`, `PING_INTERVAL`, `PING_TIMEOUT`, `MAX_SIZE`
 * and `MAX_QUEUE` (Python's `None`); those refuse `0`. A value that does not parse fails with a
 * `ConfigError` at its key. `Config.nested(Client.config, "WS_CLIENT")` reads `WS_CLIENT_MAX_SIZE`
 * and so on from the environment: pass it to {@link layerConfig}.
 *
 * @since 0.3.0
 * @category config
 */
export const config: Config.Config<ClientConfig> = connectionConfig

/**
 * Like {@link layer}, with the connections' default options read from Effect `Config` (see
 * {@link config}) over those given in code: `defaultOptions` are the base, and each key present in
 * the configuration overrides its option. Options given to one `connect` call still win. Pass
 * `fromConfig` to read other names, for example `Config.nested(Client.config, "WS_CLIENT")`.
 *
 * @since 0.3.0
 * @category layers
 */
export const layerConfig = (
  defaultOptions: ConnectOptions = {},
  fromConfig: Config.Config<ClientConfig> = config
): Layer.Layer<Client, ConfigError> =>
  Layer.effect(
    Client,
    Effect.map(fromConfig, (configured) => make({ ...defaultOptions, ...configured }))
  )
