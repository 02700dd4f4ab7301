/**
 * The Effect 4 shell as test/healthChecks.test.ts checks the Effect 3 one: plain HTTP requests of
 * any method reach `processRequest`, so that a health check by HEAD or POST can be answered; a
 * request of another method than GET that the hook lets through gets 405 with `Allow: GET`; an
 * answered request is logged as answered, not as a rejected connection.
 */
import * as http from "node:http"
import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Client from "../src/Client.js"
import * as NodeMount from "../src/NodeMount.js"
import type { HandshakeRequest } from "../src/Server.js"
import { echo, exchange, LOCALHOST, portOf, recordingLogger, serveLocal, uriOf } from "./fixtures/loopback.js"

const health = (request: HandshakeRequest) =>
  Effect.succeed(request.path === "/health" ? { status: 200, body: "ok" } : undefined)

describe("Effect 4 shell: health checks by any method", () => {
  for (const method of ["GET", "HEAD", "POST"]) {
    it.live(`${method} /health is answered 200 by processRequest`, () =>
      Effect.gen(function* () {
        const seen: Array<string> = []
        const server = yield* serveLocal(echo, {
          processRequest: (request) => {
            seen.push(request.method)
            return health(request)
          }
        })
        const body = method === "POST" ? "Content-Length: 4\r\n\r\nping" : "\r\n"
        const response = yield* exchange(portOf(server), `${method} /health HTTP/1.1\r\nHost: x\r\n${body}`)
        expect(response.split("\r\n")[0]).toBe("HTTP/1.1 200 OK")
        expect(response).toContain("\r\nContent-Length: 2\r\n")
        // A response to HEAD has no body (RFC 9110 §9.3.2).
        expect(response.endsWith("\r\n\r\n")).toBe(method === "HEAD")
        if (method !== "HEAD") expect(response.endsWith("\r\n\r\nok")).toBe(true)
        expect(seen).toEqual([method])
      })
    )
  }

  for (const method of ["POST", "HEAD", "PUT"]) {
    it.live(`an upgrade attempt by ${method} that the hook lets through gets 405 with Allow: GET`, () =>
      Effect.gen(function* () {
        const server = yield* serveLocal(echo, { processRequest: health })
        const response = yield* exchange(
          portOf(server),
          `${method} /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
            "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        )
        expect(response.split("\r\n")[0]).toBe("HTTP/1.1 405 Method Not Allowed")
        expect(response).toContain("\r\nAllow: GET\r\n")
        const text = `Failed to open a WebSocket connection: unsupported HTTP method; expected GET; got ${method}.\n`
        expect(response.endsWith(method === "HEAD" ? "\r\n\r\n" : `\r\n\r\n${text}`)).toBe(true)
      })
    )
  }

  it.live("without processRequest, a POST gets 405 with Allow: GET", () =>
    Effect.gen(function* () {
      const server = yield* serveLocal(echo)
      const response = yield* exchange(portOf(server), "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n")
      expect(response.split("\r\n")[0]).toBe("HTTP/1.1 405 Method Not Allowed")
      expect(response).toContain("\r\nAllow: GET\r\n")
      // GET still opens a connection.
      const ws = yield* Client.connect(uriOf(server), { compression: null })
      yield* ws.send("still works")
      expect(yield* ws.recv).toBe("still works")
    })
  )

  it.live("a request answered 200 is logged as answered; a 405 as a rejected connection", () =>
    Effect.gen(function* () {
      const { entries, layer } = recordingLogger()
      const server = yield* serveLocal(echo, { processRequest: health, connectionLogLevel: "Info" }).pipe(
        Effect.provide(layer)
      )
      yield* exchange(portOf(server), "HEAD /health HTTP/1.1\r\nHost: x\r\n\r\n")
      yield* exchange(portOf(server), "POST /ws HTTP/1.1\r\nHost: x\r\n\r\n")
      const messages = entries.map((entry) => `${entry.level} ${String(entry.message)}`)
      expect(messages).toContain("INFO HTTP request answered (HEAD 200 OK)")
      expect(messages).toContain("INFO connection rejected (405 Method Not Allowed)")
      expect(messages.filter((message) => message.includes("200 OK"))).toEqual([
        "INFO HTTP request answered (HEAD 200 OK)"
      ])
    })
  )

  it.live("through NodeMount, an upgrade request that is not a GET is answered 405 with Allow: GET", () =>
    Effect.gen(function* () {
      const httpServer = http.createServer((_, response) => response.end("plain http"))
      yield* Effect.acquireRelease(
        Effect.callback<void>((resume) => {
          httpServer.listen(0, LOCALHOST, () => resume(Effect.void))
        }),
        () => Effect.sync(() => httpServer.close())
      )
      const mount = yield* NodeMount.make(echo)
      httpServer.on("upgrade", mount.handleUpgrade)
      const port = (httpServer.address() as { port: number }).port
      const response = yield* exchange(
        port,
        "POST /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
          "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nContent-Length: 0\r\n\r\n"
      )
      expect(response).toMatch(/^HTTP\/1\.1 405 Method Not Allowed\r\n/)
      expect(response).toMatch(/\r\nAllow: GET\r\n/)
    })
  )
})
