/**
 * WebSocket endpoints inside a Node `http`/`https` server (ws's `handleUpgrade`, crossws's hook):
 * each endpoint is a server without a listener of its own, fed by the HTTP server's `'upgrade'`
 * event. The request Node already parsed is reused (no second HTTP parse) and everything else is
 * the accept path of `Server.serve`: the same options, handler semantics and shutdown.
 *
 * ```ts
 * const echo = yield* NodeMount.make((ws) => Stream.runForEach(ws.messages, (m) => ws.send(m)))
 * const httpServer = http.createServer((req, res) => res.end("ok"))
 * httpServer.on("upgrade", NodeMount.byPath({ "/ws": echo }))
 * ```
 *
 * @since 0.2.0
 */
import type * as http from "node:http"
import type * as net from "node:net"
import type { Duplex } from "node:stream"
import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"
import { Headers } from "./Headers.js"
import { makeResponse, Request } from "./Http11.js"
import {
  type Acceptor,
  type CurrentServer,
  type Endpoint,
  type Handler,
  makeAcceptor,
  type ServerOptions,
  type WithProcessRequest
} from "./Server.js"
import type { CurrentWebSocket } from "./WebSocket.js"

/** `makeAcceptor` for a generic `A` (the public overloads take it only with a providing hook). */
const acceptorOf = makeAcceptor as <E, R, RP, A>(
  handler: Handler<E, R, A>,
  options: ServerOptions<RP, A>
) => Effect.Effect<Acceptor, never, Scope.Scope | Exclude<R, CurrentWebSocket | CurrentServer> | RP>

/**
 * A WebSocket endpoint for a Node HTTP server: its connections, broadcast and shutdown work as for
 * `Server.serve`.
 * @since 0.2.0
 * @category models
 */
export interface NodeMount extends Endpoint {
  /**
   * Runs the server side of the protocol on an upgrade request: pass it what the HTTP server's
   * `'upgrade'` event gives. Answers handshake errors over HTTP and closes the socket.
   */
  readonly handleUpgrade: UpgradeListener
}

/**
 * A listener of a Node HTTP server's `'upgrade'` event.
 * @since 0.2.0
 * @category models
 */
export type UpgradeListener = (request: http.IncomingMessage, socket: Duplex, head: Uint8Array) => void

/**
 * Builds an endpoint running `handler` for every connection it is given; it shuts down gracefully
 * (1001 to open connections, handlers awaited) when the scope closes. Make it after the HTTP
 * server (so it closes first): `http.Server.close` waits for upgraded sockets too.
 * @since 0.2.0
 * @category constructors
 */
export const make: {
  <E, R, RP = never, A = undefined>(
    handler: Handler<E, R, A>,
    options: ServerOptions<RP, A> & WithProcessRequest<RP, A>
  ): Effect.Effect<NodeMount, never, Scope.Scope | Exclude<R, CurrentWebSocket | CurrentServer> | RP>
  <E, R, RP = never>(
    handler: Handler<E, R>,
    options?: ServerOptions<RP>
  ): Effect.Effect<NodeMount, never, Scope.Scope | Exclude<R, CurrentWebSocket | CurrentServer> | RP>
} = <E, R, RP = never, A = undefined>(
  handler: Handler<E, R, A>,
  options: ServerOptions<RP, A> = {}
): Effect.Effect<NodeMount, never, Scope.Scope | Exclude<R, CurrentWebSocket | CurrentServer> | RP> =>
  Effect.map(acceptorOf(handler, options), ({ accept, ...endpoint }) => ({
    ...endpoint,
    handleUpgrade: (request, socket, head) => {
      // RFC 6455 §4.1: the handshake is an HTTP/1.1 GET. Node reports upgrades of any method: the
      // accept path answers another method, after the request hook, with 405 and `Allow: GET`.
      if (request.httpVersion !== "1.1") {
        refuse(socket, 400, "Failed to open a WebSocket connection: expected an HTTP/1.1 GET request.\n")
        return
      }
      const tcp = socket as Duplex & Partial<Pick<net.Socket, "setTimeout" | "setNoDelay">>
      // The HTTP server's idle timeout no longer applies: keepalive and the close timeout take over.
      tcp.setTimeout?.(0)
      tcp.setNoDelay?.(true)
      accept(socket, { request: new Request(request.url ?? "/", headersOf(request.rawHeaders), request.method), head })
    }
  }))

/**
 * An `'upgrade'` listener dispatching on the request's path (query excluded) to one endpoint per
 * path; other paths go to `otherwise`, or are answered 404.
 * @since 0.2.0
 * @category constructors
 */
export const byPath =
  (endpoints: Readonly<Record<string, NodeMount | UpgradeListener>>, otherwise?: UpgradeListener): UpgradeListener =>
  (request, socket, head) => {
    const url = request.url ?? "/"
    const query = url.indexOf("?")
    const path = query < 0 ? url : url.slice(0, query)
    const endpoint = Object.hasOwn(endpoints, path) ? endpoints[path] : undefined
    if (endpoint !== undefined) {
      if (typeof endpoint === "function") endpoint(request, socket, head)
      else endpoint.handleUpgrade(request, socket, head)
    } else if (otherwise !== undefined) {
      otherwise(request, socket, head)
    } else {
      refuse(socket, 404, "Not Found\n")
    }
  }

/** Node's raw header list, `[name, value, name, value, …]`, in order and with repeated names. */
const headersOf = (raw: ReadonlyArray<string>): Headers => {
  const headers = new Headers()
  for (let i = 0; i + 1 < raw.length; i += 2) headers.append(raw[i]!, raw[i + 1]!)
  return headers
}

/**
 * Answers an upgrade request with an HTTP error response and closes the socket (it will never
 * carry WebSocket frames).
 * @since 0.2.0
 * @category utils
 */
export const refuse = (socket: Duplex, status: number, text: string): void => {
  if (socket.writable) {
    const response = makeResponse(status, { Connection: "close", "Content-Type": "text/plain; charset=utf-8" }, text)
    socket.end(response.serialize())
  }
  const destroySoon = (socket as Duplex & { destroySoon?: () => void }).destroySoon
  if (destroySoon !== undefined) destroySoon.call(socket)
  else socket.destroy()
}
