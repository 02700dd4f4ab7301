/**
 * What the shared sans-I/O core needs of Effect's success-or-failure value, whose name and shape
 * differ between the Effect majors: `Either` in Effect 3 (this file), `Result` in Effect 4
 * (`effect4/src/internal/result.ts`). The protocol core is written once against these names and
 * each shell supplies its major's native type, so an Effect 3 user gets an `Either` and an Effect 4
 * user a `Result` from the same function.
 *
 * Not exported (internal/), and without the internal tag: stripInternal would take this comment
 * for the first statement's and drop that statement from the declarations.
 */
import * as Either from "effect/Either"

/** A success of `A` or a failure of `E`: `Either<A, E>` in Effect 3. */
export type Result<A, E = never> = Either.Either<A, E>
/** The success case. */
export type Success<A, E> = Either.Right<E, A>
/** The failure case. */
export type Failure<A, E> = Either.Left<E, A>

export const succeed: <A>(value: A) => Result<A> = Either.right
export const fail: <E>(error: E) => Result<never, E> = Either.left
/** A succeeded `void`, shared. */
export const void_: Result<void> = Either.void

export const isSuccess: <A, E>(result: Result<A, E>) => result is Success<A, E> = Either.isRight
export const isFailure: <A, E>(result: Result<A, E>) => result is Failure<A, E> = Either.isLeft

/** The value of a success. */
export const successOf = <A, E>(result: Success<A, E>): A => result.right
/** The error of a failure. */
export const failureOf = <A, E>(result: Failure<A, E>): E => result.left

export const map = <A, E, B>(result: Result<A, E>, f: (a: A) => B): Result<B, E> => Either.map(result, f)
export const flatMap = <A, E, B, E2>(result: Result<A, E>, f: (a: A) => Result<B, E2>): Result<B, E | E2> =>
  Either.flatMap(result, f)
export const mapError = <A, E, E2>(result: Result<A, E>, f: (e: E) => E2): Result<A, E2> => Either.mapLeft(result, f)
export const match = <A, E, B, C = B>(
  result: Result<A, E>,
  cases: { readonly onFailure: (e: E) => B; readonly onSuccess: (a: A) => C }
): B | C => Either.match(result, { onLeft: cases.onFailure, onRight: cases.onSuccess })
export const getOrUndefined: <A, E>(result: Result<A, E>) => A | undefined = Either.getOrUndefined

/** Generator syntax over results, as `Either.gen` (Effect 3) and `Result.gen` (Effect 4). */
export const gen: typeof Either.gen = Either.gen
