import { describe, expect, it } from "@effect/vitest"
import * as fc from "fast-check"
import { isValidUtf8, Utf8Validator } from "../src/Utf8.js"

const fromHex = (text: string): Uint8Array => new Uint8Array(Buffer.from(text.replace(/\s+/g, ""), "hex"))
const concat = (...parts: ReadonlyArray<Uint8Array>): Uint8Array => new Uint8Array(Buffer.concat(parts))

/** Long enough to send the input to the native validator rather than the JS DFA. */
const PADDING = new Uint8Array(32).fill(0x61)

/**
 * Strings mixing 1- to 4-byte UTF-8 sequences. (Built by hand: fast-check's `unit: "binary"`
 * spends about a second building its tables on first use.)
 */
const codePoint = fc.oneof(
  fc.integer({ min: 0, max: 0x7f }),
  fc.integer({ min: 0x80, max: 0x7ff }),
  fc.integer({ min: 0x800, max: 0xffff }).filter((c) => c < 0xd800 || c > 0xdfff),
  fc.integer({ min: 0x10000, max: 0x10ffff })
)
const text = (maxLength: number) => fc.array(codePoint, { maxLength }).map((codes) => String.fromCodePoint(...codes))

const decoder = new TextDecoder("utf-8", { fatal: true })
const referenceValid = (bytes: Uint8Array): boolean => {
  try {
    decoder.decode(bytes)
    return true
  } catch {
    return false
  }
}

const VALID: ReadonlyArray<readonly [string, string]> = [
  ["empty", ""],
  ["ASCII", "48656c6c6f"],
  ["NUL and DEL", "007f"],
  ["2-byte U+00E9", "c3a9"],
  ["smallest 2-byte U+0080", "c280"],
  ["largest 2-byte U+07FF", "dfbf"],
  ["3-byte U+20AC", "e282ac"],
  ["smallest 3-byte U+0800", "e0a080"],
  ["last before surrogates U+D7FF", "ed9fbf"],
  ["first after surrogates U+E000", "ee8080"],
  ["U+FFFF", "efbfbf"],
  ["BOM U+FEFF", "efbbbf"],
  ["4-byte U+1D11E", "f09d849e"],
  ["smallest 4-byte U+10000", "f0908080"],
  ["largest U+10FFFF", "f48fbfbf"],
  ["mixed", "41c3a9e282acf09d849e42"]
]

const INVALID: ReadonlyArray<readonly [string, string]> = [
  ["overlong NUL C0 80", "c080"],
  ["overlong C1 BF", "c1bf"],
  ["overlong 3-byte E0 80 80", "e08080"],
  ["overlong 3-byte E0 9F BF", "e09fbf"],
  ["overlong 4-byte F0 80 80 80", "f0808080"],
  ["overlong 4-byte F0 8F BF BF", "f08fbfbf"],
  ["high surrogate ED A0 80", "eda080"],
  ["low surrogate ED BF BF", "edbfbf"],
  ["above U+10FFFF F4 90 80 80", "f4908080"],
  ["F5 lead byte", "f5808080"],
  ["FE", "fe"],
  ["FF", "ff"],
  ["lone continuation byte", "80"],
  ["continuation after ASCII", "41bf"],
  ["truncated 2-byte", "c3"],
  ["truncated 3-byte", "e282"],
  ["truncated 4-byte", "f09d84"],
  ["ASCII where a continuation is expected", "c341"],
  ["lead byte where a continuation is expected", "e2c3a9"],
  ["too many continuation bytes", "c3a9a9"]
]

describe("isValidUtf8", () => {
  for (const [name, text] of VALID) {
    it(`accepts ${name}`, () => {
      const bytes = fromHex(text)
      expect(isValidUtf8(bytes)).toBe(true)
      expect(isValidUtf8(concat(PADDING, bytes))).toBe(true)
      expect(isValidUtf8(concat(bytes, PADDING))).toBe(true)
    })
  }

  for (const [name, text] of INVALID) {
    it(`rejects ${name}`, () => {
      const bytes = fromHex(text)
      expect(isValidUtf8(bytes)).toBe(false)
      expect(isValidUtf8(concat(PADDING, bytes))).toBe(false)
      expect(isValidUtf8(concat(bytes.subarray(0, 1), PADDING, bytes.subarray(1)))).toBe(
        referenceValid(concat(bytes.subarray(0, 1), PADDING, bytes.subarray(1)))
      )
    })
  }

  it("validates subarray views without looking outside them", () => {
    const backing = fromHex("ff 41 42 c3 a9 ff")
    expect(isValidUtf8(backing.subarray(1, 5))).toBe(true)
    expect(isValidUtf8(backing.subarray(1, 4))).toBe(false)
  })

  it("agrees with TextDecoder (fatal) on random bytes", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), (bytes) => {
        expect(isValidUtf8(bytes)).toBe(referenceValid(bytes))
      }),
      { numRuns: 2000 }
    )
  })

  it("agrees with TextDecoder (fatal) on mutated UTF-8", () => {
    fc.assert(
      fc.property(
        text(40),
        fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 3 }),
        (text, mutations) => {
          const bytes = new Uint8Array(Buffer.from(text, "utf8"))
          for (const [at, value] of mutations) if (bytes.length > 0) bytes[at % bytes.length] = value
          expect(isValidUtf8(bytes)).toBe(referenceValid(bytes))
        }
      ),
      { numRuns: 500 }
    )
  })
})

describe("Utf8Validator", () => {
  const pushAll = (validator: Utf8Validator, fragments: ReadonlyArray<Uint8Array>): boolean => {
    let ok = true
    fragments.forEach((fragment, i) => {
      ok = validator.push(fragment, i === fragments.length - 1) && ok
    })
    return ok
  }

  it("accepts a message in one fragment", () => {
    const validator = new Utf8Validator()
    expect(validator.push(fromHex("41c3a9e282acf09d849e"), true)).toBe(true)
  })

  it("accepts an empty final fragment after complete data", () => {
    const validator = new Utf8Validator()
    expect(validator.push(fromHex("c3a9"), false)).toBe(true)
    expect(validator.push(new Uint8Array(0), true)).toBe(true)
  })

  it("accepts every split point of multi-byte sequences into two fragments", () => {
    for (const [name, text] of VALID) {
      for (const prefix of [new Uint8Array(0), PADDING]) {
        const bytes = concat(prefix, fromHex(text), prefix)
        for (let i = 0; i <= bytes.length; i++) {
          const validator = new Utf8Validator()
          expect([name, i, validator.push(bytes.subarray(0, i), false)]).toEqual([name, i, true])
          expect([name, i, validator.push(bytes.subarray(i), true)]).toEqual([name, i, true])
        }
      }
    }
  })

  it("accepts every pair of split points into three fragments", () => {
    const bytes = fromHex("f09d849e e282ac c3a9 41 f48fbfbf")
    for (let i = 0; i <= bytes.length; i++) {
      for (let j = i; j <= bytes.length; j++) {
        const validator = new Utf8Validator()
        expect(pushAll(validator, [bytes.subarray(0, i), bytes.subarray(i, j), bytes.subarray(j)])).toBe(true)
      }
    }
  })

  it("accepts data fed one byte at a time", () => {
    const validator = new Utf8Validator()
    const bytes = fromHex("f09d849ee282acc3a941f48fbfbf")
    for (let i = 0; i < bytes.length; i++) expect(validator.push(bytes.subarray(i, i + 1), false)).toBe(true)
    expect(validator.push(new Uint8Array(0), true)).toBe(true)
  })

  it("rejects every split point of invalid sequences", () => {
    for (const [name, text] of INVALID) {
      const bytes = fromHex(text)
      for (let i = 0; i <= bytes.length; i++) {
        const validator = new Utf8Validator()
        expect([name, i, pushAll(validator, [bytes.subarray(0, i), bytes.subarray(i)])]).toEqual([name, i, false])
      }
    }
  })

  it("rejects a message that ends inside a sequence", () => {
    const validator = new Utf8Validator()
    expect(validator.push(fromHex("41 e2 82"), false)).toBe(true)
    expect(validator.push(new Uint8Array(0), true)).toBe(false)
  })

  it("rejects a final fragment that does not complete the carried sequence", () => {
    const validator = new Utf8Validator()
    expect(validator.push(fromHex("f0"), false)).toBe(true)
    expect(validator.push(fromHex("9d 84"), true)).toBe(false)
  })

  describe("fails fast on the first fragment", () => {
    const cases: ReadonlyArray<readonly [string, string]> = [
      ["invalid byte in the middle", "41 ff 41"],
      ["overlong lead at the end", "41 c0"],
      ["surrogate prefix at the end", "41 ed a0"],
      ["above U+10FFFF prefix at the end", "41 f4 90"],
      ["overlong 3-byte prefix at the end", "41 e0 80"],
      ["F5 at the end", "41 f5"],
      ["lone continuation at the end", "41 80"]
    ]
    for (const [name, text] of cases) {
      it(`rejects ${name}`, () => {
        for (const prefix of [new Uint8Array(0), PADDING]) {
          const validator = new Utf8Validator()
          expect(validator.push(concat(prefix, fromHex(text)), false)).toBe(false)
        }
      })
    }

    it("rejects a bad continuation of a sequence carried from the previous fragment", () => {
      const validator = new Utf8Validator()
      expect(validator.push(fromHex("ed"), false)).toBe(true)
      expect(validator.push(fromHex("a0"), false)).toBe(false)
    })
  })

  it("stays invalid until reset", () => {
    const validator = new Utf8Validator()
    expect(validator.push(fromHex("ff"), false)).toBe(false)
    expect(validator.push(fromHex("41"), true)).toBe(false)
    validator.reset()
    expect(validator.push(fromHex("41"), true)).toBe(true)
  })

  it("reset forgets a partial sequence", () => {
    const validator = new Utf8Validator()
    expect(validator.push(fromHex("e2 82"), false)).toBe(true)
    validator.reset()
    expect(validator.push(fromHex("41"), true)).toBe(true)
  })

  it("starts a new message after a successful final fragment", () => {
    const validator = new Utf8Validator()
    expect(validator.push(fromHex("c3a9"), true)).toBe(true)
    expect(validator.push(fromHex("e282ac"), true)).toBe(true)
  })

  it("agrees with TextDecoder (fatal) for random data in random fragments", () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.uint8Array({ maxLength: 80 }),
          fc
            .tuple(text(60), fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 2 }))
            .map(([text, mutations]) => {
              const bytes = new Uint8Array(Buffer.from(text, "utf8"))
              for (const [at, value] of mutations) if (bytes.length > 0) bytes[at % bytes.length] = value
              return bytes
            })
        ),
        fc.array(fc.nat(), { maxLength: 5 }),
        (bytes, cuts) => {
          const points = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b)
          const fragments: Array<Uint8Array> = []
          let last = 0
          for (const p of points) {
            fragments.push(bytes.subarray(last, p))
            last = p
          }
          fragments.push(bytes.subarray(last))
          const validator = new Utf8Validator()
          const expected = referenceValid(bytes)
          expect(pushAll(validator, fragments)).toBe(expected)
          // Fail fast: once a fragment is rejected, no continuation could make the message valid,
          // so a rejection before the final fragment implies the whole message is invalid.
          if (expected) {
            const again = new Utf8Validator()
            fragments.forEach((fragment, i) => {
              expect(again.push(fragment, i === fragments.length - 1)).toBe(true)
            })
          }
        }
      ),
      { numRuns: 2000 }
    )
  })
})
