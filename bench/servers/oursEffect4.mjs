/**
 * Target: our echo server on Effect 4 (`effect-websockets/effect4`, built into dist/effect4/ by
 * `npm run build`), with the README's echo handler, `Server.onMessage((message, ws) =>
 * ws.send(message))`; `--stream` with the `messages` Stream, `Stream.runForEach(ws.messages,
 * ws.send)`; `--loop` with a fiber per connection, `ws.forEachMessage(ws.send)`. Keepalive is off unless `--keepalive`, as in servers/ours.mjs. `--quiet`: no metrics, no
 * tracing, logs above Info (the Effect 4 shell logs its connection lines at Info).
 *
 * In this repository `effect` at the root is effect 3 (the Effect 3 shell's), and effect 4 lives in
 * effect4/node_modules: dist/effect4/*.js would resolve `effect` to effect 3 from where it lies. So
 * this process resolves `effect` and `@effect/*` from effect4/ (a synchronous resolve hook,
 * `module.registerHooks`, Node >= 22.15), as an Effect 4 application with one copy of effect does.
 * `@effect/platform-node` 4 needs Node >= 22.19: run.mjs starts this script on Node 24.
 */
import { readFileSync } from "node:fs"
import { registerHooks } from "node:module"
import { args, deflate, MAX_SIZE, ready } from "./common.mjs"

const EFFECT4 = new URL("../../effect4/package.json", import.meta.url).href
registerHooks({
  resolve: (specifier, context, nextResolve) =>
    /^(effect|@effect\/[^/]+)(\/|$)/.test(specifier)
      ? nextResolve(specifier, { ...context, parentURL: EFFECT4 })
      : nextResolve(specifier, context)
})

const { Effect, References, Stream } = await import("effect")
const { Server } = await import("../../dist/effect4/index.js")

const effect = JSON.parse(
  readFileSync(new URL("../../effect4/node_modules/effect/package.json", import.meta.url))
).version
const keepalive = args.includes("--keepalive")
const stream = args.includes("--stream")
const quiet = args.includes("--quiet")

const echo = stream
  ? (ws) => Stream.runForEach(ws.messages, (message) => ws.send(message))
  : args.includes("--loop")
    ? (ws) => ws.forEachMessage((message) => ws.send(message))
    : Server.onMessage((message, ws) => ws.send(message))

Effect.runFork(
  Effect.scoped(
    Effect.gen(function* () {
      const server = yield* Server.serve(echo, {
        host: "127.0.0.1",
        port: 0,
        compression: deflate ? "deflate" : null,
        maxSize: MAX_SIZE,
        metrics: !quiet,
        ...(keepalive ? {} : { pingInterval: null })
      })
      ready("ours-e4", server.address.port, { keepalive, stream, quiet, effect, node: process.version })
      yield* Effect.never
    })
  ).pipe(
    quiet
      ? (effect) =>
          effect.pipe(Effect.withTracerEnabled(false), Effect.provideService(References.MinimumLogLevel, "Warn"))
      : (effect) => effect
  )
)
