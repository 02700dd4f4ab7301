/**
 * Hostile peer (issue 14): a frame header with reserved bits no extension claims (RSV2, RSV3, or
 * RSV1 without permessage-deflate), or reserved bits on a continuation of a compressed message,
 * announcing a large payload that never comes. The connection fails with 1002 at the header, before
 * any payload, instead of buffering up to maxSize first; on both sides.
 */
import { expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import { describeShells } from "../conformance/shells.js"
import { deflateMessage, type FrameSpec, Op } from "../conformance/wire.js"
import { bounded } from "../fixtures/loopback.js"
import { encode, memoryProbe, sides } from "./hostile.js"

/** Large enough that buffering the payload would show, within maxSize so that only the bits are wrong. */
const MAX_SIZE = 64 * 1024 * 1024
const DECLARED = BigInt(MAX_SIZE - 1024)
const EMPTY = new Uint8Array(0)

const CASES: ReadonlyArray<{
  readonly title: string
  readonly deflate: boolean
  readonly frames: ReadonlyArray<FrameSpec>
}> = [
  {
    title: "RSV2",
    deflate: false,
    frames: [{ opcode: Op.Binary, payload: EMPTY, rsv2: true, declaredLength: DECLARED }]
  },
  {
    title: "RSV3",
    deflate: false,
    frames: [{ opcode: Op.Text, payload: EMPTY, rsv3: true, declaredLength: DECLARED }]
  },
  {
    title: "RSV1 without permessage-deflate",
    deflate: false,
    frames: [{ opcode: Op.Binary, payload: EMPTY, rsv1: true, declaredLength: DECLARED }]
  },
  {
    title: "RSV2 with permessage-deflate",
    deflate: true,
    frames: [{ opcode: Op.Binary, payload: EMPTY, rsv1: true, rsv2: true, declaredLength: DECLARED }]
  },
  {
    title: "RSV1 on a continuation of a compressed message",
    deflate: true,
    frames: [
      {
        opcode: Op.Text,
        payload: deflateMessage(Buffer.from("compressed message, first fragment")),
        rsv1: true,
        fin: false
      },
      { opcode: Op.Continuation, payload: EMPTY, rsv1: true, declaredLength: DECLARED }
    ]
  },
  {
    title: "RSV3 on a continuation of a compressed message",
    deflate: true,
    frames: [
      { opcode: Op.Binary, payload: deflateMessage(Buffer.alloc(100, 7)), rsv1: true, fin: false },
      { opcode: Op.Continuation, payload: EMPTY, rsv3: true, declaredLength: DECLARED }
    ]
  }
]

describeShells("hostile peer: reserved bits with a large declared length", (shell) => {
  for (const side of ["server", "client"] as const) {
    for (const c of CASES) {
      it.scopedLive(`our ${side}: ${c.title} → 1002 at the header, before any payload`, () =>
        Effect.gen(function* () {
          const extensions = c.deflate ? "permessage-deflate" : undefined
          const { control, open } =
            side === "server"
              ? yield* sides(shell).server({ maxSize: MAX_SIZE, compression: c.deflate ? "deflate" : null }, extensions)
              : yield* sides(shell).client({ maxSize: MAX_SIZE }, extensions)
          const memory = yield* memoryProbe(shell)
          const peer = yield* open
          // Only headers (and a small first fragment): the announced payload is never sent.
          yield* peer.write(Buffer.concat(c.frames.map((frame) => encode(frame, peer.side))))
          const code = yield* peer.closed.pipe(bounded(5000))
          expect(code).toBe(1002)
          yield* memory.check(`${c.title} against our ${side}`)
          yield* control.check
        })
      )
    }
  }
})
