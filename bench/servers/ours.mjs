/**
 * Target: our echo server (effect-websockets), built into dist/ by `npm run build`, with the README's echo handler.
 * Keepalive is off, as in `ws` (which has none), unless `--keepalive` (the library's default of a
 * ping every 20 s, used by the memory benchmark: it is what an idle connection costs by default).
 *
 * `--fanout`: instead of echoing, connections on `/sub` subscribe to one topic and every message
 * received on `/pub` is published to it (`Topics`); with `--redis URL`, through the Redis backplane
 * (several such servers then deliver each other's messages).
 */
import { Effect, Layer, Logger, LogLevel, Stream } from "effect"
import { RedisBackplane, Server, Topics } from "../../dist/index.js"
import { args, deflate, MAX_SIZE, ready } from "./common.mjs"

const keepalive = args.includes("--keepalive")
const fanout = args.includes("--fanout")
const redisAt = args.indexOf("--redis")
const redisUrl = redisAt >= 0 ? args[redisAt + 1] : undefined
// Observability (issue 13): `--no-metrics` turns metrics off; `--quiet` also tracing, and logs up
// to Info (the connection lines are at Debug by default since issue 26: only the errors remain).
const quiet = args.includes("--quiet")
const metrics = !(quiet || args.includes("--no-metrics"))

// The README's echo handler (`Server.onMessage`); `--loop` measures the same with a fiber per
// connection (`ws.forEachMessage`), `--stream` with the `messages` Stream.
const echo = args.includes("--stream")
  ? (ws) => Stream.runForEach(ws.messages, (message) => ws.send(message))
  : args.includes("--loop")
    ? (ws) => ws.forEachMessage((message) => ws.send(message))
    : Server.onMessage((message, ws) => ws.send(message))

const TOPIC = "bench"
const publishOrSubscribe = (topics) => (ws) =>
  ws.path === "/pub"
    ? Stream.runForEach(ws.messages, (message) => Effect.ignore(topics.publish(TOPIC, message)))
    : Effect.zipRight(topics.subscribe(ws, TOPIC), ws.waitClosed)

const topicsLayer =
  redisUrl === undefined
    ? Topics.layerMemory
    : Topics.layer.pipe(Layer.provide(RedisBackplane.layer({ url: redisUrl })))

Effect.runFork(
  Effect.scoped(
    Effect.gen(function* () {
      const handler = fanout ? publishOrSubscribe(yield* Topics.Topics) : echo
      const server = yield* Server.serve(handler, {
        host: "127.0.0.1",
        port: 0,
        compression: deflate ? "deflate" : null,
        maxSize: MAX_SIZE,
        metrics,
        ...(keepalive ? {} : { pingInterval: null })
      })
      ready("ours", server.address.port, { keepalive, fanout, redis: redisUrl !== undefined, metrics, quiet })
      yield* Effect.never
    })
  ).pipe(
    Effect.provide(topicsLayer),
    quiet
      ? (effect) => effect.pipe(Effect.withTracerEnabled(false), Logger.withMinimumLogLevel(LogLevel.Warning))
      : (effect) => effect
  )
)
