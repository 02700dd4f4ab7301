/**
 * Adapters between our connections and Effect 4's `Socket.Socket` and `SocketServer.SocketServer`
 * (`effect/socket`), to stay inside the Effect ecosystem:
 *
 * - {@link toSocket}: a WebSocket connection seen as a `Socket.Socket`, so that `effect/rpc`,
 *   `Socket.toChannel` and anything else written against sockets run over it.
 * - {@link layerWebSocket}: a `Socket.Socket` that connects each time its reader is acquired, a
 *   drop-in for `Socket.layerWebSocket` (so an RPC client's socket protocol survives server restarts).
 * - {@link layerSocketServer}: a `SocketServer.SocketServer` over our server, and
 *   {@link makeSocketServerHandler} for a server mounted in an HTTP server or router.
 * - {@link connectOverSocket}: the WebSocket client protocol over any given `Socket.Socket` (a
 *   custom transport, a test double). This bridges each chunk through an Effect write, so it costs
 *   more than the native transport; use `Client.connect` when a Node socket is available.
 *
 * As Effect 4's own WebSocket sockets do, a reader's `pull` fails with a `SocketError` whose reason
 * is a `SocketCloseError` (with the close code) once the connection is closed, whatever the code:
 * `Socket.toChannel` and its users decide which codes are errors.
 *
 * @since 0.4.0
 */
import { Duplex } from "node:stream"
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as FiberSet from "effect/FiberSet"
import * as Latch from "effect/Latch"
import * as Layer from "effect/Layer"
import * as NetAddress from "effect/net/NetAddress"
import type * as Scope from "effect/Scope"
import * as Socket from "effect/socket/Socket"
import * as SocketServer from "effect/socket/SocketServer"
import { type ConnectError, type ConnectOptions, connect, handshakeOver } from "./Client.js"
import { type ConnectionClosed, isConnectionClosed } from "./Errors.js"
import { Timers } from "./internal/timers.js"
import { type Handler, type ServeOptions, serve } from "./Server.js"
import { parseUri } from "./Uri.js"
import type { Address, WebSocket } from "./WebSocket.js"

const closeError = (error: ConnectionClosed): Socket.SocketError =>
  new Socket.SocketError({ reason: new Socket.SocketCloseError({ code: error.code, closeReason: error.reason }) })

const readError = (cause: unknown): Socket.SocketError =>
  new Socket.SocketError({ reason: new Socket.SocketReadError({ cause }) })

const writeError = (cause: unknown): Socket.SocketError =>
  new Socket.SocketError({ reason: new Socket.SocketWriteError({ cause }) })

/**
 * Our connection as a `Socket.Socket`: its reader pulls the messages (text as strings, binary as
 * bytes), its writer sends them, and a `Socket.CloseEvent` closes the connection with its code. A
 * connection has no TLS to upgrade to: `upgrade` fails.
 * @since 0.4.0
 * @category constructors
 */
export const toSocket = (ws: WebSocket): Socket.Socket =>
  Socket.make({
    reader: Effect.succeed({
      // A second concurrent pull fails with ConcurrencyError, reported as a read error.
      pull: Effect.mapError(
        Effect.map(ws.recv, (message) => [message] as const),
        (error) => (isConnectionClosed(error) ? closeError(error) : readError(error))
      ),
      upgrade: () =>
        Effect.fail(
          new Socket.SocketError({
            reason: new Socket.SocketUpgradeError({ cause: new Error("a WebSocket connection cannot upgrade to TLS") })
          })
        )
    }),
    writer: Effect.succeed({
      write: (chunk) => write(ws, chunk),
      writeAll: (chunks) => Effect.forEach(chunks, (chunk) => write(ws, chunk), { discard: true })
    })
  })

const write = (
  ws: WebSocket,
  chunk: Uint8Array | string | Socket.CloseEvent
): Effect.Effect<void, Socket.SocketError> =>
  Socket.isCloseEvent(chunk)
    ? Effect.mapError(ws.close(chunk.code, chunk.reason ?? ""), writeError)
    : Effect.mapError(ws.send(chunk), (cause) => (isConnectionClosed(cause) ? closeError(cause) : writeError(cause)))

/**
 * Options of {@link makeWebSocket}: the connection's options.
 * @since 0.4.0
 * @category models
 */
export interface WebSocketSocketOptions extends ConnectOptions {}

/**
 * A `Socket.Socket` that opens a connection to `url` each time its reader is acquired (and closes
 * it with the reader's scope); writes wait until a connection is open. A failed connection fails
 * the reader with a `SocketError` whose reason is a `SocketOpenError` (kind `Timeout` after
 * `openTimeout`), holding our error as its cause.
 * @since 0.4.0
 * @category constructors
 */
export const makeWebSocket = (url: string, options: WebSocketSocketOptions = {}): Effect.Effect<Socket.Socket> =>
  Effect.sync(() => {
    const connected = Latch.makeUnsafe(false)
    let current: WebSocket | undefined
    const reader: Socket.Socket["reader"] = Effect.gen(function* () {
      const ws = yield* connect(url, options).pipe(
        Effect.mapError(
          (cause) =>
            new Socket.SocketError({
              reason: new Socket.SocketOpenError({ kind: cause._tag === "OpenTimeout" ? "Timeout" : "Unknown", cause })
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
      return yield* toSocket(ws).reader
    })
    const send = (chunk: Uint8Array | string | Socket.CloseEvent): Effect.Effect<void, Socket.SocketError> =>
      connected.whenOpen(Effect.suspend(() => (current === undefined ? send(chunk) : write(current, chunk))))
    return Socket.make({
      reader,
      writer: Effect.succeed({
        write: send,
        writeAll: (chunks) => Effect.forEach(chunks, send, { discard: true })
      })
    })
  })

/**
 * A layer providing {@link makeWebSocket} as the `Socket.Socket` service.
 * @since 0.4.0
 * @category layers
 */
export const layerWebSocket = (url: string, options: WebSocketSocketOptions = {}): Layer.Layer<Socket.Socket> =>
  Layer.effect(Socket.Socket, makeWebSocket(url, options))

/**
 * A connection handler for our server and the `run` of a `SocketServer.SocketServer` fed by it:
 * each connection the handler receives is handed, as a `Socket.Socket`, to the function given to
 * the active `run`.
 * @since 0.4.0
 * @category models
 */
export interface SocketServerHandler {
  readonly handler: Handler<never, never>
  readonly run: SocketServer.SocketServer["Service"]["run"]
}

/**
 * Builds a {@link SocketServerHandler}: mount its `handler` in any of our front doors (`serve`,
 * `NodeMount`, `HttpRouterRoute`) and hand its `run` to socket-server users.
 * @since 0.4.0
 * @category constructors
 */
export const makeSocketServerHandler: Effect.Effect<SocketServerHandler> = Effect.sync(() => {
  const running = Latch.makeUnsafe(false)
  let current: ((socket: Socket.Socket) => Effect.Effect<void>) | undefined
  const runCurrent = (ws: WebSocket) =>
    Effect.suspend(() => (current === undefined ? Effect.void : current(toSocket(ws))))
  // A connection accepted while no `run` is active waits for one, or for its own end.
  const handler: Handler<never, never> = (ws) =>
    current !== undefined
      ? runCurrent(ws)
      : Effect.andThen(Effect.raceFirst(running.await, ws.waitClosed), runCurrent(ws))
  const run = <R, E, _>(
    connectionHandler: (socket: Socket.Socket) => Effect.Effect<_, E, R>
  ): Effect.Effect<never, SocketServer.SocketServerError, R> =>
    Effect.flatMap(Effect.context<R>(), (context) => {
      const entry = (socket: Socket.Socket) =>
        connectionHandler(socket).pipe(
          Effect.provideContext(context),
          Effect.catchCause((cause) =>
            Cause.hasInterruptsOnly(cause) ? Effect.void : Effect.logDebug("Unhandled error in SocketServer", cause)
          ),
          Effect.asVoid
        )
      current = entry
      return Effect.andThen(running.open, Effect.never).pipe(
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

const socketAddress = (address: Address): Effect.Effect<NetAddress.SocketAddress, SocketServer.SocketServerError> =>
  address._tag === "UnixAddress"
    ? Effect.succeed(NetAddress.unixPathAddress(address.path))
    : Effect.fromResult(NetAddress.inetAddressFromIpString(address.hostname, address.port)).pipe(
        Effect.mapError(
          (cause) => new SocketServer.SocketServerError({ reason: new SocketServer.SocketServerOpenError({ cause }) })
        )
      )

/**
 * A layer providing `SocketServer.SocketServer` over our server (`serve` with `options`): a server
 * that cannot listen fails with `SocketServerError` (reason `SocketServerOpenError`).
 * @since 0.4.0
 * @category layers
 */
export const layerSocketServer = <RP = never>(
  options: ServeOptions<RP> = {}
): Layer.Layer<SocketServer.SocketServer, SocketServer.SocketServerError, RP> =>
  Layer.effect(
    SocketServer.SocketServer,
    Effect.gen(function* () {
      const { handler, run } = yield* makeSocketServerHandler
      const server = yield* serve(handler, options).pipe(
        Effect.mapError(
          (cause) => new SocketServer.SocketServerError({ reason: new SocketServer.SocketServerOpenError({ cause }) })
        )
      )
      return SocketServer.SocketServer.of({ address: yield* socketAddress(server.address), run })
    })
  )

/** A Node `Duplex` over a `Socket.Socket`, for the protocol's I/O loop; ends with the scope. */
const duplexOf = (socket: Socket.Socket): Effect.Effect<Duplex, never, Scope.Scope> =>
  Effect.gen(function* () {
    const runFork = yield* FiberSet.makeRuntime<never>()
    const writer = yield* socket.writer
    const failure = (cause: Cause.Cause<unknown>) => new Error(Cause.pretty(cause))
    let readEnded = false
    const duplex: Duplex = new Duplex({
      allowHalfOpen: true,
      read() {},
      write(chunk: Uint8Array, _encoding, callback) {
        runFork(writer.write(chunk)).addObserver((exit) => callback(Exit.isFailure(exit) ? failure(exit.cause) : null))
      },
      final(callback) {
        // A socket has no half-close: close it whole, unless the peer already closed it.
        if (!readEnded) runFork(writer.write(new Socket.CloseEvent(1000)))
        callback()
      }
    })
    const pump: Effect.Effect<never, Socket.SocketError, Scope.Scope> = Effect.gen(function* () {
      const { pull } = yield* socket.reader
      for (;;) {
        for (const chunk of yield* pull) duplex.push(chunk)
      }
    })
    runFork(
      Effect.scoped(pump).pipe(
        Effect.onExit((exit) =>
          Effect.sync(() => {
            readEnded = true
            const closed =
              Exit.isFailure(exit) &&
              (Cause.hasInterruptsOnly(exit.cause) ||
                Cause.findErrorOption(exit.cause).pipe(
                  (error) => error._tag === "Some" && error.value.reason._tag === "SocketCloseError"
                ))
            if (closed) duplex.push(null)
            else if (Exit.isFailure(exit)) duplex.destroy(failure(exit.cause))
          })
        ),
        Effect.ignore
      )
    )
    yield* Effect.addFinalizer(() => Effect.sync(() => duplex.destroy()))
    return duplex
  })

/**
 * Performs the client's opening handshake over `socket` (any `Socket.Socket`) and returns the open
 * connection; `uri` gives the Host header and the resource name. Closing the scope performs the
 * closing handshake.
 * @since 0.4.0
 * @category constructors
 */
export const connectOverSocket = (
  socket: Socket.Socket,
  uri: string,
  options: ConnectOptions = {}
): Effect.Effect<WebSocket, ConnectError, Scope.Scope> =>
  Effect.gen(function* () {
    const wsuri = yield* Effect.fromResult(parseUri(uri))
    const timers = yield* Timers.make
    const duplex = yield* duplexOf(socket)
    return yield* handshakeOver(duplex, wsuri, options, timers)
  })
