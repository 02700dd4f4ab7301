/**
 * Endpoints mounted in a `node:http` server: several endpoints routed by path beside the server's
 * ordinary request handler, unknown paths, requests that cannot be handshakes, and the request Node
 * parsed reused as is (no second parse).
 */
import { describe, expect, it } from "@effect/vitest"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Stream from "effect/Stream"
import * as Client from "../src/Client.js"
import * as NodeMount from "../src/NodeMount.js"
import { httpPort, nodeHttpServer } from "./fixtures/frontDoors.js"
import { bounded, echo, LOCALHOST, rawConnect } from "./fixtures/loopback.js"

const NO_COMPRESSION: Client.ConnectOptions = { compression: null }

describe("NodeMount", () => {
  it.scopedLive("several endpoints by path beside ordinary HTTP routes on one node:http server", () =>
    Effect.gen(function* () {
      const http = yield* nodeHttpServer()
      const echoes = yield* NodeMount.make(echo)
      const shouts = yield* NodeMount.make((ws) =>
        Stream.runForEach(ws.messages, (message) => ws.send(String(message).toUpperCase()))
      )
      http.on("upgrade", NodeMount.byPath({ "/echo": echoes, "/shout": shouts }))
      const port = httpPort(http)
      const health = yield* Effect.promise(() => fetch(`http://${LOCALHOST}:${port}/health`))
      expect(health.status).toBe(200)
      expect(yield* Effect.promise(() => health.text())).toBe("ok")
      const a = yield* Client.connect(`ws://${LOCALHOST}:${port}/echo?x=1`, NO_COMPRESSION)
      const b = yield* Client.connect(`ws://${LOCALHOST}:${port}/shout`, NO_COMPRESSION)
      yield* a.send("hello")
      yield* b.send("hello")
      expect(yield* a.recv).toBe("hello")
      expect(yield* b.recv).toBe("HELLO")
      expect(a.path).toBe("/echo?x=1")
      expect([...echoes.connections].map((ws) => ws.path)).toEqual(["/echo?x=1"])
      expect(shouts.connections.size).toBe(1)
      const unknown = yield* Effect.flip(Client.connect(`ws://${LOCALHOST}:${port}/nowhere`, NO_COMPRESSION))
      expect(unknown).toMatchObject({ _tag: "InvalidStatusCode", statusCode: 404 })
    }).pipe(bounded(8000))
  )

  it.scopedLive("an upgrade request that is not a GET is answered 405 with Allow: GET and closed", () =>
    Effect.gen(function* () {
      const http = yield* nodeHttpServer()
      const endpoint = yield* NodeMount.make(echo)
      http.on("upgrade", endpoint.handleUpgrade)
      const peer = yield* rawConnect(httpPort(http))
      yield* peer.write(
        "POST /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
          "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nContent-Length: 0\r\n\r\n"
      )
      yield* Deferred.await(peer.ended)
      expect(peer.received.toString("latin1")).toMatch(/^HTTP\/1\.1 405 Method Not Allowed\r\n/)
      expect(peer.received.toString("latin1")).toMatch(/\r\nAllow: GET\r\n/)
      expect(endpoint.connections.size).toBe(0)
    }).pipe(bounded(8000))
  )

  it.scopedLive("handshake errors are answered by the accept path over the HTTP server's socket", () =>
    Effect.gen(function* () {
      const http = yield* nodeHttpServer()
      const endpoint = yield* NodeMount.make(echo, { origins: ["https://good.example"] })
      http.on("upgrade", endpoint.handleUpgrade)
      const port = httpPort(http)
      const forbidden = yield* Effect.flip(
        Client.connect(`ws://${LOCALHOST}:${port}/ws`, { ...NO_COMPRESSION, origin: "https://evil.example" })
      )
      expect(forbidden).toMatchObject({ _tag: "InvalidStatusCode", statusCode: 403 })
      const ws = yield* Client.connect(`ws://${LOCALHOST}:${port}/ws`, {
        ...NO_COMPRESSION,
        origin: "https://good.example"
      })
      yield* ws.send("ok")
      expect(yield* ws.recv).toBe("ok")
    }).pipe(bounded(8000))
  )
})
