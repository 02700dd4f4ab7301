import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Client from "../src/Client.js"
import { echo, serveLocal, uriOf, bounded } from "./fixtures/loopback.js"
import * as Server from "../src/Server.js"

describe("smoke", () => {
  it.scopedLive("echo default compression", () =>
    Effect.gen(function* () {
      const server = yield* Server.serve(echo, { host: "127.0.0.1", port: 0 })
      const ws = yield* Client.connect(uriOf(server))
      yield* ws.send("hello")
      expect(yield* ws.recv).toBe("hello")
      yield* ws.send(new Uint8Array(1 << 20))
      expect((yield* ws.recv as any).byteLength).toBe(1 << 20)
      yield* ws.close()
      const e = yield* Effect.flip(ws.recv)
      expect(e._tag).toBe("ConnectionClosedOK")
    }).pipe(bounded(3000)))
})
