/**
 * The conformance peer's own view of the wire (RFC 6455 §5, RFC 7692 §7): a frame encoder and an
 * incremental frame decoder written from the RFC, independent of `src/Frames.ts`, so that a bug in
 * our encoder cannot hide the same bug in our parser. Also the handshake key/accept computation
 * (RFC 6455 §4.2.2, with `node:crypto`) and the peer's half of permessage-deflate (`node:zlib`).
 */
import { createHash, randomBytes } from "node:crypto"
import * as zlib from "node:zlib"

/** Opcodes (RFC 6455 §5.2). */
export const Op = {
  Continuation: 0x0,
  Text: 0x1,
  Binary: 0x2,
  Close: 0x8,
  Ping: 0x9,
  Pong: 0xa
} as const

/** The GUID of RFC 6455 §1.3. */
const WEBSOCKET_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

/** Largest payload of a control frame (RFC 6455 §5.5). */
export const MAX_CONTROL_PAYLOAD = 125

/** A fresh `Sec-WebSocket-Key`: 16 random bytes, base64 (RFC 6455 §4.1). */
export const newKey = (): string => randomBytes(16).toString("base64")

/** `Sec-WebSocket-Accept` for a key (RFC 6455 §4.2.2 step 5.4). */
export const acceptFor = (key: string): string =>
  createHash("sha1")
    .update(key + WEBSOCKET_GUID)
    .digest("base64")

/** What the peer writes: a frame, described field by field so that it can be malformed on purpose. */
export interface FrameSpec {
  readonly opcode: number
  readonly payload: Uint8Array
  /** FIN bit; default true. */
  readonly fin?: boolean | undefined
  readonly rsv1?: boolean | undefined
  readonly rsv2?: boolean | undefined
  readonly rsv3?: boolean | undefined
  /** Length field encoding; default the minimal one. A non-minimal one is legal for senders to avoid, not to parse. */
  readonly encoding?: 7 | 16 | 64 | undefined
  /** Length written in the header instead of the payload's (a lie: only the header then matters). */
  readonly declaredLength?: bigint | undefined
  /** Mask when the side says not to, and the other way round (RFC 6455 §5.1 violations). */
  readonly wrongMask?: boolean | undefined
}

/**
 * Encodes one frame. `masked`: whether the writer is a client (RFC 6455 §5.3), before `wrongMask`.
 */
export const encodeFrame = (frame: FrameSpec, masked: boolean): Buffer => {
  const mask = frame.wrongMask === true ? !masked : masked
  const payload = frame.payload
  const length = frame.declaredLength ?? BigInt(payload.length)
  const encoding = frame.encoding ?? (length <= 125n ? 7 : length <= 0xffffn ? 16 : 64)
  const headerLength = 2 + (encoding === 16 ? 2 : encoding === 64 ? 8 : 0) + (mask ? 4 : 0)
  const out = Buffer.allocUnsafe(headerLength + payload.length)
  out[0] =
    (frame.fin === false ? 0 : 0x80) |
    (frame.rsv1 === true ? 0x40 : 0) |
    (frame.rsv2 === true ? 0x20 : 0) |
    (frame.rsv3 === true ? 0x10 : 0) |
    (frame.opcode & 0x0f)
  let offset = 2
  if (encoding === 7) {
    out[1] = Number(length)
  } else if (encoding === 16) {
    out[1] = 126
    out.writeUInt16BE(Number(length), 2)
    offset = 4
  } else {
    out[1] = 127
    out.writeBigUInt64BE(length, 2)
    offset = 10
  }
  if (mask) {
    out[1] |= 0x80
    const key = randomBytes(4)
    key.copy(out, offset)
    offset += 4
    for (let i = 0; i < payload.length; i++) out[offset + i] = payload[i]! ^ key[i & 3]!
  } else {
    out.set(payload, offset)
  }
  return out
}

/** A frame as the peer received it, unmasked. */
export interface WireFrame {
  readonly fin: boolean
  readonly rsv1: boolean
  readonly rsv2: boolean
  readonly rsv3: boolean
  readonly opcode: number
  readonly masked: boolean
  readonly payload: Buffer
}

/**
 * Received bytes as a list of chunks with a byte count: a frame is parsed once all of it is
 * buffered, and its payload copied once (16 MiB messages arrive in hundreds of chunks).
 */
export class ByteQueue {
  private chunks: Array<Buffer> = []
  private size = 0

  get length(): number {
    return this.size
  }

  push(chunk: Buffer): void {
    if (chunk.length === 0) return
    this.chunks.push(chunk)
    this.size += chunk.length
  }

  /** The first `n` buffered bytes (the caller checked there are enough), without consuming them. */
  peek(n: number): Buffer {
    const first = this.chunks[0]!
    if (first.length >= n) return first.subarray(0, n)
    return Buffer.concat(this.chunks, this.size).subarray(0, n)
  }

  /** Consumes and returns `n` bytes. */
  take(n: number): Buffer {
    if (n === 0) return Buffer.alloc(0)
    const first = this.chunks[0]!
    let out: Buffer
    if (first.length > n) {
      out = first.subarray(0, n)
      this.chunks[0] = first.subarray(n)
    } else if (first.length === n) {
      out = first
      this.chunks.shift()
    } else {
      out = Buffer.allocUnsafe(n)
      let filled = 0
      while (filled < n) {
        const chunk = this.chunks[0]!
        const wanted = n - filled
        if (chunk.length > wanted) {
          chunk.copy(out, filled, 0, wanted)
          this.chunks[0] = chunk.subarray(wanted)
          filled = n
        } else {
          chunk.copy(out, filled)
          filled += chunk.length
          this.chunks.shift()
        }
      }
    }
    this.size -= n
    return out
  }

  /** Position of `needle` in the buffered bytes, or -1 (for the HTTP head, which is small). */
  indexOf(needle: string): number {
    return this.size === 0 ? -1 : Buffer.concat(this.chunks, this.size).indexOf(needle, 0, "latin1")
  }
}

/**
 * Takes the next complete frame off the queue, or returns `undefined` if it is not all there. A
 * 64-bit length with its most significant bit set is returned as an error string.
 */
export const takeFrame = (queue: ByteQueue): WireFrame | string | undefined => {
  if (queue.length < 2) return undefined
  const head = queue.peek(2)
  const b0 = head[0]!
  const b1 = head[1]!
  const masked = (b1 & 0x80) !== 0
  const length7 = b1 & 0x7f
  const extra = length7 === 126 ? 2 : length7 === 127 ? 8 : 0
  const headerLength = 2 + extra + (masked ? 4 : 0)
  if (queue.length < headerLength) return undefined
  const header = queue.peek(headerLength)
  let length = length7
  if (length7 === 126) length = header.readUInt16BE(2)
  else if (length7 === 127) {
    const big = header.readBigUInt64BE(2)
    if (big > BigInt(Number.MAX_SAFE_INTEGER)) return `64-bit payload length too large: ${big}`
    length = Number(big)
  }
  if (queue.length < headerLength + length) return undefined
  const key = masked ? Buffer.from(header.subarray(2 + extra, 6 + extra)) : undefined
  queue.take(headerLength)
  let payload = queue.take(length)
  if (key !== undefined) {
    // Copy before unmasking: the chunk may be shared with the socket's buffer pool.
    payload = Buffer.from(payload)
    for (let i = 0; i < payload.length; i++) payload[i]! ^= key[i & 3]!
  }
  return {
    fin: (b0 & 0x80) !== 0,
    rsv1: (b0 & 0x40) !== 0,
    rsv2: (b0 & 0x20) !== 0,
    rsv3: (b0 & 0x10) !== 0,
    opcode: b0 & 0x0f,
    masked,
    payload
  }
}

/** The payload of a Close frame: a 2-byte code and a reason (RFC 6455 §5.5.1). */
export const closePayload = (code: number, reason: string | Uint8Array = ""): Buffer => {
  const reasonBytes = typeof reason === "string" ? Buffer.from(reason, "utf8") : Buffer.from(reason)
  const out = Buffer.alloc(2 + reasonBytes.length)
  out.writeUInt16BE(code, 0)
  reasonBytes.copy(out, 2)
  return out
}

// ---------------------------------------------------------------------------
// permessage-deflate, the peer's half (RFC 7692 §7.2)
// ---------------------------------------------------------------------------

/** The 4 bytes that end a sync flush, removed from each compressed message (RFC 7692 §7.2.1). */
export const DEFLATE_TAIL = Buffer.from([0x00, 0x00, 0xff, 0xff])

/** LZ77 window of deflate: the most a compressed message can refer back to. */
const WINDOW = 32 * 1024

/** Compresses one message on its own (no context taken over) and strips the sync-flush tail. */
export const deflateMessage = (data: Uint8Array): Buffer => {
  const compressed = zlib.deflateRawSync(data, { finishFlush: zlib.constants.Z_SYNC_FLUSH })
  return compressed.subarray(0, compressed.length - DEFLATE_TAIL.length)
}

/**
 * Decompresses the messages of one direction. The compressor may take its context over from
 * message to message (RFC 7692 §7.1.1), so the previous output is kept as a preset dictionary:
 * raw inflate with the last 32 KiB as dictionary is inflate continuing the same stream.
 */
export class Inflater {
  private window: Buffer = Buffer.alloc(0)

  inflate(compressed: Uint8Array, maxOutputLength: number): Buffer {
    const input = Buffer.concat([compressed, DEFLATE_TAIL])
    const output = zlib.inflateRawSync(input, {
      finishFlush: zlib.constants.Z_SYNC_FLUSH,
      maxOutputLength,
      ...(this.window.length > 0 ? { dictionary: this.window } : {})
    })
    const joined = Buffer.concat([this.window, output])
    this.window = Buffer.from(joined.subarray(Math.max(0, joined.length - WINDOW)))
    return output
  }
}

/**
 * Whether `bytes`, as the first part of a text message, is already known to be invalid UTF-8
 * (an endpoint that validates as it goes must fail here: RFC 6455 §8.1). The WHATWG decoder in
 * streaming mode reports an error at the first byte that no valid continuation can follow.
 */
export const invalidAsPrefix = (bytes: Uint8Array): boolean => {
  try {
    new TextDecoder("utf-8", { fatal: true }).decode(bytes, { stream: true })
    return false
  } catch {
    return true
  }
}

/** Whether `bytes` is a complete, valid UTF-8 text. */
export const isValidUtf8 = (bytes: Uint8Array): boolean => {
  try {
    new TextDecoder("utf-8", { fatal: true }).decode(bytes)
    return true
  } catch {
    return false
  }
}

/** Bytes of a hex string (spaces allowed). */
export const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ""), "hex")
