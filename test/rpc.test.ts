/**
 * `@effect/rpc` over this library's platform layers: `RpcServer.layerProtocolSocketServer` on
 * `SocketAdapter.layerSocketServer` (standalone) and on a SocketServer mounted in a node:http server,
 * `RpcClient.layerProtocolSocket` on `SocketAdapter.layerWebSocket`; the server restarts in the
 * middle and the client's calls succeed again without user code (no new client, no new layer).
 */
import * as http from "node:http"
import * as SocketServer from "@effect/platform/SocketServer"
import * as Rpc from "@effect/rpc/Rpc"
import * as RpcClient from "@effect/rpc/RpcClient"
import * as RpcGroup from "@effect/rpc/RpcGroup"
import * as RpcSerialization from "@effect/rpc/RpcSerialization"
import * as RpcServer from "@effect/rpc/RpcServer"
import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Schedule from "effect/Schedule"
import * as Schema from "effect/Schema"
import * as Scope from "effect/Scope"
import * as NodeMount from "../src/NodeMount.js"
import * as SocketAdapter from "../src/SocketAdapter.js"
import { bounded, LOCALHOST } from "./fixtures/loopback.js"

class Api extends RpcGroup.make(
  Rpc.make("Greet", { payload: { name: Schema.String }, success: Schema.String }),
  Rpc.make("Generation", { success: Schema.Number })
) {}

/** A server that starts and stops: `generation` tells the client which incarnation answered. */
const handlers = (generation: number) =>
  Api.toLayer({
    Greet: ({ name }) => Effect.succeed(`hello ${name}`),
    Generation: () => Effect.succeed(generation)
  })

type Door = "standalone" | "node:http"

/** A SocketServer mounted at /rpc in a node:http server listening on `port`. */
const mountedSocketServer = (port: number) =>
  Layer.scoped(
    SocketServer.SocketServer,
    Effect.gen(function* () {
      const bridge = yield* SocketAdapter.makeSocketServerHandler()
      const server = yield* Effect.acquireRelease(
        Effect.async<http.Server, SocketServer.SocketServerError>((resume) => {
          const server = http.createServer((_, response) => response.writeHead(404).end())
          server.once("error", (cause) =>
            resume(Effect.fail(new SocketServer.SocketServerError({ reason: "Open", cause })))
          )
          server.listen(port, LOCALHOST, () => resume(Effect.succeed(server)))
        }),
        (server) =>
          Effect.async<void>((resume) => {
            server.close(() => resume(Effect.void))
            server.closeAllConnections()
          })
      )
      const endpoint = yield* NodeMount.make(bridge.handler)
      server.on("upgrade", NodeMount.byPath({ "/rpc": endpoint }))
      const address = server.address() as { address: string; port: number }
      return SocketServer.SocketServer.of({
        address: { _tag: "TcpAddress", hostname: address.address, port: address.port },
        run: bridge.run
      })
    })
  )

/** The RPC server of one generation, running until `scope` closes; returns its port. */
const startServer = (door: Door, port: number, generation: number, scope: Scope.Scope) =>
  Effect.gen(function* () {
    const socketServer =
      door === "standalone"
        ? SocketAdapter.layerSocketServer({ host: LOCALHOST, port, closeTimeout: "1 second" })
        : mountedSocketServer(port)
    const context = yield* Layer.buildWithScope(
      RpcServer.layer(Api).pipe(
        Layer.provide(handlers(generation)),
        Layer.provide(RpcServer.layerProtocolSocketServer),
        Layer.provideMerge(socketServer),
        Layer.provide(RpcSerialization.layerNdjson)
      ),
      scope
    )
    const address = (context.unsafeMap.get(SocketServer.SocketServer.key) as SocketServer.SocketServer["Type"]).address
    return address._tag === "TcpAddress" ? address.port : 0
  })

for (const door of ["standalone", "node:http"] as const) {
  describe(`@effect/rpc over SocketAdapter layers (${door} server)`, () => {
    it.scopedLive(
      "calls succeed, survive a server restart in the middle, and reach the new server",
      () =>
        Effect.gen(function* () {
          const first = yield* Scope.make()
          const port = yield* startServer(door, 0, 1, first)
          const path = door === "standalone" ? "/" : "/rpc"
          // The protocol lives in the test's scope (`Effect.provide(layer)` would close it at once).
          const protocol = yield* Layer.build(
            RpcClient.layerProtocolSocket({ retryTransientErrors: true }).pipe(
              Layer.provide(
                SocketAdapter.layerWebSocket(`ws://${LOCALHOST}:${port}${path}`, { openTimeout: "2 seconds" })
              ),
              Layer.provide(RpcSerialization.layerNdjson)
            )
          )
          const client = yield* RpcClient.make(Api).pipe(Effect.provide(protocol))
          expect(yield* client.Greet({ name: "ada" })).toBe("hello ada")
          expect(yield* client.Generation()).toBe(1)

          // The server goes away and comes back on the same port. As over the platform's own layer,
          // RpcClient fails the calls made while the connection is down ("Error in socket"); the
          // socket reconnects by itself, and calls succeed again, reaching the new server.
          yield* Scope.close(first, Exit.void)
          const second = yield* Scope.make()
          yield* startServer(door, port, 2, second)
          const restarted = Date.now()
          const generation = yield* client.Generation().pipe(
            Effect.retry({
              schedule: Schedule.spaced("50 millis"),
              while: (error) => error._tag === "RpcClientError"
            })
          )
          expect(generation).toBe(2)
          // Reconnection takes the RpcClient's retry delay (its default schedule starts at 500 ms).
          expect(Date.now() - restarted).toBeLessThan(10_000)
          for (let i = 0; i < 20; i++) expect(yield* client.Greet({ name: `n${i}` })).toBe(`hello n${i}`)
          yield* Scope.close(second, Exit.void)
        }).pipe(bounded(30_000)),
      40_000
    )
  })
}
