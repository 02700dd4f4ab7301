/**
 * A case-insensitive, multi-valued collection of HTTP headers that keeps insertion order,
 * mirroring Python `websockets.datastructures.Headers`.
 *
 * @since 0.1.0
 */

import { KeyError, MultipleValuesError } from "./Errors.js"
import * as Result from "./internal/result.js"

/**
 * Anything a `Headers` can be built from: another `Headers`, a record, or `[name, value]` pairs.
 * @since 0.1.0
 * @category models
 */
export type HeadersLike = Headers | Readonly<Record<string, string>> | Iterable<readonly [string, string]>

/**
 * HTTP headers.
 *
 * - `get(name)` returns the value, `undefined` when absent, and several values joined with `", "`
 *   (as the Fetch API's `Headers.get`, RFC 9110 §5.3).
 * - `getStrict(name)` is Python's `headers[name]`: the single value, or `KeyError` when absent and
 *   `MultipleValuesError` when several exist. `getSingle(name)` is the same with `undefined` when
 *   absent.
 * - `append(name, value)` adds a value (Python's `headers[name] = value`); `set` replaces all.
 * - `getAll(name)` and `rawItems()` expose multiple values explicitly.
 * - Names are case-insensitive: `keys()` lower-cases them (as the seeds' dict keys), `names()`
 *   gives each name as first spelled, and `rawItems()`, iteration and `serialize()` keep every
 *   header's own spelling (the seeds' `raw_items()` and `str()`).
 *
 * @since 0.1.0
 * @category models
 */
export class Headers implements Iterable<readonly [string, string]> {
  /** Lower-cased name → values, for lookups. */
  /** Lower-cased name → values, built on the first lookup (dropped by `compact`). */
  private dict: Map<string, Array<string>> | undefined = undefined
  /** Every `[name, value]` in insertion order, with the original case of names. */
  /** Names (original case) and values, flat: `[name, value, name, value, …]`, in insertion order. */
  private items: Array<string> = []

  constructor(init?: HeadersLike) {
    if (init !== undefined) this.update(init)
  }

  /** Number of distinct header names. */
  get size(): number {
    return this.index().size
  }

  /** The lookup map, built from `items` when missing. */
  private index(): Map<string, Array<string>> {
    if (this.dict !== undefined) return this.dict
    const dict = new Map<string, Array<string>>()
    const items = this.items
    for (let i = 0; i < items.length; i += 2) index(dict, items[i]!, items[i + 1]!)
    this.dict = dict
    return dict
  }

  /**
   * Drops the lookup map, which the next lookup rebuilds: headers kept for the life of a
   * connection (the handshake's) then cost their names and values only, in an array of their size
   * (appending leaves room for more).
   * @internal
   */
  compact(): void {
    this.dict = undefined
    this.items = this.items.slice()
  }

  /** Whether at least one value exists for `name`. */
  has(name: string): boolean {
    return this.index().has(name.toLowerCase())
  }

  /**
   * The value of `name`, `undefined` if absent; several values are joined with `", "`, which is how
   * HTTP combines them (RFC 9110 §5.3) and what the Fetch API's `Headers.get` returns.
   */
  get(name: string): string | undefined {
    return this.index().get(name.toLowerCase())?.join(", ")
  }

  /**
   * The single value of `name`, `undefined` if absent, `MultipleValuesError` if several exist
   * (Python's `headers[name]`): for headers that must not be repeated.
   */
  getSingle(name: string): Result.Result<string | undefined, MultipleValuesError> {
    const values = this.index().get(name.toLowerCase())
    if (values === undefined) return Result.succeed(undefined)
    if (values.length > 1) return Result.fail(new MultipleValuesError({ name, values: [...values] }))
    return Result.succeed(values[0])
  }

  /**
   * The single value of `name`, as Python's `headers[name]`: `KeyError` if absent,
   * `MultipleValuesError` if several exist.
   */
  getStrict(name: string): Result.Result<string, KeyError | MultipleValuesError> {
    const values = this.index().get(name.toLowerCase())
    if (values === undefined) return Result.fail(new KeyError({ name }))
    if (values.length > 1) return Result.fail(new MultipleValuesError({ name, values: [...values] }))
    return Result.succeed(values[0]!)
  }

  /** The first value of `name`, or `undefined`: for headers where duplicates don't matter. */
  getFirst(name: string): string | undefined {
    return this.index().get(name.toLowerCase())?.[0]
  }

  /** Every value of `name`, in order (an empty array if absent). */
  getAll(name: string): ReadonlyArray<string> {
    return this.index().get(name.toLowerCase()) ?? []
  }

  /** Adds a value to `name` (Python's `headers[name] = value`). */
  append(name: string, value: string): this {
    if (this.dict !== undefined) index(this.dict, name, value)
    this.items.push(name, value)
    return this
  }

  /** Replaces every value of `name` with `value`. */
  set(name: string, value: string): this {
    this.delete(name)
    return this.append(name, value)
  }

  /** Sets `name` to `value` only if it has no value yet. */
  setDefault(name: string, value: string): this {
    return this.has(name) ? this : this.append(name, value)
  }

  /** Removes every value of `name`; returns whether there was one. */
  delete(name: string): boolean {
    const key = name.toLowerCase()
    if (!this.index().delete(key)) return false
    const items = this.items
    for (let i = items.length - 2; i >= 0; i -= 2) {
      if (items[i]!.toLowerCase() === key) items.splice(i, 2)
    }
    return true
  }

  /** Removes every header. */
  clear(): void {
    this.dict = undefined
    this.items.length = 0
  }

  /** Appends every header of `other`. */
  update(other: HeadersLike): this {
    if (other instanceof Headers) {
      const items = other.items
      for (let i = 0; i < items.length; i += 2) this.append(items[i]!, items[i + 1]!)
    } else if (Symbol.iterator in other) {
      for (const [name, value] of other as Iterable<readonly [string, string]>) this.append(name, value)
    } else {
      for (const name of Object.keys(other)) this.append(name, (other as Record<string, string>)[name]!)
    }
    return this
  }

  /** A copy that can be changed independently. */
  copy(): Headers {
    return new Headers(this)
  }

  /** Distinct header names, lower-cased, in order of first insertion. */
  keys(): IterableIterator<string> {
    return this.index().keys()
  }

  /**
   * Distinct header names as first spelled (`Sec-WebSocket-Key`, not `sec-websocket-key`), in order
   * of first insertion: for display, where `keys()` gives the lower-cased lookup keys.
   */
  names(): ReadonlyArray<string> {
    const seen = new Set<string>()
    const names: Array<string> = []
    const items = this.items
    for (let i = 0; i < items.length; i += 2) {
      const key = items[i]!.toLowerCase()
      if (seen.has(key)) continue
      seen.add(key)
      names.push(items[i]!)
    }
    return names
  }

  /** Every `[name, value]` pair in insertion order, names in their original case. */
  rawItems(): IterableIterator<readonly [string, string]> {
    return this.pairs()[Symbol.iterator]()
  }

  [Symbol.iterator](): IterableIterator<readonly [string, string]> {
    return this.rawItems()
  }

  /** The headers as HTTP/1.1 lines, each ending in CRLF, followed by the empty line. */
  serialize(): string {
    let out = ""
    const items = this.items
    for (let i = 0; i < items.length; i += 2) out += `${items[i]}: ${items[i + 1]}\r\n`
    return `${out}\r\n`
  }

  toJSON(): ReadonlyArray<readonly [string, string]> {
    return this.pairs()
  }

  /** `[name, value]` pairs, made on demand. */
  private pairs(): Array<readonly [string, string]> {
    const pairs: Array<readonly [string, string]> = []
    const items = this.items
    for (let i = 0; i < items.length; i += 2) pairs.push([items[i]!, items[i + 1]!])
    return pairs
  }

  toString(): string {
    return this.serialize()
  }
}

/** Adds one header to a lookup map (lower-cased name → values). */
const index = (dict: Map<string, Array<string>>, name: string, value: string): void => {
  const key = name.toLowerCase()
  const values = dict.get(key)
  if (values === undefined) dict.set(key, [value])
  else values.push(value)
}

/**
 * Builds a `Headers` from any `HeadersLike`, sharing it when it is already one.
 * @since 0.1.0
 * @category constructors
 */
export const fromHeadersLike = (init: HeadersLike | undefined): Headers =>
  init instanceof Headers ? init : new Headers(init)
