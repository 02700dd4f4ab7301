/**
 * Typed messages: receive values decoded with a `Schema` and send values encoded with it, instead
 * of parsing `string | Uint8Array` by hand.
 *
 * A {@link Codec} pairs a Schema with a frame type: {@link json} (JSON over Text frames), {@link text}
 * (any Schema from `string`) or {@link binary} (any Schema from `Uint8Array`, for example a
 * hand-written binary layout). {@link recv}, {@link messages} and {@link forEach} decode what
 * `ws.recv`, `ws.messages` and `ws.forEachMessage` return; {@link send} encodes before sending.
 *
 * A message that does not decode fails with `MessageDecodeError` and leaves the connection open: the
 * application decides (skip it, answer, or {@link closeOnDecodeError} to close with 1007 or 1003).
 * A value that does not encode fails with `MessageEncodeError` and nothing is sent. Schemas with
 * requirements (`R`) carry them into every Effect and Stream returned here.
 *
 * @example
 * ```ts
 * import { Schema } from "effect"
 * import { TypedMessages, type WebSocket } from "effect-websockets"
 *
 * const Move = Schema.Struct({ player: Schema.String, at: Schema.Number })
 * const move = TypedMessages.json(Move)
 *
 * const handler = (ws: WebSocket.WebSocket) =>
 *   TypedMessages.forEach(ws, move, (m) => TypedMessages.send(ws, move, { ...m, at: Date.now() })).pipe(
 *     TypedMessages.closeOnDecodeError(ws)
 *   )
 * ```
 *
 * @since 0.3.0
 */
import * as Effect from "effect/Effect"
import { dual } from "effect/Function"
import * as Stream from "effect/Stream"
import type { ConcurrencyError, ConnectionClosed, ConnectionClosedError } from "./Errors.js"
import { MessageDecodeError, MessageEncodeError } from "./Errors.js"
import { type SchemaCodec, schemaDecoder, schemaEncoder, schemaFailure } from "./internal/schemaCodec.js"
import type { SchemaError } from "./internal/schemaError.js"
import type { Data, WebSocket } from "./WebSocket.js"

// `json` runs `JSON.parse`/`JSON.stringify` itself around the Schema's decoding and encoding, as
// `Schema.parseJson(schema)` does in Effect 3: Effect 3 does not load `effect/Schema` at run time
// (it takes longer to load than this whole library), and both majors fail the same way.

/**
 * A Schema paired with a frame type: how values of type `A` travel as WebSocket messages. `R` is
 * what the Schema requires (`never` for most).
 *
 * `decode` and `encode` are the building blocks of this module, useful on their own: `encode` once
 * and hand the result to `server.broadcast` or `Topics.publish`; `Effect.either(codec.decode(m))`
 * to keep reading past a bad message in a Stream.
 * @since 0.3.0
 * @category models
 */
export interface Codec<in out A, out R = never> {
  /** The frame type of the messages: Text (`string`) or Binary (`Uint8Array`). */
  readonly frame: "text" | "binary"
  /** Decodes a received message; a message of the other frame type fails with `UnexpectedFrame`. */
  readonly decode: (data: Data) => Effect.Effect<A, MessageDecodeError, R>
  /** Encodes a value into the message to send: a `string` for Text, a `Uint8Array` for Binary. */
  readonly encode: (value: A) => Effect.Effect<Data, MessageEncodeError, R>
}

/**
 * Options of {@link json}, passed to `JSON.parse` (`reviver`) and `JSON.stringify` (`replacer`,
 * `space`), as `Schema.ParseJsonOptions` are.
 * @since 0.3.0
 * @category models
 */
export interface JsonOptions {
  readonly reviver?: ((this: any, key: string, value: any) => any) | undefined
  readonly replacer?: ((this: any, key: string, value: any) => any) | ReadonlyArray<string | number> | null | undefined
  readonly space?: string | number | undefined
}

const unexpectedFrame = (data: Data): Effect.Effect<never, MessageDecodeError> =>
  Effect.fail(new MessageDecodeError({ reason: "UnexpectedFrame", data }))

const invalidPayload = (data: Data, cause: SchemaError): MessageDecodeError =>
  new MessageDecodeError({ reason: "InvalidPayload", data, cause })

const encodeFailure = (value: unknown, cause: SchemaError): MessageEncodeError =>
  new MessageEncodeError({ value, cause })

const errorText = (e: unknown): string => (e instanceof Error ? e.message : String(e))

/**
 * Values as JSON in Text messages: the wire format of `Schema.parseJson(schema)` in Effect 3.
 * Decoding is `JSON.parse` then the Schema's decoding (so `Schema.NumberFromString` reads a
 * string); encoding is the Schema's encoding then `JSON.stringify`.
 * Invalid JSON and values the Schema rejects both fail with `InvalidPayload`; a Binary message
 * fails with `UnexpectedFrame`.
 * @since 0.3.0
 * @category constructors
 */
export const json = <A, I, R>(schema: SchemaCodec<A, I, R>, options?: JsonOptions): Codec<A, R> => {
  // Built once per codec: the parsers are compiled from the Schema's AST here, not per message.
  const decodeValue = schemaDecoder(schema)
  const encodeValue = schemaEncoder(schema)
  const reviver = options?.reviver
  // One of JSON.stringify's two overloads, whichever form was given.
  const replacer = options?.replacer as ((this: any, key: string, value: any) => any) | undefined
  const space = options?.space
  return {
    frame: "text",
    decode: (data) => {
      if (typeof data !== "string") return unexpectedFrame(data)
      let parsed: unknown
      try {
        parsed = JSON.parse(data, reviver)
      } catch (e) {
        return Effect.fail(invalidPayload(data, schemaFailure(schema, data, `invalid JSON: ${errorText(e)}`)))
      }
      return Effect.mapError(decodeValue(parsed), (cause) => invalidPayload(data, cause))
    },
    encode: (value) =>
      Effect.flatMap(
        Effect.mapError(encodeValue(value), (cause) => encodeFailure(value, cause)),
        (encoded): Effect.Effect<string, MessageEncodeError> => {
          let text: string | undefined
          try {
            text = JSON.stringify(encoded, replacer, space)
          } catch (e) {
            // A BigInt or a cycle the Schema let through.
            return Effect.fail(encodeFailure(value, schemaFailure(schema, encoded, errorText(e))))
          }
          // `JSON.stringify` returns undefined for `undefined`, functions and symbols.
          return text === undefined
            ? Effect.fail(encodeFailure(value, schemaFailure(schema, encoded, "not representable as JSON")))
            : Effect.succeed(text)
        }
      )
  }
}

const fromSchema = <A, I extends Data, R>(schema: SchemaCodec<A, I, R>, frame: "text" | "binary"): Codec<A, R> => {
  const decodeValue = schemaDecoder(schema)
  const encodeValue = schemaEncoder(schema)
  return {
    frame,
    decode: (data) =>
      (typeof data === "string") !== (frame === "text")
        ? unexpectedFrame(data)
        : Effect.mapError(decodeValue(data), (cause) => invalidPayload(data, cause)),
    encode: (value) => Effect.mapError(encodeValue(value), (cause) => encodeFailure(value, cause))
  }
}

/**
 * Values in Text messages, with a Schema from `string` of your own (a custom text format, or
 * `Schema.String` itself to add nothing but the frame type check). A Binary message fails with
 * `UnexpectedFrame`.
 * @since 0.3.0
 * @category constructors
 */
export const text = <A, R>(schema: SchemaCodec<A, string, R>): Codec<A, R> => fromSchema(schema, "text")

/**
 * Values in Binary messages, with a Schema from `Uint8Array` of your own (a fixed binary layout, or
 * a Schema wrapping a serializer such as MessagePack or Protocol Buffers). A Text message fails with
 * `UnexpectedFrame`. Received bytes may be a Node `Buffer` (a `Uint8Array`), possibly a view over
 * a larger buffer: read them through `byteOffset`/`byteLength`.
 * @since 0.3.0
 * @category constructors
 */
export const binary = <A, R>(schema: SchemaCodec<A, Uint8Array, R>): Codec<A, R> => fromSchema(schema, "binary")

/**
 * The next message, decoded. Fails with `MessageDecodeError` when it does not decode (the message
 * is consumed, the connection stays open: the next `recv` reads the one after) and with
 * `ConnectionClosed` as `ws.recv` does.
 * @since 0.3.0
 * @category receiving
 */
export const recv = <A, R>(
  ws: WebSocket,
  codec: Codec<A, R>
): Effect.Effect<A, ConnectionClosed | ConcurrencyError | MessageDecodeError, R> =>
  Effect.flatMap(ws.recv, codec.decode)

/**
 * Every incoming message, decoded: `ws.messages` through `codec.decode`. Ends normally after a
 * 1000/1001 closure and fails with `ConnectionClosedError` otherwise, as `ws.messages` does.
 *
 * The Stream **fails on the first message that does not decode**, after emitting the messages
 * before it. Messages that arrived with the bad one may already have been taken from the
 * connection and are dropped with the Stream: after the failure, close the connection
 * ({@link closeOnDecodeError}). To read past bad messages, keep them in the Stream instead:
 * `Stream.mapEffect(ws.messages, (m) => Effect.either(codec.decode(m)))` yields an `Either` per
 * message, or use {@link forEach} / {@link recv}, which take one message at a time.
 * @since 0.3.0
 * @category receiving
 */
export const messages = <A, R>(
  ws: WebSocket,
  codec: Codec<A, R>
): Stream.Stream<A, ConnectionClosedError | MessageDecodeError, R> => Stream.mapEffect(ws.messages, codec.decode)

/**
 * Runs `f` on every incoming message, decoded, one after the other: `ws.forEachMessage` (the
 * fastest way to read) with `codec.decode` in front. Ends normally after a 1000/1001 closure; fails
 * with `ConnectionClosedError` otherwise, with the first `MessageDecodeError`, or with the first
 * failure of `f`. A message that fails to decode is the last one taken: the connection stays open.
 * @since 0.3.0
 * @category receiving
 */
export const forEach = <A, R, E2, R2>(
  ws: WebSocket,
  codec: Codec<A, R>,
  f: (value: A) => Effect.Effect<unknown, E2, R2>
): Effect.Effect<void, ConnectionClosedError | MessageDecodeError | E2, R | R2> =>
  ws.forEachMessage((message) => Effect.flatMap(codec.decode(message), f))

/**
 * Encodes `value` and sends it as one message. When it does not encode, fails with
 * `MessageEncodeError` and nothing is sent. `send(ws, codec)` returns the sending function, for
 * `Stream.runForEach(values, TypedMessages.send(ws, codec))`.
 * @since 0.3.0
 * @category sending
 */
export const send: {
  <A, R>(ws: WebSocket, codec: Codec<A, R>): (value: A) => Effect.Effect<void, ConnectionClosed | MessageEncodeError, R>
  <A, R>(
    ws: WebSocket,
    codec: Codec<A, R>,
    value: NoInfer<A>
  ): Effect.Effect<void, ConnectionClosed | MessageEncodeError, R>
} = (<A, R>(ws: WebSocket, codec: Codec<A, R>, ...rest: [] | [A]) => {
  const sendValue = (value: A): Effect.Effect<void, ConnectionClosed | MessageEncodeError, R> =>
    Effect.flatMap(codec.encode(value), (data) =>
      // `ws.send` fails with InvalidArgument only for fragments of mixed types or data that is not a
      // string or bytes; a codec's output is one string or one Uint8Array.
      Effect.catchTag(ws.send(data), "InvalidArgument", (e) => Effect.die(e))
    )
  // The arity tells the two forms apart: the value itself may be `undefined`.
  return rest.length === 0 ? sendValue : sendValue(rest[0])
}) as any

/**
 * Closes the connection when `self` fails with `MessageDecodeError`, with the error's `closeCode`
 * (1007 for a payload that does not decode, 1003 for a message of the wrong frame type), and then
 * completes: the failure is handled, so a server handler ends without a 1011 or an error log.
 * The close reason is a fixed short text ("invalid message", "unsupported message type"): the
 * details of a Schema error (ParseError, SchemaError in Effect 4) are for the application's logs, and
 * a reason is capped at 123 bytes.
 * Other failures pass through. To decide per message instead, catch `MessageDecodeError` and call
 * `ws.close(e.closeCode)` yourself.
 * @since 0.3.0
 * @category combinators
 */
export const closeOnDecodeError: {
  (
    ws: WebSocket
  ): <A, E, R>(self: Effect.Effect<A, E, R>) => Effect.Effect<A | undefined, Exclude<E, MessageDecodeError>, R>
  <A, E, R>(
    self: Effect.Effect<A, E, R>,
    ws: WebSocket
  ): Effect.Effect<A | undefined, Exclude<E, MessageDecodeError>, R>
} = dual(
  2,
  <A, E, R>(
    self: Effect.Effect<A, E, R>,
    ws: WebSocket
  ): Effect.Effect<A | undefined, Exclude<E, MessageDecodeError>, R> =>
    Effect.catchIf(
      self,
      (e): e is Extract<E, MessageDecodeError> => e instanceof MessageDecodeError,
      (e) =>
        // 1003 and 1007 may be sent and the reasons are short: close cannot fail with ProtocolError.
        Effect.as(
          Effect.orDie(ws.close(e.closeCode, e.closeCode === 1003 ? "unsupported message type" : "invalid message")),
          undefined
        )
    ) as Effect.Effect<A | undefined, Exclude<E, MessageDecodeError>, R>
)
