/**
 * What TypedMessages needs of `Schema`, whose API differs between the Effect majors: Effect 3 here,
 * Effect 4 in `effect4/src/internal/schemaCodec.ts`.
 *
 * Not exported (internal/), and without the internal tag: stripInternal would take this comment
 * for the first statement's and drop that statement from the declarations.
 */
import * as Effect from "effect/Effect"
import * as ParseResult from "effect/ParseResult"
import type * as Schema from "effect/Schema"
import type { SchemaError } from "./schemaError.js"

/** A Schema from `I` to `A` requiring `R`: `Schema<A, I, R>` in Effect 3, `Codec<A, I, R, R>` in Effect 4. */
export type SchemaCodec<A, I, R> = Schema.Schema<A, I, R>

// Only `ParseResult` is loaded at run time (the Schema types are erased): `effect/Schema` takes
// longer to load than this whole library.

/** The Schema's decoding of an unknown input, compiled once. */
export const schemaDecoder = <A, I, R>(
  schema: SchemaCodec<A, I, R>
): ((input: unknown) => Effect.Effect<A, SchemaError, R>) => {
  const decode = ParseResult.decodeUnknown(schema)
  return (input) => Effect.mapError(decode(input), ParseResult.parseError)
}

/** The Schema's encoding, compiled once. */
export const schemaEncoder = <A, I, R>(
  schema: SchemaCodec<A, I, R>
): ((value: A) => Effect.Effect<I, SchemaError, R>) => {
  const encode = ParseResult.encode(schema)
  return (value) => Effect.mapError(encode(value), ParseResult.parseError)
}

/** A Schema error of our own about `input`, for what the Schema never saw (JSON that does not parse). */
export const schemaFailure = <A, I, R>(schema: SchemaCodec<A, I, R>, input: unknown, message: string): SchemaError =>
  ParseResult.parseError(new ParseResult.Type(schema.ast, input, message))
