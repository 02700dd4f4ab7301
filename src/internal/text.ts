/**
 * Text messages from bytes, on the hot path of every text message received.
 *
 * Decoding takes a shortcut for large ASCII messages (JSON, protocol text: most of what a
 * WebSocket carries): bytes that are all ASCII are decoded as Latin-1, the same characters, so V8
 * copies them into a one-byte string instead of running its UTF-8 decoder; `isAscii` costs a
 * fraction of it (about 40% faster at 1 MiB). Past 1,031,913 bytes Node makes a Latin-1 string an
 * external string, which V8 counts as external memory: 1 MiB texts echoed this way made 26-30
 * Mark-Compacts per 2 s where the UTF-8 decoder made none, yet the UTF-8 decoder was no faster
 * overall, so the shortcut stays (measured 2026-11-28, commit b8e1608; bench/README, "1 MiB text").
 *
 * Encoding (`Buffer.from(text, "utf8")` where messages are sent) has no such shortcut. Writing an
 * ASCII string as Latin-1 after a UTF-8 length check looked 5.7 times faster at 64 KiB when the
 * same string was encoded again and again, but in a loop that decodes a fresh message and encodes
 * it, as an echo does, both take 75-85 µs at 64 KiB and 1.2-1.5 ms at 1 MiB on Node 20: the
 * allocation of fresh memory for the result dominates.
 *
 * @since 0.1.0
 */
import { Buffer, isAscii } from "node:buffer"

/** Below this many bytes the UTF-8 decoder is as fast. */
const ASCII_SHORTCUT_FROM = 1024

/** Decodes a text message (already validated as UTF-8). */
export const decodeText = (data: Uint8Array): string => {
  const buffer = Buffer.from(data.buffer, data.byteOffset, data.byteLength)
  return data.byteLength >= ASCII_SHORTCUT_FROM && isAscii(buffer) ? buffer.toString("latin1") : buffer.toString("utf8")
}
