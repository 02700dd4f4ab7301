/**
 * Interoperability with Python `websockets` (Debian's python3-websockets, run by /usr/bin/python3):
 * its client against our server and our client against its server, with the message matrix of
 * fixtures/peers.ts, with and without permessage-deflate on either side, subprotocol negotiation, and
 * close codes and reasons initiated by either side. One peer process (fixtures/peer.py) per file.
 */
import { spawnSync } from "node:child_process"
import { existsSync } from "node:fs"
import { fileURLToPath } from "node:url"
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Stream from "effect/Stream"
import * as Client from "../../src/Client.js"
import * as Server from "../../src/Server.js"
import { FRONT_DOORS, type FrontDoor, serveBehind } from "../fixtures/frontDoors.js"
import { bounded, LOCALHOST, portOf } from "../fixtures/loopback.js"
import {
  build,
  CI,
  CLOSES,
  checkPeer,
  command,
  connectionTo,
  describeData,
  expected,
  extensionNames,
  interopHandler,
  JsonLinesChild,
  MAX_SIZE,
  MESSAGES,
  MiB,
  PEER_FRAGMENTED,
  SERVER_SUBPROTOCOLS,
  type ServerLog
} from "./fixtures/peers.js"

const PYTHON = "/usr/bin/python3"
const PEER_SCRIPT = fileURLToPath(new URL("./fixtures/peer.py", import.meta.url))

const problem = ((): string | undefined => {
  if (!existsSync(PYTHON)) return `${PYTHON} not found`
  const check = spawnSync(PYTHON, ["-c", "import websockets"], { encoding: "utf8", timeout: 5000 })
  return check.status === 0 ? undefined : `${PYTHON} cannot import websockets: ${check.stderr.trim()}`
})()
const available = checkPeer("Python websockets", problem)

type Compression = "deflate" | null
const COMPRESSION: ReadonlyArray<readonly [ours: Compression, theirs: Compression]> = [
  ["deflate", "deflate"],
  ["deflate", null],
  [null, "deflate"],
  [null, null]
]
const label = (compression: Compression) => (compression === null ? "off" : "on")
const negotiated = (ours: Compression, theirs: Compression) =>
  ours !== null && theirs !== null ? ["permessage-deflate"] : []

/** Every message of the matrix, echoed, then the fragmented messages the peer sends on command. */
const matrixReceived = [...MESSAGES.map(([, spec]) => expected(spec)), ...PEER_FRAGMENTED.map(expected)]

describe("interop with Python websockets", () => {
  if (!available && CI) {
    it("python3-websockets is installed (required in CI)", () => {
      expect.fail(problem)
    })
  }

  describe.skipIf(!available)("peer", () => {
    let peer: JsonLinesChild
    let ports: { deflate: number; plain: number }
    let counter = 0
    const nextPath = () => `/t${++counter}`
    const portFor = (theirs: Compression) => (theirs === null ? ports.plain : ports.deflate)
    const opened = (path: string) => peer.await((line) => line.event === "open" && line.path === path)
    const closed = (path: string) => peer.await((line) => line.event === "closed" && line.path === path)
    /** Runs a client job in the peer and returns what it reported. */
    const clientJob = (job: Record<string, unknown>) => {
      const id = ++counter
      return Effect.suspend(() => {
        peer.send({ ...job, id })
        return peer.await((line) => line.id === id, 8000)
      })
    }
    /** Our server for one test, recording its connections. */
    const ourServer = (compression: Compression, door: FrontDoor = "serve") =>
      Effect.gen(function* () {
        const log: ServerLog = new Map()
        const server = yield* serveBehind(door)(interopHandler(log), {
          compression,
          maxSize: MAX_SIZE,
          subprotocols: SERVER_SUBPROTOCOLS
        })
        return { server, log, uri: (path: string) => `ws://${LOCALHOST}:${portOf(server)}${path}` }
      })

    beforeAll(async () => {
      peer = JsonLinesChild.spawn(PYTHON, [PEER_SCRIPT])
      const listening = await peer.waitFor((line) => line.event === "listening", 8000)
      ports = { deflate: listening.deflate, plain: listening.plain }
    })

    afterAll(async () => {
      await peer?.stop()
    })

    describe("our client, Python server", () => {
      for (const [ours, theirs] of COMPRESSION) {
        it.scopedLive(`client compression ${label(ours)}, server compression ${label(theirs)}: echoes the matrix`, () =>
          Effect.gen(function* () {
            const path = nextPath()
            const ws = yield* Client.connect(`ws://${LOCALHOST}:${portFor(theirs)}${path}`, {
              compression: ours,
              maxSize: MAX_SIZE
            })
            expect(extensionNames(ws.responseHeaders.getAll("Sec-WebSocket-Extensions"))).toEqual(
              negotiated(ours, theirs)
            )
            expect((yield* opened(path)).extensions).toEqual(negotiated(ours, theirs))
            const received = []
            for (const [, spec] of MESSAGES) {
              yield* ws.send(build(spec))
              received.push(describeData(yield* ws.recv))
            }
            for (const spec of PEER_FRAGMENTED) {
              yield* ws.send(command({ op: "send", msg: spec }))
              received.push(describeData(yield* ws.recv))
            }
            expect(received).toEqual(matrixReceived)
            yield* ws.close()
            expect(ws.closeCode).toBe(1000)
            const end = yield* closed(path)
            expect(end).toMatchObject({ code: 1000, reason: "", error: null })
            expect(end.received).toEqual(MESSAGES.map(([, spec]) => expected(spec)))
          }).pipe(bounded(8000))
        )
      }

      it.scopedLive("client with default options receives 1 MiB messages, the default maxSize", () =>
        Effect.gen(function* () {
          const path = nextPath()
          const ws = yield* Client.connect(`ws://${LOCALHOST}:${ports.plain}${path}`)
          for (const spec of [
            { pattern: "text", size: MiB },
            { pattern: "binary", size: MiB }
          ] as const) {
            yield* ws.send(build(spec))
            expect(describeData(yield* ws.recv)).toEqual(expected(spec))
          }
        }).pipe(bounded())
      )

      it.scopedLive("client sends a message fragmented from a Stream", () =>
        Effect.gen(function* () {
          const path = nextPath()
          const ws = yield* Client.connect(`ws://${LOCALHOST}:${ports.deflate}${path}`)
          yield* ws.send(Stream.make("str", "", "eam \u{1f600}"))
          expect(yield* ws.recv).toBe("stream \u{1f600}")
          yield* ws.send(Stream.fromIterable([new Uint8Array([1]), new Uint8Array([2, 3])]))
          expect(yield* ws.recv).toEqual(new Uint8Array([1, 2, 3]))
        }).pipe(bounded())
      )

      it.scopedLive("client pings, the server pongs", () =>
        Effect.gen(function* () {
          const ws = yield* Client.connect(`ws://${LOCALHOST}:${ports.deflate}${nextPath()}`)
          const pong = yield* ws.ping("are you there?")
          expect(yield* pong).toBeGreaterThanOrEqual(0)
          const defaultPong = yield* ws.ping()
          expect(yield* defaultPong).toBeGreaterThanOrEqual(0)
        }).pipe(bounded())
      )

      it.scopedLive("client offers chat.v2 and superchat: the server picks chat.v2", () =>
        Effect.gen(function* () {
          const path = nextPath()
          const ws = yield* Client.connect(`ws://${LOCALHOST}:${ports.deflate}${path}`, {
            subprotocols: ["chat.v2", "superchat"]
          })
          expect(ws.subprotocol).toBe("chat.v2")
          expect((yield* opened(path)).subprotocol).toBe("chat.v2")
          yield* ws.send("after negotiation")
          expect(yield* ws.recv).toBe("after negotiation")
        }).pipe(bounded())
      )

      it.scopedLive("client offers only superchat: no subprotocol on either side", () =>
        Effect.gen(function* () {
          const path = nextPath()
          const ws = yield* Client.connect(`ws://${LOCALHOST}:${ports.deflate}${path}`, { subprotocols: ["superchat"] })
          expect(ws.subprotocol).toBeUndefined()
          expect(ws.responseHeaders.has("Sec-WebSocket-Protocol")).toBe(false)
          expect((yield* opened(path)).subprotocol).toBeNull()
        }).pipe(bounded())
      )

      for (const { code, reason, name } of CLOSES) {
        const errorTag = code === 1000 ? null : "ConnectionClosedError"
        it.scopedLive(`client closes with ${name}: the server observes both`, () =>
          Effect.gen(function* () {
            const path = nextPath()
            const ws = yield* Client.connect(`ws://${LOCALHOST}:${ports.deflate}${path}`)
            yield* ws.close(code, reason)
            // RFC 6455 §5.5.1: the peer echoes the status code in its Close frame.
            expect(ws.closeCode).toBe(code)
            expect(yield* closed(path)).toMatchObject({ code, reason, error: errorTag })
          }).pipe(bounded())
        )

        it.scopedLive(`server closes with ${name}: the client observes both`, () =>
          Effect.gen(function* () {
            const path = nextPath()
            const ws = yield* Client.connect(`ws://${LOCALHOST}:${ports.deflate}${path}`)
            yield* ws.send(command({ op: "close", code, reason }))
            const error = yield* Effect.flip(ws.recv)
            expect(error).toMatchObject({
              _tag: code === 1000 ? "ConnectionClosedOK" : "ConnectionClosedError",
              code,
              reason
            })
            yield* ws.waitClosed
            expect([ws.closeCode, ws.closeReason]).toEqual([code, reason])
            expect(yield* closed(path)).toMatchObject({ code })
          }).pipe(bounded())
        )
      }
    })

    describe("Python client, our server", () => {
      // Behind each front door: its own listener, mounted in node:http, routed by an HttpRouter.
      for (const door of FRONT_DOORS) {
        for (const [ours, theirs] of COMPRESSION) {
          const where = door === "serve" ? "" : ` (${door})`
          it.scopedLive(
            `server compression ${label(ours)}, client compression ${label(theirs)}: echoes the matrix${where}`,
            () =>
              Effect.gen(function* () {
                const { log, uri } = yield* ourServer(ours, door)
                const path = `/ws${nextPath()}`
                const result = yield* clientJob({
                  uri: uri(path),
                  compression: theirs,
                  steps: [
                    ...MESSAGES.flatMap(([, msg]) => [{ op: "send", msg }, { op: "recv" }]),
                    ...PEER_FRAGMENTED.flatMap((msg) => [
                      { op: "send", msg: { text: command({ op: "send", msg }) } },
                      { op: "recv" }
                    ]),
                    { op: "close", code: 1000, reason: "" }
                  ]
                })
                expect(result.error).toBeNull()
                expect(result.extensions).toEqual(negotiated(ours, theirs))
                expect(result.received).toEqual(matrixReceived)
                expect([result.code, result.reason]).toEqual([1000, ""])
                const record = yield* Deferred.await(connectionTo(log, path))
                expect(extensionNames(record.ws.responseHeaders.getAll("Sec-WebSocket-Extensions"))).toEqual(
                  negotiated(ours, theirs)
                )
                expect(record.received).toEqual(MESSAGES.map(([, spec]) => expected(spec)))
                expect(yield* Deferred.await(record.closed)).toMatchObject({
                  error: undefined,
                  closeCode: 1000,
                  closeReason: ""
                })
              }).pipe(bounded(8000))
          )
        }
      }

      it.scopedLive("server with default options receives 1 MiB messages, the default maxSize", () =>
        Effect.gen(function* () {
          const log: ServerLog = new Map()
          const server = yield* Server.serve(interopHandler(log), { host: LOCALHOST, port: 0 })
          const path = nextPath()
          const specs = [
            { pattern: "text", size: MiB },
            { pattern: "binary", size: MiB }
          ] as const
          const result = yield* clientJob({
            uri: `ws://${LOCALHOST}:${portOf(server)}${path}`,
            compression: null,
            steps: specs.flatMap((msg) => [{ op: "send", msg }, { op: "recv" }])
          })
          expect(result).toMatchObject({ error: null, received: specs.map(expected) })
          const record = yield* Deferred.await(connectionTo(log, path))
          expect(record.received).toEqual(specs.map(expected))
        }).pipe(bounded())
      )

      it.scopedLive("client pings, the server pongs", () =>
        Effect.gen(function* () {
          const { uri } = yield* ourServer("deflate")
          const result = yield* clientJob({
            uri: uri(nextPath()),
            steps: [
              { op: "ping", data: "are you there?" },
              { op: "ping", data: "" }
            ]
          })
          expect(result).toMatchObject({ error: null, pongs: 2 })
        }).pipe(bounded())
      )

      it.scopedLive("client offers superchat and chat.v2: the server picks chat.v2", () =>
        Effect.gen(function* () {
          const { log, uri } = yield* ourServer("deflate")
          const path = nextPath()
          const result = yield* clientJob({
            uri: uri(path),
            compression: "deflate",
            subprotocols: ["superchat", "chat.v2"],
            steps: [{ op: "send", msg: { text: "hi" } }, { op: "recv" }]
          })
          expect(result).toMatchObject({ error: null, subprotocol: "chat.v2", received: [expected({ text: "hi" })] })
          const record = yield* Deferred.await(connectionTo(log, path))
          expect(record.ws.subprotocol).toBe("chat.v2")
        }).pipe(bounded())
      )

      it.scopedLive("client offers only superchat: no subprotocol on either side", () =>
        Effect.gen(function* () {
          const { log, uri } = yield* ourServer("deflate")
          const path = nextPath()
          const result = yield* clientJob({
            uri: uri(path),
            compression: "deflate",
            subprotocols: ["superchat"],
            steps: []
          })
          expect(result).toMatchObject({ error: null, subprotocol: null })
          const record = yield* Deferred.await(connectionTo(log, path))
          expect(record.ws.subprotocol).toBeUndefined()
        }).pipe(bounded())
      )

      for (const { code, reason, name } of CLOSES) {
        const errorTag = code === 1000 ? undefined : "ConnectionClosedError"
        it.scopedLive(`client closes with ${name}: the server observes both`, () =>
          Effect.gen(function* () {
            const { log, uri } = yield* ourServer("deflate")
            const path = nextPath()
            const result = yield* clientJob({ uri: uri(path), steps: [{ op: "close", code, reason }] })
            expect(result).toMatchObject({ error: null, code })
            const record = yield* Deferred.await(connectionTo(log, path))
            expect(yield* Deferred.await(record.closed)).toEqual({
              error: errorTag,
              errorCode: errorTag === undefined ? undefined : code,
              errorReason: errorTag === undefined ? undefined : reason,
              closeCode: code,
              closeReason: reason
            })
          }).pipe(bounded())
        )

        it.scopedLive(`server closes with ${name}: the client observes both`, () =>
          Effect.gen(function* () {
            const { log, uri } = yield* ourServer("deflate")
            const path = nextPath()
            const result = yield* clientJob({
              uri: uri(path),
              steps: [{ op: "send", msg: { text: command({ op: "close", code, reason }) } }, { op: "recv" }]
            })
            expect(result).toMatchObject({
              error: code === 1000 ? "ConnectionClosedOK" : "ConnectionClosedError",
              code,
              reason
            })
            const record = yield* Deferred.await(connectionTo(log, path))
            expect(yield* Deferred.await(record.closed)).toMatchObject({ closeCode: code })
          }).pipe(bounded())
        )
      }

      it.scopedLive("server shuts down: the client observes 1001", () =>
        Effect.gen(function* () {
          const { server, log, uri } = yield* ourServer("deflate")
          const path = nextPath()
          const job = yield* clientJob({ uri: uri(path), steps: [{ op: "wait_closed" }] }).pipe(Effect.fork)
          yield* Deferred.await(connectionTo(log, path))
          yield* server.close
          const result = yield* job.await.pipe(Effect.flatten)
          expect(result).toMatchObject({ error: null, code: 1001 })
        }).pipe(bounded())
      )
    })
  })
})
