/**
 * The WebSocket server (Python `websockets.server.serve` / `unix_serve` / `WebSocketServer`):
 * accepts TCP, TLS or unix-socket connections, performs the opening handshake and runs a handler
 * per connection in its own fiber. Provided as a `WebSocketServer` service with a layer, or as a
 * scoped constructor.
 *
 * @since 0.1.0
 */
import { lstatSync, unlinkSync } from "node:fs"
import * as net from "node:net"
import * as tls from "node:tls"
import { SocketServerError } from "@effect/platform/SocketServer"
import * as Cause from "effect/Cause"
import * as Context from "effect/Context"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as FiberSet from "effect/FiberSet"
import * as Layer from "effect/Layer"
import type * as Scope from "effect/Scope"
import { State } from "./Connection.js"
import { isConnectionClosed, OpenTimeout } from "./Errors.js"
import type { ServerExtensionFactory } from "./extensions/Extension.js"
import { enableServerPermessageDeflate } from "./extensions/PermessageDeflate.js"
import { fromHeadersLike, type Headers, type HeadersLike } from "./Headers.js"
import { type Request, Response, reasonPhrase } from "./Http11.js"
import { fanOut } from "./internal/fanOut.js"
import { forwardedFor } from "./internal/forwarded.js"
import { Timers } from "./internal/timers.js"
import { resolveOptions, WebSocketImpl } from "./internal/webSocket.js"
import { type SelectSubprotocol, ServerConnection } from "./ServerConnection.js"
import {
  type Address,
  CurrentWebSocket,
  type Data,
  defaults,
  type OptionalDuration,
  resolveOptionalDuration,
  type WebSocket,
  type WebSocketOptions
} from "./WebSocket.js"

/**
 * An HTTP response returned by `processRequest` to answer a request without a WebSocket
 * handshake (for example 200 on a health check path, or 401/403).
 * @since 0.1.0
 * @category models
 */
export interface HttpResponse {
  readonly status: number
  readonly headers?: HeadersLike | undefined
  readonly body?: Uint8Array | string | undefined
}

/**
 * Intercepts a handshake request: an {@link HttpResponse} answers it without a WebSocket, `undefined`
 * (or `Effect.void`) continues the handshake.
 * @since 0.1.0
 * @category models
 */
export type ProcessRequest<R> = (
  path: string,
  headers: Headers
  // biome-ignore lint/suspicious/noConfusingVoidType: lets a hook end with `Effect.void` to continue the handshake.
) => Effect.Effect<HttpResponse | undefined | void, unknown, R>

/**
 * Options of `serve`, with Python's defaults.
 * @since 0.1.0
 * @category models
 */
export interface ServeOptions<R = never> extends WebSocketOptions {
  /** Interface to listen on; default: every interface, as Node and Python do. */
  readonly host?: string | undefined
  /** Port to listen on; 0 picks a free port (read it from `address`). */
  readonly port?: number | undefined
  /**
   * Listen on this unix socket path instead of TCP (Python's `unix_serve`). A socket file left there
   * by a server that died is removed first; anything else at the path makes listening fail.
   */
  readonly unix?: string | undefined
  /** TLS options: serve `wss://` with this key and certificate. */
  readonly tls?: tls.TlsOptions | undefined
  /** Acceptable Origin headers; include `null` to accept requests without one. */
  readonly origins?: ReadonlyArray<string | null> | undefined
  /** Supported subprotocols, in order of decreasing preference. */
  readonly subprotocols?: ReadonlyArray<string> | undefined
  /** Custom subprotocol selection. */
  readonly selectSubprotocol?: SelectSubprotocol | undefined
  /** Extra headers of successful handshake responses, or a function of the path and request headers. */
  readonly extraHeaders?: HeadersLike | ((path: string, headers: Headers) => HeadersLike) | undefined
  /** Server header; `null` omits it. */
  readonly serverHeader?: string | null | undefined
  /**
   * Intercepts each handshake request: return an {@link HttpResponse} to answer it without a
   * WebSocket (the connection is then closed), or `undefined` to continue the handshake. A failure
   * is logged and answered with 500.
   */
  readonly processRequest?: ProcessRequest<R> | undefined
  /** Time allowed for a client to complete the opening handshake; `null` disables it. Default 10 seconds. */
  readonly openTimeout?: OptionalDuration
  /**
   * Maximum size in bytes of a handshake request's head (request line, headers, CRLFs): a larger
   * one gets 431 as soon as this many bytes arrived. Default 16 KiB, as Node's `http`.
   */
  readonly maxHeaderSize?: number | undefined
  /** `"deflate"` (default) enables permessage-deflate; `null` disables compression. */
  readonly compression?: "deflate" | null | undefined
  /** Supported extensions, in order of preference (permessage-deflate is added by `compression`). */
  readonly extensions?: ReadonlyArray<ServerExtensionFactory> | undefined
  /**
   * The server is behind this many reverse proxies (`true`: one), which append the address they
   * saw to `X-Forwarded-For`: `remoteAddress` is then the client's address from that header (port
   * 0, which proxies do not forward). Only for servers that clients cannot reach but through the
   * proxies, or any client could choose its address. Default: the TCP peer's address.
   */
  readonly trustProxy?: boolean | number | undefined
}

/**
 * A running WebSocket server.
 * @since 0.1.0
 * @category models
 */
export interface WebSocketServer {
  /** Address the server listens on. */
  readonly address: Address
  /** Open connections (a live view). */
  readonly connections: ReadonlySet<WebSocket>
  /**
   * Shuts down: stops accepting, answers handshakes in progress with 503, closes open connections
   * with 1001 and waits for their handlers, within the close timeout. Idempotent.
   */
  readonly close: Effect.Effect<void>
  /** Completes once the server is closed and every handler has returned. */
  readonly waitClosed: Effect.Effect<void>
  /**
   * Sends a message to every open connection (or the given ones) without waiting for slow ones:
   * a connection whose write buffer is over `writeLimit` is skipped. Returns how many got it.
   */
  readonly broadcast: (message: Data, connections?: Iterable<WebSocket>) => Effect.Effect<number>
}

/**
 * Tag of the {@link WebSocketServer} service.
 * @since 0.1.0
 * @category tags
 */
export class Server extends Context.Tag("effect-websockets/WebSocketServer")<Server, WebSocketServer>() {}

/**
 * A connection handler: runs once per connection, in its own fiber. When it ends, the server closes
 * the connection: with 1000 after success, 1011 after a failure (which is logged).
 * @since 0.1.0
 * @category models
 */
export type Handler<E, R> = (ws: WebSocket) => Effect.Effect<void, E, R>

/**
 * Removes a unix socket file left behind by a server that died without unlinking it, so that
 * listening does not fail with EADDRINUSE (Python's asyncio removes a socket file before binding).
 * Only a socket that nobody accepts on (connecting is refused) is removed: a live server keeps its
 * socket, and a path that is not a socket (nor a symlink to one) is never touched; listening then
 * fails with EADDRINUSE.
 */
const removeStaleSocket = (path: string): Effect.Effect<void> =>
  Effect.async<void>((resume) => {
    let isSocket = false
    try {
      isSocket = lstatSync(path).isSocket()
    } catch {
      // Nothing there (or nothing we may look at): listening reports any problem.
    }
    if (!isSocket) return resume(Effect.void)
    const probe = net.connect({ path })
    probe.once("connect", () => {
      probe.destroy()
      resume(Effect.void)
    })
    probe.once("error", (error: NodeJS.ErrnoException) => {
      if (error.code === "ECONNREFUSED") {
        try {
          unlinkSync(path)
        } catch {
          // Removed meanwhile, or not ours to remove: listening reports it.
        }
      }
      resume(Effect.void)
    })
    return Effect.sync(() => probe.destroy())
  })

const listen = (server: net.Server, options: ServeOptions<any>): Effect.Effect<Address, SocketServerError> =>
  Effect.zipRight(options.unix !== undefined ? removeStaleSocket(options.unix) : Effect.void, listenOn(server, options))

const listenOn = (server: net.Server, options: ServeOptions<any>): Effect.Effect<Address, SocketServerError> =>
  Effect.async<Address, SocketServerError>((resume) => {
    const onError = (cause: Error) => resume(Effect.fail(new SocketServerError({ reason: "Open", cause })))
    server.once("error", onError)
    const onListening = () => {
      server.off("error", onError)
      const address = server.address()
      resume(
        Effect.succeed(
          typeof address === "string" || address === null
            ? { _tag: "UnixAddress", path: address ?? options.unix ?? "" }
            : { _tag: "TcpAddress", hostname: address.address, port: address.port }
        )
      )
    }
    if (options.unix !== undefined) server.listen({ path: options.unix }, onListening)
    else server.listen({ host: options.host, port: options.port ?? 0 }, onListening)
  })

/**
 * Starts a WebSocket server running `handler` for every connection; it shuts down gracefully (see
 * {@link WebSocketServer.close}) when the enclosing `Scope` closes.
 *
 * @example
 * ```ts
 * const echo = (ws: WebSocket) => Stream.runForEach(ws.messages, (message) => ws.send(message))
 * Effect.scoped(Effect.gen(function* () {
 *   const server = yield* Server.serve(echo, { host: "127.0.0.1", port: 8765 })
 *   yield* server.waitClosed
 * }))
 * ```
 * @since 0.1.0
 * @category constructors
 */
export const serve = <E, R, RP = never>(
  handler: Handler<E, R>,
  options: ServeOptions<RP> = {}
): Effect.Effect<WebSocketServer, SocketServerError, Scope.Scope | Exclude<R, CurrentWebSocket> | RP> =>
  Effect.gen(function* () {
    const resolved = resolveOptions(options)
    const openTimeout = resolveOptionalDuration(options.openTimeout, defaults.openTimeout)
    const extensions =
      options.compression === null ? options.extensions : enableServerPermessageDeflate(options.extensions)
    const connections = new Set<WebSocketImpl>()
    const proxyHops = options.trustProxy === true ? 1 : typeof options.trustProxy === "number" ? options.trustProxy : 0
    const closed = yield* Deferred.make<void>()
    let shuttingDown = false

    // Timers of every connection (close timeout, keepalive) in one queue with one fiber for the
    // server. Made before `handlers`, so it is closed after them.
    const timers = yield* Timers.make
    // Handler fibers, one per connection; interrupted if still running when the scope closes.
    const handlers = yield* FiberSet.make<void, never>()
    // The server provides CurrentWebSocket to each handler, so callers need not.
    const runHandler = yield* FiberSet.runtime(handlers)<Exclude<R, CurrentWebSocket> | RP>()

    const handshake = (ws: WebSocketImpl, protocol: ServerConnection) =>
      Effect.gen(function* () {
        const request = (yield* Deferred.await(ws.handshakeEvent)) as Request
        let response: Response | undefined
        if (shuttingDown) {
          response = protocol.reject(503, "Server is shutting down.\n")
        } else if (options.processRequest !== undefined) {
          const intercepted = yield* options
            .processRequest(request.path, request.headers)
            .pipe(
              Effect.catchAllCause((cause) =>
                Effect.logError("processRequest failed", cause).pipe(
                  Effect.annotateLogs({ connectionId: ws.id }),
                  Effect.as<HttpResponse>({ status: 500, body: "Failed to open a WebSocket connection.\n" })
                )
              )
            )
          if (intercepted !== undefined) response = toResponse(intercepted)
        }
        response ??= protocol.accept(request)
        protocol.sendResponse(response)
        ws.flushAndWatch()
        // Not OPEN after a 101 when the client went away meanwhile.
        if (protocol.state !== State.OPEN) return false
        if (proxyHops > 0) ws.remoteAddress = forwardedFor(request.headers, proxyHops) ?? ws.remoteAddress
        ws.open(request, response, protocol.subprotocol)
        return true
      })

    const handleSocket = (socket: net.Socket) =>
      Effect.scoped(
        Effect.gen(function* () {
          const protocol = new ServerConnection({
            origins: options.origins,
            subprotocols: options.subprotocols,
            selectSubprotocol: options.selectSubprotocol,
            extraHeaders: options.extraHeaders,
            serverHeader: options.serverHeader,
            maxHeaderSize: options.maxHeaderSize,
            extensions,
            maxSize: resolved.maxSize
          })
          const ws = new WebSocketImpl(protocol, socket, resolved, timers)
          // Our end of a unix socket is the path we listen on; the client's end is unnamed.
          if (options.unix !== undefined) ws.localAddress = { _tag: "UnixAddress", path: options.unix }
          yield* Effect.addFinalizer(() => Effect.sync(() => ws.abort()))
          const opening =
            openTimeout === null
              ? handshake(ws, protocol)
              : Effect.timeoutFail(handshake(ws, protocol), {
                  duration: openTimeout,
                  onTimeout: () => new OpenTimeout({ timeoutMillis: Duration.toMillis(openTimeout) })
                })
          const opened = yield* Effect.exit(opening)
          if (Exit.isFailure(opened) || !opened.value) {
            // A failed or rejected handshake: the response (if any) is written, then the TCP
            // connection closes; a client that never completed its handshake is dropped.
            yield* Effect.logDebug("opening handshake failed").pipe(
              Effect.annotateLogs({ connectionId: ws.id }),
              Effect.when(() => Exit.isFailure(opened))
            )
            if (Exit.isFailure(opened)) ws.abort()
            yield* ws.waitClosed.pipe(Effect.timeout(resolved.closeTimeout), Effect.ignore)
            return
          }
          connections.add(ws)
          const exit = yield* Effect.exit(handler(ws).pipe(Effect.provideService(CurrentWebSocket, ws)))
          connections.delete(ws)
          if (Exit.isFailure(exit) && !isClosedFailure(exit.cause)) {
            if (!Cause.isInterruptedOnly(exit.cause)) {
              yield* Effect.logError("connection handler failed", exit.cause).pipe(
                Effect.annotateLogs({ connectionId: ws.id })
              )
            }
            yield* ws.close(1011)
          } else {
            yield* ws.close(shuttingDown ? 1001 : 1000)
          }
        })
      )

    const server =
      options.tls !== undefined
        ? tls.createServer({ ...options.tls, allowHalfOpen: true, highWaterMark: resolved.readLimit })
        : null
    // highWaterMark: a paused socket (maxQueue reached) buffers at most readLimit bytes before the
    // kernel's buffers, then TCP flow control, push back on the peer.
    const netServer: net.Server = server ?? net.createServer({ allowHalfOpen: true, highWaterMark: resolved.readLimit })
    netServer.on(server !== null ? "secureConnection" : "connection", (socket: net.Socket) => {
      if (shuttingDown) {
        socket.destroy()
        return
      }
      socket.setNoDelay?.(true)
      runHandler(handleSocket(socket))
    })
    // TLS handshake failures concern one client only.
    netServer.on("tlsClientError", () => {})

    const address = yield* listen(netServer, options)

    let closing: Effect.Effect<void> | undefined
    const close: Effect.Effect<void> = Effect.suspend(() => {
      if (closing !== undefined) return closing
      shuttingDown = true
      closing = Effect.gen(function* () {
        // Stop accepting. Handshakes in progress get a 503 from `handshake` (bounded by openTimeout).
        // As Python documents, a connection accepted before shutdown whose request arrives later gets a
        // 503; waiting for such requests is bounded by closeTimeout below (and openTimeout).
        netServer.close()
        yield* Effect.forEach(connections, (ws) => ws.close(1001), { concurrency: "unbounded", discard: true }).pipe(
          Effect.timeout(resolved.closeTimeout),
          Effect.ignore
        )
        yield* FiberSet.awaitEmpty(handlers).pipe(Effect.timeout(resolved.closeTimeout), Effect.ignore)
        yield* FiberSet.clear(handlers)
        yield* Deferred.succeed(closed, undefined)
      }).pipe(Effect.cached, Effect.flatten)
      return closing
    })
    yield* Effect.addFinalizer(() => close)

    const broadcast = (message: Data, targets: Iterable<WebSocket> = connections) =>
      Effect.sync(() => fanOut(message, targets).delivered)

    return {
      address,
      connections,
      close,
      waitClosed: Deferred.await(closed),
      broadcast
    } satisfies WebSocketServer
  }).pipe(Effect.withSpan("effect-websockets.serve"))

/**
 * Like {@link serve}, listening on the unix socket at `path` (Python's `unix_serve`).
 * @since 0.1.0
 * @category constructors
 */
export const unixServe = <E, R, RP = never>(
  handler: Handler<E, R>,
  path: string,
  options: ServeOptions<RP> = {}
): Effect.Effect<WebSocketServer, SocketServerError, Scope.Scope | Exclude<R, CurrentWebSocket> | RP> =>
  serve(handler, { ...options, unix: path })

/**
 * A layer providing the {@link Server} service: the server runs while the layer is alive.
 * @since 0.1.0
 * @category layers
 */
export const layer = <E, R, RP = never>(
  handler: Handler<E, R>,
  options: ServeOptions<RP> = {}
): Layer.Layer<Server, SocketServerError, Exclude<R, CurrentWebSocket> | RP> =>
  Layer.scoped(Server, serve(handler, options))

const toResponse = (response: HttpResponse): Response => {
  const headers = fromHeadersLike(response.headers).copy()
  const body =
    response.body === undefined
      ? new Uint8Array(0)
      : typeof response.body === "string"
        ? new TextEncoder().encode(response.body)
        : response.body
  if (!headers.has("Content-Length")) headers.append("Content-Length", String(body.byteLength))
  if (!headers.has("Connection")) headers.append("Connection", "close")
  return new Response(response.status, reasonPhrase(response.status), headers, body)
}

/** A handler that ended because the connection closed has nothing worth logging. */
const isClosedFailure = <E>(cause: Cause.Cause<E>): boolean =>
  Cause.failureOption(cause).pipe((option) => option._tag === "Some" && isConnectionClosed(option.value))
