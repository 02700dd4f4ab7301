/**
 * A consumer application of the packed tarball: an echo server and a client in one process, using
 * what a user reaches for first. Prints one JSON line that `check.mjs` compares.
 */
import * as Socket from "@effect/platform/Socket"
import { Effect, Stream } from "effect"
import { Client, Errors, Server } from "effect-websockets"
import { toSocket } from "effect-websockets/SocketAdapter"

const program = Effect.scoped(
  Effect.gen(function* () {
    const server = yield* Server.serve((ws) => Stream.runForEach(ws.messages, (message) => ws.send(message)), {
      host: "127.0.0.1",
      port: 0
    })
    const port = server.address._tag === "TcpAddress" ? server.address.port : 0
    const ws = yield* Client.connect(`ws://127.0.0.1:${port}/`, { extraHeaders: { "X-App": "consumer" } })
    yield* ws.send("hello")
    const reply = yield* ws.recv
    // A plain string, not an Either.
    const header: string | undefined = ws.requestHeaders.get("x-app")
    const invalidClose = yield* Effect.flip(ws.close(999))
    // The optional peer: our connection as a platform Socket.
    const socket: Socket.Socket = toSocket(ws)
    const refused = yield* Effect.flip(Effect.scoped(Client.connect("ws://127.0.0.1:1/")))
    return {
      reply,
      header,
      invalidClose: invalidClose._tag,
      isSocket: Socket.isSocket(socket),
      refused: refused.message,
      errorsModule: typeof Errors.isConnectionClosed
    }
  })
)

Effect.runPromise(program).then(
  (result) => console.log(JSON.stringify(result)),
  (error) => {
    console.error(error)
    process.exitCode = 1
  }
)
