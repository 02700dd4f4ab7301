/**
 * Adapters between our connections and `@effect/platform`'s `Socket.Socket` and
 * `SocketServer.SocketServer`, to stay inside the Effect ecosystem:
 *
 * - {@link toSocket}: a WebSocket connection seen as a `Socket.Socket`, so that `@effect/rpc`,
 *   `Socket.toChannel` and anything else written against platform sockets run over it.
 * - {@link layerWebSocket}: a `Socket.Socket` that connects on every `run`, a drop-in for
 *   `NodeSocket.layerWebSocket` (so `RpcClient.layerProtocolSocket` survives server restarts).
 * - {@link layerSocketServer}: a `SocketServer.SocketServer` over our server, a drop-in for
 *   `NodeSocketServer.layerWebSocket` (so `RpcServer.layerProtocolSocketServer` runs on it), and
 *   {@link makeSocketServerHandler} for a server mounted in an HTTP server or router.
 * - {@link connectOverSocket}: the WebSocket client protocol over any given `Socket.Socket` (a
 *   custom transport, a test double). This bridges each chunk through an Effect write, so it costs
 *   more than the native transport; use `Client.connect` when a Node socket is available.
 *
 * @since 0.1.0
 */
import { Duplex } from "node:stream"
import * as Socket from "@effect/platform/Socket"
import * as SocketServer from "@effect/platform/SocketServer"
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as FiberSet from "effect/FiberSet"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import type * as Scope from "effect/Scope"
import { type ConnectError, type ConnectOptions, connect, handshakeOver } from "./Client.js"
import { type ConnectionClosed, isConnectionClosed } from "./Errors.js"
import { Timers } from "./internal/timers.js"
import { type Handler, type ServeOptions, serve } from "./Server.js"
import { parseUri } from "./Uri.js"
import type { WebSocket } from "./WebSocket.js"

/**
 * Options of {@link toSocket}.
 * @since 0.1.0
 * @category models
 */
export interface ToSocketOptions {
  /**
   * Which close codes make `run` fail with a `SocketCloseError`; the platform's default treats
   * every code but 1000 and 1006 as an error.
   */
  readonly closeCodeIsError?: ((code: number) => boolean) | undefined
}

const closeError = (error: ConnectionClosed, closeCodeIsError: (code: number) => boolean) =>
  closeCodeIsError(error.code)
    ? Option.some(new Socket.SocketCloseError({ reason: "Close", code: error.code, closeReason: error.reason }))
    : Option.none()

/**
 * Exposes a WebSocket connection as an `@effect/platform` `Socket.Socket`.
 *
 * - `runRaw` passes Text messages as strings and Binary messages as bytes; `run` passes both as
 *   bytes (Text UTF-8 encoded). Messages are handled one at a time: a handler returning an Effect is
 *   awaited before the next message is read, so backpressure reaches the peer.
 * - `run` ends when the connection closes: successfully for codes that `closeCodeIsError` accepts,
 *   else with a `SocketCloseError` carrying the code and reason.
 * - the writer sends strings as Text, bytes as Binary, and a `CloseEvent` as a close frame.
 *
 * @since 0.1.0
 * @category constructors
 */
export const toSocket = (ws: WebSocket, options: ToSocketOptions = {}): Socket.Socket => {
  const closeCodeIsError = options.closeCodeIsError ?? Socket.defaultCloseCodeIsError
  const runRaw = <_, E = never, R = never>(
    // biome-ignore lint/suspicious/noConfusingVoidType: the platform's Socket signature.
    handler: (data: string | Uint8Array) => Effect.Effect<_, E, R> | void,
    runOptions?: { readonly onOpen?: Effect.Effect<void> | undefined }
  ): Effect.Effect<void, Socket.SocketError | E, R> => {
    const loop: Effect.Effect<void, Socket.SocketError | E, R> = Effect.flatMap(ws.recv, (message) => {
      const result = handler(message)
      return Effect.isEffect(result) ? Effect.zipRight(result, loop) : loop
    }).pipe(
      Effect.catchAll((error): Effect.Effect<void, Socket.SocketError | E> => {
        if (!isConnectionClosed(error)) return Effect.fail(error as E)
        return Option.match(closeError(error, closeCodeIsError), {
          onNone: () => Effect.void,
          onSome: (failure) => Effect.fail(failure)
        })
      })
    )
    return runOptions?.onOpen === undefined ? loop : Effect.zipRight(runOptions.onOpen, loop)
  }
  const encoder = new TextEncoder()
  return {
    [Socket.TypeId]: Socket.TypeId,
    runRaw,
    run: (handler, runOptions) =>
      runRaw((data) => handler(typeof data === "string" ? encoder.encode(data) : data), runOptions),
    writer: Effect.succeed((chunk: Uint8Array | string | Socket.CloseEvent) => write(ws, chunk))
  }
}

/** One write of a platform socket's writer: a message, or a `CloseEvent` as a close frame. */
const write = (
  ws: WebSocket,
  chunk: Uint8Array | string | Socket.CloseEvent
): Effect.Effect<void, Socket.SocketError> =>
  Socket.isCloseEvent(chunk)
    ? ws
        .close(chunk.code, chunk.reason ?? "")
        .pipe(Effect.mapError((cause) => new Socket.SocketGenericError({ reason: "Write", cause })))
    : ws
        .send(chunk)
        .pipe(
          Effect.mapError((cause) =>
            isConnectionClosed(cause)
              ? new Socket.SocketCloseError({ reason: "Close", code: cause.code, closeReason: cause.reason })
              : new Socket.SocketGenericError({ reason: "Write", cause })
          )
        )

/**
 * Options of {@link makeWebSocket}: those of `Client.connect` and of {@link toSocket}.
 * @since 0.2.0
 * @category models
 */
export interface WebSocketSocketOptions extends ConnectOptions, ToSocketOptions {}

/**
 * A platform `Socket.Socket` over WebSocket connections to `url`, like the platform's
 * `NodeSocket.makeWebSocket`: every `run` connects anew (`Client.connect`) and ends with its
 * connection, so that a caller retrying `run` (as `RpcClient` does) reconnects after the server
 * went away. Writes wait until a `run` has an open connection, so writes issued while reconnecting
 * are sent once connected. A failed connection attempt fails `run` with `SocketGenericError`
 * ("Open", or "OpenTimeout" after `openTimeout`).
 * @since 0.2.0
 * @category constructors
 */
export const makeWebSocket = (url: string, options: WebSocketSocketOptions = {}): Effect.Effect<Socket.Socket> =>
  Effect.map(Effect.makeLatch(false), (connected) => {
    let current: WebSocket | undefined
    const runRaw = <_, E = never, R = never>(
      // biome-ignore lint/suspicious/noConfusingVoidType: the platform's Socket signature.
      handler: (data: string | Uint8Array) => Effect.Effect<_, E, R> | void,
      runOptions?: { readonly onOpen?: Effect.Effect<void> | undefined }
    ): Effect.Effect<void, Socket.SocketError | E, R> =>
      Effect.scoped(
        Effect.gen(function* () {
          const ws = yield* connect(url, options).pipe(
            Effect.mapError((cause) =>
              Socket.isSocketError(cause)
                ? cause
                : new Socket.SocketGenericError({
                    reason: cause._tag === "OpenTimeout" ? "OpenTimeout" : "Open",
                    cause
                  })
            )
          )
          // Registered after the connection's own finalizer, so it runs first: no write goes to a
          // connection being closed.
          yield* Effect.addFinalizer(() =>
            Effect.suspend(() => {
              current = undefined
              return connected.close
            })
          )
          current = ws
          yield* connected.open
          return yield* toSocket(ws, options).runRaw(handler, runOptions)
        })
      )
    const encoder = new TextEncoder()
    const send = (chunk: Uint8Array | string | Socket.CloseEvent): Effect.Effect<void, Socket.SocketError> =>
      connected.whenOpen(Effect.suspend(() => (current === undefined ? send(chunk) : write(current, chunk))))
    return {
      [Socket.TypeId]: Socket.TypeId,
      runRaw,
      run: (handler, runOptions) =>
        runRaw((data) => handler(typeof data === "string" ? encoder.encode(data) : data), runOptions),
      writer: Effect.succeed(send)
    } satisfies Socket.Socket
  })

/**
 * A layer providing `Socket.Socket` over WebSocket connections to `url`, connecting on every `run`
 * (see {@link makeWebSocket}): a drop-in for the platform's `NodeSocket.layerWebSocket`.
 * @since 0.2.0
 * @category layers
 */
export const layerWebSocket = (url: string, options: WebSocketSocketOptions = {}): Layer.Layer<Socket.Socket> =>
  Layer.effect(Socket.Socket, makeWebSocket(url, options))

/**
 * The two halves of a platform `SocketServer` over one of our servers: the `handler` to give to the
 * server (`Server.serve`, `NodeMount.make`, `HttpRouterRoute.make`) and the `run` of the
 * `SocketServer` service. Each connection waits until a `run` is active, then runs its handler on
 * the connection seen as a `Socket.Socket` ({@link toSocket}); a failure of that handler is logged
 * at debug level and closes the connection, as the platform's servers do.
 * @since 0.2.0
 * @category models
 */
export interface SocketServerHandler {
  readonly handler: Handler<never, never>
  readonly run: SocketServer.SocketServer["Type"]["run"]
}

/**
 * Builds a {@link SocketServerHandler}. Provide the service with
 * `SocketServer.SocketServer.of({ address, run })`, `address` being that of the HTTP server.
 * @since 0.2.0
 * @category constructors
 */
export const makeSocketServerHandler = (options: ToSocketOptions = {}): Effect.Effect<SocketServerHandler> =>
  Effect.map(Effect.makeLatch(false), (running) => {
    let current: ((socket: Socket.Socket) => Effect.Effect<void>) | undefined
    const runCurrent = (ws: WebSocket) =>
      Effect.suspend(() => (current === undefined ? Effect.void : current(toSocket(ws, options))))
    // A connection accepted while no `run` is active waits for one, or for its own end.
    const handler: Handler<never, never> = (ws) =>
      current !== undefined
        ? runCurrent(ws)
        : Effect.zipRight(Effect.raceFirst(running.await, ws.waitClosed), runCurrent(ws))
    const run = <R, E, _>(
      connectionHandler: (socket: Socket.Socket) => Effect.Effect<_, E, R>
    ): Effect.Effect<never, SocketServer.SocketServerError, R> =>
      Effect.flatMap(Effect.context<R>(), (context) => {
        const entry = (socket: Socket.Socket) =>
          connectionHandler(socket).pipe(
            Effect.provide(context),
            Effect.catchAllCause((cause) =>
              Cause.isInterruptedOnly(cause) ? Effect.void : Effect.logDebug("Unhandled error in SocketServer", cause)
            ),
            Effect.asVoid
          )
        current = entry
        return Effect.zipRight(running.open, Effect.never).pipe(
          Effect.ensuring(
            Effect.suspend(() => {
              if (current !== entry) return Effect.void
              current = undefined
              return running.close
            })
          )
        )
      })
    return { handler, run }
  })

/**
 * A layer providing `SocketServer.SocketServer` over our WebSocket server listening with `options`
 * (compression, limits and keepalive included): a drop-in for the platform's
 * `NodeSocketServer.layerWebSocket`.
 * @since 0.2.0
 * @category layers
 */
export const layerSocketServer = <RP = never>(
  options: ServeOptions<RP> & ToSocketOptions = {}
): Layer.Layer<SocketServer.SocketServer, SocketServer.SocketServerError, RP> =>
  Layer.scoped(
    SocketServer.SocketServer,
    Effect.gen(function* () {
      const { handler, run } = yield* makeSocketServerHandler(options)
      // The platform's contract: a server that cannot listen fails with SocketServerError (Open).
      const server = yield* serve(handler, options).pipe(
        Effect.mapError((cause) => new SocketServer.SocketServerError({ reason: "Open", cause }))
      )
      return SocketServer.SocketServer.of({ address: server.address, run })
    })
  )

/**
 * A Node `Duplex` over a platform socket, so that the native connection can drive it. Incoming
 * chunks are pushed as they arrive; each outgoing chunk is one Effect write; ending the Duplex
 * closes the platform socket (it has no half-close of its own).
 */
const duplexOf = (socket: Socket.Socket): Effect.Effect<Duplex, never, Scope.Scope> =>
  Effect.gen(function* () {
    const runFork = yield* FiberSet.makeRuntime<never>()
    const write = yield* socket.writer
    const failure = (cause: Cause.Cause<unknown>) => new Error(Cause.pretty(cause))
    let runEnded = false
    const duplex: Duplex = new Duplex({
      allowHalfOpen: true,
      read() {},
      write(chunk: Uint8Array, _encoding, callback) {
        runFork(write(chunk)).addObserver((exit) => callback(Exit.isFailure(exit) ? failure(exit.cause) : null))
      },
      final(callback) {
        // A platform socket has no half-close: close it whole, unless the peer already closed it
        // (a write after `run` ended would never complete).
        if (!runEnded) runFork(write(new Socket.CloseEvent(1000)))
        callback()
      }
    })
    runFork(
      socket
        .run((chunk) => {
          duplex.push(chunk)
        })
        .pipe(
          Effect.onExit((exit) =>
            Effect.sync(() => {
              runEnded = true
              if (Exit.isSuccess(exit) || Cause.isInterruptedOnly(exit.cause)) duplex.push(null)
              else duplex.destroy(failure(exit.cause))
            })
          ),
          Effect.ignore
        )
    )
    yield* Effect.addFinalizer(() => Effect.sync(() => duplex.destroy()))
    return duplex
  })

/**
 * Runs the WebSocket client protocol over an already established platform socket: performs the
 * opening handshake for `uri` (which gives the Host header and resource name) and returns the open
 * connection, whose closing handshake runs when the scope closes.
 * @since 0.1.0
 * @category constructors
 */
export const connectOverSocket = (
  socket: Socket.Socket,
  uri: string,
  options: ConnectOptions = {}
): Effect.Effect<WebSocket, ConnectError, Scope.Scope> =>
  Effect.gen(function* () {
    const wsuri = yield* parseUri(uri)
    const timers = yield* Timers.make
    const duplex = yield* duplexOf(socket)
    return yield* handshakeOver(duplex, wsuri, options, timers)
  })
