/**
 * The conformance peer: plays the other end of a connection in raw bytes (a raw client against our
 * server, or a raw server against our client), runs one case of the table, and reports what the
 * implementation did (messages and pongs it sent back, its close code, whether it closed the TCP
 * connection, how its handler ended, and any frame of its own that broke RFC 6455) so that a test
 * compares it with what the case expects in one `toEqual`.
 *
 * It encodes and decodes frames with `wire.ts`, never with `src/Frames.ts`.
 */
import { spawn } from "node:child_process"
import { createHash } from "node:crypto"
import * as net from "node:net"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import * as Context from "effect/Context"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as FiberId from "effect/FiberId"
import * as Layer from "effect/Layer"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import * as Client from "../../src/Client.js"
import * as Server from "../../src/Server.js"
import type { WebSocket } from "../../src/WebSocket.js"
import { listenRaw } from "../fixtures/loopback.js"
import {
  acceptFor,
  ByteQueue,
  closePayload,
  encodeFrame,
  type FrameSpec,
  Inflater,
  isValidUtf8,
  MAX_CONTROL_PAYLOAD,
  newKey,
  Op,
  takeFrame
} from "./wire.js"

export const LOCALHOST = "127.0.0.1"

/** `maxSize` of the implementation under test: messages up to 16 MiB are echoed. */
export const MAX_SIZE = 16 * 1024 * 1024

/** Default time a case may take, from connecting to the TCP close. */
const CASE_TIMEOUT_MS = 2000

/** Time allowed for the handler to report its outcome once the TCP connection is closed. */
const OUTCOME_TIMEOUT_MS = 2000

// ---------------------------------------------------------------------------
// Cases
// ---------------------------------------------------------------------------

/** The parser error the implementation must report when it fails the connection. */
export type FailureCause = "ProtocolError" | "InvalidUtf8" | "PayloadTooBig"

/**
 * One step of the peer: write a frame (in chops of `chop` bytes), wait for replies, or pause. A
 * `Drip` writes a frame a byte per TCP segment up to and including the payload byte at `upTo`,
 * then waits (within the case's deadline) for the implementation's close frame before it writes
 * the rest: an implementation that validates as bytes arrive closes before the frame is complete.
 */
export type Step =
  | { readonly _tag: "Frame"; readonly frame: FrameSpec; readonly chop?: number | undefined }
  | { readonly _tag: "Drip"; readonly frame: FrameSpec; readonly upTo: number }
  | { readonly _tag: "Await"; readonly replies: number }
  | { readonly _tag: "Pause"; readonly millis: number }

/** Something the implementation sends back: a whole message or a pong. */
export interface Reply {
  readonly kind: "text" | "binary" | "pong"
  readonly data: Uint8Array
}

/**
 * What a case expects:
 * - `Echo`: exactly these messages and pongs come back; then the peer closes with 1000, the
 *   implementation answers 1000 and the TCP connection closes; the handler ends normally.
 * - `Close`: after these replies, the implementation's close frame carries `code`, then the TCP
 *   connection closes. With a `cause`, the implementation failed the connection (RFC 6455 §7.1.7)
 *   and its handler sees ConnectionClosedError with that cause; without one, it answered the
 *   peer's close frame.
 * - `Fail`: after these replies, the connection is failed: the TCP connection closes, with any
 *   close code or none, and the handler sees ConnectionClosedError.
 */
export type Expectation =
  | { readonly _tag: "Echo"; readonly replies: ReadonlyArray<Reply> }
  | {
      readonly _tag: "Close"
      readonly code: number
      readonly cause: FailureCause | undefined
      readonly reason?: string | undefined
      readonly replies: ReadonlyArray<Reply>
    }
  | { readonly _tag: "Fail"; readonly replies: ReadonlyArray<Reply> }

/** Length of the header `encodeFrame` writes for a frame (the mask key included when masked). */
const headerLength = (frame: FrameSpec, masked: boolean): number => {
  const length = frame.declaredLength ?? BigInt(frame.payload.length)
  const encoding = frame.encoding ?? (length <= 125n ? 7 : length <= 0xffffn ? 16 : 64)
  const mask = frame.wrongMask === true ? !masked : masked
  return 2 + (encoding === 16 ? 2 : encoding === 64 ? 8 : 0) + (mask ? 4 : 0)
}

export interface Case {
  /** Number in the style of the Autobahn testsuite (same section numbers where a case matches one). */
  readonly id: string
  readonly title: string
  readonly steps: ReadonlyArray<Step>
  readonly expect: Expectation
  /** Negotiate permessage-deflate in the handshake. */
  readonly deflate?: boolean | undefined
  readonly timeout?: number | undefined
  /** Megabytes on the wire: run against the server only. */
  readonly heavy?: boolean | undefined
}

/** The name of a case in the test report. */
export const caseName = (c: Case): string => {
  const e = c.expect
  const outcome =
    e._tag === "Echo"
      ? "echo"
      : e._tag === "Close"
        ? `close ${e.code}${e.cause === undefined ? "" : ` (${e.cause})`}`
        : "fail the connection"
  return `${c.id} ${c.title} → ${outcome}`
}

// ---------------------------------------------------------------------------
// The wire: a socket with a byte queue and bounded waits
// ---------------------------------------------------------------------------

/** A raw socket: buffers what it receives; waits are bounded by a deadline. */
export class Wire {
  readonly queue = new ByteQueue()
  /** The implementation closed its side of the TCP connection (or the socket is gone). */
  eof = false
  private ended = false
  private readonly wakers = new Set<() => void>()

  constructor(readonly socket: net.Socket) {
    socket.on("data", (chunk: Buffer) => {
      this.queue.push(chunk)
      this.wake()
    })
    socket.on("end", () => this.onEof())
    socket.on("close", () => this.onEof())
    // ECONNRESET or EPIPE: followed by 'close'.
    socket.on("error", () => {})
  }

  private onEof(): void {
    this.eof = true
    this.wake()
  }

  private wake(): void {
    const all = [...this.wakers]
    this.wakers.clear()
    for (const wake of all) wake()
  }

  write(bytes: Uint8Array | string): void {
    if (!this.ended && !this.socket.destroyed) this.socket.write(bytes)
  }

  /** Half-closes our side of the TCP connection. */
  end(): void {
    if (this.ended || this.socket.destroyed) return
    this.ended = true
    this.socket.end()
  }

  /** Re-evaluates `poll` whenever something arrives, until it returns a value or `deadline` passes. */
  until<A>(poll: () => A | undefined, deadline: number): Effect.Effect<A | undefined> {
    return Effect.async<A | undefined>((resume) => {
      let done = false
      const finish = (value: A | undefined) => {
        if (done) return
        done = true
        this.wakers.delete(check)
        clearTimeout(timer)
        resume(Effect.succeed(value))
      }
      const check = (): void => {
        if (done) return
        const value = poll()
        if (value !== undefined) finish(value)
        else this.wakers.add(check)
      }
      const timer = setTimeout(() => finish(poll()), Math.max(0, deadline - Date.now()))
      check()
      return Effect.sync(() => {
        done = true
        this.wakers.delete(check)
        clearTimeout(timer)
      })
    })
  }

  /** Reads an HTTP head (up to the empty line), leaving what follows in the queue. */
  readHead(deadline: number): Effect.Effect<string, Error> {
    return Effect.flatMap(
      this.until(() => {
        const end = this.queue.indexOf("\r\n\r\n")
        if (end >= 0) return this.queue.take(end + 4).toString("latin1")
        return this.eof ? null : undefined
      }, deadline),
      (head) =>
        typeof head === "string" ? Effect.succeed(head) : Effect.fail(new Error("no complete HTTP head received"))
    )
  }
}

/** Header values of an HTTP head by lower-case name (repeated headers joined with ", "). */
export const parseHead = (head: string): { readonly startLine: string; readonly headers: Map<string, string> } => {
  const lines = head.split("\r\n").filter((line) => line !== "")
  const headers = new Map<string, string>()
  for (const line of lines.slice(1)) {
    const colon = line.indexOf(":")
    const name = line.slice(0, colon).trim().toLowerCase()
    const value = line.slice(colon + 1).trim()
    headers.set(name, headers.has(name) ? `${headers.get(name)}, ${value}` : value)
  }
  return { startLine: lines[0] ?? "", headers }
}

const hasToken = (value: string | undefined, token: string): boolean =>
  value?.split(",").some((item) => item.trim().split(";")[0]!.trim().toLowerCase() === token) === true

// ---------------------------------------------------------------------------
// The conversation of one case
// ---------------------------------------------------------------------------

const sha1 = (data: Uint8Array): string => createHash("sha1").update(data).digest("hex").slice(0, 12)

/** A reply in the test report: short ones in full, long ones by size and hash. */
export const describeReply = (reply: Reply): string => {
  const data = Buffer.from(reply.data.buffer, reply.data.byteOffset, reply.data.byteLength)
  if (data.length > 64) return `${reply.kind} ${data.length} bytes sha1 ${sha1(data)}`
  if (reply.kind === "text") return `text ${JSON.stringify(data.toString("utf8"))}`
  return `${reply.kind} ${data.length === 0 ? "(empty)" : data.toString("hex")}`
}

/**
 * The peer's state during one case: decodes what the implementation sends, checks each frame
 * against RFC 6455 (a violation is reported, never thrown), answers its close frame and pings.
 */
class Conversation {
  readonly messages: Array<string> = []
  readonly pongs: Array<string> = []
  readonly violations: Array<string> = []
  /** Close code received (1005 for an empty close frame), or null. */
  close: number | null = null
  closeReason: string | undefined = undefined
  closeSent = false
  private fragments: Array<Buffer> | undefined = undefined
  private fragmentOpcode = 0
  private fragmentCompressed = false
  private readonly inflater = new Inflater()
  private dead = false

  constructor(
    readonly wire: Wire,
    /** Side of the implementation under test: the peer masks its frames when it is the client. */
    readonly implSide: "server" | "client",
    readonly deflate: boolean
  ) {}

  get replies(): number {
    return this.messages.length + this.pongs.length
  }

  send(frame: FrameSpec): Buffer {
    return encodeFrame(frame, this.implSide === "server")
  }

  sendClose(payload: Uint8Array): void {
    if (this.closeSent) return
    this.closeSent = true
    this.wire.write(this.send({ opcode: Op.Close, payload }))
    this.maybeCloseTcp()
  }

  /** A server closes the TCP connection once close frames went both ways (RFC 6455 §7.1.1). */
  private maybeCloseTcp(): void {
    if (this.implSide === "client" && this.closeSent && this.close !== null) this.wire.end()
  }

  private violation(detail: string): void {
    this.violations.push(detail)
  }

  /** Decodes every complete frame received so far. */
  pump(): void {
    while (!this.dead) {
      const frame = takeFrame(this.wire.queue)
      if (frame === undefined) return
      if (typeof frame === "string") {
        this.violation(frame)
        this.dead = true
        return
      }
      this.onFrame(frame)
    }
  }

  private onFrame(frame: ReturnType<typeof takeFrame> & object): void {
    const { opcode, payload } = frame
    if (this.implSide === "server" && frame.masked) this.violation("the server sent a masked frame (RFC 6455 §5.1)")
    if (this.implSide === "client" && !frame.masked) this.violation("the client sent an unmasked frame (RFC 6455 §5.1)")
    if (this.close !== null) this.violation(`frame with opcode ${opcode} after the close frame (RFC 6455 §5.5.1)`)
    if (frame.rsv2 || frame.rsv3) this.violation("RSV2/RSV3 set (RFC 6455 §5.2)")
    const control = opcode >= 0x8
    if (frame.rsv1 && (!this.deflate || control || opcode === Op.Continuation)) {
      this.violation(`RSV1 set on opcode ${opcode} (RFC 6455 §5.2, RFC 7692 §6)`)
    }
    if (control && (!frame.fin || payload.length > MAX_CONTROL_PAYLOAD)) {
      this.violation("fragmented or oversized control frame (RFC 6455 §5.5)")
    }
    switch (opcode) {
      case Op.Text:
      case Op.Binary:
        if (this.fragments !== undefined) this.violation("new data frame inside a fragmented message (RFC 6455 §5.4)")
        this.fragments = [payload]
        this.fragmentOpcode = opcode
        this.fragmentCompressed = frame.rsv1
        if (frame.fin) this.completeMessage()
        return
      case Op.Continuation:
        if (this.fragments === undefined) {
          this.violation("continuation frame without a message in progress (RFC 6455 §5.4)")
          return
        }
        this.fragments.push(payload)
        if (frame.fin) this.completeMessage()
        return
      case Op.Ping:
        // Keepalive is disabled in the tests; answer anyway, as any peer must (RFC 6455 §5.5.2).
        if (!this.closeSent) this.wire.write(this.send({ opcode: Op.Pong, payload }))
        return
      case Op.Pong:
        this.pongs.push(describeReply({ kind: "pong", data: payload }))
        return
      case Op.Close:
        this.onClose(payload)
        return
      default:
        this.violation(`reserved opcode ${opcode} (RFC 6455 §5.2)`)
    }
  }

  private completeMessage(): void {
    let data: Buffer = Buffer.concat(this.fragments!)
    this.fragments = undefined
    if (this.fragmentCompressed) {
      try {
        data = this.inflater.inflate(data, MAX_SIZE + 1)
      } catch (error) {
        this.violation(`the compressed message does not inflate: ${String(error)} (RFC 7692 §7.2.2)`)
        return
      }
    }
    const kind = this.fragmentOpcode === Op.Text ? "text" : "binary"
    if (kind === "text" && !isValidUtf8(data)) this.violation("text message with invalid UTF-8 (RFC 6455 §8.1)")
    this.messages.push(describeReply({ kind, data }))
  }

  private onClose(payload: Buffer): void {
    if (this.close !== null) return
    if (payload.length === 1) {
      this.violation("close frame with a 1-byte payload (RFC 6455 §5.5.1)")
      this.close = -1
    } else if (payload.length === 0) {
      this.close = 1005
    } else {
      this.close = payload.readUInt16BE(0)
      const reason = payload.subarray(2)
      if (!isValidUtf8(reason)) this.violation("close reason with invalid UTF-8 (RFC 6455 §5.5.1)")
      this.closeReason = reason.toString("utf8")
    }
    // Echo the close frame, as RFC 6455 §5.5.1 asks (and as the Autobahn testsuite does).
    if (!this.closeSent) this.sendClose(payload.length === 1 ? closePayload(1002) : payload)
    this.maybeCloseTcp()
  }
}

// ---------------------------------------------------------------------------
// Targets: the implementation under test, reached through a raw peer
// ---------------------------------------------------------------------------

/**
 * How the implementation's handler ended: `completed` when its messages stream ended (a normal
 * closure), else the tag of the error it failed with, with the close code it sent and the cause
 * (the parser error behind a failed connection); and the connection's `closeCode` then.
 */
export interface Outcome {
  readonly handler: string
  readonly sentCode?: number | undefined
  readonly cause?: string | undefined
  readonly closeCode?: number | undefined
}

const NO_OUTCOME: Outcome = { handler: "no outcome" }

const outcomeOf = (exit: Exit.Exit<void, unknown>, ws: WebSocket): Outcome => {
  if (Exit.isSuccess(exit)) return { handler: "completed", closeCode: ws.closeCode }
  const failure = exit.cause._tag === "Fail" ? (exit.cause.error as Record<string, any>) : undefined
  if (failure === undefined) return { handler: `defect: ${String(exit.cause)}` }
  return {
    handler: String(failure._tag),
    sentCode: failure.sentCode as number | undefined,
    cause: failure.cause?._tag as string | undefined,
    closeCode: ws.closeCode
  }
}

/** The echo handler of the brief, reporting how it ended. */
const echoOutcome = (ws: WebSocket): Effect.Effect<Outcome> =>
  Effect.map(Effect.exit(Stream.runForEach(ws.messages, (message) => ws.send(message))), (exit) => outcomeOf(exit, ws))

/** An open connection to the implementation, handshake done. */
export interface Session {
  readonly wire: Wire
  /** How the implementation's handler ended (waits for it). */
  readonly outcome: Effect.Effect<Outcome>
}

/** The implementation under test, as seen by the peer. */
export interface Target {
  readonly side: "server" | "client"
  readonly open: (deflate: boolean, deadline: number) => Effect.Effect<Session, Error, Scope.Scope>
}

/** Tag of the target of a test file (one server, or one raw listener, per file). */
export class TargetUnderTest extends Context.Tag("conformance/TargetUnderTest")<TargetUnderTest, Target>() {}

/** A TCP socket to 127.0.0.1, destroyed with the scope. */
const connectTcp = (port: number): Effect.Effect<net.Socket, Error, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.async<net.Socket, Error>((resume) => {
      // allowHalfOpen: the peer decides when to close its side (it waits for the server's FIN).
      const socket = net.connect({ host: LOCALHOST, port, allowHalfOpen: true })
      socket.setNoDelay(true)
      socket.once("error", (error) => resume(Effect.fail(error)))
      socket.once("connect", () => resume(Effect.succeed(socket)))
    }),
    (socket) => Effect.sync(() => socket.destroy())
  )

/** Outcomes of the server's handlers, by the client's port. */
class Outcomes {
  private readonly byPort = new Map<number, Deferred.Deferred<Outcome>>()

  private slot(port: number): Deferred.Deferred<Outcome> {
    let slot = this.byPort.get(port)
    if (slot === undefined) {
      slot = Deferred.unsafeMake<Outcome>(FiberId.none)
      this.byPort.set(port, slot)
    }
    return slot
  }

  record(port: number, outcome: Outcome): void {
    Deferred.unsafeDone(this.slot(port), Exit.succeed(outcome))
  }

  await(port: number): Effect.Effect<Outcome> {
    return Deferred.await(this.slot(port)).pipe(Effect.ensuring(Effect.sync(() => this.byPort.delete(port))))
  }
}

/**
 * A raw client of the echo server listening on `port`, which performs the opening handshake itself;
 * `awaitOutcome` tells how the server's handler for the connection from a local port ended.
 */
const rawClientOf = (port: number, awaitOutcome: (localPort: number) => Effect.Effect<Outcome>): Target => {
  const open = (deflate: boolean, deadline: number) =>
    Effect.gen(function* () {
      const socket = yield* connectTcp(port)
      const wire = new Wire(socket)
      const key = newKey()
      wire.write(
        `GET /conformance HTTP/1.1\r\nHost: ${LOCALHOST}:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
          `Sec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n` +
          (deflate ? "Sec-WebSocket-Extensions: permessage-deflate\r\n" : "") +
          "\r\n"
      )
      const { headers, startLine } = parseHead(yield* wire.readHead(deadline))
      // RFC 6455 §4.2.2 step 5: what a server's 101 response must carry.
      const problems = [
        /^HTTP\/1\.1 101 /.test(startLine) ? "" : `status line ${startLine}`,
        hasToken(headers.get("upgrade"), "websocket") ? "" : "Upgrade",
        hasToken(headers.get("connection"), "upgrade") ? "" : "Connection",
        headers.get("sec-websocket-accept") === acceptFor(key) ? "" : "Sec-WebSocket-Accept",
        hasToken(headers.get("sec-websocket-extensions"), "permessage-deflate") === deflate
          ? ""
          : `Sec-WebSocket-Extensions: ${headers.get("sec-websocket-extensions")}`
      ].filter((problem) => problem !== "")
      if (problems.length > 0) return yield* Effect.fail(new Error(`bad handshake response: ${problems.join(", ")}`))
      return { wire, outcome: awaitOutcome(socket.localPort!) } satisfies Session
    })
  return { side: "server", open }
}

/**
 * Our server (`Server.serve` with the echo handler, compression available, messages up to
 * `maxSize`: 16 MiB, or the default without it) and a raw client that performs the opening
 * handshake itself.
 */
export const serverUnderTest = (maxSize: number | undefined): Layer.Layer<TargetUnderTest, unknown> =>
  Layer.scoped(
    TargetUnderTest,
    Effect.gen(function* () {
      const outcomes = new Outcomes()
      const handler = (ws: WebSocket) =>
        Effect.flatMap(echoOutcome(ws), (outcome) =>
          Effect.sync(() => {
            const remote = ws.remoteAddress
            if (remote?._tag === "TcpAddress") outcomes.record(remote.port, outcome)
          })
        )
      const server = yield* Server.serve(handler, {
        host: LOCALHOST,
        port: 0,
        ...(maxSize === undefined ? {} : { maxSize }),
        pingInterval: null,
        closeTimeout: "3 seconds"
      })
      if (server.address._tag !== "TcpAddress") return yield* Effect.dieMessage("not a TCP server")
      return rawClientOf(server.address.port, (localPort) => outcomes.await(localPort))
    })
  )

/**
 * The same echo server built with the Effect 4 shell (`effect4/test/fixtures/echoServer.ts`), in a
 * process of its own run by vite-node from effect4/ (so that it loads effect 4), with the same raw
 * client: the conformance cases run against both shells without being copied. The server reports
 * its handlers' outcomes as JSON lines on stdout.
 */
export const effect4ServerUnderTest = (maxSize: number | undefined): Layer.Layer<TargetUnderTest, unknown> =>
  Layer.scoped(
    TargetUnderTest,
    Effect.gen(function* () {
      const outcomes = new Outcomes()
      const listening = Deferred.unsafeMake<number>(FiberId.none)
      yield* effect4Process("echoServer.ts", maxSize === undefined ? {} : { MAX_SIZE: String(maxSize) }, (line) => {
        if (line.port !== undefined) Deferred.unsafeDone(listening, Exit.succeed(line.port as number))
        else if (line.remotePort !== undefined) outcomes.record(line.remotePort, line.outcome as Outcome)
      })
      // Loading effect 4 under vite-node takes seconds: the cases' deadlines start once it listens.
      const port = yield* Deferred.await(listening).pipe(
        Effect.timeoutFail({ duration: "50 seconds", onTimeout: () => new Error("the Effect 4 server did not start") })
      )
      return rawClientOf(port, (localPort) => outcomes.await(localPort))
    })
  )

/** {@link serverUnderTest} with 16 MiB messages. */
export const ServerUnderTest: Layer.Layer<TargetUnderTest, unknown> = serverUnderTest(MAX_SIZE)

/** A raw TCP listener on port 0 handing out accepted sockets; everything is destroyed with the scope. */
export const rawListener = (): Effect.Effect<
  { readonly port: number; readonly accept: Effect.Effect<net.Socket, never, Scope.Scope> },
  never,
  Scope.Scope
> =>
  Effect.map(
    listenRaw((socket) => {
      socket.setNoDelay(true)
      return socket
    }),
    ({ accept, port }) => ({
      port,
      accept: Effect.acquireRelease(accept, (socket) => Effect.sync(() => socket.destroy()))
    })
  )

/** The raw TCP listener that plays the server against our client. */
export class RawServer extends Context.Tag("conformance/RawServer")<
  RawServer,
  { readonly port: number; readonly accept: Effect.Effect<net.Socket, never, Scope.Scope> }
>() {}

/** Options of our client in the conformance runs. */
export const clientOptions = {
  maxSize: MAX_SIZE,
  pingInterval: null,
  closeTimeout: "3 seconds",
  openTimeout: "3 seconds"
} as const

/**
 * Accepts the client's connection on a raw socket and checks its opening handshake request
 * (RFC 6455 §4.1); returns the wire, the key and the request head.
 */
export const acceptRequest = (
  accept: Effect.Effect<net.Socket, never, Scope.Scope>,
  deadline: number
): Effect.Effect<{ readonly wire: Wire; readonly key: string; readonly head: string }, Error, Scope.Scope> =>
  Effect.gen(function* () {
    const socket = yield* accept
    const wire = new Wire(socket)
    const head = yield* wire.readHead(deadline)
    const { headers, startLine } = parseHead(head)
    const key = headers.get("sec-websocket-key") ?? ""
    const problems = [
      /^GET \S+ HTTP\/1\.1$/.test(startLine) ? "" : `request line ${startLine}`,
      headers.has("host") ? "" : "Host",
      hasToken(headers.get("upgrade"), "websocket") ? "" : "Upgrade",
      hasToken(headers.get("connection"), "upgrade") ? "" : "Connection",
      Buffer.from(key, "base64").length === 16 ? "" : "Sec-WebSocket-Key",
      headers.get("sec-websocket-version") === "13" ? "" : "Sec-WebSocket-Version"
    ].filter((problem) => problem !== "")
    if (problems.length > 0) return yield* Effect.fail(new Error(`bad handshake request: ${problems.join(", ")}`))
    return { wire, key, head }
  })

/** The 101 response of a raw server (RFC 6455 §4.2.2). */
export const switchingProtocols = (key: string, extra = ""): string =>
  "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
  `Sec-WebSocket-Accept: ${acceptFor(key)}\r\n${extra}\r\n`

/**
 * Our client (`Client.connect`, compression offered, 16 MiB messages unless `options` say
 * otherwise) running the echo handler, against a raw server that performs the opening handshake
 * itself.
 */
export const clientUnderTest = (
  options: Client.ConnectOptions = clientOptions
): Layer.Layer<TargetUnderTest | RawServer> =>
  Layer.effect(
    TargetUnderTest,
    Effect.gen(function* () {
      const listener = yield* RawServer
      const open = (deflate: boolean, deadline: number) =>
        Effect.gen(function* () {
          const connecting = yield* Effect.forkScoped(
            Client.connect(`ws://${LOCALHOST}:${listener.port}/conformance`, options)
          )
          const { wire, key, head } = yield* acceptRequest(listener.accept, deadline)
          const offer = parseHead(head).headers.get("sec-websocket-extensions")
          if (deflate && !hasToken(offer, "permessage-deflate")) {
            return yield* Effect.fail(new Error(`permessage-deflate not offered: ${offer}`))
          }
          wire.write(switchingProtocols(key, deflate ? "Sec-WebSocket-Extensions: permessage-deflate\r\n" : ""))
          const ws = yield* Fiber.join(connecting).pipe(
            Effect.mapError((error) => new Error(`connect failed: ${JSON.stringify(error)}`))
          )
          const handler = yield* Effect.forkScoped(echoOutcome(ws))
          return { wire, outcome: Fiber.join(handler) } satisfies Session
        })
      return { side: "client", open } satisfies Target
    })
  ).pipe(Layer.provideMerge(Layer.scoped(RawServer, rawListener())))

/** {@link clientUnderTest} with 16 MiB messages. */
export const ClientUnderTest: Layer.Layer<TargetUnderTest | RawServer> = clientUnderTest()

/**
 * Starts `effect4/test/fixtures/<script>` with vite-node from effect4/ (so that it loads effect 4),
 * on the node that runs the tests, with `nodeOptions` (such as `--expose-gc`) given to node.
 */
export const spawnEffect4 = (
  script: string,
  env: Record<string, string>,
  stdio: ["pipe", "pipe", "inherit" | "pipe"],
  nodeOptions: ReadonlyArray<string> = []
) => {
  const effect4 = fileURLToPath(new URL("../../effect4", import.meta.url))
  return spawn(
    process.execPath,
    [
      ...nodeOptions,
      join(effect4, "..", "node_modules", "vite-node", "vite-node.mjs"),
      "--root",
      ".",
      `test/fixtures/${script}`
    ],
    { cwd: effect4, env: { ...process.env, ...env }, stdio }
  )
}

/**
 * A process of the Effect 4 shell run by vite-node from effect4/ (`test/fixtures/<script>`), with
 * the JSON lines it writes on stdout handed to `onLine`; killed with the scope.
 */
const effect4Process = (script: string, env: Record<string, string>, onLine: (line: Record<string, any>) => void) =>
  Effect.acquireRelease(
    Effect.sync(() => {
      const child = spawnEffect4(script, env, ["pipe", "pipe", "inherit"])
      let buffered = ""
      child.stdout!.on("data", (chunk: Buffer) => {
        buffered += chunk.toString("utf8")
        let newline = buffered.indexOf("\n")
        while (newline >= 0) {
          onLine(JSON.parse(buffered.slice(0, newline)) as Record<string, any>)
          buffered = buffered.slice(newline + 1)
          newline = buffered.indexOf("\n")
        }
      })
      return child
    }),
    (child) => Effect.sync(() => child.kill("SIGKILL"))
  )

/**
 * The Effect 4 shell's client (`effect4/test/fixtures/echoClient.ts`, one process for the file)
 * running the echo handler with `options`, against the same raw server as {@link clientUnderTest}:
 * the client conformance cases run against both shells without being copied.
 */
export const effect4ClientUnderTest = (
  options: Client.ConnectOptions = clientOptions
): Layer.Layer<TargetUnderTest | RawServer, unknown> =>
  Layer.scoped(
    TargetUnderTest,
    Effect.gen(function* () {
      const listener = yield* RawServer
      const connected = new Map<number, Deferred.Deferred<void, Error>>()
      const outcomes = new Outcomes()
      const ready = Deferred.unsafeMake<void>(FiberId.none)
      const child = yield* effect4Process("echoClient.ts", {}, (line) => {
        if (line.ready === true) return void Deferred.unsafeDone(ready, Exit.void)
        const slot = connected.get(line.id)
        if (line.connected === true && slot !== undefined) Deferred.unsafeDone(slot, Exit.void)
        else if (line.error !== undefined && slot !== undefined)
          Deferred.unsafeDone(slot, Exit.fail(new Error(`connect failed: ${line.error}`)))
        else if (line.outcome !== undefined) outcomes.record(line.id, line.outcome as Outcome)
      })
      // Loading effect 4 under vite-node takes seconds: the cases' deadlines start once it is done.
      yield* Deferred.await(ready).pipe(
        Effect.timeoutFail({ duration: "50 seconds", onTimeout: () => new Error("the Effect 4 client did not start") })
      )
      let nextId = 0
      const open = (deflate: boolean, deadline: number) =>
        Effect.gen(function* () {
          const id = nextId++
          const slot = Deferred.unsafeMake<void, Error>(FiberId.none)
          connected.set(id, slot)
          child.stdin!.write(
            `${JSON.stringify({ id, uri: `ws://${LOCALHOST}:${listener.port}/conformance`, options })}\n`
          )
          const { wire, key, head } = yield* acceptRequest(listener.accept, deadline)
          const offer = parseHead(head).headers.get("sec-websocket-extensions")
          if (deflate && !hasToken(offer, "permessage-deflate")) {
            return yield* Effect.fail(new Error(`permessage-deflate not offered: ${offer}`))
          }
          wire.write(switchingProtocols(key, deflate ? "Sec-WebSocket-Extensions: permessage-deflate\r\n" : ""))
          yield* Deferred.await(slot).pipe(Effect.ensuring(Effect.sync(() => connected.delete(id))))
          return { wire, outcome: outcomes.await(id) } satisfies Session
        })
      return { side: "client", open } satisfies Target
    })
  ).pipe(Layer.provideMerge(Layer.scoped(RawServer, rawListener())))

// ---------------------------------------------------------------------------
// Running a case
// ---------------------------------------------------------------------------

/** What the implementation did, in the shape `expected` builds for comparison. */
export interface Observed {
  readonly messages: ReadonlyArray<string>
  readonly pongs: ReadonlyArray<string>
  /** Close code of the implementation's close frame (1005: empty), null without one. */
  readonly close?: number | null
  readonly reason?: string | undefined
  readonly tcpClosed: boolean
  readonly violations: ReadonlyArray<string>
  readonly outcome: Outcome
  /** With `Drip` steps: whether the close frame arrived before the rest of each dripped frame was written. */
  readonly closedMidFrame?: ReadonlyArray<boolean>
}

const OK_CODES = new Set([1000, 1001])

/** The observation a case expects. */
export const expected = (e: Expectation, steps: ReadonlyArray<Step> = []): Observed => {
  const drips = steps.filter((step) => step._tag === "Drip").map(() => true)
  const dripped = drips.length > 0 ? { closedMidFrame: drips } : {}
  const messages = e.replies.filter((r) => r.kind !== "pong").map(describeReply)
  const pongs = e.replies.filter((r) => r.kind === "pong").map(describeReply)
  switch (e._tag) {
    case "Echo":
      return {
        messages,
        pongs,
        close: 1000,
        tcpClosed: true,
        violations: [],
        outcome: { handler: "completed", closeCode: 1000 }
      }
    case "Close":
      return {
        ...dripped,
        messages,
        pongs,
        close: e.code,
        ...(e.reason !== undefined ? { reason: e.reason } : {}),
        tcpClosed: true,
        violations: [],
        outcome:
          e.cause !== undefined
            ? // Failing the connection, it processes nothing more, not even our close frame (RFC 6455
              // §7.1.7): no close frame received, so its close code is 1006 (§7.1.5).
              { handler: "ConnectionClosedError", sentCode: e.code, cause: e.cause, closeCode: 1006 }
            : OK_CODES.has(e.code)
              ? { handler: "completed", closeCode: e.code }
              : { handler: "ConnectionClosedError", sentCode: e.code, closeCode: e.code }
      }
    case "Fail":
      return { messages, pongs, tcpClosed: true, violations: [], outcome: { handler: "ConnectionClosedError" } }
  }
}

const nextTick = Effect.promise(() => new Promise<void>((resolve) => setImmediate(resolve)))

const realSleep = (millis: number) => Effect.promise(() => new Promise<void>((resolve) => setTimeout(resolve, millis)))

/**
 * Runs one case against the target and returns what happened, projected on what the case's
 * expectation looks at. Every wait is bounded by the case's deadline.
 */
export const runCase = (target: Target, c: Case): Effect.Effect<Observed, Error> =>
  Effect.scoped(
    Effect.gen(function* () {
      const deadline = Date.now() + (c.timeout ?? CASE_TIMEOUT_MS)
      const deflate = c.deflate === true
      const session = yield* target.open(deflate, deadline)
      const wire = session.wire
      const talk = new Conversation(wire, target.side, deflate)
      const settled = () => talk.close !== null || wire.eof
      const closedMidFrame: Array<boolean> = []
      for (const step of c.steps) {
        if (step._tag === "Frame") {
          const bytes = talk.send(step.frame)
          if (step.chop === undefined) {
            wire.write(bytes)
          } else {
            for (let i = 0; i < bytes.length; i += step.chop) {
              wire.write(bytes.subarray(i, i + step.chop))
              // One write per event-loop turn, so that the chops travel as separate segments.
              yield* nextTick
            }
          }
        } else if (step._tag === "Drip") {
          const bytes = talk.send(step.frame)
          const stop = headerLength(step.frame, target.side === "server") + step.upTo + 1
          for (let i = 0; i < stop; i++) {
            wire.write(bytes.subarray(i, i + 1))
            yield* nextTick
          }
          const closed = yield* wire.until(() => {
            talk.pump()
            return settled() ? true : undefined
          }, deadline)
          closedMidFrame.push(closed === true && talk.close !== null)
          wire.write(bytes.subarray(stop))
        } else if (step._tag === "Await") {
          yield* wire.until(() => {
            talk.pump()
            return talk.replies >= step.replies || settled() ? true : undefined
          }, deadline)
        } else {
          yield* realSleep(step.millis)
        }
      }
      const e = c.expect
      if (e._tag === "Echo") {
        const count = e.replies.length
        yield* wire.until(() => {
          talk.pump()
          return talk.replies >= count || settled() ? true : undefined
        }, deadline)
        talk.sendClose(closePayload(1000))
      }
      // Until the implementation closes the TCP connection (a raw server closes its side first).
      yield* wire.until(() => {
        talk.pump()
        return wire.eof ? true : undefined
      }, deadline)
      talk.pump()
      wire.end()
      const outcome = wire.eof
        ? yield* session.outcome.pipe(
            Effect.timeoutTo({
              duration: OUTCOME_TIMEOUT_MS,
              onSuccess: (outcome): Outcome => outcome,
              onTimeout: (): Outcome => NO_OUTCOME
            })
          )
        : NO_OUTCOME
      const observed: Observed = {
        ...(closedMidFrame.length > 0 ? { closedMidFrame } : {}),
        messages: talk.messages,
        pongs: talk.pongs,
        close: talk.close,
        ...(e._tag === "Close" && e.reason !== undefined ? { reason: talk.closeReason } : {}),
        tcpClosed: wire.eof,
        violations: talk.violations,
        outcome
      }
      if (e._tag !== "Fail") return observed
      // A failed connection may close with any code, or none.
      const { close: _close, ...rest } = observed
      return { ...rest, outcome: { handler: outcome.handler } }
    })
  )
