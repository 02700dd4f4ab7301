/**
 * Options from Effect Config: every key of `Server.config` and `Client.config` read from
 * `ConfigProvider.fromMap` (durations, sizes, `none` to disable, compression), missing keys left
 * out, ConfigErrors naming the key, nesting under a prefix, and `Server.layerConfig` /
 * `Client.layerConfig` over loopback: the port, compression and maxSize read from config reach the
 * listener and the connections.
 */
import * as net from "node:net"
import { describe, expect, it } from "@effect/vitest"
import * as Config from "effect/Config"
import * as ConfigError from "effect/ConfigError"
import * as ConfigProvider from "effect/ConfigProvider"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Client from "../src/Client.js"
import { ConnectionClosedError } from "../src/Errors.js"
import * as Server from "../src/Server.js"
import { bounded, echo, LOCALHOST, portOf, recvOrDie } from "./fixtures/loopback.js"

const fromMap = (entries: Record<string, string>, pathDelim = "."): ConfigProvider.ConfigProvider =>
  ConfigProvider.fromMap(new Map(Object.entries(entries)), { pathDelim })

const read = <A>(config: Config.Config<A>, entries: Record<string, string>, pathDelim?: string) =>
  Effect.withConfigProvider(config, fromMap(entries, pathDelim))

/** The ConfigError of reading `entries`, with its text. */
const failure = <A>(config: Config.Config<A>, entries: Record<string, string>) =>
  Effect.map(Effect.flip(read(config, entries)), (error) => ({ error, text: String(error) }))

const millis = (value: Duration.Duration | null | undefined): number | null | undefined =>
  value === null || value === undefined ? value : Duration.toMillis(value)

/** A port nobody listens on right now: listen on port 0, note the port, close. */
const freePort: Effect.Effect<number> = Effect.async<number>((resume) => {
  const probe = net.createServer()
  probe.listen(0, LOCALHOST, () => {
    const { port } = probe.address() as net.AddressInfo
    probe.close(() => resume(Effect.succeed(port)))
  })
})

describe("Server.config", () => {
  it.effect("reads every key", () =>
    Effect.gen(function* () {
      const options = yield* read(Server.config, {
        HOST: "0.0.0.0",
        PORT: "9000",
        UNIX: "/tmp/ws.sock",
        OPEN_TIMEOUT: "5 seconds",
        PING_INTERVAL: "1 minute",
        PING_TIMEOUT: "2500 millis",
        CLOSE_TIMEOUT: "750",
        MAX_SIZE: "2048",
        MAX_QUEUE: "16",
        READ_LIMIT: "0",
        WRITE_LIMIT: "131072",
        MAX_HEADER_SIZE: "8192",
        COMPRESSION: "deflate",
        METRICS: "off"
      })
      const { openTimeout, pingInterval, pingTimeout, closeTimeout, ...rest } = options
      expect([openTimeout, pingInterval, pingTimeout, closeTimeout].map(millis)).toEqual([5000, 60_000, 2500, 750])
      expect(rest).toEqual({
        host: "0.0.0.0",
        port: 9000,
        unix: "/tmp/ws.sock",
        maxSize: 2048,
        maxQueue: 16,
        readLimit: 0,
        writeLimit: 131_072,
        maxHeaderSize: 8192,
        compression: "deflate",
        metrics: false
      })
    })
  )

  it.effect("leaves out every key that is missing, so the options in code and the defaults apply", () =>
    Effect.gen(function* () {
      expect(yield* read(Server.config, {})).toEqual({})
      expect(yield* read(Server.config, { PORT: "0", UNRELATED: "x" })).toEqual({ port: 0 })
    })
  )

  it.effect("none (any case) or off disables the options where null disables, and compression", () =>
    Effect.gen(function* () {
      const options = yield* read(Server.config, {
        OPEN_TIMEOUT: "none",
        PING_INTERVAL: "None",
        PING_TIMEOUT: "NONE",
        MAX_SIZE: "off",
        MAX_QUEUE: " none ",
        COMPRESSION: "None"
      })
      expect(options).toEqual({
        openTimeout: null,
        pingInterval: null,
        pingTimeout: null,
        maxSize: null,
        maxQueue: null,
        compression: null
      })
    })
  )

  it.effect("reads durations as Config.duration does, and plain numbers as milliseconds", () =>
    Effect.gen(function* () {
      const durations = {
        "20 seconds": 20_000,
        "1.5 seconds": 1500,
        "2 minutes": 120_000,
        "250 millis": 250,
        "1 hour": 3_600_000,
        "500": 500,
        "0.5": 0.5,
        " 30 seconds ": 30_000
      }
      for (const [text, expected] of Object.entries(durations)) {
        const options = yield* read(Server.config, { PING_INTERVAL: text })
        expect([text, millis(options.pingInterval)]).toEqual([text, expected])
      }
      // The close timeout cannot be disabled, but may be zero (abort at once).
      expect(millis((yield* read(Server.config, { CLOSE_TIMEOUT: "0" })).closeTimeout)).toBe(0)
    })
  )

  it.effect("a bad value is a ConfigError (InvalidData) whose message names the key", () =>
    Effect.gen(function* () {
      const cases: ReadonlyArray<readonly [string, string]> = [
        ["PORT", "abc"],
        ["PORT", "70000"],
        ["PORT", "-1"],
        ["PORT", "80.5"],
        ["HOST", "  "],
        ["UNIX", ""],
        ["MAX_SIZE", "-1"],
        ["MAX_SIZE", "1.5"],
        ["MAX_SIZE", "1e6"],
        ["MAX_SIZE", "0"],
        ["MAX_QUEUE", "0"],
        ["READ_LIMIT", "none"],
        ["WRITE_LIMIT", "-5"],
        ["MAX_HEADER_SIZE", "0"],
        ["PING_INTERVAL", "soon"],
        ["PING_INTERVAL", "0"],
        ["PING_TIMEOUT", "-5 seconds"],
        ["OPEN_TIMEOUT", "0 seconds"],
        ["CLOSE_TIMEOUT", "none"],
        ["CLOSE_TIMEOUT", "10 parsecs"],
        ["COMPRESSION", "gzip"],
        ["METRICS", "maybe"],
        ["COMPRESSION", ""]
      ]
      for (const [key, value] of cases) {
        const { error, text } = yield* failure(Server.config, { [key]: value })
        expect(error._op, `${key}=${value}`).toBe("InvalidData")
        expect(ConfigError.isInvalidData(error) && error.path).toEqual([key])
        expect(text).toContain(`Invalid data at ${key}:`)
        expect(text).toContain(JSON.stringify(value))
      }
    })
  )

  it.effect("says how to disable where zero is refused, and reports every bad key at once", () =>
    Effect.gen(function* () {
      expect((yield* failure(Server.config, { MAX_SIZE: "0" })).text).toContain('"none"')
      expect((yield* failure(Server.config, { PING_INTERVAL: "0" })).text).toContain('"none"')
      const { error, text } = yield* failure(Server.config, { PORT: "abc", MAX_SIZE: "-1", COMPRESSION: "gzip" })
      expect(error._op).toBe("And")
      for (const key of ["PORT", "MAX_SIZE", "COMPRESSION"]) expect(text).toContain(`Invalid data at ${key}:`)
    })
  )

  it.effect("nests under a prefix: Config.nested, or ConfigProvider.nested", () =>
    Effect.gen(function* () {
      const nested = Config.nested(Server.config, "WS")
      expect(yield* read(nested, { "WS.PORT": "9000", PORT: "1" })).toEqual({ port: 9000 })
      // As from the environment, where the path delimiter is "_".
      expect(yield* read(nested, { WS_PORT: "9000", WS_MAX_SIZE: "none" }, "_")).toEqual({
        port: 9000,
        maxSize: null
      })
      const provider = fromMap({ WS_PORT: "9001" }, "_").pipe(ConfigProvider.nested("WS"))
      expect(yield* Effect.withConfigProvider(Server.config, provider)).toEqual({ port: 9001 })
      const { text } = yield* failure(nested, { "WS.PORT": "abc" })
      expect(text).toContain("Invalid data at WS.PORT:")
    })
  )
})

describe("Client.config", () => {
  it.effect("reads the connection keys only: where to connect is the URI's business", () =>
    Effect.gen(function* () {
      const options = yield* read(Client.config, {
        HOST: "example.com",
        PORT: "9000",
        UNIX: "/tmp/ws.sock",
        OPEN_TIMEOUT: "3 seconds",
        PING_INTERVAL: "off",
        PING_TIMEOUT: "1 second",
        CLOSE_TIMEOUT: "2 seconds",
        MAX_SIZE: "none",
        MAX_QUEUE: "4",
        READ_LIMIT: "1024",
        WRITE_LIMIT: "2048",
        MAX_HEADER_SIZE: "4096",
        COMPRESSION: "none"
      })
      const { openTimeout, pingInterval, pingTimeout, closeTimeout, ...rest } = options
      expect([openTimeout, pingInterval, pingTimeout, closeTimeout].map(millis)).toEqual([3000, null, 1000, 2000])
      expect(rest).toEqual({
        maxSize: null,
        maxQueue: 4,
        readLimit: 1024,
        writeLimit: 2048,
        maxHeaderSize: 4096,
        compression: null
      })
      expect(yield* read(Client.config, {})).toEqual({})
      const { text } = yield* failure(Client.config, { MAX_QUEUE: "many" })
      expect(text).toContain("Invalid data at MAX_QUEUE:")
    })
  )
})

/** The server and client layers, reading their configuration from `entries`. */
const layers = (
  server: Layer.Layer<Server.Server, unknown>,
  client: Layer.Layer<Client.Client, unknown>,
  entries: Record<string, string>
) => Layer.merge(server, client).pipe(Layer.provide(Layer.setConfigProvider(fromMap(entries))))

describe("layerConfig over loopback", () => {
  it.scopedLive("the server listens on HOST and PORT from config; a Client.layerConfig client echoes", () =>
    Effect.gen(function* () {
      const port = yield* freePort
      const program = Effect.gen(function* () {
        const server = yield* Server.Server
        expect(portOf(server)).toBe(port)
        const client = yield* Client.Client
        const ws = yield* client.connect(`ws://${LOCALHOST}:${port}/`)
        yield* ws.send("Hello from config")
        expect(yield* ws.recv).toBe("Hello from config")
        // COMPRESSION=none reached the server: the client's deflate offer was declined.
        expect(ws.responseHeaders.get("sec-websocket-extensions")).toBeUndefined()
        yield* ws.close()
        expect(ws.closeCode).toBe(1000)
      })
      // PORT overrides the port given in code (0: any port).
      yield* Effect.scoped(program).pipe(
        Effect.provide(
          layers(Server.layerConfig(echo, { port: 0 }), Client.layerConfig(), {
            HOST: LOCALHOST,
            PORT: String(port),
            COMPRESSION: "none"
          })
        ),
        bounded()
      )
    })
  )

  it.scopedLive("with no key in the config, the options given in code apply", () =>
    Effect.gen(function* () {
      const port = yield* freePort
      const program = Effect.gen(function* () {
        const server = yield* Server.Server
        expect(server.address).toEqual({ _tag: "TcpAddress", hostname: LOCALHOST, port })
        const ws = yield* (yield* Client.Client).connect(`ws://${LOCALHOST}:${port}/`)
        yield* ws.send("defaults")
        expect(yield* ws.recv).toBe("defaults")
        // Compression is on by default on both sides.
        expect(ws.responseHeaders.get("sec-websocket-extensions")).toContain("permessage-deflate")
      })
      yield* Effect.scoped(program).pipe(
        Effect.provide(layers(Server.layerConfig(echo, { host: LOCALHOST, port }), Client.layerConfig(), {})),
        bounded()
      )
    })
  )

  it.scopedLive("MAX_SIZE=10 reaches the server's connections: a 20-byte message closes with 1009", () =>
    Effect.gen(function* () {
      const port = yield* freePort
      const program = Effect.gen(function* () {
        const ws = yield* (yield* Client.Client).connect(`ws://${LOCALHOST}:${port}/`)
        yield* ws.send("0123456789") // 10 bytes: at the limit, echoed
        expect(yield* ws.recv).toBe("0123456789")
        yield* ws.send("01234567890123456789")
        // The server failed the connection with 1009 and the client received that code.
        const closed = yield* Effect.flip(recvOrDie(ws))
        expect(closed).toBeInstanceOf(ConnectionClosedError)
        expect([closed.code, closed.sentCode]).toEqual([1009, 1009])
      })
      yield* Effect.scoped(program).pipe(
        Effect.provide(
          layers(Server.layerConfig(echo, { host: LOCALHOST }), Client.layerConfig(), {
            PORT: String(port),
            MAX_SIZE: "10"
          })
        ),
        bounded()
      )
    })
  )

  it.scopedLive(
    "MAX_SIZE=10 from config overrides the client's maxSize in code: a 20-byte reply closes with 1009",
    () =>
      Effect.gen(function* () {
        const port = yield* freePort
        const program = Effect.gen(function* () {
          const ws = yield* (yield* Client.Client).connect(`ws://${LOCALHOST}:${port}/`)
          yield* ws.send("01234567890123456789")
          // The client failed the connection with 1009 when the echo came back.
          const closed = yield* Effect.flip(recvOrDie(ws))
          expect(closed).toBeInstanceOf(ConnectionClosedError)
          expect(closed.sentCode).toBe(1009)
        })
        // One provider serves both layers: the client's keys are nested under CLIENT, so that the
        // server keeps its default limit (1 MiB) and echoes the message.
        const client = Client.layerConfig({ maxSize: 1000 }, Config.nested(Client.config, "CLIENT"))
        yield* Effect.scoped(program).pipe(
          Effect.provide(
            layers(Server.layerConfig(echo, { host: LOCALHOST }), client, {
              PORT: String(port),
              "CLIENT.MAX_SIZE": "10"
            })
          ),
          bounded()
        )
      })
  )

  it.scopedLive("a bad value fails the layer with a ConfigError before anything listens", () =>
    Effect.gen(function* () {
      const error = yield* Effect.flip(
        Effect.provide(
          Server.Server,
          Server.layerConfig(echo, { host: LOCALHOST }).pipe(
            Layer.provide(Layer.setConfigProvider(fromMap({ PORT: "abc" })))
          )
        )
      )
      expect(String(error)).toContain("Invalid data at PORT:")
      const clientError = yield* Effect.flip(
        Effect.provide(
          Client.Client,
          Client.layerConfig().pipe(Layer.provide(Layer.setConfigProvider(fromMap({ COMPRESSION: "gzip" }))))
        )
      )
      expect(String(clientError)).toContain("Invalid data at COMPRESSION:")
    })
  )
})
