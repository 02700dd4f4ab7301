/**
 * The seeds' `websockets.datastructures.Headers`: `headers[name]` (KeyError, one value,
 * MultipleValuesError), case-insensitive lookups with the original spelling kept for display.
 */
import { describe, expect, it } from "@effect/vitest"
import * as Either from "effect/Either"
import * as fc from "fast-check"
import { KeyError, MultipleValuesError } from "../src/Errors.js"
import { Headers } from "../src/Headers.js"

describe("seed: Headers", () => {
  it("seed: headers[name] raises KeyError if there's no value (getStrict)", () => {
    const headers = new Headers([["Host", "example.com"]])
    const missing = headers.getStrict("Upgrade")
    expect(Either.isLeft(missing) && missing.left).toBeInstanceOf(KeyError)
    expect(Either.isLeft(missing) && missing.left.message).toBe("missing Upgrade header")
    expect(Either.isLeft(missing) && missing.left._tag).toBe("KeyError")
    // `get` stays the TypeScript-idiomatic lookup: undefined when absent.
    expect(headers.get("Upgrade")).toBeUndefined()
  })

  it("seed: headers[name] returns the value if there's exactly one, case-insensitively", () => {
    const headers = new Headers([["Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="]])
    expect(headers.getStrict("sec-websocket-key")).toEqual(Either.right("dGhlIHNhbXBsZSBub25jZQ=="))
    expect(headers.getStrict("SEC-WEBSOCKET-KEY")).toEqual(Either.right("dGhlIHNhbXBsZSBub25jZQ=="))
  })

  it("seed: headers[name] raises MultipleValuesError if there's more than one value", () => {
    const headers = new Headers([
      ["Sec-WebSocket-Extensions", "a"],
      ["sec-websocket-extensions", "b"]
    ])
    const result = headers.getStrict("Sec-WebSocket-Extensions")
    expect(Either.isLeft(result) && result.left).toBeInstanceOf(MultipleValuesError)
    expect(Either.isLeft(result) && result.left).toMatchObject({ values: ["a", "b"] })
  })

  it("seed: keys are lower-cased for lookups while the original spelling is preserved (names, raw_items, str)", () => {
    const headers = new Headers()
    headers.append("Sec-WebSocket-Protocol", "chat")
    headers.append("X-Custom", "1")
    headers.append("SEC-WEBSOCKET-PROTOCOL", "superchat")
    expect([...headers.keys()]).toEqual(["sec-websocket-protocol", "x-custom"])
    expect(headers.names()).toEqual(["Sec-WebSocket-Protocol", "X-Custom"])
    expect([...headers.rawItems()]).toEqual([
      ["Sec-WebSocket-Protocol", "chat"],
      ["X-Custom", "1"],
      ["SEC-WEBSOCKET-PROTOCOL", "superchat"]
    ])
    expect(headers.serialize()).toBe(
      "Sec-WebSocket-Protocol: chat\r\nX-Custom: 1\r\nSEC-WEBSOCKET-PROTOCOL: superchat\r\n\r\n"
    )
  })

  it("seed: names() is the first spelling of each distinct name, for any spellings", () => {
    const name = fc.constantFrom("Host", "host", "HOST", "Upgrade", "upgrade", "X-A", "x-a")
    fc.assert(
      fc.property(fc.array(fc.tuple(name, fc.string())), (pairs) => {
        const headers = new Headers(pairs)
        const expected: Array<string> = []
        for (const [n] of pairs) {
          if (!expected.some((e) => e.toLowerCase() === n.toLowerCase())) expected.push(n)
        }
        expect(headers.names()).toEqual(expected)
        expect(headers.names().map((n) => n.toLowerCase())).toEqual([...headers.keys()])
      })
    )
  })
})
