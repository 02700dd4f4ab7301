/**
 * The seeds' `websockets.framing.Frame`: `check()` (reserved bits and opcode), `read` (here the
 * sans-I/O `parseFrame`) and `write`/`serialize` with extensions and validation (`serializeFrame`
 * with options), and the constructor with named fields (`Frame.make`).
 */
import { describe, expect, it } from "@effect/vitest"
import * as Either from "effect/Either"
import * as fc from "fast-check"
import { PerMessageDeflate } from "../src/extensions/PermessageDeflate.js"
import { Frame, Opcode, parseFrame, serializeFrame, serializeFrameToBytes } from "../src/Frames.js"

const fromHex = (hex: string): Uint8Array => Buffer.from(hex.replace(/ /g, ""), "hex")
const text = (s: string): Uint8Array => Buffer.from(s, "utf8")
const MASK_KEY = fromHex("37fa213d")

/** A frame's fields, its payload as a plain array (a Buffer and a Uint8Array compare equal). */
const shape = (frame: Frame) => ({ ...frame, data: [...frame.data] })

const leftOf = <A, E>(result: Either.Either<A, E>): E => {
  if (Either.isRight(result)) throw new Error(`expected a Left, got ${JSON.stringify(result.right)}`)
  return result.left
}
const rightOf = <A, E>(result: Either.Either<A, E>): A => {
  if (Either.isLeft(result)) throw new Error(`expected a Right, got ${String(result.left)}`)
  return result.right
}

describe("seed: Frame.check()", () => {
  it("seed: check() raises ProtocolError if the opcode is invalid", () => {
    for (let opcode = 0; opcode < 16; opcode++) {
      const result = new Frame(opcode as Opcode, new Uint8Array(0)).check()
      if ([0, 1, 2, 8, 9, 10].includes(opcode)) expect(Either.isRight(result)).toBe(true)
      else expect(leftOf(result)).toMatchObject({ _tag: "ProtocolError", message: `invalid opcode: ${opcode}` })
    }
  })

  it("seed: check() raises ProtocolError if a reserved bit is set", () => {
    for (const [rsv1, rsv2, rsv3] of [
      [true, false, false],
      [false, true, false],
      [false, false, true]
    ] as const) {
      const result = new Frame(Opcode.Text, text("x"), true, rsv1, rsv2, rsv3).check()
      expect(leftOf(result)).toMatchObject({ _tag: "ProtocolError", message: "reserved bits must be 0" })
    }
  })
})

describe("seed: Frame(fin, opcode, data) as Frame.make", () => {
  it("seed: Frame(fin, opcode, data, rsv1, rsv2, rsv3) fields by name; fin defaults to True here", () => {
    expect(Frame.make({ fin: false, opcode: Opcode.Text, data: text("a") })).toEqual(
      new Frame(Opcode.Text, text("a"), false)
    )
    expect(Frame.make({ opcode: Opcode.Binary, data: text("b"), rsv1: true })).toEqual(
      new Frame(Opcode.Binary, text("b"), true, true, false, false)
    )
  })
})

describe("seed: Frame.read as parseFrame", () => {
  it("seed: read an unmasked text frame (RFC 6455 §5.7)", () => {
    const parsed = rightOf(parseFrame(fromHex("81 05 48 65 6c 6c 6f"), { mask: false }))
    expect(parsed?.length).toBe(7)
    expect(parsed?.frame).toEqual(new Frame(Opcode.Text, text("Hello"), true))
  })

  it("seed: read a masked text frame on the server side (mask=True; RFC 6455 §5.7)", () => {
    const bytes = fromHex("81 85 37 fa 21 3d 7f 9f 4d 51 58")
    const parsed = rightOf(parseFrame(bytes, { mask: true }))
    expect(parsed?.frame).toEqual(new Frame(Opcode.Text, text("Hello"), true))
    expect([...bytes]).toEqual([...fromHex("81 85 37 fa 21 3d 7f 9f 4d 51 58")])
  })

  it("seed: read needs the whole frame: every strict prefix reads as not yet complete", () => {
    const bytes = serializeFrameToBytes(new Frame(Opcode.Binary, new Uint8Array(300).fill(7)), true, MASK_KEY)
    for (let end = 0; end < bytes.length; end++) {
      expect(rightOf(parseFrame(bytes.subarray(0, end), { mask: true }))).toBeUndefined()
    }
    expect(rightOf(parseFrame(bytes, { mask: true }))?.length).toBe(bytes.length)
  })

  it("seed: read raises ProtocolError on incorrect masking, both ways", () => {
    expect(leftOf(parseFrame(fromHex("81 05 48 65 6c 6c 6f"), { mask: true }))).toMatchObject({
      _tag: "ProtocolError",
      message: "incorrect masking"
    })
    expect(leftOf(parseFrame(fromHex("81 85 37 fa 21 3d 7f 9f 4d 51 58"), { mask: false }))._tag).toBe("ProtocolError")
  })

  it("seed: read raises PayloadTooBig if the frame exceeds max_size, as soon as the length is known", () => {
    // Only the header of a 126-byte frame: the payload never arrived.
    expect(leftOf(parseFrame(fromHex("82 7e 00 7e"), { mask: false, maxSize: 125 }))).toMatchObject({
      _tag: "PayloadTooBig",
      size: 126,
      maxSize: 125
    })
    expect(rightOf(parseFrame(fromHex("82 7e 00 7e"), { mask: false, maxSize: 126 }))).toBeUndefined()
  })

  it("seed: read raises ProtocolError if the frame contains incorrect values", () => {
    // 64-bit length with its most significant bit set (RFC 6455 §5.2).
    expect(leftOf(parseFrame(fromHex("82 7f 80 00 00 00 00 00 00 01 00"), { mask: false }))._tag).toBe("ProtocolError")
    // Undefined opcode 3, RSV1 without an extension, a fragmented ping.
    expect(leftOf(parseFrame(fromHex("83 00"), { mask: false })).message).toBe("invalid opcode: 3")
    expect(leftOf(parseFrame(fromHex("c1 00"), { mask: false })).message).toBe("reserved bits must be 0")
    expect(leftOf(parseFrame(fromHex("09 00"), { mask: false })).message).toBe("fragmented control frame")
  })

  it("seed: read applies extensions in reverse order; write applies them in order (permessage-deflate round trip)", () => {
    const sender = new PerMessageDeflate(false, false, 15, 15)
    const receiver = new PerMessageDeflate(false, false, 15, 15)
    const frame = new Frame(Opcode.Text, text("Hello, Hello, Hello, Hello!"))
    const chunks = rightOf(serializeFrame(frame, { mask: true, extensions: [sender] }))
    const bytes = Buffer.concat(chunks)
    expect(bytes[0]! & 0x40).toBe(0x40) // RSV1: compressed
    const parsed = rightOf(parseFrame(bytes, { mask: true, extensions: [receiver] }))
    expect(shape(parsed!.frame)).toEqual(shape(frame))
    sender.close?.()
    receiver.close?.()
  })

  it("seed: read(write(frame)) is the frame, for any valid frame, masked or not", () => {
    const frameArb = fc
      .record({
        opcode: fc.constantFrom(Opcode.Continuation, Opcode.Text, Opcode.Binary),
        data: fc.uint8Array({ maxLength: 70_000 }),
        fin: fc.boolean(),
        mask: fc.boolean()
      })
      .chain((r) =>
        fc.oneof(
          fc.constant(r),
          fc.record({
            opcode: fc.constantFrom(Opcode.Close, Opcode.Ping, Opcode.Pong),
            data: fc.uint8Array({ maxLength: 125 }),
            fin: fc.constant(true),
            mask: fc.constant(r.mask)
          })
        )
      )
    fc.assert(
      fc.property(frameArb, ({ opcode, data, fin, mask }) => {
        const frame = new Frame(opcode, Buffer.from(data), fin)
        const bytes = Buffer.concat(rightOf(serializeFrame(frame, { mask })))
        const parsed = rightOf(parseFrame(bytes, { mask }))
        expect(parsed?.length).toBe(bytes.length)
        expect(parsed?.frame).toEqual(frame)
      }),
      { numRuns: 200 }
    )
  })
})

describe("seed: Frame.write / serialize(mask, extensions)", () => {
  it("seed: write raises ProtocolError if the frame contains incorrect values (check() before writing)", () => {
    expect(leftOf(serializeFrame(new Frame(Opcode.Ping, new Uint8Array(126)), { mask: false })).message).toBe(
      "control frame too long"
    )
    expect(leftOf(serializeFrame(new Frame(Opcode.Text, text("x"), true, true), { mask: false })).message).toBe(
      "reserved bits must be 0"
    )
    expect(leftOf(serializeFrame(new Frame(11 as Opcode, new Uint8Array(0)), { mask: true })).message).toBe(
      "invalid opcode: 11"
    )
  })

  it("seed: write with mask gives the bytes of RFC 6455 §5.7 for a fixed key", () => {
    const chunks = rightOf(serializeFrame(new Frame(Opcode.Text, text("Hello")), { mask: true, maskKey: MASK_KEY }))
    expect(Buffer.concat(chunks).toString("hex")).toBe("818537fa213d7f9f4d5158")
    // The unchecked hot-path form writes the same bytes.
    expect(
      Buffer.from(serializeFrameToBytes(new Frame(Opcode.Text, text("Hello")), true, MASK_KEY)).toString("hex")
    ).toBe("818537fa213d7f9f4d5158")
  })
})
