/**
 * Interoperability with Python `websockets` (Debian's python3-websockets, run by /usr/bin/python3):
 * its client against our server and our client against its server, with the message matrix of
 * fixtures/peers.ts, with and without permessage-deflate on either side, subprotocol negotiation, and
 * close codes and reasons initiated by either side; on both shells (test/conformance/shells.ts: our
 * client runs the cases as jobs, the steps of peer.py's client jobs). One peer process
 * (fixtures/peer.py) per file. The front doors other than `serve` (node:http, HttpRouter) are the
 * Effect 3 shell's here: the Effect 4 shell's mount and route run in effect4/test.
 */
import { fileURLToPath } from "node:url"
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import { describeShells, type Step } from "../conformance/shells.js"
import { FRONT_DOORS, type FrontDoor } from "../fixtures/frontDoors.js"
import { bounded, LOCALHOST } from "../fixtures/loopback.js"
import {
  CI,
  CLOSES,
  checkPeer,
  command,
  echoSteps,
  expected,
  JsonLinesChild,
  MATRIX_RECEIVED,
  MATRIX_STEPS,
  MAX_SIZE,
  MESSAGES,
  MIB_MESSAGES,
  PYTHON,
  pythonModuleProblem,
  SERVER_SUBPROTOCOLS,
  STREAM_RECEIVED,
  STREAM_STEPS
} from "./fixtures/peers.js"

const PEER_SCRIPT = fileURLToPath(new URL("./fixtures/peer.py", import.meta.url))

const problem = pythonModuleProblem("websockets")
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
    const opened = (path: string) => peer.opened(path)
    const closed = (path: string) => peer.closed(path)
    /** Runs a client job in the peer and returns what it reported. */
    const clientJob = (job: Record<string, unknown>) => peer.request(job, 8000)

    beforeAll(async () => {
      peer = JsonLinesChild.spawn(PYTHON, [PEER_SCRIPT])
      const listening = await peer.waitFor((line) => line.event === "listening", 8000)
      ports = { deflate: listening.deflate, plain: listening.plain }
    })

    afterAll(async () => {
      await peer?.stop()
    })

    describeShells("our client, Python server", (shell) => {
      /** Our client's job against the Python server with compression `theirs`, on a path of its own. */
      const job = (theirs: Compression, steps: ReadonlyArray<Step>, options?: Record<string, unknown>) => {
        const path = nextPath()
        return Effect.map(
          shell.job({
            uri: `ws://${LOCALHOST}:${portFor(theirs)}${path}`,
            steps,
            ...(options === undefined ? {} : { options })
          }),
          (result) => ({ path, result })
        )
      }

      for (const [ours, theirs] of COMPRESSION) {
        it.scopedLive(`client compression ${label(ours)}, server compression ${label(theirs)}: echoes the matrix`, () =>
          Effect.gen(function* () {
            const { path, result } = yield* job(theirs, [...MATRIX_STEPS, { op: "close" }], {
              compression: ours,
              maxSize: MAX_SIZE
            })
            expect(result).toMatchObject({ error: null, extensions: negotiated(ours, theirs), code: 1000 })
            expect(result.received).toEqual(MATRIX_RECEIVED)
            expect((yield* opened(path)).extensions).toEqual(negotiated(ours, theirs))
            const end = yield* closed(path)
            expect(end).toMatchObject({ code: 1000, reason: "", error: null })
            expect(end.received).toEqual(MESSAGES.map(([, spec]) => expected(spec)))
          }).pipe(bounded(8000))
        )
      }

      it.scopedLive("client with default options receives 1 MiB messages, the default maxSize", () =>
        Effect.gen(function* () {
          const specs = MIB_MESSAGES
          const { result } = yield* job(null, echoSteps(specs))
          expect(result).toMatchObject({ error: null, received: specs.map(expected) })
        }).pipe(bounded())
      )

      it.scopedLive("client sends a message fragmented from a Stream", () =>
        Effect.gen(function* () {
          const { result } = yield* job("deflate", STREAM_STEPS)
          expect(result).toMatchObject({ error: null })
          expect(result.received).toEqual(STREAM_RECEIVED)
        }).pipe(bounded())
      )

      it.scopedLive("client pings, the server pongs", () =>
        Effect.gen(function* () {
          const { result } = yield* job("deflate", [{ op: "ping", data: "are you there?" }, { op: "ping" }])
          expect(result).toMatchObject({ error: null, pongs: 2 })
        }).pipe(bounded())
      )

      it.scopedLive("client offers chat.v2 and superchat: the server picks chat.v2", () =>
        Effect.gen(function* () {
          const { path, result } = yield* job(
            "deflate",
            [{ op: "send", msg: { text: "after negotiation" } }, { op: "recv" }],
            { subprotocols: ["chat.v2", "superchat"] }
          )
          expect(result).toMatchObject({
            error: null,
            subprotocol: "chat.v2",
            received: [expected({ text: "after negotiation" })]
          })
          expect((yield* opened(path)).subprotocol).toBe("chat.v2")
        }).pipe(bounded())
      )

      it.scopedLive("client offers only superchat: no subprotocol on either side", () =>
        Effect.gen(function* () {
          const { path, result } = yield* job("deflate", [], { subprotocols: ["superchat"] })
          expect(result).toMatchObject({ error: null, subprotocol: null, protocolHeaders: [] })
          expect((yield* opened(path)).subprotocol).toBeNull()
        }).pipe(bounded())
      )

      for (const { code, reason, name } of CLOSES) {
        const errorTag = code === 1000 ? null : "ConnectionClosedError"
        it.scopedLive(`client closes with ${name}: the server observes both`, () =>
          Effect.gen(function* () {
            const { path, result } = yield* job("deflate", [{ op: "close", code, reason }])
            // RFC 6455 §5.5.1: the peer echoes the status code in its Close frame.
            expect(result).toMatchObject({ error: null, code })
            expect(yield* closed(path)).toMatchObject({ code, reason, error: errorTag })
          }).pipe(bounded())
        )

        it.scopedLive(`server closes with ${name}: the client observes both`, () =>
          Effect.gen(function* () {
            const { path, result } = yield* job("deflate", [
              { op: "send", msg: { text: command({ op: "close", code, reason }) } },
              { op: "recv" }
            ])
            expect(result).toMatchObject({
              error: code === 1000 ? "ConnectionClosedOK" : "ConnectionClosedError",
              errorCode: code,
              errorReason: reason,
              code,
              reason
            })
            expect(yield* closed(path)).toMatchObject({ code })
          }).pipe(bounded())
        )
      }
    })

    describeShells("Python client, our server", (shell) => {
      /** Our server for one test, behind `door`. */
      const ourServer = (compression: Compression, door: FrontDoor = "serve") =>
        Effect.map(
          Effect.orDie(
            shell.serve("interop", { compression, maxSize: MAX_SIZE, subprotocols: SERVER_SUBPROTOCOLS }, { door })
          ),
          (server) => ({ server, uri: (path: string) => `ws://${LOCALHOST}:${server.port}${path}` })
        )

      // Behind each front door: its own listener, mounted in node:http, routed by an HttpRouter.
      for (const door of shell.name === "Effect 3" ? FRONT_DOORS : (["serve"] as const)) {
        for (const [ours, theirs] of COMPRESSION) {
          const where = door === "serve" ? "" : ` (${door})`
          it.scopedLive(
            `server compression ${label(ours)}, client compression ${label(theirs)}: echoes the matrix${where}`,
            () =>
              Effect.gen(function* () {
                const { server, uri } = yield* ourServer(ours, door)
                const path = `/ws${nextPath()}`
                const result = yield* clientJob({
                  uri: uri(path),
                  compression: theirs,
                  steps: [...MATRIX_STEPS, { op: "close", code: 1000, reason: "" }]
                })
                expect(result.error).toBeNull()
                expect(result.extensions).toEqual(negotiated(ours, theirs))
                expect(result.received).toEqual(MATRIX_RECEIVED)
                expect([result.code, result.reason]).toEqual([1000, ""])
                expect((yield* server.opened(path)).extensions).toEqual(negotiated(ours, theirs))
                const end = yield* server.closed(path)
                expect(end.received).toEqual(MESSAGES.map(([, spec]) => expected(spec)))
                expect(end).toMatchObject({ error: null, closeCode: 1000, closeReason: "" })
              }).pipe(bounded(8000))
          )
        }
      }

      it.scopedLive("server with default options receives 1 MiB messages, the default maxSize", () =>
        Effect.gen(function* () {
          const server = yield* Effect.orDie(shell.serve("interop"))
          const path = nextPath()
          const specs = MIB_MESSAGES
          const result = yield* clientJob({
            uri: `ws://${LOCALHOST}:${server.port}${path}`,
            compression: null,
            steps: echoSteps(specs)
          })
          expect(result).toMatchObject({ error: null, received: specs.map(expected) })
          expect((yield* server.closed(path)).received).toEqual(specs.map(expected))
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
          const { server, uri } = yield* ourServer("deflate")
          const path = nextPath()
          const result = yield* clientJob({
            uri: uri(path),
            compression: "deflate",
            subprotocols: ["superchat", "chat.v2"],
            steps: [{ op: "send", msg: { text: "hi" } }, { op: "recv" }]
          })
          expect(result).toMatchObject({ error: null, subprotocol: "chat.v2", received: [expected({ text: "hi" })] })
          expect((yield* server.opened(path)).subprotocol).toBe("chat.v2")
        }).pipe(bounded())
      )

      it.scopedLive("client offers only superchat: no subprotocol on either side", () =>
        Effect.gen(function* () {
          const { server, uri } = yield* ourServer("deflate")
          const path = nextPath()
          const result = yield* clientJob({
            uri: uri(path),
            compression: "deflate",
            subprotocols: ["superchat"],
            steps: []
          })
          expect(result).toMatchObject({ error: null, subprotocol: null })
          expect((yield* server.opened(path)).subprotocol).toBeNull()
        }).pipe(bounded())
      )

      for (const { code, reason, name } of CLOSES) {
        const errorTag = code === 1000 ? null : "ConnectionClosedError"
        it.scopedLive(`client closes with ${name}: the server observes both`, () =>
          Effect.gen(function* () {
            const { server, uri } = yield* ourServer("deflate")
            const path = nextPath()
            const result = yield* clientJob({ uri: uri(path), steps: [{ op: "close", code, reason }] })
            expect(result).toMatchObject({ error: null, code })
            expect(yield* server.closed(path)).toEqual({
              path,
              received: [],
              error: errorTag,
              errorCode: errorTag === null ? null : code,
              errorReason: errorTag === null ? null : reason,
              closeCode: code,
              closeReason: reason
            })
          }).pipe(bounded())
        )

        it.scopedLive(`server closes with ${name}: the client observes both`, () =>
          Effect.gen(function* () {
            const { server, uri } = yield* ourServer("deflate")
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
            expect(yield* server.closed(path)).toMatchObject({ closeCode: code })
          }).pipe(bounded())
        )
      }

      it.scopedLive("server shuts down: the client observes 1001", () =>
        Effect.gen(function* () {
          const { server, uri } = yield* ourServer("deflate")
          const path = nextPath()
          const job = yield* clientJob({ uri: uri(path), steps: [{ op: "wait_closed" }] }).pipe(Effect.fork)
          yield* server.opened(path)
          yield* server.close
          const result = yield* job.await.pipe(Effect.flatten)
          expect(result).toMatchObject({ error: null, code: 1001 })
        }).pipe(bounded())
      )
    })
  })
})
