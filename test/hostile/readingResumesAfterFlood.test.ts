/**
 * Issue 14, control frames backpressured: after a ping flood paused reading (write buffer over
 * writeLimit), reading resumes once the peer reads the pongs again, also when writeLimit is below
 * the socket's writable high-water mark (here writeLimit 1 KiB, readLimit 1 MiB, which the server
 * also uses as the sockets' highWaterMark: `write()` never returns false, so Node never emits
 * 'drain'; fixed in 6b45000).
 */
import { expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import { describeShells } from "../conformance/shells.js"
import { Op } from "../conformance/wire.js"
import { bounded } from "../fixtures/loopback.js"
import { encode, sides } from "./hostile.js"

const FLOOD_LIMIT = 40 * 1024 * 1024

describeShells("reading resumes after a ping flood", (shell) => {
  for (const [title, options] of [
    ["default limits", {}],
    ["writeLimit below the socket's high-water mark", { writeLimit: 1024, readLimit: 1 << 20 }]
  ] as const) {
    it.scopedLive(
      `our server, ${title}: a message sent once the flooder reads again is echoed`,
      () =>
        Effect.gen(function* () {
          const { open } = yield* sides(shell).server(options)
          const peer = yield* open
          peer.socket.pause()
          const pings = Buffer.concat(
            Array.from({ length: 500 }, () => encode({ opcode: Op.Ping, payload: Buffer.alloc(125) }, "client"))
          )
          // Flood until the server stops reading: our writes stop draining (bounded in bytes).
          let written = 0
          let stalled = false
          while (!stalled && written < FLOOD_LIMIT) {
            written += pings.length
            if (!peer.socket.write(pings)) {
              stalled = (yield* Effect.either(peer.write(Buffer.alloc(0)).pipe(bounded(1000))))._tag === "Left"
            }
          }
          expect(stalled, "the server stopped reading the flood").toBe(true)
          peer.socket.resume()
          yield* peer
            .write(encode({ opcode: Op.Text, payload: Buffer.from("after the flood") }, "client"))
            .pipe(bounded(10_000))
          yield* peer.until(() => peer.messages.length > 0).pipe(bounded(10_000))
          expect(peer.messages[0]?.toString()).toBe("after the flood")
        }),
      40_000
    )
  }
})
