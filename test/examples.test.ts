/**
 * The examples that document the HTTP integrations (examples/http-router.ts, examples/node-http.ts),
 * run as the user runs them, in their own process (vite-node) on a free port: the health route,
 * the echo endpoint (text stays text, binary stays binary, compressed, messages over the 1 MiB
 * default), the chat relay, and SIGTERM closing connections with 1001 and exiting 0.
 */
import { type ChildProcess, spawn } from "node:child_process"
import { fileURLToPath } from "node:url"
import { describe, expect, it } from "@effect/vitest"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as FiberId from "effect/FiberId"
import WebSocketClient from "ws"
import { bounded, LOCALHOST } from "./fixtures/loopback.js"

const ROOT = fileURLToPath(new URL("..", import.meta.url))
const VITE_NODE = fileURLToPath(new URL("../node_modules/vite-node/vite-node.mjs", import.meta.url))

/** The example in its own process, until it prints its address; killed with the scope if still running. */
const startExample = (file: string) =>
  Effect.acquireRelease(
    Effect.async<{ child: ChildProcess; port: number; output: () => string }, Error>((resume) => {
      const child = spawn(process.execPath, [VITE_NODE, file], {
        cwd: ROOT,
        env: { ...process.env, PORT: "0" },
        stdio: ["ignore", "pipe", "pipe"]
      })
      let output = ""
      const onData = (chunk: Buffer) => {
        output += chunk.toString()
        const match = /Listening on http:\/\/127\.0\.0\.1:(\d+)/.exec(output)
        if (match !== null) resume(Effect.succeed({ child, port: Number(match[1]), output: () => output }))
      }
      child.stdout.on("data", onData)
      child.stderr.on("data", onData)
      child.once("exit", (code) => resume(Effect.fail(new Error(`exited with ${code} before listening:\n${output}`))))
    }),
    ({ child }) => Effect.sync(() => child.exitCode === null && child.kill("SIGKILL"))
  )

const exitOf = (child: ChildProcess) =>
  Effect.async<number | null>((resume) => {
    if (child.exitCode !== null) return resume(Effect.succeed(child.exitCode))
    child.once("exit", (code) => resume(Effect.succeed(code)))
  })

const open = (url: string) =>
  Effect.acquireRelease(
    Effect.async<{ client: WebSocketClient; closed: Effect.Effect<number> }, Error>((resume) => {
      const client = new WebSocketClient(url, { perMessageDeflate: true, maxPayload: 64 << 20 })
      const closed = Deferred.unsafeMake<number>(FiberId.none)
      client.once("close", (code) => Deferred.unsafeDone(closed, Exit.succeed(code)))
      client.once("open", () => resume(Effect.succeed({ client, closed: Deferred.await(closed) })))
      client.once("error", (error) => resume(Effect.fail(error)))
    }),
    ({ client }) => Effect.sync(() => client.terminate())
  )

/** The next message of `client`, listened for from the call on: a message that arrives before the
 * returned Effect runs is not lost. */
const next = (client: WebSocketClient): Effect.Effect<{ data: Buffer; isBinary: boolean }> => {
  const received = Deferred.unsafeMake<{ data: Buffer; isBinary: boolean }>(FiberId.none)
  client.once("message", (data, isBinary) =>
    Deferred.unsafeDone(received, Exit.succeed({ data: data as Buffer, isBinary }))
  )
  return Deferred.await(received)
}

for (const example of ["examples/http-router.ts", "examples/node-http.ts"]) {
  describe(example, () => {
    it.scopedLive(
      "serves /health, echoes on /ws, relays on /chat, and on SIGTERM closes with 1001 and exits 0",
      () =>
        Effect.gen(function* () {
          const { child, port, output } = yield* startExample(example)
          const base = `${LOCALHOST}:${port}`
          const health = yield* Effect.promise(() => fetch(`http://${base}/health`))
          expect(health.status).toBe(200)
          expect(health.headers.get("content-type")).toMatch(/^text\/plain/)
          expect(yield* Effect.promise(() => health.text())).toBe("ok")

          const echo = yield* open(`ws://${base}/ws`)
          expect(echo.client.extensions).toBe("permessage-deflate")
          const big = "x".repeat(16 * 1024 * 1024 - 16)
          for (const [message, isBinary] of [
            ["hello", false],
            [Buffer.from([0, 1, 255]), true],
            [big, false]
          ] as const) {
            echo.client.send(message)
            const received = yield* next(echo.client)
            expect(received.isBinary).toBe(isBinary)
            expect(received.data.equals(Buffer.from(message))).toBe(true)
          }

          const alice = yield* open(`ws://${base}/chat`)
          const bob = yield* open(`ws://${base}/chat`)
          const carol = yield* open(`ws://${base}/chat`)
          // Bob and Carol get Alice's message; Alice does not (her next message is Bob's).
          const toBob = next(bob.client)
          const toCarol = next(carol.client)
          alice.client.send("hi from alice")
          expect((yield* toBob).data.toString()).toBe("hi from alice")
          expect((yield* toCarol).data.toString()).toBe("hi from alice")
          const toAlice = next(alice.client)
          bob.client.send("hi from bob")
          expect((yield* toAlice).data.toString()).toBe("hi from bob")

          child.kill("SIGTERM")
          for (const connection of [echo, alice, bob, carol]) expect(yield* connection.closed).toBe(1001)
          const code = yield* exitOf(child)
          expect(code, output()).toBe(0)
        }).pipe(bounded(60_000)),
      90_000
    )
  })
}
