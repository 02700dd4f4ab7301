/**
 * Hostile peer (issues 14, 23): one connection sends a message of 262,144 empty continuation
 * frames (FIN clear, length 0), sixteen times what used to end it with 1009. They cost no payload
 * bytes, and there is no cap on their number: each costs a frame header's work and no memory (the
 * message is one buffer bounded by maxSize), so the flood costs bounded memory, bystanders keep
 * being served, the message is still echoed when it ends, and a fragment that takes the message
 * over maxSize is still refused with 1009, on both sides.
 */
import { expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import { describeShells } from "../conformance/shells.js"
import { Op } from "../conformance/wire.js"
import { bounded } from "../fixtures/loopback.js"
import { encode, fragment, type HostilePeer, memoryProbe, sides } from "./hostile.js"

const EMPTY = new Uint8Array(0)
const FRAMES = 262_144
/** The default maxSize (1 MiB), which the last fragment declares one byte over. */
const MAX_SIZE = 1_048_576
const BATCH = 16_384

/** Opens a text message and writes FRAMES empty continuation frames, in batches encoded once. */
const flood = (peer: HostilePeer) =>
  Effect.gen(function* () {
    yield* peer.write(encode(fragment(0, EMPTY), peer.side))
    const batch = Buffer.concat(Array.from({ length: BATCH }, () => encode(fragment(1, EMPTY), peer.side)))
    return (yield* peer.writeRepeated(batch, FRAMES / BATCH)) * BATCH
  })

describeShells("hostile peer: a message of empty continuation frames", (shell) => {
  for (const side of ["server", "client"] as const) {
    it.scopedLive(
      `our ${side} reads ${FRAMES} of them with bounded memory while others keep echoing, and echoes the message`,
      () =>
        Effect.gen(function* () {
          const { control, open } = yield* sides(shell)[side]()
          const memory = yield* memoryProbe(shell)
          const peer = yield* open
          expect(yield* flood(peer)).toBe(FRAMES)
          yield* peer.writeFrames(1, () => ({ opcode: Op.Continuation, payload: new Uint8Array([0x2a]) }))
          yield* peer.until(() => peer.messages.length > 0 || peer.closeCode !== undefined).pipe(bounded(30_000))
          expect(peer.closeCode).toBeUndefined()
          expect(peer.messages.map((m) => m.toString())).toEqual(["*"])
          yield* memory.check(`empty continuations against our ${side}`)
          yield* control.check
        }),
      60_000
    )

    it.scopedLive(
      `our ${side} refuses with 1009 a fragment over maxSize after ${FRAMES} empty ones`,
      () =>
        Effect.gen(function* () {
          const { open } = yield* sides(shell)[side]()
          const peer = yield* open
          yield* flood(peer)
          // Its header declares one byte over the budget: refused before any payload byte.
          yield* peer.writeFrames(1, () => ({
            opcode: Op.Continuation,
            payload: EMPTY,
            fin: false,
            declaredLength: BigInt(MAX_SIZE + 1)
          }))
          const code = yield* peer.closed.pipe(bounded(30_000))
          expect(code).toBe(1009)
        }),
      60_000
    )
  }
})
