/**
 * Hostile peer (issue 14): one connection sends a message of empty continuation frames (FIN clear,
 * length 0) forever. They cost no payload bytes, so only a bound on the number of fragments ends
 * the message: 1009 after MAX_FRAGMENTS, with memory bounded, on both sides.
 */
import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import { bounded } from "../fixtures/loopback.js"
import { fragment, MAX_FRAGMENTS, memoryProbe, sides } from "./hostile.js"

const EMPTY = new Uint8Array(0)

describe("hostile peer: a message of empty continuation frames", () => {
  for (const side of ["server", "client"] as const) {
    it.scopedLive(
      `our ${side} closes it with 1009 after ${MAX_FRAGMENTS} fragments; memory stays bounded and others keep echoing`,
      () =>
        Effect.gen(function* () {
          const { control, open } = yield* sides[side]()
          const memory = memoryProbe()
          const peer = yield* open
          // Four times the bound at most: the close stops the peer long before.
          const sent = yield* peer.writeFrames(4 * MAX_FRAGMENTS, (i) => fragment(i, EMPTY))
          const code = yield* peer.closed.pipe(bounded(20_000))
          expect(code).toBe(1009)
          expect(sent).toBeGreaterThan(MAX_FRAGMENTS)
          memory.check(`empty continuations against our ${side}`)
          yield* control.check
        }),
      60_000
    )
  }
})
