/**
 * A raw deflate or inflate stream driven synchronously, for the sans-I/O permessage-deflate
 * extension (the protocol layer is synchronous, like Python's). Node has no public synchronous
 * API for a zlib stream kept across calls (`zlib.inflateRawSync` starts a new stream each time, and
 * `_processChunk` closes the stream after one call), so this drives the stream's native handle with
 * `writeSync`, the primitive Node's own synchronous helpers use, checked when the stream is made.
 */
import * as zlib from "node:zlib"

const Z_SYNC_FLUSH = zlib.constants.Z_SYNC_FLUSH

const EMPTY = new Uint8Array(0)

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
    }
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
