/**
 * The `messages` Stream of the Effect 4 shell (effect4/src/internal/messagesStream.ts) over real
 * loopback sockets: how it ends, that a later run reads on where an earlier one stopped (the runs
 * share one pull), that a quiet connection keeps no message, and that reading pauses while its
 * consumer is slow.
 */
import type * as net from "node:net"
import { setFlagsFromString } from "node:v8"
import { runInNewContext } from "node:vm"
import { describe, expect, it } from "@effect/vitest"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Stream from "effect/Stream"
import * as Client from "../src/Client.js"
import type { Data, WebSocket } from "../src/WebSocket.js"
import { eventually, serveLocal, uriOf } from "./fixtures/loopback.js"

const MiB = 1024 * 1024

/** A full collection, without `--expose-gc` on the test process. */
const gc = (): void => {
  setFlagsFromString("--expose-gc")
  ;(runInNewContext("gc") as () => void)()
}

describe("Effect 4 shell: the messages Stream", () => {
  it.live("fails with ConnectionClosedError, after the messages, when the peer closes with 1008", () =>
    Effect.gen(function* () {
      const server = yield* serveLocal((ws) => Effect.andThen(ws.send("a"), ws.close(1008, "policy")))
      const ws = yield* Client.connect(uriOf(server), { compression: null })
      const received: Array<Data> = []
      const error = yield* Effect.flip(Stream.runForEach(ws.messages, (m) => Effect.sync(() => received.push(m))))
      expect(received).toEqual(["a"])
      expect(error._tag).toBe("ConnectionClosedError")
      expect([error.code, error.reason]).toEqual([1008, "policy"])
    })
  )

  it.live("a second run reads on where the first one stopped", () =>
    Effect.gen(function* () {
      // "b" and "c" are sent once "a" was read: a pull takes every queued message at once.
      const server = yield* serveLocal((ws) =>
        Effect.gen(function* () {
          yield* ws.send("a")
          yield* ws.recv
          yield* ws.send("b")
          yield* ws.send("c")
          yield* ws.close()
        })
      )
      const ws = yield* Client.connect(uriOf(server), { compression: null })
      expect(yield* Stream.runCollect(Stream.take(ws.messages, 1))).toEqual(["a"])
      yield* ws.send("next")
      expect(yield* Stream.runCollect(ws.messages)).toEqual(["b", "c"])
      // Ended: a new run ends at once.
      expect(yield* Stream.runCollect(ws.messages)).toEqual([])
    })
  )

  it.live("a quiet connection keeps no message: the last one goes once it is handled", () =>
    Effect.gen(function* () {
      const server = yield* serveLocal((ws) => Effect.andThen(ws.send(new Uint8Array(MiB)), ws.waitClosed))
      const ws = yield* Client.connect(uriOf(server), { compression: null })
      const handled = yield* Deferred.make<WeakRef<object>>()
      // The stream keeps running (waiting for the next message) while the heap is looked at.
      const reader = yield* Effect.forkChild(
        Stream.runForEach(ws.messages, (message) => Deferred.succeed(handled, new WeakRef(message as Uint8Array)))
      )
      const ref = yield* Deferred.await(handled)
      yield* eventually(() => {
        gc()
        return ref.deref() === undefined ? true : undefined
      })
      expect(reader.pollUnsafe()).toBeUndefined()
      expect(ws.open).toBe(true)
    })
  )

  it.live("reading pauses while the consumer is slow, and every message arrives in order", () =>
    Effect.gen(function* () {
      const release = yield* Deferred.make<void>()
      const opened = yield* Deferred.make<WebSocket>()
      const received: Array<number> = []
      const server = yield* serveLocal(
        (ws) =>
          Effect.andThen(
            Deferred.succeed(opened, ws),
            Stream.runForEach(ws.messages, (message) =>
              Effect.andThen(
                Deferred.await(release),
                Effect.sync(() => {
                  const bytes = message as Uint8Array
                  received.push(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).readUInt32BE(0))
                })
              )
            )
          ),
        { maxQueue: 4, compression: null }
      )
      const ws = yield* Client.connect(uriOf(server), { compression: null })
      const serverWs = yield* Deferred.await(opened)
      const count = 512
      let sent = 0
      const sender = yield* Effect.forkChild(
        Effect.forEach(
          Array.from({ length: count }, (_, i) => i),
          (i) => {
            const message = Buffer.alloc(32 * 1024)
            message.writeUInt32BE(i, 0)
            return Effect.andThen(
              ws.send(message),
              Effect.sync(() => sent++)
            )
          },
          { discard: true }
        )
      )
      // The server pauses its socket; TCP flow control then makes the client's sends wait.
      const socket = (serverWs as unknown as { readonly socket: net.Socket }).socket
      yield* eventually(() => (socket.isPaused() ? true : undefined))
      expect(received).toEqual([])
      expect(sent).toBeLessThan(count)
      yield* Deferred.succeed(release, undefined)
      yield* Fiber.join(sender)
      yield* eventually(() => (received.length === count ? true : undefined))
      expect(received).toEqual(Array.from({ length: count }, (_, i) => i))
    })
  )
})
