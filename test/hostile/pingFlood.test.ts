/**
 * Hostile peer (issue 14): 10 connections send pings as fast as TCP allows and never read the
 * pongs. Answering them must not grow the write buffer without bound: while it is over writeLimit,
 * the connection stops reading, and TCP pushes back on the peer, whose writes then stall. Memory
 * stays bounded and other connections keep echoing, on both sides.
 */
import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import { Op } from "../conformance/wire.js"
import { bounded } from "../fixtures/loopback.js"
import { encode, type HostilePeer, memoryProbe, sides } from "./hostile.js"

const CONNECTIONS = 10
/** Pings per write: 500 pings of 125 bytes, about 64 KiB. */
const BATCH = 500
/**
 * What a peer may write before the flood counts as not pushed back: more than the kernel's socket
 * buffers of both directions hold on loopback (a few MiB each), so the implementation must have
 * stopped reading to stop it. Without backpressure it buffers about as many pongs per connection.
 */
const FLOOD_LIMIT = 24 * 1024 * 1024
/** Echo round trips on the control connection with no progress of any flood: the floods are stalled. */
const STALLED_AFTER = 20

interface Flood {
  written: number
  done: boolean
}

/** Writes pings in batches, waiting for 'drain' like a TCP sender, until FLOOD_LIMIT bytes. */
const flood = (peer: HostilePeer, state: Flood): Effect.Effect<void> =>
  Effect.gen(function* () {
    const pings = Buffer.concat(
      Array.from({ length: BATCH }, (_, i) => encode({ opcode: Op.Ping, payload: Buffer.alloc(125, i) }, peer.side))
    )
    while (state.written < FLOOD_LIMIT && !peer.socket.destroyed) {
      yield* peer.write(pings)
      state.written += pings.length
    }
    state.done = true
  })

describe("hostile peer: 10 connections flooding pings without reading", () => {
  for (const side of ["server", "client"] as const) {
    it.scopedLive(
      `our ${side} stops reading them: the floods stall, memory stays bounded and others keep echoing`,
      () =>
        Effect.gen(function* () {
          const { control, open } = yield* sides[side]()
          const memory = memoryProbe()
          const peers = yield* Effect.forEach(Array.from({ length: CONNECTIONS }), () => open)
          // Never read: the pongs pile up in the kernel's buffers, then in the implementation's.
          for (const peer of peers) peer.socket.pause()
          const states = peers.map((): Flood => ({ written: 0, done: false }))
          const floods = yield* Effect.forEach(peers, (peer, i) => Effect.fork(flood(peer, states[i]!)))
          // Wait until no flood progressed during STALLED_AFTER echo round trips of the control
          // connection (each needs the event loop to run I/O, so a flood that can write does).
          const progress = () => states.reduce((n, s) => n + s.written, 0)
          let last = -1
          let quiet = 0
          yield* Effect.gen(function* () {
            while (quiet < STALLED_AFTER && !states.some((s) => s.done)) {
              const now = progress()
              quiet = now === last ? quiet + 1 : 0
              last = now
              yield* control.nextRoundTrip
            }
          }).pipe(bounded(45_000))
          expect(
            states.filter((s) => s.done).length,
            "floods that wrote their limit: the implementation kept reading"
          ).toBe(0)
          memory.check(`ping floods against our ${side}`)
          yield* control.check
          for (const fiber of floods) yield* Fiber.interrupt(fiber)
          for (const peer of peers) peer.socket.destroy()
        }),
      90_000
    )
  }
})
