/**
 * The Effect 4 shell's WebSocket route in an `effect/http` HttpRouter served by
 * `@effect/platform-node` 4's NodeHttpServer, over real loopback sockets: the upgrade is taken
 * over by this library, and the router's other routes still answer on the same port.
 */
import * as http from "node:http"
import * as NodeHttpServer from "@effect/platform-node/NodeHttpServer"
import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as HttpRouter from "effect/http/HttpRouter"
import * as HttpServer from "effect/http/HttpServer"
import * as HttpServerResponse from "effect/http/HttpServerResponse"
import * as Layer from "effect/Layer"
import * as Stream from "effect/Stream"
import * as Client from "../src/Client.js"
import * as HttpRouterRoute from "../src/HttpRouterRoute.js"
import type { WebSocket } from "../src/WebSocket.js"

const LOCALHOST = "127.0.0.1"

const echo = (ws: WebSocket) => Stream.runForEach(ws.messages, (message) => ws.send(message))

const WebSocketRoute = HttpRouter.use((router) =>
  Effect.gen(function* () {
    const route = yield* HttpRouterRoute.make(echo)
    yield* router.add("GET", "/ws", route.route)
  })
)
const Health = HttpRouter.add("GET", "/health", HttpServerResponse.text("ok"))

const App = HttpRouter.serve(Layer.mergeAll(WebSocketRoute, Health), {
  disableLogger: true,
  disableListenLog: true
}).pipe(Layer.provideMerge(NodeHttpServer.layer(http.createServer, { host: LOCALHOST, port: 0 })))

describe("Effect 4 shell: HttpRouterRoute", () => {
  it.live("a WebSocket route and an HTTP route share one NodeHttpServer", () =>
    Effect.gen(function* () {
      const server = yield* HttpServer.HttpServer
      const port = server.address._tag === "UnixPathAddress" ? 0 : server.address.port
      const ws = yield* Client.connect(`ws://${LOCALHOST}:${port}/ws`)
      yield* ws.send("through the router")
      expect(yield* ws.recv).toBe("through the router")
      const health = yield* Effect.promise(() => fetch(`http://${LOCALHOST}:${port}/health`).then((r) => r.text()))
      expect(health).toBe("ok")
      const plain = yield* Effect.promise(() => fetch(`http://${LOCALHOST}:${port}/ws`).then((r) => r.status))
      expect(plain).toBe(426)
      yield* ws.send("still open")
      expect(yield* ws.recv).toBe("still open")
    }).pipe(Effect.provide(App))
  )
})
