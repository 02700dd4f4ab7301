import { describe, expect, it } from "@effect/vitest"
import * as fc from "fast-check"
import { vi } from "vitest"
import { mask, unmask } from "../../src/internal/mask.js"

const hex = (bytes: Uint8Array): string => Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("hex")
const fromHex = (text: string): Uint8Array => new Uint8Array(Buffer.from(text.replace(/\s+/g, ""), "hex"))

/** The definition of masking, RFC 6455 §5.3: byte i is XORed with key[i mod 4]. */
const reference = (source: Uint8Array, key: Uint8Array): Uint8Array => source.map((byte, i) => byte ^ key[i & 3]!)

const KEY = fromHex("37fa213d")

/** `length` pseudo-random bytes at `offset` inside a larger ArrayBuffer (to test alignment). */
const bytesAt = (length: number, offset: number, seed = length): Uint8Array => {
  const backing = new Uint8Array(length + offset + 8)
  let x = seed * 2654435761 + 1
  for (let i = 0; i < backing.length; i++) {
    x = (x * 1103515245 + 12345) >>> 0
    backing[i] = x >>> 24
  }
  return backing.subarray(offset, offset + length)
}

// Lengths around every threshold of the implementation (byte loop < 48 <= Int32 words < 512 <= 64-bit words).
const LENGTHS = [0, 1, 2, 3, 4, 5, 7, 8, 9, 31, 47, 48, 49, 55, 56, 63, 100, 511, 512, 513, 519, 520, 1000, 4099, 65536]

describe("mask", () => {
  it("masks the RFC 6455 §5.7 example", () => {
    const output = new Uint8Array(5)
    mask(new TextEncoder().encode("Hello"), KEY, output, 0, 5)
    expect(hex(output)).toBe("7f9f4d5158")
  })

  it("writes at the offset, leaves the source and the rest of the output untouched", () => {
    for (const length of LENGTHS) {
      for (let sourceOffset = 0; sourceOffset < 8; sourceOffset++) {
        for (const outputOffset of [0, 1, 2, 3, 5, 6, 14]) {
          const source = bytesAt(length, sourceOffset)
          const before = hex(source)
          const output = new Uint8Array(length + outputOffset + 3).fill(0xaa)
          mask(source, KEY, output, outputOffset, length)
          expect(hex(source)).toBe(before)
          expect(hex(output.subarray(outputOffset, outputOffset + length))).toBe(hex(reference(source, KEY)))
          expect(output.subarray(0, outputOffset).every((b) => b === 0xaa)).toBe(true)
          expect(output.subarray(outputOffset + length).every((b) => b === 0xaa)).toBe(true)
        }
      }
    }
  })

  it("masks only the first length bytes of a longer source", () => {
    const source = bytesAt(600, 1)
    const output = new Uint8Array(600)
    mask(source, KEY, output, 0, 520)
    expect(hex(output.subarray(0, 520))).toBe(hex(reference(source.subarray(0, 520), KEY)))
    expect(output.subarray(520).every((b) => b === 0)).toBe(true)
  })

  it("copies with an all-zero key", () => {
    for (const length of LENGTHS) {
      const source = bytesAt(length, 3)
      const output = new Uint8Array(length + 2)
      mask(source, new Uint8Array(4), output, 2, length)
      expect(hex(output.subarray(2))).toBe(hex(source))
    }
  })

  it("masks in place when source and output are the same buffer", () => {
    for (const length of LENGTHS) {
      const buffer = bytesAt(length, 2)
      const expected = hex(reference(buffer, KEY))
      mask(buffer, KEY, buffer, 0, length)
      expect(hex(buffer)).toBe(expected)
    }
  })
})

describe("unmask", () => {
  it("unmasks the RFC 6455 §5.7 example in place", () => {
    const buffer = fromHex("7f9f4d5158")
    unmask(buffer, KEY)
    expect(new TextDecoder().decode(buffer)).toBe("Hello")
  })

  it("matches the definition at every length and alignment", () => {
    for (const length of LENGTHS) {
      for (let offset = 0; offset < 8; offset++) {
        const buffer = bytesAt(length, offset)
        const expected = hex(reference(buffer, KEY))
        unmask(buffer, KEY)
        expect(hex(buffer)).toBe(expected)
      }
    }
  })

  it("does not touch bytes outside the view", () => {
    const backing = new Uint8Array(1040).fill(0x55)
    unmask(backing.subarray(3, 1030), KEY)
    expect(hex(backing.subarray(0, 3))).toBe("555555")
    expect(backing.subarray(1030).every((b) => b === 0x55)).toBe(true)
  })

  it("is a no-op with an all-zero key", () => {
    const buffer = bytesAt(1000, 1)
    const before = hex(buffer)
    unmask(buffer, new Uint8Array(4))
    expect(hex(buffer)).toBe(before)
  })

  it("is the inverse of mask for random data, keys and offsets", () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ maxLength: 2000 }),
        fc.uint8Array({ minLength: 4, maxLength: 4 }),
        fc.integer({ min: 0, max: 15 }),
        (data, key, offset) => {
          const output = new Uint8Array(offset + data.length)
          mask(data, key, output, offset, data.length)
          const masked = output.subarray(offset)
          expect(hex(masked)).toBe(hex(reference(data, key)))
          unmask(masked, key)
          expect(hex(masked)).toBe(hex(data))
        }
      ),
      { numRuns: 300 }
    )
  })
})

describe("native helper", () => {
  it("bufferutil (when installed) and the JS path agree on every length and alignment", async () => {
    const withNative = await import("../../src/internal/mask.js")
    vi.resetModules()
    vi.stubEnv("EFFECT_WEBSOCKETS_NO_NATIVE", "1")
    const jsOnly = await import("../../src/internal/mask.js")
    vi.unstubAllEnvs()
    expect(jsOnly.usesNativeMask).toBe(false)
    // In CI bufferutil is installed (optional dependency); say so if it is not, rather than pass silently.
    if (!withNative.usesNativeMask) console.warn("bufferutil is not installed: only the JS path was tested")
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 0, maxLength: 3000 }),
        fc.uint8Array({ minLength: 4, maxLength: 4 }),
        fc.nat(7),
        (payload, key, shift) => {
          const a = new Uint8Array(payload.length + shift)
          const b = new Uint8Array(payload.length + shift)
          a.set(payload, shift)
          b.set(payload, shift)
          withNative.unmask(a.subarray(shift), key)
          jsOnly.unmask(b.subarray(shift), key)
          expect(a).toEqual(b)
          const outA = new Uint8Array(payload.length + 8)
          const outB = new Uint8Array(payload.length + 8)
          withNative.mask(payload, key, outA, shift, payload.length)
          jsOnly.mask(payload, key, outB, shift, payload.length)
          expect(outA).toEqual(outB)
        }
      ),
      { numRuns: 300 }
    )
  })
})
