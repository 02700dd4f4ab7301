/**
 * A client that stays connected: `Client.reconnect` runs the handler on each new connection and,
 * when the server goes away or cannot be reached, tries again after an exponential backoff. Start
 * and stop the echo server (examples/echo-server.ts) to watch it reconnect.
 *
 *   npx tsx examples/reconnecting-client.ts [ws://127.0.0.1:8765/]
 */
import { NodeRuntime } from "@effect/platform-node"
import { Console, Effect, Schedule, Stream } from "effect"
import { Client, type WebSocket } from "effect-websockets"

const session = (ws: WebSocket.WebSocket) =>
  Effect.gen(function* () {
    yield* Console.log("Connected.")
    // Send a heartbeat message every second while printing what comes back. When the connection
    // closes, `send` or `messages` fails with ConnectionClosed and `reconnect` opens a new one.
    yield* ws.send("tick").pipe(Effect.repeat(Schedule.spaced("1 second")), Effect.forkScoped)
    yield* Stream.runForEach(ws.messages, (message) => Console.log(`< ${String(message)}`))
    yield* Console.log(`Disconnected (close code ${ws.closeCode ?? "none"}).`)
  }).pipe(Effect.scoped)

/** Faster than the default backoff (3 s growing to 60 s) so that the demo is lively; capped at 10 s. */
const backoff = Schedule.exponential("500 millis").pipe(
  Schedule.jittered,
  Schedule.union(Schedule.spaced("10 seconds")),
  // The schedule sees each failed attempt: say why before waiting.
  Schedule.tapInput((error) => Console.log(`Connection failed: ${error instanceof Error ? error.message : error}`))
)

// By default, connection errors, failed handshakes and closed connections reconnect; anything else
// (an invalid URI, a handler bug) ends the program. `Schedule.recurs(n)` would give up after n retries.
const program = Client.reconnect(process.argv[2] ?? "ws://127.0.0.1:8765/", session, { schedule: backoff })

NodeRuntime.runMain(program)
