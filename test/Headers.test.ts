/**
 * Headers: case-insensitive, multi-valued lookups (`get` joins like the Fetch API, `getSingle`
 * refuses duplicates as Python's `headers[name]` does), insertion order and serialization.
 */
import { describe, expect, it } from "@effect/vitest"
import * as Either from "effect/Either"
import * as fc from "fast-check"
import { MultipleValuesError } from "../src/Errors.js"
import { Headers } from "../src/Headers.js"

describe("Headers", () => {
  it("lookups, appends and deletes give the same answers before and after compact (the map is rebuilt)", () => {
    const headers = new Headers([
      ["Host", "example.com"],
      ["Sec-WebSocket-Extensions", "permessage-deflate"],
      ["sec-websocket-extensions", "x-custom"]
    ])
    const snapshot = () => ({
      size: headers.size,
      host: headers.get("HOST"),
      extensions: headers.getAll("Sec-WebSocket-Extensions"),
      keys: [...headers.keys()],
      items: [...headers],
      wire: headers.serialize()
    })
    const before = snapshot()
    headers.compact()
    expect(snapshot()).toEqual(before)
    // Changes made while the map is dropped are seen once it is rebuilt.
    headers.compact()
    headers.append("X-Late", "1")
    expect(headers.get("x-late")).toBe("1")
    headers.compact()
    expect(headers.delete("sec-websocket-extensions")).toBe(true)
    expect(headers.has("Sec-WebSocket-Extensions")).toBe(false)
    expect([...headers]).toEqual([
      ["Host", "example.com"],
      ["X-Late", "1"]
    ])
    expect(headers.toJSON()).toEqual([...headers])
  })

  const headers = () =>
    new Headers([
      ["Host", "example.com"],
      ["Sec-WebSocket-Extensions", "permessage-deflate"],
      ["sec-websocket-extensions", "x-webkit-deflate-frame"]
    ])

  it("get returns a string for one value, undefined when absent, and joins several with a comma", () => {
    const h = headers()
    expect(h.get("host")).toBe("example.com")
    expect(h.get("HOST")).toBe("example.com")
    expect(h.get("Origin")).toBeUndefined()
    expect(h.get("Sec-WebSocket-Extensions")).toBe("permessage-deflate, x-webkit-deflate-frame")
    // A string, so it prints as one.
    expect(`${h.get("Host")}`).toBe("example.com")
  })

  it("getSingle returns the one value or undefined, and MultipleValuesError for several", () => {
    const h = headers()
    expect(h.getSingle("Host")).toEqual(Either.right("example.com"))
    expect(h.getSingle("Origin")).toEqual(Either.right(undefined))
    const several = h.getSingle("sec-websocket-extensions")
    expect(several).toEqual(
      Either.left(
        new MultipleValuesError({
          name: "sec-websocket-extensions",
          values: ["permessage-deflate", "x-webkit-deflate-frame"]
        })
      )
    )
    expect(Either.isLeft(several) && several.left.message).toBe(
      "sec-websocket-extensions has 2 values: permessage-deflate, x-webkit-deflate-frame"
    )
  })

  it("getFirst, getAll, set and delete keep the original case and insertion order", () => {
    const h = headers()
    expect(h.getFirst("SEC-WEBSOCKET-EXTENSIONS")).toBe("permessage-deflate")
    expect(h.getAll("sec-websocket-extensions")).toEqual(["permessage-deflate", "x-webkit-deflate-frame"])
    h.set("Sec-WebSocket-Extensions", "x-one")
    expect(h.getAll("sec-websocket-extensions")).toEqual(["x-one"])
    expect(h.delete("host")).toBe(true)
    expect(h.delete("host")).toBe(false)
    expect(h.serialize()).toBe("Sec-WebSocket-Extensions: x-one\r\n\r\n")
  })

  it("lookups scan a few headers and index many, with the answers of lower-cased names either way", () => {
    // Names that differ in case only, in one char, or by chars whose lower case is longer ("İ").
    const name = fc.constantFrom(
      "Host",
      "HOST",
      "host",
      "Hosts",
      "X-A",
      "x-a",
      "X-B",
      "İd",
      "i̇d",
      "İD",
      "Sec-WebSocket-Key"
    )
    const model = (items: ReadonlyArray<readonly [string, string]>, key: string) =>
      items.filter(([n]) => n.toLowerCase() === key.toLowerCase()).map(([, v]) => v)
    fc.assert(
      fc.property(fc.array(fc.tuple(name, fc.string({ maxLength: 3 })), { maxLength: 60 }), name, (items, key) => {
        const h = new Headers(items)
        const values = model(items, key)
        expect(h.getAll(key)).toEqual(values)
        expect(h.has(key)).toBe(values.length > 0)
        expect(h.get(key)).toBe(values.length > 0 ? values.join(", ") : undefined)
        expect(h.getFirst(key)).toBe(values[0])
        expect(h.onlyValue(key)).toBe(values.length === 1 ? values[0] : undefined)
        expect(Either.getOrUndefined(h.getSingle(key))).toBe(values.length === 1 ? values[0] : undefined)
        // Compacted (twice: the second has nothing to do), the same answers.
        h.compact()
        h.compact()
        expect(h.getAll(key)).toEqual(values)
        expect(h.size).toBe(new Set(items.map(([n]) => n.toLowerCase())).size)
        // Once indexed (size built the map), the same answers; then delete removes every spelling.
        expect(h.getAll(key)).toEqual(values)
        expect(h.delete(key)).toBe(values.length > 0)
        expect([...h]).toEqual(items.filter(([n]) => n.toLowerCase() !== key.toLowerCase()))
        expect(h.has(key)).toBe(false)
      })
    )
  })

  it("an absent name's getAll is empty, and the same frozen array each time (nothing made)", () => {
    const h = headers()
    expect(h.getAll("Origin")).toEqual([])
    expect(h.getAll("Origin")).toBe(h.getAll("X-Other"))
    expect(Object.isFrozen(h.getAll("Origin"))).toBe(true)
  })
})
