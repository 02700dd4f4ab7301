/**
 * A connection's `messages` as a Stream, in Effect 4 (Effect 3's is in
 * `src/internal/messagesStream.ts`): the one part of the connection driver that each major's
 * Stream implementation shapes differently.
 *
 * Not exported (internal/), and without the internal tag: stripInternal would take this comment
 * for the first statement's and drop that statement from the declarations.
 */
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import type * as Pull from "effect/Pull"
import * as Stream from "effect/Stream"
import type { ConnectionClosedError } from "../Errors.js"
import type { Data } from "../WebSocket.js"

/** What the stream reads from: the connection's queue (internal/webSocket.ts). */
export interface MessageSource {
  /** Every queued message, `"wait"`, `undefined` after a normal closure, or the error to fail with. */
  pullMessages(): ReadonlyArray<Data> | "wait" | ConnectionClosedError | undefined
  /** Waits until a message arrives or the connection closes. */
  readonly waitReadable: Effect.Effect<void>
}

/**
 * Emits every queued message as one chunk, waits while there is none, ends after a normal
 * closure. A pull written by hand: Effect 4 streams are pull-based, so each pull takes what the
 * queue holds and suspends only when it is empty. The pull keeps nothing between pulls, so every
 * run of the stream shares it, and the wait before it is made once.
 */
export const messagesStream = (source: MessageSource): Stream.Stream<Data, ConnectionClosedError> => {
  const pull: Pull.Pull<readonly [Data, ...Array<Data>], ConnectionClosedError> = Effect.suspend(() => {
    const next = source.pullMessages()
    if (next === "wait") return waitThenPull
    if (next === undefined) return Cause.done()
    if (Array.isArray(next)) return Effect.succeed(next as unknown as readonly [Data, ...Array<Data>])
    return Effect.fail(next as ConnectionClosedError)
  })
  const waitThenPull = Effect.andThen(source.waitReadable, pull)
  return Stream.fromPull(Effect.succeed(pull))
}
