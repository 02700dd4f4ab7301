/**
 * The "permessage-deflate" extension (RFC 7692), mirroring Python
 * `websockets.extensions.permessage_deflate`.
 *
 * Compression uses `node:zlib` raw DEFLATE streams driven synchronously, because the sans-I/O
 * layer is synchronous (as Python's is). Node has no public API that keeps a zlib stream alive
 * across synchronous calls: `zlib.inflateRawSync` and `_processChunk` close the stream after one
 * call. So this module calls the stream's native handle directly (`_handle.writeSync` with the
 * `_writeState` result array), the primitive that Node's own sync helpers are built on. Its shape
 * has not changed since Node 10; it is checked whenever a stream is created.
 *
 * Cost (Node 20, x64): compressing runs at roughly 8 ms per MiB at the default level, inflating at
 * roughly 1 ms per MiB. Decoding is bounded by the size limit, so one message blocks the event loop
 * for at most about `maxSize` bytes of output; encoding in place blocks in proportion to the size.
 * So the connection sends a large message in fragments, each compressed ahead on libuv's thread pool
 * (`encodeAhead`, through the stream's public `write` and `flush`, as `ws` does).
 *
 * @since 0.1.0
 */
import { Buffer } from "node:buffer"
import * as zlib from "node:zlib"
import {
  DuplicateParameter,
  InvalidArgument,
  InvalidParameterName,
  InvalidParameterValue,
  NegotiationError,
  type NegotiationErrorFamily,
  PayloadTooBig,
  ProtocolError
} from "../Errors.js"
import { Frame, Opcode } from "../Frames.js"
import type { ExtensionParameter } from "../HeaderParsers.js"
import * as Result from "../internal/result.js"
import { collect, ZlibEngine } from "../internal/zlibEngine.js"
import type { ArrivingFrameDecoder, ClientExtensionFactory, Extension, ServerExtensionFactory } from "./Extension.js"

// ---------------------------------------------------------------------------
// Constants
// ---------------------------------------------------------------------------

const NAME = "permessage-deflate"

/**
 * Smallest and largest LZ77 window sizes, in bits, that can be negotiated (RFC 7692 §7.1.2).
 * @since 0.1.0
 * @category constants
 */
export const MIN_WINDOW_BITS = 8
/** @since 0.1.0 @category constants */
export const MAX_WINDOW_BITS = 15

/**
 * Window size (bits) of the default server factory for both directions, as in Python's
 * `enable_server_permessage_deflate`: a 4 KiB window keeps per-connection memory small.
 * @since 0.1.0
 * @category constants
 */
export const DEFAULT_MAX_WINDOW_BITS = 12

/**
 * zlib `memLevel` of the default factories on both sides, as in Python (zlib's default is 8).
 * @since 0.1.0
 * @category constants
 */
export const DEFAULT_MEM_LEVEL = 5

/**
 * Default `minSize`: every message is compressed, as in Python. A larger value sends single-frame
 * messages shorter than it uncompressed (RSV1 clear). Since compression is synchronous here, a
 * zlib call costs about a microsecond, so there is no asynchronous round trip to save as in `ws`
 * (whose default threshold is 1024 bytes); with context takeover even short repetitive messages
 * compress well, and an uncompressed message cannot be referenced by later ones.
 * @since 0.1.0
 * @category constants
 */
export const DEFAULT_MIN_SIZE = 0

/** RFC 7692 §7.2.1: the tail of a sync flush, removed when sending and restored when receiving. */
const EMPTY_UNCOMPRESSED_BLOCK = new Uint8Array([0x00, 0x00, 0xff, 0xff])

/**
 * RFC 7692 §7.2.3.6: a final fragment that carries no new data is sent as one 0x00 byte (the
 * header bits of an empty stored block), so that appending 00 00 ff ff completes that block.
 */
const EMPTY_FINAL_FRAGMENT = new Uint8Array([0x00])

const EMPTY = new Uint8Array(0)

/**
 * zlib rejects a 256-byte window for raw deflate ("until 256-byte window bug fixed", see
 * madler/zlib#171) and Node silently turns 8 into 9 for `createDeflateRaw`, as `ws` relies on.
 * That is still within a negotiated limit of 8: zlib never emits a distance beyond
 * `MAX_DIST = window size - MIN_LOOKAHEAD (262)`, that is 250 bytes for a 512-byte window, so every
 * back-reference fits in the 256-byte window the peer promised to keep (RFC 7692 §7.1.2.1); the
 * tests check it against an inflater limited to 8 bits. Python instead declines to negotiate 8
 * for its compressor (python-websockets#1768), which fails the handshake when a server answers
 * `client_max_window_bits=8` to a bare offer; honouring it this way keeps those peers working.
 * The decompressor needs no such change: zlib inflates with a 256-byte window.
 */
const ZLIB_MIN_RAW_DEFLATE_WINDOW_BITS = 9

/** First output buffer when inflating: a guess from the input size, then doubling up to the cap. */
const INFLATE_MIN_CHUNK = 1024
const INFLATE_MAX_CHUNK = 1024 * 1024

const endsWithEmptyBlock = (data: Uint8Array): boolean => {
  const n = data.byteLength
  return n >= 4 && data[n - 4] === 0x00 && data[n - 3] === 0x00 && data[n - 2] === 0xff && data[n - 1] === 0xff
}

// ---------------------------------------------------------------------------
// Extension
// ---------------------------------------------------------------------------

/**
 * zlib settings for the compressor (Python's `compress_settings`, without `wbits`, which comes
 * from the negotiation).
 * @since 0.1.0
 * @category models
 */
export interface CompressSettings {
  /** Compression level, -1 (zlib default, 6) to 9. */
  readonly level?: number | undefined
  /** Memory for the internal state, 1 to 9 (zlib default 8). */
  readonly memLevel?: number | undefined
  /** zlib strategy constant, 0 to 4. */
  readonly strategy?: number | undefined
}

/**
 * Options of a {@link PerMessageDeflate} beyond the negotiated parameters.
 * @since 0.1.0
 * @category models
 */
export interface PerMessageDeflateOptions {
  /**
   * Single-frame messages shorter than this many bytes are sent uncompressed (RSV1 clear,
   * RFC 7692 §6). Default {@link DEFAULT_MIN_SIZE}. Fragmented messages are always compressed,
   * since their size is unknown when the first frame goes out.
   */
  readonly minSize?: number | undefined
}

const checkWindowBits = (name: string, bits: number): void => {
  if (!Number.isInteger(bits) || bits < MIN_WINDOW_BITS || bits > MAX_WINDOW_BITS) {
    throw new InvalidArgument({ detail: `${name} must be between ${MIN_WINDOW_BITS} and ${MAX_WINDOW_BITS}` })
  }
}

const checkCompressSettings = (settings: CompressSettings | undefined): void => {
  if (settings === undefined) return
  if ("wbits" in settings || "windowBits" in settings) {
    throw new InvalidArgument({
      detail: "compressSettings must not set the window size; set serverMaxWindowBits or clientMaxWindowBits"
    })
  }
  const check = (name: string, value: number | undefined, min: number, max: number) => {
    if (value !== undefined && (!Number.isInteger(value) || value < min || value > max)) {
      throw new InvalidArgument({ detail: `compressSettings.${name} must be between ${min} and ${max}` })
    }
  }
  check("level", settings.level, -1, 9)
  check("memLevel", settings.memLevel, 1, 9)
  check("strategy", settings.strategy, 0, 4)
}

/**
 * The permessage-deflate extension as negotiated for one connection (RFC 7692 §7).
 *
 * Each direction keeps one raw DEFLATE stream, created on first use. With context takeover it
 * lives as long as the connection, so each message may refer to earlier ones (RFC 7692 §7.2.3.2);
 * without it the stream is released after each message, as in Python, so an idle connection
 * holds no zlib memory for that direction.
 *
 * Memory per stream, as measured on Node 20 x64 (resident size over 3000 streams): about 95 KiB for
 * a compressor with a 12-bit window (the server default) and 210 KiB with a 15-bit one; about
 * 24 KiB for a decompressor with a 12-bit window and 50 KiB with a 15-bit one. zlib's formula,
 * deflate ≈ `(1 << (windowBits + 2)) + (1 << (memLevel + 9))` (32 KiB at 12 and memLevel 5) and
 * inflate ≈ `(1 << windowBits)` + 7 KiB, underestimates Node's bundled zlib (Chromium's), which
 * uses a hash table of 2^15 entries (64 KiB) on SIMD-capable CPUs whatever `memLevel` says: even
 * 9 bits with `memLevel` 1 measure about 70 KiB.
 *
 * @since 0.1.0
 * @category models
 */
export class PerMessageDeflate implements Extension {
  readonly name = NAME
  /** RSV1, the "Per-Message Compressed" bit, on the first frame of a message (RFC 7692 §6). */
  readonly rsvBits = 0x40
  /** An uncompressed message's frames pass `decode` unchanged (see `startDecoding`). */
  readonly passesPlainMessages = true
  readonly compressSettings: CompressSettings
  readonly minSize: number
  private decoder: ZlibEngine | undefined = undefined
  private encoder: ZlibEngine | undefined = undefined
  /** Whether the incoming message in progress is compressed, so its continuation frames are too. */
  private decodeContData = false
  /** Whether the outgoing message in progress is compressed. */
  private encodeContData = false
  /** A frame's payload compressed ahead by `encodeAhead`, with the data it came from. */
  private aheadInput: Uint8Array | undefined = undefined
  private aheadOutput: Uint8Array = EMPTY
  private aheadError: string | undefined = undefined

  constructor(
    readonly remoteNoContextTakeover: boolean,
    readonly localNoContextTakeover: boolean,
    readonly remoteMaxWindowBits: number,
    readonly localMaxWindowBits: number,
    compressSettings?: CompressSettings,
    options?: PerMessageDeflateOptions
  ) {
    checkWindowBits("remoteMaxWindowBits", remoteMaxWindowBits)
    checkWindowBits("localMaxWindowBits", localMaxWindowBits)
    checkCompressSettings(compressSettings)
    const minSize = options?.minSize ?? DEFAULT_MIN_SIZE
    if (!(minSize >= 0)) throw new InvalidArgument({ detail: "minSize must be a non-negative number" })
    this.compressSettings = compressSettings ?? {}
    this.minSize = minSize
  }

  /**
   * Decodes an incoming frame: inflates the frames of compressed messages and clears RSV1 on the
   * first one; passes control frames and uncompressed messages through unchanged (RFC 7692 §6.1).
   * A continuation frame keeps its RSV1 bit, so the connection rejects it as RFC 7692 §6.1 requires.
   */
  decode(frame: Frame, maxSize: number | null): Result.Result<Frame, ProtocolError | PayloadTooBig> {
    const rsv1 = this.startDecoding(frame.opcode, frame.fin, frame.rsv1)
    if (rsv1 === undefined) return Result.succeed(frame)
    // An empty non-final fragment inflates to nothing (every earlier output was taken): no zlib call
    // and no output buffer, so a flood of them costs a frame header's work each.
    if (frame.data.byteLength === 0 && !frame.fin) {
      return Result.succeed(new Frame(frame.opcode, frame.data, false, rsv1, frame.rsv2, frame.rsv3))
    }
    const inflation = new Inflation(this.getDecoder(), maxSize, frame.data.byteLength)
    const error = inflation.feed(frame.data)
    const decoded = error === undefined ? this.endDecoding(inflation, frame.fin) : this.decodingFailed(error)
    return Result.map(decoded, (data) => new Frame(frame.opcode, data, frame.fin, rsv1, frame.rsv2, frame.rsv3))
  }

  /**
   * Inflates a large compressed frame read by read (see `Extension.decodeArriving`): the same
   * work as {@link decode}, spread over the reads that bring the frame. A continuation frame with
   * RSV1 set is left to `decode`, which lets the connection reject it.
   */
  decodeArriving(
    opcode: number,
    fin: boolean,
    rsv1: boolean,
    length: number,
    maxSize: number | null
  ): ArrivingFrameDecoder | undefined {
    if (opcode === Opcode.Continuation && rsv1) return undefined
    const decodedRsv1 = this.startDecoding(opcode, fin, rsv1)
    if (decodedRsv1 === undefined) return undefined
    const inflation = new Inflation(this.getDecoder(), maxSize, length)
    return {
      rsv1: decodedRsv1,
      write: (bytes) => {
        const error = inflation.feed(bytes)
        if (error !== undefined) this.decodingFailed(error)
        return error
      },
      end: () => this.endDecoding(inflation, fin)
    }
  }

  /**
   * Starts decoding a frame: returns its RSV1 bit once decoded, or `undefined` when the frame is
   * not compressed (control frames, uncompressed messages), and moves through the message (RFC 7692
   * §6.1): the continuation frames of a compressed message are compressed too.
   */
  private startDecoding(opcode: number, fin: boolean, rsv1: boolean): boolean | undefined {
    if (opcode >= Opcode.Close) return undefined
    if (opcode === Opcode.Continuation) {
      if (!this.decodeContData) return undefined
      if (fin) this.decodeContData = false
      return rsv1
    }
    if (!rsv1) return undefined
    this.decodeContData = !fin
    // RFC 7692 §7.2.2: without context takeover each message starts with an empty window. After a
    // block with BFINAL set (RFC 7692 §7.2.3.4) the stream must restart as well; zlib then forgets
    // the window, so a later reference to it fails cleanly as corrupt data.
    const decoder = this.decoder
    if (decoder !== undefined && (this.remoteNoContextTakeover || decoder.ended)) decoder.reset()
    return false
  }

  /** Ends a frame's decoding: the 00 00 ff ff tail on the final frame (RFC 7692 §7.2.2). */
  private endDecoding(inflation: Inflation, fin: boolean): Result.Result<Uint8Array, ProtocolError | PayloadTooBig> {
    const error = fin ? inflation.feed(EMPTY_UNCOMPRESSED_BLOCK) : undefined
    if (error !== undefined) return this.decodingFailed(error)
    if (fin && this.remoteNoContextTakeover) this.releaseDecoder()
    return Result.succeed(inflation.result())
  }

  private decodingFailed<E>(error: E): Result.Result<never, E> {
    this.decodeContData = false
    this.releaseDecoder()
    return Result.fail(error)
  }

  /**
   * Encodes an outgoing frame: compresses data frames, a fragmented message as one stream with
   * RSV1 on its first frame only (RFC 7692 §6.1); control frames pass through unchanged.
   */
  encode(frame: Frame): Frame {
    if (frame.opcode >= Opcode.Close) return frame
    const ahead = this.aheadInput === frame.data
    this.aheadInput = undefined
    let rsv1 = frame.rsv1
    if (frame.opcode === Opcode.Continuation) {
      if (!this.encodeContData) return frame
      if (frame.fin) this.encodeContData = false
    } else {
      if (frame.fin && frame.data.byteLength < this.minSize) return frame
      rsv1 = true
      this.encodeContData = !frame.fin
      // Compressing ahead began the message (see `encodeAhead`).
      if (this.localNoContextTakeover && !ahead) this.encoder?.reset()
    }
    let data: Uint8Array
    if (ahead) {
      if (this.aheadError !== undefined) this.compressionFailed(this.aheadError)
      data = this.aheadOutput
      this.aheadOutput = EMPTY
    } else {
      data = this.deflate(frame.data, frame.fin)
    }
    if (frame.fin && this.localNoContextTakeover) this.releaseEncoder()
    return new Frame(frame.opcode, data, frame.fin, rsv1, frame.rsv2, frame.rsv3)
  }

  /**
   * Compresses the payload of the next data frame on libuv's thread pool, as `ws` does, so that a
   * large message leaves the event loop to other connections; `encode` then takes the result. The
   * caller sends nothing else through this extension until `done` was called and that frame encoded.
   */
  encodeAhead(opcode: number, data: Uint8Array, fin: boolean, done: () => void): void {
    this.aheadInput = undefined
    const compressed =
      opcode === Opcode.Continuation
        ? this.encodeContData
        : opcode < Opcode.Close && !(fin && data.byteLength < this.minSize)
    const encoder = compressed ? this.getEncoder() : undefined
    if (encoder === undefined || !encoder.canRunAsync) {
      done()
      return
    }
    // RFC 7692 §7.2.3.2: without context takeover each message starts with an empty window.
    if (opcode !== Opcode.Continuation && this.localNoContextTakeover) encoder.reset()
    encoder.runAsync(data, (error, chunks, total) => {
      // Closed meanwhile: `encode` finds the connection closed, or compresses in place.
      if (this.encoder === encoder) {
        this.aheadInput = data
        this.aheadError = error
        this.aheadOutput = error === undefined ? finishDeflate(collect(chunks, total), fin) : EMPTY
      }
      done()
    })
  }

  /** Releases both zlib streams. The extension stays usable: streams are created again on demand. */
  close(): void {
    this.releaseDecoder()
    this.releaseEncoder()
    this.decodeContData = false
    this.encodeContData = false
  }

  toString(): string {
    return (
      `PerMessageDeflate(remoteNoContextTakeover=${this.remoteNoContextTakeover}, ` +
      `localNoContextTakeover=${this.localNoContextTakeover}, ` +
      `remoteMaxWindowBits=${this.remoteMaxWindowBits}, localMaxWindowBits=${this.localMaxWindowBits})`
    )
  }

  private getDecoder(): ZlibEngine {
    if (this.decoder === undefined) {
      // Node's own `_outBuffer` is unused here: the smallest chunk size saves 16 KiB per stream.
      const stream = zlib.createInflateRaw({
        windowBits: this.remoteMaxWindowBits,
        chunkSize: zlib.constants.Z_MIN_CHUNK
      })
      this.decoder = new ZlibEngine(stream)
    }
    return this.decoder
  }

  private getEncoder(): ZlibEngine {
    if (this.encoder === undefined) {
      const stream = zlib.createDeflateRaw({
        ...this.compressSettings,
        windowBits: Math.max(this.localMaxWindowBits, ZLIB_MIN_RAW_DEFLATE_WINDOW_BITS),
        chunkSize: zlib.constants.Z_MIN_CHUNK
      })
      this.encoder = new ZlibEngine(stream)
    }
    return this.encoder
  }

  private releaseDecoder(): void {
    this.decoder?.close()
    this.decoder = undefined
  }

  private releaseEncoder(): void {
    const encoder = this.encoder
    this.encoder = undefined
    this.aheadInput = undefined
    this.aheadOutput = EMPTY
    this.aheadError = undefined
    encoder?.close()
  }

  /** Compressing valid input cannot fail; this is a defect (for example out of memory). */
  private compressionFailed(message: string | undefined): never {
    this.releaseEncoder()
    throw new Error(`permessage-deflate: compression failed: ${message}`)
  }

  /**
   * Compresses one frame's payload with a sync flush; on the final frame, removes the 00 00 ff ff
   * tail (RFC 7692 §7.2.1) or, when there is no new output, sends the 0x00 byte of §7.2.3.6.
   */
  private deflate(data: Uint8Array, fin: boolean): Uint8Array {
    const encoder = this.getEncoder()
    const chunks: Array<Uint8Array> = []
    let total = 0
    let inOff = 0
    let inLen = data.byteLength
    // Incompressible data grows by a few bytes per block; the loop covers any shortfall.
    let size = inLen + (inLen >>> 7) + 64
    for (;;) {
      const buffer = Buffer.allocUnsafe(size)
      if (!encoder.run(data, inOff, inLen, buffer, 0, size)) this.compressionFailed(encoder.error)
      const produced = size - encoder.remainingOut
      if (produced > 0) {
        chunks.push(buffer.subarray(0, produced))
        total += produced
      }
      inOff += inLen - encoder.remainingIn
      inLen = encoder.remainingIn
      if (encoder.remainingOut > 0) break
      size = Math.max(size, 1024)
    }
    return finishDeflate(collect(chunks, total), fin)
  }
}

/**
 * A frame's compressed payload: on the final frame, without the 00 00 ff ff tail (RFC 7692
 * §7.2.1), or the 0x00 byte of §7.2.3.6 when there is no new output.
 */
const finishDeflate = (out: Uint8Array, fin: boolean): Uint8Array => {
  if (!fin) return out
  if (endsWithEmptyBlock(out)) return out.subarray(0, out.byteLength - 4)
  // zlib emits nothing for a sync flush right after another one (Z_BUF_ERROR, no progress).
  return out.byteLength === 0 ? EMPTY_FINAL_FRAGMENT : out
}

/**
 * The inflation of one frame's payload, fed in one call or read by read.
 *
 * Zip-bomb safe: output buffers are sized to at most one byte beyond the remaining budget, so zlib
 * stops as soon as the message would exceed `maxSize` and at most about `maxSize` bytes are ever
 * produced or allocated (Python passes `max_length` to `decompress` for the same reason).
 */
class Inflation {
  private readonly limit: number
  private readonly chunks: Array<Uint8Array> = []
  private total = 0
  private buffer: Uint8Array = EMPTY
  private used = 0
  private chunkSize: number

  constructor(
    private readonly decoder: ZlibEngine,
    maxSize: number | null,
    inputSize: number
  ) {
    this.limit = maxSize ?? Number.POSITIVE_INFINITY
    this.chunkSize = Math.min(Math.max(inputSize * 4, INFLATE_MIN_CHUNK), INFLATE_MAX_CHUNK)
  }

  /** Inflates `input`; returns undefined when all of it was consumed (or the DEFLATE stream ended). */
  feed(input: Uint8Array): ProtocolError | PayloadTooBig | undefined {
    const decoder = this.decoder
    const limit = this.limit
    let inOff = 0
    let inLen = input.byteLength
    while (!decoder.ended) {
      if (this.used === this.buffer.byteLength) {
        // One byte beyond the budget: producing it proves the message is too big.
        this.buffer = Buffer.allocUnsafe(Math.min(this.chunkSize, limit - this.total + 1))
        this.used = 0
        this.chunkSize = Math.min(this.chunkSize * 2, INFLATE_MAX_CHUNK)
      }
      const buffer = this.buffer
      const used = this.used
      const outLen = buffer.byteLength - used
      if (!decoder.run(input, inOff, inLen, buffer, used, outLen)) {
        // RFC 7692 does not name a close code for a corrupt stream; like Python, fail the
        // connection as a protocol error (1002). `ws` uses 1007.
        return new ProtocolError({ detail: "decompression failed", cause: decoder.error })
      }
      const produced = outLen - decoder.remainingOut
      if (produced > 0) {
        this.chunks.push(buffer.subarray(used, used + produced))
        this.used = used + produced
        this.total += produced
        if (this.total > limit) return new PayloadTooBig({ size: undefined, maxSize: limit })
      }
      inOff += inLen - decoder.remainingIn
      inLen = decoder.remainingIn
      // A full output buffer may hide pending output; otherwise zlib stopped because the input
      // ran out, or, with input left, because the stream ended (BFINAL, RFC 7692 §7.2.3.4).
      if (decoder.remainingOut > 0) {
        if (inLen > 0) decoder.ended = true
        break
      }
    }
    return undefined
  }

  /** The inflated payload. */
  result(): Uint8Array {
    return collect(this.chunks, this.total)
  }
}

// ---------------------------------------------------------------------------
// Negotiation
// ---------------------------------------------------------------------------

/** Parameters of an offer or a response; `true` is the bare `client_max_window_bits` of an offer. */
interface Parameters {
  readonly serverNoContextTakeover: boolean
  readonly clientNoContextTakeover: boolean
  readonly serverMaxWindowBits: number | null
  readonly clientMaxWindowBits: number | true | null
}

/** Exactly "8" to "15": RFC 7692 §7.1.2.1 allows no sign, leading zero or space. */
const WINDOW_BITS_VALUES: ReadonlyArray<string> = ["8", "9", "10", "11", "12", "13", "14", "15"]

const buildParameters = (params: Parameters): Array<ExtensionParameter> => {
  const out: Array<ExtensionParameter> = []
  if (params.serverNoContextTakeover) out.push(["server_no_context_takeover", null])
  if (params.clientNoContextTakeover) out.push(["client_no_context_takeover", null])
  if (params.serverMaxWindowBits !== null) out.push(["server_max_window_bits", String(params.serverMaxWindowBits)])
  if (params.clientMaxWindowBits === true) out.push(["client_max_window_bits", null])
  else if (params.clientMaxWindowBits !== null) out.push(["client_max_window_bits", String(params.clientMaxWindowBits)])
  return out
}

/**
 * Reads parameters (RFC 7692 §7.1). `isServer`: reading a client offer, where
 * `client_max_window_bits` may come without a value (§7.1.2.2).
 */
const extractParameters = (
  params: ReadonlyArray<ExtensionParameter>,
  isServer: boolean
): Result.Result<Parameters, NegotiationErrorFamily> => {
  let serverNoContextTakeover = false
  let clientNoContextTakeover = false
  let serverMaxWindowBits: number | null = null
  let clientMaxWindowBits: number | true | null = null
  for (const [name, value] of params) {
    switch (name) {
      case "server_no_context_takeover":
      case "client_no_context_takeover": {
        const seen = name === "server_no_context_takeover" ? serverNoContextTakeover : clientNoContextTakeover
        if (seen) return Result.fail(new DuplicateParameter({ name }))
        // RFC 7692 §7.1.1: these parameters have no value.
        if (value !== null) return Result.fail(new InvalidParameterValue({ name, value }))
        if (name === "server_no_context_takeover") serverNoContextTakeover = true
        else clientNoContextTakeover = true
        break
      }
      case "server_max_window_bits": {
        if (serverMaxWindowBits !== null) return Result.fail(new DuplicateParameter({ name }))
        if (value === null || !WINDOW_BITS_VALUES.includes(value)) {
          return Result.fail(new InvalidParameterValue({ name, value }))
        }
        serverMaxWindowBits = Number(value)
        break
      }
      case "client_max_window_bits": {
        if (clientMaxWindowBits !== null) return Result.fail(new DuplicateParameter({ name }))
        if (isServer && value === null) clientMaxWindowBits = true
        else if (value !== null && WINDOW_BITS_VALUES.includes(value)) clientMaxWindowBits = Number(value)
        else return Result.fail(new InvalidParameterValue({ name, value }))
        break
      }
      default:
        return Result.fail(new InvalidParameterName({ name }))
    }
  }
  return Result.succeed({ serverNoContextTakeover, clientNoContextTakeover, serverMaxWindowBits, clientMaxWindowBits })
}

/**
 * Options shared by both factories. Booleans add the parameter without a value; numbers are
 * window sizes in bits, 8 to 15 (RFC 7692 §7.1).
 * @since 0.1.0
 * @category models
 */
export interface PerMessageDeflateFactoryOptions {
  /** Prevent the server from using context takeover (RFC 7692 §7.1.1.1). Default false. */
  readonly serverNoContextTakeover?: boolean | undefined
  /** Prevent the client from using context takeover (RFC 7692 §7.1.1.2). Default false. */
  readonly clientNoContextTakeover?: boolean | undefined
  /** Maximum size of the server's LZ77 sliding window in bits (RFC 7692 §7.1.2.1). */
  readonly serverMaxWindowBits?: number | null | undefined
  /** zlib settings for our compressor. */
  readonly compressSettings?: CompressSettings | undefined
  /** See {@link PerMessageDeflateOptions.minSize}. */
  readonly minSize?: number | undefined
}

/**
 * Options of {@link ClientPerMessageDeflateFactory}.
 * @since 0.1.0
 * @category models
 */
export interface ClientPerMessageDeflateOptions extends PerMessageDeflateFactoryOptions {
  /**
   * Maximum size of the client's window in bits (RFC 7692 §7.1.2.2); `true` offers the parameter
   * without a value, to tell the server it may limit the client's window; `null` or `false` leaves
   * it out. Default `null` (not offered), as in the seeds (`client_max_window_bits=None`); the
   * factory that `compression: "deflate"` adds offers it bare (see
   * {@link enableClientPermessageDeflate}).
   */
  readonly clientMaxWindowBits?: number | boolean | null | undefined
}

/**
 * Options of {@link ServerPerMessageDeflateFactory}.
 * @since 0.1.0
 * @category models
 */
export interface ServerPerMessageDeflateOptions extends PerMessageDeflateFactoryOptions {
  /**
   * Maximum size of the client's window in bits (RFC 7692 §7.1.2.2). It applies only when the
   * client offered `client_max_window_bits`, unless `requireClientMaxWindowBits` is set.
   */
  readonly clientMaxWindowBits?: number | null | undefined
  /**
   * Decline compression entirely when the client does not offer `client_max_window_bits`
   * (Python's `require_client_max_window_bits`). Default false. Needs `clientMaxWindowBits`.
   */
  readonly requireClientMaxWindowBits?: boolean | undefined
}

const optionalWindowBits = (name: string, bits: number | null | undefined): number | null => {
  if (bits === undefined || bits === null) return null
  checkWindowBits(name, bits)
  return bits
}

const alreadyAccepted = (accepted: ReadonlyArray<Extension>): boolean => accepted.some((e) => e.name === NAME)

/**
 * Client side of the permessage-deflate negotiation (RFC 7692 §5, §7.1).
 * @since 0.1.0
 * @category constructors
 */
export class ClientPerMessageDeflateFactory implements ClientExtensionFactory {
  readonly name = NAME
  readonly serverNoContextTakeover: boolean
  readonly clientNoContextTakeover: boolean
  readonly serverMaxWindowBits: number | null
  readonly clientMaxWindowBits: number | true | null
  readonly compressSettings: CompressSettings | undefined
  readonly minSize: number | undefined

  /** Throws `InvalidArgument` on an invalid configuration (Python's `ValueError`). */
  constructor(options: ClientPerMessageDeflateOptions = {}) {
    this.serverNoContextTakeover = options.serverNoContextTakeover ?? false
    this.clientNoContextTakeover = options.clientNoContextTakeover ?? false
    this.serverMaxWindowBits = optionalWindowBits("serverMaxWindowBits", options.serverMaxWindowBits)
    const client = options.clientMaxWindowBits === undefined ? null : options.clientMaxWindowBits
    this.clientMaxWindowBits =
      client === true ? true : client === false ? null : optionalWindowBits("clientMaxWindowBits", client)
    checkCompressSettings(options.compressSettings)
    this.compressSettings = options.compressSettings
    this.minSize = options.minSize
  }

  getRequestParams(): ReadonlyArray<ExtensionParameter> {
    return buildParameters(this)
  }

  processResponseParams(
    params: ReadonlyArray<ExtensionParameter>,
    acceptedExtensions: ReadonlyArray<Extension>
  ): Result.Result<Extension, NegotiationErrorFamily> {
    if (alreadyAccepted(acceptedExtensions)) {
      return Result.fail(new NegotiationError({ detail: `received duplicate ${NAME}` }))
    }
    const extracted = extractParameters(params, false)
    if (Result.isFailure(extracted)) return Result.fail(Result.failureOf(extracted))
    const response = Result.successOf(extracted)
    let clientNoContextTakeover = response.clientNoContextTakeover
    let clientMaxWindowBits = response.clientMaxWindowBits as number | null

    // server_no_context_takeover (RFC 7692 §7.1.1.1): the server must accept our request.
    //   Req.  Resp.  Result
    //   no    no     no
    //   no    yes    yes
    //   yes   no     error
    //   yes   yes    yes
    if (this.serverNoContextTakeover && !response.serverNoContextTakeover) {
      return Result.fail(new NegotiationError({ detail: "expected server_no_context_takeover" }))
    }

    // client_no_context_takeover (§7.1.1.2): the server may omit it; we still honour our request.
    if (this.clientNoContextTakeover) clientNoContextTakeover = true

    // server_max_window_bits (§7.1.2.1)
    //   Req.     Resp.    Result
    //   none     none     none (15)
    //   none     8≤M≤15   M
    //   8≤N≤15   none     error
    //   8≤N≤15   8≤M≤N    M
    //   8≤N≤15   N<M≤15   error
    if (this.serverMaxWindowBits !== null) {
      if (response.serverMaxWindowBits === null) {
        return Result.fail(new NegotiationError({ detail: "expected server_max_window_bits" }))
      }
      if (response.serverMaxWindowBits > this.serverMaxWindowBits) {
        return Result.fail(new NegotiationError({ detail: "unsupported server_max_window_bits" }))
      }
    }

    // client_max_window_bits (§7.1.2.2)
    //   Req.     Resp.    Result
    //   none     none     none (15)
    //   none     8≤M≤15   error
    //   bare     none     none (15)
    //   bare     8≤M≤15   M
    //   8≤N≤15   none     N
    //   8≤N≤15   8≤M≤N    M
    //   8≤N≤15   N<M≤15   error
    if (this.clientMaxWindowBits === null) {
      if (clientMaxWindowBits !== null) {
        return Result.fail(new NegotiationError({ detail: "unexpected client_max_window_bits" }))
      }
    } else if (this.clientMaxWindowBits !== true) {
      if (clientMaxWindowBits === null) clientMaxWindowBits = this.clientMaxWindowBits
      else if (clientMaxWindowBits > this.clientMaxWindowBits) {
        return Result.fail(new NegotiationError({ detail: "unsupported client_max_window_bits" }))
      }
    }

    return Result.succeed(
      new PerMessageDeflate(
        response.serverNoContextTakeover,
        clientNoContextTakeover,
        response.serverMaxWindowBits ?? MAX_WINDOW_BITS,
        clientMaxWindowBits ?? MAX_WINDOW_BITS,
        this.compressSettings,
        { minSize: this.minSize }
      )
    )
  }
}

/**
 * Server side of the permessage-deflate negotiation (RFC 7692 §5, §7.1).
 * @since 0.1.0
 * @category constructors
 */
export class ServerPerMessageDeflateFactory implements ServerExtensionFactory {
  readonly name = NAME
  readonly serverNoContextTakeover: boolean
  readonly clientNoContextTakeover: boolean
  readonly serverMaxWindowBits: number | null
  readonly clientMaxWindowBits: number | null
  readonly compressSettings: CompressSettings | undefined
  readonly minSize: number | undefined
  readonly requireClientMaxWindowBits: boolean

  /** Throws `InvalidArgument` on an invalid configuration (Python's `ValueError`). */
  constructor(options: ServerPerMessageDeflateOptions = {}) {
    this.serverNoContextTakeover = options.serverNoContextTakeover ?? false
    this.clientNoContextTakeover = options.clientNoContextTakeover ?? false
    this.serverMaxWindowBits = optionalWindowBits("serverMaxWindowBits", options.serverMaxWindowBits)
    this.clientMaxWindowBits = optionalWindowBits("clientMaxWindowBits", options.clientMaxWindowBits)
    checkCompressSettings(options.compressSettings)
    this.compressSettings = options.compressSettings
    this.minSize = options.minSize
    this.requireClientMaxWindowBits = options.requireClientMaxWindowBits ?? false
    if (this.requireClientMaxWindowBits && this.clientMaxWindowBits === null) {
      throw new InvalidArgument({
        detail: "requireClientMaxWindowBits is enabled, but clientMaxWindowBits isn't configured"
      })
    }
  }

  processRequestParams(
    params: ReadonlyArray<ExtensionParameter>,
    acceptedExtensions: ReadonlyArray<Extension>
  ): Result.Result<readonly [ReadonlyArray<ExtensionParameter>, Extension], NegotiationErrorFamily> {
    if (alreadyAccepted(acceptedExtensions)) {
      return Result.fail(new NegotiationError({ detail: `skipped duplicate ${NAME}` }))
    }
    const extracted = extractParameters(params, true)
    if (Result.isFailure(extracted)) return Result.fail(Result.failureOf(extracted))
    const offer = Result.successOf(extracted)

    // server_no_context_takeover / client_no_context_takeover (§7.1.1): accept what the client
    // asks and add what we require.
    const serverNoContextTakeover = offer.serverNoContextTakeover || this.serverNoContextTakeover
    const clientNoContextTakeover = offer.clientNoContextTakeover || this.clientNoContextTakeover

    // server_max_window_bits (§7.1.2.1)
    //   Config   Req.     Resp.
    //   none     none     none
    //   none     8≤M≤15   M
    //   8≤N≤15   none     N
    //   8≤N≤15   8≤M≤N    M
    //   8≤N≤15   N<M≤15   N
    let serverMaxWindowBits = offer.serverMaxWindowBits
    if (this.serverMaxWindowBits !== null) {
      if (serverMaxWindowBits === null || serverMaxWindowBits > this.serverMaxWindowBits) {
        serverMaxWindowBits = this.serverMaxWindowBits
      }
    }

    // client_max_window_bits (§7.1.2.2): the server may only send it when the client offered it.
    //   Config   Req.     Resp.
    //   none     none     none
    //   none     bare     none
    //   none     8≤M≤15   M
    //   8≤N≤15   none     none, or decline when required
    //   8≤N≤15   bare     N
    //   8≤N≤15   8≤M≤N    M
    //   8≤N≤15   N<M≤15   N
    let clientMaxWindowBits: number | null
    if (offer.clientMaxWindowBits === true) {
      clientMaxWindowBits = this.clientMaxWindowBits
    } else if (offer.clientMaxWindowBits === null) {
      if (this.requireClientMaxWindowBits) {
        return Result.fail(new NegotiationError({ detail: "required client_max_window_bits" }))
      }
      clientMaxWindowBits = null
    } else {
      clientMaxWindowBits =
        this.clientMaxWindowBits !== null && this.clientMaxWindowBits < offer.clientMaxWindowBits
          ? this.clientMaxWindowBits
          : offer.clientMaxWindowBits
    }

    const response = buildParameters({
      serverNoContextTakeover,
      clientNoContextTakeover,
      serverMaxWindowBits,
      clientMaxWindowBits
    })
    const extension = new PerMessageDeflate(
      clientNoContextTakeover,
      serverNoContextTakeover,
      clientMaxWindowBits ?? MAX_WINDOW_BITS,
      serverMaxWindowBits ?? MAX_WINDOW_BITS,
      this.compressSettings,
      { minSize: this.minSize }
    )
    return Result.succeed([response, extension] as const)
  }
}

/**
 * Adds a client factory with the defaults of `compression: "deflate"` unless the list already has
 * a permessage-deflate factory, perhaps configured differently (Python's
 * `enable_client_permessage_deflate`). It offers a bare `client_max_window_bits`, so that a server
 * may limit the client's window (the default server asks for 12 bits, see
 * {@link enableServerPermessageDeflate}), as Python `websockets` 10 does, although the factory's own
 * default leaves it out as the seeds'; and it compresses with `memLevel` 5.
 * @since 0.1.0
 * @category constructors
 */
export const enableClientPermessageDeflate = (
  extensions: ReadonlyArray<ClientExtensionFactory> | undefined
): ReadonlyArray<ClientExtensionFactory> => {
  const list = extensions ?? []
  if (list.some((factory) => factory.name === NAME)) return list
  return [
    ...list,
    new ClientPerMessageDeflateFactory({ clientMaxWindowBits: true, compressSettings: { memLevel: DEFAULT_MEM_LEVEL } })
  ]
}

/**
 * Adds a server factory with the defaults of `compression: "deflate"` unless the list already has
 * a permessage-deflate factory (Python's `enable_server_permessage_deflate`): 12-bit windows in
 * both directions (when the client accepts a limit on its own) and `memLevel` 5, which keeps a
 * connection at about 120 KiB of zlib memory (see {@link PerMessageDeflate}).
 * @since 0.1.0
 * @category constructors
 */
export const enableServerPermessageDeflate = (
  extensions: ReadonlyArray<ServerExtensionFactory> | undefined
): ReadonlyArray<ServerExtensionFactory> => {
  const list = extensions ?? []
  if (list.some((factory) => factory.name === NAME)) return list
  return [
    ...list,
    new ServerPerMessageDeflateFactory({
      serverMaxWindowBits: DEFAULT_MAX_WINDOW_BITS,
      clientMaxWindowBits: DEFAULT_MAX_WINDOW_BITS,
      compressSettings: { memLevel: DEFAULT_MEM_LEVEL }
    })
  ]
}
