/**
 * Strict UTF-8 validation (RFC 3629) for text messages and close reasons.
 *
 * RFC 6455 §8.1 requires the payload of Text frames and close reasons to be valid UTF-8, and a
 * receiver should fail the connection as soon as invalid data is seen (close code 1007), even in
 * an early fragment of a message. Strict means: no overlong forms (`C0 80`), no UTF-16
 * surrogates (`ED A0 80`), nothing above U+10FFFF (`F4 90 80 80`), no truncated sequences.
 *
 * Long inputs go to `buffer.isUtf8` (simdutf, strict); short ones to a small DFA, since the
 * native call costs more than it saves below ~24 bytes (the threshold `ws` uses as well).
 *
 * @since 0.1.0
 */
import { isUtf8 } from "node:buffer"

/** From this length the native validator is faster than the JS DFA. */
const NATIVE_THRESHOLD = 24

// Björn Höhrmann's UTF-8 DFA (http://bjoern.hoehrmann.de/utf-8/decoder/dfa/), strict per
// RFC 3629. Bytes map to one of 12 character classes; states are multiples of 12 so that
// `state + class` indexes the transition table directly.
const ACCEPT = 0
const REJECT = 12

// biome-ignore format: table
const CLASSES = new Uint8Array([
  0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0, 0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0, // 00-1F
  0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0, 0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0, // 20-3F
  0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0, 0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0, // 40-5F
  0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0, 0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0, // 60-7F
  1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1, 9,9,9,9,9,9,9,9,9,9,9,9,9,9,9,9, // 80-9F
  7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7, 7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7, // A0-BF
  8,8,2,2,2,2,2,2,2,2,2,2,2,2,2,2, 2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2, // C0-DF
  10,3,3,3,3,3,3,3,3,3,3,3,3,4,3,3, 11,6,6,6,5,8,8,8,8,8,8,8,8,8,8,8 // E0-FF
])

// biome-ignore format: table
const TRANSITIONS = new Uint8Array([
   0,12,24,36,60,96,84,12,12,12,48,72, 12,12,12,12,12,12,12,12,12,12,12,12,
  12, 0,12,12,12,12,12, 0,12, 0,12,12, 12,24,12,12,12,12,12,24,12,24,12,12,
  12,12,12,12,12,12,12,24,12,12,12,12, 12,24,12,12,12,12,12,12,12,24,12,12,
  12,12,12,12,12,12,12,36,12,36,12,12, 12,36,12,12,12,12,12,36,12,36,12,12,
  12,36,12,12,12,12,12,12,12,12,12,12
])

/** Runs the DFA over `bytes[start..end)` from `state`; returns the final state or REJECT. */
const runDfa = (bytes: Uint8Array, start: number, end: number, state: number): number => {
  for (let i = start; i < end; i++) {
    const byte = bytes[i]!
    // ASCII between sequences is the common case: skip the table lookups.
    if (state === ACCEPT && byte < 0x80) continue
    state = TRANSITIONS[state + CLASSES[byte]!]!
    if (state === REJECT) return REJECT
  }
  return state
}

/** Validates the complete sequence `bytes[start..end)`. */
const isValidRange = (bytes: Uint8Array, start: number, end: number): boolean => {
  if (end - start < NATIVE_THRESHOLD) return runDfa(bytes, start, end, ACCEPT) === ACCEPT
  return isUtf8(start === 0 && end === bytes.length ? bytes : bytes.subarray(start, end))
}

/**
 * Whether `bytes` is complete, strictly valid UTF-8 (RFC 3629).
 * @since 0.1.0
 * @category validation
 */
export const isValidUtf8 = (bytes: Uint8Array): boolean =>
  bytes.length < NATIVE_THRESHOLD ? runDfa(bytes, 0, bytes.length, ACCEPT) === ACCEPT : isUtf8(bytes)

/**
 * Start of the incomplete sequence at the end of `bytes[start..end)`, or `end` when the range ends
 * on a sequence boundary (or on bytes the full validator will reject anyway).
 */
const incompleteTail = (bytes: Uint8Array, start: number, end: number): number => {
  // A sequence is at most 4 bytes, so an incomplete one starts in the last 3.
  const limit = Math.max(end - 3, start)
  for (let i = end - 1; i >= limit; i--) {
    const byte = bytes[i]!
    if (byte < 0x80) return end
    if (byte >= 0xc0) {
      const needed = byte >= 0xf0 ? 4 : byte >= 0xe0 ? 3 : 2
      return end - i < needed ? i : end
    }
    // Continuation byte: keep looking for the lead byte.
  }
  return end
}

/**
 * Incremental strict UTF-8 validator for a message that arrives in fragments (RFC 6455 §5.4).
 *
 * A code point may be split between fragments. Invalid data is reported by the `push` that sees
 * it, so a connection can fail fast (RFC 6455 §8.1) without waiting for the final fragment. Only
 * the DFA state of the split sequence is carried between fragments; everything else is validated
 * in place by the native validator, without copying.
 *
 * @since 0.1.0
 * @category validation
 */
export class Utf8Validator {
  private state = ACCEPT

  /**
   * Validates the next fragment. Returns `false` when the data seen so far cannot be valid UTF-8,
   * or, with `final`, when the message ends inside a sequence. After `false` every `push` returns
   * `false` until `reset`. After a successful final `push` the validator is ready for a new message.
   */
  push(bytes: Uint8Array, final: boolean): boolean {
    return this.pushRange(bytes, 0, bytes.length, final)
  }

  /** {@link push} for `bytes[from, end)`, without a view of them. */
  pushRange(bytes: Uint8Array, from: number, end: number, final: boolean): boolean {
    let state = this.state
    if (state === REJECT) return false
    let start = from
    if (state !== ACCEPT) {
      // Finish the sequence carried over from the previous fragment (at most 3 more bytes).
      while (start < end && state !== ACCEPT && state !== REJECT) {
        state = TRANSITIONS[state + CLASSES[bytes[start++]!]!]!
      }
      if (state === REJECT) return this.fail()
      if (state !== ACCEPT) {
        if (final) return this.fail()
        this.state = state
        return true
      }
    }
    const tail = incompleteTail(bytes, start, end)
    if (tail > start && !isValidRange(bytes, start, tail)) return this.fail()
    // The DFA rejects an impossible prefix (`ED A0`, `F4 90`, `E0 80`, `C0`) right away.
    state = runDfa(bytes, tail, end, ACCEPT)
    if (state === REJECT || (final && state !== ACCEPT)) return this.fail()
    this.state = state
    return true
  }

  /** Forgets any partial sequence and error, ready for a new message. */
  reset(): void {
    this.state = ACCEPT
  }

  private fail(): false {
    this.state = REJECT
    return false
  }
}
