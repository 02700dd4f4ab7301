/**
 * Scaling out beyond one process: nginx (Debian's, started by the test with
 * test/fixtures/nginx.conf) in front of our server, plain and with TLS terminated at nginx, with
 * Python `websockets` and Chromium clients, the client address taken from X-Forwarded-For; chat
 * nodes sharing Topics through a real Redis; and `serve --workers N` (node:cluster workers sharing a
 * port) with graceful shutdown on SIGTERM. The nginx and Redis cases run against both shells
 * (test/conformance/shells.ts), and an Effect 3 node and an Effect 4 node share one Redis chat; the
 * workers case is the CLI's, which is built on the Effect 3 shell.
 */
import { execFile } from "node:child_process"
import { mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import { Headers } from "../src/Headers.js"
import { forwardedFor } from "../src/internal/forwarded.js"
import { describeShells, effect3, type Shell } from "./conformance/shells.js"
import { bounded, hasOpenssl, selfSignedCertificate } from "./fixtures/loopback.js"
import {
  installed,
  NGINX,
  REDIS_SERVER,
  type RecordingClient,
  ROOT,
  recordingClient,
  spawnTs,
  startNginx,
  startRedis,
  until
} from "./fixtures/scaling.js"

const PYTHON = "/usr/bin/python3"
const CHROMIUM = "/usr/bin/chromium"
const nginxAvailable = installed(NGINX) && hasOpenssl
const redisAvailable = installed(REDIS_SERVER)

const runPython = (uri: string, cafile: string): Effect.Effect<Record<string, string>, Error> =>
  Effect.async<Record<string, string>, Error>((resume) => {
    const child = execFile(
      PYTHON,
      [join(ROOT, "test", "fixtures", "proxy_client.py"), uri, cafile],
      { timeout: 20_000 },
      (error, stdout, stderr) =>
        resume(
          error !== null ? Effect.fail(new Error(`${error.message}\n${stderr}`)) : Effect.succeed(JSON.parse(stdout))
        )
    )
    return Effect.sync(() => child.kill())
  })

describe("X-Forwarded-For", () => {
  it("takes the address the nearest trusted proxy saw", () => {
    const headers = new Headers([
      ["X-Forwarded-For", "203.0.113.9, 10.0.0.1"],
      ["X-Forwarded-For", "127.0.0.2"]
    ])
    expect(forwardedFor(headers, 1)).toEqual({ _tag: "TcpAddress", hostname: "127.0.0.2", port: 0 })
    expect(forwardedFor(headers, 2)).toEqual({ _tag: "TcpAddress", hostname: "10.0.0.1", port: 0 })
    expect(forwardedFor(headers, 4)).toBeUndefined()
    expect(forwardedFor(new Headers([["X-Forwarded-For", "[::1]"]]), 1)).toEqual({
      _tag: "TcpAddress",
      hostname: "::1",
      port: 0
    })
    expect(forwardedFor(new Headers([["X-Forwarded-For", "unknown"]]), 1)).toBeUndefined()
    expect(forwardedFor(new Headers(), 1)).toBeUndefined()
  })
})

describe("behind nginx", () => {
  it("nginx and openssl are installed (required in CI)", () => {
    expect(nginxAvailable || process.env.CI !== "true").toBe(true)
  })

  describe.runIf(nginxAvailable)("with nginx", () => {
    const certificate = nginxAvailable ? selfSignedCertificate() : { cert: "", key: "" }
    // The greeter: the client address and how it came (X-Forwarded-Proto), then echo.
    describeShells("in front of the greeter", (shell) => {
      const setUp = (trustProxy: boolean) =>
        Effect.gen(function* () {
          const server = yield* Effect.orDie(shell.serve("greeter", { trustProxy, compression: null }))
          const proxy = yield* startNginx({ upstream: server.port, ...certificate })
          const dir = yield* Effect.acquireRelease(
            Effect.sync(() => mkdtempSync(join(tmpdir(), "effect-websockets-ca-"))),
            (dir) => Effect.sync(() => rmSync(dir, { recursive: true, force: true }))
          )
          const cafile = join(dir, "ca.pem")
          writeFileSync(cafile, certificate.cert)
          return { server, proxy, cafile }
        })

      it.scopedLive(
        "Python websockets through nginx, plain and TLS: the server sees the client's address",
        () =>
          Effect.gen(function* () {
            const { proxy, cafile } = yield* setUp(true)
            const plain = yield* runPython(`ws://127.0.0.1:${proxy.port}/chat`, "-")
            // The forged X-Forwarded-For entry is ignored: one proxy is trusted, nginx's entry is last.
            expect(plain).toEqual({ greeting: "remote 127.0.0.2 http", text: "héllo", binary: "00ff01" })
            const secure = yield* runPython(`wss://localhost:${proxy.tlsPort}/chat`, cafile)
            expect(secure).toEqual({ greeting: "remote 127.0.0.2 https", text: "héllo", binary: "00ff01" })
          }).pipe(bounded(40_000)),
        45_000
      )

      it.scopedLive(
        "without trustProxy the server sees nginx's address",
        () =>
          Effect.gen(function* () {
            const { proxy } = yield* setUp(false)
            const plain = yield* runPython(`ws://127.0.0.1:${proxy.port}/`, "-")
            expect(plain.greeting).toBe("remote 127.0.0.1 http")
          }).pipe(bounded(25_000)),
        30_000
      )

      it.scopedLive(
        "a ws client's messages and close cross nginx (idle longer than nothing: proxy_read_timeout is 60 s)",
        () =>
          Effect.gen(function* () {
            const { proxy } = yield* setUp(true)
            const client = yield* recordingClient(`ws://127.0.0.1:${proxy.port}/`)
            yield* client.waitFor("remote 127.0.0.1 http")
            client.socket.send(Buffer.alloc(200_000, 7))
            yield* client.waitFor(Buffer.alloc(200_000, 7))
          }).pipe(bounded(20_000)),
        25_000
      )

      // Chromium is a required peer of the interop tests (test/interop/browser.test.ts checks it is there).
      it.scopedLive(
        "Chromium through nginx, plain and TLS",
        () =>
          Effect.gen(function* () {
            const { proxy } = yield* setUp(true)
            const { chromium } = yield* Effect.promise(() => import("playwright-core"))
            const browser = yield* Effect.acquireRelease(
              Effect.promise(() =>
                chromium.launch({
                  executablePath: CHROMIUM,
                  headless: true,
                  args: ["--no-sandbox", "--disable-gpu", "--no-first-run"],
                  timeout: 20_000
                })
              ),
              (browser) => Effect.promise(() => browser.close())
            )
            const context = yield* Effect.promise(() => browser.newContext({ ignoreHTTPSErrors: true }))
            const page = yield* Effect.promise(() => context.newPage())
            const exchange = (url: string) =>
              Effect.promise(() =>
                page.evaluate(
                  (url) =>
                    new Promise<Array<string>>((resolve, reject) => {
                      const ws = new WebSocket(url)
                      ws.binaryType = "arraybuffer"
                      const got: Array<string> = []
                      ws.onmessage = (event) => {
                        got.push(
                          typeof event.data === "string" ? event.data : `bytes ${new Uint8Array(event.data).join(",")}`
                        )
                        if (got.length === 1) {
                          ws.send("from chromium")
                          ws.send(new Uint8Array([1, 2, 3]))
                        }
                        if (got.length === 3) ws.close(1000)
                      }
                      ws.onclose = (event) => resolve([...got, `close ${event.code}`])
                      ws.onerror = () => reject(new Error(`WebSocket error on ${url}`))
                    }),
                  url
                )
              )
            expect(yield* exchange(`ws://127.0.0.1:${proxy.port}/`)).toEqual([
              "remote 127.0.0.1 http",
              "from chromium",
              "bytes 1,2,3",
              "close 1000"
            ])
            expect(yield* exchange(`wss://127.0.0.1:${proxy.tlsPort}/`)).toEqual([
              "remote 127.0.0.1 https",
              "from chromium",
              "bytes 1,2,3",
              "close 1000"
            ])
          }).pipe(bounded(40_000)),
        45_000
      )
    })
  })
})

/** Sends `message` from one client every 50 ms until the other receives it (subscriptions reach Redis asynchronously). */
const relayed = (from: RecordingClient, to: RecordingClient, message: string) =>
  Effect.raceFirst(
    to.waitFor(message),
    Effect.forever(
      Effect.zipRight(
        Effect.sync(() => from.socket.send(message)),
        Effect.sleep("50 millis")
      )
    )
  )

describe("chat nodes over Redis", () => {
  it("redis-server is installed (required in CI)", () => {
    expect(redisAvailable || process.env.CI !== "true").toBe(true)
  })

  describe.runIf(redisAvailable)("with redis-server", () => {
    describeShells("Topics through a RedisBackplane", (shell) => {
      const others: ReadonlyArray<Shell> = shell === effect3 ? [shell] : [shell, effect3]
      for (const other of others) {
        it.scopedLive(
          `a message sent to a node of ${shell.name} reaches the clients of a node of ${other.name}, and back`,
          () =>
            Effect.gen(function* () {
              const redis = yield* startRedis
              const a = yield* Effect.orDie(shell.serve("chat", { compression: null }, { redis: redis.url }))
              const b = yield* Effect.orDie(other.serve("chat", { compression: null }, { redis: redis.url }))
              const alice = yield* recordingClient(`ws://127.0.0.1:${a.port}/chat`)
              const bob = yield* recordingClient(`ws://127.0.0.1:${b.port}/chat`)
              yield* relayed(alice, bob, "from a")
              yield* relayed(bob, alice, "from b")
              // Each node's own subscriber gets the message too, through Redis.
              yield* alice.waitFor("from a")
              yield* bob.waitFor("from b")
            }).pipe(bounded(20_000)),
          25_000
        )
      }
    })
  })
})

describe("serve --workers", () => {
  it.scopedLive(
    "two cluster workers share the port; SIGTERM of the primary closes every connection with 1001",
    () =>
      Effect.gen(function* () {
        const cli = yield* spawnTs("test/fixtures/workersCli.ts", {}, ["serve", "--port", "0", "--workers", "2"])
        yield* until(() => (cli.output().match(/Listening on/g) ?? []).length === 2)
        const ports = [...cli.output().matchAll(/Listening on ws:\/\/127\.0\.0\.1:(\d+)/g)].map((m) => m[1])
        expect(new Set(ports).size).toBe(1)
        const clients = yield* Effect.forEach([1, 2, 3, 4], () => recordingClient(`ws://127.0.0.1:${cli.port}/`))
        for (const [i, client] of clients.entries()) {
          client.socket.send(`echo ${i}`)
          yield* client.waitFor(`echo ${i}`)
        }
        // Round robin: the four connections went to both workers (each logs its own).
        const served = new Set([...cli.output().matchAll(/\[worker (\d+)\] Connection opened/g)].map((m) => m[1]))
        expect(served.size).toBe(2)
        expect(yield* cli.terminate).toBe(0)
        for (const client of clients) yield* until(() => client.closeCode() !== undefined)
        expect(clients.map((client) => client.closeCode())).toEqual([1001, 1001, 1001, 1001])
        expect((cli.output().match(/Server stopped\./g) ?? []).length).toBe(2)
      }).pipe(bounded(50_000)),
    60_000
  )
})
