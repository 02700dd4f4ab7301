/**
 * WebSocket frames (RFC 6455 §5), mirroring Python `websockets.frames`: opcodes, close codes, the
 * `Frame` and `Close` value types, and serialization. Parsing of incoming bytes is incremental and
 * lives in `internal/frameParser.ts`; anything that depends on a sequence of frames (fragmentation,
 * closing handshake) belongs to the connection.
 *
 * @since 0.1.0
 */
import { Buffer } from "node:buffer"
import { randomFillSync } from "node:crypto"
import { closeCodeName, InvalidUtf8, PayloadTooBig, ProtocolError } from "./Errors.js"
import type { Extension } from "./extensions/Extension.js"
import { mask as maskPayload } from "./internal/mask.js"
import * as Result from "./internal/result.js"
import { isValidUtf8 } from "./Utf8.js"

// ---------------------------------------------------------------------------
// Opcodes and close codes
// ---------------------------------------------------------------------------

/**
 * Frame opcodes (RFC 6455 §5.2, §11.8).
 * @since 0.1.0
 * @category models
 */
export const Opcode = {
  Continuation: 0x0,
  Text: 0x1,
  Binary: 0x2,
  Close: 0x8,
  Ping: 0x9,
  Pong: 0xa
} as const

/**
 * @since 0.1.0
 * @category models
 */
export type Opcode = (typeof Opcode)[keyof typeof Opcode]

/**
 * Opcodes of data frames (RFC 6455 §5.6).
 * @since 0.1.0
 * @category models
 */
export const DATA_OPCODES: ReadonlyArray<Opcode> = [Opcode.Continuation, Opcode.Text, Opcode.Binary]

/**
 * Opcodes of control frames (RFC 6455 §5.5).
 * @since 0.1.0
 * @category models
 */
export const CTRL_OPCODES: ReadonlyArray<Opcode> = [Opcode.Close, Opcode.Ping, Opcode.Pong]

/**
 * Close codes (RFC 6455 §7.4.1 and the IANA registry).
 * 1005, 1006 and 1015 are reserved for local use and never sent on the wire.
 * @since 0.1.0
 * @category models
 */
export const CloseCode = {
  NormalClosure: 1000,
  GoingAway: 1001,
  ProtocolError: 1002,
  UnsupportedData: 1003,
  NoStatusRcvd: 1005,
  AbnormalClosure: 1006,
  InvalidData: 1007,
  PolicyViolation: 1008,
  MessageTooBig: 1009,
  MandatoryExtension: 1010,
  InternalError: 1011,
  ServiceRestart: 1012,
  TryAgainLater: 1013,
  BadGateway: 1014,
  TlsHandshake: 1015
} as const

/**
 * @since 0.1.0
 * @category models
 */
export type CloseCode = (typeof CloseCode)[keyof typeof CloseCode]

/**
 * Maximum payload length of a control frame (RFC 6455 §5.5).
 * @since 0.1.0
 * @category constants
 */
export const MAX_CONTROL_PAYLOAD = 125

/**
 * Maximum length in bytes of a close reason: a control payload minus the 2-byte code (RFC 6455 §5.5.1).
 * @since 0.1.0
 * @category constants
 */
export const MAX_CLOSE_REASON_BYTES = MAX_CONTROL_PAYLOAD - 2

// ---------------------------------------------------------------------------
// Frame
// ---------------------------------------------------------------------------

const EMPTY = new Uint8Array(0)

const isKnownOpcode = (opcode: number): boolean =>
  opcode <= Opcode.Binary || (opcode >= Opcode.Close && opcode <= Opcode.Pong)

/**
 * The fields of a frame by name, for {@link Frame.make}.
 * @since 0.4.0
 * @category models
 */
export interface FrameFields {
  readonly fin?: boolean | undefined
  readonly opcode: Opcode
  readonly data: Uint8Array
  readonly rsv1?: boolean | undefined
  readonly rsv2?: boolean | undefined
  readonly rsv3?: boolean | undefined
}

/**
 * A WebSocket frame. The MASK bit, payload length and masking key are handled on the fly by the
 * parser and `serializeFrame`, so only these fields are needed.
 *
 * A plain class with a fixed shape: frames are created per message on the hot path. The
 * constructor takes `(opcode, data, fin = true, ...)`; the seeds' `Frame(fin, opcode, data)`
 * order is {@link Frame.make}`({ fin, opcode, data })`, with named fields.
 * @since 0.1.0
 * @category models
 */
export class Frame {
  /**
   * A frame from named fields (`fin` defaults to `true`, the reserved bits to `false`).
   * @since 0.4.0
   */
  static make(fields: FrameFields): Frame {
    return new Frame(
      fields.opcode,
      fields.data,
      fields.fin ?? true,
      fields.rsv1 ?? false,
      fields.rsv2 ?? false,
      fields.rsv3 ?? false
    )
  }

  constructor(
    readonly opcode: Opcode,
    readonly data: Uint8Array,
    readonly fin: boolean = true,
    readonly rsv1: boolean = false,
    readonly rsv2: boolean = false,
    readonly rsv3: boolean = false
  ) {}

  /**
   * Checks that the reserved bits are clear, that the opcode is defined, and that a control frame
   * is final and at most 125 bytes (RFC 6455 §5.2, §5.5). Call it after extensions decoded the
   * frame, since an extension may use a reserved bit (RFC 6455 §5.8; RFC 7692 uses RSV1).
   */
  check(): Result.Result<Frame, ProtocolError> {
    if (!isKnownOpcode(this.opcode)) return Result.fail(new ProtocolError({ detail: `invalid opcode: ${this.opcode}` }))
    if (this.rsv1 || this.rsv2 || this.rsv3)
      return Result.fail(new ProtocolError({ detail: "reserved bits must be 0" }))
    if (this.opcode >= Opcode.Close) {
      if (this.data.length > MAX_CONTROL_PAYLOAD)
        return Result.fail(new ProtocolError({ detail: "control frame too long" }))
      if (!this.fin) return Result.fail(new ProtocolError({ detail: "fragmented control frame" }))
    }
    return Result.succeed(this)
  }

  /** Human-readable form in Python's format (`TEXT 'hello' [5 bytes]`), as debug logs show frames. */
  toString(): string {
    return formatFrame(this)
  }
}

const OPCODE_NAMES: Record<number, string> = { 0: "CONT", 1: "TEXT", 2: "BINARY", 8: "CLOSE", 9: "PING", 10: "PONG" }

const fatalUtf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true })

/** Python's `repr` of a string, without the quotes: escapes backslashes, the quote and control characters. */
const reprBody = (text: string, quote: string): string => {
  let out = ""
  for (const char of text) {
    const code = char.codePointAt(0)!
    if (char === "\\" || char === quote) out += `\\${char}`
    else if (char === "\n") out += "\\n"
    else if (char === "\r") out += "\\r"
    else if (char === "\t") out += "\\t"
    else if (code < 0x20 || (code >= 0x7f && code < 0xa0)) out += `\\x${code.toString(16).padStart(2, "0")}`
    else out += char
  }
  return out
}

/**
 * Python's `repr` of a text payload, elided to 75 characters as Python shows it: single quotes
 * unless the text holds one and no double quote. Only the ends of a long payload are decoded (its
 * first 48 characters take at most 192 bytes, its last 24 at most 96).
 */
const reprText = (data: Uint8Array): string => {
  const buffer = Buffer.from(data.buffer, data.byteOffset, data.byteLength)
  const long = data.byteLength > 300
  const quote = buffer.includes(0x27) && !buffer.includes(0x22) ? '"' : "'"
  if (!long) return elide(quote + reprBody(buffer.toString("utf8"), quote) + quote)
  const head = quote + reprBody(buffer.toString("utf8", 0, 200), quote)
  const tail = reprBody(buffer.toString("utf8", data.byteLength - 100), quote) + quote
  return `${head.slice(0, 48)}...${tail.slice(-24)}`
}

const elide = (shown: string): string => (shown.length > 75 ? `${shown.slice(0, 48)}...${shown.slice(-24)}` : shown)

/** At most the first 16 and the last 8 bytes in hex, as Python shows binary payloads. */
const hexPreview = (data: Uint8Array): string => {
  let bytes = data
  if (bytes.byteLength > 25) {
    bytes = new Uint8Array(26)
    bytes.set(data.subarray(0, 16), 0)
    bytes.set(data.subarray(data.byteLength - 8), 18)
  }
  return Array.from(bytes, (byte) => byte.toString(16).padStart(2, "0")).join(" ")
}

const formatClose = (data: Uint8Array): string => {
  const parsed = parseClose(data)
  if (Result.isFailure(parsed)) return hexPreview(data)
  const { code, reason } = Result.successOf(parsed)
  const text = `${code} (${closeCodeName(code)})`
  return reason === "" ? text : `${text} ${reason}`
}

/**
 * Formats a frame as Python `websockets` logs it: opcode, payload (text quoted, binary in hex, long
 * payloads elided in the middle) and metadata, e.g. `TEXT 'hello' [5 bytes]` or
 * `CLOSE 1000 (OK) [2 bytes]`.
 * @since 0.3.0
 * @category utils
 */
export const formatFrame = (frame: Frame): string => {
  const data = frame.data
  let coding: string | undefined
  let shown: string
  if (frame.opcode === Opcode.Text) {
    shown = reprText(data)
  } else if (frame.opcode === Opcode.Binary) {
    shown = hexPreview(data)
  } else if (frame.opcode === Opcode.Close) {
    shown = formatClose(data)
  } else if (data.byteLength > 0) {
    // A continuation may hold text or bytes, pings and pongs often hold text: try text first.
    try {
      fatalUtf8.decode(data)
      shown = reprText(data)
      coding = "text"
    } catch {
      shown = hexPreview(data)
      coding = "binary"
    }
  } else {
    shown = "''"
  }
  shown = elide(shown)
  const length = `${data.byteLength} byte${data.byteLength === 1 ? "" : "s"}`
  const metadata = [coding, length, frame.fin ? undefined : "continued"].filter((part) => part !== undefined)
  return `${OPCODE_NAMES[frame.opcode] ?? frame.opcode} ${shown} [${metadata.join(", ")}]`
}

// ---------------------------------------------------------------------------
// Close
// ---------------------------------------------------------------------------

/**
 * Whether `code` may appear in a close frame on the wire (RFC 6455 §7.4.1, §7.4.2): the defined
 * codes except 1004 (reserved) and 1005/1006/1015 (local only), and the 3000-4999 range for
 * libraries, frameworks and applications.
 * @since 0.1.0
 * @category close
 */
export const isValidCloseCode = (code: number): boolean =>
  Number.isInteger(code) &&
  ((code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014) || (code >= 3000 && code <= 4999))

/**
 * The payload of a close frame: a close code and a reason.
 * @since 0.1.0
 * @category close
 */
export class Close {
  constructor(
    readonly code: number,
    readonly reason: string
  ) {}
}

// BOM must survive: a reason starting with U+FEFF is valid and is not a byte order mark here.
const utf8Decoder = new TextDecoder("utf-8", { ignoreBOM: true })

/**
 * Parses the payload of a close frame (RFC 6455 §5.5.1). An empty payload means "no status code"
 * (1005, RFC 6455 §7.1.5). The reason is validated before the code, as in Python.
 * @since 0.1.0
 * @category close
 */
export const parseClose = (data: Uint8Array): Result.Result<Close, ProtocolError | InvalidUtf8> => {
  const length = data.length
  if (length === 0) return Result.succeed(new Close(CloseCode.NoStatusRcvd, ""))
  if (length === 1) return Result.fail(new ProtocolError({ detail: "close frame too short" }))
  const code = (data[0]! << 8) | data[1]!
  const reasonBytes = data.subarray(2)
  if (!isValidUtf8(reasonBytes)) return Result.fail(new InvalidUtf8({ detail: "invalid UTF-8 in close reason" }))
  if (!isValidCloseCode(code)) return Result.fail(new ProtocolError({ detail: `invalid status code ${code}` }))
  return Result.succeed(new Close(code, length === 2 ? "" : utf8Decoder.decode(reasonBytes)))
}

/**
 * Serializes the payload of a close frame. Code 1005 ("no status code") becomes an empty payload
 * (RFC 6455 §7.1.5). Does not validate: use `checkClose` before sending.
 * @since 0.1.0
 * @category close
 */
export const serializeClose = (close: Close): Uint8Array => {
  if (close.code === CloseCode.NoStatusRcvd) return EMPTY
  const reasonLength = close.reason === "" ? 0 : Buffer.byteLength(close.reason, "utf8")
  const out = Buffer.allocUnsafe(2 + reasonLength)
  out[0] = (close.code >>> 8) & 0xff
  out[1] = close.code & 0xff
  if (reasonLength > 0) out.write(close.reason, 2, "utf8")
  return out
}

/**
 * Validates a close code and reason we are about to send: the code must be valid on the wire and
 * the UTF-8 reason at most 123 bytes so that the close frame fits in 125 bytes (RFC 6455 §5.5).
 * @since 0.1.0
 * @category close
 */
export const checkClose = (code: number, reason: string): Result.Result<Close, ProtocolError> => {
  if (!isValidCloseCode(code)) return Result.fail(new ProtocolError({ detail: `invalid status code ${code}` }))
  if (reason.length > MAX_CLOSE_REASON_BYTES / 3 && Buffer.byteLength(reason, "utf8") > MAX_CLOSE_REASON_BYTES)
    return Result.fail(new ProtocolError({ detail: "close reason too long" }))
  return Result.succeed(new Close(code, reason))
}

// ---------------------------------------------------------------------------
// Data
// ---------------------------------------------------------------------------

/**
 * Converts a message to an opcode and a payload: a string becomes a Text frame encoded in UTF-8,
 * bytes become a Binary frame (not copied). Designed for data frames.
 * @since 0.1.0
 * @category data
 */
export const prepareData = (data: string | Uint8Array): readonly [Opcode, Uint8Array] =>
  typeof data === "string" ? [Opcode.Text, Buffer.from(data, "utf8")] : [Opcode.Binary, data]

/**
 * Converts a string (UTF-8) or bytes (as is, not copied) to a payload. Designed for ping and pong
 * frames.
 * @since 0.1.0
 * @category data
 */
export const encodeData = (data: string | Uint8Array): Uint8Array =>
  typeof data === "string" ? Buffer.from(data, "utf8") : data

// ---------------------------------------------------------------------------
// Serialization
// ---------------------------------------------------------------------------

/** Lengths up to this fit in the 7-bit length field (RFC 6455 §5.2). */
const MAX_7BIT_LENGTH = 125
/** Lengths up to this fit in the 16-bit extended length field. */
const MAX_16BIT_LENGTH = 0xffff
const LENGTH_16 = 126
const LENGTH_64 = 127

/** Size of the pool of random bytes mask keys are taken from (as `ws`: one syscall per 2048 keys). */
const RANDOM_POOL_SIZE = 8 * 1024
let randomPool: Uint8Array | undefined
let randomPoolOffset = RANDOM_POOL_SIZE

/** The key of the frame being masked, reused to avoid a view allocation per frame. */
const frameKey = new Uint8Array(4)

/** Takes a fresh mask key into `frameKey`. RFC 6455 §5.3: keys must be unpredictable. */
const nextRandomKey = (): void => {
  if (randomPoolOffset === RANDOM_POOL_SIZE) {
    if (randomPool === undefined) randomPool = new Uint8Array(RANDOM_POOL_SIZE)
    randomFillSync(randomPool, 0, RANDOM_POOL_SIZE)
    randomPoolOffset = 0
  }
  const pool = randomPool!
  frameKey[0] = pool[randomPoolOffset]!
  frameKey[1] = pool[randomPoolOffset + 1]!
  frameKey[2] = pool[randomPoolOffset + 2]!
  frameKey[3] = pool[randomPoolOffset + 3]!
  randomPoolOffset += 4
}

/** Header length for a payload of `length` bytes, including the mask key when masked. */
const headerLength = (length: number, masked: boolean): number =>
  (length <= MAX_7BIT_LENGTH ? 2 : length <= MAX_16BIT_LENGTH ? 4 : 10) + (masked ? 4 : 0)

/**
 * Writes the frame header into `out` at 0 and returns the offset of the mask key (when masked) or
 * of the payload.
 */
const writeHeader = (out: Uint8Array, frame: Frame, length: number, masked: boolean): number => {
  out[0] =
    (frame.fin ? 0x80 : 0) | (frame.rsv1 ? 0x40 : 0) | (frame.rsv2 ? 0x20 : 0) | (frame.rsv3 ? 0x10 : 0) | frame.opcode
  const maskBit = masked ? 0x80 : 0
  if (length <= MAX_7BIT_LENGTH) {
    out[1] = maskBit | length
    return 2
  }
  if (length <= MAX_16BIT_LENGTH) {
    out[1] = maskBit | LENGTH_16
    out[2] = length >>> 8
    out[3] = length & 0xff
    return 4
  }
  out[1] = maskBit | LENGTH_64
  // Payloads are < 2^53 bytes, so the high word is exact; the MSB stays 0 (RFC 6455 §5.2).
  const high = Math.floor(length / 0x100000000)
  const low = length >>> 0
  out[2] = high >>> 24
  out[3] = (high >>> 16) & 0xff
  out[4] = (high >>> 8) & 0xff
  out[5] = high & 0xff
  out[6] = low >>> 24
  out[7] = (low >>> 16) & 0xff
  out[8] = (low >>> 8) & 0xff
  out[9] = low & 0xff
  return 10
}

/** Unmasked payloads up to this size are copied behind their header instead of written beside it. */
const MERGE_LIMIT = 8192

/**
 * Serializes a frame (RFC 6455 §5.2) as chunks to write in order, so a writer can send the caller's
 * payload without copying it:
 *
 * - unmasked: `[header, payload]`, the payload being the caller's buffer itself; or `[frame]`, one
 *   new buffer with header and payload, for payloads up to 8 KiB.
 * - masked: `[frame]`, one new buffer with the header, a 4-byte key from a pooled CSPRNG and the
 *   masked payload; the caller's data is never modified.
 *
 * `maskKey` (4 bytes) replaces the random key, for deterministic tests.
 *
 * With a boolean `mask` (the hot path) the frame is neither checked nor encoded by extensions.
 * With options, as the seeds' `Frame.serialize(mask=, extensions=)`: the frame is checked
 * (`Frame.check`, before the extensions, which may set reserved bits), then encoded by each of
 * `extensions` in order, and the result is a `ProtocolError` or the chunks.
 * @since 0.1.0
 * @category serialization
 */
export function serializeFrame(frame: Frame, mask: boolean, maskKey?: Uint8Array): ReadonlyArray<Uint8Array>
export function serializeFrame(
  frame: Frame,
  options: SerializeFrameOptions
): Result.Result<ReadonlyArray<Uint8Array>, ProtocolError>
export function serializeFrame(
  frame: Frame,
  mask: boolean | SerializeFrameOptions,
  maskKey?: Uint8Array
): ReadonlyArray<Uint8Array> | Result.Result<ReadonlyArray<Uint8Array>, ProtocolError> {
  if (typeof mask === "boolean") return serializeUnchecked(frame, mask, maskKey)
  const checked = frame.check()
  if (Result.isFailure(checked)) return Result.fail(Result.failureOf(checked))
  let encoded = frame
  const extensions = mask.extensions ?? []
  for (let i = 0; i < extensions.length; i++) encoded = extensions[i]!.encode(encoded)
  return Result.succeed(serializeUnchecked(encoded, mask.mask, mask.maskKey))
}

/**
 * Options of the checked form of {@link serializeFrame} (the seeds' `Frame.serialize`).
 * @since 0.4.0
 * @category serialization
 */
export interface SerializeFrameOptions {
  /** Whether to mask the frame: `true` on the client side (RFC 6455 §5.3). */
  readonly mask: boolean
  /** Extensions that encode the frame, applied in order. */
  readonly extensions?: ReadonlyArray<Extension> | undefined
  /** The 4-byte mask key instead of a random one, for deterministic tests. */
  readonly maskKey?: Uint8Array | undefined
}

const serializeUnchecked = (frame: Frame, mask: boolean, maskKey?: Uint8Array): ReadonlyArray<Uint8Array> => {
  const data = frame.data
  const length = data.length
  const headerLen = headerLength(length, mask)
  if (!mask) {
    if (length <= MERGE_LIMIT) {
      // One buffer: a small copy costs less than writing two buffers (`writev`), and the socket
      // then writes the frame with one plain `write`.
      const out = Buffer.allocUnsafe(headerLen + length)
      writeHeader(out, frame, length, false)
      if (length > 0) out.set(data, headerLen)
      return [out]
    }
    const header = Buffer.allocUnsafe(headerLen)
    writeHeader(header, frame, length, false)
    return [header, data]
  }
  const out = Buffer.allocUnsafe(headerLen + length)
  const keyOffset = writeHeader(out, frame, length, true)
  if (maskKey === undefined) nextRandomKey()
  else {
    frameKey[0] = maskKey[0]!
    frameKey[1] = maskKey[1]!
    frameKey[2] = maskKey[2]!
    frameKey[3] = maskKey[3]!
  }
  out[keyOffset] = frameKey[0]!
  out[keyOffset + 1] = frameKey[1]!
  out[keyOffset + 2] = frameKey[2]!
  out[keyOffset + 3] = frameKey[3]!
  if (length > 0) maskPayload(data, frameKey, out, headerLen, length)
  return [out]
}

/**
 * Writes a control frame (payload of at most 125 bytes) into `out` at `offset`, masked with a fresh
 * key when `mask`; returns the offset after it (`offset` + 2 + payload, + 4 when masked). Lets a
 * connection pack the pongs of one read into one buffer instead of a buffer and a write each.
 * @internal
 */
export const serializeControlFrameInto = (
  opcode: Opcode,
  data: Uint8Array,
  mask: boolean,
  out: Uint8Array,
  offset: number
): number => {
  const length = data.length
  out[offset] = 0x80 | opcode
  out[offset + 1] = (mask ? 0x80 : 0) | length
  if (!mask) {
    if (length > 0) out.set(data, offset + 2)
    return offset + 2 + length
  }
  nextRandomKey()
  out[offset + 2] = frameKey[0]!
  out[offset + 3] = frameKey[1]!
  out[offset + 4] = frameKey[2]!
  out[offset + 5] = frameKey[3]!
  if (length > 0) maskPayload(data, frameKey, out, offset + 6, length)
  return offset + 6 + length
}

/**
 * Writes a control frame whose payload is `source[start, end)` (at most 125 bytes), still masked
 * with `sourceKey` (the peer's key, first byte highest; 0 for none), into `out` at `offset`, as
 * {@link serializeControlFrameInto} does: unmasking, and masking with a fresh key when `mask`, in
 * one pass, without a view of the payload. A pong answered straight from the read that brought its
 * ping costs no object.
 * @internal
 */
export const serializeControlFrameRangeInto = (
  opcode: Opcode,
  source: Uint8Array,
  start: number,
  end: number,
  sourceKey: number,
  mask: boolean,
  out: Uint8Array,
  offset: number
): number => {
  const length = end - start
  out[offset] = 0x80 | opcode
  out[offset + 1] = (mask ? 0x80 : 0) | length
  let at = offset + 2
  let key = sourceKey
  if (mask) {
    nextRandomKey()
    out[at] = frameKey[0]!
    out[at + 1] = frameKey[1]!
    out[at + 2] = frameKey[2]!
    out[at + 3] = frameKey[3]!
    at += 4
    key = (key ^ ((frameKey[0]! << 24) | (frameKey[1]! << 16) | (frameKey[2]! << 8) | frameKey[3]!)) >>> 0
  }
  if (key === 0) {
    for (let i = 0; i < length; i++) out[at + i] = source[start + i]!
    return at + length
  }
  const k0 = key >>> 24
  const k1 = (key >>> 16) & 0xff
  const k2 = (key >>> 8) & 0xff
  const k3 = key & 0xff
  let i = 0
  for (; i + 4 <= length; i += 4) {
    out[at + i] = source[start + i]! ^ k0
    out[at + i + 1] = source[start + i + 1]! ^ k1
    out[at + i + 2] = source[start + i + 2]! ^ k2
    out[at + i + 3] = source[start + i + 3]! ^ k3
  }
  if (i < length) out[at + i] = source[start + i]! ^ k0
  if (i + 1 < length) out[at + i + 1] = source[start + i + 1]! ^ k1
  if (i + 2 < length) out[at + i + 2] = source[start + i + 2]! ^ k2
  return at + length
}

/**
 * Serializes a frame into a single buffer (tests, small frames). See `serializeFrame`.
 * @since 0.1.0
 * @category serialization
 */
export const serializeFrameToBytes = (frame: Frame, mask: boolean, maskKey?: Uint8Array): Uint8Array => {
  const chunks = serializeUnchecked(frame, mask, maskKey)
  if (chunks.length === 1) return chunks[0]!
  return Buffer.concat(chunks)
}

// ---------------------------------------------------------------------------
// Parsing one frame
// ---------------------------------------------------------------------------

/**
 * Options of {@link parseFrame}, as the seeds' `Frame.read(reader, mask=, max_size=, extensions=)`.
 * @since 0.4.0
 * @category parsing
 */
export interface ParseFrameOptions {
  /** Whether the frame must be masked: `true` when reading on the server side (RFC 6455 §5.1). */
  readonly mask: boolean
  /** Maximum payload length in bytes, checked as soon as the length is known; `null`: no limit. */
  readonly maxSize?: number | null | undefined
  /** Extensions that decode the frame, applied in reverse order (RFC 6455 §9). */
  readonly extensions?: ReadonlyArray<Extension> | undefined
}

/**
 * A frame read by {@link parseFrame} and the number of bytes it took.
 * @since 0.4.0
 * @category parsing
 */
export interface ParsedFrame {
  readonly frame: Frame
  readonly length: number
}

/**
 * Reads one frame from the start of `bytes`, without I/O: the seeds' `Frame.read`. Returns
 * `undefined` when `bytes` does not hold a whole frame yet (read more and call again), the frame
 * and its length on the wire otherwise. Fails with `PayloadTooBig` when the payload length is over
 * `maxSize` (before the payload arrived), and with `ProtocolError` for a wrong mask bit, a
 * 64-bit length with its top bit set, or a frame that `Frame.check` refuses once the extensions
 * decoded it. The payload is copied (and unmasked); `bytes` is not modified.
 *
 * The connection does not use it: it parses frames incrementally as bytes arrive
 * (`internal/frameParser.ts`), with checks that depend on the sequence of frames.
 * @since 0.4.0
 * @category parsing
 */
export const parseFrame = (
  bytes: Uint8Array,
  options: ParseFrameOptions
): Result.Result<ParsedFrame | undefined, ProtocolError | PayloadTooBig> => {
  if (bytes.length < 2) return Result.succeed(undefined)
  const head1 = bytes[0]!
  const head2 = bytes[1]!
  const masked = (head2 & 0x80) !== 0
  if (masked !== options.mask) return Result.fail(new ProtocolError({ detail: "incorrect masking" }))
  let length = head2 & 0x7f
  let offset = 2
  if (length === LENGTH_16) {
    if (bytes.length < 4) return Result.succeed(undefined)
    length = (bytes[2]! << 8) | bytes[3]!
    offset = 4
  } else if (length === LENGTH_64) {
    if (bytes.length < 10) return Result.succeed(undefined)
    if (bytes[2]! & 0x80) return Result.fail(new ProtocolError({ detail: "invalid payload length" }))
    const high = ((bytes[2]! << 24) | (bytes[3]! << 16) | (bytes[4]! << 8) | bytes[5]!) >>> 0
    const low = ((bytes[6]! << 24) | (bytes[7]! << 16) | (bytes[8]! << 8) | bytes[9]!) >>> 0
    length = high * 0x100000000 + low
    offset = 10
  }
  const maxSize = options.maxSize ?? null
  if (maxSize !== null && length > maxSize) return Result.fail(new PayloadTooBig({ size: length, maxSize }))
  const keyOffset = offset
  if (masked) offset += 4
  if (bytes.length < offset + length) return Result.succeed(undefined)
  const data = Buffer.allocUnsafe(length)
  if (masked) {
    const key = bytes.subarray(keyOffset, keyOffset + 4)
    for (let i = 0; i < length; i++) data[i] = bytes[offset + i]! ^ key[i & 3]!
  } else {
    data.set(bytes.subarray(offset, offset + length))
  }
  let frame = new Frame(
    (head1 & 0x0f) as Opcode,
    data,
    (head1 & 0x80) !== 0,
    (head1 & 0x40) !== 0,
    (head1 & 0x20) !== 0,
    (head1 & 0x10) !== 0
  )
  const extensions = options.extensions ?? []
  for (let i = extensions.length - 1; i >= 0; i--) {
    const decoded = extensions[i]!.decode(frame, maxSize)
    if (Result.isFailure(decoded)) return Result.fail(Result.failureOf(decoded))
    frame = Result.successOf(decoded)
  }
  const checked = frame.check()
  if (Result.isFailure(checked)) return Result.fail(Result.failureOf(checked))
  return Result.succeed({ frame, length: offset + length })
}
