import * as Socket from "@effect/platform/Socket"
import { NodeSocket } from "@effect/platform-node"
import { describe, expect, it } from "@effect/vitest"
import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import * as Stream from "effect/Stream"
import * as Client from "../src/Client.js"
import * as Server from "../src/Server.js"
import { connectOverSocket, toSocket } from "../src/SocketAdapter.js"
import type { WebSocket } from "../src/WebSocket.js"

const echo = (ws: WebSocket) => Stream.runForEach(ws.messages, (message) => ws.send(message))

const serveEcho = Server.serve(echo, { host: "127.0.0.1", port: 0 })
const portOf = (server: Server.WebSocketServer) => (server.address._tag === "TcpAddress" ? server.address.port : 0)

describe("toSocket", () => {
  it.scopedLive("runRaw receives text as strings and binary as bytes; the writer sends both", () =>
    Effect.gen(function* () {
      const server = yield* serveEcho
      const ws = yield* Client.connect(`ws://127.0.0.1:${portOf(server)}/`)
      const socket = toSocket(ws)
      const write = yield* socket.writer
      const received: Array<string | Uint8Array> = []
      const run = yield* Effect.fork(
        socket.runRaw((data) =>
          Effect.sync(() => {
            received.push(data)
          }).pipe(Effect.zipRight(received.length === 1 ? write(new Socket.CloseEvent(1000)) : Effect.void))
        )
      )
      yield* write("hello")
      yield* write(new Uint8Array([1, 2, 3]))
      yield* run.await
      expect(received[0]).toBe("hello")
      expect(received[1]).toEqual(new Uint8Array([1, 2, 3]))
      expect(ws.closeCode).toBe(1000)
    }).pipe(Effect.timeout("5 seconds"))
  )

  it.scopedLive("run ends with a SocketCloseError for an error close code, and Socket.toChannel works", () =>
    Effect.gen(function* () {
      const server = yield* Server.serve((ws) => Effect.zipRight(ws.send("bye"), ws.close(4000, "done")), {
        host: "127.0.0.1",
        port: 0
      })
      const ws = yield* Client.connect(`ws://127.0.0.1:${portOf(server)}/`)
      const chunks = yield* Stream.never.pipe(
        Stream.pipeThroughChannel(Socket.toChannel(toSocket(ws))),
        Stream.runCollect,
        Effect.flip
      )
      expect(chunks._tag).toBe("SocketError")
      expect(chunks).toMatchObject({ reason: "Close", code: 4000, closeReason: "done" })
    }).pipe(Effect.timeout("5 seconds"))
  )

  it.scopedLive("a normal close ends run successfully, with received bytes UTF-8 encoded by run", () =>
    Effect.gen(function* () {
      const server = yield* Server.serve((ws) => Effect.zipRight(ws.send("é"), ws.close(1000)), {
        host: "127.0.0.1",
        port: 0
      })
      const ws = yield* Client.connect(`ws://127.0.0.1:${portOf(server)}/`)
      const received: Array<Uint8Array> = []
      yield* toSocket(ws).run((data) => {
        received.push(data)
      })
      expect(Chunk.fromIterable(received).pipe(Chunk.toReadonlyArray)).toEqual([new Uint8Array([0xc3, 0xa9])])
    }).pipe(Effect.timeout("5 seconds"))
  )
})

describe("connectOverSocket", () => {
  it.scopedLive("runs the client protocol over a platform NodeSocket", () =>
    Effect.gen(function* () {
      const server = yield* serveEcho
      const socket = yield* NodeSocket.makeNet({ host: "127.0.0.1", port: portOf(server) })
      const ws = yield* connectOverSocket(socket, `ws://127.0.0.1:${portOf(server)}/over`)
      expect(ws.path).toBe("/over")
      yield* ws.send("through the platform socket")
      expect(yield* ws.recv).toBe("through the platform socket")
      const big = new Uint8Array(300_000).fill(7)
      yield* ws.send(big)
      const echoed = yield* ws.recv
      expect(echoed instanceof Uint8Array && Buffer.compare(echoed, big) === 0).toBe(true)
      yield* ws.close()
      expect(ws.closeCode).toBe(1000)
    }).pipe(Effect.timeout("5 seconds"))
  )
})
