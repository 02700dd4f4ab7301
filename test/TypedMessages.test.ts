/**
 * Typed messages over real loopback sockets: JSON, text and binary codecs both ways, what reaches
 * the wire, decode failures (invalid JSON, schema mismatch, wrong frame type) with the connection
 * left open or closed with 1007/1003, encode failures that send nothing, the Stream and forEach
 * readers, and a Schema with requirements.
 */
import { describe, expect, it } from "@effect/vitest"
import * as Context from "effect/Context"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Exit from "effect/Exit"
import * as ParseResult from "effect/ParseResult"
import * as Schema from "effect/Schema"
import * as Stream from "effect/Stream"
import { expectTypeOf } from "vitest"
import * as Client from "../src/Client.js"
import type {
  ConcurrencyError,
  ConnectionClosed,
  ConnectionClosedError,
  MessageDecodeError,
  MessageEncodeError
} from "../src/Errors.js"
import * as TypedMessages from "../src/TypedMessages.js"
import type { Data, WebSocket } from "../src/WebSocket.js"
import { bounded, echo, recvOrDie, serveLocal, uriOf } from "./fixtures/loopback.js"

const NO_COMPRESSION = { compression: null } as const

/** Transformed fields prove that encoding happens: a Date travels as an ISO string, a number as a string. */
const Move = Schema.Struct({ player: Schema.String, count: Schema.NumberFromString, at: Schema.Date })
const move = TypedMessages.json(Move)
const aMove = { player: "ada", count: 3, at: new Date("2024-05-06T07:08:09.010Z") }

class Reading extends Schema.Class<Reading>("Reading")({
  sensor: Schema.String,
  value: Schema.NumberFromString,
  at: Schema.Date
}) {}

/** Two float64 (little-endian) in exactly 16 bytes: a binary layout of our own, no library. */
const PointBytes = Schema.transformOrFail(
  Schema.Uint8ArrayFromSelf,
  Schema.Struct({ x: Schema.Number, y: Schema.Number }),
  {
    strict: true,
    decode: (bytes, _, ast) => {
      if (bytes.byteLength !== 16) return ParseResult.fail(new ParseResult.Type(ast, bytes, "expected 16 bytes"))
      const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
      return ParseResult.succeed({ x: view.getFloat64(0, true), y: view.getFloat64(8, true) })
    },
    encode: ({ x, y }) => {
      const bytes = new Uint8Array(16)
      const view = new DataView(bytes.buffer)
      view.setFloat64(0, x, true)
      view.setFloat64(8, y, true)
      return ParseResult.succeed(bytes)
    }
  }
)
const point = TypedMessages.binary(PointBytes)

/** An echo server and a client connected to it. */
const echoPair = Effect.gen(function* () {
  const server = yield* serveLocal(echo)
  return yield* Client.connect(uriOf(server), NO_COMPRESSION)
})

/**
 * A server running `handler` and a client connected to it; `done` completes with the handler's
 * Exit (a handled decode error is a success, so the server neither logs it nor closes with 1011).
 */
const servePair = <E>(handler: (ws: WebSocket) => Effect.Effect<void, E>) =>
  Effect.gen(function* () {
    const done = yield* Deferred.make<Exit.Exit<void, E>>()
    const server = yield* serveLocal((ws) =>
      Effect.exit(handler(ws)).pipe(Effect.flatMap((exit) => Deferred.succeed(done, exit)))
    )
    const ws = yield* Client.connect(uriOf(server), NO_COMPRESSION)
    return { ws, done }
  })

const decodeErrorOf = <A>(effect: Effect.Effect<A, ConnectionClosed | ConcurrencyError | MessageDecodeError>) =>
  Effect.flatMap(Effect.flip(effect), (e) =>
    e._tag === "MessageDecodeError"
      ? Effect.succeed(e)
      : Effect.dieMessage(`expected MessageDecodeError, got ${e._tag}`)
  )

describe("TypedMessages json codec", () => {
  it.scopedLive("client sends a Struct: the wire carries the encoded JSON of Schema.parseJson, recv decodes it", () =>
    Effect.gen(function* () {
      const ws = yield* echoPair
      yield* TypedMessages.send(ws, move, aMove)
      const raw = yield* ws.recv
      expect(raw).toBe('{"player":"ada","count":"3","at":"2024-05-06T07:08:09.010Z"}')
      expect(raw).toBe(Schema.encodeSync(Schema.parseJson(Move))(aMove))

      yield* TypedMessages.send(ws, move, aMove)
      const received = yield* TypedMessages.recv(ws, move)
      expect(received).toEqual(aMove)
      expect(received.at).toBeInstanceOf(Date)
    }).pipe(bounded())
  )

  it.scopedLive("a Schema.Class round trip: recv returns an instance of the class", () =>
    Effect.gen(function* () {
      const ws = yield* echoPair
      const reading = TypedMessages.json(Reading)
      const sent = new Reading({ sensor: "t1", value: 21.5, at: new Date(0) })
      yield* TypedMessages.send(ws, reading, sent)
      const received = yield* TypedMessages.recv(ws, reading)
      expect(received).toBeInstanceOf(Reading)
      expect(received).toEqual(sent)
    }).pipe(bounded())
  )

  it.scopedLive("JSON options reach JSON.stringify: space indents what is sent", () =>
    Effect.gen(function* () {
      const ws = yield* echoPair
      const pretty = TypedMessages.json(Schema.Struct({ a: Schema.Number }), { space: 2 })
      yield* TypedMessages.send(ws, pretty, { a: 1 })
      expect(yield* ws.recv).toBe('{\n  "a": 1\n}')
    }).pipe(bounded())
  )
})

describe("TypedMessages binary codec", () => {
  it.scopedLive("a value goes out as one 16-byte Binary message and comes back decoded", () =>
    Effect.gen(function* () {
      const ws = yield* echoPair
      yield* TypedMessages.send(ws, point, { x: 1.5, y: -2 })
      const raw = yield* ws.recv
      expect(raw).toBeInstanceOf(Uint8Array)
      expect((raw as Uint8Array).byteLength).toBe(16)
      yield* TypedMessages.send(ws, point, { x: 1.5, y: -2 })
      expect(yield* TypedMessages.recv(ws, point)).toEqual({ x: 1.5, y: -2 })
    }).pipe(bounded())
  )

  it.scopedLive("bytes the Schema rejects fail with InvalidPayload; the next message still decodes", () =>
    Effect.gen(function* () {
      const ws = yield* echoPair
      yield* ws.send(new Uint8Array([1, 2, 3]))
      yield* TypedMessages.send(ws, point, { x: 0, y: 1 })
      const error = yield* decodeErrorOf(TypedMessages.recv(ws, point))
      expect([error.reason, error.closeCode, error.cause?._tag]).toEqual(["InvalidPayload", 1007, "ParseError"])
      expect(error.message).toContain("expected 16 bytes")
      expect([...(error.data as Uint8Array)]).toEqual([1, 2, 3])
      expect(yield* TypedMessages.recv(ws, point)).toEqual({ x: 0, y: 1 })
    }).pipe(bounded())
  )
})

describe("TypedMessages decode failures", () => {
  it.scopedLive(
    "invalid JSON: MessageDecodeError with the ParseError and the raw message; the connection stays usable",
    () =>
      Effect.gen(function* () {
        const ws = yield* echoPair
        yield* ws.send("{not json")
        const error = yield* decodeErrorOf(TypedMessages.recv(ws, move))
        expect(error._tag).toBe("MessageDecodeError")
        expect([error.reason, error.data, error.closeCode]).toEqual(["InvalidPayload", "{not json", 1007])
        expect(ParseResult.isParseError(error.cause)).toBe(true)
        expect(error.message).toMatch(/^invalid text message: invalid JSON: /)
        // Same connection, next message.
        yield* TypedMessages.send(ws, move, aMove)
        expect(yield* TypedMessages.recv(ws, move)).toEqual(aMove)
      }).pipe(bounded())
  )

  it.scopedLive("schema mismatch: MessageDecodeError whose ParseError names the field", () =>
    Effect.gen(function* () {
      const ws = yield* echoPair
      const raw = '{"player":"ada","count":3,"at":"2024-05-06T07:08:09.010Z"}' // count must be a string
      yield* ws.send(raw)
      const error = yield* decodeErrorOf(TypedMessages.recv(ws, move))
      expect([error.reason, error.data]).toEqual(["InvalidPayload", raw])
      expect(error.cause?.message).toContain('["count"]')
    }).pipe(bounded())
  )

  it.scopedLive(
    "server closes with 1007 on a schema mismatch (closeOnDecodeError): the client sees 1007, the handler succeeds",
    () =>
      Effect.gen(function* () {
        const { ws, done } = yield* servePair((ws) =>
          TypedMessages.forEach(ws, move, TypedMessages.send(ws, move)).pipe(TypedMessages.closeOnDecodeError(ws))
        )
        yield* TypedMessages.send(ws, move, aMove)
        expect(yield* TypedMessages.recv(ws, move)).toEqual(aMove)
        yield* ws.send('{"player":"ada"}')
        const closed = yield* Effect.flip(recvOrDie(ws))
        expect([closed._tag, closed.code, closed.reason]).toEqual(["ConnectionClosedError", 1007, "invalid message"])
        expect(Exit.isSuccess(yield* Deferred.await(done))).toBe(true)
      }).pipe(bounded())
  )

  it.scopedLive("a Binary message to a text codec and a Text message to a binary codec fail with UnexpectedFrame", () =>
    Effect.gen(function* () {
      const ws = yield* echoPair
      yield* ws.send(new Uint8Array([123, 125])) // "{}" as bytes: still the wrong frame type
      const toText = yield* decodeErrorOf(TypedMessages.recv(ws, move))
      expect([toText.reason, toText.closeCode, toText.cause]).toEqual(["UnexpectedFrame", 1003, undefined])
      expect(toText.data).toBeInstanceOf(Uint8Array)
      expect(toText.message).toBe("expected a text message, received a binary message")

      yield* ws.send("0123456789abcdef")
      const toBinary = yield* decodeErrorOf(TypedMessages.recv(ws, point))
      expect([toBinary.reason, toBinary.closeCode, toBinary.data]).toEqual([
        "UnexpectedFrame",
        1003,
        "0123456789abcdef"
      ])
      expect(toBinary.message).toBe("expected a binary message, received a text message")
    }).pipe(bounded())
  )

  it.scopedLive("server closes with 1003 on a Binary message to a JSON codec: the client sees 1003", () =>
    Effect.gen(function* () {
      const { ws, done } = yield* servePair((ws) =>
        TypedMessages.recv(ws, move).pipe(Effect.asVoid, TypedMessages.closeOnDecodeError(ws))
      )
      yield* ws.send(new Uint8Array([1]))
      const closed = yield* Effect.flip(recvOrDie(ws))
      expect([closed.code, closed.reason]).toEqual([1003, "unsupported message type"])
      expect(Exit.isSuccess(yield* Deferred.await(done))).toBe(true)
    }).pipe(bounded())
  )
})

describe("TypedMessages encode failures", () => {
  it.scopedLive(
    "a value that does not encode fails with MessageEncodeError and sends nothing: the peer's first message is the next valid one",
    () =>
      Effect.gen(function* () {
        const first = yield* Deferred.make<Data>()
        const server = yield* serveLocal((ws) => Effect.flatMap(ws.recv, (m) => Deferred.succeed(first, m)))
        const ws = yield* Client.connect(uriOf(server), NO_COMPRESSION)
        const int = TypedMessages.json(Schema.Struct({ n: Schema.Int }))

        const error = yield* Effect.flip(TypedMessages.send(ws, int, { n: 1.5 }))
        expect(error._tag).toBe("MessageEncodeError")
        expect((error as MessageEncodeError).value).toEqual({ n: 1.5 })
        expect(error.message).toMatch(/^cannot encode message: /)
        // What JSON.stringify rejects after the Schema accepted it: a BigInt, and undefined.
        const big = yield* Effect.flip(TypedMessages.send(ws, TypedMessages.json(Schema.BigIntFromSelf), 1n))
        expect(big._tag).toBe("MessageEncodeError")
        const nothing = yield* Effect.flip(TypedMessages.send(ws, TypedMessages.json(Schema.Undefined), undefined))
        expect(nothing._tag).toBe("MessageEncodeError")

        yield* TypedMessages.send(ws, int, { n: 2 })
        expect(yield* Deferred.await(first)).toBe('{"n":2}')
      }).pipe(bounded())
  )
})

describe("TypedMessages readers", () => {
  it.scopedLive("messages: a Stream of decoded values that ends normally after 1000", () =>
    Effect.gen(function* () {
      const moves = [aMove, { ...aMove, count: 4 }, { ...aMove, player: "bob" }]
      // The curried send, as a Stream consumer; the handler returns and the server closes with 1000.
      const { ws } = yield* servePair((ws) =>
        Stream.runForEach(Stream.fromIterable(moves), TypedMessages.send(ws, move))
      )
      const received = yield* Stream.runCollect(TypedMessages.messages(ws, move))
      expect([...received]).toEqual(moves)
      expect(ws.closeCode).toBe(1000)
    }).pipe(bounded())
  )

  it.scopedLive("messages fails on the first message that does not decode, after emitting those before it", () =>
    Effect.gen(function* () {
      const { ws } = yield* servePair((ws) =>
        Effect.gen(function* () {
          yield* TypedMessages.send(ws, move, aMove)
          yield* ws.send("oops")
          yield* TypedMessages.send(ws, move, aMove)
          yield* ws.waitClosed
        })
      )
      const received = yield* Stream.runCollect(Stream.either(TypedMessages.messages(ws, move)))
      expect(received.length).toBe(2)
      const [ok, bad] = [...received]
      expect(ok).toEqual(Either.right(aMove))
      expect(Either.isLeft(bad!) && bad.left._tag === "MessageDecodeError" && bad.left.data).toBe("oops")
    }).pipe(bounded())
  )

  it.scopedLive("forEach serves decoded requests, one answer each", () =>
    Effect.gen(function* () {
      const Request = TypedMessages.json(Schema.Struct({ id: Schema.Number, add: Schema.Array(Schema.Number) }))
      const Response = TypedMessages.json(Schema.Struct({ id: Schema.Number, sum: Schema.Number }))
      const { ws } = yield* servePair((ws) =>
        TypedMessages.forEach(ws, Request, ({ id, add }) =>
          TypedMessages.send(ws, Response, { id, sum: add.reduce((a, b) => a + b, 0) })
        )
      )
      for (let id = 1; id <= 3; id++) yield* TypedMessages.send(ws, Request, { id, add: [id, 10, 100] })
      const answers = []
      for (let i = 0; i < 3; i++) answers.push(yield* TypedMessages.recv(ws, Response))
      expect(answers).toEqual([
        { id: 1, sum: 111 },
        { id: 2, sum: 112 },
        { id: 3, sum: 113 }
      ])
    }).pipe(bounded())
  )

  it.scopedLive("forEach stops with MessageDecodeError and leaves the connection open for the application", () =>
    Effect.gen(function* () {
      const { ws, done } = yield* servePair((ws) =>
        TypedMessages.forEach(ws, move, () => Effect.void).pipe(
          Effect.catchTag("MessageDecodeError", (e) => ws.send(`rejected ${JSON.stringify(e.data)} (${e.closeCode})`))
        )
      )
      yield* TypedMessages.send(ws, move, aMove)
      yield* ws.send("[]")
      expect(yield* ws.recv).toBe('rejected "[]" (1007)')
      expect(Exit.isSuccess(yield* Deferred.await(done))).toBe(true)
    }).pipe(bounded())
  )
})

describe("TypedMessages with a Schema that has requirements", () => {
  /** A prefix that the Schema reads from a service on both sides. */
  class Prefix extends Context.Tag("test/Prefix")<Prefix, string>() {}
  const Prefixed = Schema.transformOrFail(Schema.String, Schema.String, {
    strict: true,
    decode: (s, _, ast) =>
      Effect.flatMap(Prefix, (prefix) =>
        s.startsWith(prefix)
          ? Effect.succeed(s.slice(prefix.length))
          : Effect.fail(new ParseResult.Type(ast, s, `missing prefix ${prefix}`))
      ),
    encode: (s) => Effect.map(Prefix, (prefix) => prefix + s)
  })

  it.scopedLive("R flows into send, recv, messages and forEach, and the application provides it", () =>
    Effect.gen(function* () {
      const prefixed: TypedMessages.Codec<string, Prefix> = TypedMessages.text(Prefixed)
      const ws = yield* echoPair
      // The types carry the requirement (checked by `tsc`).
      const sending = TypedMessages.send(ws, prefixed, "hello")
      const receiving = TypedMessages.recv(ws, prefixed)
      expectTypeOf(sending).toEqualTypeOf<Effect.Effect<void, ConnectionClosed | MessageEncodeError, Prefix>>()
      expectTypeOf(receiving).toEqualTypeOf<
        Effect.Effect<string, ConnectionClosed | ConcurrencyError | MessageDecodeError, Prefix>
      >()
      expectTypeOf(TypedMessages.messages(ws, prefixed)).toEqualTypeOf<
        Stream.Stream<string, ConnectionClosedError | MessageDecodeError, Prefix>
      >()
      expectTypeOf(TypedMessages.forEach(ws, prefixed, () => Effect.fail("stop" as const))).toEqualTypeOf<
        Effect.Effect<void, ConnectionClosedError | MessageDecodeError | "stop", Prefix>
      >()
      expectTypeOf(TypedMessages.send(ws, prefixed)).toEqualTypeOf<
        (value: string) => Effect.Effect<void, ConnectionClosed | MessageEncodeError, Prefix>
      >()

      yield* sending.pipe(Effect.provideService(Prefix, "v1:"))
      expect(yield* ws.recv).toBe("v1:hello")
      yield* sending.pipe(Effect.provideService(Prefix, "v1:"))
      expect(yield* receiving.pipe(Effect.provideService(Prefix, "v1:"))).toBe("hello")
      // A peer with another prefix: the Schema's own failure, as InvalidPayload.
      yield* sending.pipe(Effect.provideService(Prefix, "v2:"))
      const error = yield* decodeErrorOf(receiving.pipe(Effect.provideService(Prefix, "v1:")))
      expect(error.message).toContain("missing prefix v1:")
    }).pipe(bounded())
  )
})
