/**
 * Masking of frame payloads (RFC 6455 §5.3): `out[i] = in[i] ^ key[i % 4]`.
 *
 * This is on the hot path of every frame a server receives and every frame a client sends, so it
 * works word-wise: a few bytes one at a time up to an 8-byte boundary, then 32-bit or 64-bit words
 * XORed with the key repeated (rotated to the alignment point), then the tail byte by byte.
 *
 * Measured on Node 20 (V8 11.3), bytes per ns, unaligned buffers:
 *
 * ```text
 * size      byte loop  Int32 x8  BigUint64 x4
 * 32        0.62       0.47      0.33
 * 64        0.64       0.90      0.65
 * 512       0.64       4.12      4.03
 * 64 KiB    0.66       8.09      14.55
 * ```
 *
 * V8 lowers `BigUint64Array` XOR to plain 64-bit machine operations inside optimized code, so the
 * BigInt path does not allocate. Hence the thresholds below.
 *
 * When the optional dependency `bufferutil` (the native helper `ws` uses) is installed, payloads of
 * {@link NATIVE_THRESHOLD} bytes and more go through it: measured on this machine it unmasks 28
 * bytes per ns at 64 KiB and 1 MiB, twice the 14 of the 64-bit JS path, and 12 against 7 at 1 KiB;
 * below 64 bytes the call overhead eats the gain. Set `EFFECT_WEBSOCKETS_NO_NATIVE=1` to use the JS
 * path only.
 *
 * @since 0.1.0
 */
import { createRequire } from "node:module"

/** The two functions of `bufferutil` (same contracts as ours). */
interface NativeMask {
  mask(source: Uint8Array, key: Uint8Array, output: Uint8Array, offset: number, length: number): void
  unmask(buffer: Uint8Array, key: Uint8Array): void
}

const loadNative = (): NativeMask | undefined => {
  if (process.env.EFFECT_WEBSOCKETS_NO_NATIVE) return undefined
  try {
    const native = createRequire(import.meta.url)("bufferutil") as Partial<NativeMask>
    return typeof native.mask === "function" && typeof native.unmask === "function" ? (native as NativeMask) : undefined
  } catch {
    // Not installed, or no build for this platform: the JS path below always works.
    return undefined
  }
}

const native = loadNative()

/** From this length the native helper, when installed, beats the JS word-wise path. */
export const NATIVE_THRESHOLD = 64

/** Whether masking uses the native `bufferutil` helper. */
export const usesNativeMask: boolean = native !== undefined

/** Below this length a plain byte loop beats building a word view (measured crossover ~40-48). */
const WORD_THRESHOLD = 48

/** From this length 64-bit words beat 32-bit words (measured crossover ~512). */
const WIDE_THRESHOLD = 512

// Scratch space to build the repeated, rotated key in native byte order without caring about the
// platform's endianness: write the key bytes, read them back through word views.
const keyScratch = new Uint8Array(8)
const keyWord32 = new Int32Array(keyScratch.buffer)
const keyWord64 = new BigUint64Array(keyScratch.buffer)

/**
 * XORs `buf[start..end)` in place with `key`, where `buf[start]` pairs with `key[0]`.
 */
const xorRange = (buf: Uint8Array, start: number, end: number, key: Uint8Array): void => {
  let i = start
  if (end - start >= WORD_THRESHOLD) {
    // Walk to an 8-byte boundary of the underlying ArrayBuffer so both word views are aligned.
    const lead = (8 - ((buf.byteOffset + i) & 7)) & 7
    for (const stop = i + lead; i < stop; i++) buf[i]! ^= key[(i - start) & 3]!
    const r = (i - start) & 3
    for (let j = 0; j < 8; j++) keyScratch[j] = key[(r + j) & 3]!
    if (end - i >= WIDE_THRESHOLD) {
      const count = (end - i) >>> 3
      const words = new BigUint64Array(buf.buffer, buf.byteOffset + i, count)
      const k = keyWord64[0]!
      let j = 0
      for (const unrolled = count & ~3; j < unrolled; j += 4) {
        words[j]! ^= k
        words[j + 1]! ^= k
        words[j + 2]! ^= k
        words[j + 3]! ^= k
      }
      for (; j < count; j++) words[j]! ^= k
      i += count << 3
    } else {
      const count = (end - i) >>> 2
      const words = new Int32Array(buf.buffer, buf.byteOffset + i, count)
      const k = keyWord32[0]!
      let j = 0
      for (const unrolled = count & ~7; j < unrolled; j += 8) {
        words[j]! ^= k
        words[j + 1]! ^= k
        words[j + 2]! ^= k
        words[j + 3]! ^= k
        words[j + 4]! ^= k
        words[j + 5]! ^= k
        words[j + 6]! ^= k
        words[j + 7]! ^= k
      }
      for (; j < count; j++) words[j]! ^= k
      i += count << 2
    }
  }
  for (; i < end; i++) buf[i]! ^= key[(i - start) & 3]!
}

const isZeroKey = (key: Uint8Array): boolean => (key[0]! | key[1]! | key[2]! | key[3]!) === 0

/**
 * Writes `source[0..length)` masked with the 4-byte `key` into `output` at `offset`.
 * `source` is never modified (unless it is `output` itself at the same offset).
 * @since 0.1.0
 * @category masking
 */
export const mask = (source: Uint8Array, key: Uint8Array, output: Uint8Array, offset: number, length: number): void => {
  if (native !== undefined && length >= NATIVE_THRESHOLD) {
    native.mask(source, key, output, offset, length)
    return
  }
  if (length < WORD_THRESHOLD) {
    for (let i = 0; i < length; i++) output[offset + i] = source[i]! ^ key[i & 3]!
    return
  }
  // A native copy followed by an in-place word-wise XOR beats a byte-wise copy-and-XOR, and
  // needs no care about the relative alignment of `source` and `output`.
  if (source !== output || offset !== 0)
    output.set(length === source.length ? source : source.subarray(0, length), offset)
  if (!isZeroKey(key)) xorRange(output, offset, offset + length, key)
}

/**
 * Unmasks `buffer` in place with the 4-byte `key` (masking is its own inverse).
 * An all-zero key is a no-op and skipped (RFC 6455 §5.3 allows it; some clients use it).
 * @since 0.1.0
 * @category masking
 */
export const unmask = (buffer: Uint8Array, key: Uint8Array): void => {
  if (isZeroKey(key)) return
  if (native !== undefined && buffer.length >= NATIVE_THRESHOLD) native.unmask(buffer, key)
  else xorRange(buffer, 0, buffer.length, key)
}
