/**
 * The accept path behind each front door (`Server.serve`'s listener, a node:http mount, an
 * HttpRouter route): the request hook rejecting, answering and passing a value to the handler,
 * broadcast from a handler through CurrentServer, compression with a `ws` client, and shutdown with
 * connections open. The same tests for the three: one accept path underneath.
 */
import { describe, expect, it } from "@effect/vitest"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import WebSocketClient from "ws"
import * as Client from "../src/Client.js"
import * as Server from "../src/Server.js"
import type { WebSocket } from "../src/WebSocket.js"
import { FRONT_DOORS, serveBehind } from "./fixtures/frontDoors.js"
import { bounded, echo, portOf, rawConnect, uriOf } from "./fixtures/loopback.js"

const NO_COMPRESSION: Client.ConnectOptions = { compression: null }

/** A `ws` client's connection: resolves once open, with the negotiated extensions. */
const wsClient = (url: string, options: WebSocketClient.ClientOptions = {}) =>
  Effect.acquireRelease(
    Effect.async<WebSocketClient, Error>((resume) => {
      const client = new WebSocketClient(url, options)
      client.once("open", () => resume(Effect.succeed(client)))
      client.once("error", (error) => resume(Effect.fail(error)))
    }),
    (client) => Effect.sync(() => client.terminate())
  )

const nextMessage = (client: WebSocketClient) =>
  Effect.async<{ data: Buffer; isBinary: boolean }>((resume) => {
    client.once("message", (data, isBinary) => resume(Effect.succeed({ data: data as Buffer, isBinary })))
  })

/** The close code the client will observe; listens from now on. */
const closeOf = (client: WebSocketClient) =>
  Effect.map(Deferred.make<number>(), (closed) => {
    client.once("close", (code) => Deferred.unsafeDone(closed, Exit.succeed(code)))
    return Deferred.await(closed)
  })

for (const door of FRONT_DOORS) {
  const serve = serveBehind(door)

  describe(`front door ${door}`, () => {
    it.scopedLive("Server.onMessage serves per message behind it, with the value processRequest continued with", () =>
      Effect.gen(function* () {
        const server = yield* serve(
          Server.onMessage((message, ws, prefix: string) => ws.send(`${prefix}${message}`)),
          { processRequest: () => Effect.succeed(Server.proceed("echo: ")) }
        )
        const ws = yield* Client.connect(uriOf(server, "/ws/echo"), NO_COMPRESSION)
        for (const message of ["a", "b", "c"]) yield* ws.send(message)
        expect([yield* ws.recv, yield* ws.recv, yield* ws.recv]).toEqual(["echo: a", "echo: b", "echo: c"])
        yield* ws.close()
        expect(ws.closeCode).toBe(1000)
      }).pipe(bounded(8000))
    )

    it.scopedLive("processRequest continues with a value: the handler receives it, with the request", () =>
      Effect.gen(function* () {
        const seen: Array<Server.HandshakeRequest> = []
        const server = yield* serve((ws: WebSocket, user: { readonly name: string }) => ws.send(`hi ${user.name}`), {
          processRequest: (request) =>
            Effect.sync(() => {
              seen.push(request)
              return Server.proceed({ name: new URL(request.path, "ws://x").searchParams.get("name") ?? "?" })
            })
        })
        const ws = yield* Client.connect(uriOf(server, "/ws/room?name=ada"), NO_COMPRESSION)
        expect(yield* ws.recv).toBe("hi ada")
        expect(seen).toHaveLength(1)
        expect(seen[0]).toMatchObject({ method: "GET", path: "/ws/room?name=ada" })
        expect(seen[0]!.headers.getAll("Upgrade")).toEqual(["websocket"])
        // The client's own address, as the socket sees it.
        expect(seen[0]!.remoteAddress).toMatchObject({
          _tag: "TcpAddress",
          port: ws.localAddress?._tag === "TcpAddress" ? ws.localAddress.port : -1
        })
      }).pipe(bounded(8000))
    )

    it.scopedLive("processRequest answers with an HTTP response or rejects; the handler never runs", () =>
      Effect.gen(function* () {
        let handled = 0
        const server = yield* serve(
          (ws) =>
            Effect.sync(() => {
              handled++
            }).pipe(Effect.zipRight(ws.waitClosed)),
          {
            processRequest: ({ headers, path }) =>
              Effect.succeed(
                path.endsWith("/status")
                  ? { status: 200, headers: { "Content-Type": "text/plain" }, body: "fine" }
                  : headers.getAll("Authorization")[0] === "Bearer good"
                    ? undefined
                    : { status: 401, headers: { "WWW-Authenticate": "Bearer" }, body: "denied\n" }
              )
          }
        )
        const denied = yield* Effect.flip(Client.connect(uriOf(server, "/ws"), NO_COMPRESSION))
        expect(denied).toMatchObject({ _tag: "InvalidStatusCode", statusCode: 401 })
        const peer = yield* rawConnect(portOf(server))
        yield* peer.write(
          "GET /ws/status HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
            "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        )
        yield* Deferred.await(peer.ended)
        const text = peer.received.toString("latin1")
        expect(text).toMatch(/^HTTP\/1\.1 200 OK\r\n/)
        expect(text.endsWith("\r\n\r\nfine")).toBe(true)
        const ws = yield* Client.connect(uriOf(server, "/ws"), {
          ...NO_COMPRESSION,
          extraHeaders: { Authorization: "Bearer good" }
        })
        expect(ws.state).toBe(1)
        expect(handled).toBe(1)
      }).pipe(bounded(8000))
    )

    it.scopedLive("a handler broadcasts to the other connections of its server (CurrentServer)", () =>
      Effect.gen(function* () {
        const relay = (ws: WebSocket) =>
          Effect.flatMap(Server.CurrentServer, (server) =>
            Stream.runForEach(ws.messages, (message) =>
              server.broadcast(
                message,
                [...server.connections].filter((other) => other !== ws)
              )
            )
          )
        const server = yield* serve(relay)
        const a = yield* Client.connect(uriOf(server, "/ws"), NO_COMPRESSION)
        const b = yield* Client.connect(uriOf(server, "/ws"), NO_COMPRESSION)
        const c = yield* Client.connect(uriOf(server, "/ws"), NO_COMPRESSION)
        // Wait until the server counts all three (the handshake completes before the handler runs).
        yield* Effect.repeat(
          Effect.sync(() => server.connections.size),
          { until: (n) => n === 3 }
        )
        yield* a.send("from a")
        expect(yield* b.recv).toBe("from a")
        expect(yield* c.recv).toBe("from a")
        yield* c.send("from c")
        expect(yield* a.recv).toBe("from c")
        expect(yield* b.recv).toBe("from c")
      }).pipe(bounded(8000))
    )

    for (const compression of ["deflate", null] as const) {
      it.scopedLive(`a ws client echoes text and binary, compression ${compression ?? "off"}`, () =>
        Effect.gen(function* () {
          const server = yield* serve(echo, { compression, maxSize: 4 << 20 })
          const client = yield* wsClient(uriOf(server, "/ws"), { perMessageDeflate: true, maxPayload: 4 << 20 })
          expect(client.extensions).toBe(compression === null ? "" : "permessage-deflate")
          const big = "é".repeat(1 << 20)
          client.send(big)
          const text = yield* nextMessage(client)
          expect(text.isBinary).toBe(false)
          expect(text.data.toString("utf8")).toBe(big)
          client.send(Buffer.from([0, 1, 2, 255]))
          const binary = yield* nextMessage(client)
          expect(binary.isBinary).toBe(true)
          expect([...binary.data]).toEqual([0, 1, 2, 255])
        }).pipe(bounded(8000))
      )
    }

    it.scopedLive("shutdown closes open connections with 1001 and waits for their handlers", () =>
      Effect.gen(function* () {
        const scope = yield* Scope.make()
        const handlerDone = yield* Deferred.make<void>()
        const server = yield* serve((ws) =>
          ws.waitClosed.pipe(Effect.ensuring(Deferred.succeed(handlerDone, undefined)))
        ).pipe(Scope.extend(scope))
        const client = yield* wsClient(uriOf(server, "/ws"))
        const ours = yield* Client.connect(uriOf(server, "/ws"), NO_COMPRESSION)
        yield* Effect.repeat(
          Effect.sync(() => server.connections.size),
          { until: (n) => n === 2 }
        )
        const closing = yield* closeOf(client)
        yield* server.close
        expect(yield* closing).toBe(1001)
        yield* ours.waitClosed
        expect(ours.closeCode).toBe(1001)
        yield* Deferred.await(handlerDone)
        yield* server.waitClosed
        expect(server.connections.size).toBe(0)
        yield* Scope.close(scope, Exit.void)
      }).pipe(bounded(8000))
    )
  })
}
