/**
 * WebSockets mounted in a plain `node:http` server, beside its ordinary request handler:
 *
 * - `GET /health` answers 200 `ok` (from the `'request'` handler);
 * - `/ws` echoes every message (Text as Text, Binary as Binary; compressed; up to 16 MiB);
 * - `/chat` relays every text message to every other connection on `/chat`;
 * - a plain GET on `/ws` or `/chat` (a browser's address bar) gets 426 Upgrade Required.
 *
 * Listens on 127.0.0.1 and the port in `PORT` (default 8080). On SIGTERM or Ctrl-C it closes its
 * WebSocket connections with 1001 (going away) and exits 0.
 *
 *   npx tsx examples/node-http.ts
 */
import { createServer } from "node:http"
import { NodeRuntime } from "@effect/platform-node"
import { Console, Effect, Stream } from "effect"
import { NodeMount, Server, type WebSocket } from "effect-websockets"

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

const program = Effect.gen(function* () {
  // Acquired first, so released last: `close` waits for every socket, upgraded ones included.
  const http = yield* Effect.acquireRelease(
    Effect.sync(() =>
      createServer((request, response) => {
        const path = new URL(request.url ?? "/", "http://localhost").pathname
        if (path === "/health") response.writeHead(200, { "Content-Type": "text/plain" }).end("ok")
        // RFC 9110 §15.5.22: a WebSocket endpoint reached without an upgrade says which protocol it needs.
        else if (path === "/ws" || path === "/chat")
          response
            .writeHead(426, { Upgrade: "websocket", Connection: "Upgrade", "Content-Type": "text/plain" })
            .end("This is a WebSocket endpoint: connect with a WebSocket client.\n")
        else response.writeHead(404).end()
      })
    ),
    (http) => Effect.async<void>((resume) => void http.close(() => resume(Effect.void)))
  )
  const ws = yield* NodeMount.make(echo, { maxSize: 16 * 1024 * 1024 })
  const room = yield* NodeMount.make(chat)
  http.on("upgrade", NodeMount.byPath({ "/ws": ws, "/chat": room }))
  yield* Effect.async<void, Error>((resume) => {
    http.once("error", (error) => resume(Effect.fail(error)))
    http.listen(PORT, "127.0.0.1", () => resume(Effect.void))
  })
  // The port the server got (PORT=0 picks a free one).
  const { port } = http.address() as { readonly port: number }
  yield* Console.log(`Listening on http://127.0.0.1:${port}`)
  yield* Effect.never
})

NodeRuntime.runMain(Effect.scoped(program))
