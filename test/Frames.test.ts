import { createHash } from "node:crypto"
import { describe, expect, it } from "@effect/vitest"
import * as Either from "effect/Either"
import * as fc from "fast-check"
import {
  Close,
  CloseCode,
  CTRL_OPCODES,
  checkClose,
  DATA_OPCODES,
  encodeData,
  Frame,
  isValidCloseCode,
  MAX_CLOSE_REASON_BYTES,
  Opcode,
  parseClose,
  prepareData,
  serializeClose,
  serializeControlFrameRangeInto,
  serializeFrame,
  serializeFrameToBytes
} from "../src/Frames.js"
import { FrameParser } from "../src/internal/frameParser.js"

const hex = (bytes: Uint8Array): string => Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("hex")
/** Payload for comparisons: hex when short, length and SHA-1 when long (keeps failure output readable). */
const digest = (bytes: Uint8Array): string =>
  bytes.length <= 64 ? hex(bytes) : `${bytes.length} bytes, sha1 ${createHash("sha1").update(bytes).digest("hex")}`
const fromHex = (text: string): Uint8Array => new Uint8Array(Buffer.from(text.replace(/\s+/g, ""), "hex"))
const utf8 = (text: string): Uint8Array => new TextEncoder().encode(text)

/** Comparable view of a frame: plain fields with the payload as hex. */
const show = (frame: unknown) =>
  frame instanceof Frame
    ? {
        opcode: frame.opcode,
        fin: frame.fin,
        rsv1: frame.rsv1,
        rsv2: frame.rsv2,
        rsv3: frame.rsv3,
        data: digest(frame.data)
      }
    : frame

/** Parses `bytes` completely: all frames, then checks that nothing is left over. */
const parseAll = (bytes: Uint8Array, mask: boolean): Array<unknown> => {
  const parser = new FrameParser({ mask })
  parser.push(bytes)
  const out: Array<unknown> = []
  for (let r = parser.next(); r !== undefined; r = parser.next()) {
    out.push(show(r))
    if (!(r instanceof Frame)) break
  }
  expect(parser.bufferedBytes).toBe(0)
  return out
}

const KEY = fromHex("37fa213d")
const PATTERN = Uint8Array.from({ length: 70000 }, (_, i) => (i * 7 + 3) & 0xff)
/** A fresh, recognizable payload of `length` bytes (at most 70000). */
const pattern = (length: number): Uint8Array => PATTERN.slice(0, length)

describe("Opcode and CloseCode", () => {
  it("have the RFC 6455 values", () => {
    expect(Opcode).toEqual({ Continuation: 0, Text: 1, Binary: 2, Close: 8, Ping: 9, Pong: 10 })
    expect(DATA_OPCODES).toEqual([0, 1, 2])
    expect(CTRL_OPCODES).toEqual([8, 9, 10])
    expect(CloseCode.NormalClosure).toBe(1000)
    expect(CloseCode.NoStatusRcvd).toBe(1005)
    expect(CloseCode.MessageTooBig).toBe(1009)
    expect(CloseCode.TlsHandshake).toBe(1015)
  })
})

describe("RFC 6455 §5.7 examples", () => {
  const examples: ReadonlyArray<{
    readonly name: string
    readonly frames: ReadonlyArray<Frame>
    readonly mask: boolean
    readonly wire: string
  }> = [
    {
      name: "single-frame unmasked text",
      frames: [new Frame(Opcode.Text, utf8("Hello"))],
      mask: false,
      wire: "81 05 48 65 6c 6c 6f"
    },
    {
      name: "single-frame masked text",
      frames: [new Frame(Opcode.Text, utf8("Hello"))],
      mask: true,
      wire: "81 85 37 fa 21 3d 7f 9f 4d 51 58"
    },
    {
      name: "fragmented unmasked text",
      frames: [new Frame(Opcode.Text, utf8("Hel"), false), new Frame(Opcode.Continuation, utf8("lo"))],
      mask: false,
      wire: "01 03 48 65 6c 80 02 6c 6f"
    },
    {
      name: "unmasked ping",
      frames: [new Frame(Opcode.Ping, utf8("Hello"))],
      mask: false,
      wire: "89 05 48 65 6c 6c 6f"
    },
    {
      name: "masked pong",
      frames: [new Frame(Opcode.Pong, utf8("Hello"))],
      mask: true,
      wire: "8a 85 37 fa 21 3d 7f 9f 4d 51 58"
    },
    {
      name: "256-byte unmasked binary (16-bit length)",
      frames: [new Frame(Opcode.Binary, pattern(256))],
      mask: false,
      wire: `82 7e 01 00 ${hex(pattern(256))}`
    },
    {
      name: "64 KiB unmasked binary (64-bit length)",
      frames: [new Frame(Opcode.Binary, pattern(65536))],
      mask: false,
      wire: `82 7f 00 00 00 00 00 01 00 00 ${hex(pattern(65536))}`
    }
  ]

  for (const { name, frames, mask, wire } of examples) {
    it(`serializes ${name}`, () => {
      const bytes = Buffer.concat(frames.map((frame) => serializeFrameToBytes(frame, mask, KEY)))
      expect(hex(bytes)).toBe(wire.replace(/\s+/g, ""))
    })

    it(`parses ${name}`, () => {
      expect(parseAll(fromHex(wire), mask)).toEqual(frames.map(show))
    })
  }
})

describe("serializeFrame", () => {
  it("returns the header and the caller's payload itself when unmasked and over 8 KiB", () => {
    const data = new Uint8Array(8193).fill(7)
    const chunks = serializeFrame(new Frame(Opcode.Binary, data), false)
    expect(chunks.length).toBe(2)
    expect(hex(chunks[0]!)).toBe("827e2001")
    expect(chunks[1]).toBe(data)
  })

  it("copies an unmasked payload up to 8 KiB behind its header, leaving the caller's payload as it is", () => {
    const data = utf8("Hello")
    const chunks = serializeFrame(new Frame(Opcode.Binary, data), false)
    expect(chunks.map(hex)).toEqual(["820548656c6c6f"])
    expect(chunks[0]).not.toBe(data)
    const large = new Uint8Array(8192).fill(9)
    const [frame] = serializeFrame(new Frame(Opcode.Binary, large), false)
    expect(frame!.byteLength).toBe(8196)
    expect(hex(frame!.subarray(0, 4))).toBe("827e2000")
    expect(Buffer.from(frame!.subarray(4)).equals(large)).toBe(true)
  })

  it("returns the header alone for an empty unmasked payload", () => {
    const chunks = serializeFrame(new Frame(Opcode.Close, new Uint8Array(0)), false)
    expect(chunks.map(hex)).toEqual(["8800"])
  })

  it("returns one buffer when masked and never modifies the caller's payload", () => {
    for (const length of [0, 5, 125, 126, 1000, 65536, 70000]) {
      const data = pattern(length)
      const chunks = serializeFrame(new Frame(Opcode.Binary, data), true, KEY)
      expect(chunks.length).toBe(1)
      expect(hex(data)).toBe(hex(pattern(length)))
      expect(parseAll(chunks[0]!, true)).toEqual([show(new Frame(Opcode.Binary, pattern(length)))])
    }
  })

  it("sets the FIN and RSV bits", () => {
    const bytes = (fin: boolean, rsv1: boolean, rsv2: boolean, rsv3: boolean) =>
      hex(serializeFrameToBytes(new Frame(Opcode.Binary, new Uint8Array(0), fin, rsv1, rsv2, rsv3), false))
    expect(bytes(true, false, false, false)).toBe("8200")
    expect(bytes(false, false, false, false)).toBe("0200")
    expect(bytes(true, true, false, false)).toBe("c200")
    expect(bytes(true, false, true, false)).toBe("a200")
    expect(bytes(true, false, false, true)).toBe("9200")
    expect(bytes(false, true, true, true)).toBe("7200")
  })

  it("uses the shortest length encoding at each boundary", () => {
    const header = (length: number, mask: boolean) =>
      hex(serializeFrame(new Frame(Opcode.Binary, new Uint8Array(length)), mask, fromHex("00000000"))[0]!).slice(
        0,
        mask ? 36 : length < 126 ? 4 : length < 65536 ? 8 : 20
      )
    expect(header(125, false)).toBe("827d")
    expect(header(126, false)).toBe("827e007e")
    expect(header(65535, false)).toBe("827effff")
    expect(header(65536, false)).toBe("827f0000000000010000")
    expect(header(125, true).slice(0, 12)).toBe("82fd00000000")
    expect(header(126, true).slice(0, 16)).toBe("82fe007e00000000")
    expect(header(65536, true).slice(0, 28)).toBe("82ff000000000001000000000000")
  })

  it("writes 64-bit lengths above 4 GiB without allocating the payload", () => {
    // A fake payload: serializeFrame only reads `length` for the header of an unmasked frame.
    const huge = { length: 2 ** 32 + 5 } as unknown as Uint8Array
    expect(hex(serializeFrame(new Frame(Opcode.Binary, huge), false)[0]!)).toBe("827f0000000100000005")
  })

  it("draws a fresh random mask key for each frame", () => {
    const data = utf8("Hello")
    const keys = new Set<string>()
    // More than one pool of random bytes (8 KiB = 2048 keys), to cover the refill.
    const count = 2500
    const parser = new FrameParser({ mask: true })
    for (let i = 0; i < count; i++) {
      const [bytes] = serializeFrame(new Frame(Opcode.Text, data), true)
      keys.add(hex(bytes!.subarray(2, 6)))
      parser.push(bytes!)
      const frame = parser.next()
      if (!(frame instanceof Frame) || hex(frame.data) !== "48656c6c6f") expect.fail(`frame ${i}: ${String(frame)}`)
    }
    // 2500 random 32-bit keys collide with negligible probability; allow a few.
    expect(keys.size).toBeGreaterThan(count - 5)
  })

  it("serializes then parses to the same frame", () => {
    const payload = fc.oneof(
      { weight: 4, arbitrary: fc.uint8Array({ maxLength: 300 }) },
      { weight: 1, arbitrary: fc.integer({ min: 0, max: 70000 }).map(pattern) }
    )
    const frame = fc
      .record({
        opcode: fc.constantFrom(...DATA_OPCODES, ...CTRL_OPCODES),
        data: payload,
        fin: fc.boolean(),
        rsv1: fc.boolean(),
        rsv2: fc.boolean(),
        rsv3: fc.boolean()
      })
      .map(({ data, fin, opcode, rsv1, rsv2, rsv3 }) =>
        opcode >= Opcode.Close
          ? new Frame(opcode, data.subarray(0, 125), true, rsv1, rsv2, rsv3)
          : new Frame(opcode, data, fin, rsv1, rsv2, rsv3)
      )
    fc.assert(
      fc.property(
        frame,
        fc.boolean(),
        fc.option(fc.uint8Array({ minLength: 4, maxLength: 4 }), { nil: undefined }),
        (frame, mask, key) => {
          const before = hex(frame.data)
          const bytes = serializeFrameToBytes(frame, mask, key)
          expect(hex(frame.data)).toBe(before)
          expect(parseAll(bytes, mask)).toEqual([show(frame)])
        }
      ),
      { numRuns: 300 }
    )
  })
})

describe("serializeControlFrameRangeInto", () => {
  it("writes a pong of a range of a buffer at an offset, byte for byte, unmasking it on the way", () => {
    const out = new Uint8Array(12).fill(0xff)
    const end = serializeControlFrameRangeInto(Opcode.Pong, Buffer.from("xxhelloyy"), 2, 7, 0, false, out, 3)
    expect(end).toBe(10)
    expect(Buffer.from(out).toString("hex")).toBe("ffffff8a0568656c6c6fffff")
    // "hello" masked with 01020304 (RFC 6455 §5.3), written unmasked.
    const masked = Buffer.from("68656c6c6f", "hex").map((b, i) => b ^ ((i % 4) + 1))
    const unmasked = new Uint8Array(7)
    serializeControlFrameRangeInto(Opcode.Pong, masked, 0, 5, 0x01020304, false, unmasked, 0)
    expect(Buffer.from(unmasked).toString("hex")).toBe("8a0568656c6c6f")
  })

  it("unmasks and masks with a fresh key, and parses back to the range's bytes (property)", () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ maxLength: 140 }),
        fc.nat(),
        fc.nat(),
        fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 0xffffffff })),
        fc.boolean(),
        (payload, a, b, sourceKey, mask) => {
          const start = payload.length === 0 ? 0 : a % (payload.length + 1)
          const end = Math.min(payload.length, start + (b % 126))
          // The range as the peer sent it: masked with `sourceKey` from `start` on.
          const source = Uint8Array.from(payload, (byte, i) =>
            i < start ? byte : byte ^ ((sourceKey >>> (24 - ((i - start) % 4) * 8)) & 0xff)
          )
          const out = new Uint8Array(140)
          const written = serializeControlFrameRangeInto(Opcode.Ping, source, start, end, sourceKey, mask, out, 1)
          expect(written).toBe(1 + (mask ? 6 : 2) + end - start)
          const parser = new FrameParser({ mask })
          parser.push(out.subarray(1, written))
          const frame = parser.next() as Frame
          expect(frame.opcode).toBe(Opcode.Ping)
          expect(Buffer.from(frame.data).equals(Buffer.from(payload.subarray(start, end)))).toBe(true)
        }
      )
    )
  })
})

describe("Frame.check", () => {
  const tagOf = (frame: Frame) =>
    Either.match(frame.check(), { onLeft: (e) => [e._tag, e.detail], onRight: (f) => (f === frame ? "ok" : "other") })

  it("accepts data frames, fragmented or not, and short final control frames", () => {
    expect(tagOf(new Frame(Opcode.Text, utf8("a")))).toBe("ok")
    expect(tagOf(new Frame(Opcode.Binary, pattern(70000), false))).toBe("ok")
    expect(tagOf(new Frame(Opcode.Continuation, pattern(3), false))).toBe("ok")
    expect(tagOf(new Frame(Opcode.Ping, pattern(125)))).toBe("ok")
    expect(tagOf(new Frame(Opcode.Close, new Uint8Array(0)))).toBe("ok")
  })

  it("rejects each reserved bit", () => {
    const error = ["ProtocolError", "reserved bits must be 0"]
    expect(tagOf(new Frame(Opcode.Text, utf8("a"), true, true))).toEqual(error)
    expect(tagOf(new Frame(Opcode.Text, utf8("a"), true, false, true))).toEqual(error)
    expect(tagOf(new Frame(Opcode.Text, utf8("a"), true, false, false, true))).toEqual(error)
  })

  it("rejects a control frame over 125 bytes", () => {
    for (const opcode of CTRL_OPCODES) {
      expect(tagOf(new Frame(opcode, pattern(126)))).toEqual(["ProtocolError", "control frame too long"])
    }
  })

  it("rejects a fragmented control frame", () => {
    for (const opcode of CTRL_OPCODES) {
      expect(tagOf(new Frame(opcode, pattern(1), false))).toEqual(["ProtocolError", "fragmented control frame"])
    }
  })
})

describe("close codes", () => {
  it("isValidCloseCode accepts exactly the codes allowed on the wire", () => {
    const valid = [1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000, 3999, 4000, 4999]
    const invalid = [0, 999, 1004, 1005, 1006, 1015, 1016, 1999, 2000, 2999, 5000, 65535, -1000, 1000.5, Number.NaN]
    for (const code of valid) expect([code, isValidCloseCode(code)]).toEqual([code, true])
    for (const code of invalid) expect([code, isValidCloseCode(code)]).toEqual([code, false])
  })
})

describe("parseClose", () => {
  const parse = (text: string) =>
    Either.match(parseClose(fromHex(text)), {
      onLeft: (e) => [e._tag, e.detail],
      onRight: (close) => ({ code: close.code, reason: close.reason })
    })

  it("reads an empty payload as 1005 (no status code)", () => {
    expect(parse("")).toEqual({ code: 1005, reason: "" })
  })

  it("reads a code without a reason", () => {
    expect(parse("03e8")).toEqual({ code: 1000, reason: "" })
    expect(parse("0fa0")).toEqual({ code: 4000, reason: "" })
  })

  it("reads a code and a UTF-8 reason", () => {
    expect(parse("03e9 627965")).toEqual({ code: 1001, reason: "bye" })
    expect(parse("03e8 c3a9 f09f9880")).toEqual({ code: 1000, reason: "é😀" })
  })

  it("keeps a leading U+FEFF in the reason", () => {
    expect(parse("03e8 efbbbf 41")).toEqual({ code: 1000, reason: "\ufeffA" })
  })

  it("rejects a 1-byte payload", () => {
    expect(parse("03")).toEqual(["ProtocolError", "close frame too short"])
  })

  it("rejects codes not allowed on the wire", () => {
    for (const code of [0, 999, 1004, 1005, 1006, 1015, 2999, 5000, 65535]) {
      const text = code.toString(16).padStart(4, "0")
      expect(parse(text)).toEqual(["ProtocolError", `invalid status code ${code}`])
    }
  })

  it("rejects a reason that is not UTF-8", () => {
    expect(parse("03e8 ff")).toEqual(["InvalidUtf8", "invalid UTF-8 in close reason"])
    expect(parse("03e8 eda080")).toEqual(["InvalidUtf8", "invalid UTF-8 in close reason"])
    expect(parse(`03e8 ${"41".repeat(40)} c3`)).toEqual(["InvalidUtf8", "invalid UTF-8 in close reason"])
  })
})

describe("serializeClose", () => {
  it("writes the code big-endian followed by the UTF-8 reason", () => {
    expect(hex(serializeClose(new Close(1000, "")))).toBe("03e8")
    expect(hex(serializeClose(new Close(1001, "bye")))).toBe("03e9627965")
    expect(hex(serializeClose(new Close(4999, "é")))).toBe("1387c3a9")
  })

  it("writes 1005 (no status code) as an empty payload", () => {
    expect(serializeClose(new Close(CloseCode.NoStatusRcvd, "")).length).toBe(0)
  })

  it("round-trips through parseClose", () => {
    fc.assert(
      fc.property(
        fc.constantFrom(1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000, 4321, 4999),
        fc.string({ unit: "grapheme", maxLength: 30 }),
        (code, reason) => {
          const parsed = parseClose(serializeClose(new Close(code, reason)))
          expect(Either.getOrThrow(parsed)).toEqual(new Close(code, reason))
        }
      ),
      { numRuns: 200 }
    )
  })
})

describe("checkClose", () => {
  const check = (code: number, reason: string) =>
    Either.match(checkClose(code, reason), {
      onLeft: (e) => [e._tag, e.detail],
      onRight: (close) => ({ code: close.code, reason: close.reason })
    })

  it("accepts a valid code and a short reason", () => {
    expect(check(1000, "")).toEqual({ code: 1000, reason: "" })
    expect(check(3000, "bye")).toEqual({ code: 3000, reason: "bye" })
  })

  it("rejects codes that may not be sent", () => {
    for (const code of [999, 1004, 1005, 1006, 1015, 5000, 1000.5]) {
      expect(check(code, "")).toEqual(["ProtocolError", `invalid status code ${code}`])
    }
  })

  it("accepts a reason of exactly 123 UTF-8 bytes and rejects 124", () => {
    expect(MAX_CLOSE_REASON_BYTES).toBe(123)
    expect(check(1000, "a".repeat(123))).toEqual({ code: 1000, reason: "a".repeat(123) })
    expect(check(1000, "a".repeat(124))).toEqual(["ProtocolError", "close reason too long"])
  })

  it("counts the reason in UTF-8 bytes, not UTF-16 code units", () => {
    // "é" is 2 bytes, "😀" is 4 bytes (2 code units), "€" is 3 bytes.
    expect(check(1000, `${"é".repeat(61)}a`)).toEqual({ code: 1000, reason: `${"é".repeat(61)}a` })
    expect(check(1000, "é".repeat(62))).toEqual(["ProtocolError", "close reason too long"])
    expect(check(1000, `${"😀".repeat(30)}abc`)).toEqual({ code: 1000, reason: `${"😀".repeat(30)}abc` })
    expect(check(1000, "😀".repeat(31))).toEqual(["ProtocolError", "close reason too long"])
    expect(check(1000, "€".repeat(41))).toEqual({ code: 1000, reason: "€".repeat(41) })
    expect(check(1000, `${"€".repeat(41)}a`)).toEqual(["ProtocolError", "close reason too long"])
  })
})

describe("prepareData and encodeData", () => {
  it("turns a string into a UTF-8 Text payload", () => {
    const [opcode, data] = prepareData("café")
    expect(opcode).toBe(Opcode.Text)
    expect(hex(data)).toBe("636166c3a9")
  })

  it("passes bytes through as a Binary payload without copying", () => {
    const bytes = pattern(10)
    const [opcode, data] = prepareData(bytes)
    expect(opcode).toBe(Opcode.Binary)
    expect(data).toBe(bytes)
  })

  it("encodes strings in UTF-8 and passes bytes through", () => {
    expect(hex(encodeData("€"))).toBe("e282ac")
    expect(hex(encodeData(""))).toBe("")
    const bytes = pattern(3)
    expect(encodeData(bytes)).toBe(bytes)
  })
})
