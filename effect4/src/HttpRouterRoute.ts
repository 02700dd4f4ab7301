/**
 * A WebSocket endpoint as a route of an `effect/http` `HttpRouter` served by
 * `@effect/platform-node`'s `NodeHttpServer`, on the same port as the application's other routes,
 * upgrading with this library's protocol. Middleware runs first and may answer instead (for
 * example 401); the handshake, the handler and shutdown are those of `Server.serve`.
 *
 * ```ts
 * const WebSocketRoute = HttpRouter.use((router) =>
 *   Effect.gen(function* () {
 *     const echo = yield* HttpRouterRoute.make((ws) => Stream.runForEach(ws.messages, (m) => ws.send(m)))
 *     yield* router.add("GET", "/ws", echo.route)
 *   })
 * )
 * HttpRouter.serve(Layer.mergeAll(WebSocketRoute, HttpRouter.add("GET", "/health", HttpServerResponse.text("ok"))))
 * ```
 *
 * Once the route takes the socket over, the platform never touches it again: the `ServerResponse`
 * the platform made for the request is detached from the socket and marked ended, so the response
 * the route returns (a 101, for the logs) is never written, and the route returns at once, so the
 * platform's interruption on `'close'` finds no fiber to interrupt. The connection lives in the
 * endpoint's own fibers, like every other connection of this library.
 *
 * The bytes Node read after the request head (`head` of the `'upgrade'` event) are not given to
 * routes; a client waits for the 101 before sending frames (RFC 6455 §4.1), so they are empty.
 *
 * @since 0.2.0
 */
import type * as http from "node:http"
import type { Duplex } from "node:stream"
import * as NodeHttpServerRequest from "@effect/platform-node/NodeHttpServerRequest"
import * as Effect from "effect/Effect"
import * as HttpServerRequest from "effect/http/HttpServerRequest"
import * as HttpServerResponse from "effect/http/HttpServerResponse"
import type * as Scope from "effect/Scope"
import { make as makeMount, type NodeMount } from "./NodeMount.js"
import type { CurrentServer, Endpoint, Handler, ServerOptions, WithProcessRequest } from "./Server.js"
import type { CurrentWebSocket } from "./WebSocket.js"

/** `NodeMount.make` for a generic `A` (the public overloads take it only with a providing hook). */
const mountOf = makeMount as <E, R, RP, A>(
  handler: Handler<E, R, A>,
  options: ServerOptions<RP, A>
) => Effect.Effect<NodeMount, never, Scope.Scope | Exclude<R, CurrentWebSocket | CurrentServer> | RP>

/**
 * A WebSocket endpoint with routes for an `HttpRouter`.
 * @since 0.2.0
 * @category models
 */
export interface HttpRouterRoute extends Endpoint {
  /**
   * The route: upgrades a WebSocket handshake request; answers any other request with 426 Upgrade
   * Required.
   */
  readonly route: Effect.Effect<HttpServerResponse.HttpServerResponse, never, HttpServerRequest.HttpServerRequest>
  /** The route, answering requests that are not upgrades with `otherwise` (a page, a redirect). */
  readonly routeOr: <E, R>(
    otherwise: Effect.Effect<HttpServerResponse.HttpServerResponse, E, R>
  ) => Effect.Effect<HttpServerResponse.HttpServerResponse, E, R | HttpServerRequest.HttpServerRequest>
}

const EMPTY = new Uint8Array(0)

const upgradeRequired = HttpServerResponse.text(
  "Upgrade Required: this path serves WebSocket connections; use a WebSocket client.\n",
  { status: 426, headers: { Upgrade: "websocket", Connection: "Upgrade" } }
)

/**
 * Builds a WebSocket endpoint whose {@link HttpRouterRoute.route} goes into an `HttpRouter`; it
 * shuts down gracefully (1001 to open connections, handlers awaited) when the scope closes. Build
 * it in a scope that closes before the `NodeHttpServer` layer's (whose close waits for upgraded
 * sockets), for example with `Layer.unwrapScoped` over the router, provided with the server layer.
 * @since 0.2.0
 * @category constructors
 */
export const make: {
  <E, R, RP = never, A = undefined>(
    handler: Handler<E, R, A>,
    options: ServerOptions<RP, A> & WithProcessRequest<RP, A>
  ): Effect.Effect<HttpRouterRoute, never, Scope.Scope | Exclude<R, CurrentWebSocket | CurrentServer> | RP>
  <E, R, RP = never>(
    handler: Handler<E, R>,
    options?: ServerOptions<RP>
  ): Effect.Effect<HttpRouterRoute, never, Scope.Scope | Exclude<R, CurrentWebSocket | CurrentServer> | RP>
} = <E, R, RP = never, A = undefined>(
  handler: Handler<E, R, A>,
  options: ServerOptions<RP, A> = {}
): Effect.Effect<HttpRouterRoute, never, Scope.Scope | Exclude<R, CurrentWebSocket | CurrentServer> | RP> =>
  Effect.map(mountOf(handler, options), ({ handleUpgrade, ...endpoint }) => {
    const routeOr = <E2, R2>(otherwise: Effect.Effect<HttpServerResponse.HttpServerResponse, E2, R2>) =>
      Effect.flatMap(HttpServerRequest.HttpServerRequest, (request) =>
        takeOver(request, handleUpgrade) ? Effect.succeed(switched) : otherwise
      )
    return { ...endpoint, route: routeOr(Effect.succeed(upgradeRequired)), routeOr }
  })

/** What the route returns after a takeover: never written (the response is ended), but logged by middleware. */
const switched = HttpServerResponse.empty({ status: 101 })

/**
 * Takes the socket of an upgrade request away from the platform and gives it to the endpoint;
 * false when the request is not an upgrade (it then gets an ordinary HTTP response).
 */
const takeOver = (request: HttpServerRequest.HttpServerRequest, handleUpgrade: NodeMount["handleUpgrade"]): boolean => {
  // An HTTP/2 request is never a WebSocket upgrade (RFC 8441 is not supported): only HTTP/1.1 ones are.
  const incoming = NodeHttpServerRequest.toIncomingMessage(request) as http.IncomingMessage
  // Node sets `upgrade` (untyped) on the requests it delivers through the server's 'upgrade' event,
  // whose socket no HTTP parser reads any more.
  if ((incoming as { readonly upgrade?: boolean }).upgrade !== true) return false
  const socket = incoming.socket as Duplex
  // The platform's handler for upgrade requests makes its ServerResponse lazily and ends the socket
  // when that response finishes: detach it from the socket and end it, so that it never writes
  // there and never finishes, and the platform sees a response already sent.
  const response = NodeHttpServerRequest.toServerResponse(request) as http.ServerResponse
  if (response.socket === socket) response.detachSocket(incoming.socket)
  if (!response.writableEnded) response.end()
  handleUpgrade(incoming, socket, EMPTY)
  return true
}
