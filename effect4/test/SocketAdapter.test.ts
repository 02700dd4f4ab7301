/**
 * The Effect 4 shell's adapters to `effect/socket`, over real loopback sockets: a connection as a
 * `Socket.Socket`, our server as a `SocketServer.SocketServer` with a reconnecting client socket,
 * and the client protocol over a TCP `Socket.Socket` from `@effect/platform-node`.
 */
import * as NodeSocket from "@effect/platform-node/NodeSocket"
import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Socket from "effect/socket/Socket"
import * as SocketServer from "effect/socket/SocketServer"
import * as Client from "../src/Client.js"
import * as Server from "../src/Server.js"
import * as SocketAdapter from "../src/SocketAdapter.js"

const LOCALHOST = "127.0.0.1"

/** Echoes every chunk a socket reads until it closes. */
const echoSocket = (socket: Socket.Socket) =>
  Effect.gen(function* () {
    const { pull } = yield* socket.reader
    const { write } = yield* socket.writer
    for (;;) {
      for (const chunk of yield* pull) yield* write(chunk)
    }
  }).pipe(Effect.scoped)

describe("Effect 4 shell: SocketAdapter", () => {
  it.live("toSocket: a connection read and written as a Socket, ending with a SocketCloseError", () =>
    Effect.gen(function* () {
      const server = yield* Server.serve((ws) => echoSocket(SocketAdapter.toSocket(ws)).pipe(Effect.ignore), {
        host: LOCALHOST,
        port: 0
      })
      const port = server.address._tag === "TcpAddress" ? server.address.port : 0
      const ws = yield* Client.connect(`ws://${LOCALHOST}:${port}/`)
      yield* ws.send("text")
      expect(yield* ws.recv).toBe("text")
      yield* ws.send(new Uint8Array([7, 8]))
      expect(yield* ws.recv).toEqual(new Uint8Array([7, 8]))
      const socket = SocketAdapter.toSocket(ws)
      const { write } = yield* socket.writer
      yield* write(new Socket.CloseEvent(4001, "done"))
      const error = yield* Effect.flip(Effect.flatMap(socket.reader, (reader) => reader.pull))
      expect(error.reason._tag).toBe("SocketCloseError")
    })
  )

  it.live("layerSocketServer and layerWebSocket: a SocketServer over our server, a Socket that connects to it", () =>
    Effect.gen(function* () {
      const server = yield* SocketServer.SocketServer
      const runner = yield* Effect.forkChild(server.run(echoSocket))
      const port = server.address._tag === "UnixPathAddress" ? 0 : server.address.port
      const socket = yield* SocketAdapter.makeWebSocket(`ws://${LOCALHOST}:${port}/`)
      const replies = yield* Effect.gen(function* () {
        const { pull } = yield* socket.reader
        const { write } = yield* socket.writer
        yield* write("over the platform socket")
        return yield* pull
      }).pipe(Effect.scoped)
      expect(replies).toEqual(["over the platform socket"])
      yield* Fiber.interrupt(runner)
    }).pipe(Effect.provide(Layer.fresh(SocketAdapter.layerSocketServer({ host: LOCALHOST, port: 0 }))))
  )

  it.live("connectOverSocket: the client protocol over a TCP Socket", () =>
    Effect.gen(function* () {
      const server = yield* Server.serve(
        Server.onMessage((message, ws) => ws.send(message)),
        {
          host: LOCALHOST,
          port: 0
        }
      )
      const port = server.address._tag === "TcpAddress" ? server.address.port : 0
      const socket = yield* NodeSocket.makeNet({ host: LOCALHOST, port })
      const ws = yield* SocketAdapter.connectOverSocket(socket, `ws://${LOCALHOST}:${port}/`)
      yield* ws.send("bridged")
      expect(yield* ws.recv).toBe("bridged")
    })
  )

  it.live("makeWebSocket: a refused connection fails the reader with a SocketOpenError", () =>
    Effect.gen(function* () {
      const socket = yield* SocketAdapter.makeWebSocket("ws://127.0.0.1:1/")
      const error = yield* Effect.flip(Effect.scoped(socket.reader))
      expect(error.reason._tag).toBe("SocketOpenError")
    })
  )
})
