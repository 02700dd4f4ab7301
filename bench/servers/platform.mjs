/**
 * Target: what an Effect application uses for WebSockets today (issue 15): `@effect/platform`'s
 * `HttpServerRequest.upgrade` on `@effect/platform-node`'s `NodeHttpServer` (`ws` underneath,
 * through `Socket.fromWebSocket`), with an echo written the way the platform's docs write one: a
 * router, a route that upgrades, and `socket.runRaw` handing every message to the socket's writer
 * (`runRaw` keeps text as text, so the echo preserves the message type as the other targets do).
 *
 * The platform exposes no `ws` options: its `WebSocketServer({ noServer: true })` has ws's default
 * limit (100 MiB) and no permessage-deflate, so this target has no compressed cases. For the same
 * message size limit as the other targets, `maxPayload` is set to MAX_SIZE on the server the
 * platform creates (ws reads it once per upgrade; nothing per message changes).
 */
import { createServer } from "node:http"
import { HttpRouter, HttpServer, HttpServerRequest, HttpServerResponse } from "@effect/platform"
import { NodeHttpServer } from "@effect/platform-node"
import { Effect, Layer } from "effect"
import { WebSocketServer } from "ws"
import { deflate, MAX_SIZE, ready } from "./common.mjs"

if (deflate) {
  process.stderr.write("platform: @effect/platform's upgrade has no permessage-deflate\n")
  process.exit(2)
}

const handleUpgrade = WebSocketServer.prototype.handleUpgrade
WebSocketServer.prototype.handleUpgrade = function (...args) {
  this.options.maxPayload = MAX_SIZE
  return handleUpgrade.apply(this, args)
}

const echo = Effect.gen(function* () {
  const socket = yield* HttpServerRequest.upgrade
  const write = yield* socket.writer
  yield* socket.runRaw((data) => write(data))
  return HttpServerResponse.empty()
}).pipe(Effect.scoped)

const router = HttpRouter.empty.pipe(HttpRouter.get("/", echo))

const main = Effect.gen(function* () {
  const server = yield* HttpServer.HttpServer
  yield* server.serve(router)
  ready("platform", server.address.port)
  yield* Effect.never
}).pipe(Effect.scoped)

Effect.runFork(
  main.pipe(Effect.provide(Layer.orDie(NodeHttpServer.layer(createServer, { host: "127.0.0.1", port: 0 }))))
)
