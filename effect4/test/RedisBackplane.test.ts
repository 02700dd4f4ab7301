/**
 * The Effect 4 shell's Redis backplane against a real Redis (Debian's redis-server, started by the
 * test on a free port): a message published through one Topics service reaches a subscriber of
 * another, as two server processes would share it.
 */
import { spawn } from "node:child_process"
import * as net from "node:net"
import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Schedule from "effect/Schedule"
import * as Client from "../src/Client.js"
import * as RedisBackplane from "../src/RedisBackplane.js"
import * as Server from "../src/Server.js"
import * as Topics from "../src/Topics.js"
import type { WebSocket } from "../src/WebSocket.js"

const LOCALHOST = "127.0.0.1"

const freePort = Effect.callback<number>((resume) => {
  const probe = net.createServer()
  probe.listen(0, LOCALHOST, () => {
    const port = (probe.address() as net.AddressInfo).port
    probe.close(() => resume(Effect.succeed(port)))
  })
})

const canConnect = (port: number) =>
  Effect.callback<void, Error>((resume) => {
    const socket = net.connect(port, LOCALHOST, () => {
      socket.destroy()
      resume(Effect.void)
    })
    socket.once("error", (error) => resume(Effect.fail(error)))
    return Effect.sync(() => socket.destroy())
  })

/** redis-server on a free port for the scope, once it accepts connections. */
const startRedis = Effect.gen(function* () {
  const port = yield* freePort
  yield* Effect.acquireRelease(
    Effect.sync(() =>
      spawn("redis-server", ["--port", String(port), "--bind", LOCALHOST, "--save", "", "--appendonly", "no"], {
        stdio: "ignore"
      })
    ),
    (child) => Effect.sync(() => child.kill("SIGKILL"))
  )
  yield* Effect.retry(canConnect(port), Schedule.spaced("20 millis"))
  return `redis://${LOCALHOST}:${port}`
})

/** A server whose connections subscribe to the topic named by their path. */
const subscribing = (topics: Topics.TopicsService) => (ws: WebSocket) =>
  Effect.andThen(topics.subscribe(ws, ws.path.slice(1)), Effect.andThen(ws.send("subscribed"), ws.waitClosed))

describe("Effect 4 shell: RedisBackplane", () => {
  it.live("a message published on one node reaches the subscribers of another", () =>
    Effect.gen(function* () {
      const url = yield* startRedis
      const nodeLayer = Topics.layer.pipe(Layer.provide(RedisBackplane.layer({ url })))
      const nodeA = yield* Layer.build(nodeLayer)
      const nodeB = yield* Layer.build(nodeLayer)
      const topicsA = yield* Effect.provide(Topics.Topics, nodeA)
      const topicsB = yield* Effect.provide(Topics.Topics, nodeB)
      const server = yield* Server.serve(subscribing(topicsA), { host: LOCALHOST, port: 0 })
      const port = server.address._tag === "TcpAddress" ? server.address.port : 0
      const ws = yield* Client.connect(`ws://${LOCALHOST}:${port}/news`)
      expect(yield* ws.recv).toBe("subscribed")
      // The subscription reaches Redis asynchronously: publish until the message arrives.
      const received = yield* Effect.raceFirst(
        ws.recv,
        Effect.forever(Effect.andThen(topicsB.publish("news", "from B"), Effect.sleep("50 millis")))
      )
      expect(received).toBe("from B")
    })
  )
})
