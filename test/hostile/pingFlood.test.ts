/**
 * Hostile peer (issue 14): 10 connections send pings as fast as TCP allows and never read the
 * pongs. Answering them must not grow the write buffer without bound: while it is over writeLimit,
 * the connection stops reading, and TCP pushes back on the peer, whose writes then stall. Memory
 * stays bounded and other connections keep echoing, on both sides.
 *
 * The attacker runs in its own process (pingFlooder.mjs), so that the peak RSS measured here is
 * what our side costs.
 */
import { type ChildProcess, fork } from "node:child_process"
import { fileURLToPath } from "node:url"
import { expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import { describeShells } from "../conformance/shells.js"
import { bounded, LOCALHOST } from "../fixtures/loopback.js"
import { memoryProbe, PING_FLOOD_MEMORY_BOUND, sides } from "./hostile.js"

const CONNECTIONS = 10
/**
 * What a peer may write before the flood counts as not pushed back: more than the kernel's socket
 * buffers of both directions hold on loopback (a few MiB each), so the implementation must have
 * stopped reading to stop it. Without backpressure it buffers about as many pongs per connection.
 */
const FLOOD_LIMIT = 24 * 1024 * 1024
/** Echo round trips on the control connection with no progress of any flood: the floods are stalled. */
const STALLED_AFTER = 20

const FLOODER = fileURLToPath(new URL("./pingFlooder.mjs", import.meta.url))

interface Flooder {
  readonly child: ChildProcess
  /** Bytes of pings written by all connections, and connections that wrote FLOOD_LIMIT. */
  written: number
  done: number
}

/** Starts the attacker; its messages update the returned state. Killed with the scope. */
const startFlooder = (mode: "client" | "server", port: number) =>
  Effect.acquireRelease(
    Effect.sync((): Flooder => {
      const child = fork(FLOODER, [mode, String(port), String(CONNECTIONS), String(FLOOD_LIMIT)], {
        stdio: ["ignore", "inherit", "inherit", "ipc"],
        execArgv: []
      })
      const flooder: Flooder = { child, written: 0, done: 0 }
      child.on("message", (message: { written?: number; done?: number }) => {
        if (message.written !== undefined) flooder.written = message.written
        if (message.done !== undefined) flooder.done = message.done
      })
      return flooder
    }),
    ({ child }) => Effect.sync(() => child.kill("SIGKILL"))
  )

/** The next message of the attacker that has `field`. */
const nextMessage = (child: ChildProcess, field: string): Effect.Effect<Record<string, number>> =>
  Effect.async<Record<string, number>>((resume) => {
    const onMessage = (message: Record<string, number>) => {
      if (!(field in message)) return
      child.off("message", onMessage)
      resume(Effect.succeed(message))
    }
    child.on("message", onMessage)
    return Effect.sync(() => child.off("message", onMessage))
  })

describeShells("hostile peer: 10 connections flooding pings without reading", (shell) => {
  for (const side of ["server", "client"] as const) {
    it.scopedLive(
      `our ${side} stops reading them: the floods stall, memory stays bounded and others keep echoing`,
      () =>
        Effect.gen(function* () {
          const { control, port } = yield* sides(shell)[side]()
          const memory = yield* memoryProbe(shell, PING_FLOOD_MEMORY_BOUND)
          let flooder: Flooder
          if (side === "server") {
            flooder = yield* startFlooder("client", port)
            yield* nextMessage(flooder.child, "open").pipe(bounded(15_000))
          } else {
            flooder = yield* startFlooder("server", 0)
            const { listening } = yield* nextMessage(flooder.child, "listening").pipe(bounded(15_000))
            const opened = nextMessage(flooder.child, "open")
            const opening = yield* Effect.fork(opened)
            // Our clients, with the echo handler an application would run.
            for (let i = 0; i < CONNECTIONS; i++) {
              yield* Effect.orDie(shell.connectEcho(`ws://${LOCALHOST}:${listening}/`, { pingInterval: null }))
            }
            yield* Fiber.join(opening).pipe(bounded(15_000))
          }
          // Wait until no flood progressed during STALLED_AFTER echo round trips of the control
          // connection (each needs the event loop to run I/O, so a flood that can write does).
          let last = -1
          let quiet = 0
          yield* Effect.gen(function* () {
            while (quiet < STALLED_AFTER && flooder.done === 0) {
              const now = flooder.written
              quiet = now === last ? quiet + 1 : 0
              last = now
              yield* control.nextRoundTrip
            }
          }).pipe(bounded(45_000))
          expect(flooder.done, "floods that wrote their limit: the implementation kept reading").toBe(0)
          yield* memory.check(`ping floods against our ${side}`)
          yield* control.check
          // Gone before our connections close: they do not wait for a close handshake with it.
          flooder.child.kill("SIGKILL")
        }),
      90_000
    )
  }
})
