/**
 * A client whose handshake the server answers with an HTTP error instead of 101: it fails with
 * `InvalidStatusCode` carrying the status, the headers and the (bounded) body, whatever framing the
 * body has, including the chunked body that Node's http and @effect/platform's router send for a
 * path they do not serve.
 */
import * as http from "node:http"
import * as HttpRouter from "@effect/platform/HttpRouter"
import * as HttpServer from "@effect/platform/HttpServer"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import * as NodeHttpServer from "@effect/platform-node/NodeHttpServer"
import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Client from "../src/Client.js"
import type { InvalidStatusCode } from "../src/Errors.js"
import { bounded, LOCALHOST, rawServer } from "./fixtures/loopback.js"

const headerOf = (error: InvalidStatusCode, name: string): string | undefined =>
  error.headers?.find(([key]) => key.toLowerCase() === name)?.[1]

const rejectedBy = (uri: string) =>
  Effect.gen(function* () {
    const error = yield* Effect.flip(Effect.scoped(Client.connect(uri, { openTimeout: 5000 })))
    expect(error._tag).toBe("InvalidStatusCode")
    return error as InvalidStatusCode
  })

describe("client rejected over HTTP", () => {
  it.scopedLive("an HttpRouter app answers a path it does not serve with a chunked 404: InvalidStatusCode 404", () =>
    Effect.gen(function* () {
      const context = yield* Layer.build(NodeHttpServer.layer(http.createServer, { host: LOCALHOST, port: 0 }))
      yield* HttpServer.serveEffect()(
        HttpRouter.empty.pipe(HttpRouter.get("/health", HttpServerResponse.text("ok")))
      ).pipe(Effect.provide(context))
      const address = (yield* Effect.provide(HttpServer.HttpServer, context)).address
      const port = address._tag === "TcpAddress" ? address.port : 0
      const error = yield* rejectedBy(`ws://${LOCALHOST}:${port}/nowhere`)
      expect(error.statusCode).toBe(404)
      expect(error.message).toBe("server rejected WebSocket connection: HTTP 404")
      expect(headerOf(error, "transfer-encoding")).toBe("chunked")
    }).pipe(bounded(8000))
  )

  for (const [name, response, body] of [
    [
      "a chunked body",
      "HTTP/1.1 404 Not Found\r\nTransfer-Encoding: chunked\r\nContent-Type: text/plain\r\n\r\n4\r\nnot \r\n5\r\nfound\r\n0\r\n\r\n",
      "not found"
    ],
    ["a body with Content-Length", "HTTP/1.1 404 Not Found\r\nContent-Length: 9\r\n\r\nnot found", "not found"],
    ["a body up to EOF", "HTTP/1.1 404 Not Found\r\nConnection: close\r\n\r\nnot found", "not found"]
  ] as const) {
    it.scopedLive(`a raw server answers 404 with ${name}: InvalidStatusCode with the status, headers and body`, () =>
      Effect.gen(function* () {
        const raw = yield* rawServer()
        const fiber = yield* Effect.fork(rejectedBy(`ws://${LOCALHOST}:${raw.port}/`))
        const peer = yield* raw.accept
        yield* peer.readHead()
        yield* peer.write(response)
        // A body that runs to EOF ends when the server closes.
        if (!response.includes("Content-Length") && !response.includes("chunked")) peer.socket.end()
        const error = yield* fiber
        expect(error.statusCode).toBe(404)
        expect(Buffer.from(error.body ?? new Uint8Array(0)).toString()).toBe(body)
      }).pipe(bounded())
    )
  }
})
