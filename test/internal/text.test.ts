import { describe, expect, it } from "@effect/vitest"
import * as fc from "fast-check"
import { decodeText } from "../../src/internal/text.js"
import { COMPRESSED_FRAGMENT_SIZE, textFragments } from "../../src/internal/webSocket.js"

/** Strings of every kind, short and over the shortcut's threshold: ASCII, Latin-1, BMP, astral, lone surrogates. */
const anyString = fc.oneof(
  fc.string({ unit: "grapheme-ascii", maxLength: 3000 }),
  fc.string({ unit: "binary", maxLength: 3000 }),
  fc.string({ unit: fc.integer({ min: 0, max: 0xff }).map((c) => String.fromCharCode(c)), maxLength: 3000 }),
  fc.string({ unit: fc.integer({ min: 0xd800, max: 0xdfff }).map((c) => String.fromCharCode(c)), maxLength: 20 }),
  fc.tuple(fc.nat({ max: 4000 }), fc.string({ maxLength: 3 })).map(([n, tail]) => "a".repeat(n) + tail)
)

describe("text", () => {
  it("decodes valid UTF-8 exactly as the UTF-8 decoder does, views included", () => {
    fc.assert(
      fc.property(anyString, fc.nat({ max: 7 }), (text, offset) => {
        const bytes = Buffer.from(text, "utf8")
        const padded = new Uint8Array(bytes.length + offset + 3)
        padded.set(bytes, offset)
        const view = padded.subarray(offset, offset + bytes.length)
        expect(decodeText(view)).toBe(bytes.toString("utf8"))
      }),
      { numRuns: 500 }
    )
  })

  it("keeps characters 0x80-0xff apart from ASCII over the decoder's threshold (not taken for Latin-1)", () => {
    const text = `${"x".repeat(2000)}é€`
    expect(decodeText(Buffer.from(text, "utf8"))).toBe(text)
  })

  it("a large text is cut into fragments that each encode to the UTF-8 of their part", () => {
    const size = COMPRESSED_FRAGMENT_SIZE
    const piece = fc.oneof(
      fc.constant("😀"),
      fc.constant("é"),
      fc.constant(String.fromCharCode(0xd83d)),
      fc.string({ unit: "binary", maxLength: 8 })
    )
    fc.assert(
      fc.property(fc.integer({ min: size - 3, max: 2 * size + 3 }), fc.array(piece, { maxLength: 6 }), (n, pieces) => {
        // Pieces placed around the cut points, where a surrogate pair could be split.
        let text = "a".repeat(n)
        for (const [i, p] of pieces.entries()) {
          const at = Math.min(text.length, size - 1 + (i % 3) + (i >= 3 ? size : 0))
          text = text.slice(0, at) + p + text.slice(at)
        }
        const fragments = textFragments(text)
        expect(fragments.join("")).toBe(text)
        for (const fragment of fragments) expect(fragment.length).toBeLessThanOrEqual(size)
        const encoded = Buffer.concat(fragments.map((f) => Buffer.from(f, "utf8")))
        expect(encoded.equals(Buffer.from(text, "utf8"))).toBe(true)
      }),
      { numRuns: 60 }
    )
  })
})
