import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Auth from "../src/Auth.js"
import * as Client from "../src/Client.js"
import { Headers } from "../src/Headers.js"
import * as Server from "../src/Server.js"
import type { WebSocket } from "../src/WebSocket.js"

const portOf = (server: Server.WebSocketServer) => (server.address._tag === "TcpAddress" ? server.address.port : 0)

/**
 * A server that greets the authenticated user, protected by `processRequest`: the handler gets the
 * username from the hook, and `Auth.username` must agree.
 */
const serveGreeter = (processRequest: Server.ProcessRequest<never, string>) =>
  Server.serve(
    (ws: WebSocket, user: string) =>
      Effect.zipRight(ws.send(user === Auth.username(ws) ? `hello ${user}` : "mismatch"), ws.waitClosed),
    {
      host: "127.0.0.1",
      port: 0,
      processRequest
    }
  )

const bodyText = (error: unknown) =>
  new TextDecoder().decode((error as { body?: Uint8Array }).body ?? new Uint8Array(0))

describe("basicAuth", () => {
  it.scopedLive("lets valid credentials through and the handler sees the username", () =>
    Effect.gen(function* () {
      const server = yield* serveGreeter(Auth.basicAuth({ realm: "test", credentials: ["hello", "iloveyou"] }))
      const ws = yield* Client.connect(`ws://hello:iloveyou@127.0.0.1:${portOf(server)}/`)
      expect(yield* ws.recv).toBe("hello hello")
    }).pipe(Effect.timeout("5 seconds"))
  )

  it.scopedLive("answers 401 with a Basic challenge: missing, invalid and unsupported credentials", () =>
    Effect.gen(function* () {
      const server = yield* serveGreeter(
        Auth.basicAuth({
          realm: "my dev server",
          credentials: [
            ["alice", "s3cret"],
            ["bob", "hunter2"]
          ]
        })
      )
      const uri = (userInfo: string) => `ws://${userInfo}127.0.0.1:${portOf(server)}/`
      const missing = yield* Effect.flip(Client.connect(uri("")))
      expect(missing._tag).toBe("InvalidStatusCode")
      expect(missing).toMatchObject({ statusCode: 401 })
      const headers = new Headers((missing as { headers?: ReadonlyArray<readonly [string, string]> }).headers ?? [])
      expect(headers.getFirst("WWW-Authenticate")).toBe('Basic realm="my dev server", charset="UTF-8"')
      expect(bodyText(missing)).toBe("Missing credentials.\n")
      const wrong = yield* Effect.flip(Client.connect(uri("alice:hunter2@")))
      expect(bodyText(wrong)).toBe("Invalid credentials.\n")
      const unsupported = yield* Effect.flip(
        Client.connect(uri(""), { extraHeaders: [["Authorization", "Bearer abc"]] })
      )
      expect(bodyText(unsupported)).toBe("Unsupported credentials.\n")
      const bob = yield* Client.connect(uri("bob:hunter2@"))
      expect(yield* bob.recv).toBe("hello bob")
    }).pipe(Effect.timeout("5 seconds"))
  )

  it.scopedLive("checkCredentials decides, and next runs after successful authentication", () =>
    Effect.gen(function* () {
      const checked: Array<string> = []
      const server = yield* serveGreeter(
        Auth.basicAuth({
          realm: "test",
          checkCredentials: (user, password) =>
            Effect.sync(() => {
              checked.push(user)
              return password === `${user}!`
            }),
          next: ({ path }) => Effect.succeed(path === "/health" ? { status: 200, body: "OK\n" } : undefined)
        })
      )
      const ws = yield* Client.connect(`ws://carol:carol!@127.0.0.1:${portOf(server)}/`)
      expect(yield* ws.recv).toBe("hello carol")
      const health = yield* Effect.flip(Client.connect(`ws://carol:carol!@127.0.0.1:${portOf(server)}/health`))
      expect(health).toMatchObject({ _tag: "InvalidStatusCode", statusCode: 200 })
      const denied = yield* Effect.flip(Client.connect(`ws://dave:nope@127.0.0.1:${portOf(server)}/`))
      expect(denied).toMatchObject({ statusCode: 401 })
      expect(checked).toEqual(["carol", "carol", "dave"])
    }).pipe(Effect.timeout("5 seconds"))
  )
})

describe("credentialsOf", () => {
  it("parses one Basic Authorization header and refuses several", () => {
    const one = new Headers([["Authorization", `Basic ${Buffer.from("u:p:w").toString("base64")}`]])
    expect(Auth.credentialsOf(one)).toEqual(Either.right(["u", "p:w"]))
    const two = new Headers([
      ["Authorization", "Basic dTpw"],
      ["Authorization", "Basic dTpw"]
    ])
    expect(Auth.credentialsOf(two)).toEqual(Either.left("Unsupported credentials"))
    expect(Auth.credentialsOf(new Headers())).toEqual(Either.left("Missing credentials"))
  })
})
