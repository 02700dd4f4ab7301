/**
 * Target: our echo server (effect-websockets), built into dist/ by `npm run build`, with the README's echo handler.
 * Keepalive is off, as in `ws` (which has none), unless `--keepalive` (the library's default of a
 * ping every 20 s, used by the memory benchmark: it is what an idle connection costs by default).
 */
import { Effect, Stream } from "effect"
import { Server } from "../../dist/index.js"
import { args, deflate, MAX_SIZE, ready } from "./common.mjs"

const keepalive = args.includes("--keepalive")

// The README's echo handler; `--stream` measures the same with the `messages` Stream.
const echo = args.includes("--stream")
  ? (ws) => Stream.runForEach(ws.messages, (message) => ws.send(message))
  : (ws) => ws.forEachMessage((message) => ws.send(message))

Effect.runFork(
  Effect.scoped(
    Effect.gen(function* () {
      const server = yield* Server.serve(echo, {
        host: "127.0.0.1",
        port: 0,
        compression: deflate ? "deflate" : null,
        maxSize: MAX_SIZE,
        ...(keepalive ? {} : { pingInterval: null })
      })
      ready("ours", server.address.port, { keepalive })
      yield* Effect.never
    })
  )
)
