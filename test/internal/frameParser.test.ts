import { constants } from "node:buffer"
import { createHash } from "node:crypto"
import { describe, expect, it } from "@effect/vitest"
import * as fc from "fast-check"
import { CTRL_OPCODES, DATA_OPCODES, Frame, Opcode, serializeFrameToBytes } from "../../src/Frames.js"
import { FrameParser } from "../../src/internal/frameParser.js"

const hex = (bytes: Uint8Array): string => Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("hex")
/** Payload for comparisons: hex when short, length and SHA-1 when long (keeps failure output readable). */
const digest = (bytes: Uint8Array): string =>
  bytes.length <= 64 ? hex(bytes) : `${bytes.length} bytes, sha1 ${createHash("sha1").update(bytes).digest("hex")}`
const fromHex = (text: string): Uint8Array => new Uint8Array(Buffer.from(text.replace(/\s+/g, ""), "hex"))
const PATTERN = Uint8Array.from({ length: 70000 }, (_, i) => (i * 7 + 3) & 0xff)
/** A fresh, recognizable payload of `length` bytes (at most 70000). */
const pattern = (length: number): Uint8Array => PATTERN.slice(0, length)

/** Comparable view of a parser result: plain fields with the payload as hex, errors as tag and fields. */
const show = (result: unknown) => {
  if (result instanceof Frame) {
    return {
      opcode: result.opcode,
      fin: result.fin,
      rsv1: result.rsv1,
      rsv2: result.rsv2,
      rsv3: result.rsv3,
      data: digest(result.data)
    }
  }
  if (result === undefined) return undefined
  const error = result as { _tag: string; detail?: string; size?: number; maxSize?: number }
  return error._tag === "PayloadTooBig"
    ? { _tag: error._tag, size: error.size, maxSize: error.maxSize }
    : { _tag: error._tag, detail: error.detail }
}

/** Feeds `chunks` one by one, draining the parser after each; stops at the first error. */
const feed = (parser: FrameParser, chunks: ReadonlyArray<Uint8Array>): Array<unknown> => {
  const out: Array<unknown> = []
  for (const chunk of chunks) {
    parser.push(chunk)
    for (;;) {
      const result = parser.next()
      if (result === undefined) break
      out.push(show(result))
      if (!(result instanceof Frame)) return out
    }
  }
  return out
}

const parse = (wire: string, options: { mask: boolean; maxSize?: number | null }): Array<unknown> => {
  const parser = new FrameParser({ mask: options.mask })
  if (options.maxSize !== undefined) parser.maxSize = options.maxSize
  return feed(parser, [fromHex(wire)])
}

/** Splits `bytes` at the given cut points (any numbers; reduced modulo the length), copying each chunk. */
const split = (bytes: Uint8Array, cuts: ReadonlyArray<number>): Array<Uint8Array> => {
  const points = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b)
  const chunks: Array<Uint8Array> = []
  let last = 0
  for (const p of points) {
    chunks.push(bytes.slice(last, p))
    last = p
  }
  chunks.push(bytes.slice(last))
  return chunks
}

const KEY = fromHex("37fa213d")
const protocolError = (detail: string) => ({ _tag: "ProtocolError", detail })

describe("FrameParser", () => {
  describe("header checks", () => {
    for (const opcode of [3, 4, 5, 6, 7, 0xb, 0xc, 0xd, 0xe, 0xf]) {
      it(`client receives reserved opcode 0x${opcode.toString(16)}`, () => {
        expect(parse(`8${opcode.toString(16)} 00`, { mask: false })).toEqual([protocolError("invalid opcode")])
      })
    }

    it("server receives an unmasked frame", () => {
      expect(parse("81 05 48 65 6c 6c 6f", { mask: true })).toEqual([protocolError("incorrect masking")])
    })

    it("client receives a masked frame", () => {
      expect(parse("81 85 37 fa 21 3d 7f 9f 4d 51 58", { mask: false })).toEqual([protocolError("incorrect masking")])
    })

    for (const opcode of CTRL_OPCODES) {
      it(`client receives fragmented control frame 0x${opcode.toString(16)}`, () => {
        expect(parse(`0${opcode.toString(16)} 00`, { mask: false })).toEqual([
          protocolError("fragmented control frame")
        ])
      })

      it(`server receives control frame 0x${opcode.toString(16)} over 125 bytes, before its payload`, () => {
        expect(parse(`8${opcode.toString(16)} fe`, { mask: true })).toEqual([protocolError("control frame too long")])
        expect(parse(`8${opcode.toString(16)} ff`, { mask: true })).toEqual([protocolError("control frame too long")])
      })
    }

    it("accepts a control frame of exactly 125 bytes", () => {
      expect(parse(`89 7d ${hex(pattern(125))}`, { mask: false })).toEqual([
        { opcode: Opcode.Ping, fin: true, rsv1: false, rsv2: false, rsv3: false, data: digest(pattern(125)) }
      ])
    })

    it("client receives a 64-bit length with the most significant bit set", () => {
      expect(parse("82 7f 80 00 00 00 00 00 00 01", { mask: false })).toEqual([protocolError("invalid payload length")])
    })

    it("does not reject reserved bits (extensions may use them)", () => {
      expect(parse("f2 01 41", { mask: false })).toEqual([
        { opcode: Opcode.Binary, fin: true, rsv1: true, rsv2: true, rsv3: true, data: "41" }
      ])
    })

    it("accepts a non-minimal length encoding, as Python and ws do", () => {
      expect(parse("82 7e 00 01 41", { mask: false })).toEqual([
        { opcode: Opcode.Binary, fin: true, rsv1: false, rsv2: false, rsv3: false, data: "41" }
      ])
    })
  })

  describe("size limit", () => {
    it("client receives a 7-bit length over the limit, before its payload", () => {
      expect(parse("82 05", { mask: false, maxSize: 4 })).toEqual([{ _tag: "PayloadTooBig", size: 5, maxSize: 4 }])
    })

    it("server receives a 16-bit length over the limit, before its mask key and payload", () => {
      expect(parse("82 fe 01 00", { mask: true, maxSize: 255 })).toEqual([
        { _tag: "PayloadTooBig", size: 256, maxSize: 255 }
      ])
    })

    it("client receives a 64-bit length over the limit, before its payload", () => {
      expect(parse("82 7f 00 00 00 01 00 00 00 00", { mask: false, maxSize: 1 << 20 })).toEqual([
        { _tag: "PayloadTooBig", size: 2 ** 32, maxSize: 1 << 20 }
      ])
    })

    it("accepts a payload of exactly the limit", () => {
      expect(parse("82 04 01 02 03 04", { mask: false, maxSize: 4 })).toEqual([
        { opcode: Opcode.Binary, fin: true, rsv1: false, rsv2: false, rsv3: false, data: "01020304" }
      ])
    })

    it("accepts an empty payload with a zero limit", () => {
      expect(parse("81 00", { mask: false, maxSize: 0 })).toEqual([
        { opcode: Opcode.Text, fin: true, rsv1: false, rsv2: false, rsv3: false, data: "" }
      ])
    })

    it("refuses a length above 2^53 - 1 even without a limit", () => {
      expect(parse("82 7f 00 20 00 00 00 00 00 00", { mask: false })).toEqual([
        { _tag: "PayloadTooBig", size: 2 ** 53, maxSize: constants.MAX_LENGTH }
      ])
    })

    it("refuses a length above the largest Buffer even without a limit", () => {
      const size = constants.MAX_LENGTH + 1
      const wire = `82 7f ${size.toString(16).padStart(16, "0")}`
      expect(parse(wire, { mask: false })).toEqual([{ _tag: "PayloadTooBig", size, maxSize: constants.MAX_LENGTH }])
    })

    it("applies a new limit to the next frame", () => {
      const parser = new FrameParser({ mask: false })
      parser.maxSize = 3
      parser.push(fromHex("82 03 01 02 03 82 03 04 05 06"))
      expect(show(parser.next())).toMatchObject({ data: "010203" })
      parser.maxSize = 2
      expect(show(parser.next())).toEqual({ _tag: "PayloadTooBig", size: 3, maxSize: 2 })
    })
  })

  describe("after an error", () => {
    it("returns the same error, drops buffered and further bytes", () => {
      const parser = new FrameParser({ mask: true })
      parser.push(fromHex("81 05 48 65 6c 6c 6f 81 05"))
      const error = parser.next()
      expect(show(error)).toEqual(protocolError("incorrect masking"))
      expect(parser.bufferedBytes).toBe(0)
      parser.push(fromHex("81 85 37 fa 21 3d 7f 9f 4d 51 58"))
      expect(parser.bufferedBytes).toBe(0)
      expect(parser.next()).toBe(error)
      expect(parser.next()).toBe(error)
    })
  })

  describe("buffering", () => {
    it("returns undefined until a frame is complete and counts buffered bytes", () => {
      const parser = new FrameParser({ mask: true })
      const wire = fromHex("81 85 37 fa 21 3d 7f 9f 4d 51 58")
      for (let i = 0; i < wire.length - 1; i++) {
        parser.push(wire.subarray(i, i + 1))
        expect(parser.next()).toBeUndefined()
      }
      parser.push(wire.subarray(wire.length - 1))
      expect(show(parser.next())).toMatchObject({ opcode: Opcode.Text, data: hex(new TextEncoder().encode("Hello")) })
      expect(parser.bufferedBytes).toBe(0)
      expect(parser.next()).toBeUndefined()
    })

    it("returns several frames from one chunk in order and keeps the rest", () => {
      const parser = new FrameParser({ mask: false })
      parser.push(fromHex("89 00 81 01 41 82 02 01 02 81"))
      expect(parser.bufferedBytes).toBe(10)
      expect(show(parser.next())).toMatchObject({ opcode: Opcode.Ping, data: "" })
      expect(show(parser.next())).toMatchObject({ opcode: Opcode.Text, data: "41" })
      expect(show(parser.next())).toMatchObject({ opcode: Opcode.Binary, data: "0102" })
      expect(parser.next()).toBeUndefined()
      expect(parser.bufferedBytes).toBe(1)
      parser.push(fromHex("00"))
      expect(show(parser.next())).toMatchObject({ opcode: Opcode.Text, data: "" })
    })

    it("ignores empty chunks", () => {
      const parser = new FrameParser({ mask: false })
      expect(feed(parser, [new Uint8Array(0), fromHex("81"), new Uint8Array(0), fromHex("01 41")])).toEqual([
        { opcode: Opcode.Text, fin: true, rsv1: false, rsv2: false, rsv3: false, data: "41" }
      ])
    })

    it("returns a view of the chunk when one chunk holds an unmasked payload", () => {
      const parser = new FrameParser({ mask: false })
      const chunk = fromHex("82 03 01 02 03 82 01 04")
      parser.push(chunk)
      const first = parser.next() as Frame
      expect(first.data.buffer).toBe(chunk.buffer)
      expect(first.data.byteOffset).toBe(chunk.byteOffset + 2)
      const second = parser.next() as Frame
      expect(second.data.buffer).toBe(chunk.buffer)
      expect(second.data.byteOffset).toBe(chunk.byteOffset + 7)
    })

    it("unmasks in place when one chunk holds a masked payload", () => {
      const parser = new FrameParser({ mask: true })
      const chunk = fromHex("81 85 37 fa 21 3d 7f 9f 4d 51 58")
      parser.push(chunk)
      const frame = parser.next() as Frame
      expect(frame.data.buffer).toBe(chunk.buffer)
      expect(frame.data.byteOffset).toBe(chunk.byteOffset + 6)
      expect(hex(chunk.subarray(6))).toBe("48656c6c6f")
    })

    it("returns the whole chunk when it is exactly the payload", () => {
      const parser = new FrameParser({ mask: false })
      const payload = pattern(300)
      parser.push(fromHex("82 7e 01 2c"))
      parser.push(payload)
      expect((parser.next() as Frame).data).toBe(payload)
    })

    it("copies a payload that spans chunks, without touching bytes of the next frame", () => {
      const parser = new FrameParser({ mask: true })
      const wire = serializeFrameToBytes(new Frame(Opcode.Binary, pattern(1000)), true, KEY)
      const next = serializeFrameToBytes(new Frame(Opcode.Text, pattern(3)), true, KEY)
      const tail = Buffer.concat([wire.subarray(500), next])
      parser.push(wire.subarray(0, 500))
      parser.push(tail)
      const frame = parser.next() as Frame
      expect(digest(frame.data)).toBe(digest(pattern(1000)))
      // A copy: it shares no bytes with the chunks (which may live in the same Buffer pool).
      const overlaps = (a: Uint8Array, b: Uint8Array) =>
        a.buffer === b.buffer && a.byteOffset < b.byteOffset + b.length && b.byteOffset < a.byteOffset + a.length
      expect(overlaps(frame.data, tail)).toBe(false)
      expect(overlaps(frame.data, wire)).toBe(false)
      expect(show(parser.next())).toMatchObject({ opcode: Opcode.Text, data: hex(pattern(3)) })
    })

    it("handles a payload fed as many tiny chunks", () => {
      const wire = serializeFrameToBytes(new Frame(Opcode.Binary, pattern(5000)), true, KEY)
      const parser = new FrameParser({ mask: true })
      const chunks = Array.from({ length: wire.length }, (_, i) => wire.subarray(i, i + 1))
      expect(feed(parser, chunks)).toEqual([show(new Frame(Opcode.Binary, pattern(5000)))])
      expect(parser.bufferedBytes).toBe(0)
    })

    it("accepts an all-zero mask key", () => {
      expect(parse("82 83 00 00 00 00 01 02 03", { mask: true })).toEqual([
        { opcode: Opcode.Binary, fin: true, rsv1: false, rsv2: false, rsv3: false, data: "010203" }
      ])
    })

    it("accepts an empty masked payload", () => {
      expect(parse("81 80 37 fa 21 3d", { mask: true })).toEqual([
        { opcode: Opcode.Text, fin: true, rsv1: false, rsv2: false, rsv3: false, data: "" }
      ])
    })
  })

  describe("chunk boundaries", () => {
    const frameArbitrary = fc
      .record({
        opcode: fc.constantFrom(...DATA_OPCODES, ...CTRL_OPCODES),
        length: fc.oneof(
          fc.integer({ min: 0, max: 130 }),
          fc.integer({ min: 65530, max: 65540 }),
          fc.integer({ min: 0, max: 3000 })
        ),
        fin: fc.boolean(),
        rsv1: fc.boolean()
      })
      .map(({ fin, length, opcode, rsv1 }) =>
        opcode >= Opcode.Close
          ? new Frame(opcode, pattern(Math.min(length, 125)), true, rsv1)
          : new Frame(opcode, pattern(length), fin, rsv1)
      )

    it("gives the same frames when fed one byte at a time", () => {
      const frames = [
        new Frame(Opcode.Text, pattern(5), false),
        new Frame(Opcode.Ping, pattern(125)),
        new Frame(Opcode.Continuation, pattern(200), false, true),
        new Frame(Opcode.Continuation, pattern(66000))
      ]
      for (const mask of [false, true]) {
        const wire = Buffer.concat(frames.map((frame) => serializeFrameToBytes(frame, mask)))
        const bytes = Array.from({ length: wire.length }, (_, i) => wire.slice(i, i + 1))
        expect(feed(new FrameParser({ mask }), bytes)).toEqual(frames.map(show))
      }
    })

    it("gives the same frames when all bytes are pushed one at a time before reading", () => {
      const frames = Array.from({ length: 300 }, (_, i) => new Frame(Opcode.Binary, pattern(i % 40), i % 3 === 0))
      const wire = new Uint8Array(Buffer.concat(frames.map((frame) => serializeFrameToBytes(frame, true, KEY))))
      const parser = new FrameParser({ mask: true })
      for (let i = 0; i < wire.length; i++) parser.push(wire.slice(i, i + 1))
      expect(parser.bufferedBytes).toBe(wire.length)
      const out: Array<unknown> = []
      for (let r = parser.next(); r !== undefined; r = parser.next()) out.push(show(r))
      expect(out).toEqual(frames.map(show))
      expect(parser.bufferedBytes).toBe(0)
    })

    it("gives the same frames for random chunkings", () => {
      fc.assert(
        fc.property(
          fc.array(frameArbitrary, { minLength: 1, maxLength: 5 }),
          fc.boolean(),
          fc.array(fc.nat(), { maxLength: 20 }),
          (frames, mask, cuts) => {
            // A plain Uint8Array: its `slice` copies (Buffer's would share bytes, and the parser unmasks in place).
            const wire = new Uint8Array(Buffer.concat(frames.map((frame) => serializeFrameToBytes(frame, mask))))
            const whole = feed(new FrameParser({ mask }), [wire.slice()])
            const chunked = feed(new FrameParser({ mask }), split(wire, cuts))
            expect(whole).toEqual(frames.map(show))
            expect(chunked).toEqual(whole)
          }
        ),
        { numRuns: 200 }
      )
    })
  })

  describe("read chunks released while waiting", () => {
    /** Views into buffers of 64 KiB, as Node's socket reads are: the parser copies a small tail. */
    const asReads = (chunks: ReadonlyArray<Uint8Array>): Array<Uint8Array> =>
      chunks.map((chunk) => {
        const read = new Uint8Array(65_536 + chunk.length)
        read.set(chunk, 100)
        return read.subarray(100, 100 + chunk.length)
      })
    const text = (length: number) => new TextEncoder().encode("é€".repeat(length).slice(0, length))

    it("gives the same frames and UTF-8 checks for random chunkings of 64 KiB reads", () => {
      fc.assert(
        fc.property(
          fc.array(
            fc.record({
              kind: fc.constantFrom("text", "binary", "ping"),
              length: fc.oneof(fc.integer({ min: 0, max: 125 }), fc.integer({ min: 126, max: 9000 }))
            }),
            { minLength: 1, maxLength: 6 }
          ),
          fc.boolean(),
          fc.array(fc.nat(), { maxLength: 20 }),
          fc.boolean(),
          (specs, mask, cuts, corrupt) => {
            const frames = specs.map(({ kind, length }) =>
              kind === "ping"
                ? new Frame(Opcode.Ping, pattern(Math.min(length, 125)))
                : kind === "text"
                  ? new Frame(Opcode.Text, text(length))
                  : new Frame(Opcode.Binary, pattern(length))
            )
            const wire = new Uint8Array(Buffer.concat(frames.map((frame) => serializeFrameToBytes(frame, mask, KEY))))
            // An invalid UTF-8 byte at the end of the last text frame, when asked for and possible.
            const last = frames.map((frame) => frame.opcode === Opcode.Text && frame.data.length > 0).lastIndexOf(true)
            if (corrupt && last >= 0) {
              const end = frames
                .slice(0, last + 1)
                .reduce((n, frame) => n + serializeFrameToBytes(frame, mask).length, 0)
              wire[end - 1] = wire[end - 1]! ^ (mask ? 0xff ^ KEY[(frames[last]!.data.length - 1) & 3]! : 0xff)
            }
            const make = () => {
              const parser = new FrameParser({ mask })
              parser.messageChecks = true
              return parser
            }
            const whole = feed(make(), [wire.slice()])
            expect(feed(make(), asReads(split(wire, cuts)))).toEqual(whole)
          }
        ),
        { numRuns: 300 }
      )
    })
  })

  describe("large payloads gathered as they arrive", () => {
    const TEXT = Buffer.from("héllo wörld € 𝄞 ".repeat(20000), "utf8")
    const withChecks = (mask: boolean) => {
      const parser = new FrameParser({ mask })
      parser.messageChecks = true
      parser.rsvAllowed = 0
      return parser
    }
    /** Cuts `wire` into chunks of the given sizes (cycled), as reads of various sizes would. */
    const reads = (wire: Uint8Array, sizes: ReadonlyArray<number>): Array<Uint8Array> => {
      const chunks: Array<Uint8Array> = []
      for (let at = 0, i = 0; at < wire.length; i++) {
        const n = sizes[i % sizes.length]!
        chunks.push(wire.slice(at, at + n))
        at += n
      }
      return chunks
    }

    it("gives the same frames and errors as one whole chunk, for large text and binary frames", () => {
      fc.assert(
        fc.property(
          fc.array(
            fc.record({
              text: fc.boolean(),
              length: fc.integer({ min: 60000, max: 300000 }),
              // Where a byte is made invalid UTF-8 (text only), if anywhere.
              corrupt: fc.option(fc.nat(), { nil: undefined }),
              fin: fc.boolean()
            }),
            { minLength: 1, maxLength: 3 }
          ),
          fc.boolean(),
          fc.array(fc.integer({ min: 1, max: 140000 }), { minLength: 1, maxLength: 6 }),
          (specs, mask, sizes) => {
            const frames = specs.map(({ corrupt, fin, length, text }, i) => {
              const payload = text ? new Uint8Array(TEXT.subarray(0, length)) : pattern(Math.min(length, 70000))
              if (text && corrupt !== undefined) payload[corrupt % payload.length] = 0xff
              // A message per frame: the first one fragmented when `fin` is false is followed by a continuation.
              return new Frame(
                i === 0 ? (text ? Opcode.Text : Opcode.Binary) : Opcode.Continuation,
                payload,
                fin || i === specs.length - 1
              )
            })
            const wire = new Uint8Array(Buffer.concat(frames.map((frame) => serializeFrameToBytes(frame, mask, KEY))))
            const whole = feed(withChecks(mask), [wire.slice()])
            expect(feed(withChecks(mask), reads(wire, sizes))).toEqual(whole)
          }
        ),
        { numRuns: 60 }
      )
    })

    it("returns the payload unmasked, in one buffer of its length, as reads of 64 KiB bring it", () => {
      for (const mask of [false, true]) {
        const payload = new Uint8Array(Buffer.from(`${"é".repeat(500_001)}a`, "utf8"))
        const frame = new Frame(Opcode.Text, payload)
        const empty = new Frame(Opcode.Text, new Uint8Array(0))
        const wire = new Uint8Array(
          Buffer.concat([serializeFrameToBytes(frame, mask, KEY), serializeFrameToBytes(empty, mask, KEY)])
        )
        const parser = withChecks(mask)
        const out: Array<Frame> = []
        for (const chunk of reads(wire, [65536])) {
          parser.push(chunk)
          for (let r = parser.next(); r !== undefined; r = parser.next()) {
            expect(r).toBeInstanceOf(Frame)
            out.push(r as Frame)
          }
          // What was read is gathered at once: no more than one read stays buffered.
          expect(parser.bufferedBytes).toBeLessThan(65536)
        }
        expect(out.map(show)).toEqual([show(frame), show(empty)])
        expect(out[0]!.data.byteLength).toBe(payload.length)
        expect(out[0]!.data.buffer.byteLength).toBe(payload.length)
      }
    })

    it("fails on invalid UTF-8 in a large text frame as soon as the byte arrives", () => {
      const payload = new Uint8Array(TEXT.subarray(0, 500_000))
      payload[200_000] = 0xc0
      const wire = new Uint8Array(serializeFrameToBytes(new Frame(Opcode.Text, payload), true, KEY))
      const parser = withChecks(true)
      parser.push(wire.slice(0, 140_000))
      expect(parser.next()).toBeUndefined()
      parser.push(wire.slice(140_000, 210_000))
      expect(show(parser.next())).toEqual({ _tag: "InvalidUtf8", detail: "invalid UTF-8 in text message" })
    })
  })

  describe("message checks: outcome independent of the split", () => {
    /** A frame as a peer may write it, valid or not: any opcode, reserved bits, FIN, UTF-8 or not. */
    const anyFrame = fc
      .record({
        opcode: fc.constantFrom(0x0, 0x0, 0x1, 0x1, 0x2, 0x3, 0x8, 0x9, 0xa, 0xb),
        fin: fc.boolean(),
        rsv: fc.constantFrom(0, 0, 0, 0x40, 0x20, 0x10, 0x60),
        payload: fc.oneof(
          fc.string({ unit: "binary", maxLength: 40 }).map((s) => new Uint8Array(Buffer.from(s, "utf8"))),
          fc.uint8Array({ maxLength: 40 }),
          fc.uint8Array({ maxLength: 300 })
        ),
        /** Close frames: a valid code, then the payload as reason. */
        code: fc.constantFrom(1000, 1001, 3000)
      })
      .map(({ code, fin, opcode, payload, rsv }) => {
        if (opcode >= 0x8) {
          const body =
            opcode === 0x8 ? Buffer.concat([Buffer.from([code >> 8, code & 0xff]), payload]) : Buffer.from(payload)
          return { opcode, fin, rsv, payload: new Uint8Array(body.subarray(0, 125)) }
        }
        return { opcode, fin, rsv, payload }
      })

    /** Header and payload written by hand: `Frame` refuses some of the invalid combinations. */
    const encode = (f: { opcode: number; fin: boolean; rsv: number; payload: Uint8Array }, mask: boolean) => {
      const n = f.payload.length
      const head = [(f.fin ? 0x80 : 0) | f.rsv | f.opcode]
      const m = mask ? 0x80 : 0
      if (n < 126) head.push(m | n)
      else head.push(m | 126, n >> 8, n & 0xff)
      const key = [0x37, 0xfa, 0x21, 0x3d]
      const body = Uint8Array.from(f.payload, (b, i) => (mask ? b ^ key[i & 3]! : b))
      return Buffer.concat([Buffer.from(head), Buffer.from(mask ? key : []), body])
    }

    const configured = (mask: boolean, rsvAllowed: number | null, maxSize: number | null) => {
      const parser = new FrameParser({ mask })
      parser.messageChecks = true
      parser.rsvAllowed = rsvAllowed
      parser.maxSize = maxSize
      return parser
    }

    it("random valid and invalid streams give the same frames and error however they are split", () => {
      fc.assert(
        fc.property(
          fc.array(anyFrame, { minLength: 1, maxLength: 8 }),
          fc.boolean(),
          fc.constantFrom(0, 0x40, null),
          fc.option(fc.nat({ max: 200 }), { nil: null }),
          fc.array(fc.nat(), { maxLength: 30 }),
          fc.nat(),
          (frames, mask, rsvAllowed, maxSize, cuts, truncate) => {
            let wire = new Uint8Array(Buffer.concat(frames.map((f) => encode(f, mask))))
            // Sometimes the stream stops mid-frame: what is known by then must not depend on the split either.
            if (truncate % 3 === 0) wire = wire.slice(0, truncate % (wire.length + 1))
            const whole = feed(configured(mask, rsvAllowed, maxSize), [wire.slice()])
            const chunked = feed(configured(mask, rsvAllowed, maxSize), split(wire, cuts))
            const bytewise = feed(
              configured(mask, rsvAllowed, maxSize),
              Array.from({ length: wire.length }, (_, i) => wire.slice(i, i + 1))
            )
            expect(chunked).toEqual(whole)
            expect(bytewise).toEqual(whole)
          }
        ),
        { numRuns: 1000 }
      )
    })
  })

  describe("random input", () => {
    /** Pushes `chunks` and drains after each; checks that only frames or one typed error come out. */
    const survive = (chunks: ReadonlyArray<Uint8Array>, mask: boolean, maxSize: number | null): void => {
      const parser = new FrameParser({ mask })
      parser.maxSize = maxSize
      const total = chunks.reduce((n, c) => n + c.length, 0)
      let results = 0
      for (const chunk of chunks) {
        parser.push(chunk)
        for (;;) {
          const result = parser.next()
          if (result === undefined) break
          // Each frame consumes at least 2 bytes: more results than that means a loop.
          expect(++results).toBeLessThanOrEqual(total / 2 + 1)
          if (result instanceof Frame) continue
          expect(["ProtocolError", "PayloadTooBig"]).toContain(result._tag)
          expect(parser.next()).toBe(result)
          return
        }
      }
    }

    it("mutated valid frames only yield frames, undefined or a typed error", () => {
      fc.assert(
        fc.property(
          fc.array(fc.tuple(fc.constantFrom(0, 1, 2, 8, 9, 10), fc.nat({ max: 300 }), fc.boolean()), {
            minLength: 1,
            maxLength: 4
          }),
          fc.boolean(),
          fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 3 }),
          fc.array(fc.nat(), { maxLength: 6 }),
          fc.option(fc.nat({ max: 400 }), { nil: null }),
          (specs, mask, mutations, cuts, maxSize) => {
            const frames = specs.map(([opcode, length, fin]) => new Frame(opcode as Opcode, pattern(length), fin))
            const wire = new Uint8Array(Buffer.concat(frames.map((frame) => serializeFrameToBytes(frame, mask))))
            for (const [at, value] of mutations) wire[at % wire.length] = value
            const points = [...new Set(cuts.map((c) => c % (wire.length + 1)))].sort((a, b) => a - b)
            const chunks = [0, ...points].map((p, i, all) => wire.slice(p, all[i + 1] ?? wire.length))
            survive(chunks, mask, maxSize)
          }
        ),
        { numRuns: 500 }
      )
    })

    it("random bytes only yield frames, undefined or a typed error, and terminate", () => {
      fc.assert(
        fc.property(
          fc.array(fc.uint8Array({ maxLength: 64 }), { maxLength: 10 }),
          fc.boolean(),
          fc.option(fc.nat({ max: 200 }), { nil: null }),
          (chunks, mask, maxSize) => survive(chunks, mask, maxSize)
        ),
        { numRuns: 2000 }
      )
    })
  })

  describe("transformed frames: wire size limit only when buffered whole", () => {
    /** A parser of compressed messages (RSV1 claimed), limited to `whole` bytes for frames buffered whole. */
    const compressed = (whole: number, decoder: "arriving" | "none" | "refused") => {
      const parser = new FrameParser({ mask: false })
      parser.messageChecks = true
      parser.rsvAllowed = 0x40
      parser.maxSize = 1000
      parser.maxTransformedSize = whole
      if (decoder !== "none") {
        parser.decodeArriving = () =>
          decoder === "refused"
            ? undefined
            : {
                rsv1: false,
                write: () => undefined,
                end: () => ({ _tag: "Right", right: new Uint8Array(0) }) as never
              }
      }
      return parser
    }
    const header = (length: number) =>
      serializeFrameToBytes(new Frame(Opcode.Binary, new Uint8Array(length), true, true), false)

    it("a frame decoded as it arrives may be of any length", () => {
      const parser = compressed(100_000, "arriving")
      const wire = header(300_000)
      const results = feed(parser, [wire.subarray(0, 70_000), wire.subarray(70_000)])
      expect(results).toEqual([{ opcode: Opcode.Binary, fin: true, rsv1: false, rsv2: false, rsv3: false, data: "" }])
    })

    it("without a decoder for arriving bytes, a frame over the limit fails at its header", () => {
      const parser = compressed(100_000, "none")
      expect(feed(parser, [header(100_001).subarray(0, 10)])).toEqual([
        { _tag: "PayloadTooBig", size: 100_001, maxSize: 100_000 }
      ])
    })

    it("a frame the decoder refuses to take as it arrives fails once it would be buffered whole over the limit", () => {
      const parser = compressed(100_000, "refused")
      const wire = header(100_001)
      expect(feed(parser, [wire.subarray(0, 70_000)])).toEqual([
        { _tag: "PayloadTooBig", size: 100_001, maxSize: 100_000 }
      ])
      // Within the limit it is buffered and returned whole.
      const within = compressed(100_000, "refused")
      const wholeWire = header(100_000)
      const frames = feed(within, [wholeWire.subarray(0, 70_000), wholeWire.subarray(70_000)])
      expect(frames).toEqual([
        {
          opcode: Opcode.Binary,
          fin: true,
          rsv1: true,
          rsv2: false,
          rsv3: false,
          data: digest(new Uint8Array(100_000))
        }
      ])
    })
  })
})
