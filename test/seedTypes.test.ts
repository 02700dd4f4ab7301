/**
 * The seeds' `websockets.typing`: `Origin` and `Subprotocol` are types distinct from `str`, here
 * branded strings with checking constructors; plain strings stay accepted as inputs.
 */
import { describe, expect, it } from "@effect/vitest"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import { expectTypeOf } from "vitest"
import * as Client from "../src/Client.js"
import * as Server from "../src/Server.js"
import { Origin, Subprotocol, type WebSocket } from "../src/WebSocket.js"
import { bounded, uriOf } from "./fixtures/loopback.js"

describe("seed: typing.Origin and typing.Subprotocol", () => {
  it("seed: Subprotocol is a distinct type: a branded string whose constructor checks a token", () => {
    const chat: Subprotocol = Subprotocol("chat")
    expect(chat).toBe("chat")
    expect(Subprotocol("v2.json+stream")).toBe("v2.json+stream")
    expect(() => Subprotocol("two words")).toThrow()
    const refused = Subprotocol.either("two words")
    expect(Either.isLeft(refused) && refused.left[0]?.message).toBe('invalid subprotocol: "two words"')
    expect(Either.isLeft(Subprotocol.either(""))).toBe(true)
    expect(Subprotocol.is("chat, superchat")).toBe(false)
    expectTypeOf<Subprotocol>().toMatchTypeOf<string>()
    expectTypeOf<string>().not.toMatchTypeOf<Subprotocol>()
    expectTypeOf<WebSocket["subprotocol"]>().toEqualTypeOf<Subprotocol | undefined>()
  })

  it("seed: Origin is a distinct type: a branded string whose constructor checks an origin", () => {
    expect(Origin("https://example.com")).toBe("https://example.com")
    expect(Origin("http://[::1]:8080")).toBe("http://[::1]:8080")
    expect(Origin("null")).toBe("null")
    for (const bad of ["example.com", "https://example.com/path", "", "https:// example.com"]) {
      expect(Either.isLeft(Origin.either(bad))).toBe(true)
    }
    expectTypeOf<Origin>().toMatchTypeOf<string>()
    expectTypeOf<string>().not.toMatchTypeOf<Origin>()
  })

  it.scopedLive(
    "seed: connect(origin: Origin, subprotocols: Sequence[Subprotocol]) and the negotiated subprotocol",
    () =>
      Effect.gen(function* () {
        const seen = yield* Deferred.make<Subprotocol | undefined>()
        // Plain strings as inputs on the server, branded values on the client: both compile.
        const server = yield* Server.serve(
          (ws) => Effect.zipRight(Deferred.succeed(seen, ws.subprotocol), ws.waitClosed),
          {
            host: "127.0.0.1",
            port: 0,
            origins: ["https://example.com"],
            subprotocols: ["superchat", "chat"]
          }
        )
        const ws = yield* Client.connect(uriOf(server), {
          origin: Origin("https://example.com"),
          subprotocols: [Subprotocol("chat")]
        })
        const negotiated: Subprotocol | undefined = ws.subprotocol
        expect(negotiated).toBe("chat")
        expect(yield* Deferred.await(seen)).toBe("chat")
        const refused = yield* Effect.flip(Client.connect(uriOf(server), { origin: "https://evil.example" }))
        expect(refused).toMatchObject({ _tag: "InvalidStatusCode", statusCode: 403 })
      }).pipe(bounded())
  )
})
