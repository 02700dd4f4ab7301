/**
 * The Effect 4 shell's modules above Server and Client, over real loopback sockets: TypedMessages
 * (Schema 4), Auth (basic auth in processRequest), Topics (the in-memory backplane), NodeMount (a
 * node:http server's upgrades), Metrics and the options read from Config.
 */
import * as http from "node:http"
import { describe, expect, it } from "@effect/vitest"
import * as ConfigProvider from "effect/ConfigProvider"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Metric from "effect/Metric"
import * as Schema from "effect/Schema"
import * as Auth from "../src/Auth.js"
import * as Client from "../src/Client.js"
import * as Metrics from "../src/Metrics.js"
import * as NodeMount from "../src/NodeMount.js"
import * as Server from "../src/Server.js"
import * as Topics from "../src/Topics.js"
import * as TypedMessages from "../src/TypedMessages.js"
import type { WebSocket } from "../src/WebSocket.js"
import { recvOrDie } from "./fixtures/loopback.js"

const LOCALHOST = "127.0.0.1"

const uriOf = (server: Server.WebSocketServer, path = "/"): string =>
  server.address._tag === "TcpAddress" ? `ws://${LOCALHOST}:${server.address.port}${path}` : "ws://localhost/"

const serveLocal = <E, R, RP = never, A = undefined>(
  handler: Server.Handler<E, R, A>,
  options: Server.ServeOptions<RP, A> = {}
) =>
  // A generic pass-through: the overloads of `serve` pair a handler's value with its hook at the test's call.
  Server.serve(handler as Server.Handler<E, R>, { host: LOCALHOST, port: 0, ...options } as Server.ServeOptions<RP>)

const Move = Schema.Struct({ player: Schema.String, x: Schema.Number })
const move = TypedMessages.json(Move)

describe("Effect 4 shell: TypedMessages", () => {
  it.live("a JSON codec decodes and encodes values with a Schema 4 schema", () =>
    Effect.gen(function* () {
      const server = yield* serveLocal((ws) =>
        TypedMessages.forEach(ws, move, (m) => TypedMessages.send(ws, move, { ...m, x: m.x + 1 }))
      )
      const ws = yield* Client.connect(uriOf(server))
      yield* TypedMessages.send(ws, move, { player: "ada", x: 1 })
      expect(yield* TypedMessages.recv(ws, move)).toEqual({ player: "ada", x: 2 })
    })
  )

  it.live("a message that does not decode fails with MessageDecodeError holding a SchemaError", () =>
    Effect.gen(function* () {
      const server = yield* serveLocal((ws: WebSocket) => Effect.andThen(ws.send('{"player": 1}'), ws.waitClosed))
      const ws = yield* Client.connect(uriOf(server))
      const error = yield* Effect.flip(TypedMessages.recv(ws, move))
      if (error._tag !== "MessageDecodeError") expect.fail(`expected MessageDecodeError, got ${error._tag}`)
      expect(error.reason).toBe("InvalidPayload")
      expect(Schema.isSchemaError(error.cause)).toBe(true)
    })
  )

  it.live("invalid JSON is InvalidPayload, and closeOnDecodeError closes with 1007", () =>
    Effect.gen(function* () {
      const server = yield* serveLocal((ws) =>
        TypedMessages.forEach(ws, move, () => Effect.void).pipe(TypedMessages.closeOnDecodeError(ws))
      )
      const ws = yield* Client.connect(uriOf(server))
      yield* ws.send("{not json")
      const closed = yield* Effect.flip(Effect.forever(recvOrDie(ws)))
      expect(closed.code).toBe(1007)
    })
  )

  it.live("a value the Schema cannot encode fails with MessageEncodeError and sends nothing", () =>
    Effect.gen(function* () {
      const server = yield* serveLocal((ws: WebSocket) => ws.waitClosed)
      const ws = yield* Client.connect(uriOf(server))
      const error = yield* Effect.flip(TypedMessages.send(ws, move, { player: "ada", x: "far" as unknown as number }))
      expect(error._tag).toBe("MessageEncodeError")
    })
  )
})

describe("Effect 4 shell: Auth", () => {
  it.live("basicAuth lets the right credentials in and answers 401 to others", () =>
    Effect.gen(function* () {
      const server = yield* serveLocal((ws: WebSocket, user: string) => Effect.andThen(ws.send(user), ws.waitClosed), {
        processRequest: Auth.basicAuth({ realm: "test", credentials: ["ada", "secret"] })
      })
      const ws = yield* Client.connect(uriOf(server), {
        extraHeaders: { Authorization: `Basic ${Buffer.from("ada:secret").toString("base64")}` }
      })
      expect(yield* ws.recv).toBe("ada")
      const status = yield* Client.connect(uriOf(server)).pipe(
        Effect.as(0),
        Effect.catchTag("InvalidStatusCode", (error) => Effect.succeed(error.statusCode)),
        Effect.scoped
      )
      expect(status).toBe(401)
    })
  )
})

describe("Effect 4 shell: Topics", () => {
  it.live("a message published to a topic reaches its subscribers only", () =>
    Effect.gen(function* () {
      const topics = yield* Topics.Topics
      const server = yield* serveLocal((ws: WebSocket) =>
        Effect.andThen(topics.subscribe(ws, ws.path.slice(1)), Effect.andThen(ws.send("subscribed"), ws.waitClosed))
      )
      const news = yield* Client.connect(uriOf(server, "/news"))
      const sports = yield* Client.connect(uriOf(server, "/sports"))
      expect(yield* news.recv).toBe("subscribed")
      expect(yield* sports.recv).toBe("subscribed")
      const delivery = yield* topics.publish("news", "headline")
      expect(delivery.delivered).toBe(1)
      expect(yield* news.recv).toBe("headline")
      yield* topics.publish("sports", "score")
      expect(yield* sports.recv).toBe("score")
    }).pipe(Effect.provide(Topics.layerMemory))
  )
})

describe("Effect 4 shell: NodeMount", () => {
  it.live("a node:http server hands its upgrades to the WebSocket server and keeps its HTTP routes", () =>
    Effect.gen(function* () {
      const httpServer = http.createServer((_, response) => response.end("plain http"))
      yield* Effect.acquireRelease(
        Effect.callback<void>((resume) => {
          httpServer.listen(0, LOCALHOST, () => resume(Effect.void))
        }),
        () => Effect.sync(() => httpServer.close())
      )
      const mount = yield* NodeMount.make((ws: WebSocket) =>
        Effect.andThen(
          ws.send(`mounted ${ws.path}`),
          ws.forEachMessage((message) => ws.send(message))
        )
      )
      httpServer.on("upgrade", mount.handleUpgrade)
      const port = (httpServer.address() as { port: number }).port
      const ws = yield* Client.connect(`ws://${LOCALHOST}:${port}/live`)
      expect(yield* ws.recv).toBe("mounted /live")
      yield* ws.send("echo")
      expect(yield* ws.recv).toBe("echo")
      const body = yield* Effect.promise(() => fetch(`http://${LOCALHOST}:${port}/`).then((r) => r.text()))
      expect(body).toBe("plain http")
    })
  )
})

describe("Effect 4 shell: Metrics", () => {
  it.live("connections and messages are counted, by side and type", () =>
    Effect.gen(function* () {
      const received = Metric.withAttributes(Metrics.messagesReceived, { side: "server", type: "text", suite: "e4" })
      const server = yield* serveLocal(Server.onMessage((message, ws) => ws.send(message))).pipe(
        Effect.provideService(Metric.CurrentMetricAttributes, { suite: "e4" })
      )
      const ws = yield* Client.connect(uriOf(server))
      for (let i = 0; i < 3; i++) {
        yield* ws.send(`m${i}`)
        yield* ws.recv
      }
      const state = yield* Metric.value(received)
      expect(state.count).toBe(3)
    })
  )
})

describe("Effect 4 shell: Config", () => {
  const fromEnv = (env: Record<string, string>) => ConfigProvider.layer(ConfigProvider.fromEnv({ env }))

  it.live("Server.config reads the flat keys that are set, and none disables a duration", () =>
    Effect.gen(function* () {
      const options = yield* Server.config
      expect(options).toEqual({
        port: 9000,
        pingInterval: null,
        maxSize: 2048,
        compression: null
      })
    }).pipe(Effect.provide(fromEnv({ PORT: "9000", PING_INTERVAL: "none", MAX_SIZE: "2048", COMPRESSION: "off" })))
  )

  it.live("a value that does not parse fails with a ConfigError naming the key", () =>
    Effect.gen(function* () {
      const error = yield* Effect.flip(Client.config)
      expect(error._tag).toBe("ConfigError")
      expect(error.message).toContain("MAX_QUEUE")
    }).pipe(Effect.provide(fromEnv({ MAX_QUEUE: "lots" })))
  )

  it.live("Server.layerConfig serves on the configured options over those in code", () =>
    Effect.gen(function* () {
      const server = yield* Server.Server
      const ws = yield* Client.connect(uriOf(server), { compression: null })
      yield* ws.send("x".repeat(100))
      const closed = yield* Effect.flip(Effect.forever(recvOrDie(ws)))
      expect(closed.code).toBe(1009)
    }).pipe(
      Effect.provide(
        Server.layerConfig(
          Server.onMessage((message, ws) => ws.send(message)),
          { host: LOCALHOST, port: 0 }
        ).pipe(Layer.provide(fromEnv({ MAX_SIZE: "64" })))
      )
    )
  )
})
