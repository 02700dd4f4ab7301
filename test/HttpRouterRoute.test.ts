/**
 * WebSocket routes in an HttpRouter app on NodeHttpServer: requests that are not upgrades, middleware
 * answering before the route, and the takeover itself: once the socket carries frames, nothing the
 * platform does after the route's effect (writing a response, ending the socket, interrupting on
 * 'close', answering 503 at shutdown) reaches it. A raw client checks every byte it receives.
 */
import * as http from "node:http"
import * as HttpMiddleware from "@effect/platform/HttpMiddleware"
import * as HttpRouter from "@effect/platform/HttpRouter"
import * as HttpServer from "@effect/platform/HttpServer"
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import * as NodeHttpServer from "@effect/platform-node/NodeHttpServer"
import { describe, expect, it } from "@effect/vitest"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Scope from "effect/Scope"
import { Opcode } from "../src/Frames.js"
import * as HttpRouterRoute from "../src/HttpRouterRoute.js"
import { routeLocal } from "./fixtures/frontDoors.js"
import {
  bounded,
  closeCodeOf,
  closePayload,
  echo,
  frameBytes,
  LOCALHOST,
  parseRawFrame,
  portOf,
  type RawFrame,
  rawClient
} from "./fixtures/loopback.js"

/** Every frame in `bytes`; fails the test if anything else (an HTTP response) is there. */
const framesIn = (bytes: Buffer): Array<RawFrame> => {
  const frames: Array<RawFrame> = []
  let rest = bytes
  while (rest.length > 0) {
    const parsed = parseRawFrame(rest)
    expect(parsed, `not a frame: ${JSON.stringify(rest.toString("latin1").slice(0, 40))}`).toBeDefined()
    frames.push(parsed![0])
    rest = rest.subarray(parsed![1])
  }
  return frames
}

describe("HttpRouterRoute", () => {
  it.scopedLive("GET without an upgrade gets 426, or what routeOr says; other routes work beside", () =>
    Effect.gen(function* () {
      const context = yield* Layer.build(NodeHttpServer.layer(http.createServer, { host: LOCALHOST, port: 0 }))
      const endpoint = yield* HttpRouterRoute.make(echo)
      yield* HttpServer.serveEffect()(
        HttpRouter.empty.pipe(
          HttpRouter.get("/health", HttpServerResponse.text("ok")),
          HttpRouter.get("/ws", endpoint.route),
          HttpRouter.get("/page", endpoint.routeOr(HttpServerResponse.text("a page", { status: 200 })))
        )
      ).pipe(Effect.provide(context))
      const address = (yield* Effect.provide(HttpServer.HttpServer, context)).address
      const base = `http://${LOCALHOST}:${address._tag === "TcpAddress" ? address.port : 0}`
      const plain = yield* Effect.promise(() => fetch(`${base}/ws`))
      expect(plain.status).toBe(426)
      expect(plain.headers.get("upgrade")).toBe("websocket")
      const page = yield* Effect.promise(() => fetch(`${base}/page`))
      expect(yield* Effect.promise(() => page.text())).toBe("a page")
      const health = yield* Effect.promise(() => fetch(`${base}/health`))
      expect(yield* Effect.promise(() => health.text())).toBe("ok")
    }).pipe(bounded(8000))
  )

  it.scopedLive("middleware answers before the route: a 401 rejects the upgrade over HTTP", () =>
    Effect.gen(function* () {
      const server = yield* routeLocal(echo, {}, (app) =>
        Effect.flatMap(HttpServerRequest.HttpServerRequest, (request) =>
          request.headers.authorization === "Bearer good" ? app : HttpServerResponse.text("denied", { status: 401 })
        )
      )
      const peer = yield* rawClient(portOf(server), "/ws").pipe(Effect.flip)
      expect(peer.message).toMatch(/^handshake failed: HTTP\/1\.1 401 Unauthorized/)
    }).pipe(bounded(8000))
  )

  it.scopedLive("after the takeover the socket carries only frames: no response, no end, until the close", () =>
    Effect.gen(function* () {
      const logged = yield* Deferred.make<void>()
      const server = yield* routeLocal(echo, {}, (app) =>
        HttpMiddleware.logger(app).pipe(Effect.ensuring(Deferred.succeed(logged, undefined)))
      )
      const peer = yield* rawClient(portOf(server), "/ws")
      // The route's effect has returned (and the platform handled its response) before any frame.
      yield* Deferred.await(logged)
      yield* peer.write(frameBytes(Opcode.Text, "one", true))
      yield* peer.write(frameBytes(Opcode.Binary, new Uint8Array([1, 2]), true))
      yield* peer.waitUntil((bytes) => framesIn(bytes).length === 2)
      yield* peer.write(frameBytes(Opcode.Close, closePayload(1000, "bye"), true))
      yield* Deferred.await(peer.ended)
      const frames = framesIn(peer.received)
      expect(frames.map((frame) => frame.opcode)).toEqual([Opcode.Text, Opcode.Binary, Opcode.Close])
      expect(frames[0]!.payload.toString()).toBe("one")
      expect(closeCodeOf(frames[2]!)).toBe(1000)
    }).pipe(bounded(8000))
  )

  it.scopedLive("at shutdown the connection gets a close frame 1001, never the platform's 503", () =>
    Effect.gen(function* () {
      const scope = yield* Scope.make()
      const server = yield* routeLocal(echo).pipe(Scope.extend(scope))
      const peer = yield* rawClient(portOf(server), "/ws")
      yield* peer.write(frameBytes(Opcode.Text, "before", true))
      yield* peer.waitUntil((bytes) => framesIn(bytes).length === 1)
      const closing = yield* Effect.fork(Scope.close(scope, Exit.void))
      const close = yield* peer.waitUntil((bytes) => framesIn(bytes).length === 2)
      expect(closeCodeOf(framesIn(close)[1]!)).toBe(1001)
      yield* peer.write(frameBytes(Opcode.Close, closePayload(1001), true))
      yield* Deferred.await(peer.ended)
      yield* Effect.fromFiber(closing)
      expect(framesIn(peer.received).map((frame) => frame.opcode)).toEqual([Opcode.Text, Opcode.Close])
    }).pipe(bounded(8000))
  )
})
