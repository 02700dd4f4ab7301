/**
 * The WebSocket server (Python `websockets.server.serve` / `unix_serve` / `Server`): performs the
 * opening handshake and runs a handler per connection in its own fiber.
 *
 * Connections reach it through one of three front doors, all feeding the same accept path
 * ({@link makeAcceptor}): its own TCP, TLS or unix-socket listener ({@link serve}), a Node
 * `http`/`https` server's `'upgrade'` event (`NodeMount`), or a route of an `@effect/platform`
 * `HttpRouter` (`HttpRouterRoute`).
 *
 * @since 0.1.0
 */

import { lstatSync, unlinkSync } from "node:fs"
import * as net from "node:net"
import type { Duplex } from "node:stream"
import * as tls from "node:tls"
import type * as Cause from "effect/Cause"
import type * as Config from "effect/Config"
import * as Context from "effect/Context"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as FiberSet from "effect/FiberSet"
import type * as Layer from "effect/Layer"
import type * as Scope from "effect/Scope"
import * as Tracer from "effect/Tracer"
import { type ConnectionLogger, State } from "./Connection.js"
import { type ConnectionClosedError, isConnectionClosed, ListenFailed } from "./Errors.js"
import type { ServerExtensionFactory } from "./extensions/Extension.js"
import { enableServerPermessageDeflate } from "./extensions/PermessageDeflate.js"
import { fromHeadersLike, type Headers, type HeadersLike } from "./Headers.js"
import { type Request, Response, reasonPhrase } from "./Http11.js"
import {
  addToFiberSet,
  type ConfigError,
  callback,
  catchAllCause,
  currentFiberStarter,
  deriveFiberStarter,
  type FiberStarter,
  firstError,
  forkWith,
  interruptFiber,
  isInterruptedOnly,
  omitStackFrame,
  pollFiber,
  type RunningFiber,
  Service,
  scopedLayer,
  starterContext,
  starterLogAnnotations
} from "./internal/effectCompat.js"
import type { ConnectionLogLevel } from "./internal/effectTelemetry.js"
import { fanOut } from "./internal/fanOut.js"
import { forwardedFor } from "./internal/forwarded.js"
import { serverConfig } from "./internal/optionsConfig.js"
import { Telemetry } from "./internal/telemetry.js"
import { type Timer, Timers } from "./internal/timers.js"
import { completeWithoutFiber, resolveOptions, WebSocketImpl } from "./internal/webSocket.js"
import { type SelectSubprotocol, ServerConnection } from "./ServerConnection.js"
import {
  type Address,
  type ConnectionConfig,
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
 * The opening handshake request as `processRequest` sees it (Python's `process_request(connection,
 * request)` in one value): the request and the addresses of the connection it came on.
 * @since 0.2.0
 * @category models
 */
export interface HandshakeRequest {
  /** Identifier of the connection, as in the logs and `WebSocket.id`. */
  readonly id: string
  /**
   * `GET` for a WebSocket handshake (RFC 6455 §4.1). The hook also sees other methods, so that it can
   * answer a health check by `HEAD` or `POST`; a request of another method that the hook lets
   * through gets 405 with `Allow: GET`, never an upgrade. A response to `HEAD` is sent without its
   * body.
   */
  readonly method: string
  /** The request target, query included (for example `/chat?room=1`), neither decoded nor validated. */
  readonly path: string
  readonly headers: Headers
  /** The client's address (`undefined` when unknown, for example on a unix socket). */
  readonly remoteAddress: Address | undefined
  readonly localAddress: Address | undefined
}

/**
 * What `processRequest` returns to continue the handshake with a value for the handler (for example
 * the authenticated user): the handler receives `value` as its second argument. Build it with
 * {@link proceed}.
 * @since 0.2.0
 * @category models
 */
export class Proceed<A> {
  constructor(readonly value: A) {}
}

/**
 * Continues the handshake, handing `value` to the connection's handler.
 * @since 0.2.0
 * @category constructors
 */
export const proceed = <A>(value: A): Proceed<A> => new Proceed(value)

/**
 * Intercepts a handshake request. It answers with an {@link HttpResponse} (no WebSocket: a
 * rejection, a health check), continues with {@link proceed}`(value)` (the handler receives `value`),
 * or, when the handler expects no value, continues with `undefined` (or `Effect.void`).
 * @since 0.1.0
 * @category models
 */
export type ProcessRequest<R, A = undefined> = (
  request: HandshakeRequest
) => Effect.Effect<HttpResponse | Proceed<A> | ContinueWithout<A>, unknown, R>

/**
 * Continuing without {@link proceed} is allowed only when the handler expects no value.
 * @since 0.2.0
 * @category models
 */
// biome-ignore lint/suspicious/noConfusingVoidType: lets a hook end with `Effect.void` to continue the handshake.
export type ContinueWithout<A> = [A] extends [undefined] ? undefined | void : never

/**
 * Options of every server, whatever accepts its connections: protocol, negotiation and limits.
 * @since 0.2.0
 * @category models
 */
export interface ServerOptions<R = never, A = undefined> extends WebSocketOptions {
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
   * Intercepts each handshake request (see {@link ProcessRequest}). After an {@link HttpResponse} the
   * connection is closed. A failure is logged and answered with 500.
   */
  readonly processRequest?: ProcessRequest<R, A> | undefined
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
  /**
   * Level of the server's connection lines: `connection open`, `connection rejected (403
   * Forbidden)`, `connection closed: sent 1009 (message too big); no close frame received`. Default
   * `"Debug"`, below Effect's default minimum level (Info), so that by default they are dropped
   * before they are formatted and cost nothing (Python logs them at INFO on the `websockets.server`
   * logger, which prints nothing until the application configures logging). `"Info"` shows them
   * with Effect's default logger; `"None"` never logs them. Frames are logged at Debug either way.
   */
  readonly connectionLogLevel?: ConnectionLogLevel | undefined
}

/**
 * Options of `serve`, with Python's defaults: a listener and {@link ServerOptions}.
 * @since 0.1.0
 * @category models
 */
export interface ServeOptions<R = never, A = undefined> extends ServerOptions<R, A> {
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
  /**
   * Serve on a listener the application made (the seeds' `sock`): a `net.Server` (a `tls.Server`
   * serves `wss://`), already listening or not (then it listens on `host`/`port`/`unix`), or a
   * listening socket's file descriptor (`{ fd }`, for example from systemd). The server owns it and
   * closes it when it shuts down. A `net.Server` made by the application keeps its own
   * `highWaterMark`: `readLimit` applies to sockets of servers made here.
   */
  readonly sock?: net.Server | { readonly fd: number } | undefined
  /** Maximum length of the queue of pending TCP connections (`listen`'s backlog; Node's default 511). */
  readonly backlog?: number | undefined
  /**
   * Let several servers (processes) listen on the same port, the kernel spreading connections
   * among them (`SO_REUSEPORT`; Linux, FreeBSD). Needs Node 22.12 or later: on older Node,
   * listening fails with `ListenFailed` rather than ignoring it.
   */
  readonly reusePort?: boolean | undefined
}

/**
 * A server's connections and lifecycle, whatever accepts its connections.
 * @since 0.2.0
 * @category models
 */
export interface Endpoint {
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
 * A running WebSocket server with a listener of its own.
 * @since 0.1.0
 * @category models
 */
export interface WebSocketServer extends Endpoint {
  /** Address the server listens on. */
  readonly address: Address
}

/**
 * A request that another HTTP implementation (node:http) already parsed, with the bytes that
 * followed it on the connection.
 * @since 0.2.0
 * @category models
 */
export interface ParsedRequest {
  readonly request: Request
  readonly head: Uint8Array
}

/**
 * A server without a listener of its own: every front door hands it connections through `accept`.
 * @since 0.2.0
 * @category models
 */
export interface Acceptor extends Endpoint {
  /**
   * Runs the server side of the protocol on `socket`: reads the handshake request from it, or takes
   * `parsed` when an HTTP server already read it. Never fails: problems close the socket.
   */
  readonly accept: (socket: Duplex, parsed?: ParsedRequest) => void
}

/**
 * Tag of the {@link WebSocketServer} service.
 * @since 0.1.0
 * @category tags
 */
export class Server extends Service<Server, WebSocketServer>()("effect-websockets/WebSocketServer") {}

/**
 * The server a handler runs in, provided to every handler (by `serve` and by mounted endpoints):
 * a handler broadcasts to the others or counts connections with it, without a cycle in the layer
 * graph.
 * @since 0.2.0
 * @category tags
 */
export class CurrentServer extends Service<CurrentServer, Endpoint>()("effect-websockets/CurrentServer") {}

/**
 * A connection handler: runs once per connection, in its own fiber, with the value its
 * `processRequest` continued with ({@link proceed}). When it ends, the server closes the connection:
 * with 1000 after success, 1011 after a failure (which is logged).
 *
 * A handler that expects a value needs a `processRequest` that provides it: the server's
 * constructors take a handler of `A` other than `undefined` only together with a hook continuing
 * with `proceed(value: A)` ({@link WithProcessRequest}), so `(ws, user: User) => ...` without one
 * does not typecheck (at run time `user` would be `undefined`).
 * @since 0.1.0
 * @category models
 */
export type Handler<E, R, A = undefined> = (ws: WebSocket, value: A) => Effect.Effect<void, E, R>

/** What the server provides to handlers itself. */
type Provided = CurrentWebSocket | CurrentServer

/**
 * The options of a server whose handler expects a value: `processRequest` is required, and its
 * `proceed(value)` gives the handler its second argument. Without it, a handler's value is
 * `undefined`.
 * @since 0.3.0
 * @category models
 */
export interface WithProcessRequest<R, A> {
  readonly processRequest: ProcessRequest<R, A>
}

const kOnMessage = Symbol.for("effect-websockets/Server/onMessage")

/** What {@link onMessage} runs on each message. */
type MessageHandler<E, R, A> = (message: Data, ws: WebSocket, value: A) => Effect.Effect<unknown, E, R>

/**
 * A handler that runs `f` on every message of a connection, one message after the other, until the
 * connection closes: the same as `(ws, value) => ws.forEachMessage((message) => f(message, ws,
 * value))`, but no fiber waits for the next message. The server runs `f` from the socket's
 * callback when a message arrives, and its Effect in one fiber for the messages of that read; an
 * idle connection holds no fiber at all (about 4.5 KiB less each). When `f` returns `ws.send(...)`
 * of one whole message, or an `Exit` (such as `Effect.void`), and the answer needs no wait, no fiber
 * is started either: that is all a message costs. When `f` suspends, the next messages wait, in
 * order, and reading pauses at `maxQueue` as usual.
 *
 * As with any handler: a failure of `f` is logged and closes the connection with 1011; CurrentWebSocket
 * and CurrentServer are provided; the handler's own reads (`recv`, `messages`) would compete with
 * `f` for messages, so it makes none.
 *
 * @example
 * ```ts
 * import { Server } from "effect-websockets"
 *
 * const echo = Server.onMessage((message, ws) => ws.send(message))
 * ```
 * @since 0.3.0
 * @category constructors
 */
export const onMessage = <E, R, A = undefined>(f: MessageHandler<E, R, A>): Handler<E | ConnectionClosedError, R, A> =>
  Object.assign((ws: WebSocket, value: A) => ws.forEachMessage((message) => f(message, ws, value)), {
    [kOnMessage]: f
  })

const messageHandlerOf = <E, R, A>(handler: Handler<E, R, A>): MessageHandler<E, R, A> | undefined =>
  (handler as Handler<E, R, A> & { [kOnMessage]?: MessageHandler<E, R, A> })[kOnMessage]

/** `processRequest` continued without a value. */
const CONTINUE = new Proceed<undefined>(undefined)

/**
 * What a front door with a listener of its own tells the accept path.
 * @since 0.2.0
 * @category models
 */
export interface Listener {
  /** Stops accepting connections; runs first on shutdown. */
  readonly close: () => void
  /**
   * Our end of every connection when the listener knows it: the path of a unix socket (the socket
   * cannot tell), or the address a TCP listener is bound to unless it is a wildcard (saves a
   * system call per connection).
   */
  readonly localAddress?: Address | undefined
}

/**
 * Builds a server without a listener of its own ("noServer"): the one accept path of every front
 * door. It shuts down when the scope closes.
 * @since 0.2.0
 * @category constructors
 */
export const makeAcceptor: {
  <E, R, RP = never, A = undefined>(
    handler: Handler<E, R, A>,
    options: ServerOptions<RP, A> & WithProcessRequest<RP, A>,
    listener?: Listener
  ): Effect.Effect<Acceptor, never, Scope.Scope | Exclude<R, Provided> | RP>
  <E, R, RP = never>(
    handler: Handler<E, R>,
    options?: ServerOptions<RP>,
    listener?: Listener
  ): Effect.Effect<Acceptor, never, Scope.Scope | Exclude<R, Provided> | RP>
} = <E, R, RP = never, A = undefined>(
  handler: Handler<E, R, A>,
  options: ServerOptions<RP, A> = {},
  listener?: Listener
): Effect.Effect<Acceptor, never, Scope.Scope | Exclude<R, Provided> | RP> =>
  Effect.gen(function* () {
    const resolved = resolveOptions(options)
    const proxyHops = options.trustProxy === true ? 1 : typeof options.trustProxy === "number" ? options.trustProxy : 0
    const openTimeout = resolveOptionalDuration(options.openTimeout, defaults.openTimeout)
    const extensions =
      options.compression === null ? options.extensions : enableServerPermessageDeflate(options.extensions)
    // Loggers, tracer and metric labels of the fiber that starts the server, for all its connections.
    const telemetry = yield* Telemetry.make("server", options)
    const connectionOptions = {
      logger: telemetry.logger as ConnectionLogger | undefined,
      origins: options.origins,
      subprotocols: options.subprotocols,
      selectSubprotocol: options.selectSubprotocol,
      extraHeaders: options.extraHeaders,
      serverHeader: options.serverHeader,
      maxHeaderSize: options.maxHeaderSize,
      extensions,
      maxSize: resolved.maxSize,
      state: State.CONNECTING
    }
    const connections = new Set<WebSocketImpl>()
    /** Drops a closed connection (`onClose` of every connection served per message). */
    const forget = (ws: WebSocketImpl): void => {
      connections.delete(ws)
    }
    const closed = yield* Deferred.make<void>()
    let shuttingDown = false

    // Timers of every connection (close timeout, keepalive) in one queue with one fiber for the
    // server. Made before `handlers`, so it is closed after them.
    const timers = yield* Timers.make
    // Handler fibers, one per connection; interrupted if still running when the scope closes.
    const handlers = yield* FiberSet.make<void, never>()

    // Connections whose opening handshake is in progress: they have no fiber, so the server aborts
    // those left when it shuts down.
    const pending = new Set<WebSocketImpl>()
    /** Wakes a shutdown waiting for the handshakes in progress (they get a 503). */
    let pendingDrained: (() => void) | undefined
    const settled = (ws: WebSocketImpl): void => {
      pending.delete(ws)
      if (pending.size === 0) pendingDrained?.()
    }
    const awaitPending: Effect.Effect<void> = callback<void>((resume) => {
      if (pending.size === 0) return resume(Effect.void)
      pendingDrained = () => resume(Effect.void)
    })

    let closing: Effect.Effect<void> | undefined
    const close: Effect.Effect<void> = Effect.suspend(() => {
      if (closing !== undefined) return closing
      shuttingDown = true
      closing = Effect.gen(function* () {
        // Stop accepting. Handshakes in progress get a 503 from `handshake` (bounded by openTimeout).
        // As Python documents, a connection accepted before shutdown whose request arrives later gets a
        // 503; waiting for such requests is bounded by closeTimeout below (and openTimeout).
        listener?.close()
        yield* Effect.forEach(connections, (ws) => ws.close(1001), { concurrency: "unbounded", discard: true }).pipe(
          Effect.timeout(resolved.closeTimeout),
          Effect.ignore
        )
        yield* Effect.andThen(awaitPending, FiberSet.awaitEmpty(handlers)).pipe(
          Effect.timeout(resolved.closeTimeout),
          Effect.ignore
        )
        yield* FiberSet.clear(handlers)
        for (const ws of pending) ws.abort()
        yield* Deferred.succeed(closed, undefined)
      }).pipe(Effect.cached, Effect.flatten)
      return closing
    })
    yield* Effect.addFinalizer(() => close)

    const broadcast = (message: Data, targets: Iterable<WebSocket> = connections) =>
      Effect.sync(() => fanOut(message, targets).delivered)

    const endpoint: Endpoint = { connections, close, waitClosed: Deferred.await(closed), broadcast }

    // The server provides CurrentServer once, in the runtime of every handler fiber (no cost per
    // connection), and CurrentWebSocket to each handler, so callers need neither.
    const starter = yield* currentFiberStarter<Exclude<R, Provided> | RP>()
    // Without the span of the fiber that started the server (`effect-websockets.serve`): it lives as
    // long as the server, and Effect's tracer logger would add every log line of every handler to
    // it as an event. A handler runs in its connection's span, or in none. Without that span's
    // stack frame either: Effect 4 would annotate every failure of every handler with it, a
    // Stream's end included (a `messages` Stream's life in Effect alone: 2.4 µs with it, 1.8 without).
    const handlerContext = Context.add(
      omitStackFrame(Context.omit(Tracer.ParentSpan)(starterContext(starter))),
      CurrentServer,
      endpoint
    )
    const logAnnotations = starterLogAnnotations(starter)
    const openTimeoutMillis = openTimeout === null ? null : Duration.toMillis(openTimeout)

    /**
     * Starts the one fiber of a connection, in the server's `handlers` set. It finds CurrentWebSocket
     * in the context it starts with, and its end is observed rather than awaited: no frame of its
     * stack is spent on either while the connection lives.
     */
    const runConnectionFiber = (ws: WebSocketImpl, effect: Effect.Effect<void, never, R | RP>) => {
      const fiber = forkWith(connectionStarter(ws))(effect)
      addToFiberSet(handlers, fiber)
      // Ended or interrupted (the server's scope closed): drop the TCP connection, unless the
      // fiber was processRequest's and the connection is now served per message.
      fiber.addObserver(() => {
        if (ws.serving) return
        connections.delete(ws)
        ws.abort()
      })
      return fiber
    }

    /**
     * What a connection's fibers start from: CurrentWebSocket, its span as the parent span, and its
     * id as the `connectionId` log annotation (Python's connection-scoped `logger`): the handler's
     * own log lines say which connection they are about, as the library's do.
     */
    const connectionStarter = (ws: WebSocketImpl): FiberStarter<R | RP> => {
      let context = Context.add(handlerContext, CurrentWebSocket, ws)
      // The handler runs in the connection's span: the application's spans nest under it.
      if (ws.spans !== undefined) context = Context.add(context, Tracer.ParentSpan, ws.spans.connection)
      return deriveFiberStarter(starter, context as Context.Context<R | RP>, logAnnotations, "connectionId", ws.id)
    }

    const messageHandler = messageHandlerOf(handler) as MessageHandler<E, R, A> | undefined

    /**
     * What serving per message keeps for a connection, in `ws.driverState`, only once needed: the
     * value for the handler (when `processRequest` gave one), and, once a handler suspended, what
     * its fibers start from. One runner serves every connection: no closure each.
     */
    interface Served {
      readonly value: A
      connection: FiberStarter<R | RP> | undefined
      drain: Effect.Effect<void, E, R> | undefined
      onExit: ((exit: Exit.Exit<unknown, unknown>) => void) | undefined
    }
    const served = (ws: WebSocketImpl, value = undefined as A): Served => {
      let state = ws.driverState as Served | undefined
      if (state === undefined) {
        state = { value, connection: undefined, drain: undefined, onExit: undefined }
        ws.driverState = state
      }
      return state
    }
    const servedValue = (ws: WebSocketImpl): A => (ws.driverState as Served | undefined)?.value as A

    const onMessagesExit = (ws: WebSocketImpl, exit: Exit.Exit<unknown, unknown>): void => {
      if (exit._tag === "Success") return
      ws.stopServing()
      const state = served(ws)
      state.connection ??= connectionStarter(ws)
      forkWith(state.connection)(afterHandler(ws, exit.cause as Cause.Cause<E>))
    }

    /**
     * Runs the handler on the queued messages of a connection served per message, then the fiber
     * ends (messages arriving meanwhile are queued: taken too). Returns the fiber while it runs.
     */
    const runQueued =
      (f: MessageHandler<E, R, A>) =>
      (ws: WebSocketImpl): RunningFiber<unknown, unknown> | undefined => {
        // A fiber per message is most of what an answered message costs: none is started while
        // the handler's answers complete without one (`completeWithoutFiber`).
        let rest: Effect.Effect<unknown, E, R> | undefined
        do {
          const message = ws.takeQueued()
          if (message === undefined) return undefined
          try {
            rest = completeWithoutFiber(f(message, ws, servedValue(ws)))
          } catch (defect) {
            rest = Exit.die(defect)
          }
        } while (rest === undefined)
        if (Exit.isExit(rest)) {
          onMessagesExit(ws, rest)
          return undefined
        }
        // Made when a handler first suspends: most connections never need them.
        const state = served(ws)
        state.connection ??= connectionStarter(ws)
        state.drain ??= Effect.suspend(() => {
          const message = ws.takeQueued()
          return message === undefined ? Effect.void : Effect.andThen(f(message, ws, state.value), state.drain!)
        })
        const fiber = forkWith(state.connection)(Effect.andThen(rest, state.drain))
        const exit = pollFiber(fiber)
        if (exit !== undefined) {
          onMessagesExit(ws, exit)
          return undefined
        }
        // Its failures are handled by `onMessagesExit`: the set only waits for it, or interrupts it.
        addToFiberSet(handlers, fiber as unknown as RunningFiber<void, never>)
        state.onExit ??= (exit) => onMessagesExit(ws, exit)
        fiber.addObserver(state.onExit)
        return fiber
      }
    const messageRunner = messageHandler === undefined ? undefined : runQueued(messageHandler)

    /**
     * Serves an open connection per message ({@link onMessage}): the messages of each read run the
     * handler in one fiber, started from the socket's callback, which ends once they are answered;
     * the connection holds no fiber between reads. Fibers that suspend join `handlers`, so that
     * shutdown waits for them.
     */
    const serveMessages = (ws: WebSocketImpl, runner: typeof messageRunner & {}, value: A): void => {
      connections.add(ws)
      ws.onClose = forget
      if (value !== undefined) served(ws, value)
      ws.serveMessages(runner)
    }

    /** Starts serving an open connection: the handler's fiber, or per message. */
    const serveConnection = (ws: WebSocketImpl, value: A): Effect.Effect<void, never, R> =>
      messageRunner === undefined
        ? runConnection(ws, value)
        : Effect.sync(() => serveMessages(ws, messageRunner, value))

    /** Sends the handshake response; opens the connection after a 101 unless the client left. */
    const respond = (ws: WebSocketImpl, protocol: ServerConnection, request: Request, response: Response): boolean => {
      protocol.sendResponse(response)
      ws.flushAndWatch()
      // Not OPEN after a 101 when the client went away meanwhile.
      if (protocol.state !== State.OPEN) return false
      ws.handshakeCompleted(request, response, protocol.subprotocol)
      return true
    }

    /** Asks `processRequest`: an HTTP response, or the value the handler receives. */
    const intercept = (
      ws: WebSocketImpl,
      request: Request
    ): Effect.Effect<Response | Proceed<A | undefined>, never, RP> => {
      const intercepted = options.processRequest!({
        id: ws.id,
        method: request.method,
        path: request.path,
        headers: request.headers,
        remoteAddress: ws.remoteAddress,
        localAddress: ws.localAddress
      }).pipe(
        Effect.map((intercepted) =>
          intercepted instanceof Proceed
            ? (intercepted as Proceed<A>)
            : intercepted !== undefined
              ? toResponse(intercepted as HttpResponse)
              : CONTINUE
        ),
        catchAllCause((cause) =>
          Effect.logError("processRequest failed", cause).pipe(
            Effect.annotateLogs({ connectionId: ws.id }),
            Effect.as(toResponse({ status: 500, body: "Failed to open a WebSocket connection.\n" }))
          )
        )
      )
      // The hook is part of the opening handshake: its spans nest under the handshake's.
      const handshakeSpan = ws.spans?.handshake
      return handshakeSpan === undefined ? intercepted : Effect.withParentSpan(intercepted, handshakeSpan)
    }

    /**
     * Runs the handler of an open connection, then closes it: 1000 (1001 while shutting down) when
     * the handler ends or its connection closed, 1011 when it failed.
     */
    const runConnection = (ws: WebSocketImpl, value: A): Effect.Effect<void, never, R> =>
      Effect.suspend(() => {
        connections.add(ws)
        return handler(ws, value)
      }).pipe(
        Effect.matchCauseEffect({
          onSuccess: () => closeAfterHandler(ws, false),
          onFailure: (cause) => afterHandler(ws, cause)
        })
      )

    /** After a handler failed: closes the connection, with 1011 and a log unless it was closed. */
    const afterHandler = (ws: WebSocketImpl, cause: Cause.Cause<E>): Effect.Effect<void> => {
      if (isClosedFailure(cause)) return closeAfterHandler(ws, false)
      if (isInterruptedOnly(cause)) return closeAfterHandler(ws, true)
      return Effect.andThen(
        Effect.logError("connection handler failed", cause).pipe(Effect.annotateLogs({ connectionId: ws.id })),
        closeAfterHandler(ws, true)
      )
    }

    const closeAfterHandler = (ws: WebSocketImpl, failed: boolean): Effect.Effect<void> => {
      connections.delete(ws)
      // Constant valid codes: close cannot fail.
      return Effect.orDie(ws.close(failed ? 1011 : shuttingDown ? 1001 : 1000))
    }

    /**
     * A connection in its opening handshake, in `ws.driverState` until the handshake ends: its open
     * timer, and the fiber of `processRequest` once that runs. The functions below serve every
     * connection with it (closures per connection would cost memory during a handshake flood).
     */
    interface Opening {
      hook: RunningFiber<void, never> | undefined
      readonly openTimer: Timer | undefined
    }

    /** The client did not complete the handshake in time (Python's OpenTimeout): drop it. */
    const openTimedOut = (ws: WebSocketImpl): void => {
      const hook = (ws.driverState as Opening | undefined)?.hook
      if (hook !== undefined) interruptFiber(hook)
      ws.abort()
    }

    /** The handshake ended: the connection is no longer pending, its open timer stops. */
    const handshakeEnded = (ws: WebSocketImpl, opening: Opening): void => {
      if (ws.driverState === opening) ws.driverState = undefined
      settled(ws)
      opening.openTimer?.cancel()
    }

    const opened = (ws: WebSocketImpl, opening: Opening, request: Request, response: Response): boolean => {
      handshakeEnded(ws, opening)
      return respond(ws, ws.protocol as ServerConnection, request, response)
    }

    // A failed handshake got its HTTP error response from the protocol, which then closes the TCP
    // connection (bounded by the close timer).
    const onHandshake = (exit: Exit.Exit<unknown, unknown>, ws: WebSocketImpl): void => {
      const opening = ws.driverState as Opening
      if (Exit.isFailure(exit)) {
        handshakeEnded(ws, opening)
        return
      }
      const protocol = ws.protocol as ServerConnection
      const request = exit.value as Request
      // Behind trusted proxies the client's address is in X-Forwarded-For, for the hook too.
      if (proxyHops > 0) ws.remoteAddress = forwardedFor(request.headers, proxyHops) ?? ws.remoteAddress
      if (shuttingDown) {
        opened(ws, opening, request, protocol.reject(503, "Server is shutting down.\n"))
        return
      }
      if (options.processRequest === undefined) {
        if (!opened(ws, opening, request, protocol.accept(request))) return
        if (messageRunner !== undefined) serveMessages(ws, messageRunner, undefined as A)
        else runConnectionFiber(ws, runConnection(ws, undefined as A))
        return
      }
      opening.hook = runConnectionFiber(
        ws,
        Effect.flatMap(intercept(ws, request), (answer) => {
          if (answer instanceof Response) {
            opened(ws, opening, request, answer)
            return Effect.void
          }
          return opened(ws, opening, request, protocol.accept(request))
            ? serveConnection(ws, answer.value as A)
            : Effect.void
        })
      )
    }

    /**
     * Takes one connection through the opening handshake, in plain code driven by its bytes and one
     * timer (the open timeout): no fiber until the connection is open, or `processRequest` runs.
     */
    const accept = (socket: Duplex, parsed?: ParsedRequest): void => {
      if (shuttingDown) {
        socket.destroy()
        return
      }
      const spans = telemetry.startSpans()
      // With a span, the connection lines are events of the connection's span, not of the server's.
      const logger = telemetry.loggerFor(spans)
      const protocol = new ServerConnection(
        logger === connectionOptions.logger ? connectionOptions : { ...connectionOptions, logger }
      )
      const ws = new WebSocketImpl(protocol, socket, resolved, timers, telemetry, listener?.localAddress)
      ws.spans = spans
      pending.add(ws)
      const opening: Opening = {
        hook: undefined,
        openTimer: openTimeoutMillis === null ? undefined : timers.schedule(openTimeoutMillis, openTimedOut, ws)
      }
      ws.driverState = opening
      ws.onHandshake = onHandshake
      // Given synchronously after the constructor attached its listeners, before any 'data' event.
      if (parsed !== undefined) ws.receiveRequest(parsed.request, parsed.head)
    }

    return { ...endpoint, accept } satisfies Acceptor
  })

/**
 * Removes a unix socket file left behind by a server that died without unlinking it, so that
 * listening does not fail with EADDRINUSE (Python's asyncio removes a socket file before binding).
 * Only a socket that nobody accepts on (connecting is refused) is removed: a live server keeps its
 * socket, and a path that is not a socket (nor a symlink to one) is never touched; listening then
 * fails with EADDRINUSE.
 */
const removeStaleSocket = (path: string): Effect.Effect<void> =>
  callback<void>((resume) => {
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

const WILDCARDS: ReadonlySet<string> = new Set(["::", "0.0.0.0"])

const listen = (server: net.Server, options: ServeOptions<any, any>): Effect.Effect<Address, ListenFailed> =>
  Effect.andThen(options.unix !== undefined ? removeStaleSocket(options.unix) : Effect.void, listenOn(server, options))

/** `listen`'s `reusePort` option exists from Node 22.12 (and 23.1); older versions ignore it. */
const supportsReusePort = (version: string): boolean => {
  const [major = 0, minor = 0] = version.split(".").map(Number)
  return major > 23 || (major === 23 && minor >= 1) || (major === 22 && minor >= 12)
}

const addressOfServer = (server: net.Server, unix: string | undefined): Address => {
  const address = server.address()
  return typeof address === "string" || address === null
    ? { _tag: "UnixAddress", path: address ?? unix ?? "" }
    : { _tag: "TcpAddress", hostname: address.address, port: address.port }
}

const listenOn = (server: net.Server, options: ServeOptions<any, any>): Effect.Effect<Address, ListenFailed> =>
  callback<Address, ListenFailed>((resume) => {
    const sock = options.sock
    const fd = sock !== undefined && !(sock instanceof net.Server) ? sock.fd : undefined
    const address = fd !== undefined ? `fd ${fd}` : (options.unix ?? `${options.host ?? "::"}:${options.port ?? 0}`)
    // A server the application made may listen already (the seeds' `sock`).
    if (server.listening) return resume(Effect.succeed(addressOfServer(server, options.unix)))
    if (options.reusePort === true && !supportsReusePort(process.versions.node)) {
      const cause = new Error(`reusePort needs Node 22.12 or later (this is Node ${process.versions.node})`)
      return resume(Effect.fail(new ListenFailed({ address, cause })))
    }
    const onError = (cause: Error) => resume(Effect.fail(new ListenFailed({ address, cause })))
    server.once("error", onError)
    const onListening = () => {
      server.off("error", onError)
      resume(Effect.succeed(addressOfServer(server, options.unix)))
    }
    // `reusePort` is not in @types/node 20's ListenOptions.
    const common: net.ListenOptions & { reusePort?: boolean } = {}
    if (options.backlog !== undefined) common.backlog = options.backlog
    if (options.reusePort !== undefined) common.reusePort = options.reusePort
    if (fd !== undefined) server.listen({ ...common, fd }, onListening)
    else if (options.unix !== undefined) server.listen({ ...common, path: options.unix }, onListening)
    else server.listen({ ...common, host: options.host, port: options.port ?? 0 }, onListening)
  })

/**
 * Starts a WebSocket server running `handler` for every connection; it shuts down gracefully (see
 * {@link Endpoint.close}) when the enclosing `Scope` closes.
 *
 * @example
 * ```ts
 * import { Effect, Stream } from "effect"
 * import { Server, type WebSocket } from "effect-websockets"
 *
 * const echo = (ws: WebSocket.WebSocket) => Stream.runForEach(ws.messages, (message) => ws.send(message))
 * const program = Effect.scoped(Effect.gen(function* () {
 *   const server = yield* Server.serve(echo, { host: "127.0.0.1", port: 8765 })
 *   yield* server.waitClosed
 * }))
 * ```
 * @since 0.1.0
 * @category constructors
 */
export const serve: {
  <E, R, RP = never, A = undefined>(
    handler: Handler<E, R, A>,
    options: ServeOptions<RP, A> & WithProcessRequest<RP, A>
  ): Effect.Effect<WebSocketServer, ListenFailed, Scope.Scope | Exclude<R, Provided> | RP>
  <E, R, RP = never>(
    handler: Handler<E, R>,
    options?: ServeOptions<RP>
  ): Effect.Effect<WebSocketServer, ListenFailed, Scope.Scope | Exclude<R, Provided> | RP>
} = <E, R, RP = never, A = undefined>(
  handler: Handler<E, R, A>,
  options: ServeOptions<RP, A> = {}
): Effect.Effect<WebSocketServer, ListenFailed, Scope.Scope | Exclude<R, Provided> | RP> =>
  Effect.gen(function* () {
    const readLimit = options.readLimit ?? defaults.readLimit
    const own = options.sock instanceof net.Server ? options.sock : undefined
    const server =
      own !== undefined
        ? own instanceof tls.Server
          ? own
          : null
        : options.tls !== undefined
          ? tls.createServer({ ...options.tls, allowHalfOpen: true, highWaterMark: readLimit })
          : null
    // highWaterMark: a paused socket (maxQueue reached) buffers at most readLimit bytes before the
    // kernel's buffers, then TCP flow control, push back on the peer.
    const netServer: net.Server = server ?? own ?? net.createServer({ allowHalfOpen: true, highWaterMark: readLimit })
    const listener: { close: () => void; localAddress: Address | undefined } = {
      close: () => netServer.close(),
      // Our end of a unix socket is the path we listen on; the client's end is unnamed.
      localAddress: options.unix !== undefined ? { _tag: "UnixAddress", path: options.unix } : undefined
    }
    const acceptor = yield* acceptorOf(handler, options, listener)
    netServer.on(server !== null ? "secureConnection" : "connection", (socket: net.Socket) => {
      socket.setNoDelay?.(true)
      acceptor.accept(socket)
    })
    // TLS handshake failures concern one client only.
    netServer.on("tlsClientError", () => {})
    const address = yield* listen(netServer, options)
    // Bound to one address, every connection's local end is that address; a wildcard ("::",
    // "0.0.0.0") leaves it to the socket.
    if (address._tag === "TcpAddress" && !WILDCARDS.has(address.hostname)) listener.localAddress = address
    const { accept: _, ...endpoint } = acceptor
    return { ...endpoint, address } satisfies WebSocketServer
  }).pipe(Effect.withSpan("effect-websockets.serve"))

/**
 * Like {@link serve}, listening on the unix socket at `path` (Python's `unix_serve`).
 * @since 0.1.0
 * @category constructors
 */
export const unixServe: {
  <E, R, RP = never, A = undefined>(
    handler: Handler<E, R, A>,
    path: string,
    options: ServeOptions<RP, A> & WithProcessRequest<RP, A>
  ): Effect.Effect<WebSocketServer, ListenFailed, Scope.Scope | Exclude<R, Provided> | RP>
  <E, R, RP = never>(
    handler: Handler<E, R>,
    path: string,
    options?: ServeOptions<RP>
  ): Effect.Effect<WebSocketServer, ListenFailed, Scope.Scope | Exclude<R, Provided> | RP>
} = <E, R, RP = never, A = undefined>(
  handler: Handler<E, R, A>,
  path: string,
  options: ServeOptions<RP, A> = {}
): Effect.Effect<WebSocketServer, ListenFailed, Scope.Scope | Exclude<R, Provided> | RP> =>
  serveAny(handler, { ...options, unix: path })

/**
 * A layer providing the {@link Server} service: the server runs while the layer is alive. A handler
 * that needs its own server uses {@link CurrentServer}, which the server provides, so the layer
 * does not require itself.
 * @since 0.1.0
 * @category layers
 */
export const layer: {
  <E, R, RP = never, A = undefined>(
    handler: Handler<E, R, A>,
    options: ServeOptions<RP, A> & WithProcessRequest<RP, A>
  ): Layer.Layer<Server, ListenFailed, Exclude<R, Provided> | RP>
  <E, R, RP = never>(
    handler: Handler<E, R>,
    options?: ServeOptions<RP>
  ): Layer.Layer<Server, ListenFailed, Exclude<R, Provided> | RP>
} = <E, R, RP = never, A = undefined>(
  handler: Handler<E, R, A>,
  options: ServeOptions<RP, A> = {}
): Layer.Layer<Server, ListenFailed, Exclude<R, Provided> | RP> => scopedLayer(Server, serveAny(handler, options))

/**
 * `makeAcceptor` and `serve` for the module's own generic callers, whose `A` is a type parameter:
 * the public overloads let `A` through only with a `processRequest` that provides it.
 */
const acceptorOf = makeAcceptor as <E, R, RP, A>(
  handler: Handler<E, R, A>,
  options: ServerOptions<RP, A>,
  listener?: Listener
) => Effect.Effect<Acceptor, never, Scope.Scope | Exclude<R, Provided> | RP>
const serveAny = serve as <E, R, RP, A>(
  handler: Handler<E, R, A>,
  options: ServeOptions<RP, A>
) => Effect.Effect<WebSocketServer, ListenFailed, Scope.Scope | Exclude<R, Provided> | RP>

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
const isClosedFailure = <E>(cause: Cause.Cause<E>): boolean => isConnectionClosed(firstError(cause))

// ---------------------------------------------------------------------------
// Options from Effect Config
// ---------------------------------------------------------------------------

/**
 * The server options that {@link config} reads, each one present only when its key is set.
 * @since 0.3.0
 * @category models
 */
export interface ServerConfig extends ConnectionConfig {
  /** `HOST`: interface to listen on. */
  readonly host?: string
  /** `PORT`: port to listen on, 0 to 65535. */
  readonly port?: number
  /** `UNIX`: unix socket path to listen on instead of TCP. */
  readonly unix?: string
}

/**
 * The server's options read from Effect `Config` (the environment by default), under flat names:
 * `HOST`, `PORT`, `UNIX` (a unix socket path), and the connection options `OPEN_TIMEOUT`,
 * `PING_INTERVAL`, `PING_TIMEOUT`, `CLOSE_TIMEOUT` (durations as `Config.duration` reads them, such
 * as `20 seconds`, or a number of milliseconds), `MAX_SIZE`, `MAX_QUEUE`, `READ_LIMIT`,
 * `WRITE_LIMIT`, `MAX_HEADER_SIZE` (non-negative integers) and `COMPRESSION` (`deflate` or `none`).
 *
 * A missing key leaves its option out, so the value given in code, or else the default, applies.
 * `none` or `off` (any case) disables `OPEN_TIMEOUT`, `PING_INTERVAL`, `PING_TIMEOUT`, `MAX_SIZE`
 * and `MAX_QUEUE` (Python's `None`); those refuse `0`, which the command line reads as "disabled".
 * A value that does not parse fails with a `ConfigError` at its key (`PORT=abc`: "Invalid data at
 * PORT" in Effect 3).
 *
 * Put the keys under a prefix with `Config.nested`: `Config.nested(Server.config, "WS")` reads
 * `WS_PORT` from the environment (`WS.PORT` from `ConfigProvider.fromMap`); pass it to
 * {@link layerConfig}. Or nest the provider of a whole layer (Effect 3):
 * `Layer.provide(layer, Layer.setConfigProvider(ConfigProvider.fromEnv().pipe(ConfigProvider.nested("WS"))))`.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Server } from "effect-websockets"
 *
 * // PORT=9000 PING_INTERVAL=none node server.js
 * const program = Effect.gen(function* () {
 *   const options = yield* Server.config // { port: 9000, pingInterval: null }
 *   yield* Effect.log(options)
 * })
 * ```
 * @since 0.3.0
 * @category config
 */
export const config: Config.Config<ServerConfig> = serverConfig

/**
 * Like {@link layer}, with the options read from Effect `Config` (see {@link config}) over those
 * given in code: `options` are the base, and each key present in the configuration overrides its
 * option. `UNIX`, when set, is listened on instead of `HOST`/`PORT`, as in {@link serve}. Pass
 * `fromConfig` to read other names, for example `Config.nested(Server.config, "WS")` for `WS_PORT`.
 *
 * @example
 * ```ts
 * import { Layer } from "effect"
 * import { Server } from "effect-websockets"
 *
 * const echo = Server.onMessage((message, ws) => ws.send(message))
 * // PORT=9000 node server.js; run with NodeRuntime.runMain(main)
 * const main = Server.layerConfig(echo, { host: "127.0.0.1", port: 8765 }).pipe(Layer.launch)
 * ```
 * @since 0.3.0
 * @category layers
 */
export const layerConfig: {
  <E, R, RP = never, A = undefined>(
    handler: Handler<E, R, A>,
    options: ServeOptions<RP, A> & WithProcessRequest<RP, A>,
    fromConfig?: Config.Config<ServerConfig>
  ): Layer.Layer<Server, ListenFailed | ConfigError, Exclude<R, Provided> | RP>
  <E, R, RP = never>(
    handler: Handler<E, R>,
    options?: ServeOptions<RP>,
    fromConfig?: Config.Config<ServerConfig>
  ): Layer.Layer<Server, ListenFailed | ConfigError, Exclude<R, Provided> | RP>
} = <E, R, RP = never, A = undefined>(
  handler: Handler<E, R, A>,
  options: ServeOptions<RP, A> = {},
  fromConfig: Config.Config<ServerConfig> = config
): Layer.Layer<Server, ListenFailed | ConfigError, Exclude<R, Provided> | RP> =>
  scopedLayer(
    Server,
    Effect.flatMap(fromConfig, (configured) => serveAny(handler, { ...options, ...configured }))
  )
