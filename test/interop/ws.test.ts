/**
 * Interoperability with the `ws` package (dev dependency, run in this process): its client against
 * our server and our client against its server, with the message matrix of fixtures/peers.ts, with
 * and without permessage-deflate on either side (theirs with `threshold: 0`, so that even empty
 * messages are compressed), subprotocol negotiation, and close codes and reasons initiated by either
 * side.
 */
import type { IncomingMessage } from "node:http"
import type { AddressInfo } from "node:net"
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Stream from "effect/Stream"
import { type RawData, WebSocketServer as WsServer, WebSocket as WsWebSocket } from "ws"
import * as Client from "../../src/Client.js"
import * as Server from "../../src/Server.js"
import type { Data } from "../../src/WebSocket.js"
import { bounded, LOCALHOST, portOf } from "../fixtures/loopback.js"
import {
  build,
  CLOSES,
  command,
  connectionTo,
  describeData,
  expected,
  extensionNames,
  interopHandler,
  MAX_SIZE,
  MESSAGES,
  type MessageSpec,
  MiB,
  PEER_FRAGMENTED,
  SERVER_SUBPROTOCOLS,
  type ServerLog
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

const matrixReceived = [...MESSAGES.map(([, spec]) => expected(spec)), ...PEER_FRAGMENTED.map(expected)]

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

  const ourServer = (compression: Compression) =>
    Effect.gen(function* () {
      const log: ServerLog = new Map()
      const server = yield* Server.serve(interopHandler(log), {
        host: LOCALHOST,
        port: 0,
        compression,
        maxSize: MAX_SIZE,
        subprotocols: SERVER_SUBPROTOCOLS
      })
      return { server, log, uri: (path: string) => `ws://${LOCALHOST}:${portOf(server)}${path}` }
    })

  /** A `ws` client, terminated with the scope. */
  const wsClient = (uri: string, theirs: Compression = "deflate", protocols: ReadonlyArray<string> = []) =>
    Effect.acquireRelease(
      Effect.promise(() => WsPeer.connect(uri, protocols, theirs)),
      (peer) => Effect.sync(() => peer.socket.terminate())
    )

  const theirUri = (theirs: Compression, path: string) => `ws://${LOCALHOST}:${wsServer(theirs).port}${path}`

  describe("our client, ws server", () => {
    for (const [ours, theirs] of COMPRESSION) {
      it.scopedLive(`client compression ${label(ours)}, server compression ${label(theirs)}: echoes the matrix`, () =>
        Effect.gen(function* () {
          const path = nextPath()
          const ws = yield* Client.connect(theirUri(theirs, path), { compression: ours, maxSize: MAX_SIZE })
          expect(extensionNames(ws.responseHeaders.getAll("Sec-WebSocket-Extensions"))).toEqual(
            negotiated(ours, theirs)
          )
          expect(wsConnection(theirs, path).extensions).toEqual(negotiated(ours, theirs))
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
          const connection = wsConnection(theirs, path)
          expect(yield* Effect.promise(() => connection.closed)).toEqual({ code: 1000, reason: "" })
          expect(connection.received).toEqual(MESSAGES.map(([, spec]) => expected(spec)))
        }).pipe(bounded(8000))
      )
    }

    it.scopedLive("client with default options receives 1 MiB messages, the default maxSize", () =>
      Effect.gen(function* () {
        const ws = yield* Client.connect(theirUri(null, nextPath()))
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
        const ws = yield* Client.connect(theirUri("deflate", nextPath()))
        yield* ws.send(Stream.make("str", "", "eam \u{1f600}"))
        expect(yield* ws.recv).toBe("stream \u{1f600}")
        yield* ws.send(Stream.fromIterable([new Uint8Array([1]), new Uint8Array([2, 3])]))
        expect(yield* ws.recv).toEqual(new Uint8Array([1, 2, 3]))
      }).pipe(bounded())
    )

    it.scopedLive("client pings, the server pongs", () =>
      Effect.gen(function* () {
        const ws = yield* Client.connect(theirUri("deflate", nextPath()))
        const pong = yield* ws.ping("are you there?")
        expect(yield* pong).toBeGreaterThanOrEqual(0)
        const defaultPong = yield* ws.ping()
        expect(yield* defaultPong).toBeGreaterThanOrEqual(0)
      }).pipe(bounded())
    )

    it.scopedLive("client offers chat.v2 and superchat: the server picks chat.v2", () =>
      Effect.gen(function* () {
        const path = nextPath()
        const ws = yield* Client.connect(theirUri("deflate", path), { subprotocols: ["chat.v2", "superchat"] })
        expect(ws.subprotocol).toBe("chat.v2")
        expect(wsConnection("deflate", path).subprotocol).toBe("chat.v2")
        yield* ws.send("after negotiation")
        expect(yield* ws.recv).toBe("after negotiation")
      }).pipe(bounded())
    )

    it.scopedLive("client offers only superchat: no subprotocol on either side", () =>
      Effect.gen(function* () {
        const path = nextPath()
        const ws = yield* Client.connect(theirUri("deflate", path), { subprotocols: ["superchat"] })
        expect(ws.subprotocol).toBeUndefined()
        expect(ws.responseHeaders.has("Sec-WebSocket-Protocol")).toBe(false)
        expect(wsConnection("deflate", path).subprotocol).toBe("")
      }).pipe(bounded())
    )

    for (const { code, reason, name } of CLOSES) {
      it.scopedLive(`client closes with ${name}: the server observes both`, () =>
        Effect.gen(function* () {
          const path = nextPath()
          const ws = yield* Client.connect(theirUri("deflate", path))
          yield* ws.close(code, reason)
          // RFC 6455 §5.5.1: the peer echoes the status code in its Close frame.
          expect(ws.closeCode).toBe(code)
          expect(yield* Effect.promise(() => wsConnection("deflate", path).closed)).toEqual({ code, reason })
        }).pipe(bounded())
      )

      it.scopedLive(`server closes with ${name}: the client observes both`, () =>
        Effect.gen(function* () {
          const path = nextPath()
          const ws = yield* Client.connect(theirUri("deflate", path))
          yield* ws.send(command({ op: "close", code, reason }))
          const error = yield* Effect.flip(ws.recv)
          expect(error).toMatchObject({
            _tag: code === 1000 ? "ConnectionClosedOK" : "ConnectionClosedError",
            code,
            reason
          })
          yield* ws.waitClosed
          expect([ws.closeCode, ws.closeReason]).toEqual([code, reason])
          expect((yield* Effect.promise(() => wsConnection("deflate", path).closed)).code).toBe(code)
        }).pipe(bounded())
      )
    }
  })

  describe("ws client, our server", () => {
    for (const [ours, theirs] of COMPRESSION) {
      it.scopedLive(`server compression ${label(ours)}, client compression ${label(theirs)}: echoes the matrix`, () =>
        Effect.gen(function* () {
          const { log, uri } = yield* ourServer(ours)
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
          expect(received).toEqual(matrixReceived)
          peer.socket.close(1000)
          expect(yield* peer.awaitClosed()).toEqual({ code: 1000, reason: "" })
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
          expect(peer.errors).toEqual([])
        }).pipe(bounded(8000))
      )
    }

    it.scopedLive("server with default options receives 1 MiB messages, the default maxSize", () =>
      Effect.gen(function* () {
        const log: ServerLog = new Map()
        const server = yield* Server.serve(interopHandler(log), { host: LOCALHOST, port: 0 })
        const path = nextPath()
        const peer = yield* wsClient(`ws://${LOCALHOST}:${portOf(server)}${path}`, null)
        const specs = [
          { pattern: "text", size: MiB },
          { pattern: "binary", size: MiB }
        ] as const
        for (const spec of specs) {
          yield* peer.send(spec)
          expect(describeData(yield* peer.next())).toEqual(expected(spec))
        }
        const record = yield* Deferred.await(connectionTo(log, path))
        expect(record.received).toEqual(specs.map(expected))
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
        const { log, uri } = yield* ourServer("deflate")
        const path = nextPath()
        const peer = yield* wsClient(uri(path), "deflate", ["superchat", "chat.v2"])
        expect(peer.socket.protocol).toBe("chat.v2")
        const record = yield* Deferred.await(connectionTo(log, path))
        expect(record.ws.subprotocol).toBe("chat.v2")
        yield* peer.send({ text: "hi" })
        expect(yield* peer.next()).toBe("hi")
      }).pipe(bounded())
    )

    for (const { code, reason, name } of CLOSES) {
      const errorTag = code === 1000 ? undefined : "ConnectionClosedError"
      it.scopedLive(`client closes with ${name}: the server observes both`, () =>
        Effect.gen(function* () {
          const { log, uri } = yield* ourServer("deflate")
          const path = nextPath()
          const peer = yield* wsClient(uri(path))
          peer.socket.close(code, reason)
          // RFC 6455 §5.5.1: we echo the status code in our Close frame.
          expect((yield* peer.awaitClosed()).code).toBe(code)
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
          const peer = yield* wsClient(uri(path))
          yield* peer.send({ text: command({ op: "close", code, reason }) })
          expect(yield* peer.awaitClosed()).toEqual({ code, reason })
          const record = yield* Deferred.await(connectionTo(log, path))
          expect(yield* Deferred.await(record.closed)).toMatchObject({ closeCode: code })
        }).pipe(bounded())
      )
    }

    it.scopedLive("server shuts down: the client observes 1001", () =>
      Effect.gen(function* () {
        const { server, log, uri } = yield* ourServer("deflate")
        const path = nextPath()
        const peer = yield* wsClient(uri(path))
        yield* Deferred.await(connectionTo(log, path))
        yield* server.close
        expect((yield* peer.awaitClosed()).code).toBe(1001)
      }).pipe(bounded())
    )
  })
})
