/**
 * A server that authenticates clients with HTTP Basic Auth (RFC 7617) before the WebSocket
 * handshake: `processRequest` answers 401 with a `WWW-Authenticate` challenge unless the request
 * carries valid credentials. Connect with
 * `npx effect-websockets ws://127.0.0.1:8765/ --header "Authorization: Basic YWxpY2U6czNjcmV0"`
 * (alice:s3cret), or with `Client.connect("ws://alice:s3cret@127.0.0.1:8765/")`.
 */
import { timingSafeEqual } from "node:crypto"
import { NodeRuntime } from "@effect/platform-node"
import { Effect, Either } from "effect"
import { HeaderParsers, type Headers, Server, type WebSocket } from "../src/index.js"

const REALM = "effect-websockets example"

/** A real application checks a password hash in a database. */
const USERS: ReadonlyMap<string, string> = new Map([["alice", "s3cret"]])

/** Compares in constant time, so that response times do not leak the password. */
const sameSecret = (a: string, b: string): boolean => {
  const x = Buffer.from(a)
  const y = Buffer.from(b)
  return x.byteLength === y.byteLength && timingSafeEqual(x, y)
}

/** The authenticated user, or `undefined` (missing, malformed or wrong credentials). */
const authenticate = (headers: Headers.Headers): string | undefined => {
  const header = headers.get("Authorization")
  if (Either.isLeft(header) || header.right === undefined) return undefined
  const credentials = HeaderParsers.parseAuthorizationBasic(header.right)
  if (Either.isLeft(credentials)) return undefined
  const [username, password] = credentials.right
  const expected = USERS.get(username)
  return expected !== undefined && sameSecret(password, expected) ? username : undefined
}

const unauthorized: Server.HttpResponse = {
  status: 401,
  headers: { "WWW-Authenticate": HeaderParsers.buildWwwAuthenticateBasic(REALM), "Content-Type": "text/plain" },
  body: "Missing or invalid credentials.\n"
}

/** Runs before the handshake: a returned response is sent instead of the 101 Switching Protocols. */
const processRequest = (_path: string, headers: Headers.Headers) =>
  Effect.succeed(authenticate(headers) === undefined ? unauthorized : undefined)

const greet = (ws: WebSocket.WebSocket) =>
  Effect.gen(function* () {
    // processRequest let this request through, so its credentials are valid.
    const user = authenticate(ws.requestHeaders) ?? "unknown"
    yield* ws.send(`Hello ${user}!`)
    yield* ws.waitClosed
  })

const program = Effect.gen(function* () {
  const server = yield* Server.serve(greet, { host: "127.0.0.1", port: 8765, processRequest })
  yield* Effect.log("Authenticating server on ws://127.0.0.1:8765/")
  yield* server.waitClosed
})

NodeRuntime.runMain(Effect.scoped(program))
