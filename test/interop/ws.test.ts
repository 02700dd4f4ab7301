/**
 * Interoperability with the `ws` package (dev dependency, run in this process): its client against
 * our server and our client against its server, with the message matrix of fixtures/peers.ts, with
 * and without permessage-deflate on either side (theirs with `threshold: 0`, so that even empty
 * messages are compressed), subprotocol negotiation, and close codes and reasons initiated by either
 * side; on both shells (test/conformance/shells.ts: our client runs the cases as jobs, the steps of
 * peer.py's client jobs, in the process of the shell under test).
 */
import type { IncomingMessage } from "node:http"
import type { AddressInfo } from "node:net"
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import { type RawData, WebSocketServer as WsServer, WebSocket as WsWebSocket } from "ws"
import type { Data } from "../../src/WebSocket.js"
import { describeShells, type Step } from "../conformance/shells.js"
import { bounded, LOCALHOST } from "../fixtures/loopback.js"
import {
  build,
  CLOSES,
  command,
  describeData,
  echoSteps,
  expected,
  extensionNames,
  MATRIX_RECEIVED,
  MATRIX_STEPS,
  MAX_SIZE,
  MESSAGES,
  type MessageSpec,
  MIB_MESSAGES,
  PEER_FRAGMENTED,
  SERVER_SUBPROTOCOLS,
  STREAM_RECEIVED,
  STREAM_STEPS
} from "./fixtures/peers.js"

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
// threshold 0: ws compresses every message, even empty ones (its default skips those under 1 KiB).
const wsDeflate = (theirs: Compression) => (theirs === null ? false : { threshold: 0 })

const toData = (data: RawData, isBinary: boolean): Data => {
  const buffer = Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data as Buffer)
  return isBinary ? new Uint8Array(buffer) : buffer.toString("utf8")
}

/** Sends a message spec with `ws`, fragmented (fin: false on all but the last frame) if asked. */
const wsSend = (socket: WsWebSocket, spec: MessageSpec): Promise<void> => {
  const message = build(spec)
  const fragments = typeof message === "string" || message instanceof Uint8Array ? [message] : message
  const binary = typeof fragments[0] !== "string"
  return Promise.all(
    fragments.map(
      (fragment, i) =>
        new Promise<void>((resolve, reject) =>
          socket.send(fragment, { binary, fin: i === fragments.length - 1 }, (error) =>
            error ? reject(error) : resolve()
          )
        )
    )
  ).then(() => undefined)
}

/** A `ws` connection with a queue of received messages and its close event, every wait bounded. */
class WsPeer {
  readonly messages: Array<Data> = []
  readonly errors: Array<Error> = []
  readonly closed: Promise<{ code: number; reason: string }>
  private wake: (() => void) | undefined

  constructor(readonly socket: WsWebSocket) {
    socket.on("message", (data, isBinary) => {
      this.messages.push(toData(data, isBinary))
      this.wake?.()
    })
    socket.on("error", (error) => this.errors.push(error))
    this.closed = new Promise((resolve) =>
      socket.on("close", (code, reason) => {
        resolve({ code, reason: reason.toString("utf8") })
        this.wake?.()
      })
    )
  }

  static connect(uri: string, protocols: ReadonlyArray<string>, theirs: Compression): Promise<WsPeer> {
    return new Promise((resolve, reject) => {
      const socket = new WsWebSocket(uri, [...protocols], {
        perMessageDeflate: wsDeflate(theirs),
        maxPayload: MAX_SIZE
      })
      const peer = new WsPeer(socket)
      socket.once("open", () => resolve(peer))
      socket.once("error", reject)
    })
  }

  next(millis = 3000): Effect.Effect<Data> {
    return Effect.promise(
      () =>
        new Promise<Data>((resolve, reject) => {
          const timer = setTimeout(() => reject(new Error("ws peer: no message")), millis)
          const check = () => {
            const message = this.messages.shift()
            if (message !== undefined) {
              clearTimeout(timer)
              this.wake = undefined
              resolve(message)
            } else if (this.socket.readyState === WsWebSocket.CLOSED) {
              clearTimeout(timer)
              reject(new Error(`ws peer: closed (${this.errors.join("; ")})`))
            }
          }
          this.wake = check
          check()
        })
    )
  }

  send(spec: MessageSpec): Effect.Effect<void> {
    return Effect.promise(() => wsSend(this.socket, spec))
  }

  awaitClosed(millis = 3000): Effect.Effect<{ code: number; reason: string }> {
    return Effect.promise(() => this.closed).pipe(Effect.timeout(millis), Effect.orDie)
  }
}

/** What a `ws` server saw of one connection. */
interface WsConnection {
  readonly path: string
  readonly subprotocol: string
  readonly extensions: Array<string>
  readonly received: Array<ReturnType<typeof describeData>>
  readonly closed: Promise<{ code: number; reason: string }>
}

/** A `ws` server running peer.py's handler: echo, and `cmd:` messages to send or close. */
const startWsServer = (theirs: Compression) =>
  new Promise<{ server: WsServer; port: number; connections: Map<string, WsConnection> }>((resolve) => {
    const connections = new Map<string, WsConnection>()
    const server = new WsServer({
      host: LOCALHOST,
      port: 0,
      perMessageDeflate: wsDeflate(theirs),
      maxPayload: MAX_SIZE,
      handleProtocols: (protocols) => SERVER_SUBPROTOCOLS.find((p) => protocols.has(p)) ?? false
    })
    server.on("connection", (socket: WsWebSocket, request: IncomingMessage) => {
      const received: WsConnection["received"] = []
      const closed = new Promise<{ code: number; reason: string }>((done) =>
        socket.on("close", (code, reason) => done({ code, reason: reason.toString("utf8") }))
      )
      connections.set(request.url ?? "", {
        path: request.url ?? "",
        subprotocol: socket.protocol,
        extensions: extensionNames([socket.extensions]),
        received,
        closed
      })
      socket.on("error", () => {})
      socket.on("message", (data, isBinary) => {
        const message = toData(data, isBinary)
        if (typeof message === "string" && message.startsWith("cmd:")) {
          const body = JSON.parse(message.slice(4))
          if (body.op === "close") socket.close(body.code, body.reason)
          else void wsSend(socket, body.msg)
          return
        }
        received.push(describeData(message))
        socket.send(message, { binary: isBinary })
      })
    })
    server.on("listening", () => resolve({ server, port: (server.address() as AddressInfo).port, connections }))
  })

describe("interop with ws", () => {
  let counter = 0
  const nextPath = () => `/t${++counter}`
  const servers = new Map<Compression, Awaited<ReturnType<typeof startWsServer>>>()
  const wsServer = (theirs: Compression) => servers.get(theirs)!
  const wsConnection = (theirs: Compression, path: string) => {
    const connection = wsServer(theirs).connections.get(path)
    if (connection === undefined) throw new Error(`ws server saw no connection to ${path}`)
    return connection
  }

  beforeAll(async () => {
    for (const theirs of ["deflate", null] as const) servers.set(theirs, await startWsServer(theirs))
  })

  afterAll(async () => {
    for (const { server } of servers.values()) {
      for (const client of server.clients) client.terminate()
      await new Promise((resolve) => server.close(resolve))
    }
  })

  /** A `ws` client, terminated with the scope. */
  const wsClient = (uri: string, theirs: Compression = "deflate", protocols: ReadonlyArray<string> = []) =>
    Effect.acquireRelease(
      Effect.promise(() => WsPeer.connect(uri, protocols, theirs)),
      (peer) => Effect.sync(() => peer.socket.terminate())
    )

  const theirUri = (theirs: Compression, path: string) => `ws://${LOCALHOST}:${wsServer(theirs).port}${path}`

  describeShells("our client, ws server", (shell) => {
    /** Our client's job against the ws server with compression `theirs`, on a path of its own. */
    const job = (theirs: Compression, steps: ReadonlyArray<Step>, options?: Record<string, unknown>) => {
      const path = nextPath()
      return Effect.map(
        shell.job({ uri: theirUri(theirs, path), steps, ...(options === undefined ? {} : { options }) }),
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
          const connection = wsConnection(theirs, path)
          expect(connection.extensions).toEqual(negotiated(ours, theirs))
          expect(yield* Effect.promise(() => connection.closed)).toEqual({ code: 1000, reason: "" })
          expect(connection.received).toEqual(MESSAGES.map(([, spec]) => expected(spec)))
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
        expect(wsConnection("deflate", path).subprotocol).toBe("chat.v2")
      }).pipe(bounded())
    )

    it.scopedLive("client offers only superchat: no subprotocol on either side", () =>
      Effect.gen(function* () {
        const { path, result } = yield* job("deflate", [], { subprotocols: ["superchat"] })
        expect(result).toMatchObject({ error: null, subprotocol: null, protocolHeaders: [] })
        expect(wsConnection("deflate", path).subprotocol).toBe("")
      }).pipe(bounded())
    )

    for (const { code, reason, name } of CLOSES) {
      it.scopedLive(`client closes with ${name}: the server observes both`, () =>
        Effect.gen(function* () {
          const { path, result } = yield* job("deflate", [{ op: "close", code, reason }])
          // RFC 6455 §5.5.1: the peer echoes the status code in its Close frame.
          expect(result).toMatchObject({ error: null, code })
          expect(yield* Effect.promise(() => wsConnection("deflate", path).closed)).toEqual({ code, reason })
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
          expect((yield* Effect.promise(() => wsConnection("deflate", path).closed)).code).toBe(code)
        }).pipe(bounded())
      )
    }
  })

  describeShells("ws client, our server", (shell) => {
    const ourServer = (compression: Compression) =>
      Effect.map(
        Effect.orDie(shell.serve("interop", { compression, maxSize: MAX_SIZE, subprotocols: SERVER_SUBPROTOCOLS })),
        (server) => ({ server, uri: (path: string) => `ws://${LOCALHOST}:${server.port}${path}` })
      )

    for (const [ours, theirs] of COMPRESSION) {
      it.scopedLive(`server compression ${label(ours)}, client compression ${label(theirs)}: echoes the matrix`, () =>
        Effect.gen(function* () {
          const { server, uri } = yield* ourServer(ours)
          const path = nextPath()
          const peer = yield* wsClient(uri(path), theirs)
          expect(extensionNames([peer.socket.extensions])).toEqual(negotiated(ours, theirs))
          const received = []
          for (const [, spec] of MESSAGES) {
            yield* peer.send(spec)
            received.push(describeData(yield* peer.next()))
          }
          for (const spec of PEER_FRAGMENTED) {
            yield* peer.send({ text: command({ op: "send", msg: spec }) })
            received.push(describeData(yield* peer.next()))
          }
          expect(received).toEqual(MATRIX_RECEIVED)
          peer.socket.close(1000)
          expect(yield* peer.awaitClosed()).toEqual({ code: 1000, reason: "" })
          expect((yield* server.opened(path)).extensions).toEqual(negotiated(ours, theirs))
          const end = yield* server.closed(path)
          expect(end.received).toEqual(MESSAGES.map(([, spec]) => expected(spec)))
          expect(end).toMatchObject({ error: null, closeCode: 1000, closeReason: "" })
          expect(peer.errors).toEqual([])
        }).pipe(bounded(8000))
      )
    }

    it.scopedLive("server with default options receives 1 MiB messages, the default maxSize", () =>
      Effect.gen(function* () {
        const server = yield* Effect.orDie(shell.serve("interop"))
        const path = nextPath()
        const peer = yield* wsClient(`ws://${LOCALHOST}:${server.port}${path}`, null)
        const specs = MIB_MESSAGES
        for (const spec of specs) {
          yield* peer.send(spec)
          expect(describeData(yield* peer.next())).toEqual(expected(spec))
        }
        peer.socket.close(1000)
        expect((yield* server.closed(path)).received).toEqual(specs.map(expected))
      }).pipe(bounded())
    )

    it.scopedLive("client pings, the server pongs with the same payload", () =>
      Effect.gen(function* () {
        const { uri } = yield* ourServer("deflate")
        const peer = yield* wsClient(uri(nextPath()))
        const pong = yield* Effect.async<string>((resume) => {
          peer.socket.once("pong", (data) => resume(Effect.succeed(data.toString("utf8"))))
          peer.socket.ping("are you there?")
        })
        expect(pong).toBe("are you there?")
      }).pipe(bounded())
    )

    it.scopedLive("client offers superchat and chat.v2: the server picks chat.v2", () =>
      Effect.gen(function* () {
        const { server, uri } = yield* ourServer("deflate")
        const path = nextPath()
        const peer = yield* wsClient(uri(path), "deflate", ["superchat", "chat.v2"])
        expect(peer.socket.protocol).toBe("chat.v2")
        expect((yield* server.opened(path)).subprotocol).toBe("chat.v2")
        yield* peer.send({ text: "hi" })
        expect(yield* peer.next()).toBe("hi")
      }).pipe(bounded())
    )

    for (const { code, reason, name } of CLOSES) {
      const errorTag = code === 1000 ? null : "ConnectionClosedError"
      it.scopedLive(`client closes with ${name}: the server observes both`, () =>
        Effect.gen(function* () {
          const { server, uri } = yield* ourServer("deflate")
          const path = nextPath()
          const peer = yield* wsClient(uri(path))
          peer.socket.close(code, reason)
          // RFC 6455 §5.5.1: we echo the status code in our Close frame.
          expect((yield* peer.awaitClosed()).code).toBe(code)
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
          const peer = yield* wsClient(uri(path))
          yield* peer.send({ text: command({ op: "close", code, reason }) })
          expect(yield* peer.awaitClosed()).toEqual({ code, reason })
          expect(yield* server.closed(path)).toMatchObject({ closeCode: code })
        }).pipe(bounded())
      )
    }

    it.scopedLive("server shuts down: the client observes 1001", () =>
      Effect.gen(function* () {
        const { server, uri } = yield* ourServer("deflate")
        const path = nextPath()
        const peer = yield* wsClient(uri(path))
        yield* server.opened(path)
        yield* server.close
        expect((yield* peer.awaitClosed()).code).toBe(1001)
      }).pipe(bounded())
    )
  })
})
