import * as Result from "./result.js"

/**
 * Parses every value of a header that may be repeated (RFC 7230 §3.2.2: repeated list headers are
 * equivalent to one comma-separated value) and concatenates the results.
 */
export const parseAll = <A, E>(
  values: ReadonlyArray<string>,
  parse: (value: string) => Result.Result<ReadonlyArray<A>, E>
): Result.Result<ReadonlyArray<A>, E> => {
  if (values.length === 1) return parse(values[0]!)
  const all: Array<A> = []
  for (const value of values) {
    const parsed = parse(value)
    if (Result.isFailure(parsed)) return parsed
    all.push(...Result.successOf(parsed))
  }
  return Result.succeed(all)
}
