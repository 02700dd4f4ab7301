/**
 * What the shared sans-I/O core needs of Effect's success-or-failure value, whose name and shape
 * differ between the Effect majors: `Either` in Effect 3 (`src/internal/result.ts`), `Result` in
 * Effect 4 (this file). The protocol core is written once against these names and each shell
 * supplies its major's native type, so an Effect 4 user gets a `Result` from the same function
 * that gives an Effect 3 user an `Either`.
 *
 * Not exported (internal/), and without the internal tag: stripInternal would take this comment
 * for the first statement's and drop that statement from the declarations.
 */
import * as R from "effect/Result"

/** A success of `A` or a failure of `E`: `Result<A, E>` in Effect 4. */
export type Result<A, E = never> = R.Result<A, E>
/** The success case. */
export type Success<A, E> = R.Success<A, E>
/** The failure case. */
export type Failure<A, E> = R.Failure<A, E>

export const succeed: <A>(value: A) => Result<A> = R.succeed
export const fail: <E>(error: E) => Result<never, E> = R.fail
/** A succeeded `void`, shared. */
export const void_: Result<void> = R.succeed(undefined)

export const isSuccess: <A, E>(result: Result<A, E>) => result is Success<A, E> = R.isSuccess
export const isFailure: <A, E>(result: Result<A, E>) => result is Failure<A, E> = R.isFailure

/** The value of a success. */
export const successOf = <A, E>(result: Success<A, E>): A => result.success
/** The error of a failure. */
export const failureOf = <A, E>(result: Failure<A, E>): E => result.failure

export const map = <A, E, B>(result: Result<A, E>, f: (a: A) => B): Result<B, E> => R.map(result, f)
export const flatMap = <A, E, B, E2>(result: Result<A, E>, f: (a: A) => Result<B, E2>): Result<B, E | E2> =>
  R.flatMap(result, f)
export const mapError = <A, E, E2>(result: Result<A, E>, f: (e: E) => E2): Result<A, E2> => R.mapError(result, f)
export const match = <A, E, B, C = B>(
  result: Result<A, E>,
  cases: { readonly onFailure: (e: E) => B; readonly onSuccess: (a: A) => C }
): B | C => R.match(result, cases)
export const getOrUndefined: <A, E>(result: Result<A, E>) => A | undefined = R.getOrUndefined

/** Generator syntax over results, as `Either.gen` (Effect 3) and `Result.gen` (Effect 4). */
export const gen: typeof R.gen = R.gen
