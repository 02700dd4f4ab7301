/**
 * A server that authenticates clients with HTTP Basic Auth (RFC 7617) before the WebSocket
 * handshake: `Auth.basicAuth` builds a `processRequest` hook that answers 401 with a
 * `WWW-Authenticate` challenge unless the request carries valid credentials. Connect with
 * `npx effect-websockets ws://127.0.0.1:8765/ --header "Authorization: Basic YWxpY2U6czNjcmV0"`
 * (alice:s3cret), or with `Client.connect("ws://alice:s3cret@127.0.0.1:8765/")`.
 *
 *   npx tsx examples/auth-server.ts      # PORT=9000 for another port than 8765
 */
import { NodeRuntime } from "@effect/platform-node"
import { Console, Effect } from "effect"
import { Auth, Server, type WebSocket } from "effect-websockets"

/** A real application checks a password hash in a database. */
const USERS: ReadonlyMap<string, string> = new Map([["alice", "s3cret"]])

const processRequest = Auth.basicAuth({
  realm: "effect-websockets example",
  checkCredentials: (username, password) => Effect.succeed(USERS.get(username) === password)
})

// processRequest let this request through with the username it authenticated.
const greet = (ws: WebSocket.WebSocket, username: string) =>
  Effect.gen(function* () {
    yield* ws.send(`Hello ${username}!`)
    yield* ws.waitClosed
  })

const program = Effect.gen(function* () {
  const server = yield* Server.serve(greet, {
    host: "127.0.0.1",
    port: Number(process.env.PORT ?? 8765),
    processRequest
  })
  const port = server.address._tag === "TcpAddress" ? server.address.port : "?"
  yield* Console.log(`Listening on ws://127.0.0.1:${port} (Basic Auth)`)
  yield* server.waitClosed
})

NodeRuntime.runMain(Effect.scoped(program))
