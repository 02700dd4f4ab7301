/**
 * Echo server: sends every message back, Text as Text and Binary as Binary.
 *
 *   npx tsx examples/echo-server.ts      # PORT=9000 for another port than 8765
 *
 * Stop it with Ctrl-C: the server closes every connection with 1001 (going away) before exiting.
 */
import { NodeRuntime } from "@effect/platform-node"
import { Console, Effect } from "effect"
import { Server } from "effect-websockets"

// Runs per message, from the socket's callback: an idle connection holds no fiber.
const echo = Server.onMessage((message, ws) => ws.send(message))

const program = Effect.gen(function* () {
  const server = yield* Server.serve(echo, { host: "127.0.0.1", port: Number(process.env.PORT ?? 8765) })
  // PORT=0 picks a free port: the address says which.
  yield* Console.log(`Listening on ws://127.0.0.1:${server.address._tag === "TcpAddress" ? server.address.port : "?"}`)
  // Runs until interrupted (Ctrl-C); closing the scope shuts the server down gracefully.
  yield* server.waitClosed
})

NodeRuntime.runMain(Effect.scoped(program))
