/**
 * The error a `Schema` decode or encode fails with, whose module differs between the Effect majors:
 * `ParseError` of `effect/ParseResult` in Effect 3 (this file), `SchemaError` of `effect/Schema`
 * in Effect 4 (`effect4/src/internal/schemaError.ts`). The shared error hierarchy names it here.
 *
 * Not exported (internal/), and without the internal tag: stripInternal would take this comment
 * for the first statement's and drop that statement from the declarations.
 */
export type { ParseError as SchemaError } from "effect/ParseResult"
