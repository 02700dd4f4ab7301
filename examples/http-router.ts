/**
 * WebSockets on an `@effect/platform` HttpRouter app served by NodeHttpServer, beside ordinary
 * routes, on one port:
 *
 * - `GET /health` answers 200 `ok`;
 * - `/ws` echoes every message (Text as Text, Binary as Binary; compressed; up to 16 MiB);
 * - `/chat` relays every text message to every other connection on `/chat`.
 *
 * Listens on 127.0.0.1 and the port in `PORT` (default 8080). On SIGTERM or Ctrl-C it closes its
 * WebSocket connections with 1001 (going away) and exits 0.
 *
 *   npx tsx examples/http-router.ts
 */
import { createServer } from "node:http"
import { HttpRouter, HttpServer, HttpServerResponse } from "@effect/platform"
import { NodeHttpServer, NodeRuntime } from "@effect/platform-node"
import { Console, Effect, Layer, Stream } from "effect"
import { Server, type WebSocket } from "effect-websockets"
import * as HttpRouterRoute from "effect-websockets/HttpRouterRoute"

const PORT = Number(process.env.PORT ?? 8080)

const echo = (ws: WebSocket.WebSocket) => Stream.runForEach(ws.messages, (message) => ws.send(message))

/** Every connection of the server but one. */
function* othersThan(self: WebSocket.WebSocket, all: Iterable<WebSocket.WebSocket>) {
  for (const ws of all) if (ws !== self) yield ws
}

/** Relays text messages to the other connections of the server this handler runs in. */
const chat = (ws: WebSocket.WebSocket) =>
  Effect.flatMap(Server.CurrentServer, (room) =>
    Stream.runForEach(ws.messages, (message) =>
      typeof message === "string" ? room.broadcast(message, othersThan(ws, room.connections)) : Effect.void
    )
  )

// The WebSocket endpoints live in this layer's scope, which closes before the HTTP server's (whose
// close waits for every socket): connections get their 1001 first.
const App = Layer.unwrapScoped(
  Effect.gen(function* () {
    const ws = yield* HttpRouterRoute.make(echo, { maxSize: 16 * 1024 * 1024 })
    const room = yield* HttpRouterRoute.make(chat)
    const router = HttpRouter.empty.pipe(
      HttpRouter.get("/health", HttpServerResponse.text("ok")),
      HttpRouter.get("/ws", ws.route),
      HttpRouter.get("/chat", room.route)
    )
    return HttpServer.serve(router).pipe(
      Layer.tap(() => HttpServer.addressFormattedWith((address) => Console.log(`Listening on ${address}`)))
    )
  })
)

const Main = App.pipe(Layer.provide(NodeHttpServer.layer(createServer, { host: "127.0.0.1", port: PORT })))

NodeRuntime.runMain(Layer.launch(Main))
