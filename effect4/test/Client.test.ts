/**
 * The Effect 4 shell's client over real loopback sockets: open timeout, redirects, reconnection with
 * a Schedule, the Client service, and unix sockets.
 */
import * as net from "node:net"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Schedule from "effect/Schedule"
import * as Client from "../src/Client.js"
import * as Server from "../src/Server.js"
import type { WebSocket } from "../src/WebSocket.js"

const LOCALHOST = "127.0.0.1"

const portOf = (server: Server.WebSocketServer): number =>
  server.address._tag === "TcpAddress" ? server.address.port : 0

/** A TCP server that accepts and never answers; closed with the scope. */
const silentServer = Effect.acquireRelease(
  Effect.callback<net.Server>((resume) => {
    const sockets = new Set<net.Socket>()
    const server = net.createServer((socket) => {
      sockets.add(socket)
      socket.on("close", () => sockets.delete(socket))
    })
    server.listen(0, LOCALHOST, () => resume(Effect.succeed(server)))
    ;(server as net.Server & { sockets?: Set<net.Socket> }).sockets = sockets
  }),
  (server) =>
    Effect.sync(() => {
      for (const socket of (server as net.Server & { sockets: Set<net.Socket> }).sockets) socket.destroy()
      server.close()
    })
)

describe("Effect 4 shell: Client", () => {
  it.live("a server that never answers the handshake fails the connection with OpenTimeout", () =>
    Effect.gen(function* () {
      const server = yield* silentServer
      const port = (server.address() as net.AddressInfo).port
      const error = yield* Effect.flip(Client.connect(`ws://${LOCALHOST}:${port}/`, { openTimeout: "200 millis" }))
      expect(error._tag).toBe("OpenTimeout")
    })
  )

  it.live("a redirect is followed to the server that accepts", () =>
    Effect.gen(function* () {
      const target = yield* Server.serve((ws: WebSocket) => Effect.andThen(ws.send(`at ${ws.path}`), ws.waitClosed), {
        host: LOCALHOST,
        port: 0
      })
      const redirecting = yield* Server.serve((ws: WebSocket) => ws.waitClosed, {
        host: LOCALHOST,
        port: 0,
        processRequest: () =>
          Effect.succeed({ status: 302, headers: { Location: `ws://${LOCALHOST}:${portOf(target)}/moved` } })
      })
      const ws = yield* Client.connect(`ws://${LOCALHOST}:${portOf(redirecting)}/old`)
      expect(yield* ws.recv).toBe("at /moved")
    })
  )

  it.live("reconnect runs the handler again after the server closes the connection", () =>
    Effect.gen(function* () {
      let accepted = 0
      const server = yield* Server.serve(
        (ws: WebSocket) =>
          Effect.suspend(() => {
            accepted++
            return ws.send(`connection ${accepted}`)
          }),
        { host: LOCALHOST, port: 0 }
      )
      const received: Array<unknown> = []
      const outcome = yield* Client.reconnect(
        `ws://${LOCALHOST}:${portOf(server)}/`,
        (ws) =>
          Effect.gen(function* () {
            received.push(yield* ws.recv)
            if (received.length === 3) return yield* Effect.fail("enough" as const)
            yield* Effect.flip(Effect.forever(ws.recv))
          }),
        { schedule: Schedule.spaced("10 millis") }
      ).pipe(Effect.flip)
      expect(outcome).toBe("enough")
      expect(received).toEqual(["connection 1", "connection 2", "connection 3"])
    })
  )

  it.live("reconnect uses the Client service when one is provided", () =>
    Effect.gen(function* () {
      const server = yield* Server.serve(
        Server.onMessage((message, ws) => ws.send(message)),
        {
          host: LOCALHOST,
          port: 0
        }
      )
      const uri = `ws://${LOCALHOST}:${portOf(server)}/`
      const outcome = yield* Client.reconnect(uri, (ws) =>
        Effect.andThen(
          ws.send("hi"),
          Effect.flatMap(ws.recv, (reply) => Effect.fail(`${reply} ${ws.requestHeaders.get("x-via")}`))
        )
      ).pipe(Effect.flip, Effect.provide(Client.layer({ extraHeaders: { "X-Via": "service" } })))
      expect(outcome).toBe("hi service")
    })
  )

  it.live("unixConnect and unix serving", () =>
    Effect.gen(function* () {
      const path = join(tmpdir(), `effect-websockets-e4-${process.pid}-${Date.now()}.sock`)
      yield* Server.unixServe(
        Server.onMessage((message, ws) => ws.send(message)),
        path
      )
      const ws = yield* Client.unixConnect(path)
      yield* ws.send("over a unix socket")
      expect(yield* ws.recv).toBe("over a unix socket")
      expect(ws.remoteAddress).toEqual({ _tag: "UnixAddress", path })
    })
  )
})
