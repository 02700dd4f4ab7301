/**
 * Incremental frame parser (RFC 6455 §5.2) for the sans-I/O connection.
 *
 * Bytes are pushed as they arrive from the socket and kept in a chunk list with a byte count,
 * like the receiver of `ws`: nothing is concatenated on push. `next()` walks a small integer
 * state machine and returns a frame once its payload is complete. A payload inside one chunk is
 * returned as a `subarray` view and unmasked in place (the chunk came from the socket, it is ours);
 * only a payload spanning chunks is copied, once.
 *
 * Cheap header checks run as soon as the header is known, before any payload is buffered, so a
 * peer cannot make us buffer a frame we will reject: opcode, MASK bit vs side, control frame
 * rules, length encoding, size limit. With `messageChecks` (what a connection uses) the parser also
 * follows the messages the frames make up, so that it can fail at the header on what only the
 * message tells: reserved bits no negotiated extension claims (`rsvAllowed`), a continuation frame
 * out of place, a size over what remains of the message's budget; and it validates the UTF-8 of
 * text messages and close reasons as their bytes arrive, so that an invalid byte fails the
 * connection even while the rest of a large frame is still on its way (RFC 6455 §8.1).
 *
 * @since 0.1.0
 */
import { Buffer, constants } from "node:buffer"
import { InvalidUtf8, PayloadTooBig, ProtocolError } from "../Errors.js"
import type { ArrivingFrameDecoder } from "../extensions/Extension.js"
import { Frame, MAX_CONTROL_PAYLOAD, type Opcode } from "../Frames.js"
import { Utf8Validator } from "../Utf8.js"
import { mask, unmask } from "./mask.js"
import * as Result from "./result.js"

// Parser states.
const HEADER = 0
const LENGTH_16 = 1
const LENGTH_64 = 2
const MASK_KEY = 3
const PAYLOAD = 4
const DEAD = 5

/**
 * Largest payload we can hold in one buffer (Node 20: 4 GiB). A longer frame is refused even with
 * no size limit, since allocating it would throw.
 */
const MAX_BUFFER_LENGTH = constants.MAX_LENGTH

/** Largest integer a double holds exactly; 64-bit lengths above it are refused (as `ws` does). */
const MAX_SAFE_HIGH_WORD = 0x1fffff

const EMPTY = new Uint8Array(0)

/**
 * Payload bytes buffered (the frame still incomplete) from which the payload is gathered in its own
 * buffer as it arrives: one Node read (64 KiB).
 */
const ASSEMBLE_FROM = 65_536

/** Largest tail of a read chunk copied so that the chunk can be released (`keepRemainderOnly`). */
const KEEP_COPY_MAX = 4096

/** Errors of the parser; after one it is dead. */
export type FrameParserError = ProtocolError | PayloadTooBig | InvalidUtf8

/** Reserved bits of the first header byte (RFC 6455 §5.2). */
const RSV_BITS = 0x70

/** The 4 bytes of a mask key for the masking functions, filled just before each (synchronous) call. */
const keyBytes = new Uint8Array(4)

/**
 * The mask key (kept as a 32-bit number, first byte highest: no array per parser) as bytes for
 * payload bytes starting at `position` (rotated when it is not a multiple of 4).
 */
const keyAt = (key: number, position: number): Uint8Array => {
  const shift = (position & 3) << 3
  const rotated = shift === 0 ? key : (key << shift) | (key >>> (32 - shift))
  keyBytes[0] = rotated >>> 24
  keyBytes[1] = rotated >>> 16
  keyBytes[2] = rotated >>> 8
  keyBytes[3] = rotated
  return keyBytes
}

/** Unmasks `data` in place, its first byte being at `position` in the payload. */
const unmaskAt = (data: Uint8Array, key: number, position: number): void => {
  if (key !== 0) unmask(data, keyAt(key, position))
}

/** The 4 bytes at `at` of `chunk` as a 32-bit mask key, first byte highest (as `readUint32` reads them). */
const keyIn = (chunk: Uint8Array, at: number): number =>
  ((chunk[at]! << 24) | (chunk[at + 1]! << 16) | (chunk[at + 2]! << 8) | chunk[at + 3]!) >>> 0

/** Unmasks `data[start, end)` in place, `start` being the payload's first byte (a small payload: no view). */
const unmaskRange = (data: Uint8Array, start: number, end: number, key: number): void => {
  for (let i = start; i < end; i++) data[i] = data[i]! ^ ((key >>> ((3 - ((i - start) & 3)) << 3)) & 0xff)
}

/** Writes `data` unmasked into `out` at `position`, which is also its position in the payload. */
const maskAt = (data: Uint8Array, key: number, out: Uint8Array, position: number): void =>
  mask(data, keyAt(key, position), out, position, data.length)

/**
 * Answers a ping in place (see `FrameParser.pingAnswerer`): its payload is `source[start, end)`,
 * still masked with `key` (first byte highest, 0 for none), readable during the call only.
 * @internal
 */
export interface PingAnswerer {
  answerPingAt(source: Uint8Array, start: number, end: number, key: number): void
}

/**
 * Takes the small fragments of a message in progress where they lie (see
 * `FrameParser.fragmentSink`): `source[start, end)` is the payload of one, unmasked and validated,
 * readable during the call only.
 * @internal
 */
export interface FragmentSink {
  appendFragmentAt(source: Uint8Array, start: number, end: number): void
}

/**
 * Incremental parser of the frames of one direction of a connection.
 * @since 0.1.0
 * @category parsing
 */
export class FrameParser {
  /**
   * Limit for the payload of the next data frame (null = none); a connection sets it to what
   * remains of the message's budget. Control frames have their own limit (125 bytes).
   */
  maxSize: number | null = null
  /**
   * Limit for the payload of the next data frame of a message an extension transformed (reserved
   * bits set on its first frame: compressed), whose size on the wire differs from the message's,
   * when the frame is buffered whole before it is decoded. A frame decoded as it arrives (see
   * `decodeArriving`) is not limited here: its decoded bytes are counted as they come out, and its
   * wire bytes are released read by read. `undefined`: same as `maxSize`.
   */
  maxTransformedSize: number | null | undefined = undefined
  /**
   * Reserved bits that negotiated extensions may set on the first frame of a data message; any
   * other reserved bit, and any on a control or continuation frame, fails at the header (RFC 6455
   * §5.2, RFC 7692 §6.1). `null`: no check here (an extension that did not declare its bits).
   * Only with `messageChecks`.
   */
  rsvAllowed: number | null = null
  /**
   * Follow messages: check frame order (RFC 6455 §5.4) and validate UTF-8 as bytes arrive. A bare
   * frame parser (tests, tools) leaves it off and gets every well-formed frame.
   */
  messageChecks = false
  /** Whether the last data frame returned had its UTF-8 validated here (text, not transformed). */
  validated = false
  /**
   * Decodes a large transformed (compressed) data frame while it arrives: returns a decoder for the
   * frame, or `undefined` to leave it whole (see `Extension.decodeArriving`). Asked once
   * {@link ASSEMBLE_FROM} bytes of an incomplete payload arrived.
   */
  decodeArriving:
    | ((opcode: number, fin: boolean, rsv1: boolean, length: number) => ArrivingFrameDecoder | undefined)
    | undefined = undefined
  /** Whether the last frame returned was decoded here: extensions must not decode it again. */
  decoded = false
  /**
   * Answers pings where they lie: a ping whose payload is within one read is handed to it as it
   * lies, and no frame is returned for it (a peer flooding pings then makes no object per
   * ping). `undefined`: pings are frames like any other.
   * @internal
   */
  pingAnswerer: PingAnswerer | undefined = undefined
  /**
   * Takes the non-final continuation frames of a message in progress that was not transformed
   * (with `messageChecks`), when each lies whole in one read and carries at most 125 bytes: their
   * payloads are handed to it and no frame is returned for them (a peer sending a message in many
   * tiny fragments then makes no object per fragment). `undefined`: every fragment is a frame.
   * @internal
   */
  fragmentSink: FragmentSink | undefined = undefined

  private readonly mask: boolean
  private chunks: Array<Uint8Array> = []
  /** Index in `chunks` of the first chunk with unread bytes. */
  private head = 0
  /** Offset of the first unread byte in `chunks[head]`. */
  private offset = 0
  private buffered = 0

  private state = HEADER
  private error: FrameParserError | undefined = undefined
  // Header of the frame being parsed.
  private fin = false
  private rsv1 = false
  private rsv2 = false
  private rsv3 = false
  private opcode = 0
  private masked = false
  private length = 0
  /** The mask key, first byte highest (0 when not masked). */
  private key = 0
  private transformed = false
  // The message in progress (with `messageChecks`): its opcode (0: none) and whether an extension
  // transformed it.
  private messageOpcode = 0
  private messageTransformed = false
  /** Validator of the payload being received, when it must be UTF-8; from `validateFrom` on. */
  private validator: Utf8Validator | undefined = undefined
  private validateFrom = 0
  // Made when a text frame or a close reason first needs one.
  private _textUtf8: Utf8Validator | undefined = undefined
  private _closeUtf8: Utf8Validator | undefined = undefined
  private get textUtf8(): Utf8Validator {
    this._textUtf8 ??= new Utf8Validator()
    return this._textUtf8
  }
  private get closeUtf8(): Utf8Validator {
    this._closeUtf8 ??= new Utf8Validator()
    return this._closeUtf8
  }
  /** The buffer a large payload is gathered in as it arrives (see `assemble`), and its bytes so far. */
  private assembly: Uint8Array | undefined = undefined
  private assembled = 0
  /** The decoder of the payload arriving (see `decodeArriving`), and the payload bytes given to it. */
  private decoding: ArrivingFrameDecoder | undefined = undefined
  private decodedBytes = 0
  /** Payload bytes already unmasked (and validated) while the frame was still arriving. */
  private checked = 0
  /** Position in `chunks` of the first byte not yet checked, while waiting for a payload. */
  private checkIndex = 0
  private checkOffset = 0

  constructor(options: { readonly mask: boolean }) {
    this.mask = options.mask
  }

  /** The payload length on the wire of the last frame returned. */
  get frameLength(): number {
    return this.length
  }

  /** Bytes pushed and not consumed yet. */
  get bufferedBytes(): number {
    return this.buffered
  }

  /**
   * Whether bytes the parser keeps (a frame still arriving) are a view of the memory of `data`, the
   * chunk pushed last. Chunks are kept in the order they came, so what is left of the last one is
   * the last chunk: one comparison, where scanning every kept chunk made a frame arriving in many
   * small reads cost quadratic time.
   */
  refersTo(data: Uint8Array): boolean {
    const chunks = this.chunks
    return chunks.length > this.head && chunks[chunks.length - 1]!.buffer === data.buffer
  }

  /** Appends bytes received from the peer. The parser may modify them in place (unmasking). */
  push(chunk: Uint8Array): void {
    if (chunk.length === 0 || this.state === DEAD) return
    this.chunks.push(chunk)
    this.buffered += chunk.length
  }

  /**
   * Next complete frame, `undefined` if more bytes are needed, or an error. After an error the
   * parser is dead: it drops further bytes and returns the same error.
   */
  next(): Frame | undefined | FrameParserError {
    const result = this.parse()
    if (result === undefined && this.offset > 0) this.keepRemainderOnly()
    return result
  }

  /**
   * While the parser waits for the rest of a frame, the read chunk it started in stays referenced.
   * When only a small tail of a large chunk is left (a frame cut by the end of a read), the tail is
   * copied and the chunk released: kept across the wait (a peer that floods pings while we pause
   * reading waits long), a 64 KiB read would outlive young-generation collections and then only
   * be freed by a full one.
   */
  private keepRemainderOnly(): void {
    const head = this.head
    if (this.chunks.length - head !== 1) return
    const chunk = this.chunks[head]!
    const offset = this.offset
    const remainder = chunk.length - offset
    if (remainder > KEEP_COPY_MAX || remainder * 4 > chunk.buffer.byteLength) return
    this.chunks = [Buffer.from(chunk.subarray(offset))]
    this.head = 0
    this.offset = 0
    // The cursor of the bytes checked while waiting (see `checkArrived`) moves with them.
    if (this.checkIndex === head) this.checkOffset -= offset
    this.checkIndex -= head
  }

  private parse(): Frame | undefined | FrameParserError {
    for (;;) {
      switch (this.state) {
        case HEADER: {
          if (this.pingAnswerer !== undefined && this.answerPingsAhead()) break
          if (this.fragmentSink !== undefined && this.messageOpcode !== 0 && this.takeFragmentsAhead()) break
          if (this.buffered < 2) return undefined
          const b0 = this.readByte()
          const b1 = this.readByte()
          const opcode = b0 & 0x0f
          // RFC 6455 §5.2: 3-7 and 0xB-0xF are reserved for further (non-)control frames.
          if ((opcode > 0x2 && opcode < 0x8) || opcode > 0xa)
            return this.fail(new ProtocolError({ detail: "invalid opcode" }))
          const fin = (b0 & 0x80) !== 0
          const masked = (b1 & 0x80) !== 0
          // RFC 6455 §5.1: clients must mask every frame, servers must not mask any.
          if (masked !== this.mask) return this.fail(new ProtocolError({ detail: "incorrect masking" }))
          const length7 = b1 & 0x7f
          if (opcode >= 0x8) {
            // RFC 6455 §5.5: control frames are final and carry at most 125 bytes.
            if (!fin) return this.fail(new ProtocolError({ detail: "fragmented control frame" }))
            if (length7 > MAX_CONTROL_PAYLOAD) return this.fail(new ProtocolError({ detail: "control frame too long" }))
          }
          if (this.messageChecks) {
            const error = this.checkMessage(opcode, fin, b0 & RSV_BITS)
            if (error !== undefined) return this.fail(error)
          }
          this.fin = fin
          this.rsv1 = (b0 & 0x40) !== 0
          this.rsv2 = (b0 & 0x20) !== 0
          this.rsv3 = (b0 & 0x10) !== 0
          this.opcode = opcode
          this.masked = masked
          // Non-minimal length encodings are accepted, as by Python and `ws`.
          if (length7 === 126) this.state = LENGTH_16
          else if (length7 === 127) this.state = LENGTH_64
          else {
            const error = this.setLength(length7)
            if (error !== undefined) return error
          }
          break
        }
        case LENGTH_16: {
          if (this.buffered < 2) return undefined
          const high = this.readByte()
          const error = this.setLength((high << 8) | this.readByte())
          if (error !== undefined) return error
          break
        }
        case LENGTH_64: {
          if (this.buffered < 8) return undefined
          const high = this.readUint32()
          const low = this.readUint32()
          // RFC 6455 §5.2: the most significant bit of a 64-bit length must be 0.
          if (high > 0x7fffffff) return this.fail(new ProtocolError({ detail: "invalid payload length" }))
          const length = high * 0x100000000 + low
          if (high > MAX_SAFE_HIGH_WORD || length > MAX_BUFFER_LENGTH) {
            const limit = this.maxSize !== null && this.maxSize < MAX_BUFFER_LENGTH ? this.maxSize : MAX_BUFFER_LENGTH
            return this.fail(new PayloadTooBig({ size: length, maxSize: limit }))
          }
          const error = this.setLength(length)
          if (error !== undefined) return error
          break
        }
        case MASK_KEY: {
          if (this.buffered < 4) return undefined
          this.key = this.readUint32()
          this.startPayload()
          break
        }
        case PAYLOAD: {
          const length = this.length
          if (this.opcode === 0x9 && this.pingAnswerer !== undefined && this.answerPingInPlace(length)) break
          let decode = this.decoding !== undefined
          if (!decode && this.buffered < length && this.buffered >= ASSEMBLE_FROM && this.assembly === undefined) {
            const started = this.startDecoding()
            if (started instanceof PayloadTooBig) return this.fail(started)
            decode = started
          }
          if (decode) {
            // A large compressed payload: decoded read by read as it arrives.
            const error = this.decodeArrived()
            if (error !== undefined) return this.fail(error)
            if (this.decodedBytes < length) return undefined
            const decoding = this.decoding!
            this.decoding = undefined
            const decoded = decoding.end()
            if (Result.isFailure(decoded)) return this.fail(Result.failureOf(decoded))
            const frame = this.complete(Result.successOf(decoded), decoding.rsv1)
            this.decoded = true
            return frame
          }
          if (this.assembly !== undefined || (this.buffered < length && this.buffered >= ASSEMBLE_FROM)) {
            // A large payload arriving over several reads: gathered into its own buffer as it comes.
            if (!this.assemble()) return this.fail(invalidUtf8(this.opcode))
            if (this.assembled < length) return undefined
            const data = this.assembly!
            this.assembly = undefined
            return this.complete(data)
          }
          if (this.buffered < length) {
            if (this.validator !== undefined && this.buffered > this.checked && !this.checkArrived()) {
              return this.fail(invalidUtf8(this.opcode))
            }
            return undefined
          }
          const data = length === 0 ? EMPTY : this.take(length)
          const checked = this.checked
          if (this.masked && length > checked)
            unmaskAt(checked === 0 ? data : data.subarray(checked), this.key, checked)
          const validator = this.validator
          if (validator !== undefined) {
            const from = Math.max(checked, this.validateFrom)
            const final = this.opcode === 0x8 || this.fin
            if (!validator.push(from === 0 ? data : data.subarray(from), final))
              return this.fail(invalidUtf8(this.opcode))
          }
          if (this.fragmentSink !== undefined && this.isSmallPlainFragment(length)) {
            // A tiny fragment the header path took (cut by the end of a read): copied, as those
            // `takeFragmentsAhead` takes, so that no frame is a view of the read that completed it.
            this.fragmentSink.appendFragmentAt(data, 0, length)
            if (this.maxSize !== null) this.maxSize -= length
            this.state = HEADER
            break
          }
          return this.complete(data)
        }
        default:
          return this.error
      }
    }
  }

  /**
   * Answers the well-formed pings (final, no reserved bit, masked as this side expects) that lie
   * whole one after another at the start of the first buffered chunk, and consumes them; whether
   * there was one. A peer flooding pings is then answered by this small loop, not by `parse`:
   * optimizing the large function a flood makes hot cost several MiB of compiler memory.
   */
  private answerPingsAhead(): boolean {
    if (this.buffered === 0) return false
    const chunk = this.chunks[this.head]!
    const masked = this.mask
    const headerLength = masked ? 6 : 2
    const second = masked ? 0x80 : 0
    const answerer = this.pingAnswerer!
    const from = this.offset
    let at = from
    let key = 0
    let length = 0
    while (chunk.length - at >= headerLength && chunk[at] === 0x89) {
      const b1 = chunk[at + 1]!
      length = b1 & 0x7f
      if ((b1 & 0x80) !== second || length > MAX_CONTROL_PAYLOAD) break
      const start = at + headerLength
      if (start + length > chunk.length) break
      if (masked) key = keyIn(chunk, at + 2)
      if (length === 0) answerer.answerPingAt(EMPTY, 0, 0, 0)
      else answerer.answerPingAt(chunk, start, start + length, key)
      at = start + length
    }
    if (at === from) return false
    this.consumeTaken(chunk, from, at, 0x9, length, key, undefined)
    return true
  }

  /**
   * Consumes `chunk[from, at)`, frames a fast path took (`answerPingsAhead`, `takeFragmentsAhead`),
   * and leaves what the header path leaves after the last of them (see `checkMessage`): its opcode,
   * final only for a ping, no reserved bit, its length and key, and the validator of its payload.
   */
  private consumeTaken(
    chunk: Uint8Array,
    from: number,
    at: number,
    opcode: number,
    length: number,
    key: number,
    validator: Utf8Validator | undefined
  ): void {
    this.fin = opcode === 0x9
    this.rsv1 = this.rsv2 = this.rsv3 = false
    this.opcode = opcode
    this.masked = this.mask
    this.length = length
    this.key = key
    this.validator = validator
    this.validateFrom = 0
    this.transformed = false
    this.buffered -= at - from
    if (at === chunk.length) this.dropHead()
    else this.offset = at
  }

  /** Whether the frame whose payload was just taken is one `fragmentSink` takes (see there). */
  private isSmallPlainFragment(length: number): boolean {
    return this.opcode === 0 && !this.fin && !this.transformed && this.messageChecks && length <= MAX_CONTROL_PAYLOAD
  }

  /**
   * Hands the non-final continuation frames of at most 125 bytes (no reserved bit, masked as this
   * side expects, within what remains of `maxSize`) that lie whole one after another at the start
   * of the first buffered chunk to `fragmentSink`, unmasked in place and validated, and consumes
   * them; whether there was one. Only while a message that was not transformed is in progress.
   * A fragment that fails UTF-8 validation is left to the header path, which then fails it.
   */
  private takeFragmentsAhead(): boolean {
    if (this.buffered === 0 || !this.messageChecks || this.messageTransformed) return false
    const chunk = this.chunks[this.head]!
    const masked = this.mask
    const headerLength = masked ? 6 : 2
    const second = masked ? 0x80 : 0
    const sink = this.fragmentSink!
    const validator = this.messageOpcode === 0x1 ? this.textUtf8 : undefined
    let budget = this.maxSize
    const from = this.offset
    let at = from
    let key = 0
    let length = 0
    while (chunk.length - at >= headerLength && chunk[at] === 0x00) {
      const b1 = chunk[at + 1]!
      length = b1 & 0x7f
      if ((b1 & 0x80) !== second || length > MAX_CONTROL_PAYLOAD || (budget !== null && length > budget)) break
      const start = at + headerLength
      const end = start + length
      if (end > chunk.length) break
      if (length > 0) {
        if (masked) {
          key = keyIn(chunk, at + 2)
          unmaskRange(chunk, start, end, key)
        }
        if (validator !== undefined && !validator.pushRange(chunk, start, end, false)) {
          // Masked again, for the header path to fail as it would have: the validator stays failed.
          if (masked) unmaskRange(chunk, start, end, key)
          break
        }
        sink.appendFragmentAt(chunk, start, end)
        if (budget !== null) budget -= length
      }
      at = end
    }
    if (at === from) return false
    this.consumeTaken(chunk, from, at, 0, length, key, validator)
    // What remains of the message's budget, as `setLength` would have checked it.
    this.maxSize = budget
    return true
  }

  /**
   * Answers the ping whose payload (`length` bytes) comes next, if it is all in the first buffered
   * chunk, and consumes it (left masked: nothing else reads it); whether it did.
   */
  private answerPingInPlace(length: number): boolean {
    if (length === 0) {
      this.state = HEADER
      this.pingAnswerer!.answerPingAt(EMPTY, 0, 0, 0)
      return true
    }
    if (this.buffered < length) return false
    const chunk = this.chunks[this.head]!
    const start = this.offset
    const end = start + length
    if (end > chunk.length) return false
    this.state = HEADER
    this.pingAnswerer!.answerPingAt(chunk, start, end, this.masked ? this.key : 0)
    this.buffered -= length
    if (end === chunk.length) this.dropHead()
    else this.offset = end
    return true
  }

  /** The frame whose payload is `data` (unmasked and validated). */
  private complete(data: Uint8Array, rsv1 = this.rsv1): Frame {
    this.validated = this.validator !== undefined && this.validator === this._textUtf8
    this.decoded = false
    this.state = HEADER
    return new Frame(this.opcode as Opcode, data, this.fin, rsv1, this.rsv2, this.rsv3)
  }

  /**
   * Asks for a decoder of the payload arriving (a transformed data frame); whether there is one.
   * A transformed frame left without one is buffered whole: it must be within the limit for that.
   */
  private startDecoding(): boolean | PayloadTooBig {
    if (!this.transformed || this.opcode >= 0x8 || this.decodeArriving === undefined) return false
    this.decoding = this.decodeArriving(this.opcode, this.fin, this.rsv1, this.length)
    this.decodedBytes = 0
    if (this.decoding !== undefined) return true
    const maxSize = this.wholeTransformedLimit()
    return maxSize !== null && this.length > maxSize ? new PayloadTooBig({ size: this.length, maxSize }) : false
  }

  private wholeTransformedLimit(): number | null {
    return this.maxTransformedSize === undefined ? this.maxSize : this.maxTransformedSize
  }

  /** Gives the payload bytes that arrived to the decoder, unmasked in place, and releases them. */
  private decodeArrived(): ProtocolError | PayloadTooBig | undefined {
    const decoding = this.decoding!
    let left = Math.min(this.length - this.decodedBytes, this.buffered)
    while (left > 0) {
      const piece = this.nextPiece(left)
      if (this.masked) unmaskAt(piece, this.key, this.decodedBytes)
      const error = decoding.write(piece)
      if (error !== undefined) return error
      this.decodedBytes += piece.length
      left -= piece.length
    }
    return undefined
  }

  /**
   * Moves the buffered bytes of a large payload into a buffer of the declared length, unmasking
   * them on the way (one pass with the native helper) and validating them as they come. The read
   * chunks are released at once instead of being held until the whole payload arrived, so a
   * message costs one copy and at most its own size plus one read, and the copy is spread over
   * the reads. Started only once {@link ASSEMBLE_FROM} payload bytes arrived, so a peer must send
   * that much before we allocate what its header declares (within `maxSize`).
   * Returns false on invalid UTF-8.
   */
  private assemble(): boolean {
    const length = this.length
    let out = this.assembly
    if (out === undefined) {
      out = Buffer.allocUnsafe(length)
      this.assembly = out
      this.assembled = 0
      if (this.checked > 0) {
        // Bytes already unmasked and validated while waiting (a frame under ASSEMBLE_FROM so far).
        const done = this.take(this.checked)
        out.set(done, 0)
        this.assembled = done.length
      }
    }
    const from = this.assembled
    const end = from + Math.min(length - from, this.buffered)
    let filled = from
    while (filled < end) {
      const piece = this.nextPiece(end - filled)
      if (this.masked) maskAt(piece, this.key, out, filled)
      else out.set(piece, filled)
      filled += piece.length
    }
    this.assembled = filled
    this.checked = filled
    const validator = this.validator
    if (validator !== undefined && filled > from) {
      const skip = Math.max(from, this.validateFrom)
      if (skip < filled || filled === length) {
        const final = filled === length && (this.opcode === 0x8 || this.fin)
        if (!validator.push(out.subarray(Math.min(skip, filled), filled), final)) return false
      }
    }
    return true
  }

  /**
   * Header checks that depend on the message in progress (RFC 6455 §5.4, §5.2), and what the
   * payload of this frame needs: a validator when it must be UTF-8.
   */
  private checkMessage(opcode: number, fin: boolean, rsv: number): ProtocolError | undefined {
    const rsvAllowed = this.rsvAllowed
    this.validator = undefined
    if (opcode >= 0x8) {
      if (rsvAllowed !== null && rsv !== 0) return new ProtocolError({ detail: "reserved bits must be 0" })
      this.transformed = false
      if (opcode === 0x8) {
        // A close reason is UTF-8 after the 2-byte code (RFC 6455 §5.5.1).
        this.closeUtf8.reset()
        this.validator = this.closeUtf8
        this.validateFrom = 2
      }
      return undefined
    }
    if (opcode === 0) {
      if (this.messageOpcode === 0) return new ProtocolError({ detail: "unexpected continuation frame" })
      // RFC 7692 §6.1: only the first frame of a message carries the compression bit.
      if (rsvAllowed !== null && rsv !== 0) return new ProtocolError({ detail: "reserved bits must be 0" })
      this.transformed = this.messageTransformed
    } else {
      if (this.messageOpcode !== 0) return new ProtocolError({ detail: "expected a continuation frame" })
      if (rsvAllowed !== null && (rsv & ~rsvAllowed) !== 0) {
        return new ProtocolError({ detail: "reserved bits must be 0" })
      }
      this.transformed = rsv !== 0
      this.messageTransformed = this.transformed
      if (opcode === 0x1 && !this.transformed) this.textUtf8.reset()
    }
    const text = (opcode === 0 ? this.messageOpcode : opcode) === 0x1
    this.messageOpcode = fin ? 0 : opcode === 0 ? this.messageOpcode : opcode
    if (text && !this.transformed) {
      this.validator = this.textUtf8
      this.validateFrom = 0
    }
    return undefined
  }

  /** Records the payload length, enforces the size limit, and moves on to the mask key or payload. */
  private setLength(length: number): PayloadTooBig | undefined {
    if (this.opcode < 0x8) {
      // A transformed frame with a decoder for its arriving bytes is checked when it gets one (or
      // does not, see `startDecoding`), since it may then be of any length.
      const maxSize = !this.transformed
        ? this.maxSize
        : this.decodeArriving !== undefined
          ? null
          : this.wholeTransformedLimit()
      if (maxSize !== null && length > maxSize) return this.fail(new PayloadTooBig({ size: length, maxSize }))
    }
    this.length = length
    if (this.masked) this.state = MASK_KEY
    else this.startPayload()
    return undefined
  }

  private startPayload(): void {
    this.state = PAYLOAD
    this.checked = 0
    this.checkIndex = this.head
    this.checkOffset = this.offset
  }

  /**
   * Unmasks and validates the payload bytes that arrived since the last call, in place, while the
   * frame is incomplete (every buffered byte then belongs to its payload). The chunks are not
   * consumed, so the cursor into them stays valid until the payload is taken.
   */
  private checkArrived(): boolean {
    const validator = this.validator!
    const chunks = this.chunks
    let index = this.checkIndex
    let offset = this.checkOffset
    while (this.checked < this.buffered) {
      const chunk = chunks[index]!
      const piece = offset === 0 ? chunk : chunk.subarray(offset)
      const position = this.checked
      if (this.masked) unmaskAt(piece, this.key, position)
      const skip = this.validateFrom - position
      if (skip < piece.length && !validator.push(skip > 0 ? piece.subarray(skip) : piece, false)) return false
      this.checked += piece.length
      index++
      offset = 0
    }
    this.checkIndex = index
    this.checkOffset = 0
    return true
  }

  private fail<E extends FrameParserError>(error: E): E {
    this.state = DEAD
    this.error = error
    this.assembly = undefined
    this.decoding = undefined
    this.chunks = []
    this.head = 0
    this.offset = 0
    this.buffered = 0
    return error
  }

  /** Reads one byte; the caller checked that it is buffered. Only used for the header. */
  private readByte(): number {
    const chunk = this.chunks[this.head]!
    const byte = chunk[this.offset]!
    this.buffered--
    if (++this.offset === chunk.length) this.dropHead()
    return byte
  }

  private readUint32(): number {
    return ((this.readByte() << 24) | (this.readByte() << 16) | (this.readByte() << 8) | this.readByte()) >>> 0
  }

  /** Advances past the exhausted first chunk. */
  private dropHead(): void {
    this.offset = 0
    // Release the consumed chunk now: the list is only compacted now and then, and a chunk kept
    // alive here (up to 64 KiB each) survives into V8's old space, where freeing it takes a full GC.
    this.chunks[this.head] = EMPTY
    if (++this.head === this.chunks.length) {
      this.chunks.length = 0
      this.head = 0
    } else if (this.head >= 1024 && this.head * 2 >= this.chunks.length) {
      // Many tiny chunks (a slow peer): compact now and then so the list stays bounded.
      this.chunks.splice(0, this.head)
      this.head = 0
    }
  }

  /** Consumes `n` (> 0, buffered) bytes: a view when one chunk holds them, else one copy. */
  private take(n: number): Uint8Array {
    const first = this.chunks[this.head]!
    if (first.length - this.offset >= n) return this.nextPiece(n)
    const out = Buffer.allocUnsafe(n)
    for (let filled = 0; filled < n; ) {
      const piece = this.nextPiece(n - filled)
      out.set(piece, filled)
      filled += piece.length
    }
    return out
  }

  /** The next buffered bytes, at most `max` and from one chunk; they leave the buffer. */
  private nextPiece(max: number): Uint8Array {
    const chunk = this.chunks[this.head]!
    const start = this.offset
    const count = Math.min(chunk.length - start, max)
    this.buffered -= count
    if (start + count === chunk.length) this.dropHead()
    else this.offset = start + count
    return start === 0 && count === chunk.length ? chunk : chunk.subarray(start, start + count)
  }
}

const invalidUtf8 = (opcode: number): InvalidUtf8 =>
  new InvalidUtf8({ detail: opcode === 0x8 ? "invalid UTF-8 in close reason" : "invalid UTF-8 in text message" })
