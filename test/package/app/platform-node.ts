/**
 * A consumer of the optional peer @effect/platform-node: an HttpRouter app on NodeHttpServer with a
 * WebSocket route (`effect-websockets/HttpRouterRoute`), an echo through it, a plain GET on the
 * route (426) and a path the router does not serve (the client's InvalidStatusCode 404). Prints one
 * JSON line that `check.mjs` compares.
 */
import { createServer } from "node:http"
import { HttpRouter, HttpServer, HttpServerResponse } from "@effect/platform"
import { NodeHttpServer } from "@effect/platform-node"
import { Effect, Layer, Stream } from "effect"
import { Client } from "effect-websockets"
import * as HttpRouterRoute from "effect-websockets/HttpRouterRoute"

const program = Effect.scoped(
  Effect.gen(function* () {
    // Built first, so closed last: the HTTP server's close waits for the upgraded sockets.
    const context = yield* Layer.build(NodeHttpServer.layer(createServer, { host: "127.0.0.1", port: 0 }))
    const echo = yield* HttpRouterRoute.make((ws) => Stream.runForEach(ws.messages, (message) => ws.send(message)))
    yield* HttpServer.serveEffect()(
      HttpRouter.empty.pipe(HttpRouter.get("/health", HttpServerResponse.text("ok")), HttpRouter.get("/ws", echo.route))
    ).pipe(Effect.provide(context))
    const address = (yield* Effect.provide(HttpServer.HttpServer, context)).address
    const base = `127.0.0.1:${address._tag === "TcpAddress" ? address.port : 0}`
    const ws = yield* Client.connect(`ws://${base}/ws`)
    yield* ws.send("routed")
    const reply = yield* ws.recv
    yield* ws.close()
    const plain = yield* Effect.promise(() => fetch(`http://${base}/ws`))
    const missing = yield* Effect.flip(Effect.scoped(Client.connect(`ws://${base}/nowhere`)))
    return {
      reply,
      plain: plain.status,
      missing: missing._tag === "InvalidStatusCode" ? missing.statusCode : missing._tag
    }
  })
)

Effect.runPromise(program).then(
  (result) => console.log(JSON.stringify(result)),
  (error) => {
    console.error(error)
    process.exitCode = 1
  }
)
