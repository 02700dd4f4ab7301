/**
 * Adapters between our connections and `@effect/platform`'s `Socket.Socket`, to stay inside the
 * Effect ecosystem:
 *
 * - {@link toSocket}: a WebSocket connection seen as a `Socket.Socket`, so that `@effect/rpc`,
 *   `Socket.toChannel` and anything else written against platform sockets run over it.
 * - {@link connectOverSocket}: the WebSocket client protocol over any given `Socket.Socket` (a
 *   custom transport, a test double). This bridges each chunk through an Effect write, so it costs
 *   more than the native transport; use `Client.connect` when a Node socket is available.
 *
 * @since 0.1.0
 */
import { Duplex } from "node:stream"
import * as Socket from "@effect/platform/Socket"
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as FiberSet from "effect/FiberSet"
import * as Option from "effect/Option"
import type * as Scope from "effect/Scope"
import { type ConnectError, type ConnectOptions, handshakeOver } from "./Client.js"
import { type ConnectionClosed, isConnectionClosed } from "./Errors.js"
import { Timers } from "./internal/timers.js"
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
    writer: Effect.succeed((chunk: Uint8Array | string | Socket.CloseEvent) =>
      Socket.isCloseEvent(chunk)
        ? ws.close(chunk.code, chunk.reason ?? "")
        : ws
            .send(chunk)
            .pipe(
              Effect.mapError((cause) =>
                isConnectionClosed(cause)
                  ? new Socket.SocketCloseError({ reason: "Close", code: cause.code, closeReason: cause.reason })
                  : new Socket.SocketGenericError({ reason: "Write", cause })
              )
            )
    )
  }
}

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
