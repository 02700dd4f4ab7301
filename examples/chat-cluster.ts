/**
 * Chat across processes: every text message received on `/chat` is published to the topic `chat`,
 * and every `/chat` connection of every process using the same Redis receives it (the sender too).
 * Start several, each on its own port, behind a load balancer (or as cluster workers, see
 * `Workers`), with a Redis server:
 *
 *   redis-server --port 6379 --save '' --appendonly no
 *   PORT=8001 npx tsx examples/chat-cluster.ts
 *   PORT=8002 npx tsx examples/chat-cluster.ts
 *
 * Environment: `PORT` (default 0, any free port), `REDIS_URL` (default redis://127.0.0.1:6379).
 * Prints `Listening on http://127.0.0.1:PORT` once ready; on SIGTERM it closes its connections with
 * 1001 and exits 0. While Redis is down, messages still reach this process's own connections.
 */
import { NodeRuntime } from "@effect/platform-node"
import { Console, Effect, Layer, Stream } from "effect"
import { Errors, RedisBackplane, Server, Topics, type WebSocket } from "effect-websockets"

const TOPIC = "chat"

const chat = (ws: WebSocket.WebSocket) =>
  Effect.gen(function* () {
    const topics = yield* Topics.Topics
    yield* topics.subscribe(ws, TOPIC)
    yield* Stream.runForEach(ws.messages, (message) =>
      typeof message === "string"
        ? topics.publish(TOPIC, message).pipe(
            // Redis is down: the message reached this process's connections only.
            Effect.catchIf(Errors.isBackplaneError, (error) => Effect.logWarning(error.message))
          )
        : Effect.void
    )
  })

const program = Effect.gen(function* () {
  const server = yield* Server.serve(chat, {
    host: "127.0.0.1",
    port: Number(process.env.PORT ?? 0),
    processRequest: (request) =>
      Effect.succeed(request.path === "/chat" ? undefined : { status: 404, body: "Not found\n" })
  })
  const address = server.address
  if (address._tag === "TcpAddress") yield* Console.log(`Listening on http://127.0.0.1:${address.port}`)
  yield* server.waitClosed
})

const TopicsLive = Topics.layer.pipe(
  Layer.provide(RedisBackplane.layer({ url: process.env.REDIS_URL ?? RedisBackplane.DEFAULT_URL }))
)

NodeRuntime.runMain(program.pipe(Effect.scoped, Effect.provide(TopicsLive)))
