/**
 * The extensions API (RFC 6455 §9), mirroring Python `websockets.extensions`.
 *
 * A client offers extensions through {@link ClientExtensionFactory} values, in order of preference;
 * a server negotiates them through {@link ServerExtensionFactory} values. Each negotiation yields an
 * {@link Extension} that encodes outgoing frames and decodes incoming ones. With several extensions,
 * frames are encoded in the order they were negotiated and decoded in reverse order.
 *
 * @since 0.1.0
 */

import type { NegotiationErrorFamily, PayloadTooBig, ProtocolError } from "../Errors.js"
import type { Frame } from "../Frames.js"
import type { ExtensionParameter } from "../HeaderParsers.js"
import type * as Result from "../internal/result.js"

/**
 * A negotiated extension, active on one connection.
 * @since 0.1.0
 * @category models
 */
export interface Extension {
  /** Registered extension name, for example `"permessage-deflate"`. */
  readonly name: string
  /**
   * Reserved bits of the first header byte (`0x40` RSV1, `0x20` RSV2, `0x10` RSV3) the extension
   * may set on the first frame of a data message, and on no other frame. Declaring them lets the
   * connection refuse any other reserved bit at the frame header, before buffering the payload;
   * without the declaration the check waits until the extensions decoded the whole frame.
   */
  readonly rsvBits?: number
  /**
   * Whether `decode` gives back unchanged, and without changing its own state, every frame of a
   * data message whose first frame has none of `rsvBits` set (a message it did not transform).
   * Declaring it lets the connection take the tiny fragments of such a message without a frame
   * object each (see `Connection.coalescesFragments`).
   */
  readonly passesPlainMessages?: boolean
  /**
   * Decodes an incoming frame. `maxSize` is what remains of the message size budget (`null`: no
   * limit); an extension that expands data must fail with `PayloadTooBig` as soon as its output
   * would exceed it. Corrupt input fails with `ProtocolError`.
   */
  decode(frame: Frame, maxSize: number | null): Result.Result<Frame, ProtocolError | PayloadTooBig>
  /**
   * Optionally, starts decoding a large data frame while its payload is still arriving, so that the
   * work is spread over the reads that bring it instead of done in one call once the frame is
   * complete (a compressed message of megabytes would otherwise stall every connection for as long).
   * It must do what `decode` would do with the whole frame; `length` is the payload's length on the
   * wire. Returns `undefined` to have the frame decoded whole. The connection asks only when this is
   * its one extension.
   */
  decodeArriving?(
    opcode: number,
    fin: boolean,
    rsv1: boolean,
    length: number,
    maxSize: number | null
  ): ArrivingFrameDecoder | undefined
  /** Encodes an outgoing frame. */
  encode(frame: Frame): Frame
  /**
   * Optionally, does the costly part of encoding the next outgoing data frame off the event loop
   * (on libuv's thread pool), then calls `done`; the `encode` of that same frame (same `data`),
   * which must be the next data frame encoded, then uses the result. `data` must stay unchanged
   * until then. When the work cannot be done ahead, `encode` does it as usual.
   */
  encodeAhead?(opcode: number, data: Uint8Array, fin: boolean, done: () => void): void
  /** Releases resources (zlib streams); called once when the connection closes. */
  close?(): void
}

/**
 * The decoding of one frame whose payload arrives over several reads (see
 * {@link Extension.decodeArriving}).
 * @since 0.4.0
 * @category models
 */
export interface ArrivingFrameDecoder {
  /** The frame's RSV1 bit once decoded. */
  readonly rsv1: boolean
  /** Decodes the next bytes of the payload, unmasked; they may be overwritten once it returns. */
  write(bytes: Uint8Array): ProtocolError | PayloadTooBig | undefined
  /** Ends the payload: the decoded data, or a failure. */
  end(): Result.Result<Uint8Array, ProtocolError | PayloadTooBig>
}

/**
 * Client side of an extension negotiation.
 * @since 0.1.0
 * @category models
 */
export interface ClientExtensionFactory {
  readonly name: string
  /** Parameters to send in the `Sec-WebSocket-Extensions` offer. */
  getRequestParams(): ReadonlyArray<ExtensionParameter>
  /**
   * Processes the parameters the server accepted, given the extensions already accepted before this
   * one, and returns the extension to activate.
   */
  processResponseParams(
    params: ReadonlyArray<ExtensionParameter>,
    acceptedExtensions: ReadonlyArray<Extension>
  ): Result.Result<Extension, NegotiationErrorFamily>
}

/**
 * Server side of an extension negotiation.
 * @since 0.1.0
 * @category models
 */
export interface ServerExtensionFactory {
  readonly name: string
  /**
   * Processes one offer of the client, given the extensions already accepted, and returns the
   * response parameters with the extension to activate, or a negotiation error to decline this offer
   * (the server then tries the next offer, as Python does).
   */
  processRequestParams(
    params: ReadonlyArray<ExtensionParameter>,
    acceptedExtensions: ReadonlyArray<Extension>
  ): Result.Result<readonly [ReadonlyArray<ExtensionParameter>, Extension], NegotiationErrorFamily>
}
