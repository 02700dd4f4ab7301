/**
 * Chat room: every message a client sends is broadcast to every connected client, with the
 * sender's name; joins and departures are announced too. Try it with two terminals running
 * `npx effect-websockets ws://127.0.0.1:8765/?name=alice` (and `?name=bob`).
 *
 *   npx tsx examples/chat-room.ts      # PORT=9000 for another port than 8765
 */
import { NodeRuntime } from "@effect/platform-node"
import { Console, Effect, Stream } from "effect"
import { Server, type WebSocket } from "effect-websockets"

const nameOf = (ws: WebSocket.WebSocket): string =>
  new URL(ws.path, "ws://localhost").searchParams.get("name") ?? `guest-${ws.id.slice(0, 4)}`

const chat = (ws: WebSocket.WebSocket) =>
  Effect.gen(function* () {
    // The server this handler runs in, provided by the server itself.
    const server = yield* Server.CurrentServer
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

const program = Effect.gen(function* () {
  const server = yield* Server.serve(chat, { host: "127.0.0.1", port: Number(process.env.PORT ?? 8765) })
  const port = server.address._tag === "TcpAddress" ? server.address.port : "?"
  yield* Console.log(`Listening on ws://127.0.0.1:${port} (join with ?name=<your name>)`)
  yield* server.waitClosed
})

NodeRuntime.runMain(Effect.scoped(program))
