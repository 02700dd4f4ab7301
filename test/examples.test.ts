/**
 * The shipped examples, each run as the user runs it, in its own process (vite-node here, `npx tsx`
 * in their headers; `effect-websockets` resolves to the package itself, so `npm run build` first) on
 * a free port (`PORT=0`):
 *
 * - the HTTP integrations (examples/http-router.ts, examples/node-http.ts): the health route, 426
 *   Upgrade Required for a plain GET on a WebSocket path, the echo endpoint (text stays text, binary
 *   stays binary, compressed, messages over the 1 MiB default), the chat relay, and SIGTERM closing
 *   connections with 1001 and exiting 0;
 * - echo-server.ts with client.ts and reconnecting-client.ts against it, chat-room.ts and
 *   auth-server.ts.
 *
 * examples/chat-cluster.ts needs Redis: test/RedisBackplane.test.ts runs it.
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
        const match = /Listening on (?:http|ws):\/\/127\.0\.0\.1:(\d+)/.exec(output)
        if (match !== null) resume(Effect.succeed({ child, port: Number(match[1]), output: () => output }))
      }
      child.stdout.on("data", onData)
      child.stderr.on("data", onData)
      child.once("exit", (code) => resume(Effect.fail(new Error(`exited with ${code} before listening:\n${output}`))))
    }),
    ({ child }) => Effect.sync(() => child.exitCode === null && child.kill("SIGKILL"))
  )

/** A client example in its own process, run to its end: its exit code and output. */
const runExample = (file: string, args: ReadonlyArray<string>) =>
  Effect.acquireRelease(
    Effect.sync(() =>
      spawn(process.execPath, [VITE_NODE, file, ...args], { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] })
    ),
    (child) => Effect.sync(() => child.exitCode === null && child.kill("SIGKILL"))
  ).pipe(
    Effect.map((child) => {
      let output = ""
      const onData = (chunk: Buffer) => {
        output += chunk.toString()
      }
      child.stdout.on("data", onData)
      child.stderr.on("data", onData)
      return { child, output: () => output }
    })
  )

/** Waits until the output of a process matches `pattern` (checked on each chunk, no polling). */
const outputMatching = (child: ChildProcess, output: () => string, pattern: RegExp) =>
  Effect.async<string, Error>((resume) => {
    const check = () => {
      if (pattern.test(output())) resume(Effect.succeed(output()))
    }
    const onExit = (code: number | null) =>
      resume(pattern.test(output()) ? Effect.succeed(output()) : Effect.fail(new Error(`exited ${code}:\n${output()}`)))
    child.stdout!.on("data", check)
    child.stderr!.on("data", check)
    child.once("exit", onExit)
    check()
    return Effect.sync(() => {
      child.stdout!.off("data", check)
      child.stderr!.off("data", check)
      child.off("exit", onExit)
    })
  })

const exitOf = (child: ChildProcess) =>
  Effect.async<number | null>((resume) => {
    if (child.exitCode !== null) return resume(Effect.succeed(child.exitCode))
    child.once("exit", (code) => resume(Effect.succeed(code)))
  })

const open = (url: string) =>
  Effect.acquireRelease(
    Effect.async<{ client: WebSocketClient; closed: Effect.Effect<number> }, Error>((resume) => {
      const client = new WebSocketClient(url, { perMessageDeflate: true, maxPayload: 64 << 20 })
      client.once("unexpected-response", (_, response) => resume(Effect.fail(new Error(`HTTP ${response.statusCode}`))))
      const closed = Deferred.unsafeMake<number>(FiberId.none)
      client.once("close", (code) => Deferred.unsafeDone(closed, Exit.succeed(code)))
      client.once("open", () => resume(Effect.succeed({ client, closed: Deferred.await(closed) })))
      client.once("error", (error) => resume(Effect.fail(error)))
    }),
    ({ client }) => Effect.sync(() => client.terminate())
  )

/** Every text message of `client` from its opening on (none lost between `open` and a wait), in order. */
const inbox = (client: WebSocketClient) => {
  const texts: Array<string> = []
  const waiting: Array<() => void> = []
  client.on("message", (data) => {
    texts.push(String(data))
    for (const wake of waiting.splice(0)) wake()
  })
  return (count: number): Effect.Effect<ReadonlyArray<string>> =>
    Effect.async((resume) => {
      const check = () => {
        if (texts.length >= count) resume(Effect.succeed(texts.slice(0, count)))
        else waiting.push(check)
      }
      check()
    })
}

/** A client whose inbox is attached before its handshake completes; fails with the status of a refusal. */
const openWithInbox = (url: string) =>
  Effect.acquireRelease(
    Effect.async<{ client: WebSocketClient; texts: ReturnType<typeof inbox> }, Error>((resume) => {
      const client = new WebSocketClient(url)
      const texts = inbox(client)
      client.once("unexpected-response", (_, response) => resume(Effect.fail(new Error(`HTTP ${response.statusCode}`))))
      client.once("open", () => resume(Effect.succeed({ client, texts })))
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
          // A browser's address bar on a WebSocket path: 426 says what is missing (RFC 9110 §15.5.22).
          for (const path of ["/ws", "/chat"]) {
            const plain = yield* Effect.promise(() => fetch(`http://${base}${path}`))
            expect(plain.status).toBe(426)
            expect(plain.headers.get("upgrade")).toBe("websocket")
            yield* Effect.promise(() => plain.arrayBuffer())
          }

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

describe("examples/echo-server.ts", () => {
  it.scopedLive(
    "echoes; client.ts and reconnecting-client.ts run against it; SIGTERM closes with 1001 and exits 0",
    () =>
      Effect.gen(function* () {
        const server = yield* startExample("examples/echo-server.ts")
        const uri = `ws://${LOCALHOST}:${server.port}/`
        const ws = yield* open(uri)
        ws.client.send("echo me")
        expect((yield* next(ws.client)).data.toString()).toBe("echo me")

        const client = yield* runExample("examples/client.ts", [uri])
        expect(yield* exitOf(client.child), client.output()).toBe(0)
        expect(client.output()).toContain("< Hello world!")
        expect(client.output()).toContain("< 4 bytes")
        expect(client.output()).toMatch(/Ping round trip: \d+\.\d ms/)

        const reconnecting = yield* runExample("examples/reconnecting-client.ts", [uri])
        yield* outputMatching(reconnecting.child, reconnecting.output, /Connected\.\n< tick\n/)

        server.child.kill("SIGTERM")
        expect(yield* ws.closed).toBe(1001)
        expect(yield* exitOf(server.child), server.output()).toBe(0)
        // The server went away: the reconnecting client says so, then tries again.
        yield* outputMatching(reconnecting.child, reconnecting.output, /Disconnected \(close code 1001\)\./)
        yield* outputMatching(reconnecting.child, reconnecting.output, /Connection failed: .*ECONNREFUSED/)
      }).pipe(bounded(60_000)),
    90_000
  )
})

describe("examples/chat-room.ts", () => {
  it.scopedLive(
    "announces joins and broadcasts each message with its sender's name",
    () =>
      Effect.gen(function* () {
        const { port } = yield* startExample("examples/chat-room.ts")
        const alice = yield* openWithInbox(`ws://${LOCALHOST}:${port}/?name=alice`)
        expect(yield* alice.texts(1)).toEqual(["* alice joined (1 online)"])
        const bob = yield* openWithInbox(`ws://${LOCALHOST}:${port}/?name=bob`)
        expect(yield* bob.texts(1)).toEqual(["* bob joined (2 online)"])
        expect(yield* alice.texts(2)).toEqual(["* alice joined (1 online)", "* bob joined (2 online)"])
        alice.client.send("hi")
        expect(yield* bob.texts(2)).toEqual(["* bob joined (2 online)", "alice: hi"])
      }).pipe(bounded(60_000)),
    90_000
  )
})

describe("examples/auth-server.ts", () => {
  it.scopedLive(
    "refuses a client without credentials with 401 and greets alice",
    () =>
      Effect.gen(function* () {
        const { port } = yield* startExample("examples/auth-server.ts")
        const refused = yield* Effect.flip(openWithInbox(`ws://${LOCALHOST}:${port}/`))
        expect(refused.message).toBe("HTTP 401")
        const alice = yield* openWithInbox(`ws://alice:s3cret@${LOCALHOST}:${port}/`)
        expect(yield* alice.texts(1)).toEqual(["Hello alice!"])
      }).pipe(bounded(60_000)),
    90_000
  )
})
