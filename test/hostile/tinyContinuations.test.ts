/**
 * Hostile peer (issue 14): 4 connections send messages of 1-byte continuation frames. The message
 * stays far below maxSize (1 MiB) in bytes; the number of fragments ends it: 1009 after
 * MAX_FRAGMENTS, each, with memory bounded, on both sides. A message of exactly MAX_FRAGMENTS
 * fragments is still echoed.
 */
import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import { Op } from "../conformance/wire.js"
import { bounded } from "../fixtures/loopback.js"
import { fragment, MAX_FRAGMENTS, memoryProbe, sides } from "./hostile.js"

const CONNECTIONS = 4
const BYTE = new Uint8Array([0x2a])

describe("hostile peer: 4 connections of 1-byte continuation frames", () => {
  for (const side of ["server", "client"] as const) {
    it.scopedLive(
      `our ${side} closes each with 1009 after ${MAX_FRAGMENTS} fragments; memory stays bounded and others keep echoing`,
      () =>
        Effect.gen(function* () {
          const { control, open } = yield* sides[side]()
          const memory = memoryProbe()
          const codes = yield* Effect.forEach(
            Array.from({ length: CONNECTIONS }),
            () =>
              Effect.gen(function* () {
                const peer = yield* open
                // One fragment over the bound, never the final one: only the fragment count can end it.
                yield* peer.writeFrames(MAX_FRAGMENTS + 1, (i) => fragment(i, BYTE))
                return yield* peer.closed.pipe(bounded(20_000))
              }),
            { concurrency: "unbounded" }
          )
          expect(codes).toEqual(Array.from({ length: CONNECTIONS }, () => 1009))
          memory.check(`1-byte continuations against our ${side}`)
          yield* control.check
        }),
      60_000
    )

    it.scopedLive(
      `our ${side} echoes a message of exactly ${MAX_FRAGMENTS} 1-byte fragments`,
      () =>
        Effect.gen(function* () {
          const { open } = yield* sides[side]()
          const peer = yield* open
          yield* peer.writeFrames(MAX_FRAGMENTS, (i) => ({
            opcode: i === 0 ? Op.Text : Op.Continuation,
            payload: BYTE,
            fin: i === MAX_FRAGMENTS - 1
          }))
          yield* peer.until(() => peer.messages.length > 0 || peer.closeCode !== undefined).pipe(bounded(20_000))
          expect(peer.closeCode).toBeUndefined()
          expect(peer.messages.map((m) => m.toString())).toEqual(["*".repeat(MAX_FRAGMENTS)])
        }),
      60_000
    )
  }
})
