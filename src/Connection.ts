/**
 * The sans-I/O WebSocket protocol (RFC 6455 §5–§7), shared by {@link ClientConnection} and
 * {@link ServerConnection}: a synchronous state machine that turns received bytes into events and
 * send calls into bytes, with no sockets, timers or Effect runtime.
 *
 * Driving it (what an I/O layer does):
 * 1. feed bytes with `receiveData` / `receiveEof`;
 * 2. take `eventsReceived()` (handshake `Request`/`Response`, then `Frame`s) and hand them to the application;
 * 3. write every chunk of `dataToSend()`; an empty chunk means "half-close the TCP connection now";
 * 4. when `closeExpected()` is true, start a timer that aborts the TCP connection if the peer does
 *    not close it in time.
 *
 * Every failure of the peer is mapped to a close code in one place (`failWith`): protocol errors
 * 1002, invalid UTF-8 1007, oversized messages 1009, end of stream 1006.
 *
 * @since 0.1.0
 */
import { randomUUID } from "node:crypto"
import {
  type ConnectionClosed,
  ConnectionClosedError,
  ConnectionClosedOK,
  InvalidState,
  InvalidUtf8,
  PayloadTooBig,
  ProtocolError,
  type WebSocketExceptionFamily
} from "./Errors.js"
import type { Extension } from "./extensions/Extension.js"
import {
  Close,
  CloseCode,
  Frame,
  formatFrame,
  isValidCloseCode,
  Opcode,
  parseClose,
  serializeClose,
  serializeControlFrameInto,
  serializeControlFrameRangeInto,
  serializeFrame
} from "./Frames.js"
import type { Request, Response } from "./Http11.js"
import { FrameParser } from "./internal/frameParser.js"
import * as Result from "./internal/result.js"
import { Utf8Validator } from "./Utf8.js"

/**
 * Connection states (RFC 6455 §4.1, §4.2, §7.1.3, §7.1.4).
 * @since 0.1.0
 * @category models
 */
export const State = { CONNECTING: 0, OPEN: 1, CLOSING: 2, CLOSED: 3 } as const
/** @since 0.1.0 @category models */
export type State = (typeof State)[keyof typeof State]

const STATE_NAMES = ["CONNECTING", "OPEN", "CLOSING", "CLOSED"] as const

/** @since 0.1.0 @category models */
export type Side = "client" | "server"

/**
 * What `eventsReceived()` returns: the handshake request (server side) or response (client side),
 * then every frame received, control frames included.
 * @since 0.1.0
 * @category models
 */
export type Event = Request | Response | Frame

/**
 * The empty chunk in `dataToSend()` that means "half-close the TCP connection" (Python's `SEND_EOF`).
 * @since 0.1.0
 * @category constants
 */
export const SEND_EOF: Uint8Array = new Uint8Array(0)

/**
 * Default maximum size of an incoming message, 1 MiB, as in Python.
 * @since 0.1.0
 * @category constants
 */
export const DEFAULT_MAX_SIZE = 1_048_576

/**
 * Most bytes on the wire of a transformed (compressed) data frame that must be buffered whole
 * before it is decoded, for `remaining` bytes left in the message's budget: twice that, plus 64 KiB.
 *
 * The wire size of a compressed message says nothing of its size once inflated: a peer flushing
 * often (`Z_SYNC_FLUSH` every few bytes) or emitting Huffman blocks for incompressible data sends
 * more than zlib's `deflateBound`, and a legitimate message must be accepted whatever its wire
 * size. So `maxSize` bounds the inflated bytes, counted as they come out of the inflater, and the
 * wire bytes are bounded by what they cost instead:
 * - with permessage-deflate alone (the usual case), a frame is inflated read by read once 64 KiB
 *   of it arrived (`Extension.decodeArriving`), so at most about two reads of compressed bytes are
 *   ever buffered, whatever the frame's declared length, and the work is the inflater's, linear in
 *   the bytes received, like the work of any other frame. A frame that inflates to nothing costs
 *   what its bytes cost, no more: no wire bound is needed, and none is applied.
 * - with several extensions (or one that cannot decode as bytes arrive), a frame is buffered whole
 *   first: its wire size is bounded here, generously, so that a peer cannot make us buffer much
 *   more than `maxSize` before decoding.
 */
const wholeTransformedFrameBound = (remaining: number): number => 2 * remaining + 65_536

/** First size of the buffer the pongs of a read are packed in (a pong takes at most 131 bytes). */
const PONG_PACK_MIN = 512
/** First size of the buffer of a read's small fragments (see `Connection.appendFragmentAt`). */
const FRAGMENT_PACK_MIN = 1024
/** Size at which a buffer of pongs is queued and a new one started: a quarter of a 64 KiB read. */
const PONG_PACK_MAX = 16_384
/**
 * Full-size pong buffers the network took (see `writesDone`), for any connection to reuse. A peer
 * flooding pings then costs no new buffer per read: a fresh one each time made external memory
 * grow by the pongs of every read between two young-generation collections (issue 23: more than
 * half of a ping flood's peak RSS). Shared and small: no connection keeps one.
 */
const freePongPacks: Array<Buffer> = []
const FREE_PONG_PACKS_MAX = 8

/**
 * A random UUID (version 4) as one flat string. `randomUUID()` returns it as a chain of about 15
 * concatenated strings, which a connection would keep for its life: some 450 bytes more each.
 */
const newConnectionId = (): string => Buffer.from(randomUUID(), "latin1").toString("latin1")

const OK_CLOSE_CODES = new Set<number>([CloseCode.NormalClosure, CloseCode.GoingAway])

/** Errors that end a connection, each with its close code. */
type Failure = ProtocolError | InvalidUtf8 | PayloadTooBig | WebSocketExceptionFamily

/** Result of operations that the current state may forbid. */
export type SendResult = Result.Result<void, ProtocolError | InvalidState>

const stateName = (state: State): string =>
  state === State.CONNECTING
    ? "connecting"
    : state === State.OPEN
      ? "open"
      : state === State.CLOSING
        ? "closing"
        : "closed"

const RIGHT_VOID: Result.Result<void, never> = Result.succeed(undefined)

/**
 * Options common to both sides.
 * @since 0.1.0
 * @category models
 */
export interface ConnectionOptions {
  /** Initial state: `OPEN` to skip the opening handshake (for example when it was done elsewhere). */
  readonly state?: State
  /** Maximum size of incoming messages in bytes; `null` disables the limit. Default 1 MiB. */
  readonly maxSize?: number | null
  /** Where to log (Python's `logger`): nothing is logged without one. */
  readonly logger?: ConnectionLogger | undefined
}

/**
 * Where a connection writes its log lines (Python's `logger`): every frame sent (`>`) and received
 * (`<`) at debug level in Python's format, the opening of a server connection at info level.
 * `debugEnabled` is read once, when the connection is created: when it is false, frames are never
 * formatted.
 * @since 0.3.0
 * @category models
 */
export interface ConnectionLogger {
  readonly debugEnabled: boolean
  debug(message: string, connection: Connection): void
  info(message: string, connection: Connection): void
}

/**
 * The protocol state machine shared by both sides.
 * @since 0.1.0
 * @category models
 */
export class Connection {
  /** Made when first read: most connections of a server are never asked (nor logged at Debug). */
  private _id: string | undefined = undefined
  /** Unique identifier of the connection, useful in logs. */
  get id(): string {
    if (this._id === undefined) this._id = newConnectionId()
    return this._id
  }
  /** Maximum size of incoming messages in bytes, or `null`. */
  readonly maxSize: number | null
  /** Exception that made the opening handshake fail, if it did. */
  handshakeExc: WebSocketExceptionFamily | undefined = undefined
  /** Close frame received from the peer, once one was. */
  closeRcvd: Close | undefined = undefined
  /** Close frame sent to the peer, once one was. */
  closeSent: Close | undefined = undefined
  /** Whether the peer's close frame came before ours. */
  closeRcvdThenSent: boolean | undefined = undefined
  /** Error that failed the connection while parsing incoming data, if any. */
  parserExc: Failure | undefined = undefined
  /**
   * Hold back the failure of the connection on invalid input until `failPending()` (or EOF), so
   * that the application can answer the messages that arrived before it: they go out before the
   * closing frame. Input after the violation is discarded meanwhile. Off by default, as in Python;
   * the Effect connection turns it on.
   */
  deferFailures = false
  /**
   * Whether received pings are events (`eventsReceived`), as in Python. They are answered either
   * way; an I/O layer that has no use for them turns this off, so that a peer flooding pings makes
   * no object that outlives its read (objects alive at a young-generation collection grow it).
   */
  emitsPings = true
  /**
   * Whether the small fragments of a message that one read brings (non-final continuation frames
   * of at most 125 bytes, not compressed) may be given as one continuation frame holding their
   * bytes, instead of one frame each as in Python. The message is the same; an I/O layer that
   * assembles messages turns this on, so that a peer sending a message in many tiny fragments makes
   * no object per fragment (objects alive at a young-generation collection grow it).
   */
  coalescesFragments = false
  /**
   * Whether the protocol may still refer to the bytes of the last `receiveData` call: a view of
   * them in an event, in a frame still arriving or in a write. False when everything taken from
   * them was copied (pings answered, tiny fragments coalesced, payloads that spanned reads or were
   * decoded): the caller may then free or reuse their memory at once (a peer flooding pings or tiny
   * fragments then costs no read buffer waiting for the garbage collector).
   */
  receivedDataKept = true
  /** The bytes `receiveData` is handling, and whether everything taken from them so far was copied. */
  private receiving: Uint8Array | undefined = undefined
  private receivingCopied = false
  /** A parsing failure held back by `deferFailures`, applied by `failPending()`. */
  pendingFailure: Failure | undefined = undefined

  /** Where to log, if anywhere. */
  readonly logger: ConnectionLogger | undefined
  /** Whether frames are logged: read from the logger once. */
  protected readonly debug: boolean
  private _state: State
  protected events: Array<Event> = []
  protected writes: Array<Uint8Array> = []
  /** Pongs answering the pings of the current read, packed (see `answerPing`), and their bytes. */
  private pongs: Buffer | undefined = undefined
  private pongsLength = 0
  /** The bytes of the small fragments the current read brought (see `appendFragmentAt`). */
  private fragments: Buffer | undefined = undefined
  private fragmentsLength = 0
  /** Full-size pong buffers queued in `writes`, then handed out by `dataToSend` (see `writesDone`). */
  private pongPacksQueued: Array<Buffer> | undefined = undefined
  private pongPacksHandedOut: Array<Buffer> | undefined = undefined
  protected eofSent = false
  protected eofReceived = false
  /** After a close frame or a failure, further input is discarded until EOF (RFC 6455 §1.4, §7.1.7). */
  protected discarding = false
  /** The parser of the peer's frames, made with the first bytes after the handshake (see `frameParser`). */
  private _frameParser: FrameParser | undefined = undefined
  /** Size of the incoming message being assembled, or -1 when no fragmented message is in progress. */
  private curSize = -1
  /** Opcode of the incoming fragmented message in progress. */
  private curOpcode: number = Opcode.Continuation
  /** UTF-8 of text messages an extension transformed: the parser validates the others as they arrive. */
  private _utf8: Utf8Validator | undefined = undefined
  private get utf8(): Utf8Validator {
    this._utf8 ??= new Utf8Validator()
    return this._utf8
  }
  private _extensions: ReadonlyArray<Extension> = []
  /** Whether we are in the middle of sending a fragmented message. */
  private expectContinuationFrame = false

  constructor(
    readonly side: Side,
    options: ConnectionOptions = {}
  ) {
    this._state = options.state ?? State.OPEN
    this.maxSize = options.maxSize === undefined ? DEFAULT_MAX_SIZE : options.maxSize
    this.logger = options.logger
    this.debug = options.logger?.debugEnabled === true
  }

  /**
   * The parser of the peer's frames, made at first use: a connection the peer leaves idle after
   * the handshake (thousands of them in a flood) keeps none.
   * @internal
   */
  protected get frameParser(): FrameParser {
    if (this._frameParser === undefined) {
      // A server requires masked frames, a client requires unmasked ones (RFC 6455 §5.1).
      const parser = new FrameParser({ mask: this.side === "server" })
      parser.messageChecks = true
      this._frameParser = parser
      this.configureFrameParser(parser)
    }
    return this._frameParser
  }

  /** Extensions negotiated during the handshake, in the order they apply when sending. */
  get extensions(): ReadonlyArray<Extension> {
    return this._extensions
  }
  set extensions(extensions: ReadonlyArray<Extension>) {
    this._extensions = extensions
    if (this._frameParser !== undefined) this.configureFrameParser(this._frameParser)
  }

  /** Sets what the negotiated extensions change in the frame parser. */
  private configureFrameParser(parser: FrameParser): void {
    const extensions = this._extensions
    // The reserved bits the extensions claim are checked at the frame header; an extension that
    // does not declare its bits leaves the check to after decoding.
    let rsvAllowed: number | null = 0
    for (const extension of extensions) {
      if (extension.rsvBits === undefined) rsvAllowed = null
      else if (rsvAllowed !== null) rsvAllowed |= extension.rsvBits
    }
    parser.rsvAllowed = rsvAllowed
    // A large compressed frame is inflated read by read as it arrives (one extension only: with
    // several, each decodes the output of the next, a whole frame at a time).
    const only = extensions.length === 1 ? extensions[0]! : undefined
    parser.decodeArriving =
      only?.decodeArriving === undefined
        ? undefined
        : (opcode, fin, rsv1, length) => only.decodeArriving!(opcode, fin, rsv1, length, this.frameBudget)
  }

  /** What remains of the message size budget for the frame being parsed (`null`: no limit). */
  private frameBudget: number | null = null

  /** Connection state. */
  get state(): State {
    return this._state
  }
  set state(state: State) {
    this._state = state
  }

  /** Close code received from the peer, 1005 if its close frame had none, 1006 if none arrived; `undefined` until CLOSED. */
  get closeCode(): number | undefined {
    if (this._state !== State.CLOSED) return undefined
    return this.closeRcvd === undefined ? CloseCode.AbnormalClosure : this.closeRcvd.code
  }

  /** Close reason received from the peer; `undefined` until CLOSED. */
  get closeReason(): string | undefined {
    if (this._state !== State.CLOSED) return undefined
    return this.closeRcvd === undefined ? "" : this.closeRcvd.reason
  }

  /**
   * The error to report when the application interacts with the closed connection:
   * ConnectionClosedOK when close codes 1000/1001 were both received and sent, else
   * ConnectionClosedError. Throws InvalidState before the state is CLOSED, as the seeds raise
   * (`AssertionError`): the close code and reason are known only then.
   */
  get closeExc(): ConnectionClosed {
    // Final once CLOSED: built once, however many waiters fail with it.
    if (this._closeExc !== undefined) return this._closeExc
    if (this._state !== State.CLOSED) {
      throw new InvalidState({
        detail: `closeExc read while the connection is ${STATE_NAMES[this._state]}, not CLOSED`
      })
    }
    this._closeExc = withoutStackTrace(() => this.makeCloseExc())
    return this._closeExc
  }
  private _closeExc: ConnectionClosed | undefined = undefined

  /**
   * Whether `closeExc` is (or would be) ConnectionClosedOK: what the end of a stream of messages
   * and the close metrics need, without making the exception.
   * @internal
   */
  get closedOK(): boolean {
    const rcvd = this.closeRcvd
    const sent = this.closeSent
    return (
      this._state === State.CLOSED &&
      rcvd !== undefined &&
      sent !== undefined &&
      OK_CLOSE_CODES.has(rcvd.code) &&
      OK_CLOSE_CODES.has(sent.code)
    )
  }

  private makeCloseExc(): ConnectionClosed {
    const rcvd = this.closeRcvd
    const sent = this.closeSent
    const fields = {
      code: rcvd === undefined ? CloseCode.AbnormalClosure : rcvd.code,
      reason: rcvd === undefined ? "" : rcvd.reason,
      sentCode: sent?.code,
      sentReason: sent?.reason,
      rcvdThenSent: this.closeRcvdThenSent,
      cause: this.parserExc
    }
    return this.closedOK ? new ConnectionClosedOK(fields) : new ConnectionClosedError(fields)
  }

  // -------------------------------------------------------------------------
  // Public API: receiving
  // -------------------------------------------------------------------------

  /**
   * Receives bytes from the network. Afterwards, call `eventsReceived()` and `dataToSend()`.
   * Fails with InvalidState after `receiveEof()` (Python's `EOFError`).
   */
  receiveData(data: Uint8Array): Result.Result<void, InvalidState> {
    this.receivedDataKept = true
    if (this.eofReceived) return Result.fail(new InvalidState({ detail: "stream ended" }))
    if (this.discarding || data.byteLength === 0) {
      // Dropped unread (RFC 6455 §1.4, §7.1.7): a peer still sending after its close frame or a
      // failure costs no read buffer waiting for the garbage collector.
      this.receivedDataKept = false
      return RIGHT_VOID
    }
    this.receiving = data
    this.onData(data)
    this.receiving = undefined
    return RIGHT_VOID
  }

  /**
   * Receives the end of the data stream. Afterwards, call `eventsReceived()` and `dataToSend()`.
   */
  receiveEof(): Result.Result<void, InvalidState> {
    if (this.eofReceived) return Result.fail(new InvalidState({ detail: "stream ended" }))
    this.eofReceived = true
    if (this.debug) this.logger!.debug("< EOF", this)
    // The peer stopped sending: a failure held back for the application is due now.
    if (this.pendingFailure !== undefined) this.failPending()
    else if (!this.discarding) this.onEof()
    if (this.discarding) this.finishDiscarding()
    return RIGHT_VOID
  }

  /** Events produced by the data received since the last call. */
  eventsReceived(): Array<Event> {
    const events = this.events
    this.events = []
    return events
  }

  /** Chunks to write to the network since the last call; an empty chunk means "half-close now". */
  dataToSend(): Array<Uint8Array> {
    const writes = this.writes
    this.writes = []
    const queued = this.pongPacksQueued
    if (queued !== undefined) {
      this.pongPacksQueued = undefined
      if (this.pongPacksHandedOut === undefined) this.pongPacksHandedOut = queued
      else for (let i = 0; i < queued.length; i++) this.pongPacksHandedOut.push(queued[i]!)
    }
    return writes
  }

  /**
   * Tells the protocol that the network took every chunk `dataToSend()` returned (copied them: a
   * socket whose write buffer is empty again), so that the buffers of its pongs may be reused.
   * Optional: chunks whose writes are not reported are left to the garbage collector.
   */
  writesDone(): void {
    const packs = this.pongPacksHandedOut
    if (packs === undefined) return
    this.pongPacksHandedOut = undefined
    for (let i = 0; i < packs.length && freePongPacks.length < FREE_PONG_PACKS_MAX; i++) freePongPacks.push(packs[i]!)
  }

  /**
   * Whether the TCP connection is expected to close soon: the I/O layer should then close it after a
   * timeout if the peer does not. True once we sent a close frame (CLOSING) or the handshake failed.
   */
  closeExpected(): boolean {
    return this._state === State.CLOSING || this.handshakeExc !== undefined
  }

  // -------------------------------------------------------------------------
  // Public API: sending
  // -------------------------------------------------------------------------

  /** Sends a Continuation frame of the fragmented message being sent. */
  sendContinuation(data: Uint8Array, fin: boolean): SendResult {
    if (!this.expectContinuationFrame)
      return Result.fail(new ProtocolError({ detail: "unexpected continuation frame" }))
    if (this._state !== State.OPEN) return this.invalidState()
    this.expectContinuationFrame = !fin
    this.sendFrame(new Frame(Opcode.Continuation, data, fin))
    return RIGHT_VOID
  }

  /** Sends a Text frame; `data` must be UTF-8. `fin = false` starts a fragmented message. */
  sendText(data: Uint8Array, fin = true): SendResult {
    return this.sendDataFrame(Opcode.Text, data, fin)
  }

  /** Sends a Binary frame. `fin = false` starts a fragmented message. */
  sendBinary(data: Uint8Array, fin = true): SendResult {
    return this.sendDataFrame(Opcode.Binary, data, fin)
  }

  /**
   * Sends a Close frame and moves to CLOSING. Without a code the frame is empty (the peer sees 1005).
   * Fails while a fragmented message is being sent (RFC 6455 allows it, but it would truncate the
   * message; Python forbids it too), for an invalid code, or for a reason without a code.
   */
  sendClose(code?: number, reason = ""): SendResult {
    if (this.expectContinuationFrame) return Result.fail(new ProtocolError({ detail: "expected a continuation frame" }))
    if (this._state !== State.OPEN) return this.invalidState()
    let close: Close
    let data: Uint8Array
    if (code === undefined) {
      if (reason !== "") return Result.fail(new ProtocolError({ detail: "cannot send a reason without a code" }))
      close = new Close(CloseCode.NoStatusRcvd, "")
      data = SEND_EOF
    } else {
      const checked = checkSendableClose(code, reason)
      if (Result.isFailure(checked)) return Result.fail(Result.failureOf(checked))
      close = Result.successOf(checked)
      data = serializeClose(close)
    }
    this.sendFrame(new Frame(Opcode.Close, data))
    this.closeSent = close
    this._state = State.CLOSING
    return RIGHT_VOID
  }

  /** Sends a Ping frame (allowed while CLOSING too, RFC 6455 §5.5). */
  sendPing(data: Uint8Array): SendResult {
    return this.sendControlFrame(Opcode.Ping, data)
  }

  /** Sends a Pong frame (allowed while CLOSING too, RFC 6455 §5.5). */
  sendPong(data: Uint8Array): SendResult {
    return this.sendControlFrame(Opcode.Pong, data)
  }

  /**
   * Fails the WebSocket connection (RFC 6455 §7.1.7): sends a close frame with `code` when the
   * state allows it (not for 1006), then stops processing input. A server half-closes the TCP
   * connection at once; a client waits for the server to do it.
   */
  fail(code: number, reason = ""): Result.Result<void, ProtocolError> {
    if (code !== CloseCode.AbnormalClosure && !isValidCloseCode(code)) {
      return Result.fail(new ProtocolError({ detail: `invalid close code: ${code}` }))
    }
    // A reason over 123 bytes would make a close frame over 125 bytes, an invalid control frame
    // (RFC 6455 §5.5). Truncate it as for internal failures: fail() must always fail.
    this.failConnection(code, truncateReason(reason))
    return RIGHT_VOID
  }

  /**
   * Applies the failure held back by `deferFailures`: sends the closing frame with its close code.
   * Nothing happens without one.
   */
  failPending(): void {
    const error = this.pendingFailure
    if (error === undefined) return
    this.pendingFailure = undefined
    this.failWithError(error)
  }

  // -------------------------------------------------------------------------
  // Internals shared with subclasses
  // -------------------------------------------------------------------------

  /** Handles received bytes; subclasses intercept them during the opening handshake. */
  protected onData(data: Uint8Array): void {
    const parser = this.frameParser
    parser.push(data)
    // Pings answered where they lie when nothing else needs them as frames: no event, no log line,
    // no extension that might transform a pong.
    parser.pingAnswerer = this.emitsPings || this.debug || this.extensions.length > 0 ? undefined : this
    parser.fragmentSink = this.coalescesFragments && !this.debug && this.plainMessagesPass() ? this : undefined
    this.receivingCopied = true
    this.parseFrames()
    this.flushPongs()
    if (data === this.receiving && this.receivingCopied && !parser.refersTo(data)) {
      this.receivedDataKept = false
    }
  }

  /** Whether every negotiated extension leaves the frames of a message it did not transform alone. */
  private plainMessagesPass(): boolean {
    const extensions = this.extensions
    for (let i = 0; i < extensions.length; i++) if (extensions[i]!.passesPlainMessages !== true) return false
    return true
  }

  /**
   * Appends the payload of a fragment the frame parser took where it lies (its `fragmentSink`) to
   * the fragments of the current read, given as one continuation frame by `flushFragments`.
   * @internal
   */
  appendFragmentAt(source: Uint8Array, start: number, end: number): void {
    const length = end - start
    this.curSize += length
    let pack = this.fragments
    const used = this.fragmentsLength
    if (pack === undefined || used + length > pack.length) {
      const grown = Buffer.allocUnsafe(Math.max(FRAGMENT_PACK_MIN, (used + length) * 2))
      if (pack !== undefined) pack.copy(grown, 0, 0, used)
      pack = grown
      this.fragments = grown
    }
    for (let i = start; i < end; i++) pack[used + i - start] = source[i]!
    this.fragmentsLength = used + length
  }

  /** Emits the fragments taken since the last call (see `appendFragmentAt`) as one frame. */
  private flushFragments(): void {
    const pack = this.fragments!
    this.events.push(new Frame(Opcode.Continuation, pack.subarray(0, this.fragmentsLength), false))
    this.fragments = undefined
    this.fragmentsLength = 0
  }

  /**
   * Answers a ping (RFC 6455 §5.5.2). The pongs of one read are packed into one buffer, written
   * after the read (or before any other frame we send): a peer flooding pings costs one buffer and
   * one write per read instead of a buffer, a write and their bookkeeping per ping, objects that
   * outlive a young-generation collection while the peer does not read and so grew the heap.
   */
  private answerPing(data: Uint8Array): boolean {
    const mask = this.side === "client"
    const extensions = this.extensions
    if (extensions.length > 0 || this.debug) {
      const pong = new Frame(Opcode.Pong, data)
      this.logFrameSent(pong)
      let encoded = pong
      for (let i = 0; i < extensions.length; i++) encoded = extensions[i]!.encode(encoded)
      if (encoded !== pong) {
        // An extension that transforms control frames: the frame is written on its own.
        this.flushPongs()
        for (const chunk of serializeFrame(encoded, mask)) if (chunk.byteLength > 0) this.writes.push(chunk)
        return false
      }
    }
    const pack = this.pongPack((mask ? 6 : 2) + data.length)
    this.pongsLength = serializeControlFrameInto(Opcode.Pong, data, mask, pack, this.pongsLength)
    return true
  }

  /**
   * Answers a ping whose payload is `source[start, end)`, masked with `key` (the frame parser's
   * `pingAnswerer`), into the pongs of the current read, as `answerPing` does.
   * @internal
   */
  answerPingAt(source: Uint8Array, start: number, end: number, key: number): void {
    const mask = this.side === "client"
    const pack = this.pongPack((mask ? 6 : 2) + end - start)
    this.pongsLength = serializeControlFrameRangeInto(
      Opcode.Pong,
      source,
      start,
      end,
      key,
      mask,
      pack,
      this.pongsLength
    )
  }

  /** The buffer of the current read's pongs, with room for `size` more bytes (see `answerPing`). */
  private pongPack(size: number): Buffer {
    let pack = this.pongs
    if (pack === undefined || this.pongsLength + size > pack.length) {
      if (pack !== undefined && pack.length >= PONG_PACK_MAX) {
        this.flushPongs()
        pack = undefined
      }
      // A full-size buffer may be kept for reuse (freePongPacks): it gets memory of its own rather
      // than a slice of Node's shared pool, which it would pin (Node 24's pool serves 16 KiB too).
      const grown =
        pack === undefined
          ? (freePongPacks.pop() ?? Buffer.allocUnsafe(PONG_PACK_MIN))
          : pack.length * 2 >= PONG_PACK_MAX
            ? Buffer.allocUnsafeSlow(pack.length * 2)
            : Buffer.allocUnsafe(pack.length * 2)
      if (pack !== undefined) grown.set(pack.subarray(0, this.pongsLength), 0)
      pack = grown
      this.pongs = pack
    }
    return pack
  }

  /** Queues the pongs packed so far for writing. */
  private flushPongs(): void {
    const pack = this.pongs
    if (pack === undefined) return
    this.writes.push(pack.subarray(0, this.pongsLength))
    if (pack.length === PONG_PACK_MAX) {
      if (this.pongPacksQueued === undefined) this.pongPacksQueued = [pack]
      else this.pongPacksQueued.push(pack)
    }
    this.pongs = undefined
    this.pongsLength = 0
  }

  /** Handles the end of the stream when not discarding. */
  protected onEof(): void {
    // The peer closed the TCP connection without a closing handshake (RFC 6455 §7.1.5: 1006).
    this.failWith(undefined, CloseCode.AbnormalClosure, "unexpected end of stream")
  }

  /** Parses and processes every complete frame buffered. */
  protected parseFrames(): void {
    const parser = this.frameParser
    const extensions = this.extensions
    while (!this.discarding) {
      const maxSize = this.maxSize
      const inMessage = this.curSize >= 0
      const remaining = maxSize === null ? null : inMessage ? maxSize - this.curSize : maxSize
      // `maxSize` bounds the message as the application gets it: a compressed frame's inflated
      // size is counted against `remaining` as it inflates (see wholeTransformedFrameBound).
      parser.maxSize = remaining
      this.frameBudget = remaining
      parser.maxTransformedSize = remaining === null ? null : wholeTransformedFrameBound(remaining)
      const result = parser.next()
      if (this.fragmentsLength > 0) this.flushFragments()
      if (result === undefined) return
      if (!(result instanceof Frame)) {
        this.failParsing(result)
        return
      }
      let frame = result
      const isControl = frame.opcode >= Opcode.Close
      const transformed = parser.decoded || frame.rsv1 || frame.rsv2 || frame.rsv3
      // Extensions decode in reverse order of negotiation (Python frames.py); a frame decoded while
      // it arrived is already.
      for (let i = parser.decoded ? -1 : extensions.length - 1; i >= 0; i--) {
        const decoded = extensions[i]!.decode(frame, isControl ? null : remaining)
        if (Result.isFailure(decoded)) {
          this.failParsing(Result.failureOf(decoded))
          return
        }
        frame = Result.successOf(decoded)
      }
      if (frame.rsv1 || frame.rsv2 || frame.rsv3) {
        // A reserved bit left set after decoding is one no negotiated extension claimed (RFC 6455 §5.2).
        this.failParsing(new ProtocolError({ detail: "reserved bits must be 0" }))
        return
      }
      if (!isControl) {
        if (remaining !== null && frame.data.byteLength > remaining) {
          this.failParsing(new PayloadTooBig({ size: frame.data.byteLength, maxSize: remaining }))
          return
        }
        if (!this.acceptDataFrame(frame, transformed || !parser.validated)) return
      }
      this.recvFrame(frame)
    }
  }

  /**
   * Message-level checks of a data frame the parser's header checks let through: UTF-8 where the
   * parser could not check it (a text message an extension transformed). Updates the size of the
   * message in progress. The number of fragments is not bounded: a fragment costs the work of its
   * bytes plus a frame header's, and its bytes count against `maxSize` (RFC 6455 §5.4 puts no
   * limit on fragmentation; Autobahn 9.3/9.4 send 4 MiB in 64-byte fragments).
   */
  private acceptDataFrame(frame: Frame, checkUtf8: boolean): boolean {
    if (frame.opcode !== Opcode.Continuation) {
      this.curOpcode = frame.opcode
      this.curSize = 0
      this.utf8.reset()
    }
    if (checkUtf8 && this.curOpcode === Opcode.Text && !this.utf8.push(frame.data, frame.fin)) {
      this.failParsing(invalidUtf8())
      return false
    }
    this.curSize = frame.fin ? -1 : this.curSize + frame.data.byteLength
    return true
  }

  /** A failure of the incoming data: now, or held back for the application (`deferFailures`). */
  private failParsing(error: Failure): void {
    this.receivingCopied = false
    if (!this.deferFailures) {
      this.failWithError(error)
      return
    }
    this.pendingFailure = error
    // RFC 6455 §7.1.7: process no more data from the peer.
    this.discarding = true
  }

  /** Applies the sequencing rules of RFC 6455 §5.4–§5.5 to one frame, then emits it. */
  private recvFrame(frame: Frame): void {
    if (this.debug) this.logger!.debug(`< ${formatFrame(frame)}`, this)
    // An event (or the echo of a close frame) that is a view of the read keeps it.
    if ((frame.opcode !== Opcode.Ping || this.emitsPings) && frame.data.buffer === this.receiving?.buffer) {
      this.receivingCopied = false
    }
    // The frame parser checked the order of data frames and their UTF-8 (RFC 6455 §5.4, §8.1).
    switch (frame.opcode) {
      case Opcode.Text:
      case Opcode.Binary:
        // Only CONNECTING is an error. In CLOSING (we sent a close frame) the peer may still send
        // data it sent before receiving our close, or finish its message first (RFC 6455 §5.5.1);
        // Python delivers those frames too. Data after the peer's close frame is discarded earlier.
        if (this._state === State.CONNECTING) {
          this.failParsing(new ProtocolError({ detail: `data frame received in ${stateName(this._state)} state` }))
          return
        }
        break
      case Opcode.Continuation:
        break
      case Opcode.Ping:
        // RFC 6455 §5.5.2: answer with a Pong carrying the same payload. While CLOSING, our close
        // frame is already sent and nothing may follow it... except control frames (§5.5), so answer.
        if (!this.answerPing(frame.data)) this.receivingCopied = false
        if (!this.emitsPings) return
        break
      case Opcode.Pong:
        break
      case Opcode.Close: {
        const parsed = parseClose(frame.data)
        if (Result.isFailure(parsed)) {
          this.failParsing(Result.failureOf(parsed))
          return
        }
        this.closeRcvd = Result.successOf(parsed)
        if (this._state === State.CLOSING) this.closeRcvdThenSent = false
        // RFC 6455 §5.4 lets control frames, Close included, arrive between the fragments of a
        // message: the unfinished message is abandoned and the closing handshake proceeds normally
        // (Autobahn 7.1.5 expects a clean 1000). Python fails with 1002 here; the RFC wins.
        this.curSize = -1
        if (this._state === State.OPEN) {
          // RFC 6455 §5.5.1: answer with a Close frame echoing the code. Echo the original bytes:
          // re-serializing an empty close frame would fail on the synthetic 1005.
          this.sendFrame(new Frame(Opcode.Close, frame.data))
          this.closeSent = this.closeRcvd
          this.closeRcvdThenSent = true
          this._state = State.CLOSING
        }
        // RFC 6455 §7.1.1: the server closes the TCP connection first; the client waits for it.
        if (this.side === "server") this.sendEof()
        // RFC 6455 §1.4: after a close frame, a peer discards any further data received.
        this.discarding = true
        break
      }
      default:
        this.failParsing(new ProtocolError({ detail: `unexpected opcode: ${frame.opcode}` }))
        return
    }
    this.events.push(frame)
  }

  /** Maps a parsing failure to its close code (the one place where this happens). */
  protected failWithError(error: Failure): void {
    const code =
      error._tag === "ProtocolError"
        ? CloseCode.ProtocolError
        : error._tag === "InvalidUtf8"
          ? CloseCode.InvalidData
          : error._tag === "PayloadTooBig"
            ? CloseCode.MessageTooBig
            : CloseCode.InternalError
    // Details of unexpected errors may be security-sensitive: send none (Python does the same).
    this.failWith(error, code, code === CloseCode.InternalError ? "" : error.message)
  }

  protected failWith(error: Failure | undefined, code: number, reason: string): void {
    if (error !== undefined) this.parserExc = error
    this.failConnection(code, truncateReason(reason))
  }

  private failConnection(code: number, reason: string): void {
    if (this.debug) this.logger!.debug(`! failing connection with code ${code}`, this)
    if (this._state === State.OPEN && code !== CloseCode.AbnormalClosure) {
      const close = new Close(code, reason)
      this.sendFrame(new Frame(Opcode.Close, serializeClose(close)))
      this.closeSent = close
      // If a close frame was received but could not be echoed, it came first.
      if (this.closeRcvd !== undefined) this.closeRcvdThenSent = true
      this._state = State.CLOSING
    }
    // When failing, a server closes the TCP connection without waiting for the client; a client
    // waits for the server to close it (RFC 6455 §7.1.7, §7.1.1).
    // Before the handshake completed there is no WebSocket connection to close, so a client
    // closes the TCP connection at once too (`finishDiscarding` relies on that in CONNECTING).
    if ((this.side === "server" || this._state === State.CONNECTING) && !this.eofSent) this.sendEof()
    // RFC 6455 §7.1.7: do not process any more data from the peer, not even a close frame.
    this.discarding = true
    if (this.eofReceived) this.finishDiscarding()
  }

  /** Called once input is discarded and the stream has ended: the connection is closed. */
  protected finishDiscarding(): void {
    if (this._state === State.CLOSED) return
    // A client closes the TCP connection once the server has (unless the handshake never completed,
    // in which case it already sent EOF).
    if (this.side === "client" && this._state !== State.CONNECTING && !this.eofSent) this.sendEof()
    this._state = State.CLOSED
    for (const extension of this.extensions) extension.close?.()
  }

  /** Writes one frame through the extensions, masked on the client side (RFC 6455 §5.3). */
  protected sendFrame(frame: Frame): void {
    // Pongs owed are answers to frames received before whatever this frame answers.
    if (this.pongs !== undefined) this.flushPongs()
    this.logFrameSent(frame)
    const extensions = this.extensions
    for (let i = 0; i < extensions.length; i++) frame = extensions[i]!.encode(frame)
    const chunks = serializeFrame(frame, this.side === "client")
    for (let i = 0; i < chunks.length; i++) {
      const chunk = chunks[i]!
      // An empty chunk means EOF: never let an empty payload chunk be mistaken for one.
      if (chunk.byteLength > 0) this.writes.push(chunk)
    }
  }

  /**
   * Logs a frame sent, at debug level: by `sendFrame`, and by whoever writes a frame it serialized
   * itself (a fan-out, once for every receiver).
   * @internal
   */
  logFrameSent(frame: Frame): void {
    if (this.debug) this.logger!.debug(`> ${formatFrame(frame)}`, this)
  }

  /**
   * Ends a connection whose opening handshake did not complete: half-closes the TCP connection and
   * ignores any further input until EOF.
   */
  protected abandon(): void {
    this.sendEof()
    this.discarding = true
    if (this.eofReceived) this.finishDiscarding()
  }

  protected sendEof(): void {
    if (this.eofSent) return
    this.eofSent = true
    if (this.pongs !== undefined) this.flushPongs()
    if (this.debug) this.logger!.debug("> EOF", this)
    this.writes.push(SEND_EOF)
  }

  private sendDataFrame(opcode: Opcode, data: Uint8Array, fin: boolean): SendResult {
    if (this.expectContinuationFrame) return Result.fail(new ProtocolError({ detail: "expected a continuation frame" }))
    if (this._state !== State.OPEN) return this.invalidState()
    this.expectContinuationFrame = !fin
    this.sendFrame(new Frame(opcode, data, fin))
    return RIGHT_VOID
  }

  private sendControlFrame(opcode: Opcode, data: Uint8Array): SendResult {
    if (this._state !== State.OPEN && this._state !== State.CLOSING) return this.invalidState()
    // Nothing can follow our half-close of the TCP connection.
    if (this.eofSent) return this.invalidState()
    if (data.byteLength > 125) {
      return Result.fail(new ProtocolError({ detail: "control frame too long" }))
    }
    this.sendFrame(new Frame(opcode, data))
    return RIGHT_VOID
  }

  private invalidState(): Result.Result<never, InvalidState> {
    return Result.fail(new InvalidState({ detail: `connection is ${stateName(this._state)}` }))
  }
}

/**
 * Builds an error without capturing a stack trace: the end of a connection is a network event,
 * whose stack (the socket's callback) says nothing, and capturing it was a visible share of the
 * cost of closing many connections at once.
 */
const withoutStackTrace = <A>(make: () => A): A => {
  const limit = Error.stackTraceLimit
  Error.stackTraceLimit = 0
  try {
    return make()
  } finally {
    Error.stackTraceLimit = limit
  }
}

const invalidUtf8 = () => new InvalidUtf8({ detail: "invalid UTF-8 in text message" })

/** Close reasons are limited to 123 bytes of UTF-8 (RFC 6455 §5.5: 125-byte payload minus the code). */
const truncateReason = (reason: string): string => {
  if (reason.length <= 30) return reason
  const bytes = Buffer.from(reason, "utf8")
  if (bytes.byteLength <= 123) return reason
  // Cut on a character boundary: drop continuation bytes at the cut.
  let end = 123
  while (end > 0 && (bytes[end]! & 0xc0) === 0x80) end--
  return bytes.subarray(0, end).toString("utf8")
}

const checkSendableClose = (code: number, reason: string): Result.Result<Close, ProtocolError> => {
  if (!isValidCloseCode(code)) return Result.fail(new ProtocolError({ detail: `invalid status code: ${code}` }))
  if (Buffer.byteLength(reason, "utf8") > 123) {
    return Result.fail(new ProtocolError({ detail: "close reason is longer than 123 bytes" }))
  }
  return Result.succeed(new Close(code, reason))
}

/** Exported for tests and the I/O layer: whether a ConnectionClosed error is the OK kind. */
export const isOkCloseCode = (code: number): boolean => OK_CLOSE_CODES.has(code)
