/**
 * A raw deflate or inflate stream driven synchronously, for the sans-I/O permessage-deflate
 * extension (the protocol layer is synchronous, like Python's). Node has no public synchronous
 * API for a zlib stream kept across calls (`zlib.inflateRawSync` starts a new stream each time, and
 * `_processChunk` closes the stream after one call), so this drives the stream's native handle with
 * `writeSync`, the primitive Node's own synchronous helpers use, checked when the stream is made.
 *
 * The same stream can also be run on libuv's thread pool (`runAsync`, through the stream's public
 * `write` and `flush`, as `ws` does), so that compressing megabytes leaves the event loop free.
 */
import { Buffer } from "node:buffer"
import * as zlib from "node:zlib"

const Z_SYNC_FLUSH = zlib.constants.Z_SYNC_FLUSH

/**
 * Output buffer of a run on the thread pool: each trip to the pool fills at most this much. The
 * stream is made with the smallest one (its synchronous runs bring their own), and gets it back after.
 */
const ASYNC_CHUNK = 64 * 1024

const EMPTY = new Uint8Array(0)
const EMPTY_OUTPUT = Buffer.alloc(zlib.constants.Z_MIN_CHUNK)

/** The native zlib handle of a Node zlib stream (lib/zlib.js, `processChunkSync`). */
interface ZlibHandle {
  writeSync(
    flush: number,
    input: Uint8Array,
    inOff: number,
    inLen: number,
    output: Uint8Array,
    outOff: number,
    outLen: number
  ): void
  onerror: (message: string, errno: number, code?: string) => void
}

/** The fields of a Node zlib stream that size the output of its asynchronous runs (lib/zlib.js). */
interface StreamOutput {
  _chunkSize: number
  _outBuffer: Uint8Array
  _outOffset: number
}

/** Called once when a run on the thread pool ends: the output, or the zlib error message. */
export type AsyncRunDone = (error: string | undefined, chunks: Array<Uint8Array>, total: number) => void

/** A raw deflate or inflate stream, driven synchronously and kept across messages. */
export class ZlibEngine {
  private readonly handle: ZlibHandle
  /** `[availOutAfter, availInAfter]`, written by the handle after each `writeSync`. */
  private readonly state: Uint32Array
  /** Message of the last zlib error; the stream is unusable once set. */
  error: string | undefined = undefined
  /** Whether the stream has processed data since it was created or reset. */
  used = false
  /** Whether an inflater reached the end of a DEFLATE stream (a block with BFINAL set). */
  ended = false
  private availIn = 0
  private availOut = 0
  /** The run on the thread pool in progress: its callback and output so far. */
  private pending: AsyncRunDone | undefined = undefined
  private pendingChunks: Array<Uint8Array> = []
  private pendingTotal = 0
  private listening = false

  constructor(private readonly stream: zlib.DeflateRaw | zlib.InflateRaw) {
    const internals = stream as unknown as { _handle?: ZlibHandle; _writeState?: unknown }
    const handle = internals._handle
    const state = internals._writeState
    if (handle === undefined || typeof handle.writeSync !== "function" || !(state instanceof Uint32Array)) {
      stream.close()
      throw new Error("permessage-deflate: this Node.js version does not expose the zlib handle it needs")
    }
    this.handle = handle
    this.state = state
    // Errors are reported synchronously from `writeSync` through `onerror`. Replacing Node's
    // handler keeps the stream from being destroyed and from emitting an 'error' event that
    // nobody listens to (which would crash the process): a corrupt message must only fail the
    // connection (RFC 7692 §8: the extension never crashes the endpoint).
    handle.onerror = (message, errno, code) => {
      this.error = `${message} (${code ?? errno})`
      // A run on the thread pool that fails never reaches its flush callback.
      this.settle()
    }
  }

  /** Whether `runAsync` works on this Node.js version (the stream's output fields are there). */
  get canRunAsync(): boolean {
    const output = this.stream as unknown as Partial<StreamOutput>
    return typeof output._chunkSize === "number" && output._outBuffer instanceof Uint8Array
  }

  /** Whether a run on the thread pool is in progress: the stream must not be used meanwhile. */
  get running(): boolean {
    return this.pending !== undefined
  }

  /**
   * Runs zlib over all of `input` with a sync flush on libuv's thread pool, then calls `done` once
   * with the output (or the error). `input` must stay unchanged until then. Nothing else may use
   * the stream meanwhile; `close` ends the run at once with an error.
   */
  runAsync(input: Uint8Array, done: AsyncRunDone): void {
    this.used = true
    if (this.error !== undefined) {
      done(this.error, [], 0)
      return
    }
    const stream = this.stream
    if (!this.listening) {
      this.listening = true
      stream.on("data", (chunk: Uint8Array) => {
        this.pendingChunks.push(chunk)
        this.pendingTotal += chunk.byteLength
      })
    }
    const output = stream as unknown as StreamOutput
    output._chunkSize = ASYNC_CHUNK
    output._outBuffer = Buffer.allocUnsafe(ASYNC_CHUNK)
    output._outOffset = 0
    this.pending = done
    stream.write(input)
    stream.flush(Z_SYNC_FLUSH, () => this.settle())
  }

  /** Ends the run on the thread pool in progress, if any, and gives the stream its small buffer back. */
  private settle(): void {
    const done = this.pending
    if (done === undefined) return
    const chunks = this.pendingChunks
    const total = this.pendingTotal
    this.pending = undefined
    this.pendingChunks = []
    this.pendingTotal = 0
    const output = this.stream as unknown as StreamOutput
    output._chunkSize = zlib.constants.Z_MIN_CHUNK
    output._outBuffer = EMPTY_OUTPUT
    output._outOffset = 0
    done(this.error, chunks, total)
  }

  /**
   * Runs zlib once over `input[inOff, inOff + inLen)` into `output[outOff, outOff + outLen)`.
   * Returns whether it succeeded; `availIn`/`availOut` then tell what was left.
   */
  run(input: Uint8Array, inOff: number, inLen: number, output: Uint8Array, outOff: number, outLen: number): boolean {
    this.used = true
    this.handle.writeSync(Z_SYNC_FLUSH, input, inOff, inLen, output, outOff, outLen)
    if (this.error !== undefined) return false
    this.availOut = this.state[0]!
    this.availIn = this.state[1]!
    return true
  }

  get remainingIn(): number {
    return this.availIn
  }

  get remainingOut(): number {
    return this.availOut
  }

  reset(): void {
    if (!this.used) return
    this.stream.reset()
    this.used = false
    this.ended = false
  }

  close(): void {
    if (this.pending !== undefined) {
      this.error ??= "stream closed"
      this.settle()
    }
    this.stream.close()
  }
}

/** Joins output chunks into one exactly-sized plain `Uint8Array`. */
export const collect = (chunks: ReadonlyArray<Uint8Array>, total: number): Uint8Array => {
  if (chunks.length === 0) return EMPTY
  if (chunks.length === 1) {
    const chunk = chunks[0]!
    // Keep a view when it fills most of its buffer, copy otherwise so that a short message does
    // not pin a large output buffer for as long as the application keeps it.
    return chunk.byteLength * 2 >= chunk.buffer.byteLength
      ? new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength)
      : new Uint8Array(chunk)
  }
  const out = new Uint8Array(total)
  let offset = 0
  for (const chunk of chunks) {
    out.set(chunk, offset)
    offset += chunk.byteLength
  }
  return out
}
