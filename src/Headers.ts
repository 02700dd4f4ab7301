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
  /**
   * Lower-cased name → values, built on the first lookup among more than 24 headers
   * (dropped by `compact`); fewer are looked up by a scan of `items`. `null`: no map, and `items`
   * is an array of its size (`compact` has nothing to do).
   */
  private dict: Map<string, Array<string>> | undefined | null = undefined
  /** Names (original case) and values, flat: `[name, value, name, value, …]`, in insertion order. */
  private items: Array<string> = []
  /** Whether every name is ASCII (tokens are): a name of another length is then another name. */
  private asciiNames = true

  constructor(init?: HeadersLike) {
    if (init !== undefined) this.update(init)
  }

  /**
   * Headers that take `items` (`[name, value, name, value, …]`) as their own, with no copy: a
   * response built once, in an array of its size.
   * @internal
   */
  static fromFlatItems(items: Array<string>): Headers {
    const headers = new Headers()
    headers.items = items
    headers.dict = null
    for (let i = 0; i < items.length; i += 2) if (!isAscii(items[i]!)) headers.asciiNames = false
    return headers
  }

  /** Number of distinct header names. */
  get size(): number {
    return this.index().size
  }

  /** The lookup map, built from `items` when missing. */
  private index(): Map<string, Array<string>> {
    if (this.dict) return this.dict
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
    if (this.dict === null) return
    this.dict = null
    this.items = this.items.slice()
  }

  /**
   * The values of `name` (in order), `undefined` if absent. A handshake's few headers are scanned,
   * with no lookup map, no lower-cased copy of each name and no array per name to make: each
   * handshake looks up a handful of names once.
   */
  private valuesOf(name: string): Array<string> | undefined {
    const items = this.items
    if (this.dict || items.length > SCAN_LIMIT * 2) return this.index().get(name.toLowerCase())
    const ascii = this.asciiNames && isAscii(name)
    let values: Array<string> | undefined
    for (let i = 0; i < items.length; i += 2) {
      if (sameName(items[i]!, name, ascii)) {
        if (values === undefined) values = [items[i + 1]!]
        else values.push(items[i + 1]!)
      }
    }
    return values
  }

  /** Index in `items` of the first header named `name`, -1 if absent; a second one is not looked for. */
  private firstIndex(name: string): number {
    const items = this.items
    const ascii = this.asciiNames && isAscii(name)
    for (let i = 0; i < items.length; i += 2) if (sameName(items[i]!, name, ascii)) return i
    return -1
  }

  /** Whether at least one value exists for `name`. */
  has(name: string): boolean {
    if (this.dict || this.items.length > SCAN_LIMIT * 2) return this.index().has(name.toLowerCase())
    return this.firstIndex(name) >= 0
  }

  /**
   * The value of `name`, `undefined` if absent; several values are joined with `", "`, which is how
   * HTTP combines them (RFC 9110 §5.3) and what the Fetch API's `Headers.get` returns.
   */
  get(name: string): string | undefined {
    return this.valuesOf(name)?.join(", ")
  }

  /**
   * The single value of `name`, `undefined` if absent, `MultipleValuesError` if several exist
   * (Python's `headers[name]`): for headers that must not be repeated.
   */
  getSingle(name: string): Result.Result<string | undefined, MultipleValuesError> {
    const values = this.valuesOf(name)
    if (values === undefined) return Result.succeed(undefined)
    if (values.length > 1) return Result.fail(new MultipleValuesError({ name, values: [...values] }))
    return Result.succeed(values[0])
  }

  /**
   * The single value of `name`, as Python's `headers[name]`: `KeyError` if absent,
   * `MultipleValuesError` if several exist.
   */
  getStrict(name: string): Result.Result<string, KeyError | MultipleValuesError> {
    const values = this.valuesOf(name)
    if (values === undefined) return Result.fail(new KeyError({ name }))
    if (values.length > 1) return Result.fail(new MultipleValuesError({ name, values: [...values] }))
    return Result.succeed(values[0]!)
  }

  /** The first value of `name`, or `undefined`: for headers where duplicates don't matter. */
  getFirst(name: string): string | undefined {
    if (this.dict || this.items.length > SCAN_LIMIT * 2) return this.index().get(name.toLowerCase())?.[0]
    const i = this.firstIndex(name)
    return i < 0 ? undefined : this.items[i + 1]
  }

  /**
   * The value of `name` when exactly one header has that name, else `undefined` (absent or
   * repeated): the handshake's checks of single-valued headers, with nothing made when they pass.
   * @internal
   */
  onlyValue(name: string): string | undefined {
    if (this.dict || this.items.length > SCAN_LIMIT * 2) {
      const values = this.index().get(name.toLowerCase())
      return values?.length === 1 ? values[0] : undefined
    }
    const items = this.items
    const ascii = this.asciiNames && isAscii(name)
    let found: string | undefined
    for (let i = 0; i < items.length; i += 2) {
      if (sameName(items[i]!, name, ascii)) {
        if (found !== undefined) return undefined
        found = items[i + 1]!
      }
    }
    return found
  }

  /** Every value of `name`, in order (an empty array if absent). */
  getAll(name: string): ReadonlyArray<string> {
    return this.valuesOf(name) ?? NONE
  }

  /** Adds a value to `name` (Python's `headers[name] = value`). */
  append(name: string, value: string): this {
    // Appending to an array of its size leaves room for more: `compact` has work again.
    if (this.dict) index(this.dict, name, value)
    else this.dict = undefined
    if (this.asciiNames && !isAscii(name)) this.asciiNames = false
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
    this.dict?.delete(key)
    const items = this.items
    const ascii = this.asciiNames && isAscii(name)
    let deleted = false
    for (let i = items.length - 2; i >= 0; i -= 2) {
      if (sameName(items[i]!, name, ascii)) {
        items.splice(i, 2)
        deleted = true
        if (this.dict === null) this.dict = undefined
      }
    }
    return deleted
  }

  /** Removes every header. */
  clear(): void {
    this.dict = undefined
    this.asciiNames = true
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

  /**
   * Names and values, flat (`[name, value, name, value, …]`), in insertion order: what the head
   * serializers write, with no pair per header.
   * @internal
   */
  get flatItems(): ReadonlyArray<string> {
    return this.items
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

/** Up to this many headers, lookups scan them instead of building a map (a request has about ten). */
const SCAN_LIMIT = 24

/** `getAll` of an absent name. */
const NONE: ReadonlyArray<string> = Object.freeze([])

/**
 * Whether `text` is `lower` (ASCII lower case) ignoring ASCII case, as `text.toLowerCase() === lower`
 * for such a `lower`, without the lower-cased copy.
 * @internal
 */
export const isAsciiCaseInsensitive = (text: string, lower: string): boolean => {
  if (text.length !== lower.length) return false
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i)
    if (code !== lower.charCodeAt(i) && (code < 0x41 || code > 0x5a || (code | 0x20) !== lower.charCodeAt(i)))
      return false
  }
  return true
}

/**
 * Whether two header names are the same name: `a.toLowerCase() === b.toLowerCase()`, without making
 * the lower-cased copies when both are ASCII (header names are tokens; others are compared as before).
 * `ascii`: both are known to be ASCII.
 */
const sameName = (a: string, b: string, ascii: boolean): boolean => {
  if (a === b) return true
  // Lower-casing keeps the length of ASCII text (not of all text: "İ" becomes two chars).
  if (a.length !== b.length) return !ascii && a.toLowerCase() === b.toLowerCase()
  for (let i = 0; i < a.length; i++) {
    const x = a.charCodeAt(i)
    const y = b.charCodeAt(i)
    if (x === y) continue
    if (x > 0x7f || y > 0x7f) return a.toLowerCase() === b.toLowerCase()
    // ASCII letters differ by 0x20 between cases; any other difference is a different name.
    if ((x | 0x20) !== (y | 0x20) || (x | 0x20) < 0x61 || (x | 0x20) > 0x7a) return false
  }
  return true
}

const isAscii = (text: string): boolean => {
  for (let i = 0; i < text.length; i++) if (text.charCodeAt(i) > 0x7f) return false
  return true
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
