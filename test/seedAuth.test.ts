/**
 * The seeds' `basic_auth_protocol_factory(realm, credentials=None, check_credentials=None)`: exactly
 * one of `credentials` and `check_credentials`, a `TypeError` for credentials of the wrong type, and
 * the authenticated `username` and `realm` on the connection.
 */
import { describe, expect, it } from "@effect/vitest"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Auth from "../src/Auth.js"
import * as Client from "../src/Client.js"
import { InvalidArgument } from "../src/Errors.js"
import * as Server from "../src/Server.js"
import type { WebSocket } from "../src/WebSocket.js"
import { bounded, portOf } from "./fixtures/loopback.js"

describe("seed: basic_auth_protocol_factory", () => {
  it("seed: one of credentials or check_credentials must be provided but not both", () => {
    const check = () => Effect.succeed(true)
    // @ts-expect-error both: the options type is a union that rejects it
    expect(() => Auth.basicAuth({ realm: "r", credentials: ["a", "b"], checkCredentials: check })).toThrow(
      InvalidArgument
    )
    // @ts-expect-error neither
    expect(() => Auth.basicAuth({ realm: "r" })).toThrow("provide either credentials or checkCredentials")
    expect(() => Auth.basicAuth({ realm: "r", credentials: ["a", "b"] })).not.toThrow()
    expect(() => Auth.basicAuth({ realm: "r", checkCredentials: check })).not.toThrow()
  })

  it("seed: raises TypeError (InvalidArgument) if the credentials argument has the wrong type", () => {
    for (const credentials of [["a"], ["a", 1], "a:b", [["a", "b"], ["c"]], 42]) {
      expect(() => Auth.basicAuth({ realm: "r", credentials: credentials as never })).toThrow(InvalidArgument)
    }
    expect(() =>
      Auth.basicAuth({
        realm: "r",
        credentials: [
          ["a", "b"],
          ["c", "d"]
        ]
      })
    ).not.toThrow()
  })

  it.scopedLive("seed: the connection exposes the authenticated username and the realm", () =>
    Effect.gen(function* () {
      const seen = yield* Deferred.make<readonly [string | undefined, string | undefined, string]>()
      const server = yield* Server.serve(
        (ws: WebSocket, user: string) =>
          Effect.zipRight(Deferred.succeed(seen, [ws.username, ws.realm, user]), ws.waitClosed),
        {
          host: "127.0.0.1",
          port: 0,
          processRequest: Auth.basicAuth({ realm: "my dev server", credentials: ["hello", "iloveyou"] })
        }
      )
      const ws = yield* Client.connect(`ws://hello:iloveyou@127.0.0.1:${portOf(server)}/`)
      expect(yield* Deferred.await(seen)).toEqual(["hello", "my dev server", "hello"])
      // The client side was not authenticated by a basicAuth of its own.
      expect([ws.username, ws.realm]).toEqual([undefined, undefined])
    }).pipe(bounded())
  )

  it.scopedLive("seed: without basicAuth, username is unset even when the request carries credentials", () =>
    Effect.gen(function* () {
      const seen = yield* Deferred.make<string | undefined>()
      const server = yield* Server.serve(
        (ws: WebSocket) => Effect.zipRight(Deferred.succeed(seen, ws.username), ws.waitClosed),
        {
          host: "127.0.0.1",
          port: 0
        }
      )
      yield* Client.connect(`ws://hello:iloveyou@127.0.0.1:${portOf(server)}/`)
      expect(yield* Deferred.await(seen)).toBeUndefined()
    }).pipe(bounded())
  )
})
