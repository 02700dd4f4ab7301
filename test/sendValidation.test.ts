/**
 * `send` of a value it does not accept (Python's TypeError): fails with `InvalidArgument` in the
 * error channel, sends nothing, and leaves the connection usable. ArrayBuffers and views other than
 * Uint8Array are sent as Binary, as the browser's `WebSocket.send` and `ws` accept them.
 */
import { describe, expect, it } from "@effect/vitest"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Stream from "effect/Stream"
import * as Client from "../src/Client.js"
import { Opcode } from "../src/Frames.js"
import type { Message } from "../src/WebSocket.js"
import { acceptHandshake, bounded, rawServer, serveLocal, uriOf } from "./fixtures/loopback.js"

/** A raw server (the test reads its frames) and a client whose handshake it accepted. */
const rawPair = Effect.gen(function* () {
  const raw = yield* rawServer()
  const fiber = yield* Effect.fork(
    Client.connect(`ws://127.0.0.1:${raw.port}/`, { compression: null, closeTimeout: 100, pingInterval: null })
  )
  const peer = yield* raw.accept
  yield* acceptHandshake(peer)
  return { ws: yield* Fiber.join(fiber), peer }
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

describe("send of a value that is no message", () => {
  for (const [name, value] of notMessages) {
    it.scopedLive(`client sends ${name}: InvalidArgument, nothing sent, the next send works`, () =>
      Effect.gen(function* () {
        const { ws, peer } = yield* rawPair
        const error = yield* Effect.flip(ws.send(value as Message))
        expect(error._tag).toBe("InvalidArgument")
        expect(error.message).toMatch(/^data must|^fragments must/)
        yield* ws.send("after")
        const frame = yield* peer.readFrame()
        expect([frame.opcode, frame.fin, frame.payload.toString()]).toEqual([Opcode.Text, true, "after"])
        expect(ws.state).toBe(1)
      }).pipe(bounded())
    )
  }

  it.scopedLive("a handler that sends a Map gets InvalidArgument and keeps its connection", () =>
    Effect.gen(function* () {
      const caught = yield* Deferred.make<string>()
      const server = yield* serveLocal((ws) =>
        ws.send(new Map() as unknown as Message).pipe(
          Effect.catchTag("InvalidArgument", (error) =>
            Effect.zipRight(Deferred.succeed(caught, error._tag), ws.send("still open"))
          ),
          Effect.zipRight(ws.waitClosed)
        )
      )
      const client = yield* Client.connect(uriOf(server), { compression: null })
      expect(yield* client.recv).toBe("still open")
      expect(yield* Deferred.await(caught)).toBe("InvalidArgument")
      yield* client.close()
      expect(client.closeCode).toBe(1000)
    }).pipe(bounded())
  )

  it.scopedLive("a valid fragment, then one that is no message: InvalidArgument, closed with 1011 (as Python)", () =>
    Effect.gen(function* () {
      const { ws, peer } = yield* rawPair
      const error = yield* Effect.flip(ws.send(["a", 1, "b"] as unknown as Message))
      expect(error._tag).toBe("InvalidArgument")
      // The first fragment was held back until the next one arrived, so the close frame comes first.
      const frame = yield* peer.readFrame()
      expect([frame.opcode, frame.payload.readUInt16BE(0)]).toEqual([Opcode.Close, 1011])
      expect(error.message).toBe("fragments must be strings or Uint8Arrays, got number")
    }).pipe(bounded())
  )
})

describe("send of binary data in other forms", () => {
  const bytes = [0, 1, 2, 254, 255]
  for (const [name, value] of [
    ["an ArrayBuffer", new Uint8Array(bytes).buffer],
    ["a DataView over part of a buffer", new DataView(new Uint8Array([9, ...bytes, 9]).buffer, 1, bytes.length)],
    ["a Uint16Array", new Uint16Array(new Uint8Array([...bytes, 0]).buffer, 0, 3)],
    ["a Buffer", Buffer.from(bytes)]
  ] as const) {
    it.scopedLive(`client sends ${name}: one Binary frame of its bytes`, () =>
      Effect.gen(function* () {
        const { ws, peer } = yield* rawPair
        yield* ws.send(value)
        const frame = yield* peer.readFrame()
        const expected = value instanceof Uint16Array ? [...bytes, 0] : bytes
        expect([frame.opcode, frame.fin, [...frame.payload]]).toEqual([Opcode.Binary, true, expected])
      }).pipe(bounded())
    )
  }
})
