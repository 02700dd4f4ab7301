/**
 * A large compressed frame is inflated read by read as it arrives (`Extension.decodeArriving`),
 * not in one call once its last byte is in: over a sans-I/O server connection with
 * permessage-deflate, any cut of the bytes into reads gives the same messages as the whole stream,
 * the inflation happens during the reads, and the size budget and corrupt data fail as bytes arrive.
 */
import { randomBytes } from "node:crypto"
import * as zlib from "node:zlib"
import { describe, expect, it } from "@effect/vitest"
import * as fc from "fast-check"
import { Connection } from "../../src/Connection.js"
import { PerMessageDeflate } from "../../src/extensions/PermessageDeflate.js"
import { Frame, Opcode, serializeFrameToBytes } from "../../src/Frames.js"

/** A server connection with permessage-deflate (context takeover, 15-bit windows). */
const server = (maxSize: number | null = null) => {
  const connection = new Connection("server", { maxSize })
  const extension = new PerMessageDeflate(false, false, 15, 15)
  connection.extensions = [extension]
  return { connection, extension }
}

/** The wire bytes of `messages`, compressed by a client, each cut into fragments at `cuts`. */
const clientStream = (messages: ReadonlyArray<{ data: Uint8Array; cuts: ReadonlyArray<number> }>): Uint8Array => {
  const client = new PerMessageDeflate(false, false, 15, 15)
  const frames: Array<Uint8Array> = []
  for (const { data, cuts } of messages) {
    const bounds = [
      0,
      ...[...new Set(cuts.map((c) => c % (data.byteLength + 1)))].sort((a, b) => a - b),
      data.byteLength
    ]
    for (let i = 0; i + 1 < bounds.length; i++) {
      const opcode = i === 0 ? Opcode.Binary : Opcode.Continuation
      const frame = client.encode(new Frame(opcode, data.subarray(bounds[i]!, bounds[i + 1]!), i + 2 === bounds.length))
      frames.push(serializeFrameToBytes(frame, true))
    }
  }
  return new Uint8Array(Buffer.concat(frames))
}

/** Feeds `bytes` in reads of the given sizes (cycled); returns the messages received. */
const feed = (connection: Connection, bytes: Uint8Array, reads: ReadonlyArray<number>): Array<Uint8Array> => {
  const messages: Array<Uint8Array> = []
  let parts: Array<Uint8Array> = []
  for (let offset = 0, i = 0; offset < bytes.byteLength; i++) {
    const size = Math.max(1, reads[i % reads.length]!)
    // A fresh buffer per read, as from a socket: the parser unmasks in place.
    connection.receiveData(Uint8Array.from(bytes.subarray(offset, offset + size)))
    offset += size
    for (const event of connection.eventsReceived()) {
      if (!(event instanceof Frame) || event.opcode >= Opcode.Close) continue
      parts.push(event.data)
      if (event.fin) {
        messages.push(new Uint8Array(Buffer.concat(parts)))
        parts = []
      }
    }
  }
  return messages
}

/** Text-like data that compresses well, from a seed. */
const words = (seed: number, size: number): Uint8Array => {
  const vocabulary = ["alpha", "beta", "gamma", '{"id":', "true", " ", ",", "\n"]
  let state = seed >>> 0 || 1
  const out = new Uint8Array(size)
  for (let i = 0; i < size; ) {
    state = (state * 1103515245 + 12345) >>> 0
    const word = vocabulary[state % vocabulary.length]!
    for (let j = 0; j < word.length && i < size; j++) out[i++] = word.charCodeAt(j)
  }
  return out
}

const same = (a: Uint8Array, b: Uint8Array) => Buffer.compare(a, b) === 0

describe("permessage-deflate frames inflated as they arrive", () => {
  it("any cut into reads gives the messages of the whole stream", () => {
    const message = fc.oneof(
      // Random bytes: the compressed frames are as large as the data (over 64 KiB: inflated as they arrive).
      fc.integer({ min: 1_000, max: 300_000 }).map((size) => new Uint8Array(randomBytes(size))),
      fc.tuple(fc.nat(), fc.integer({ min: 0, max: 400_000 })).map(([seed, size]) => words(seed, size))
    )
    fc.assert(
      fc.property(
        fc.array(fc.record({ data: message, cuts: fc.array(fc.nat(), { maxLength: 3 }) }), {
          minLength: 1,
          maxLength: 4
        }),
        fc.array(fc.integer({ min: 1, max: 140_000 }), { minLength: 1, maxLength: 6 }),
        (messages, reads) => {
          const stream = clientStream(messages)
          const whole = feed(server().connection, stream, [stream.byteLength])
          const cut = feed(server().connection, stream, reads)
          expect(whole.length).toBe(messages.length)
          expect(cut.length).toBe(messages.length)
          for (let i = 0; i < messages.length; i++) {
            expect(same(whole[i]!, messages[i]!.data)).toBe(true)
            expect(same(cut[i]!, messages[i]!.data)).toBe(true)
          }
        }
      ),
      { numRuns: 40 }
    )
  })

  it("a 1 MB compressed frame is inflated during the reads that bring it, not at its end", () => {
    const data = new Uint8Array(randomBytes(1_000_000))
    const stream = clientStream([{ data, cuts: [] }])
    const { connection, extension } = server()
    let whole = 0
    let parts = 0
    const decode = extension.decode.bind(extension)
    extension.decode = (frame, maxSize) => {
      if (frame.data.byteLength > 1000) whole++
      return decode(frame, maxSize)
    }
    const decodeArriving = extension.decodeArriving.bind(extension)
    extension.decodeArriving = (...args) => {
      const decoder = decodeArriving(...args)!
      return {
        rsv1: decoder.rsv1,
        write: (bytes) => {
          parts++
          return decoder.write(bytes)
        },
        end: () => decoder.end()
      }
    }
    const received = feed(connection, stream, [65_536])
    expect(received).toHaveLength(1)
    expect(same(received[0]!, data)).toBe(true)
    expect(whole).toBe(0)
    // 1 MB in 64 KiB reads: every read from the second on is inflated when it arrives.
    expect(parts).toBeGreaterThanOrEqual(14)
  })

  it("a zip bomb fails with 1009 as it arrives, before its last bytes", () => {
    // 256 MiB of zeros compress to about 256 KiB: over the 1 MiB budget after a few reads.
    const bomb = zlib.deflateRawSync(new Uint8Array(256 * 1024 * 1024), { finishFlush: zlib.constants.Z_SYNC_FLUSH })
    const payload = bomb.subarray(0, bomb.byteLength - 4)
    const bytes = serializeFrameToBytes(new Frame(Opcode.Binary, payload, true, true), true)
    const { connection } = server(1024 * 1024)
    const before = process.memoryUsage().arrayBuffers
    let fed = 0
    while (connection.parserExc === undefined && fed < bytes.byteLength) {
      connection.receiveData(Uint8Array.from(bytes.subarray(fed, fed + 16_384)))
      fed += 16_384
    }
    expect(connection.parserExc?._tag).toBe("PayloadTooBig")
    expect(fed).toBeLessThan(bytes.byteLength / 2)
    expect(process.memoryUsage().arrayBuffers - before).toBeLessThan(16 * 1024 * 1024)
    expect(connection.closeExpected()).toBe(true)
  })

  it("corrupt compressed data fails with 1002 as it arrives", () => {
    const garbage = new Uint8Array(300_000).fill(0xff)
    const bytes = serializeFrameToBytes(new Frame(Opcode.Binary, garbage, true, true), true)
    const { connection } = server()
    let fed = 0
    while (connection.parserExc === undefined && fed < bytes.byteLength) {
      connection.receiveData(Uint8Array.from(bytes.subarray(fed, fed + 65_536)))
      fed += 65_536
    }
    expect(connection.parserExc?._tag).toBe("ProtocolError")
    expect(fed).toBeLessThan(bytes.byteLength)
  })
})
