/**
 * Topics across processes through a real Redis (Debian's redis-server, started by the test on a
 * free loopback port): two Topics services with their own Redis connections in this process, and
 * the chat-cluster example in a child process; Redis stopped and restarted under load.
 */
import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Fiber from "effect/Fiber"
import * as Schedule from "effect/Schedule"
import * as Stream from "effect/Stream"
import { Backplane } from "../src/Backplane.js"
import { BackplaneFailure, isBackplaneError } from "../src/Errors.js"
import * as RedisBackplane from "../src/RedisBackplane.js"
import * as Topics from "../src/Topics.js"
import type { WebSocket } from "../src/WebSocket.js"
import { bounded, serveLocal, uriOf } from "./fixtures/loopback.js"
import { installed, REDIS_SERVER, recordingClient, spawnTs, startRedis, until } from "./fixtures/scaling.js"

const available = installed(REDIS_SERVER)

/** Fast reconnection for the tests: every 50 ms. */
const reconnect = Schedule.spaced("50 millis")

/** Topics over their own Redis connection (as a separate process would have), and a server on `/chat`. */
const chatNode = (url: string) =>
  Effect.gen(function* () {
    const backplane = yield* RedisBackplane.make({ url, reconnect })
    const topics = yield* Topics.make.pipe(Effect.provideService(Backplane, backplane))
    let failures = 0
    const server = yield* serveLocal((ws: WebSocket) =>
      Effect.zipRight(
        topics.subscribe(ws, "chat"),
        Stream.runForEach(ws.messages, (message) =>
          topics.publish("chat", message).pipe(
            Effect.catchIf(isBackplaneError, () =>
              Effect.sync(() => {
                failures++
              })
            )
          )
        )
      )
    )
    return { topics, server, failures: () => failures }
  })

/**
 * Redis, a node in this process and the chat-cluster example in a child process, with a client on
 * each; returns once a message of the example's client has reached this process's (the example
 * subscribes before reading, so both are subscribed then).
 */
const exampleAndLocal = Effect.gen(function* () {
  const redis = yield* startRedis
  const local = yield* chatNode(redis.url)
  const example = yield* spawnTs("examples/chat-cluster.ts", { PORT: "0", REDIS_URL: redis.url })
  const a = yield* recordingClient(uriOf(local.server, "/chat"))
  const b = yield* recordingClient(`ws://127.0.0.1:${example.port}/chat`)
  b.socket.send("ready?")
  yield* a.waitFor("ready?")
  return { redis, local, example, a, b }
})

describe("RedisBackplane", () => {
  it("redis-server is installed (required in CI)", () => {
    expect(available || process.env.CI !== "true").toBe(true)
  })

  describe.runIf(available)("with redis-server", () => {
    it.scopedLive(
      "text and binary messages cross both ways between two nodes",
      () =>
        Effect.gen(function* () {
          const redis = yield* startRedis
          const one = yield* chatNode(redis.url)
          const two = yield* chatNode(redis.url)
          const a = yield* recordingClient(uriOf(one.server, "/chat"))
          const b = yield* recordingClient(uriOf(two.server, "/chat"))
          yield* until(() => one.topics.subscribers("chat").size === 1 && two.topics.subscribers("chat").size === 1)
          a.socket.send("héllo from a")
          b.socket.send(Buffer.from([0, 1, 2, 255]))
          for (const client of [a, b]) {
            yield* client.waitFor("héllo from a")
            yield* client.waitFor(new Uint8Array([0, 1, 2, 255]))
          }
          // Per-publisher order: a burst arrives in order on the other node.
          for (let i = 0; i < 100; i++) a.socket.send(`#${i}`)
          yield* b.waitFor("#99")
          const burst = b.received.filter((m) => typeof m === "string" && m.startsWith("#"))
          expect(burst).toEqual(Array.from({ length: 100 }, (_, i) => `#${i}`))
          // Each message once, the sender's own included.
          expect(a.received.filter((m) => m === "héllo from a").length).toBe(1)
          expect(one.failures() + two.failures()).toBe(0)
        }).pipe(bounded(20_000)),
      30_000
    )

    it.scopedLive(
      "the chat-cluster example in another process: messages both ways, 1001 and exit 0 on SIGTERM",
      () =>
        Effect.gen(function* () {
          const { example, a, b } = yield* exampleAndLocal
          yield* b.waitFor("ready?")
          a.socket.send("to the example")
          a.socket.send(Buffer.from([7, 7]))
          yield* b.waitFor("to the example")
          yield* b.waitFor(new Uint8Array([7, 7]))
          // Other paths are not chat.
          const other = yield* recordingClient(`ws://127.0.0.1:${example.port}/other`).pipe(Effect.flip)
          expect(String(other)).toContain("404")
          expect(yield* example.terminate).toBe(0)
          yield* until(() => b.closeCode() !== undefined)
          expect(b.closeCode()).toBe(1001)
        }).pipe(bounded(50_000)),
      60_000
    )

    it.scopedLive(
      "Redis stopped and restarted under load: local delivery goes on, then delivery across resumes",
      () =>
        Effect.gen(function* () {
          const { redis, local, example, a, b } = yield* exampleAndLocal
          // Load: a client of this process sends a message every 2 ms.
          let sent = 0
          const load = yield* Effect.sync(() => a.socket.send(`load ${sent++}`)).pipe(
            Effect.repeat(Schedule.spaced("2 millis")),
            Effect.fork
          )
          yield* until(() => b.received.some((m) => typeof m === "string" && m.startsWith("load")))

          yield* redis.stop
          // Local delivery goes on, and publish reports the backplane failure.
          const afterStop = sent
          yield* a.waitFor(`load ${afterStop + 50}`)
          yield* until(() => local.failures() > 0)
          expect(example.child.exitCode).toBeNull()

          yield* redis.start
          // Delivery across processes resumes both ways.
          const afterRestart = sent
          yield* until(() =>
            b.received.some((m) => typeof m === "string" && m.startsWith("load") && Number(m.slice(5)) > afterRestart)
          )
          yield* Effect.sync(() => b.socket.send("back")).pipe(
            Effect.repeat({ schedule: Schedule.spaced("100 millis"), until: () => a.received.includes("back") })
          )
          yield* Fiber.interrupt(load)
          expect(example.child.exitCode).toBeNull()
          expect(yield* example.terminate).toBe(0)
        }).pipe(bounded(50_000)),
      60_000
    )

    it.scopedLive("publish fails with BackplaneUnavailable while Redis is down, and queues nothing", () =>
      Effect.gen(function* () {
        const redis = yield* startRedis
        const backplane = yield* RedisBackplane.make({ url: redis.url, reconnect })
        const topics = yield* Topics.make.pipe(Effect.provideService(Backplane, backplane))
        yield* topics.publish("t", "up")
        yield* redis.stop
        // Publications in flight when the connection dropped are lost; the next ones fail at once.
        const outcome = yield* topics
          .publish("t", "down")
          .pipe(Effect.either, Effect.zipLeft(Effect.sleep("10 millis")), Effect.repeat({ until: Either.isLeft }))
        expect(Either.isLeft(outcome) && outcome.left._tag).toBe("BackplaneUnavailable")
        // Many publications while down cost nothing: each fails at once.
        const started = performance.now()
        for (let i = 0; i < 10_000; i++) yield* Effect.flip(topics.publish("t", "down"))
        expect(performance.now() - started).toBeLessThan(5000)
        yield* redis.start
        yield* topics.publish("t", "up again").pipe(Effect.retry(Schedule.spaced("50 millis")))
      }).pipe(bounded(20_000))
    )
  })

  describe.runIf(available)("with redis-server and maxInFlight 0", () => {
    it.scopedLive("each publish waits for Redis's reply, and reports its loss", () =>
      Effect.gen(function* () {
        const redis = yield* startRedis
        const one = yield* RedisBackplane.make({ url: redis.url, reconnect, maxInFlight: 0 })
        const two = yield* RedisBackplane.make({ url: redis.url, reconnect })
        const received: Array<unknown> = []
        const sender = yield* one.join(() => {})
        const receiver = yield* two.join((_topic, message) => received.push(message))
        yield* receiver.follow("t")
        for (let i = 0; i < 20; i++) yield* sender.publish("t", `m${i}`)
        yield* until(() => received.length === 20)
        expect(received).toEqual(Array.from({ length: 20 }, (_, i) => `m${i}`))
        yield* redis.stop
        const outcome = yield* sender
          .publish("t", "down")
          .pipe(Effect.either, Effect.zipLeft(Effect.sleep("10 millis")), Effect.repeat({ until: Either.isLeft }))
        expect(Either.isLeft(outcome) && isBackplaneError(outcome.left)).toBe(true)
      }).pipe(bounded(20_000))
    )
  })

  it.effect("a missing @redis/client would be a BackplaneFailure, not a crash", () =>
    Effect.sync(() => {
      const failure = new BackplaneFailure({ backplane: "redis", operation: "load @redis/client" })
      expect(isBackplaneError(failure)).toBe(true)
      expect(failure.message).toBe("redis backplane: load @redis/client failed")
    })
  )
})
