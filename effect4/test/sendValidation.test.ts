/**
 * The Effect 4 shell as test/sendValidation.test.ts checks the Effect 3 one: `send` of a value it
 * does not accept (Python's TypeError) fails with `InvalidArgument`, sends nothing, and leaves the
 * connection usable; ArrayBuffers and views other than Uint8Array are sent as Binary. Over loopback
 * to the library's server, which records what it receives.
 */
import { describe, expect, it } from "@effect/vitest"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Queue from "effect/Queue"
import * as Stream from "effect/Stream"
import * as Client from "../src/Client.js"
import type { Data, Message, WebSocket } from "../src/WebSocket.js"
import { recvOrDie, serveLocal, uriOf } from "./fixtures/loopback.js"

/** A server that queues every message it receives, and a client connected to it. */
const recordingPair = Effect.gen(function* () {
  const received = yield* Queue.unbounded<Data>()
  const closeCodes = yield* Deferred.make<number | undefined>()
  const server = yield* serveLocal((ws: WebSocket) =>
    Effect.andThen(
      Effect.ignore(ws.forEachMessage((message) => Queue.offer(received, message))),
      Effect.suspend(() => Deferred.succeed(closeCodes, ws.closeCode))
    )
  )
  const ws = yield* Client.connect(uriOf(server), { compression: null, pingInterval: null })
  return { ws, received, closeCodes }
})

/** Values that are no message, as an application typed with `any` (parsed JSON, a cast) may pass them. */
const notMessages: ReadonlyArray<readonly [string, unknown]> = [
  ["an empty Map", new Map()],
  ["a Map", new Map([["a", 1]])],
  ["a Set of numbers", new Set([1, 2])],
  ["an array of numbers", [1, 2, 3]],
  ["an array of arrays", [[1], [2]]],
  ["a plain object", { text: "hi" }],
  ["a number", 42],
  ["a boolean", true],
  ["null", null],
  ["undefined", undefined],
  ["a Stream of numbers", Stream.make(1, 2)]
]

describe("Effect 4 shell: send of a value that is no message", () => {
  for (const [name, value] of notMessages) {
    it.live(`client sends ${name}: InvalidArgument, nothing sent, the next send works`, () =>
      Effect.gen(function* () {
        const { ws, received } = yield* recordingPair
        const error = yield* Effect.flip(ws.send(value as Message))
        expect(error._tag).toBe("InvalidArgument")
        expect(error.message).toMatch(/^data must|^fragments must/)
        yield* ws.send("after")
        // The first message the server received is the one sent after the refused value.
        expect(yield* Queue.take(received)).toBe("after")
        expect(ws.open).toBe(true)
      })
    )
  }

  it.live("a handler that sends a Map gets InvalidArgument and keeps its connection", () =>
    Effect.gen(function* () {
      const caught = yield* Deferred.make<string>()
      const server = yield* serveLocal((ws) =>
        ws.send(new Map() as unknown as Message).pipe(
          Effect.catchTag("InvalidArgument", (error) =>
            Effect.andThen(Deferred.succeed(caught, error._tag), ws.send("still open"))
          ),
          Effect.andThen(ws.waitClosed)
        )
      )
      const client = yield* Client.connect(uriOf(server), { compression: null })
      expect(yield* recvOrDie(client)).toBe("still open")
      expect(yield* Deferred.await(caught)).toBe("InvalidArgument")
      yield* client.close()
      expect(client.closeCode).toBe(1000)
    })
  )

  it.live("a valid fragment, then one that is no message: InvalidArgument, closed with 1011 (as Python)", () =>
    Effect.gen(function* () {
      const { ws, closeCodes } = yield* recordingPair
      const error = yield* Effect.flip(ws.send(["a", 1, "b"] as unknown as Message))
      expect(error._tag).toBe("InvalidArgument")
      expect(error.message).toBe("fragments must be strings or Uint8Arrays, got number")
      // The client failed the connection with 1011 (its own close code is 1006: it waits for no
      // close frame back); the server received the 1011.
      expect(yield* Deferred.await(closeCodes)).toBe(1011)
    })
  )
})

describe("Effect 4 shell: send of binary data in other forms", () => {
  const bytes = [0, 1, 2, 254, 255]
  for (const [name, value] of [
    ["an ArrayBuffer", new Uint8Array(bytes).buffer],
    ["a DataView over part of a buffer", new DataView(new Uint8Array([9, ...bytes, 9]).buffer, 1, bytes.length)],
    ["a Uint16Array", new Uint16Array(new Uint8Array([...bytes, 0]).buffer, 0, 3)],
    ["a Buffer", Buffer.from(bytes)]
  ] as const) {
    it.live(`client sends ${name}: one Binary message of its bytes`, () =>
      Effect.gen(function* () {
        const { ws, received } = yield* recordingPair
        yield* ws.send(value)
        const message = yield* Queue.take(received)
        const expected = value instanceof Uint16Array ? [...bytes, 0] : bytes
        expect(message).toBeInstanceOf(Uint8Array)
        expect([...(message as Uint8Array)]).toEqual(expected)
      })
    )
  }
})
