/**
 * Client: connects to the echo server, sends a text and a binary message, prints the replies and
 * closes normally (1000) when the scope closes.
 *
 *   npx tsx examples/client.ts [ws://127.0.0.1:8765/]
 */
import { NodeRuntime } from "@effect/platform-node"
import { Console, Effect } from "effect"
import { Client, Errors } from "effect-websockets"

const program = Effect.gen(function* () {
  const ws = yield* Client.connect(process.argv[2] ?? "ws://127.0.0.1:8765/")
  yield* Console.log(`Connected; subprotocol: ${ws.subprotocol ?? "none"}`)

  yield* ws.send("Hello world!")
  const text = yield* ws.recv // a string: the reply was a Text message
  yield* Console.log(`< ${text}`)

  yield* ws.send(new Uint8Array([0xde, 0xad, 0xbe, 0xef]))
  const bytes = yield* ws.recv // a Uint8Array: the reply was a Binary message
  yield* Console.log(`< ${typeof bytes === "string" ? bytes : `${bytes.byteLength} bytes`}`)

  const latency = yield* Effect.flatten(ws.ping())
  yield* Console.log(`Ping round trip: ${latency.toFixed(1)} ms`)
})

Effect.scoped(program).pipe(
  // Every failure is typed: a refused connection, a failed handshake, a closed connection...
  Effect.catchIf(Errors.isInvalidHandshake, (error) => Console.error(`Handshake failed: ${error.message}`)),
  Effect.catchIf(Errors.isConnectionClosed, (error) => Console.error(`Connection closed: ${error.message}`)),
  Effect.catchTag("ConnectFailed", (error) => Console.error(error.message)),
  NodeRuntime.runMain
)
