/**
 * Errors: the family brands mirror the seeds' `websockets.exceptions` hierarchy.
 */
import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Errors from "../src/Errors.js"

describe("Errors", () => {
  it("seed: InvalidOrigin and InvalidUpgrade are direct InvalidHeader subclasses, not InvalidHeaderValue", () => {
    const origin = new Errors.InvalidOrigin({ origin: "https://evil.example" })
    const upgrade = new Errors.InvalidUpgrade({ name: "Upgrade", value: "h2c" })
    for (const e of [origin, upgrade]) {
      expect(Errors.isInvalidHeader(e)).toBe(true)
      expect(Errors.isInvalidHandshake(e)).toBe(true)
      expect(Errors.isWebSocketException(e)).toBe(true)
      expect(Errors.isInvalidHeaderValue(e)).toBe(false)
    }
    expect(
      Errors.isInvalidHeaderValue(new Errors.InvalidHeaderValue({ name: "Sec-WebSocket-Version", value: "8" }))
    ).toBe(true)
    expect(
      Errors.isInvalidHeaderValue(new Errors.InvalidHeaderFormat({ name: "X", error: "e", header: "", pos: 0 }))
    ).toBe(false)
  })

  it.effect("seed: InvalidOrigin is caught by the InvalidHeader family and keeps its own tag", () =>
    Effect.gen(function* () {
      const tag = yield* Effect.fail(new Errors.InvalidOrigin({})).pipe(
        Effect.catchIf(Errors.isInvalidHeader, (e) => Effect.succeed(e._tag))
      )
      expect(tag).toBe("InvalidOrigin")
    })
  )

  it("seed: WebSocketProtocolError is an alias of ProtocolError", () => {
    const e = new Errors.WebSocketProtocolError({ detail: "bad frame" })
    expect(e).toBeInstanceOf(Errors.ProtocolError)
    expect(e._tag).toBe("ProtocolError")
    expect(Errors.WebSocketProtocolError).toBe(Errors.ProtocolError)
    const typed: Errors.WebSocketProtocolError = new Errors.ProtocolError({ detail: "x" })
    expect(typed.message).toBe("x")
  })
})
