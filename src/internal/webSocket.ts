/**
 * The Effect connection over a Node `Duplex`: feeds the sans-I/O protocol from the socket's `'data'`
 * callback (synchronously, no fiber per chunk), writes what it produces without awaiting each write,
 * and exposes the connection API as Effects. Effect owns the structure around it: the scope, the
 * fibers for timers, the Deferreds for pongs and closure.
 */
import { randomFillSync } from "node:crypto"
import * as net from "node:net"
import type { Duplex } from "node:stream"
import { MessageChannel, type MessagePort } from "node:worker_threads"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Effectable from "effect/Effectable"
import * as Exit from "effect/Exit"
import * as Predicate from "effect/Predicate"
import * as Stream from "effect/Stream"
import { type Connection, type Event, State } from "../Connection.js"
import {
  ConcurrencyError,
  type ConnectionClosed,
  type ConnectionClosedError,
  InvalidArgument,
  type InvalidHandshakeFamily,
  InvalidMessage,
  InvalidState,
  isInvalidHandshake,
  type ProtocolError,
  type WebSocketExceptionFamily
} from "../Errors.js"
import type { Extension } from "../extensions/Extension.js"
import { CloseCode, checkClose, Frame, Opcode } from "../Frames.js"
import { Headers } from "../Headers.js"
import type { Request, Response } from "../Http11.js"
import type { ServerConnection } from "../ServerConnection.js"
import type { Address, Data, Message, Subprotocol, WebSocket, WebSocketOptions } from "../WebSocket.js"
import { defaults, resolveOptionalDuration } from "../WebSocket.js"
import { authenticatedBy } from "./authenticated.js"
import {
  awaitWakeUp,
  callback,
  completeDeferred,
  decodeDuration,
  firstError,
  isInterruptedOnly,
  isStream,
  makeDeferred,
  type RunningFiber,
  tapCause,
  type Waiter
} from "./effectCompat.js"
import { messagesStream } from "./messagesStream.js"
import * as Result from "./result.js"
import type { ConnectionSpans, MetricsRecorder, Telemetry } from "./telemetry.js"
import { decodeText } from "./text.js"
import type { Timer, Timers } from "./timers.js"

/**
 * Size of the fragments of a large message sent with compression: compressing 256 KiB takes about
 * 2 ms, so other connections wait at most about that long for the event loop.
 */
export const COMPRESSED_FRAGMENT_SIZE = 262_144

/** Texts from this size on are decoded in a turn of the event loop of their own (see `enqueue`). */
export const DECODE_LATER_FROM = 4 * 1024 * 1024

const isLargeText = (opcode: number, data: Uint8Array): boolean =>
  opcode === Opcode.Text && data.byteLength >= DECODE_LATER_FROM

/**
 * Lets pending I/O callbacks run (a macrotask: `Effect.yieldNow` only yields among fibers, and a
 * sleep would follow the TestClock).
 */
const yieldToEventLoop: Effect.Effect<void> = callback<void>((resume) => {
  const immediate = setImmediate(() => resume(Effect.void))
  return Effect.sync(() => clearImmediate(immediate))
})

/** Has an extension encode a data frame's payload ahead, off the event loop (see `Extension.encodeAhead`). */
const encodeAhead = (extension: Extension, opcode: number, data: Uint8Array, fin: boolean): Effect.Effect<void> =>
  callback<void>((resume) => {
    extension.encodeAhead!(opcode, data, fin, () => resume(Effect.void))
  })

const EMPTY = new Uint8Array(0)

/** A large message's bytes in fragments of {@link COMPRESSED_FRAGMENT_SIZE}. */
const bytesFragments = (data: Uint8Array): Array<Uint8Array> => {
  const fragments: Array<Uint8Array> = []
  for (let offset = 0; offset < data.byteLength; offset += COMPRESSED_FRAGMENT_SIZE) {
    fragments.push(data.subarray(offset, offset + COMPRESSED_FRAGMENT_SIZE))
  }
  return fragments
}

/**
 * A large text in fragments of {@link COMPRESSED_FRAGMENT_SIZE} UTF-16 code units, never between
 * the two halves of a surrogate pair, so that each fragment encodes to valid UTF-8 on its own.
 */
export const textFragments = (text: string): Array<string> => {
  const fragments: Array<string> = []
  for (let start = 0; start < text.length; ) {
    let end = Math.min(start + COMPRESSED_FRAGMENT_SIZE, text.length)
    const before = text.charCodeAt(end - 1)
    if (end < text.length && before >= 0xd800 && before <= 0xdbff) end--
    fragments.push(text.slice(start, end))
    start = end
  }
  return fragments
}

const CONCURRENT_RECV = "cannot call recv while another fiber is already waiting for the next message"

// What a reader does next (`nextRead`).
const READ_MESSAGE = 0
const READ_CLOSED = 1
const READ_WAIT = 2

/** First capacity of the buffer of a fragmented message (then doubled as needed). */
const MIN_FRAGMENTS_CAPACITY = 1024

/**
 * How long a protocol violation waits for the application to come back for messages that arrived
 * before it, when it is busy elsewhere or does not read: then the connection fails anyway.
 */
const PENDING_FAILURE_GRACE_MS = 1000

/** Options with defaults applied and durations decoded. */
export interface ResolvedOptions {
  readonly pingInterval: Duration.Duration | null
  readonly pingTimeout: Duration.Duration | null
  readonly closeTimeout: Duration.Duration
  readonly maxSize: number | null
  readonly maxQueue: number | null
  readonly readLimit: number
  readonly writeLimit: number
}

export const resolveOptions = (options: WebSocketOptions): ResolvedOptions => ({
  pingInterval: resolveOptionalDuration(options.pingInterval, defaults.pingInterval),
  pingTimeout: resolveOptionalDuration(options.pingTimeout, defaults.pingTimeout),
  // `timeout`: the seeds' deprecated alias.
  closeTimeout: decodeDuration(options.closeTimeout ?? options.timeout ?? defaults.closeTimeout),
  maxSize: options.maxSize === undefined ? defaults.maxSize : options.maxSize,
  maxQueue: options.maxQueue === undefined ? defaults.maxQueue : options.maxQueue,
  readLimit: options.readLimit ?? defaults.readLimit,
  writeLimit: options.writeLimit ?? defaults.writeLimit
})

/** Readers kept before stale ones are swept out (few fibers read one connection at once). */
const READERS_BEFORE_SWEEP = 4

interface PendingPing {
  /** Completed with the latency by the pong (application pings). */
  readonly deferred: Deferred.Deferred<number, ConnectionClosed> | undefined
  readonly sentAt: number
}

/** What a value that `send` does not accept is, for its error message. */
const describe = (value: unknown): string =>
  value === null ? "null" : typeof value !== "object" ? typeof value : (value.constructor?.name ?? "an object")

const notAMessage = (value: unknown): InvalidArgument =>
  new InvalidArgument({
    detail: `data must be a string, bytes (Uint8Array, ArrayBuffer or a view), an iterable or a Stream of fragments, got ${describe(value)}`
  })

const toBytes = (data: Data): Uint8Array => (typeof data === "string" ? Buffer.from(data, "utf8") : data)

const hex = (data: Uint8Array): string => Buffer.from(data.buffer, data.byteOffset, data.byteLength).toString("hex")

// A unix-socket net.Socket has no address properties (nor `_path`): Client and Server set the
// UnixAddress themselves, since only they know the path.
const addressOf = (host: unknown, port: unknown): Address | undefined =>
  typeof host === "string" && typeof port === "number" ? { _tag: "TcpAddress", hostname: host, port } : undefined

/** The handshake outcome delivered to the side that drives it. */
export type HandshakeEvent = Request | Response

/**
 * One WebSocket connection over one Duplex. Created by the client's `connect` and the server's
 * accept loop, which drive the opening handshake through `handshakeEvent`, then call `open`.
 */
export class WebSocketImpl implements WebSocket {
  path = ""
  // The handshake's headers, set when it completes; empty ones made only if read before (two
  // `Headers` per connection that nearly always went straight to garbage).
  private handshakeRequestHeaders: Headers | undefined = undefined
  private handshakeResponseHeaders: Headers | undefined = undefined
  get requestHeaders(): Headers {
    this.handshakeRequestHeaders ??= new Headers()
    return this.handshakeRequestHeaders
  }
  get responseHeaders(): Headers {
    this.handshakeResponseHeaders ??= new Headers()
    return this.handshakeResponseHeaders
  }
  subprotocol: Subprotocol | undefined = undefined
  localAddress: Address | undefined
  remoteAddress: Address | undefined

  /**
   * Called once with the outcome of the opening handshake: the request (server) or the response
   * (client), or the failure. For drivers that need no fiber to wait for it.
   */
  onHandshake: ((exit: Exit.Exit<HandshakeEvent, InvalidHandshakeFamily>, ws: WebSocketImpl) => void) | undefined =
    undefined
  /**
   * The request (server) or response (client) of a handshake that succeeded; a failed one has
   * `handshakeError`. Not its Exit: a connection keeps this for its life.
   */
  private handshakeValue: HandshakeEvent | undefined = undefined
  private handshakeDeferred: Deferred.Deferred<HandshakeEvent, InvalidHandshakeFamily> | undefined = undefined
  private handshakeError: InvalidHandshakeFamily | undefined = undefined
  /** Fibers waiting in `waitClosed` (made on first use). */
  private closeWaiters: Set<() => void> | undefined = undefined
  /** The TCP connection closed and the closure was processed (`onClosed`). */
  private closureProcessed = false
  /** The reader of a waiting `recv`: another `recv` fails with ConcurrencyError while it waits. */
  private recvReader: Waiter | undefined = undefined
  /** Round trip of the last ping answered, in seconds (`latency`). */
  latency = 0

  // Incoming messages: a queue with a head index (no O(n) shift), and wake-up callbacks of waiting readers.
  private queue: Array<Data> = []
  private queueHead = 0
  /**
   * Messages received but not queued yet, as opcode and bytes in turn: a text of
   * {@link DECODE_LATER_FROM} bytes or more, decoded in a later turn of the event loop, and every
   * message after it (see `decodeLater`).
   */
  private undecoded: Array<number | Uint8Array> | undefined = undefined
  /** Fibers waiting for a message (made on first use). */
  private readers: Array<Waiter> | undefined = undefined
  /** Reading is paused: the queue holds `maxQueue` messages, or the write buffer is over `writeLimit`. */
  private pausedForQueue = false
  private pausedForWrites = false
  // The fragmented message being received, assembled in one growing buffer (bounded by maxSize).
  private fragments: Uint8Array = EMPTY
  private fragmentsLength = 0
  private fragmentOpcode = 0
  /** Applies a failure held back for the application when it does not come back to read. */
  private pendingFailureTimer: ReturnType<typeof setTimeout> | undefined = undefined

  /** Pings waiting for their pong, by payload (hex); made at the first ping. */
  private pings: Map<string, PendingPing> | undefined = undefined
  /** Completes when the fragmented message being sent is complete; `undefined` when none is. */
  private fragmenting: Deferred.Deferred<void> | undefined = undefined
  /** Woken when the write buffer drains; made at the first wait. */
  private drainWaiters: Set<() => void> | undefined = undefined
  private _backpressure: Effect.Effect<void, ConnectionClosed> | undefined = undefined
  private corked = false
  private closeTimer: Timer | undefined = undefined
  /** The keepalive's next step: its next ping, or the end of the wait for its pong. */
  private keepaliveTimer: Timer | undefined = undefined
  /** Payload of the keepalive ping waiting for its pong. */
  private keepaliveKey: string | undefined = undefined
  private socketClosed = false
  private socketEnded = false

  // What the connection carried, for its span (payload bytes: after decompression, before compression).
  messagesReceived = 0
  messagesSent = 0
  bytesReceived = 0
  bytesSent = 0
  /** Opcode of the message being sent, for the metrics of its continuation frames. */
  private sendingOpcode = 0
  /** The opening handshake completed (`open` was called). */
  private opened = false
  /**
   * Serving per message (`Server.onMessage`): runs the handler on the queued messages (taken with
   * `takeQueued`) and returns its fiber if it is still running, `undefined` when it completed at
   * once. No fiber waits between messages.
   */
  private messageRunner: ((ws: WebSocketImpl) => RunningFiber<unknown, unknown> | undefined) | undefined = undefined
  /**
   * What the driver (the server) keeps for this connection, if anything: its `onHandshake` and the
   * runner of `serveMessages` then serve every connection, where a closure each would cost memory.
   */
  driverState: unknown = undefined
  /** A message's handler is still running: the next ones wait in the queue. */
  private runnerBusy = false
  /**
   * Called with the connection once it is closed (after `waitClosed` completes): one function can
   * serve every connection, where a closure each would cost memory.
   */
  onClose: ((ws: WebSocketImpl) => void) | undefined = undefined
  /** The spans of this connection, when tracing is on. */
  spans: ConnectionSpans | undefined = undefined
  /** Metrics to update, unless turned off (read on every message: kept apart from `telemetry`). */
  private readonly metrics: MetricsRecorder | undefined

  constructor(
    readonly protocol: Connection,
    readonly socket: Duplex,
    readonly options: ResolvedOptions,
    private readonly timers: Timers,
    private readonly telemetry?: Telemetry,
    localAddress?: Address
  ) {
    this.metrics = telemetry?.metrics
    // Messages that arrived before a protocol violation are still delivered, and the application's
    // answers to them go out before the closing frame (see `applyPendingFailure`).
    protocol.deferFailures = true
    // Pings are answered by the protocol: no event is needed for them.
    protocol.emitsPings = false
    // Messages are assembled here: the tiny fragments of one read may come as one frame.
    protocol.coalescesFragments = true
    const s = socket as Duplex & Partial<Record<"localAddress" | "remoteAddress" | "localPort" | "remotePort", any>>
    // Reading the socket's address is a system call (getsockname): skipped when the caller knows it.
    this.localAddress = localAddress ?? addressOf(s.localAddress, s.localPort)
    this.remoteAddress = addressOf(s.remoteAddress, s.remotePort)
    // Listeners shared by every socket (a closure each per connection would cost memory).
    ;(socket as OwnedSocket)[kConnection] = this
    socket.on("data", onSocketData)
    socket.on("end", onSocketEnd)
    // Errors (ECONNRESET, EPIPE) are followed by 'close', which handles the closure.
    socket.on("error", ignoreSocketError)
    socket.on("close", onSocketClose)
    socket.on("drain", onSocketDrain)
  }

  /** The protocol's: made when first read. */
  get id(): string {
    return this.protocol.id
  }

  /** Made when asked: a connection keeps no object for it. */
  get logAnnotations(): { readonly connectionId: string } {
    return { connectionId: this.id }
  }

  get side(): "client" | "server" {
    return this.protocol.side
  }
  get state(): State {
    return this.protocol.state
  }
  get open(): boolean {
    return this.protocol.state === State.OPEN
  }
  get username(): string | undefined {
    return authenticatedBy.get(this.requestHeaders)?.username
  }
  get realm(): string | undefined {
    return authenticatedBy.get(this.requestHeaders)?.realm
  }
  get closed(): boolean {
    return this.protocol.state === State.CLOSED
  }
  get closeCode(): number | undefined {
    return this.protocol.closeCode
  }
  get closeReason(): string | undefined {
    return this.protocol.closeReason
  }

  // ---------------------------------------------------------------------------
  // Socket → protocol
  // ---------------------------------------------------------------------------

  /** @internal */
  onData(chunk: Uint8Array): void {
    this.protocol.receiveData(chunk)
    this.afterReceive()
    if (!this.protocol.receivedDataKept) releaseRead(this.socket, chunk)
  }

  /** @internal */
  onEnd(): void {
    this.socketEnded = true
    this.protocol.receiveEof()
    this.afterReceive()
  }

  /** @internal */
  onSocketClose(): void {
    this.socketClosed = true
    if (!this.socketEnded) {
      // Reset, or aborted by us: the stream ends here without a TCP close (RFC 6455 §7.1.5: 1006).
      this.socketEnded = true
      this.protocol.receiveEof()
      this.processEvents()
      this.protocol.dataToSend()
    }
    if (this.protocol.state !== State.CLOSED) {
      // Only possible before the handshake completed: make the protocol consider itself closed.
      this.protocol.state = State.CLOSED
    }
    afterSocketClose(this)
  }

  /** Processes events and writes what the protocol produced after receiving data or EOF. */
  private afterReceive(): void {
    const buffered = this.socket.writableLength
    this.processEvents()
    this.flush()
    // What we write in answer to what we read (pongs, closes) must not grow without bound when the
    // peer does not read: stop reading until the write buffer drains, and TCP pushes back on it.
    // Only when this read made it grow: the application's own messages wait in `send`, and pausing
    // for them would stop a peer's answers from being read while it waits for us to read
    // (both sides sending large messages would deadlock).
    const writable = this.socket.writableLength
    if (!this.pausedForWrites && writable > this.options.writeLimit && writable > buffered && !this.socketClosed) {
      this.pausedForWrites = true
      this.socket.pause()
      this.metrics?.paused("writeLimit")
    }
    if (this.protocol.closeExpected()) this.startCloseTimer()
    const malformedRequest = this.handshakeError !== undefined && this.protocol.side === "server"
    if ((this.protocol.state === State.CLOSED || malformedRequest) && !this.socketClosed) {
      // Both sides closed their half of the TCP connection (or the handshake failed): release it.
      // After a malformed or oversized request (400, 431) nothing more is parsed, and the socket
      // closes once the answer is written, as Node's http and ws do; until then what the peer
      // still sends is freed as it arrives (see `dropReads`).
      const socket = this.socket as Duplex & { destroySoon?: () => void }
      if (malformedRequest) dropReads(socket)
      socket.end()
      socket.destroySoon?.()
    }
    // The application's answers come last: `send` waits for its own backpressure, so they do not
    // count against reading as the protocol's answers above do.
    if (this.messageRunner !== undefined) this.runMessages()
    if (this.protocol.pendingFailure !== undefined) this.onPendingFailure()
  }

  private processEvents(): void {
    const events = this.protocol.eventsReceived()
    let handshake: Event | undefined
    for (let i = 0; i < events.length; i++) {
      const event = events[i]!
      if (event instanceof Frame) this.onFrame(event)
      else handshake = event
    }
    // A failed handshake still emits its request or response: the failure is what counts.
    const handshakeExc = this.protocol.handshakeExc
    if (this.handshakeSettled) return
    if (handshakeExc !== undefined) {
      this.settleHandshake(Exit.fail(asHandshakeError(handshakeExc)))
    } else if (handshake !== undefined) {
      this.settleHandshake(Exit.succeed(handshake as HandshakeEvent))
    }
  }

  private onFrame(frame: Frame): void {
    switch (frame.opcode) {
      case Opcode.Text:
      case Opcode.Binary:
        if (frame.fin) {
          this.enqueue(frame.opcode, frame.data)
          return
        }
        this.fragmentOpcode = frame.opcode
        this.fragmentsLength = 0
        this.appendFragment(frame.data)
        return
      case Opcode.Continuation: {
        this.appendFragment(frame.data)
        if (!frame.fin) return
        const data = this.fragments.subarray(0, this.fragmentsLength)
        this.fragments = EMPTY
        this.fragmentsLength = 0
        this.enqueue(this.fragmentOpcode, data)
        return
      }
      case Opcode.Pong:
        this.onPong(frame.data)
        return
      default:
        // Pings are answered and close frames handled by the protocol.
        return
    }
  }

  /**
   * Appends a fragment to the message being assembled. The buffer doubles as it fills, within
   * `maxSize` (which the protocol enforced), so a message in many small fragments costs one buffer
   * of its size, not one object per fragment.
   */
  private appendFragment(data: Uint8Array): void {
    const length = this.fragmentsLength + data.byteLength
    if (length > this.fragments.byteLength) {
      const maxSize = this.options.maxSize
      let capacity = Math.max(length, this.fragments.byteLength * 2, MIN_FRAGMENTS_CAPACITY)
      if (maxSize !== null) capacity = Math.max(length, Math.min(capacity, maxSize))
      const grown = Buffer.allocUnsafe(capacity)
      grown.set(this.fragments.subarray(0, this.fragmentsLength), 0)
      this.fragments = grown
    }
    this.fragments.set(data, this.fragmentsLength)
    this.fragmentsLength = length
  }

  private enqueue(opcode: number, data: Uint8Array): void {
    this.messagesReceived++
    this.bytesReceived += data.byteLength
    this.metrics?.received(opcode, data.byteLength)
    if (this.undecoded !== undefined || isLargeText(opcode, data)) {
      // Decoding megabytes of text takes as long as inflating them did: not in the same turn of the
      // event loop as the read that completed the message, so that neither stalls other
      // connections for the sum. The messages after it wait for it, in order.
      if (this.undecoded === undefined) {
        this.undecoded = []
        setImmediate(afterNextPoll, this)
      }
      this.undecoded.push(opcode, data)
    } else {
      this.queueDecoded(opcode, data)
    }
    const maxQueue = this.options.maxQueue
    if (maxQueue !== null && !this.pausedForQueue && this.queuedCount() >= maxQueue) {
      // Stop reading: the kernel's buffers fill up and TCP flow control pushes back on the peer.
      this.pausedForQueue = true
      this.socket.pause()
      this.metrics?.paused("maxQueue")
    }
    this.wakeReaders()
  }

  private queueDecoded(opcode: number, data: Uint8Array): void {
    this.queue.push(opcode === Opcode.Text ? decodeText(data) : data)
  }

  /** Messages received and not taken yet, decoded or not. */
  private queuedCount(): number {
    return this.queue.length - this.queueHead + (this.undecoded === undefined ? 0 : this.undecoded.length >> 1)
  }

  /**
   * Queues what waited for a large text to be decoded: that text first, then the messages after it,
   * up to the next large text, which waits for the next turn.
   * @internal
   */
  decodeLater(): void {
    const undecoded = this.undecoded!
    let i = 0
    while (i < undecoded.length) {
      const opcode = undecoded[i] as number
      const data = undecoded[i + 1] as Uint8Array
      if (i > 0 && isLargeText(opcode, data)) break
      this.queueDecoded(opcode, data)
      i += 2
    }
    if (i < undecoded.length) {
      this.undecoded = undecoded.slice(i)
      setImmediate(afterNextPoll, this)
    } else {
      this.undecoded = undefined
    }
    this.wakeReaders()
    if (this.messageRunner !== undefined) this.runMessages()
    if (this.protocol.pendingFailure !== undefined) this.onPendingFailure()
  }

  /**
   * After each write: Node emits 'drain' only once its buffer exceeded the socket's highWaterMark,
   * which may be above `writeLimit`; so whoever waits for the buffer to fall to the low-water mark
   * (paused reading, `send` under backpressure) is woken here too. Made at the first write that
   * may need it (see `writtenCallback`).
   */
  private onWritten: (() => void) | undefined = undefined

  /**
   * The callback of a write: needed once the connection is open (`send` waits for the buffer to
   * drain) and, before, only by a write that may pause reading (over `writeLimit`, see
   * `afterReceive`); the handshake response of most connections then costs no closure.
   */
  private writtenCallback(byteLength: number): (() => void) | undefined {
    if (!this.opened && this.socket.writableLength + byteLength <= this.options.writeLimit) return undefined
    this.onWritten ??= () => {
      const waiting = this.drainWaiters !== undefined && this.drainWaiters.size > 0
      if ((this.pausedForWrites || waiting) && this.socket.writableLength <= this.writeLowWater()) {
        this.onDrain()
      }
    }
    return this.onWritten
  }

  /**
   * Low-water mark of the write buffer: whoever waited for it to drain resumes at or below a
   * quarter of `writeLimit`, as the seeds' `write_limit` (asyncio's flow control) does, so that a
   * writer at the limit is not woken for every few bytes the peer reads.
   */
  private writeLowWater(): number {
    return Math.floor(this.options.writeLimit / 4)
  }

  /** @internal The socket's 'drain' (its buffer is empty), or a write that left it at the low-water mark. */
  onDrain(): void {
    if (!this.socketClosed && this.socket.writableLength > this.writeLowWater()) return
    if (!this.corked) this.reportWritesDone()
    if (this.pausedForWrites) {
      this.pausedForWrites = false
      if (!this.pausedForQueue && !this.socketClosed) this.socket.resume()
    }
    if (this.drainWaiters !== undefined) this.wakeAll(this.drainWaiters)
  }

  /**
   * The peer broke the protocol after messages the application may still be answering. The
   * closing frame goes out once the application has taken every message and comes back for more
   * (its answers are then written), or after a grace period if it does not read.
   */
  private onPendingFailure(): void {
    const waiting = this.hasLiveReader() || (this.messageRunner !== undefined && !this.runnerBusy)
    if (this.queueHead === this.queue.length && this.undecoded === undefined && waiting) {
      this.applyPendingFailure()
      return
    }
    if (this.pendingFailureTimer === undefined) {
      this.pendingFailureTimer = setTimeout(() => {
        this.pendingFailureTimer = undefined
        this.applyPendingFailure()
      }, PENDING_FAILURE_GRACE_MS)
    }
  }

  private applyPendingFailure(): void {
    if (this.pendingFailureTimer !== undefined) {
      clearTimeout(this.pendingFailureTimer)
      this.pendingFailureTimer = undefined
    }
    if (this.protocol.pendingFailure === undefined) return
    this.protocol.failPending()
    this.afterReceive()
  }

  private pendingPings(): Map<string, PendingPing> {
    if (this.pings === undefined) this.pings = new Map()
    return this.pings
  }

  private onPong(data: Uint8Array): void {
    const key = hex(data)
    const pings = this.pings
    if (pings === undefined || !pings.has(key)) return
    // A pong acknowledges its ping and every ping sent before it (RFC 6455 §5.5.3 lets a peer
    // answer only the latest ping).
    const now = performance.now()
    for (const [pingKey, ping] of pings) {
      pings.delete(pingKey)
      this.metrics?.pingRoundTrip(now - ping.sentAt)
      // Before the deferred: Effect 4 may resume the fiber awaiting it right there, which then reads it.
      if (pingKey === key) this.latency = (now - ping.sentAt) / 1000
      if (ping.deferred !== undefined) completeDeferred(ping.deferred, Exit.succeed(now - ping.sentAt))
      if (pingKey === this.keepaliveKey) this.onKeepalivePong()
      if (pingKey === key) break
    }
  }

  /** @internal What follows the TCP close: run by `afterSocketClose`, in batches. */
  onClosed(): void {
    if (this.pendingFailureTimer !== undefined) clearTimeout(this.pendingFailureTimer)
    this.closeTimer?.cancel()
    this.keepaliveTimer?.cancel()
    if (this.pings !== undefined && this.pings.size > 0) {
      const exc = this.protocol.closeExc
      for (const ping of this.pings.values()) {
        if (ping.deferred !== undefined) completeDeferred(ping.deferred, Exit.fail(exc))
      }
      this.pings.clear()
    }
    // Errors capture a stack trace: build one only for a handshake that did not complete.
    if (!this.handshakeSettled) this.settleHandshake(Exit.fail(asHandshakeError(this.protocol.handshakeExc)))
    this.wakeReaders()
    if (this.drainWaiters !== undefined) this.wakeAll(this.drainWaiters)
    for (const extension of this.protocol.extensions) extension.close?.()
    const telemetry = this.telemetry
    if (telemetry !== undefined) {
      if (this.opened) telemetry.closed(this)
      else telemetry.handshakeFailed(this, this.handshakeError ?? asHandshakeError(this.protocol.handshakeExc))
    }
    this.closureProcessed = true
    // Made only if someone waited (most connections end without anyone waiting on `waitClosed`).
    if (this.closeWaiters !== undefined) this.wakeAll(this.closeWaiters)
    const onClose = this.onClose
    this.onClose = undefined
    onClose?.(this)
  }

  /**
   * Serves the connection per message: `runner` runs the handler on the queued messages, one after
   * the other, from the socket's callbacks (one fiber for all the messages that one read brought).
   * A handler that completes at once leaves no fiber between messages; one that suspends holds the
   * next messages in the queue until it goes on.
   */
  serveMessages(runner: (ws: WebSocketImpl) => RunningFiber<unknown, unknown> | undefined): void {
    this.messageRunner = runner
    this.runMessages()
  }

  /** Whether the connection is served per message. */
  get serving(): boolean {
    return this.messageRunner !== undefined
  }

  /** Stops serving per message (the handler failed): the messages left stay queued. */
  stopServing(): void {
    this.messageRunner = undefined
  }

  /** Observes the fiber of a handler that suspended: made then, most connections never need it. */
  private onMessageDone: (() => void) | undefined = undefined

  private runMessages(): void {
    if (this.runnerBusy || this.messageRunner === undefined || this.queueHead === this.queue.length) return
    const fiber = this.messageRunner(this)
    if (fiber !== undefined) {
      this.runnerBusy = true
      this.onMessageDone ??= () => {
        this.runnerBusy = false
        this.runMessages()
        if (this.protocol.pendingFailure !== undefined) this.onPendingFailure()
      }
      fiber.addObserver(this.onMessageDone)
    }
  }

  /** The next queued message, for the runner of `serveMessages`; `undefined` when there is none. */
  takeQueued(): Data | undefined {
    return this.queueHead < this.queue.length ? this.takeSync() : undefined
  }

  private settleHandshake(exit: Exit.Exit<HandshakeEvent, InvalidHandshakeFamily>): void {
    if (exit._tag === "Failure") this.handshakeError = firstError(exit.cause)
    else this.handshakeValue = exit.value
    if (this.handshakeDeferred !== undefined) completeDeferred(this.handshakeDeferred, exit)
    // Called once: released, with what its closure holds, for the life of the connection.
    const onHandshake = this.onHandshake
    this.onHandshake = undefined
    onHandshake?.(exit, this)
  }

  /** Completes with the first handshake event (the request or the response), or fails. */
  get handshakeEvent(): Deferred.Deferred<HandshakeEvent, InvalidHandshakeFamily> {
    if (this.handshakeDeferred === undefined) {
      this.handshakeDeferred = makeDeferred()
      if (this.handshakeValue !== undefined) completeDeferred(this.handshakeDeferred, Exit.succeed(this.handshakeValue))
      else if (this.handshakeError !== undefined)
        completeDeferred(this.handshakeDeferred, Exit.fail(this.handshakeError))
    }
    return this.handshakeDeferred
  }

  /** The opening handshake's outcome is known (`settleHandshake` ran). */
  private get handshakeSettled(): boolean {
    return this.handshakeValue !== undefined || this.handshakeError !== undefined
  }

  /** Wakes every fiber waiting for a message (a stale reader's fiber ignores it). */
  private wakeReaders(): void {
    const readers = this.readers
    if (readers === undefined || readers.length === 0) return
    this.readers = undefined
    this.recvReader = undefined
    for (let i = 0; i < readers.length; i++) readers[i]!.wake()
  }

  private addReader(reader: Waiter): void {
    let readers = this.readers
    if (readers === undefined) readers = this.readers = []
    else if (readers.length >= READERS_BEFORE_SWEEP) readers = this.readers = readers.filter((r) => !r.stale)
    readers.push(reader)
  }

  /** A reader's wait was interrupted (Effect 4; in Effect 3 it goes stale instead). */
  private removeReader(reader: Waiter): void {
    if (this.recvReader === reader) this.recvReader = undefined
    const readers = this.readers
    if (readers === undefined) return
    const i = readers.indexOf(reader)
    if (i >= 0) readers.splice(i, 1)
  }

  private hasLiveReader(): boolean {
    return this.readers?.some((reader) => !reader.stale) === true
  }

  private wakeAll(waiters: Set<() => void>): void {
    if (waiters.size === 0) return
    const all = [...waiters]
    waiters.clear()
    for (const wake of all) wake()
  }

  // ---------------------------------------------------------------------------
  // Protocol → socket
  // ---------------------------------------------------------------------------

  /** Writes everything the protocol produced; batches the writes of one tick into one syscall. */
  flush(): void {
    const chunks = this.protocol.dataToSend()
    if (chunks.length === 0 || this.socketClosed) return
    const socket = this.socket
    for (let i = 0; i < chunks.length; i++) {
      const chunk = chunks[i]!
      if (chunk.byteLength === 0) {
        // Half-close (the protocol's SEND_EOF).
        if (this.corked) this.uncork()
        socket.end()
        continue
      }
      if (!socket.writable) continue
      // The handshake's request or response goes out alone (nothing else is written before the
      // connection opens): no cork to undo on the next tick, which made the socket buffer the write
      // and hand it on as a one-chunk writev, garbage on every connection of a handshake flood.
      if (this.opened) this.corkUntilNextTick()
      socket.write(chunk, this.writtenCallback(chunk.byteLength))
    }
  }

  /** Holds this tick's writes in the socket, to go out in one syscall on the next tick. */
  private corkUntilNextTick(): void {
    if (this.corked) return
    this.corked = true
    this.socket.cork()
    process.nextTick(uncorkLater, this)
  }

  /** @internal Sends what was corked (`uncorkLater`, on the next tick). */
  uncork(): void {
    if (!this.corked) return
    this.corked = false
    this.socket.uncork()
    this.reportWritesDone()
  }

  /**
   * Once a TCP socket's write buffer is empty, the kernel copied every chunk written: the protocol
   * may reuse the buffers of its pongs. Only for `net.Socket` (TLS included, which encrypts into its
   * own buffers): another Duplex may hand the very chunks on, as a PassThrough does.
   */
  private reportWritesDone(): void {
    if (this.socket.writableLength === 0 && this.socket instanceof net.Socket) this.protocol.writesDone()
  }

  private startCloseTimer(): void {
    if (this.closeTimer !== undefined || this.socketClosed) return
    this.closeTimer = this.timers.schedule(Duration.toMillis(this.options.closeTimeout), () => this.abort())
  }

  /** Aborts the TCP connection at once. */
  abort(): void {
    if (!this.socketClosed) this.socket.destroy()
  }

  /**
   * Whether the write buffer is over `writeLimit`, so that `send` must wait for it to drain.
   * Over the limit while corked, what we wrote this tick (a large message) has not been offered to
   * the kernel yet: it is offered now, and only what the kernel did not take counts, as in Python's
   * transport. Waiting for the next tick would suspend the sender on every large message, keeping
   * the message alive across scavenges (promoted with the fiber, freed by full GCs only).
   */
  private overWriteLimit(): boolean {
    if (this.belowWriteLimit()) return false
    if (!this.corked) return true
    this.uncork()
    return !this.belowWriteLimit()
  }

  /**
   * Waits while the outgoing buffer is above `writeLimit`. If the TCP connection closes while
   * waiting, the buffered data was never delivered, so fail with the close exception (like
   * Python's drain) instead of succeeding.
   */
  private get backpressure(): Effect.Effect<void, ConnectionClosed> {
    // Made at the first send: a connection that sends nothing keeps none.
    this._backpressure ??= Effect.suspend(() => {
      if (!this.overWriteLimit()) return Effect.void
      return callback<void, ConnectionClosed>((resume) => {
        this.metrics?.paused("send")
        const wake = () => resume(this.socketClosed ? Effect.fail(this.protocol.closeExc) : this.backpressure)
        if (this.drainWaiters === undefined) this.drainWaiters = new Set()
        const waiters = this.drainWaiters
        waiters.add(wake)
        return Effect.sync(() => waiters.delete(wake))
      })
    })
    return this._backpressure
  }

  private belowWriteLimit(): boolean {
    return this.socket.writableLength <= this.options.writeLimit || this.socketClosed
  }

  // ---------------------------------------------------------------------------
  // Lifecycle, used by the client and the server
  // ---------------------------------------------------------------------------

  /**
   * Server side: takes a handshake request a Node `http` server already parsed, with the bytes that
   * followed it, as if they had been received.
   */
  receiveRequest(request: Request, rest: Uint8Array): void {
    ;(this.protocol as ServerConnection).receiveRequest(request, rest)
    this.afterReceive()
  }

  /** Marks the handshake complete: starts keepalive. (Not `open`: that is the seeds' boolean attribute.) */
  handshakeCompleted(request: Request, response: Response, subprotocol: string | undefined): void {
    this.path = request.path
    this.handshakeRequestHeaders = request.headers
    this.handshakeResponseHeaders = response.headers
    // Kept for the life of the connection: without their lookup maps until someone looks again.
    request.headers.compact()
    response.headers.compact()
    // Negotiated from the tokens both sides listed (ServerConnection, ClientConnection check them).
    this.subprotocol = subprotocol as Subprotocol | undefined
    this.opened = true
    this.telemetry?.opened(this)
    this.scheduleKeepalivePing()
  }

  // Keepalive, as Python does it: a ping `pingInterval` after the previous pong, and the connection
  // fails with 1011 when no pong comes within `pingTimeout` (RFC 6455 leaves keepalive to the
  // application). Timers, not a fiber: an idle connection costs no fiber for it.

  private scheduleKeepalivePing(): void {
    const interval = this.options.pingInterval
    if (interval === null || this.socketClosed) return
    this.keepaliveTimer = this.timers.schedule(Duration.toMillis(interval), () => this.sendKeepalivePing())
  }

  private sendKeepalivePing(): void {
    this.keepaliveTimer = undefined
    if (this.protocol.state !== State.OPEN) return
    const payload = this.uniquePingPayload()
    if (Result.isFailure(this.protocol.sendPing(payload))) return
    const key = hex(payload)
    this.pendingPings().set(key, { deferred: undefined, sentAt: performance.now() })
    this.keepaliveKey = key
    this.flush()
    const timeout = this.options.pingTimeout
    if (timeout !== null) {
      this.keepaliveTimer = this.timers.schedule(Duration.toMillis(timeout), () => {
        this.keepaliveTimer = undefined
        this.failConnection(CloseCode.InternalError, "keepalive ping timeout")
      })
    }
  }

  private onKeepalivePong(): void {
    this.keepaliveKey = undefined
    this.keepaliveTimer?.cancel()
    this.scheduleKeepalivePing()
  }

  /** Four random bytes, unique among pending pings. */
  private uniquePingPayload(): Uint8Array {
    let payload: Uint8Array
    do payload = randomFillSync(Buffer.allocUnsafe(4))
    while (this.pings?.has(hex(payload)))
    return payload
  }

  /** Fails the connection with `code` (RFC 6455 §7.1.7) and arms the close timer. */
  failConnection(code: number, reason: string): void {
    this.protocol.fail(code, reason)
    this.flush()
    if (this.protocol.closeExpected()) this.startCloseTimer()
    if (this.protocol.state === State.CLOSED) this.abort()
  }

  /** Writes the protocol's output and arms the close timer when needed (after handshake steps). */
  flushAndWatch(): void {
    this.flush()
    if (this.protocol.closeExpected()) this.startCloseTimer()
  }

  // ---------------------------------------------------------------------------
  // Public API
  // ---------------------------------------------------------------------------

  /**
   * Waits until the closure is processed. A wake-up callback rather than a `Deferred`: Effect 3
   * builds each Deferred by spreading Effect's prototype into a new object, 4% of a handshake's CPU
   * when every connection's handler ends with `close`.
   */
  get waitClosed(): Effect.Effect<void> {
    this._waitClosed ??= Effect.suspend(() => (this.closureProcessed ? Effect.void : this.waitClosure()))
    return this._waitClosed
  }
  private _waitClosed: Effect.Effect<void> | undefined = undefined
  private waitClosure(): Effect.Effect<void> {
    return callback<void>((resume) => {
      const wake = () => resume(Effect.void)
      if (this.closeWaiters === undefined) this.closeWaiters = new Set()
      const waiters = this.closeWaiters
      waiters.add(wake)
      return Effect.sync(() => waiters.delete(wake))
    })
  }

  private takeSync(): Data {
    const message = this.queue[this.queueHead]!
    this.queue[this.queueHead] = undefined as unknown as Data
    this.queueHead++
    if (this.queueHead === this.queue.length) {
      this.queue = []
      this.queueHead = 0
    } else if (this.queueHead > 1024 && this.queueHead * 2 > this.queue.length) {
      this.queue = this.queue.slice(this.queueHead)
      this.queueHead = 0
    }
    if (this.pausedForQueue) {
      const maxQueue = this.options.maxQueue ?? 0
      // Resume below a low-water mark of a quarter of maxQueue, as Python does.
      if (this.queuedCount() <= maxQueue >> 2) {
        this.pausedForQueue = false
        if (!this.pausedForWrites && !this.socketClosed) this.socket.resume()
      }
    }
    return message
  }

  /** Waits until a message arrives or the connection closes (made on first use). */
  get waitReadable(): Effect.Effect<void> {
    this._waitReadable ??= this.waitAsReader(Effect.void)
    return this._waitReadable
  }
  private _waitReadable: Effect.Effect<void> | undefined = undefined

  /** Waits as a reader, then goes on with `then`; `isRecv`: as the one waiting `recv`. */
  private waitAsReader<A, E>(then: Effect.Effect<A, E>, isRecv = false): Effect.Effect<A, E> {
    return awaitWakeUp(
      (reader) => {
        this.addReader(reader)
        if (isRecv) this.recvReader = reader
      },
      (reader) => this.removeReader(reader),
      then
    )
  }

  /**
   * The next message; interruption-safe because a message leaves the queue only in `takeSync`.
   * Fails at once with ConcurrencyError while another `recv` waits (as the seeds raise).
   */
  get recv(): Effect.Effect<Data, ConnectionClosed | ConcurrencyError> {
    // Made on first use, as the other Effects below: most connections use one way of reading.
    this._recv ??= Effect.suspend(
      (): Effect.Effect<Data, ConnectionClosed | ConcurrencyError> =>
        this.recvWaiting ? Effect.fail(new ConcurrencyError({ detail: CONCURRENT_RECV })) : this.recvLoop
    )
    return this._recv
  }
  private _recv: Effect.Effect<Data, ConnectionClosed | ConcurrencyError> | undefined = undefined
  /** A `recv` is waiting for a message. */
  get recvWaiting(): boolean {
    return this.recvReader !== undefined && !this.recvReader.stale
  }
  /** Takes the next message, or waits (marked as the one waiting reader) and tries again. */
  private get recvLoop(): Effect.Effect<Data, ConnectionClosed> {
    this._recvLoop ??= Effect.suspend(() => {
      const next = this.nextRead()
      if (next === READ_MESSAGE) return Effect.succeed(this.takeSync())
      if (next === READ_CLOSED) return Effect.fail(this.protocol.closeExc)
      return this.recvWait
    })
    return this._recvLoop
  }
  private _recvLoop: Effect.Effect<Data, ConnectionClosed> | undefined = undefined
  private _recvWait: Effect.Effect<Data, ConnectionClosed> | undefined = undefined
  private get recvWait(): Effect.Effect<Data, ConnectionClosed> {
    this._recvWait ??= this.waitAsReader(this.recvLoop, true)
    return this._recvWait
  }

  /**
   * What a reader does next, the same for every way of reading: take a message, stop (the
   * connection is closed), or wait for one.
   */
  private nextRead(): typeof READ_MESSAGE | typeof READ_CLOSED | typeof READ_WAIT {
    if (this.queueHead < this.queue.length) return READ_MESSAGE
    // A large text being decoded comes before the end of the connection.
    if (this.undecoded !== undefined) return READ_WAIT
    if (this.socketClosed) return READ_CLOSED
    // Every message before a protocol violation was taken and answered: the connection fails now.
    if (this.protocol.pendingFailure !== undefined) this.applyPendingFailure()
    return READ_WAIT
  }

  /** How a stream of messages ends on a closed connection: normally after 1000/1001, else this error. */
  private get endOfMessages(): ConnectionClosedError | undefined {
    const protocol = this.protocol
    return protocol.closedOK ? undefined : (protocol.closeExc as ConnectionClosedError)
  }

  /**
   * What a messages Stream pulls next: every queued message (a non-empty array), `"wait"` while
   * there is none, `undefined` after a normal closure, or the error the stream fails with.
   */
  pullMessages(): ReadonlyArray<Data> | "wait" | ConnectionClosedError | undefined {
    const next = this.nextRead()
    if (next === READ_MESSAGE) {
      const messages: Array<Data> = []
      while (this.queueHead < this.queue.length) messages.push(this.takeSync())
      return messages
    }
    return next === READ_CLOSED ? this.endOfMessages : "wait"
  }

  get messages(): Stream.Stream<Data, ConnectionClosedError> {
    this._messages ??= messagesStream(this)
    return this._messages
  }
  private _messages: Stream.Stream<Data, ConnectionClosedError> | undefined = undefined

  forEachMessage<E, R>(
    f: (message: Data) => Effect.Effect<unknown, E, R>
  ): Effect.Effect<void, ConnectionClosedError | E, R> {
    // A plain loop: the fiber runs `f` on every queued message and only suspends when the queue is
    // empty, without the per-element work of a Stream pipeline. What `f` returns that needs no
    // fiber (a `send` the socket takes at once, a successful `Exit`) is completed in place, as
    // `Server.onMessage` does, without an Effect step per message.
    const loop: Effect.Effect<void, ConnectionClosedError | E, R> = Effect.suspend(() => {
      for (;;) {
        const next = this.nextRead()
        if (next === READ_MESSAGE) {
          const rest = completeWithoutFiber(f(this.takeSync()))
          if (rest === undefined) continue
          return Effect.andThen(rest, loop)
        }
        if (next === READ_CLOSED) {
          const error = this.endOfMessages
          return error === undefined ? Effect.void : Effect.fail(error)
        }
        return Effect.andThen(this.waitReadable, loop)
      }
    })
    return loop
  }

  /** After the connection left OPEN: wait until it is closed, then fail with the close exception. */
  private get closedError(): Effect.Effect<never, ConnectionClosed> {
    return Effect.andThen(
      this.waitClosed,
      Effect.suspend(() => Effect.fail(this.protocol.closeExc))
    )
  }

  /**
   * Sends one frame as part of the message this fiber is sending; callers sending a new message go
   * through `sendMessage` or `exclusive`, which wait for a fragmented message in progress.
   */
  private sendFrame(opcode: number, data: Uint8Array, fin: boolean): Effect.Effect<void, ConnectionClosed> {
    const protocol = this.protocol
    if (protocol.state !== State.OPEN) return this.closedError
    const result =
      opcode === Opcode.Text
        ? protocol.sendText(data, fin)
        : opcode === Opcode.Binary
          ? protocol.sendBinary(data, fin)
          : protocol.sendContinuation(data, fin)
    if (Result.isFailure(result)) return this.closedError
    this.countSent(opcode, data.byteLength, fin)
    this.flush()
    return this.backpressure
  }

  /** Counts one data frame sent. */
  private countSent(opcode: number, bytes: number, fin: boolean): void {
    if (opcode !== Opcode.Continuation) this.sendingOpcode = opcode
    if (fin) this.messagesSent++
    this.bytesSent += bytes
    this.metrics?.sent(this.sendingOpcode, bytes, fin)
  }

  send<E = never, R = never>(message: Message<E, R>): Effect.Effect<void, ConnectionClosed | InvalidArgument | E, R> {
    // Lazy, so that the frame is written when the Effect runs, not when it is built: repeating or
    // retrying `ws.send(m)` sends again.
    return new SendEffect(this, message)
  }

  /** What running `send(message)` does (see {@link SendEffect}). */
  sendNow<E, R>(message: Message<E, R>): Effect.Effect<void, ConnectionClosed | InvalidArgument | E, R> {
    if (typeof message === "string" || message instanceof Uint8Array) {
      return this.sendMessage(typeof message === "string" ? Opcode.Text : Opcode.Binary, message)
    }
    // Checked here, as Python raises TypeError: an application typed with `any` (parsed JSON, a
    // cast) may pass anything, and `in` throws on a primitive.
    if (typeof message !== "object" || message === null) return Effect.fail(notAMessage(message))
    if (message instanceof ArrayBuffer) return this.sendMessage(Opcode.Binary, new Uint8Array(message))
    if (ArrayBuffer.isView(message)) {
      return this.sendMessage(Opcode.Binary, new Uint8Array(message.buffer, message.byteOffset, message.byteLength))
    }
    if (isStream(message)) {
      return this.exclusive(this.sendFragments(message as Stream.Stream<Data, E, R>))
    }
    // Python rejects dict-like objects too: their entries are never fragments, and sending a Map
    // is a common mistake (`JSON.stringify` it, or pass `map.values()`).
    if (message instanceof Map) return Effect.fail(new InvalidArgument({ detail: "data must not be a Map" }))
    if (Predicate.isIterable(message)) {
      return this.exclusive(this.sendFragments(Stream.fromIterable(message as Iterable<Data>)))
    }
    return Effect.fail(notAMessage(message))
  }

  /**
   * Sends one whole message as `send` would, without a fiber when none is needed. `sendMessage`
   * writes a message that goes out as one frame at once, and returns the Effect of what is left
   * (waiting for a fragmented message in progress, or the fragments of a large compressed one,
   * which yield between them). Returns `undefined` when the message is sent and nothing is left to
   * wait for, the Effect still to run otherwise (a failed `Exit` when the connection is closed).
   */
  sendWithoutFiber(send: SendEffect<unknown, unknown>): Effect.Effect<void, unknown, unknown> | undefined {
    const message = send.message
    if (typeof message !== "string" && !(message instanceof Uint8Array)) return send
    const wait = this.sendNow(message)
    return wait === this.backpressure && !this.overWriteLimit() ? undefined : wait
  }

  /** Sends one whole message, after any fragmented message in progress. */
  private sendMessage(opcode: number, data: Uint8Array | string): Effect.Effect<void, ConnectionClosed> {
    const busy = this.fragmenting
    if (busy !== undefined)
      return Effect.andThen(
        Deferred.await(busy),
        Effect.suspend(() => this.sendMessage(opcode, data))
      )
    const compressed = this.protocol.extensions.length > 0
    if (typeof data === "string") {
      // A large text to compress is cut before it is encoded: each fragment is encoded when it is
      // sent, so that encoding megabytes does not hold the event loop either.
      if (!compressed || data.length <= COMPRESSED_FRAGMENT_SIZE)
        return this.sendMessage(opcode, Buffer.from(data, "utf8"))
    } else if (!compressed || data.byteLength <= COMPRESSED_FRAGMENT_SIZE) {
      return this.sendFrame(opcode, data, true)
    }
    // Compressing a large message in one go blocks the event loop (about 8 ms per MiB): send it as
    // fragments of one message, compressed as one (RFC 7692 §6), each compressed on libuv's thread
    // pool when the extension can (as `ws` does), else yielding to other connections between them.
    const fragments: ReadonlyArray<Uint8Array | string> =
      typeof data === "string" ? textFragments(data) : bytesFragments(data)
    const last = fragments.length - 1
    const extensions = this.protocol.extensions
    const ahead = extensions.length === 1 ? extensions[0]! : undefined
    return this.exclusive(
      Effect.forEach(
        fragments,
        (fragment, i) =>
          Effect.suspend(() => {
            const fragmentOpcode = i === 0 ? opcode : Opcode.Continuation
            const bytes = typeof fragment === "string" ? Buffer.from(fragment, "utf8") : fragment
            const send = Effect.suspend(() => this.sendFrame(fragmentOpcode, bytes, i === last))
            if (ahead?.encodeAhead !== undefined && this.protocol.state === State.OPEN) {
              return Effect.andThen(encodeAhead(ahead, fragmentOpcode, bytes, i === last), send)
            }
            return i === 0 ? send : Effect.andThen(yieldToEventLoop, send)
          }),
        { discard: true }
      ).pipe(
        Effect.onInterrupt(() =>
          Effect.sync(() => {
            if (this.protocol.state === State.OPEN) this.failConnection(CloseCode.InternalError, "message interrupted")
          })
        )
      )
    )
  }

  /**
   * Runs the sending of a fragmented message alone: other messages wait until it is complete, since
   * frames of another message cannot be interleaved with its fragments (RFC 6455 §5.4).
   */
  private exclusive<A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> {
    return Effect.suspend(() => {
      const busy = this.fragmenting
      if (busy !== undefined) return Effect.andThen(Deferred.await(busy), this.exclusive(effect))
      const done = makeDeferred<void>()
      this.fragmenting = done
      return Effect.ensuring(
        effect,
        Effect.sync(() => {
          this.fragmenting = undefined
          completeDeferred(done, Exit.void)
        })
      )
    })
  }

  /**
   * Sends the fragments of one message. Each fragment is held back until the next one arrives, so
   * the last one carries FIN; a fragment of the other type fails the message and the connection.
   */
  private sendFragments<E, R>(
    fragments: Stream.Stream<Data, E, R>
  ): Effect.Effect<void, ConnectionClosed | InvalidArgument | E, R> {
    return Effect.suspend(() => {
      let first = true
      let textual = false
      let pending: Uint8Array | undefined
      const emit = (fin: boolean) => {
        const data = pending!
        const opcode = first ? (textual ? Opcode.Text : Opcode.Binary) : Opcode.Continuation
        first = false
        return this.sendFrame(opcode, data, fin)
      }
      const body = Stream.runForEach(fragments, (fragment) =>
        Effect.suspend((): Effect.Effect<void, ConnectionClosed | InvalidArgument> => {
          const isText = typeof fragment === "string"
          // Before the first fragment nothing is sent, so the connection stays usable; after it,
          // the connection fails below as for mixed types.
          if (!isText && !(fragment instanceof Uint8Array)) {
            return Effect.fail(
              new InvalidArgument({ detail: `fragments must be strings or Uint8Arrays, got ${describe(fragment)}` })
            )
          }
          if (pending === undefined && first) {
            textual = isText
          } else if (isText !== textual) {
            return Effect.fail(new InvalidArgument({ detail: "all fragments must be of the same type" }))
          }
          const previous = pending !== undefined ? emit(false) : Effect.void
          pending = toBytes(fragment)
          return previous
        })
      ).pipe(Effect.andThen(Effect.suspend(() => (pending === undefined ? Effect.void : emit(true)))))
      return body.pipe(
        tapCause((cause) =>
          Effect.sync(() => {
            // Python closes the connection when a fragmented message cannot be completed. A
            // fragment held back (`pending`) counts as started: Python would already have sent it,
            // and a type mismatch on the second fragment must close the connection too (fix: the
            // check was `!first` only, so mixed types on fragment 2 left the connection open).
            if (isInterruptedOnly(cause)) return
            if ((!first || pending !== undefined) && this.protocol.state === State.OPEN) {
              this.failConnection(CloseCode.InternalError, "error in fragmented message")
            }
          })
        ),
        Effect.onInterrupt(() =>
          Effect.sync(() => {
            if (!first && this.protocol.state === State.OPEN) {
              this.failConnection(CloseCode.InternalError, "fragmented message interrupted")
            }
          })
        )
      )
    })
  }

  /**
   * Sends a whole message now if the connection is open and its write buffer is below
   * `writeLimit`; returns whether it did (for broadcasts, which must not wait for slow peers).
   */
  trySend(message: Data): boolean {
    if (this.protocol.state !== State.OPEN || this.fragmenting !== undefined) return false
    if (this.socket.writableLength > this.options.writeLimit) return false
    const data = typeof message === "string" ? Buffer.from(message, "utf8") : message
    const opcode = typeof message === "string" ? Opcode.Text : Opcode.Binary
    const result = opcode === Opcode.Text ? this.protocol.sendText(data) : this.protocol.sendBinary(data)
    if (Result.isFailure(result)) return false
    this.countSent(opcode, data.byteLength, true)
    this.flush()
    return true
  }

  /**
   * Like `trySend`, for a message already serialized as one final frame (`serializeFrame` without
   * masking, so for server connections; extensions already applied): lets a fan-out encode and
   * compress a message once for every receiver. The caller makes sure the bytes suit this
   * connection's negotiated extensions.
   */
  trySendSerialized(chunks: ReadonlyArray<Uint8Array>, frame: Frame): boolean {
    if (this.protocol.state !== State.OPEN || this.fragmenting !== undefined) return false
    if (this.socket.writableLength > this.options.writeLimit) return false
    // Whatever the protocol produced before (a pong, say) goes first.
    this.flush()
    const socket = this.socket
    if (this.socketClosed || !socket.writable) return false
    this.corkUntilNextTick()
    this.countSent(frame.opcode, frame.data.byteLength, true)
    this.protocol.logFrameSent(frame)
    const last = chunks.length - 1
    // As in `flush`: whoever waits for the buffer to fall below writeLimit is woken after the write.
    for (let i = 0; i < last; i++) socket.write(chunks[i]!)
    socket.write(chunks[last]!, this.writtenCallback(0))
    return true
  }

  close(): Effect.Effect<void>
  close(code: number, reason?: string): Effect.Effect<void, ProtocolError>
  close(code = 1000, reason = ""): Effect.Effect<void, ProtocolError> {
    return Effect.suspend((): Effect.Effect<void, ProtocolError> => {
      // A code not allowed on the wire (999, 1006) or an over-long reason: fail, send nothing.
      const checked = checkClose(code, reason)
      if (Result.isFailure(checked)) return Effect.fail(Result.failureOf(checked))
      const protocol = this.protocol
      if (protocol.state === State.OPEN) {
        const result = protocol.sendClose(code, reason)
        if (Result.isFailure(result)) {
          // A fragmented message is being sent, or the code is invalid: fail the connection instead.
          protocol.fail(CloseCode.InternalError, "close during fragmented message")
        }
        this.flushAndWatch()
      } else if (protocol.state === State.CONNECTING) {
        this.abort()
      }
      return this.waitClosed
    })
  }

  ping(data?: Data): Effect.Effect<Effect.Effect<number, ConnectionClosed>, ConnectionClosed | InvalidState> {
    return Effect.suspend(
      (): Effect.Effect<Effect.Effect<number, ConnectionClosed>, ConnectionClosed | InvalidState> => {
        let payload: Uint8Array
        let key: string
        if (data === undefined) {
          payload = this.uniquePingPayload()
          key = hex(payload)
        } else {
          payload = toBytes(data)
          key = hex(payload)
          if (this.pings?.has(key)) {
            return Effect.fail(new InvalidState({ detail: "already waiting for a pong with the same data" }))
          }
        }
        if (this.protocol.state !== State.OPEN) return this.closedError
        const result = this.protocol.sendPing(payload)
        if (Result.isFailure(result)) return this.closedError
        const deferred = makeDeferred<number, ConnectionClosed>()
        this.pendingPings().set(key, { deferred, sentAt: performance.now() })
        this.flush()
        return Effect.as(this.backpressure, Deferred.await(deferred))
      }
    )
  }

  pong(data: Data = new Uint8Array(0)): Effect.Effect<void, ConnectionClosed> {
    return Effect.suspend(() => {
      if (this.protocol.state !== State.OPEN) return this.closedError
      const result = this.protocol.sendPong(toBytes(data))
      if (Result.isFailure(result)) return this.closedError
      this.flush()
      return this.backpressure
    })
  }
}

/** The handshake failure to report: the protocol's, or a generic one when the TCP connection closed first. */
const asHandshakeError = (error: WebSocketExceptionFamily | undefined): InvalidHandshakeFamily =>
  error !== undefined && isInvalidHandshake(error)
    ? error
    : new InvalidMessage({ detail: "connection closed during the opening handshake", cause: error })

/**
 * Connections whose TCP connection closed, waiting for the rest of their closure (waking readers and
 * handlers, completing `waitClosed`, spans and metrics). When thousands of connections close at
 * once, Node delivers every close in one phase of the event loop: doing this work there too would
 * stall the loop for all of it (about 60 µs a connection); in slices between turns of the loop,
 * the longest stall is one slice. A slice is bounded by time rather than by a count: what a closure
 * costs depends on the application's loggers (Effect's default logger writes each "connection
 * closed" line synchronously, and a write to a pipe blocks while its reader lags).
 */
const closedQueue: Array<WebSocketImpl> = []
let closedHead = 0
const CLOSED_SLICE_MS = 5

const afterSocketClose = (ws: WebSocketImpl): void => {
  closedQueue.push(ws)
  if (closedQueue.length - closedHead === 1) setImmediate(drainClosed)
}

function drainClosed(): void {
  const deadline = performance.now() + CLOSED_SLICE_MS
  do {
    const ws = closedQueue[closedHead]!
    closedQueue[closedHead++] = undefined as unknown as WebSocketImpl
    ws.onClosed()
  } while (closedHead < closedQueue.length && performance.now() < deadline)
  if (closedHead < closedQueue.length) {
    setImmediate(drainClosed)
    return
  }
  closedQueue.length = 0
  closedHead = 0
}

/**
 * Frees the memory of a read chunk nothing refers to any more (it held only pings, answered with
 * copies), instead of leaving it to the garbage collector: a peer flooding pings otherwise makes
 * every 64 KiB read wait for the next young-generation collection, which comes rarely when reading
 * allocates little, and those buffers were most of the flood's peak RSS (issue 23). Only a chunk a
 * TCP socket read into memory of its own, with no other listener that got it, of at least
 * {@link RELEASE_FROM} bytes.
 */
const releaseRead = (socket: Duplex, chunk: Uint8Array): void => {
  const buffer = chunk.buffer
  if (
    chunk.byteLength < RELEASE_FROM ||
    chunk.byteOffset !== 0 ||
    chunk.byteLength !== buffer.byteLength ||
    !(socket instanceof net.Socket)
  )
    return
  if (socket.listenerCount("data") !== 1) return
  detach(buffer as ArrayBuffer)
}

/**
 * After a malformed or oversized request, what the peer still sends until the socket is destroyed
 * is freed as it arrives, never parsed. Pausing instead left Node one more read buffered in each
 * such socket (16 KiB on average, in a flood of oversized heads) until it was destroyed.
 */
const dropReads = (socket: Duplex): void => {
  if (!socket.listeners("data").includes(onSocketData)) return
  socket.off("data", onSocketData)
  socket.on("data", dropRead)
}
function dropRead(this: Duplex, chunk: Uint8Array): void {
  releaseRead(this, chunk)
}

/**
 * Smallest read worth freeing at once (detaching costs 0.3–1 µs): a peer flooding tiny fragments in
 * writes of a few KiB makes reads of that size, which otherwise pile up until V8's external-memory
 * limit forces a collection (34 MiB for 4 connections sending 1-byte fragments, Node 24).
 */
const RELEASE_FROM = 1024

/**
 * Detaches an ArrayBuffer, which frees its memory now: `transfer(0)` (ES2024, Node 21+), or on
 * Node 20 a transfer to a closed MessagePort (the HTML spec detaches transferred buffers even
 * when the port can no longer deliver; the message is dropped at once).
 */
const detach: (buffer: ArrayBuffer) => void =
  typeof (ArrayBuffer.prototype as { transfer?: unknown }).transfer === "function"
    ? (buffer) => {
        ;(buffer as ArrayBuffer & { transfer(length: number): ArrayBuffer }).transfer(0)
      }
    : (buffer) => {
        closedPort ??= closePort()
        closedPort.postMessage(undefined, [buffer])
      }
let closedPort: MessagePort | undefined
const closePort = (): MessagePort => {
  const { port1 } = new MessageChannel()
  port1.close()
  return port1
}

/** One function for every connection (a closure each would cost memory). */
const uncorkLater = (ws: WebSocketImpl): void => ws.uncork()
const decodeLaterOf = (ws: WebSocketImpl): void => ws.decodeLater()
/**
 * Runs `decodeLater` in the next turn of the event loop, after its poll phase: an immediate set from
 * a socket callback runs right after the poll phase that called it, before any other socket is read.
 */
const afterNextPoll = (ws: WebSocketImpl): void => {
  setImmediate(decodeLaterOf, ws)
}

const kConnection = Symbol.for("effect-websockets/connection")
type OwnedSocket = Duplex & { [kConnection]: WebSocketImpl }
function onSocketData(this: OwnedSocket, chunk: Uint8Array): void {
  this[kConnection].onData(chunk)
}
function onSocketEnd(this: OwnedSocket): void {
  this[kConnection].onEnd()
}
function onSocketClose(this: OwnedSocket): void {
  this[kConnection].onSocketClose()
}
function onSocketDrain(this: OwnedSocket): void {
  this[kConnection].onDrain()
}
const ignoreSocketError = (): void => {}

/**
 * What `send` returns: an Effect like any other, which sends when it runs (`commit`). The server
 * also recognizes it in what a `Server.onMessage` handler returns, and then sends without starting
 * a fiber when none is needed ({@link WebSocketImpl.sendWithoutFiber}): a fiber per message is
 * most of what an answered message costs.
 */
export class SendEffect<E, R> extends Effectable.Class<void, ConnectionClosed | InvalidArgument | E, R> {
  constructor(
    readonly ws: WebSocketImpl,
    readonly message: Message<E, R>
  ) {
    super()
  }

  /** The Effect it stands for (Effect 3's name). */
  commit(): Effect.Effect<void, ConnectionClosed | InvalidArgument | E, R> {
    return this.ws.sendNow(this.message)
  }

  /** The Effect it stands for (Effect 4's name). */
  asEffect(): Effect.Effect<void, ConnectionClosed | InvalidArgument | E, R> {
    return this.ws.sendNow(this.message)
  }
}

/**
 * Completes what a message handler returned without a fiber, when it needs none: an `Exit` (such as
 * `Effect.void`), or a `send` of one whole message that the socket takes at once. Returns
 * `undefined` when that is all, or what is left: a failed `Exit`, or an Effect to run in a fiber.
 */
export const completeWithoutFiber = <E, R>(
  effect: Effect.Effect<unknown, E, R>
): Effect.Effect<unknown, E, R> | undefined => {
  if (effect instanceof SendEffect)
    return effect.ws.sendWithoutFiber(effect) as Effect.Effect<unknown, E, R> | undefined
  if (Exit.isExit(effect) && effect._tag === "Success") return undefined
  return effect
}
