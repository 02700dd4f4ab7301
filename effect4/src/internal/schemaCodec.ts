/**
 * What TypedMessages needs of `Schema`, whose API differs between the Effect majors: Effect 4 here,
 * Effect 3 in `src/internal/schemaCodec.ts`.
 *
 * Not exported (internal/), and without the internal tag: stripInternal would take this comment
 * for the first statement's and drop that statement from the declarations.
 */
import type * as Effect from "effect/Effect"
import * as Schema from "effect/Schema"
import * as SchemaIssue from "effect/SchemaIssue"
import type { SchemaError } from "./schemaError.js"

/** A Schema from `I` to `A` requiring `R`: `Schema<A, I, R>` in Effect 3, `Codec<A, I, R, R>` in Effect 4. */
export type SchemaCodec<A, I, R> = Schema.Codec<A, I, R, R>

/** The Schema's decoding of an unknown input, compiled once. */
export const schemaDecoder = <A, I, R>(
  schema: SchemaCodec<A, I, R>
): ((input: unknown) => Effect.Effect<A, SchemaError, R>) => Schema.decodeUnknownEffect(schema)

/** The Schema's encoding, compiled once. */
export const schemaEncoder = <A, I, R>(
  schema: SchemaCodec<A, I, R>
): ((value: A) => Effect.Effect<I, SchemaError, R>) => Schema.encodeEffect(schema)

/** A Schema error of our own about `input`, for what the Schema never saw (JSON that does not parse). */
export const schemaFailure = <A, I, R>(_schema: SchemaCodec<A, I, R>, input: unknown, message: string): SchemaError =>
  new Schema.SchemaError(new SchemaIssue.InvalidValue({ message }, input))
