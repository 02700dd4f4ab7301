/**
 * An Effect 4 application of the packed tarball: the README's echo server and client in one
 * process, through `effect-websockets/effect4`, run by @effect/platform-node 4's `NodeRuntime`.
 * Prints one JSON line that `checkEffect4.mjs` compares.
 */
// The module rather than the barrel: the barrel's NodeClusterSocket declarations name
// `globalThis.Transferable`, which only the DOM lib declares (skipLibCheck off, lib ES2022).
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import { Console, Effect, type Layer, Stream } from "effect"
import { Client, Errors, Server } from "effect-websockets/effect4"
import type { WebSocket } from "effect-websockets/effect4/WebSocket"

const echo = Server.onMessage((message, ws) => ws.send(message))

const program = Effect.gen(function* () {
  const server = yield* Server.Server
  const port = server.address._tag === "TcpAddress" ? server.address.port : 0
  const ws: WebSocket = yield* Client.connect(`ws://127.0.0.1:${port}/`, { extraHeaders: { "X-App": "consumer" } })
  yield* ws.send("hello")
  const reply = yield* ws.recv
  // A plain string, not a Result.
  const header: string | undefined = ws.requestHeaders.get("x-app")
  yield* ws.send(Stream.make("frag", "ments"))
  const fragmented = yield* ws.recv
  const invalidClose = yield* Effect.flip(ws.close(999))
  // A typed error caught by its tag.
  const refused = yield* Client.connect("ws://127.0.0.1:1/").pipe(
    Effect.as("connected"),
    Effect.catchTag("ConnectFailed", (error) => Effect.succeed(error.message)),
    Effect.scoped
  )
  yield* Console.log(
    JSON.stringify({
      reply,
      header,
      fragmented,
      invalidClose: invalidClose._tag,
      refused,
      errorsModule: typeof Errors.isConnectionClosed
    })
  )
}).pipe(Effect.scoped)

// The server as a layer, as in the README; the program ends once the round trip is done.
const ServerLive: Layer.Layer<Server.Server, Errors.ListenFailed> = Server.layer(echo, { host: "127.0.0.1", port: 0 })

program.pipe(Effect.provide(ServerLive), NodeRuntime.runMain)
