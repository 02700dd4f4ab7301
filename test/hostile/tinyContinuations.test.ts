/**
 * Hostile peer (issues 14, 23): 4 connections send messages of 1-byte continuation frames, 65,536
 * of them, four times what used to end a message with 1009. A fragment costs what its bytes cost
 * plus a frame header's work, with no cap on the number of fragments: at maxSize 64 KiB, a
 * message of exactly maxSize 1-byte fragments is echoed, one byte more is refused with 1009, and
 * memory stays bounded while the bystanders keep echoing, on both sides.
 */
import { expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import { describeShells } from "../conformance/shells.js"
import { Op } from "../conformance/wire.js"
import { bounded } from "../fixtures/loopback.js"
import { encode, type HostilePeer, memoryProbe, sides } from "./hostile.js"

const CONNECTIONS = 4
const MAX_SIZE = 65_536
const BYTE = new Uint8Array([0x2a])

const BATCH = 8192

/**
 * Writes a text message of `count` 1-byte fragments: the first, then continuations in batches
 * encoded once, then the final one.
 */
const oneByteFragments = (peer: HostilePeer, count: number) =>
  Effect.gen(function* () {
    yield* peer.write(encode({ opcode: Op.Text, payload: BYTE, fin: false }, peer.side))
    const middle = count - 2
    const batch = Buffer.concat(
      Array.from({ length: BATCH }, () => encode({ opcode: Op.Continuation, payload: BYTE, fin: false }, peer.side))
    )
    yield* peer.writeRepeated(batch, Math.floor(middle / BATCH))
    const rest = Array.from({ length: middle % BATCH }, () =>
      encode({ opcode: Op.Continuation, payload: BYTE, fin: false }, peer.side)
    )
    yield* peer.write(Buffer.concat([...rest, encode({ opcode: Op.Continuation, payload: BYTE }, peer.side)]))
  })

const options = { maxSize: MAX_SIZE }

describeShells("hostile peer: 4 connections of 1-byte continuation frames", (shell) => {
  for (const side of ["server", "client"] as const) {
    it.scopedLive(
      `our ${side} echoes each message of ${MAX_SIZE} 1-byte fragments (maxSize); memory stays bounded and others keep echoing`,
      () =>
        Effect.gen(function* () {
          const { control, open } = yield* sides(shell)[side](options)
          const memory = yield* memoryProbe(shell)
          const messages = yield* Effect.forEach(
            Array.from({ length: CONNECTIONS }),
            () =>
              Effect.gen(function* () {
                const peer = yield* open
                yield* oneByteFragments(peer, MAX_SIZE)
                yield* peer.until(() => peer.messages.length > 0 || peer.closeCode !== undefined).pipe(bounded(30_000))
                expect(peer.closeCode).toBeUndefined()
                return peer.messages.map((m) => m.toString())
              }),
            { concurrency: "unbounded" }
          )
          expect(messages).toEqual(Array.from({ length: CONNECTIONS }, () => ["*".repeat(MAX_SIZE)]))
          yield* memory.check(`1-byte continuations against our ${side}`)
          yield* control.check
        }),
      60_000
    )

    it.scopedLive(
      `our ${side} refuses with 1009 a message of ${MAX_SIZE + 1} 1-byte fragments`,
      () =>
        Effect.gen(function* () {
          const { open } = yield* sides(shell)[side](options)
          const peer = yield* open
          yield* oneByteFragments(peer, MAX_SIZE + 1)
          const code = yield* peer.closed.pipe(bounded(30_000))
          expect(code).toBe(1009)
          expect(peer.messages).toEqual([])
        }),
      60_000
    )
  }
})
