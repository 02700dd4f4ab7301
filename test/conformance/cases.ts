/**
 * The case table of the conformance suite, section by section in the order (and, where a case
 * matches one, with the number) of the Autobahn testsuite: 1 framing, 2 pings and pongs,
 * 3 reserved bits, 4 opcodes, 5 fragmentation, 6 UTF-8, 7 close handling, 9.3/9.4 large messages
 * in many fragments, 12/13 permessage-deflate. Each case is written from the peer's point of view and runs unchanged
 * against our server (the peer masks) and our client (the peer does not): see `peer.ts`.
 */
import * as fc from "effect/FastCheck"
import type { Case, Expectation, FailureCause, Reply, Step } from "./peer.js"
import { MAX_SIZE } from "./peer.js"
import { closePayload, deflateMessage, type FrameSpec, hex, invalidAsPrefix, Op } from "./wire.js"

// ---------------------------------------------------------------------------
// Builders
// ---------------------------------------------------------------------------

type Payload = Uint8Array | string
type FrameOptions = Omit<FrameSpec, "opcode" | "payload">

const bytes = (payload: Payload): Buffer =>
  typeof payload === "string" ? Buffer.from(payload, "utf8") : Buffer.from(payload)

const frame = (opcode: number, payload: Payload = "", options: FrameOptions = {}): FrameSpec => ({
  opcode,
  payload: bytes(payload),
  ...options
})
const text = (payload: Payload, options?: FrameOptions) => frame(Op.Text, payload, options)
const binary = (payload: Payload, options?: FrameOptions) => frame(Op.Binary, payload, options)
const cont = (payload: Payload, options?: FrameOptions) => frame(Op.Continuation, payload, options)
const ping = (payload: Payload = "", options?: FrameOptions) => frame(Op.Ping, payload, options)
const pong = (payload: Payload = "", options?: FrameOptions) => frame(Op.Pong, payload, options)
const close = (code?: number, reason: Payload = "", options?: FrameOptions) =>
  frame(Op.Close, code === undefined ? "" : closePayload(code, bytes(reason)), options)
const more: FrameOptions = { fin: false }

/** Steps: frames (optionally chopped into writes of `chop` bytes), waits for replies, pauses. */
const send = (...frames: ReadonlyArray<FrameSpec>): Array<Step> => frames.map((f) => ({ _tag: "Frame", frame: f }))
const chopped = (chop: number, ...frames: ReadonlyArray<FrameSpec>): Array<Step> =>
  frames.map((f) => ({ _tag: "Frame", frame: f, chop }))
const awaitReplies = (replies: number): Step => ({ _tag: "Await", replies })
/** A frame written a byte per segment up to its payload byte `upTo`; the close must come before the rest. */
const drip = (f: FrameSpec, upTo: number): Step => ({ _tag: "Drip", frame: f, upTo })
const pause = (millis: number): Step => ({ _tag: "Pause", millis })

/** Replies: a text or binary message echoed, a pong. */
const T = (payload: Payload): Reply => ({ kind: "text", data: bytes(payload) })
const B = (payload: Payload): Reply => ({ kind: "binary", data: bytes(payload) })
const P = (payload: Payload = ""): Reply => ({ kind: "pong", data: bytes(payload) })

/** Expectations. */
const echo = (...replies: ReadonlyArray<Reply>): Expectation => ({ _tag: "Echo", replies })
const failsWith =
  (code: number, cause: FailureCause) =>
  (...replies: ReadonlyArray<Reply>): Expectation => ({ _tag: "Close", code, cause, replies })
const protocolError = failsWith(1002, "ProtocolError")
const invalidData = failsWith(1007, "InvalidUtf8")
const tooBig = failsWith(1009, "PayloadTooBig")
/** The implementation answers the peer's close frame with `code` (no failure on its side). */
const closes = (code: number, reason?: string): Expectation => ({
  _tag: "Close",
  code,
  cause: undefined,
  reason,
  replies: []
})
const fails = (...replies: ReadonlyArray<Reply>): Expectation => ({ _tag: "Fail", replies })

const kase = (
  id: string,
  title: string,
  steps: ReadonlyArray<Step>,
  expect: Expectation,
  options: Omit<Case, "id" | "title" | "steps" | "expect"> = {}
): Case => ({ id, title, steps, expect, ...options })

/** A deterministic pseudo-random generator (mulberry32), so that payloads are the same every run. */
const prng = (seed: number) => () => {
  seed = (seed + 0x6d2b79f5) | 0
  let t = Math.imul(seed ^ (seed >>> 15), 1 | seed)
  t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296
}

const WORDS = ["the", "WebSocket", "protocol", "κόσμε", "frame", "mask", "deflate", "€", "ping", "🎉", "close", "utf-8"]

/** Compressible text of exactly `size` bytes of valid UTF-8 (words, some of them multi-byte). */
export const wordyText = (size: number, seed: number): Buffer => {
  const random = prng(seed)
  const parts: Array<string> = []
  let length = 0
  while (length < size) {
    const word = `${WORDS[Math.floor(random() * WORDS.length)]!} `
    parts.push(word)
    length += Buffer.byteLength(word)
  }
  const out = Buffer.from(parts.join(""), "utf8")
  // Trim to `size` bytes, then pad with ASCII where the cut fell inside a multi-byte character.
  let end = size
  while (end > 0 && end < out.length && (out[end]! & 0xc0) === 0x80) end--
  return Buffer.concat([out.subarray(0, end), Buffer.alloc(size - end, "x")])
}

/** Incompressible bytes. */
export const noise = (size: number, seed: number): Buffer => {
  const random = prng(seed)
  const out = Buffer.allocUnsafe(size)
  for (let i = 0; i < size; i++) out[i] = Math.floor(random() * 256)
  return out
}

const KOSME = hex("cebae1bdb9cf83cebcceb5")
const HELLO_UTF8 = Buffer.from("Hello-µ@ßöäüàá-UTF-8!!", "utf8")

/** `payload` split in two at every byte boundary: one two-fragment message per boundary. */
const splitsAtEveryBoundary = (opcode: number, payload: Buffer): Array<FrameSpec> => {
  const frames: Array<FrameSpec> = []
  for (let k = 1; k < payload.length; k++) {
    frames.push(frame(opcode, payload.subarray(0, k), more), cont(payload.subarray(k)))
  }
  return frames
}

/** `payload` as one fragment per byte. */
const bytewise = (opcode: number, payload: Buffer): Array<FrameSpec> =>
  [...payload].map((byte, i) =>
    frame(i === 0 ? opcode : Op.Continuation, Buffer.from([byte]), { fin: i === payload.length - 1 })
  )

const repeat = <A>(n: number, f: (i: number) => A): Array<A> => Array.from({ length: n }, (_, i) => f(i))

// ---------------------------------------------------------------------------
// 1 Framing
// ---------------------------------------------------------------------------

const LENGTHS: ReadonlyArray<readonly [number, string]> = [
  [0, "7-bit length"],
  [125, "7-bit length"],
  [126, "16-bit length"],
  [127, "16-bit length"],
  [128, "16-bit length"],
  [65535, "16-bit length"],
  [65536, "64-bit length"]
]

/** 16 MiB of a repeated 251-byte pattern (a prime period, so that no frame boundary lines up with it). */
const sixteenMiB = (): Buffer => {
  const pattern = Buffer.from(repeat(251, (i) => (i * 7) & 0xff))
  return Buffer.alloc(MAX_SIZE, pattern)
}

export const framing = (): ReadonlyArray<Case> => {
  const SIXTEEN_MIB_PAYLOAD = sixteenMiB()
  return [
    ...LENGTHS.map(([n, encoding], i) =>
      kase(`1.1.${i + 1}`, `text of ${n} bytes (${encoding})`, send(text("*".repeat(n))), echo(T("*".repeat(n))))
    ),
    kase(
      "1.1.8",
      "text of 65536 bytes written in chops of 997 bytes",
      chopped(997, text("*".repeat(65536))),
      echo(T("*".repeat(65536)))
    ),
    ...LENGTHS.map(([n, encoding], i) =>
      kase(
        `1.2.${i + 1}`,
        `binary of ${n} bytes (${encoding})`,
        send(binary(Buffer.alloc(n, 0xfe))),
        echo(B(Buffer.alloc(n, 0xfe)))
      )
    ),
    kase(
      "1.2.8",
      "binary of 65536 bytes written in chops of 997 bytes",
      chopped(997, binary(Buffer.alloc(65536, 0xfe))),
      echo(B(Buffer.alloc(65536, 0xfe)))
    ),
    kase(
      "1.3.1",
      "binary of 16 MiB, maxSize (64-bit length)",
      send(binary(SIXTEEN_MIB_PAYLOAD)),
      echo(B(SIXTEEN_MIB_PAYLOAD)),
      {
        heavy: true,
        timeout: 15_000
      }
    ),
    kase(
      "1.3.2",
      "text of 1 MiB with multi-byte characters",
      send(text(wordyText(1 << 20, 2))),
      echo(T(wordyText(1 << 20, 2))),
      {
        timeout: 5000
      }
    ),
    kase(
      "1.3.3",
      "header announcing 16 MiB + 1 byte, over maxSize (refused before the payload)",
      send(binary("", { declaredLength: BigInt(MAX_SIZE + 1) })),
      tooBig()
    ),
    kase(
      "1.3.4",
      "64-bit length with its most significant bit set",
      send(binary("hello", { declaredLength: 0x8000_0000_0000_0005n })),
      fails()
    ),
    kase("1.3.5", "5 bytes with a non-minimal 16-bit length", send(text("hello", { encoding: 16 })), echo(T("hello"))),
    kase(
      "1.3.6",
      "5 bytes with a non-minimal 64-bit length",
      send(binary("hello", { encoding: 64 })),
      echo(B("hello"))
    ),
    kase(
      "1.3.7",
      "two messages in one write, then one written a byte at a time",
      [...send(text("first"), binary("second")), ...chopped(1, text("third"))],
      echo(T("first"), B("second"), T("third"))
    ),
    kase(
      "1.4.1",
      "data frame with the wrong mask bit",
      send(text("Hello, world!", { wrongMask: true })),
      protocolError()
    ),
    kase("1.4.2", "ping with the wrong mask bit", send(ping("Hello, world!", { wrongMask: true })), protocolError()),
    kase(
      "1.4.3",
      "text echoed, then a frame with the wrong mask bit",
      [...send(text("Hello")), awaitReplies(1), ...send(binary("world", { wrongMask: true }))],
      protocolError(T("Hello"))
    )
  ]
}

// ---------------------------------------------------------------------------
// 2 Pings and pongs
// ---------------------------------------------------------------------------

const HELLO = "Hello, world!"

const PING_BINARY = Buffer.from([0x00, 0xff, 0xfe, 0xfd, 0xfc, 0xfb, 0x00, 0xff])

export const pings = (): ReadonlyArray<Case> => [
  kase("2.1", "ping without payload", send(ping()), echo(P())),
  kase("2.2", "ping with a small text payload", send(ping("Hello, world!")), echo(P("Hello, world!"))),
  kase("2.3", "ping with a small binary payload", send(ping(PING_BINARY)), echo(P(PING_BINARY))),
  kase("2.4", "ping with 125 bytes", send(ping(Buffer.alloc(125, 0xfe))), echo(P(Buffer.alloc(125, 0xfe)))),
  kase(
    "2.5",
    "ping with 126 bytes (over the control frame limit)",
    send(ping(Buffer.alloc(126, 0xfe))),
    protocolError()
  ),
  kase(
    "2.6",
    "ping with 125 bytes written a byte at a time",
    chopped(1, ping(Buffer.alloc(125, 0xfe))),
    echo(P(Buffer.alloc(125, 0xfe)))
  ),
  kase("2.7", "unsolicited pong without payload is ignored", send(pong()), echo()),
  kase("2.8", "unsolicited pong with payload is ignored", send(pong("unsolicited pong payload")), echo()),
  kase(
    "2.9",
    "unsolicited pong, then a ping",
    send(pong("unsolicited pong payload"), ping("ping payload")),
    echo(P("ping payload"))
  ),
  kase(
    "2.10",
    "10 pings, each answered in order",
    send(...repeat(10, (i) => ping(`payload-${i}`))),
    echo(...repeat(10, (i) => P(`payload-${i}`)))
  ),
  kase(
    "2.11",
    "10 pings written a byte at a time",
    chopped(1, ...repeat(10, (i) => ping(`payload-${i}`))),
    echo(...repeat(10, (i) => P(`payload-${i}`)))
  ),
  kase(
    "2.12",
    "a ping of every payload size from 0 to 125 bytes",
    send(...repeat(126, (n) => ping(noise(n, n)))),
    echo(...repeat(126, (n) => P(noise(n, n))))
  ),
  kase("2.13", "ping with FIN clear (a fragmented control frame)", send(ping("fragment", more)), protocolError()),
  kase("2.14", "pong of 126 bytes", send(pong(Buffer.alloc(126, 0xfe))), protocolError()),
  kase("2.15", "ping, then a text message", send(ping("ping"), text("text")), echo(P("ping"), T("text"))),
  kase(
    "2.16",
    "text, a ping of 126 bytes, then a ping, in one write: echo, then close, no pong",
    send(text(HELLO), ping(Buffer.alloc(126, 0xfe)), ping(HELLO)),
    protocolError(T(HELLO))
  ),
  kase(
    "2.17",
    "text, a fragmented ping, then a ping, in one write: echo, then close, no pong",
    send(text(HELLO), ping("fragment", more), ping(HELLO)),
    protocolError(T(HELLO))
  )
]

// ---------------------------------------------------------------------------
// 3 Reserved bits (no extension negotiated)
// ---------------------------------------------------------------------------

export const reservedBits = (): ReadonlyArray<Case> => [
  kase("3.1", "text with RSV1", send(text(HELLO, { rsv1: true })), protocolError()),
  kase(
    "3.2",
    "text echoed, then text with RSV2, then a ping (not answered)",
    [...send(text(HELLO)), awaitReplies(1), ...send(text(HELLO, { rsv2: true }), ping(HELLO))],
    protocolError(T(HELLO))
  ),
  kase(
    "3.3",
    "text echoed, then text with RSV1 and RSV2, then a ping",
    [...send(text(HELLO)), awaitReplies(1), ...send(text(HELLO, { rsv1: true, rsv2: true }), ping(HELLO))],
    protocolError(T(HELLO))
  ),
  kase(
    "3.4",
    "text echoed, then text with RSV3 written a byte at a time, then a ping",
    [...send(text(HELLO)), awaitReplies(1), ...chopped(1, text(HELLO, { rsv3: true }), ping(HELLO))],
    protocolError(T(HELLO))
  ),
  kase("3.5", "binary with RSV1 and RSV3", send(binary(PING_BINARY, { rsv1: true, rsv3: true })), protocolError()),
  kase("3.6", "ping with RSV2 and RSV3", send(ping(HELLO, { rsv2: true, rsv3: true })), protocolError()),
  kase(
    "3.7",
    "close with all three RSV bits",
    send(close(1000, "", { rsv1: true, rsv2: true, rsv3: true })),
    protocolError()
  ),
  kase("3.8", "continuation with RSV2", send(text("frag", more), cont("ment", { rsv2: true })), protocolError()),
  // Strict ordering: a message that arrived before the violation, in the same write, is delivered
  // and its echo goes out before the close frame; nothing after the violation is processed.
  ...(
    [
      ["3.9", "RSV2", { rsv2: true }],
      ["3.10", "RSV1 (no extension)", { rsv1: true }],
      ["3.11", "RSV3", { rsv3: true }]
    ] as const
  ).map(([id, label, bits]) =>
    kase(
      id,
      `text, then text with ${label}, then a ping, in one write: echo, then close, no pong`,
      send(text(HELLO), text(HELLO, bits), ping(HELLO)),
      protocolError(T(HELLO))
    )
  ),
  kase(
    "3.12",
    "text, then a header with RSV2 announcing 1 MiB whose payload never comes: close at the header",
    send(text(HELLO), binary("", { rsv2: true, declaredLength: 1n << 20n })),
    protocolError(T(HELLO))
  ),
  kase(
    "3.13",
    "a header with RSV1 (no extension) announcing 1 MiB whose payload never comes: close at the header",
    send(binary("", { rsv1: true, declaredLength: 1n << 20n })),
    protocolError()
  ),
  kase(
    "3.14",
    "text without FIN, then a continuation with RSV3 announcing 1 MiB: close at the header",
    send(text("frag", more), cont("", { rsv3: true, declaredLength: 1n << 20n })),
    protocolError()
  )
]

// ---------------------------------------------------------------------------
// 4 Reserved opcodes
// ---------------------------------------------------------------------------

const RESERVED_OPCODES = [0x3, 0x4, 0x5, 0x6, 0x7, 0xb, 0xc, 0xd, 0xe, 0xf]

export const opcodes = (): ReadonlyArray<Case> =>
  RESERVED_OPCODES.flatMap((opcode) => {
    const section = opcode < 0x8 ? "4.1" : "4.2"
    const label = `0x${opcode.toString(16).toUpperCase()}`
    return [
      kase(`${section}.${label}.a`, `reserved opcode ${label} without payload`, send(frame(opcode)), protocolError()),
      kase(
        `${section}.${label}.b`,
        `text echoed, then reserved opcode ${label} with payload, then a ping (not answered)`,
        [...send(text(HELLO)), awaitReplies(1), ...send(frame(opcode, "reserved opcode payload"), ping(HELLO))],
        protocolError(T(HELLO))
      ),
      kase(
        `${section}.${label}.c`,
        `text, then reserved opcode ${label}, then a ping, in one write: echo, then close, no pong`,
        send(text(HELLO), frame(opcode, "reserved opcode payload"), ping(HELLO)),
        protocolError(T(HELLO))
      )
    ]
  })

// ---------------------------------------------------------------------------
// 5 Fragmentation
// ---------------------------------------------------------------------------

const F1 = "fragment1"
const F2 = "fragment2"

export const fragmentation = (): ReadonlyArray<Case> => [
  kase("5.1", "ping in two fragments", send(ping(F1, more), cont(F2)), protocolError()),
  kase("5.2", "pong in two fragments", send(pong(F1, more), cont(F2)), protocolError()),
  kase("5.3", "text in two fragments", send(text(F1, more), cont(F2)), echo(T(F1 + F2))),
  kase("5.4", "text in two fragments written a byte at a time", chopped(1, text(F1, more), cont(F2)), echo(T(F1 + F2))),
  kase(
    "5.5",
    "text in two fragments with a pause between them",
    [...send(text(F1, more)), pause(20), ...send(cont(F2))],
    echo(T(F1 + F2))
  ),
  kase(
    "5.6",
    "text in two fragments with a ping between them",
    send(text(F1, more), ping("ping"), cont(F2)),
    echo(P("ping"), T(F1 + F2))
  ),
  kase(
    "5.7",
    "text in two fragments with a ping between them, a byte at a time",
    chopped(1, text(F1, more), ping("ping"), cont(F2)),
    echo(P("ping"), T(F1 + F2))
  ),
  kase(
    "5.8",
    "the ping between the fragments is answered before the message completes",
    [...send(text(F1, more), ping("ping")), awaitReplies(1), ...send(cont(F2))],
    echo(P("ping"), T(F1 + F2))
  ),
  kase("5.9", "continuation with FIN and no message started, then text", send(cont(F1), text(F2)), protocolError()),
  kase(
    "5.10",
    "continuation with FIN and no message started, a byte at a time",
    chopped(1, cont(F1), text(F2)),
    protocolError()
  ),
  kase("5.12", "continuation without FIN and no message started", send(cont(F1, more), text(F2)), protocolError()),
  kase(
    "5.15",
    "message in two fragments echoed, then a continuation without FIN, then text",
    [...send(text(F1, more), cont(F2)), awaitReplies(1), ...send(cont("fragment3", more), text("fragment4"))],
    protocolError(T(F1 + F2))
  ),
  kase(
    "5.16",
    "continuation, text, continuation (twice)",
    send(cont(F1, more), text(F2, more), cont("fragment3"), cont(F1, more), text(F2, more), cont("fragment3")),
    protocolError()
  ),
  kase(
    "5.17",
    "continuation with FIN, text without FIN, continuation",
    send(cont(F1), text(F2, more), cont("fragment3")),
    protocolError()
  ),
  kase("5.18", "text without FIN, then a new text frame", send(text(F1, more), text(F2)), protocolError()),
  kase("5.18.1", "binary without FIN, then a new text frame", send(binary(F1, more), text(F2)), protocolError()),
  kase(
    "5.18.2",
    "text without FIN, then a new binary frame without FIN",
    send(text(F1, more), binary(F2, more)),
    protocolError()
  ),
  kase(
    "5.19",
    "text in 5 fragments with pings between and pauses",
    [
      ...send(text("fragment1", more), cont("fragment2", more), ping("pongme 1!")),
      pause(20),
      ...send(cont("fragment3", more), cont("fragment4", more), ping("pongme 2!")),
      pause(20),
      ...send(cont("fragment5"))
    ],
    echo(P("pongme 1!"), P("pongme 2!"), T("fragment1fragment2fragment3fragment4fragment5"))
  ),
  kase(
    "5.20",
    "text in 5 fragments with pings between, a byte at a time",
    chopped(
      1,
      text("fragment1", more),
      cont("fragment2", more),
      ping("pongme 1!"),
      cont("fragment3", more),
      cont("fragment4", more),
      ping("pongme 2!"),
      cont("fragment5")
    ),
    echo(P("pongme 1!"), P("pongme 2!"), T("fragment1fragment2fragment3fragment4fragment5"))
  ),
  kase(
    "5.21",
    "text in fragments of 1 byte",
    send(...bytewise(Op.Text, Buffer.from("Hello, fragmented world!"))),
    echo(T("Hello, fragmented world!"))
  ),
  kase(
    "5.22",
    "binary in 1000 fragments of 64 bytes",
    send(...repeat(1000, (i) => frame(i === 0 ? Op.Binary : Op.Continuation, noise(64, i), { fin: i === 999 }))),
    echo(B(Buffer.concat(repeat(1000, (i) => noise(64, i)))))
  ),
  kase(
    "5.23",
    "text with empty fragments around a non-empty one",
    send(text("", more), cont("", more), cont("middle", more), cont("")),
    echo(T("middle"))
  ),
  kase(
    "5.24",
    "binary in fragments of every length encoding (125, 126, 65536 bytes)",
    send(binary(noise(125, 1), more), cont(noise(126, 2), more), cont(noise(65536, 3))),
    echo(B(Buffer.concat([noise(125, 1), noise(126, 2), noise(65536, 3)])))
  ),
  kase(
    "5.25",
    "unsolicited pong between fragments is ignored",
    send(text(F1, more), pong("pong"), cont(F2)),
    echo(T(F1 + F2))
  ),
  kase(
    "5.26",
    "two fragmented messages back to back",
    send(text(F1, more), cont(F2), binary(F1, more), cont(F2)),
    echo(T(F1 + F2), B(F1 + F2))
  ),
  kase(
    "5.28",
    "text, then a continuation without a message, then a ping, in one write: echo, then close, no pong",
    send(text(F1), cont(F2), ping(HELLO)),
    protocolError(T(F1))
  ),
  kase(
    "5.29",
    "text, then text without FIN and a new text frame, then a ping, in one write: echo, then close, no pong",
    send(text(F1), text(F2, more), text("fragment3"), ping(HELLO)),
    protocolError(T(F1))
  ),
  kase(
    "5.30",
    "fragmented text, then a fragmented pong, then a ping, in one write: echo, then close, no pong",
    send(text(F1, more), cont(F2), pong("pong", more), ping(HELLO)),
    protocolError(T(F1 + F2))
  ),
  kase(
    "5.27",
    "fragments adding up to more than maxSize (refused at the last header)",
    send(binary(Buffer.alloc(MAX_SIZE / 2), more), cont("", { declaredLength: BigInt(MAX_SIZE / 2 + 1) })),
    tooBig(),
    { heavy: true, timeout: 10_000 }
  )
]

// ---------------------------------------------------------------------------
// 6 UTF-8
// ---------------------------------------------------------------------------

/** Valid UTF-8 (Autobahn 6.2, 6.5–6.7, 6.9, 6.11, 6.22, 6.23): [id, label, bytes]. */
const VALID_UTF8: ReadonlyArray<readonly [string, string, Buffer]> = [
  ["6.2.1", "Hello-µ@ßöäüàá-UTF-8!!", HELLO_UTF8],
  ["6.5.1", "κόσμε", KOSME],
  ["6.6.2", "κόσμε prefix: κ", hex("ceba")],
  ["6.6.5", "κόσμε prefix: κό", hex("cebae1bdb9")],
  ["6.6.6", "κόσμε prefix: κόσ", hex("cebae1bdb9cf83")],
  ["6.6.8", "κόσμε prefix: κόσμ", hex("cebae1bdb9cf83cebc")],
  ["6.7.1", "U+0000", hex("00")],
  ["6.7.2", "U+0080, first 2-byte sequence", hex("c280")],
  ["6.7.3", "U+0800, first 3-byte sequence", hex("e0a080")],
  ["6.7.4", "U+10000, first 4-byte sequence", hex("f0908080")],
  ["6.9.1", "U+007F, last 1-byte sequence", hex("7f")],
  ["6.9.2", "U+07FF, last 2-byte sequence", hex("dfbf")],
  ["6.9.3", "U+FFFF, last 3-byte sequence", hex("efbfbf")],
  ["6.9.4", "U+10FFFF, last code point", hex("f48fbfbf")],
  ["6.11.1", "U+D7FF, before the surrogates", hex("ed9fbf")],
  ["6.11.2", "U+E000, after the surrogates", hex("ee8080")],
  ["6.11.3", "U+FFFD", hex("efbfbd")],
  ...repeat(17, (plane): readonly [string, string, Buffer] => {
    const base = plane * 0x10000
    const label = (cp: number) => `U+${cp.toString(16).toUpperCase()}`
    return [
      `6.22.${plane + 1}`,
      `noncharacters ${label(base + 0xfffe)} and ${label(base + 0xffff)}`,
      Buffer.from(String.fromCodePoint(base + 0xfffe, base + 0xffff), "utf8")
    ]
  }),
  [
    "6.22.18",
    "noncharacters U+FDD0..U+FDEF",
    Buffer.from(String.fromCodePoint(...repeat(32, (i) => 0xfdd0 + i)), "utf8")
  ],
  ["6.23.1", "U+FEFF (byte order mark)", hex("efbbbf")],
  ["6.23.2", "U+FFFD between ASCII", Buffer.from("a\ufffdb", "utf8")],
  [
    "6.23.3",
    "every plane's first code point",
    Buffer.from(String.fromCodePoint(...repeat(17, (p) => p * 0x10000 + 1)), "utf8")
  ]
]

const ALL_CONTINUATION_BYTES = Buffer.from(repeat(64, (i) => 0x80 + i))
const LONELY = (from: number, to: number) => Buffer.from(repeat(to - from + 1, (i) => [from + i, 0x20]).flat())
const MISSING_LAST = [
  "c0",
  "e080",
  "f08080",
  "f8808080",
  "fc80808080",
  "df",
  "efbf",
  "f7bfbf",
  "fbbfbfbf",
  "fdbfbfbfbf"
]

/** Invalid UTF-8 (Autobahn 6.3, 6.6, 6.8, 6.10–6.21): [id, label, bytes]. */
const INVALID_UTF8: ReadonlyArray<readonly [string, string, Buffer]> = [
  ["6.3.1", "κόσμε, a surrogate, then 'edited'", Buffer.concat([KOSME, hex("eda080"), Buffer.from("edited")])],
  ["6.6.1", "κόσμε truncated: ce", hex("ce")],
  ["6.6.3", "κόσμε truncated: ceba e1", hex("cebae1")],
  ["6.6.4", "κόσμε truncated: ceba e1bd", hex("cebae1bd")],
  ["6.6.7", "κόσμε truncated: cebae1bdb9 cf", hex("cebae1bdb9cf")],
  ["6.6.9", "κόσμε truncated: cebae1bdb9cf83 ce", hex("cebae1bdb9cf83ce")],
  ["6.8.1", "5-byte sequence f8888080 80", hex("f888808080")],
  ["6.8.2", "6-byte sequence fc8480808080", hex("fc8480808080")],
  ["6.10.1", "U+1FFFFF as 4 bytes (above U+10FFFF)", hex("f7bfbfbf")],
  ["6.10.2", "5-byte fbbfbfbfbf", hex("fbbfbfbfbf")],
  ["6.10.3", "6-byte fdbfbfbfbfbf", hex("fdbfbfbfbfbf")],
  ["6.11.5", "U+110000 (above U+10FFFF)", hex("f4908080")],
  ["6.12.1", "lone continuation byte 80", hex("80")],
  ["6.12.2", "lone continuation byte bf", hex("bf")],
  ["6.12.3", "2 continuation bytes", hex("80bf")],
  ["6.12.4", "3 continuation bytes", hex("80bf80")],
  ["6.12.5", "4 continuation bytes", hex("80bf80bf")],
  ["6.12.6", "5 continuation bytes", hex("80bf80bf80")],
  ["6.12.7", "6 continuation bytes", hex("80bf80bf80bf")],
  ["6.12.8", "all 64 continuation bytes", ALL_CONTINUATION_BYTES],
  ["6.13.1", "lonely 2-byte lead bytes c0..df each followed by a space", LONELY(0xc0, 0xdf)],
  ["6.13.2", "lonely 3-byte lead bytes e0..ef each followed by a space", LONELY(0xe0, 0xef)],
  ["6.13.3", "lonely 4-byte lead bytes f0..f7 each followed by a space", LONELY(0xf0, 0xf7)],
  ["6.13.4", "lonely 5-byte lead bytes f8..fb each followed by a space", LONELY(0xf8, 0xfb)],
  ["6.13.5", "lonely 6-byte lead bytes fc, fd each followed by a space", LONELY(0xfc, 0xfd)],
  ...MISSING_LAST.map((h, i): readonly [string, string, Buffer] => [
    `6.14.${i + 1}`,
    `last continuation byte missing: ${h}`,
    hex(h)
  ]),
  ["6.15.1", "concatenation of sequences with the last byte missing", hex(MISSING_LAST.join(""))],
  ["6.16.1", "impossible byte fe", hex("fe")],
  ["6.16.2", "impossible byte ff", hex("ff")],
  ["6.16.3", "impossible bytes fefeffff", hex("fefeffff")],
  ["6.17.1", "overlong '/' in 2 bytes", hex("c0af")],
  ["6.17.2", "overlong '/' in 3 bytes", hex("e080af")],
  ["6.17.3", "overlong '/' in 4 bytes", hex("f08080af")],
  ["6.17.4", "overlong '/' in 5 bytes", hex("f8808080af")],
  ["6.17.5", "overlong '/' in 6 bytes", hex("fc80808080af")],
  ["6.18.1", "maximum overlong 2-byte sequence", hex("c1bf")],
  ["6.18.2", "maximum overlong 3-byte sequence", hex("e09fbf")],
  ["6.18.3", "maximum overlong 4-byte sequence", hex("f08fbfbf")],
  ["6.18.4", "maximum overlong 5-byte sequence", hex("f887bfbfbf")],
  ["6.18.5", "maximum overlong 6-byte sequence", hex("fc83bfbfbfbf")],
  ["6.19.1", "overlong NUL in 2 bytes", hex("c080")],
  ["6.19.2", "overlong NUL in 3 bytes", hex("e08080")],
  ["6.19.3", "overlong NUL in 4 bytes", hex("f0808080")],
  ["6.19.4", "overlong NUL in 5 bytes", hex("f880808080")],
  ["6.19.5", "overlong NUL in 6 bytes", hex("fc8080808080")],
  ...["eda080", "edadbf", "edae80", "edafbf", "edb080", "edbe80", "edbfbf"].map(
    (h, i): readonly [string, string, Buffer] => [`6.20.${i + 1}`, `lone UTF-16 surrogate ${h}`, hex(h)]
  ),
  ...[
    "eda080edb080",
    "eda080edbfbf",
    "edadbfedb080",
    "edadbfedbfbf",
    "edae80edb080",
    "edae80edbfbf",
    "edafbfedb080",
    "edafbfedbfbf"
  ].map((h, i): readonly [string, string, Buffer] => [`6.21.${i + 1}`, `paired UTF-16 surrogates ${h}`, hex(h)])
]

export const utf8 = (): ReadonlyArray<Case> => [
  kase("6.1.1", "empty text", send(text("")), echo(T(""))),
  kase("6.1.2", "text of 3 empty fragments", send(text("", more), cont("", more), cont("")), echo(T(""))),
  kase(
    "6.1.3",
    "text of empty fragments around a non-empty one",
    send(text("", more), cont("middle frame payload", more), cont("")),
    echo(T("middle frame payload"))
  ),
  ...VALID_UTF8.map(([id, label, payload]) => kase(id, `valid text: ${label}`, send(text(payload)), echo(T(payload)))),
  ...VALID_UTF8.filter(([, , payload]) => payload.length > 1).map(([id, label, payload]) =>
    kase(
      `${id}.s`,
      `valid text split in two at every byte boundary (${payload.length - 1} messages): ${label}`,
      send(...splitsAtEveryBoundary(Op.Text, payload)),
      echo(...repeat(payload.length - 1, () => T(payload)))
    )
  ),
  kase(
    "6.2.3",
    "valid text, one fragment per byte: Hello-µ@ßöäüàá-UTF-8!!",
    send(...bytewise(Op.Text, HELLO_UTF8)),
    echo(T(HELLO_UTF8))
  ),
  kase("6.2.4", "valid text, one fragment per byte: κόσμε", send(...bytewise(Op.Text, KOSME)), echo(T(KOSME))),
  ...INVALID_UTF8.map(([id, label, payload]) => kase(id, `invalid text: ${label}`, send(text(payload)), invalidData())),
  // Fail fast (RFC 6455 §8.1): a fragment that no continuation can make valid fails the connection
  // at once, without waiting for the rest of the message (which is never sent here).
  ...INVALID_UTF8.map(([id, label, payload]) =>
    invalidAsPrefix(payload)
      ? kase(`${id}.f`, `fail fast, final fragment never sent: ${label}`, send(text(payload, more)), invalidData())
      : kase(
          `${id}.t`,
          `truncated sequence completed by an empty final fragment: ${label}`,
          send(text(payload, more), cont("")),
          invalidData()
        )
  ),
  kase("6.3.2", "invalid text, one fragment per byte", send(...bytewise(Op.Text, INVALID_UTF8[0]![2])), invalidData()),
  kase(
    "6.4.1",
    "fail fast: valid fragment, then U+110000 in the 2nd fragment, final fragment never sent",
    send(text(KOSME, more), cont(hex("f4908080"), more)),
    invalidData()
  ),
  kase(
    "6.4.2",
    "fail fast: sequence starting at the end of the 1st fragment, invalid in the 2nd",
    send(text(Buffer.concat([KOSME, hex("f4")]), more), cont(hex("90"), more)),
    invalidData()
  ),
  kase(
    "6.4.3",
    "fail fast: invalid bytes written a byte at a time",
    [...send(text(KOSME, more)), ...chopped(1, cont(hex("f4908080"), more))],
    invalidData()
  ),
  kase(
    "6.4.4",
    "fail fast: a surrogate in the 1st fragment, final fragment never sent",
    send(text(Buffer.concat([KOSME, hex("eda080")]), more)),
    invalidData()
  ),
  kase(
    "6.4.5",
    "text echoed, then an invalid message: the valid one is not affected",
    [...send(text(KOSME)), awaitReplies(1), ...send(text(hex("c0af")))],
    invalidData(T(KOSME))
  ),
  // Fail fast inside a frame (RFC 6455 §8.1): the close comes at the offending byte, while the
  // rest of the frame is still to be written.
  kase(
    "6.4.7",
    "text frame written a byte at a time: close at the invalid byte, before the rest of the frame",
    [drip(text(Buffer.concat([KOSME, hex("eda080"), Buffer.alloc(2000, 0x2a)])), KOSME.length + 1)],
    invalidData()
  ),
  kase(
    "6.4.8",
    "text echoed, then a continuation written a byte at a time: close at the invalid byte",
    [
      ...send(text(KOSME)),
      awaitReplies(1),
      ...send(text(KOSME, more)),
      drip(cont(Buffer.concat([Buffer.alloc(100, 0x2a), hex("c0af"), Buffer.alloc(2000, 0x2a)])), 100)
    ],
    invalidData(T(KOSME))
  ),
  kase(
    "6.4.9",
    "text frame of 64 KiB written a byte at a time: close at an invalid lead byte",
    [drip(text(Buffer.concat([hex("ff"), Buffer.alloc(65535, 0x2a)])), 0)],
    invalidData()
  ),
  kase(
    "6.4.6",
    "binary messages are not validated",
    send(binary(hex("eda080")), binary(hex("c0af"))),
    echo(B(hex("eda080")), B(hex("c0af")))
  )
]

// ---------------------------------------------------------------------------
// 7 Close handling
// ---------------------------------------------------------------------------

const VALID_CLOSE_CODES = [
  1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000, 3999, 4000, 4999
]
const INVALID_CLOSE_CODES = [0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535]
const REASON_123 = "*".repeat(123)

export const closing = (): ReadonlyArray<Case> => [
  kase("7.1.1", "text echoed, then the peer's clean close", send(text("Hello World")), echo(T("Hello World"))),
  kase("7.1.2", "close sent twice", send(close(1000), close(1000)), closes(1000)),
  kase("7.1.3", "ping after close is not answered", send(close(1000), ping("Hello World")), closes(1000)),
  kase("7.1.4", "text after close is not echoed", send(close(1000), text("Hello World")), closes(1000)),
  kase("7.1.5", "close between the fragments of a message", send(text(F1, more), close(1000), cont(F2)), closes(1000)),
  kase(
    "7.1.6",
    "256 KiB of data after close is ignored",
    send(close(1000), binary(Buffer.alloc(256 * 1024, 0xfe))),
    closes(1000)
  ),
  kase("7.3.1", "close without payload (answered without payload: 1005)", send(close()), closes(1005)),
  kase("7.3.2", "close with a 1-byte payload", send(frame(Op.Close, hex("03"))), protocolError()),
  kase("7.3.3", "close with code 1000 and no reason", send(close(1000)), closes(1000)),
  kase("7.3.4", "close with code 1000 and a reason", send(close(1000, "Hello World!")), closes(1000, "Hello World!")),
  kase("7.3.5", "close with a reason of 123 bytes", send(close(1000, REASON_123)), closes(1000, REASON_123)),
  kase(
    "7.3.6",
    "close with a reason of 124 bytes (126-byte payload)",
    send(close(1000, `${REASON_123}*`)),
    protocolError()
  ),
  kase(
    "7.5.1",
    "close reason with invalid UTF-8",
    send(close(1000, Buffer.concat([KOSME, hex("eda080"), Buffer.from("edited")]))),
    invalidData()
  ),
  kase(
    "7.5.2",
    "close reason written a byte at a time: close at the invalid byte, before the rest of the frame",
    [drip(close(1000, Buffer.concat([KOSME, hex("eda080"), Buffer.alloc(100, 0x2a)])), 2 + KOSME.length + 1)],
    invalidData()
  ),
  ...VALID_CLOSE_CODES.map((code, i) =>
    kase(`7.7.${i + 1}`, `valid close code ${code} is echoed`, send(close(code)), closes(code))
  ),
  ...INVALID_CLOSE_CODES.map((code, i) =>
    kase(`7.9.${i + 1}`, `invalid close code ${code}`, send(close(code)), protocolError())
  )
]

// ---------------------------------------------------------------------------
// 12, 13 permessage-deflate (RFC 7692)
// ---------------------------------------------------------------------------

/** A compressed message as one frame with RSV1 (RFC 7692 §6). */
const compressed = (opcode: number, payload: Buffer): FrameSpec =>
  frame(opcode, deflateMessage(payload), { rsv1: true })

/** A compressed message split into `parts` frames: RSV1 on the first only (RFC 7692 §6.1). */
const compressedFragments = (opcode: number, payload: Buffer, parts: number, rsv1OnContinuations = false) => {
  const data = deflateMessage(payload)
  const size = Math.ceil(data.length / parts)
  return repeat(parts, (i) =>
    frame(i === 0 ? opcode : Op.Continuation, data.subarray(i * size, (i + 1) * size), {
      fin: i === parts - 1,
      rsv1: i === 0 || rsv1OnContinuations
    })
  )
}

const DEFLATE_SIZES = [0, 16, 64, 256, 1024, 4096, 16384, 65536, 131072, 1 << 20]

const deflateCase = (
  id: string,
  title: string,
  steps: ReadonlyArray<Step>,
  expect: Expectation,
  options: Omit<Case, "id" | "title" | "steps" | "expect" | "deflate"> = {}
): Case => kase(id, title, steps, expect, { ...options, deflate: true })

export const deflate = (): ReadonlyArray<Case> => [
  ...DEFLATE_SIZES.map((size, i) => {
    const messages = repeat(3, (seed) => wordyText(size, seed + size))
    return deflateCase(
      `12.1.${i + 1}`,
      `3 compressed text messages of ${size} bytes`,
      send(...messages.map((m) => compressed(Op.Text, m))),
      echo(...messages.map(T)),
      { timeout: 5000 }
    )
  }),
  ...[16, 1024, 65536, 262144].map((size, i) => {
    const messages = repeat(3, (seed) => noise(size, seed + size))
    return deflateCase(
      `12.2.${i + 1}`,
      `3 compressed binary messages of ${size} incompressible bytes`,
      send(...messages.map((m) => compressed(Op.Binary, m))),
      echo(...messages.map(B))
    )
  }),
  deflateCase(
    "13.1",
    "compressed text in 3 fragments, RSV1 on the first",
    send(...compressedFragments(Op.Text, wordyText(10_000, 7), 3)),
    echo(T(wordyText(10_000, 7)))
  ),
  deflateCase(
    "13.2",
    "compressed binary with one fragment per compressed byte",
    send(...compressedFragments(Op.Binary, wordyText(300, 8), deflateMessage(wordyText(300, 8)).length)),
    echo(B(wordyText(300, 8)))
  ),
  deflateCase(
    "13.3",
    "compressed fragments with a ping between them",
    send(...compressedFragments(Op.Text, wordyText(2000, 9), 2).flatMap((f, i) => (i === 0 ? [f, ping("ping")] : [f]))),
    echo(P("ping"), T(wordyText(2000, 9)))
  ),
  deflateCase(
    "13.4",
    "uncompressed messages (RSV1 clear) on a compressed connection",
    send(text("not compressed"), compressed(Op.Text, Buffer.from("compressed")), binary("raw")),
    echo(T("not compressed"), T("compressed"), B("raw"))
  ),
  deflateCase(
    "13.5.1",
    "RFC 7692 §7.2.3.1 example: 'Hello' in one compressed block",
    send(frame(Op.Text, hex("f248cdc9c90700"), { rsv1: true })),
    echo(T("Hello"))
  ),
  deflateCase(
    "13.5.2",
    "RFC 7692 §7.2.3.4 example: a block with BFINAL set, then another message",
    send(frame(Op.Text, hex("f348cdc9c9070000"), { rsv1: true }), compressed(Op.Text, Buffer.from("again"))),
    echo(T("Hello"), T("again"))
  ),
  deflateCase(
    "13.6",
    "RSV1 on a continuation frame",
    send(...compressedFragments(Op.Text, wordyText(1000, 10), 2, true)),
    protocolError()
  ),
  deflateCase(
    "13.7",
    "RSV1 on an uncompressed continuation",
    send(text("abc", more), cont("def", { rsv1: true })),
    protocolError()
  ),
  deflateCase("13.8", "RSV1 on a ping", send(ping("ping", { rsv1: true })), protocolError()),
  deflateCase(
    "13.9",
    "RSV2 on a compressed message",
    send(frame(Op.Text, deflateMessage(Buffer.from("x")), { rsv1: true, rsv2: true })),
    protocolError()
  ),
  deflateCase(
    "13.10",
    "compressed data that does not inflate",
    send(frame(Op.Binary, hex("ffffffffffff"), { rsv1: true })),
    fails()
  ),
  deflateCase(
    "13.11",
    "compressed text with invalid UTF-8",
    send(compressed(Op.Text, hex("cebae1bdb9eda080"))),
    invalidData()
  ),
  deflateCase(
    "13.13",
    "compressed text in 2 fragments, RSV2 on the continuation announcing 1 MiB: close at the header",
    send(compressedFragments(Op.Text, wordyText(1000, 11), 2)[0]!, cont("", { rsv2: true, declaredLength: 1n << 20n })),
    protocolError()
  ),
  deflateCase(
    "13.14",
    "compressed text echoed, then a compressed message with RSV3, then a ping, in one write: echo, close, no pong",
    send(
      compressed(Op.Text, Buffer.from(HELLO)),
      frame(Op.Text, deflateMessage(Buffer.from("x")), { rsv1: true, rsv3: true }),
      ping(HELLO)
    ),
    protocolError(T(HELLO))
  ),
  deflateCase(
    "13.12",
    "compressed message inflating to more than maxSize",
    send(compressed(Op.Binary, Buffer.alloc(MAX_SIZE + 1024))),
    tooBig(),
    { timeout: 5000 }
  )
]

// ---------------------------------------------------------------------------
// Fuzzing: random valid conversations, optionally ending with one violation
// ---------------------------------------------------------------------------

interface FuzzMessage {
  readonly binary: boolean
  readonly payload: Buffer
  /** Where to cut the payload into fragments. */
  readonly cuts: ReadonlyArray<number>
  /** Pings sent after the first fragment. */
  readonly pings: ReadonlyArray<Buffer>
  /** Write the frames a byte at a time. */
  readonly chop: boolean
}

/** Violations that end a fuzzed conversation, with what the implementation must answer. */
const VIOLATIONS: ReadonlyArray<readonly [string, ReadonlyArray<FrameSpec>, number, FailureCause]> = [
  ["RSV2 on a text frame", [text("x", { rsv2: true })], 1002, "ProtocolError"],
  ["reserved opcode 0xB", [frame(0xb, "x")], 1002, "ProtocolError"],
  ["continuation without a message", [cont("x")], 1002, "ProtocolError"],
  ["new text frame inside a fragmented message", [text("a", more), text("b")], 1002, "ProtocolError"],
  ["ping of 126 bytes", [ping(Buffer.alloc(126))], 1002, "ProtocolError"],
  ["fragmented ping", [ping("x", more)], 1002, "ProtocolError"],
  ["invalid UTF-8 in a text frame", [text(hex("eda080"))], 1007, "InvalidUtf8"],
  ["close with code 1004", [close(1004)], 1002, "ProtocolError"]
]

const fuzzMessage: fc.Arbitrary<FuzzMessage> = fc
  .record({
    binary: fc.boolean(),
    text: fc.string({ unit: "binary", maxLength: 60 }),
    bytes: fc.uint8Array({ maxLength: 300 }),
    cuts: fc.array(fc.nat({ max: 300 }), { maxLength: 5 }),
    pings: fc.array(fc.uint8Array({ maxLength: 125 }), { maxLength: 2 }),
    chop: fc.boolean()
  })
  .map(({ binary: isBinary, bytes: raw, chop, cuts, pings: pingPayloads, text: string }) => {
    const payload = isBinary ? Buffer.from(raw) : Buffer.from(string, "utf8")
    return {
      binary: isBinary,
      payload,
      cuts: [...new Set(cuts.map((cut) => cut % (payload.length + 1)))].sort((a, b) => a - b),
      pings: pingPayloads.map((p) => Buffer.from(p)),
      chop: chop && payload.length < 40
    }
  })

/** A random conversation as a case: messages cut into random fragments (text may be cut inside a character), pings between fragments, and maybe a final violation. */
export const fuzzCase: fc.Arbitrary<Case> = fc
  .record({
    messages: fc.array(fuzzMessage, { minLength: 1, maxLength: 4 }),
    violation: fc.option(fc.nat({ max: VIOLATIONS.length - 1 }), { nil: undefined })
  })
  .map(({ messages, violation }) => {
    const steps: Array<Step> = []
    const replies: Array<Reply> = []
    for (const message of messages) {
      const bounds = [
        0,
        ...message.cuts.filter((cut) => cut > 0 && cut < message.payload.length),
        message.payload.length
      ]
      const count = bounds.length - 1
      const frames: Array<FrameSpec> = []
      for (let i = 0; i < count; i++) {
        const part = message.payload.subarray(bounds[i]!, bounds[i + 1]!)
        frames.push(
          frame(i === 0 ? (message.binary ? Op.Binary : Op.Text) : Op.Continuation, part, { fin: i === count - 1 })
        )
        if (i === 0) for (const payload of message.pings) frames.push(ping(payload))
      }
      steps.push(...(message.chop ? chopped(1, ...frames) : send(...frames)))
      replies.push(...message.pings.map(P), message.binary ? B(message.payload) : T(message.payload))
    }
    if (violation === undefined) {
      return kase("fuzz", `${messages.length} random messages`, steps, echo(...replies))
    }
    const [label, frames, code, cause] = VIOLATIONS[violation]!
    // Wait for every echo first: what the implementation does with messages it has not echoed yet
    // when it fails the connection is a race, not a conformance question.
    steps.push(awaitReplies(replies.length), ...send(...frames))
    return kase("fuzz", `${messages.length} random messages, then ${label}`, steps, failsWith(code, cause)(...replies))
  })

// ---------------------------------------------------------------------------
// 9.3, 9.4 Limits and performance: a large message in many fragments
// ---------------------------------------------------------------------------

/** Size of the messages of Autobahn 9.3 and 9.4. */
const FRAGMENTED_SIZE = 4 * 1024 * 1024
/** Fragment sizes of Autobahn 9.3.1-9.3.9 and 9.4.1-9.4.9: 64 B to 4 MiB, by fours. */
const FRAGMENT_SIZES = [64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304]

/** `payload` in fragments of `size` bytes (the last may be shorter), the first with `opcode`. */
const inFragments = (opcode: number, payload: Buffer, size: number): Array<FrameSpec> =>
  repeat(Math.ceil(payload.length / size), (i) =>
    frame(i === 0 ? opcode : Op.Continuation, payload.subarray(i * size, (i + 1) * size), {
      fin: (i + 1) * size >= payload.length
    })
  )

/**
 * Autobahn 9.3 (text) and 9.4 (binary): 4 MiB in fragments of 64 B to 4 MiB, echoed. There is no
 * limit on the number of fragments (65,536 at 64 B): each costs what its bytes cost plus a frame
 * header's work, and the message's bytes count against `maxSize`. The text is multi-byte UTF-8,
 * so fragments cut characters.
 */
export const manyFragments = (): ReadonlyArray<Case> => {
  const textPayload = wordyText(FRAGMENTED_SIZE, 93)
  const binaryPayload = noise(FRAGMENTED_SIZE, 94)
  return [
    ...FRAGMENT_SIZES.map((size, i) =>
      kase(
        `9.3.${i + 1}`,
        `4 MiB text in fragments of ${size} bytes`,
        send(...inFragments(Op.Text, textPayload, size)),
        echo(T(textPayload)),
        { timeout: 20_000 }
      )
    ),
    ...FRAGMENT_SIZES.map((size, i) =>
      kase(
        `9.4.${i + 1}`,
        `4 MiB binary in fragments of ${size} bytes`,
        send(...inFragments(Op.Binary, binaryPayload, size)),
        echo(B(binaryPayload)),
        { timeout: 20_000 }
      )
    )
  ]
}

// ---------------------------------------------------------------------------
// At the default maxSize (1 MiB): maxSize bounds the message, not its compressed size
// ---------------------------------------------------------------------------

/** Default `maxSize` of the library (1 MiB), for the target run with it. */
const DEFAULT_MAX_SIZE = 1 << 20

export const defaultMaxSize = (): ReadonlyArray<Case> => [
  deflateCase(
    "12.3.1",
    "1 MiB of random bytes compressed (a little more than 1 MiB on the wire) is accepted",
    send(compressed(Op.Binary, noise(DEFAULT_MAX_SIZE, 12))),
    echo(B(noise(DEFAULT_MAX_SIZE, 12))),
    { timeout: 8000 }
  ),
  deflateCase(
    "12.3.2",
    "1 MiB of random bytes compressed, in 16 fragments, is accepted",
    send(...compressedFragments(Op.Binary, noise(DEFAULT_MAX_SIZE, 13), 16)),
    echo(B(noise(DEFAULT_MAX_SIZE, 13))),
    { timeout: 8000 }
  ),
  deflateCase(
    "12.3.3",
    "1 MiB + 1 byte of random bytes compressed is refused",
    send(compressed(Op.Binary, noise(DEFAULT_MAX_SIZE + 1, 14))),
    tooBig(),
    { timeout: 8000 }
  ),
  kase(
    "12.3.4",
    "1 MiB of random bytes uncompressed on a compressed connection is accepted",
    send(binary(noise(DEFAULT_MAX_SIZE, 15))),
    echo(B(noise(DEFAULT_MAX_SIZE, 15))),
    { deflate: true, timeout: 8000 }
  )
]
