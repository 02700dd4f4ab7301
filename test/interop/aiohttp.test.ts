/**
 * Interoperability with aiohttp (Debian's python3-aiohttp 3.8, run by /usr/bin/python3), on both
 * shells (test/conformance/shells.ts): its client against our server and our client against its
 * server, with the message matrix of fixtures/peers.ts (text and binary, empty to 1 MiB, fragmented
 * by us; aiohttp sends no fragments), permessage-deflate at the window sizes aiohttp asks for
 * (`compress=9..15`: server_max_window_bits), pings, subprotocols, and close codes and reasons
 * initiated by either side. One peer process (fixtures/aiohttp_peer.py) per shell.
 *
 * aiohttp answers a close frame with 1000 whatever its code (it does not echo the code, RFC 6455
 * §5.5.1 says "typically"), so the side that closes sees 1000 back; the side that is closed sees
 * the code and reason sent.
 */
import { fileURLToPath } from "node:url"
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import { describeShells, type Job, type Step } from "../conformance/shells.js"
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
  SERVER_SUBPROTOCOLS
} from "./fixtures/peers.js"

const PEER_SCRIPT = fileURLToPath(new URL("./fixtures/aiohttp_peer.py", import.meta.url))

const problem = pythonModuleProblem("aiohttp")
const available = checkPeer("aiohttp", problem)

/** aiohttp's `compress`: 0 offers nothing; 9..15 offers permessage-deflate with that server window. */
const AIOHTTP_COMPRESS = [0, 9, 11, 15] as const

describe("interop with aiohttp", () => {
  if (!available && CI) {
    it("python3-aiohttp is installed (required in CI)", () => {
      expect.fail(problem)
    })
  }

  describe.skipIf(!available)("peer", () => {
    let peer: JsonLinesChild
    let port: number
    let counter = 0
    const nextPath = (prefix: "plain" | "deflate") => `/${prefix}/t${++counter}`
    const opened = (path: string) => peer.opened(path)
    const closed = (path: string) => peer.closed(path)
    /** Runs a client job in aiohttp and returns what it reported. */
    const aiohttpJob = (job: Record<string, unknown>) => peer.request(job, 20_000)

    beforeAll(async () => {
      peer = JsonLinesChild.spawn(PYTHON, [PEER_SCRIPT])
      port = (await peer.waitFor((line) => line.event === "listening", 8000)).port
    })

    afterAll(async () => {
      await peer?.stop()
    })

    describeShells("our client, aiohttp server", (shell) => {
      const job = (prefix: "plain" | "deflate", steps: ReadonlyArray<Step>, options?: Record<string, unknown>) => {
        const path = nextPath(prefix)
        const spec: Job = {
          uri: `ws://${LOCALHOST}:${port}${path}`,
          steps,
          ...(options === undefined ? {} : { options })
        }
        return Effect.map(shell.job(spec), (result) => ({ path, result }))
      }

      for (const ours of ["deflate", null] as const) {
        for (const theirs of ["deflate", "plain"] as const) {
          it.scopedLive(
            `client compression ${ours ?? "off"}, server ${theirs}: echoes the matrix`,
            () =>
              Effect.gen(function* () {
                const { path, result } = yield* job(
                  theirs,
                  [...MATRIX_STEPS, { op: "close", code: 1000, reason: "" }],
                  {
                    compression: ours,
                    maxSize: MAX_SIZE
                  }
                )
                const negotiated = ours !== null && theirs === "deflate" ? ["permessage-deflate"] : []
                expect(result).toMatchObject({ error: null, extensions: negotiated, code: 1000 })
                expect(result.received).toEqual(MATRIX_RECEIVED)
                const open = yield* opened(path)
                expect(open.extensions === null ? [] : [open.extensions.split(";")[0]]).toEqual(negotiated)
                const end = yield* closed(path)
                expect(end).toMatchObject({ error: null, code: 1000 })
                expect(end.received).toEqual(MESSAGES.map(([, spec]) => expected(spec)))
              }).pipe(bounded(15_000)),
            20_000
          )
        }
      }

      it.scopedLive("client with default options exchanges 1 MiB messages, the default maxSize", () =>
        Effect.gen(function* () {
          const specs = MIB_MESSAGES
          const { result } = yield* job("plain", echoSteps(specs))
          expect(result).toMatchObject({ error: null, received: specs.map(expected) })
        }).pipe(bounded(15_000))
      )

      it.scopedLive("client sends a message fragmented from a Stream, compressed", () =>
        Effect.gen(function* () {
          const msg = { fragments: [{ text: "str" }, { text: "" }, { text: "eam \u{1f600}" }] }
          const { result } = yield* job("deflate", [{ op: "send", msg, stream: true }, { op: "recv" }])
          expect(result).toMatchObject({ error: null, extensions: ["permessage-deflate"] })
          expect(result.received).toEqual([expected({ text: "stream \u{1f600}" })])
        }).pipe(bounded())
      )

      it.scopedLive("client pings, the server pongs", () =>
        Effect.gen(function* () {
          const { result } = yield* job("deflate", [
            { op: "ping", data: "are you there?" },
            { op: "ping", data: "" }
          ])
          expect(result).toMatchObject({ error: null, pongs: 2 })
        }).pipe(bounded())
      )

      it.scopedLive("client offers superchat and chat.v2: the server picks chat.v2", () =>
        Effect.gen(function* () {
          const { path, result } = yield* job("deflate", [], { subprotocols: ["superchat", "chat.v2"] })
          expect(result).toMatchObject({ error: null, subprotocol: "chat.v2" })
          expect((yield* opened(path)).subprotocol).toBe("chat.v2")
        }).pipe(bounded())
      )

      for (const { code, reason, name } of CLOSES) {
        it.scopedLive(`client closes with ${name}: the server observes both`, () =>
          Effect.gen(function* () {
            const { path, result } = yield* job("deflate", [{ op: "close", code, reason }])
            // aiohttp answers 1000 (see above).
            expect(result).toMatchObject({ error: null, code: 1000 })
            expect(yield* closed(path)).toMatchObject({ error: null, code, reason })
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
            expect(yield* closed(path)).toMatchObject({ error: null, code })
          }).pipe(bounded())
        )
      }
    })

    describeShells("aiohttp client, our server", (shell) => {
      const ourServer = (compression: "deflate" | null, options: Record<string, unknown> = {}) =>
        Effect.map(
          shell.serve("interop", { compression, maxSize: MAX_SIZE, subprotocols: SERVER_SUBPROTOCOLS, ...options }),
          (server) => ({ server, uri: (path: string) => `ws://${LOCALHOST}:${server.port}${path}` })
        )

      for (const [ours, compress] of [
        ...AIOHTTP_COMPRESS.map((compress) => ["deflate", compress] as const),
        [null, 15] as const
      ]) {
        const title =
          compress === 0
            ? "client without compression"
            : `client compress=${compress} (server_max_window_bits${compress === 15 ? "" : `=${compress}`})`
        it.scopedLive(
          `server compression ${ours ?? "off"}, ${title}: echoes the matrix both ways`,
          () =>
            Effect.gen(function* () {
              const { server, uri } = yield* ourServer(ours)
              const path = `/ws/t${++counter}`
              const result = yield* aiohttpJob({
                uri: uri(path),
                compress,
                steps: [...MATRIX_STEPS, { op: "close", code: 1000, reason: "" }]
              })
              const negotiated = ours !== null && compress !== 0 ? ["permessage-deflate"] : []
              expect(result).toMatchObject({ error: null, extensions: negotiated, code: 1000 })
              if (compress !== 0 && compress !== 15 && ours !== null) {
                // RFC 7692 §7.1.2.1: the server accepts the window it was asked to use, and uses it.
                expect(result.extensionHeader).toMatch(new RegExp(`server_max_window_bits=${compress}\\b`))
              }
              expect(result.received).toEqual(MATRIX_RECEIVED)
              const open = yield* server.opened(path)
              expect(open.extensions).toEqual(negotiated)
              const end = yield* server.closed(path)
              expect(end).toMatchObject({ error: null, closeCode: 1000, closeReason: "" })
              expect(end.received).toEqual(MESSAGES.map(([, spec]) => expected(spec)))
            }).pipe(bounded(15_000)),
          20_000
        )
      }

      it.scopedLive("server with default options receives 1 MiB messages, the default maxSize", () =>
        Effect.gen(function* () {
          const server = yield* shell.serve("interop")
          const specs = MIB_MESSAGES
          const path = `/ws/t${++counter}`
          const result = yield* aiohttpJob({
            uri: `ws://${LOCALHOST}:${server.port}${path}`,
            compress: 0,
            steps: echoSteps(specs)
          })
          expect(result).toMatchObject({ error: null, received: specs.map(expected) })
          expect((yield* server.opened(path)).extensions).toEqual([])
        }).pipe(bounded(15_000))
      )

      it.scopedLive("client pings, the server pongs", () =>
        Effect.gen(function* () {
          const { uri } = yield* ourServer("deflate")
          const result = yield* aiohttpJob({
            uri: uri(`/ws/t${++counter}`),
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
          const path = `/ws/t${++counter}`
          const result = yield* aiohttpJob({
            uri: uri(path),
            protocols: ["superchat", "chat.v2"],
            steps: [{ op: "send", msg: { text: "hi" } }, { op: "recv" }]
          })
          expect(result).toMatchObject({ error: null, subprotocol: "chat.v2", received: [expected({ text: "hi" })] })
          expect((yield* server.opened(path)).subprotocol).toBe("chat.v2")
        }).pipe(bounded())
      )

      for (const { code, reason, name } of CLOSES) {
        it.scopedLive(`client closes with ${name}: the server observes both`, () =>
          Effect.gen(function* () {
            const { server, uri } = yield* ourServer("deflate")
            const path = `/ws/t${++counter}`
            const result = yield* aiohttpJob({ uri: uri(path), steps: [{ op: "close", code, reason }] })
            // RFC 6455 §5.5.1: our server echoes the code.
            expect(result).toMatchObject({ error: null, code })
            const errorTag = code === 1000 ? null : "ConnectionClosedError"
            expect(yield* server.closed(path)).toMatchObject({
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
            const path = `/ws/t${++counter}`
            const result = yield* aiohttpJob({
              uri: uri(path),
              steps: [{ op: "send", msg: { text: command({ op: "close", code, reason }) } }, { op: "recv" }]
            })
            expect(result).toMatchObject({ error: "closed", closeFrame: { code, reason } })
            // aiohttp answers 1000 (see above).
            expect(yield* server.closed(path)).toMatchObject({ closeCode: 1000 })
          }).pipe(bounded())
        )
      }

      it.scopedLive("server shuts down: the client observes 1001", () =>
        Effect.gen(function* () {
          const { server, uri } = yield* ourServer("deflate")
          const path = `/ws/t${++counter}`
          const job = yield* aiohttpJob({ uri: uri(path), steps: [{ op: "wait_closed" }] }).pipe(Effect.fork)
          yield* server.opened(path)
          yield* server.close
          const result = yield* job.await.pipe(Effect.flatten)
          expect(result).toMatchObject({ error: null, closeFrame: { code: 1001 } })
        }).pipe(bounded())
      )
    })
  })
})
