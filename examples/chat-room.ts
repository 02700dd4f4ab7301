/**
 * Chat room: every message a client sends is broadcast to every connected client, with the
 * sender's name; joins and departures are announced too. Try it with two terminals running
 * `npx effect-websockets ws://127.0.0.1:8765/?name=alice` (and `?name=bob`).
 */
import { NodeRuntime } from "@effect/platform-node"
import { Deferred, Effect, Stream } from "effect"
import { Server, type WebSocket } from "../src/index.js"

const nameOf = (ws: WebSocket.WebSocket): string =>
  new URL(ws.path, "ws://localhost").searchParams.get("name") ?? `guest-${ws.id.slice(0, 4)}`

const program = Effect.gen(function* () {
  // The handler needs the server (to broadcast) and the server needs the handler: tie the knot
  // with a Deferred that completes once the server is listening.
  const serverRef = yield* Deferred.make<Server.WebSocketServer>()

  const chat = (ws: WebSocket.WebSocket) =>
    Effect.gen(function* () {
      const server = yield* Deferred.await(serverRef)
      const name = nameOf(ws)
      // broadcast never waits for a slow client: one whose buffer is full misses the message.
      yield* server.broadcast(`* ${name} joined (${server.connections.size} online)`)
      yield* Stream.runForEach(ws.messages, (message) =>
        typeof message === "string" ? server.broadcast(`${name}: ${message}`) : Effect.void
      ).pipe(
        Effect.ensuring(
          Effect.suspend(() => {
            const others = [...server.connections].filter((other) => other !== ws)
            return server.broadcast(`* ${name} left`, others)
          })
        )
      )
    })

  const server = yield* Server.serve(chat, { host: "127.0.0.1", port: 8765 })
  yield* Deferred.succeed(serverRef, server)
  yield* Effect.log("Chat room on ws://127.0.0.1:8765/?name=<your name>")
  yield* server.waitClosed
})

NodeRuntime.runMain(Effect.scoped(program))
