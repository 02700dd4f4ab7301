import { describe, expect, it } from "@effect/vitest"
import * as Either from "effect/Either"
import * as fc from "fast-check"
import { ClientConnection } from "../src/ClientConnection.js"
import { Connection, DEFAULT_MAX_SIZE, isOkCloseCode, SEND_EOF, type Side, State } from "../src/Connection.js"
import { isInvalidHandshake } from "../src/Errors.js"
import { Close, Frame, Opcode, serializeClose, serializeFrameToBytes } from "../src/Frames.js"
import { acceptKey } from "../src/Handshake.js"
import { Headers } from "../src/Headers.js"
import { Request } from "../src/Http11.js"
import { ServerConnection } from "../src/ServerConnection.js"
import {
  clientFrame,
  concat,
  events,
  frame,
  fromHex,
  hex,
  MASK_KEY,
  openPair,
  output,
  parseOutput,
  settle,
  transfer,
  URI,
  utf8,
  written
} from "./fixtures/connections.js"

const SIDES: ReadonlyArray<Side> = ["client", "server"]

/** Bytes of a frame as the peer of `side` sends it: masked when `side` is the server. */
const peerFrame = (side: Side, opcode: number, payload: Uint8Array | string, options: { fin?: boolean } = {}) =>
  side === "server" ? clientFrame(opcode, payload, options) : frame(opcode, payload, options)

/** `wire` cut at `cuts` (each taken modulo its length + 1), as reads, each in memory of its own as a socket gives it. */
const readsOf = (wire: Uint8Array, cuts: ReadonlyArray<number>): Array<Uint8Array> => {
  const points = [...new Set(cuts.map((c) => c % (wire.length + 1)))].sort((a, b) => a - b)
  const reads: Array<Uint8Array> = []
  let last = 0
  for (const point of [...points, wire.length]) {
    reads.push(wire.slice(last, point))
    last = point
  }
  return reads
}

const closeData = (code: number, reason = ""): string => hex(serializeClose(new Close(code, reason)))
const closeFrame = (code: number, reason = "") => ({ opcode: Opcode.Close, fin: true, data: closeData(code, reason) })

/** What `connection` wrote since the last call: its frames (unmasked) and "EOF". */
const sent = (connection: Connection): Array<unknown> => {
  const out: Array<unknown> = []
  let pending: Array<Uint8Array> = []
  const flush = () => {
    if (pending.length > 0) out.push(...parseOutput(concat(pending), connection.side === "client"))
    pending = []
  }
  for (const chunk of output(connection)) {
    if (chunk.byteLength > 0) pending.push(chunk)
    else {
      flush()
      out.push("EOF")
    }
  }
  flush()
  return out
}

const make = (side: Side, options: ConstructorParameters<typeof Connection>[1] = {}) => new Connection(side, options)

const receive = (connection: Connection, ...chunks: ReadonlyArray<Uint8Array>) => {
  for (const chunk of chunks) expect(Either.isRight(connection.receiveData(chunk))).toBe(true)
}

/** A Left's `_tag` and `message`, or "ok". */
const outcome = (result: Either.Either<unknown, { _tag: string; message: string }>) =>
  Either.isLeft(result) ? { _tag: result.left._tag, message: result.left.message } : "ok"

/** The `_tag` of a Left, or "ok". */
const tagOf = (result: Either.Either<unknown, { _tag: string }>) => (Either.isLeft(result) ? result.left._tag : "ok")

/**
 * Checks that `connection` failed with `code` and `reason` because of `tag`: it sent a close frame
 * (and, as a server, EOF), then ignores input, even a close frame, and closes on EOF.
 */
const expectFailed = (connection: Connection, code: number, reason: string, tag: string) => {
  const side = connection.side
  expect(sent(connection)).toEqual(side === "server" ? [closeFrame(code, reason), "EOF"] : [closeFrame(code, reason)])
  expect(connection.state).toBe(State.CLOSING)
  expect(connection.parserExc?._tag).toBe(tag)
  expect(connection.closeExpected()).toBe(true)
  receive(connection, peerFrame(side, Opcode.Text, "ignored"), peerFrame(side, Opcode.Close, fromHex("03e8")))
  expect(connection.eventsReceived()).toEqual([])
  expect(sent(connection)).toEqual([])
  expect(Either.isRight(connection.receiveEof())).toBe(true)
  // A client closes the TCP connection only once the server did (RFC 6455 §7.1.1).
  expect(sent(connection)).toEqual(side === "server" ? [] : ["EOF"])
  expect(connection.state).toBe(State.CLOSED)
  expect(connection.closeCode).toBe(1006)
  expect(connection.closeExc).toMatchObject({
    _tag: "ConnectionClosedError",
    code: 1006,
    reason: "",
    sentCode: code,
    sentReason: reason,
    cause: { _tag: tag }
  })
}

describe("Connection", () => {
  describe("sending", () => {
    it("server sends text unmasked", () => {
      const server = make("server")
      expect(Either.isRight(server.sendText(utf8("Hello")))).toBe(true)
      expect(written(server)).toEqual(["810548656c6c6f"])
    })

    it("client sends text masked", () => {
      const client = make("client")
      expect(Either.isRight(client.sendText(utf8("Hello")))).toBe(true)
      const chunks = output(client)
      expect(chunks.length).toBe(1)
      const bytes = chunks[0]!
      expect(bytes.length).toBe(2 + 4 + 5)
      expect(hex(bytes.subarray(0, 2))).toBe("8185")
      const key = bytes.subarray(2, 6)
      const payload = bytes.subarray(6).map((b, i) => b ^ key[i % 4]!)
      expect(hex(payload)).toBe(hex(utf8("Hello")))
    })

    it("client masks every frame with a fresh key", () => {
      const client = make("client")
      client.sendBinary(new Uint8Array(8))
      client.sendBinary(new Uint8Array(8))
      const [a, b] = output(client)
      expect(hex(a!.subarray(2, 6))).not.toBe(hex(b!.subarray(2, 6)))
      // Masking a zero payload reveals the key: payload bytes are the key, repeated.
      expect(hex(a!.subarray(6))).toBe(hex(a!.subarray(2, 6)).repeat(2))
    })

    it("server sends binary", () => {
      const server = make("server")
      server.sendBinary(fromHex("00ff"))
      expect(written(server)).toEqual(["820200ff"])
    })

    it("server sends fragmented text", () => {
      const server = make("server")
      server.sendText(utf8("Hel"), false)
      server.sendContinuation(utf8("l"), false)
      server.sendContinuation(utf8("o"), true)
      expect(written(server)).toEqual(["010348656c" + "00016c" + "80016f"])
    })

    it("server sends empty text without writing an empty chunk", () => {
      const server = make("server")
      server.sendText(new Uint8Array(0))
      server.sendBinary(new Uint8Array(0))
      expect(output(server).map(hex)).toEqual(["8100", "8200"])
    })

    it("server sends binary with 16-bit and 64-bit lengths", () => {
      const server = make("server")
      server.sendBinary(new Uint8Array(126).fill(1))
      expect(written(server)).toEqual([`827e007e${"01".repeat(126)}`])
      server.sendBinary(new Uint8Array(65536).fill(2))
      expect(written(server)).toEqual([`827f0000000000010000${"02".repeat(65536)}`])
    })

    it("client sends fragmented binary", () => {
      const client = make("client")
      client.sendBinary(fromHex("0102"), false)
      client.sendContinuation(fromHex("03"), true)
      expect(sent(client)).toEqual([
        { opcode: Opcode.Binary, fin: false, data: "0102" },
        { opcode: Opcode.Continuation, fin: true, data: "03" }
      ])
    })

    it("server sends ping and pong", () => {
      const server = make("server")
      server.sendPing(utf8("ping"))
      server.sendPong(utf8("pong"))
      server.sendPing(new Uint8Array(0))
      expect(written(server)).toEqual(["890470696e67" + "8a04706f6e67" + "8900"])
    })

    it("server sends close with code and reason", () => {
      const server = make("server")
      expect(Either.isRight(server.sendClose(1000, "bye"))).toBe(true)
      expect(written(server)).toEqual(["880503e8627965"])
      expect(server.state).toBe(State.CLOSING)
      expect(server.closeSent).toEqual(new Close(1000, "bye"))
    })

    it("server sends close without code", () => {
      const server = make("server")
      server.sendClose()
      expect(written(server)).toEqual(["8800"])
      expect(server.closeSent).toEqual(new Close(1005, ""))
    })

    it("client sends close with code", () => {
      const client = make("client")
      client.sendClose(1001)
      expect(sent(client)).toEqual([closeFrame(1001)])
    })

    it("server sends ping between fragments", () => {
      const server = make("server")
      server.sendText(utf8("a"), false)
      expect(outcome(server.sendPing(utf8("p")))).toBe("ok")
      server.sendContinuation(utf8("b"), true)
      expect(written(server)).toEqual(["010161" + "890170" + "800162"])
    })

    for (const side of SIDES) {
      it(`${side} sends continuation without a fragmented message`, () => {
        const connection = make(side)
        expect(outcome(connection.sendContinuation(utf8("x"), true))).toEqual({
          _tag: "ProtocolError",
          message: "unexpected continuation frame"
        })
        connection.sendText(utf8("x"))
        expect(tagOf(connection.sendContinuation(utf8("x"), true))).toBe("ProtocolError")
        expect(sent(connection)).toEqual([{ opcode: Opcode.Text, fin: true, data: "78" }])
      })

      it(`${side} sends text, binary or close while sending a fragmented message`, () => {
        const connection = make(side)
        connection.sendBinary(utf8("a"), false)
        const expected = { _tag: "ProtocolError", message: "expected a continuation frame" }
        expect(outcome(connection.sendText(utf8("b")))).toEqual(expected)
        expect(outcome(connection.sendBinary(utf8("b")))).toEqual(expected)
        expect(outcome(connection.sendClose(1000))).toEqual(expected)
        expect(connection.state).toBe(State.OPEN)
        // The stream is not corrupted: the message can still be finished.
        connection.sendContinuation(utf8("c"), true)
        expect(sent(connection)).toEqual([
          { opcode: Opcode.Binary, fin: false, data: "61" },
          { opcode: Opcode.Continuation, fin: true, data: "63" }
        ])
      })

      it(`${side} sends data or close after close`, () => {
        const connection = make(side)
        connection.sendClose(1000)
        sent(connection)
        const expected = { _tag: "InvalidState", message: "connection is closing" }
        expect(outcome(connection.sendText(utf8("a")))).toEqual(expected)
        expect(outcome(connection.sendBinary(utf8("a")))).toEqual(expected)
        expect(outcome(connection.sendText(utf8("a"), false))).toEqual(expected)
        expect(outcome(connection.sendClose(1000))).toEqual(expected)
        expect(outcome(connection.sendClose())).toEqual(expected)
        expect(sent(connection)).toEqual([])
      })

      it(`${side} sends continuation after close`, () => {
        const connection = make(side)
        connection.sendText(utf8("a"), false)
        connection.fail(1011)
        expect(outcome(connection.sendContinuation(utf8("b"), true))).toEqual({
          _tag: "InvalidState",
          message: "connection is closing"
        })
      })

      it(`${side} sends ping and pong while closing`, () => {
        const connection = make(side)
        connection.sendClose(1000)
        expect(outcome(connection.sendPing(utf8("a")))).toBe("ok")
        expect(outcome(connection.sendPong(utf8("b")))).toBe("ok")
        expect(sent(connection)).toEqual([
          closeFrame(1000),
          { opcode: Opcode.Ping, fin: true, data: "61" },
          { opcode: Opcode.Pong, fin: true, data: "62" }
        ])
      })

      it(`${side} sends anything once closed`, () => {
        const connection = make(side)
        connection.receiveEof()
        expect(connection.state).toBe(State.CLOSED)
        const expected = { _tag: "InvalidState", message: "connection is closed" }
        expect(outcome(connection.sendText(utf8("a")))).toEqual(expected)
        expect(outcome(connection.sendBinary(utf8("a")))).toEqual(expected)
        expect(outcome(connection.sendClose(1000))).toEqual(expected)
        expect(outcome(connection.sendPing(utf8("a")))).toEqual(expected)
        expect(outcome(connection.sendPong(utf8("a")))).toEqual(expected)
      })

      it(`${side} sends anything while connecting`, () => {
        const connection = make(side, { state: State.CONNECTING })
        const expected = { _tag: "InvalidState", message: "connection is connecting" }
        expect(outcome(connection.sendText(utf8("a")))).toEqual(expected)
        expect(outcome(connection.sendBinary(utf8("a")))).toEqual(expected)
        expect(outcome(connection.sendClose(1000))).toEqual(expected)
        expect(outcome(connection.sendPing(utf8("a")))).toEqual(expected)
        expect(outcome(connection.sendPong(utf8("a")))).toEqual(expected)
        expect(output(connection)).toEqual([])
      })

      it(`${side} sends close with a reason but no code`, () => {
        const connection = make(side)
        expect(outcome(connection.sendClose(undefined, "why"))).toEqual({
          _tag: "ProtocolError",
          message: "cannot send a reason without a code"
        })
        expect(connection.state).toBe(State.OPEN)
        expect(output(connection)).toEqual([])
      })

      it(`${side} sends close with an invalid code`, () => {
        for (const code of [0, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000, 1000.5]) {
          const connection = make(side)
          expect(outcome(connection.sendClose(code))).toEqual({
            _tag: "ProtocolError",
            message: `invalid status code: ${code}`
          })
          expect(connection.state).toBe(State.OPEN)
          expect(output(connection)).toEqual([])
        }
      })

      it(`${side} sends close with every valid code`, () => {
        for (const code of [1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000, 4999]) {
          const connection = make(side)
          expect(outcome(connection.sendClose(code))).toBe("ok")
          expect(sent(connection)).toEqual([closeFrame(code)])
        }
      })

      it(`${side} sends close with a reason over 123 bytes`, () => {
        const connection = make(side)
        expect(outcome(connection.sendClose(1000, "é".repeat(62)))).toEqual({
          _tag: "ProtocolError",
          message: "close reason is longer than 123 bytes"
        })
        expect(outcome(connection.sendClose(1000, "x".repeat(123)))).toBe("ok")
        expect(sent(connection)).toEqual([closeFrame(1000, "x".repeat(123))])
      })

      it(`${side} sends ping over 125 bytes`, () => {
        const connection = make(side)
        expect(outcome(connection.sendPing(new Uint8Array(126)))).toEqual({
          _tag: "ProtocolError",
          message: "control frame too long"
        })
        expect(tagOf(connection.sendPong(new Uint8Array(126)))).toBe("ProtocolError")
        expect(outcome(connection.sendPing(new Uint8Array(125)))).toBe("ok")
        expect(sent(connection)).toEqual([{ opcode: Opcode.Ping, fin: true, data: "00".repeat(125) }])
      })
    }
  })

  describe("receiving data frames", () => {
    for (const side of SIDES) {
      it(`${side} receives text`, () => {
        const connection = make(side)
        receive(connection, peerFrame(side, Opcode.Text, "café"))
        expect(events(connection)).toEqual([{ opcode: Opcode.Text, fin: true, data: hex(utf8("café")) }])
        expect(output(connection)).toEqual([])
      })

      it(`${side} receives binary`, () => {
        const connection = make(side)
        receive(connection, peerFrame(side, Opcode.Binary, fromHex("00ff80")))
        expect(events(connection)).toEqual([{ opcode: Opcode.Binary, fin: true, data: "00ff80" }])
      })

      it(`${side} receives empty text`, () => {
        const connection = make(side)
        receive(connection, peerFrame(side, Opcode.Text, ""))
        expect(events(connection)).toEqual([{ opcode: Opcode.Text, fin: true, data: "" }])
      })

      it(`${side} receives fragmented text`, () => {
        const connection = make(side)
        receive(
          connection,
          peerFrame(side, Opcode.Text, "ca", { fin: false }),
          peerFrame(side, Opcode.Continuation, "", { fin: false }),
          peerFrame(side, Opcode.Continuation, "fé")
        )
        expect(events(connection)).toEqual([
          { opcode: Opcode.Text, fin: false, data: "6361" },
          { opcode: Opcode.Continuation, fin: false, data: "" },
          { opcode: Opcode.Continuation, fin: true, data: hex(utf8("fé")) }
        ])
      })

      it(`${side} receives frames one byte at a time`, () => {
        const connection = make(side)
        const bytes = concat([
          peerFrame(side, Opcode.Text, "Hello"),
          peerFrame(side, Opcode.Binary, new Uint8Array(300))
        ])
        for (const byte of bytes) receive(connection, Uint8Array.of(byte))
        expect(events(connection)).toEqual([
          { opcode: Opcode.Text, fin: true, data: hex(utf8("Hello")) },
          { opcode: Opcode.Binary, fin: true, data: "00".repeat(300) }
        ])
      })

      it(`${side} receives continuation without a started message`, () => {
        const connection = make(side)
        receive(connection, peerFrame(side, Opcode.Continuation, "x"))
        expect(events(connection)).toEqual([])
        expectFailed(connection, 1002, "unexpected continuation frame", "ProtocolError")
      })

      it(`${side} receives continuation after a complete message`, () => {
        const connection = make(side)
        receive(connection, peerFrame(side, Opcode.Text, "a"), peerFrame(side, Opcode.Continuation, "b"))
        expect(events(connection)).toEqual([{ opcode: Opcode.Text, fin: true, data: "61" }])
        expectFailed(connection, 1002, "unexpected continuation frame", "ProtocolError")
      })

      for (const [name, opcode] of [
        ["text", Opcode.Text],
        ["binary", Opcode.Binary]
      ] as const) {
        it(`${side} receives ${name} inside a fragmented message`, () => {
          const connection = make(side)
          receive(connection, peerFrame(side, Opcode.Text, "a", { fin: false }), peerFrame(side, opcode, "b"))
          expect(events(connection)).toEqual([{ opcode: Opcode.Text, fin: false, data: "61" }])
          expectFailed(connection, 1002, "expected a continuation frame", "ProtocolError")
        })
      }

      it(`${side} receives ping and pong between fragments`, () => {
        const connection = make(side)
        receive(
          connection,
          peerFrame(side, Opcode.Binary, "a", { fin: false }),
          peerFrame(side, Opcode.Ping, "p"),
          peerFrame(side, Opcode.Continuation, "b", { fin: false }),
          peerFrame(side, Opcode.Pong, "q"),
          peerFrame(side, Opcode.Continuation, "c")
        )
        expect(events(connection)).toEqual([
          { opcode: Opcode.Binary, fin: false, data: "61" },
          { opcode: Opcode.Ping, fin: true, data: "70" },
          { opcode: Opcode.Continuation, fin: false, data: "62" },
          { opcode: Opcode.Pong, fin: true, data: "71" },
          { opcode: Opcode.Continuation, fin: true, data: "63" }
        ])
        expect(sent(connection)).toEqual([{ opcode: Opcode.Pong, fin: true, data: "70" }])
        expect(connection.state).toBe(State.OPEN)
      })

      it(`${side} receives close between fragments`, () => {
        const connection = make(side)
        receive(
          connection,
          peerFrame(side, Opcode.Text, "a", { fin: false }),
          peerFrame(side, Opcode.Close, fromHex("03e8")),
          peerFrame(side, Opcode.Continuation, "b")
        )
        // RFC 6455 §5.4: a close frame may come between fragments; the message is abandoned and
        // the close is answered normally, and the fragment after it is discarded.
        expect(events(connection)).toEqual([{ opcode: Opcode.Text, fin: false, data: "61" }, closeFrame(1000)])
        expect(sent(connection)).toEqual(side === "server" ? [closeFrame(1000), "EOF"] : [closeFrame(1000)])
        expect(connection.parserExc).toBeUndefined()
        connection.receiveEof()
        expect(connection.state).toBe(State.CLOSED)
        expect(connection.closeExc).toMatchObject({ _tag: "ConnectionClosedOK", code: 1000, sentCode: 1000 })
      })

      it(`${side} receives close between fragments of a text ending inside a UTF-8 sequence`, () => {
        const connection = make(side)
        receive(
          connection,
          peerFrame(side, Opcode.Text, fromHex("e282"), { fin: false }),
          peerFrame(side, Opcode.Close, fromHex("03e9"))
        )
        expect(connection.parserExc).toBeUndefined()
        expect(sent(connection)[0]).toEqual(closeFrame(1001))
      })

      it(`${side} fails while sending a fragmented message and the peer closes cleanly`, () => {
        const { client, server } = openPair()
        const [connection, peer] = side === "client" ? [client, server] : [server, client]
        connection.sendText(utf8("a"), false)
        connection.fail(1011, "gave up")
        settle(client, server)
        // The peer sees the close frame inside the message and answers it without a protocol error.
        expect(peer.parserExc).toBeUndefined()
        expect([client.state, server.state]).toEqual([State.CLOSED, State.CLOSED])
        expect(peer.closeExc).toMatchObject({ _tag: "ConnectionClosedError", code: 1011, reason: "gave up" })
      })

      it(`${side} receives masked or unmasked frame from the wrong side`, () => {
        const connection = make(side)
        // A server requires masked frames and a client unmasked ones (RFC 6455 §5.1).
        receive(connection, frame(Opcode.Text, "a", { mask: side === "client" }))
        expect(events(connection)).toEqual([])
        expectFailed(connection, 1002, "incorrect masking", "ProtocolError")
      })

      for (const [bit, options] of [
        ["rsv1", { rsv1: true }],
        ["rsv2", { rsv2: true }],
        ["rsv3", { rsv3: true }]
      ] as const) {
        it(`${side} receives ${bit} without an extension`, () => {
          const connection = make(side)
          receive(connection, frame(Opcode.Text, "a", { ...options, mask: side === "server" }))
          expect(events(connection)).toEqual([])
          expectFailed(connection, 1002, "reserved bits must be 0", "ProtocolError")
        })
      }

      for (const opcode of [0x3, 0x7, 0xb, 0xf]) {
        it(`${side} receives reserved opcode ${opcode}`, () => {
          const connection = make(side)
          receive(connection, peerFrame(side, opcode, "a"))
          expectFailed(connection, 1002, "invalid opcode", "ProtocolError")
        })
      }

      it(`${side} receives fragmented ping`, () => {
        const connection = make(side)
        receive(connection, peerFrame(side, Opcode.Ping, "a", { fin: false }))
        expectFailed(connection, 1002, "fragmented control frame", "ProtocolError")
      })

      it(`${side} receives ping over 125 bytes`, () => {
        const connection = make(side)
        receive(connection, peerFrame(side, Opcode.Ping, new Uint8Array(126)))
        expectFailed(connection, 1002, "control frame too long", "ProtocolError")
      })

      it(`${side} receives text over size limit`, () => {
        const connection = make(side, { maxSize: 10 })
        receive(connection, peerFrame(side, Opcode.Text, "x".repeat(11)))
        expect(events(connection)).toEqual([])
        expectFailed(connection, 1009, "over size limit (11 > 10 bytes)", "PayloadTooBig")
      })

      it(`${side} receives header of text over size limit`, () => {
        const connection = make(side, { maxSize: 1000 })
        // Only the header: the limit applies as soon as the length is known, before any payload.
        receive(connection, peerFrame(side, Opcode.Text, "x".repeat(1001)).subarray(0, 4))
        expectFailed(connection, 1009, "over size limit (1001 > 1000 bytes)", "PayloadTooBig")
      })

      it(`${side} receives text at size limit`, () => {
        const connection = make(side, { maxSize: 10 })
        receive(
          connection,
          peerFrame(side, Opcode.Text, "x".repeat(10)),
          peerFrame(side, Opcode.Binary, "y".repeat(10))
        )
        expect(events(connection).length).toBe(2)
        expect(connection.state).toBe(State.OPEN)
      })

      it(`${side} receives fragmented text over size limit`, () => {
        const connection = make(side, { maxSize: 10 })
        receive(connection, peerFrame(side, Opcode.Text, "abcd", { fin: false }))
        receive(connection, peerFrame(side, Opcode.Continuation, "efgh", { fin: false }))
        expect(events(connection).length).toBe(2)
        expect(connection.state).toBe(State.OPEN)
        // 8 bytes received: 2 remain, and this fragment would make 12 (the sum, not one frame, counts).
        receive(connection, peerFrame(side, Opcode.Continuation, "ijkl"))
        expect(events(connection)).toEqual([])
        expectFailed(connection, 1009, "over size limit (4 > 2 bytes)", "PayloadTooBig")
      })

      it(`${side} receives fragmented binary at size limit, then another message`, () => {
        const connection = make(side, { maxSize: 10 })
        receive(
          connection,
          peerFrame(side, Opcode.Binary, "abcd", { fin: false }),
          peerFrame(side, Opcode.Continuation, "efghij"),
          // The budget is per message: a new message starts from zero.
          peerFrame(side, Opcode.Binary, "0123456789")
        )
        expect(events(connection).length).toBe(3)
        expect(connection.state).toBe(State.OPEN)
      })

      it(`${side} receives ping between fragments when the message is near the size limit`, () => {
        const connection = make(side, { maxSize: 10 })
        receive(
          connection,
          peerFrame(side, Opcode.Text, "abcdefgh", { fin: false }),
          // Control frames are not part of the message: they do not count against its budget.
          peerFrame(side, Opcode.Ping, "0123456789"),
          peerFrame(side, Opcode.Continuation, "ij")
        )
        expect(events(connection).map((e) => e.opcode)).toEqual([Opcode.Text, Opcode.Ping, Opcode.Continuation])
        expect(sent(connection)).toEqual([{ opcode: Opcode.Pong, fin: true, data: hex(utf8("0123456789")) }])
        expect(connection.state).toBe(State.OPEN)
      })

      it(`${side} receives close near the size limit`, () => {
        const connection = make(side, { maxSize: 1 })
        receive(connection, peerFrame(side, Opcode.Close, serializeClose(new Close(1000, "a reason"))))
        expect(sent(connection)[0]).toEqual(closeFrame(1000, "a reason"))
        expect(connection.parserExc).toBeUndefined()
      })

      it(`${side} receives large message without size limit`, () => {
        const connection = make(side, { maxSize: null })
        receive(connection, peerFrame(side, Opcode.Binary, new Uint8Array(DEFAULT_MAX_SIZE + 1)))
        expect(events(connection)[0]?.opcode).toBe(Opcode.Binary)
      })

      it(`${side} receives message over the default size limit`, () => {
        const connection = make(side)
        receive(connection, peerFrame(side, Opcode.Binary, new Uint8Array(DEFAULT_MAX_SIZE + 1)).subarray(0, 10))
        expectFailed(connection, 1009, "over size limit (1048577 > 1048576 bytes)", "PayloadTooBig")
      })

      it(`${side} receives invalid UTF-8 text`, () => {
        const connection = make(side)
        receive(connection, peerFrame(side, Opcode.Text, fromHex("61c3")))
        expectFailed(connection, 1007, "invalid UTF-8 in text message", "InvalidUtf8")
      })

      it(`${side} receives invalid UTF-8 in the first fragment of a text`, () => {
        const connection = make(side)
        // Fails as soon as the bad byte is seen, before the last fragment (RFC 6455 §8.1).
        receive(connection, peerFrame(side, Opcode.Text, fromHex("61ff62"), { fin: false }))
        expect(events(connection)).toEqual([])
        expectFailed(connection, 1007, "invalid UTF-8 in text message", "InvalidUtf8")
      })

      it(`${side} receives invalid UTF-8 in a continuation of a text`, () => {
        const connection = make(side)
        receive(
          connection,
          peerFrame(side, Opcode.Text, "a", { fin: false }),
          // A UTF-16 surrogate encoded in UTF-8 is invalid (RFC 3629).
          peerFrame(side, Opcode.Continuation, fromHex("eda080"), { fin: false })
        )
        expect(events(connection).length).toBe(1)
        expectFailed(connection, 1007, "invalid UTF-8 in text message", "InvalidUtf8")
      })

      it(`${side} receives UTF-8 sequence split across fragments`, () => {
        const connection = make(side)
        // "€" is e2 82 ac.
        receive(
          connection,
          peerFrame(side, Opcode.Text, fromHex("e2"), { fin: false }),
          peerFrame(side, Opcode.Continuation, fromHex("82"), { fin: false }),
          peerFrame(side, Opcode.Continuation, fromHex("ac"))
        )
        expect(events(connection).length).toBe(3)
        expect(connection.state).toBe(State.OPEN)
      })

      it(`${side} receives text ending inside a UTF-8 sequence`, () => {
        const connection = make(side)
        receive(connection, peerFrame(side, Opcode.Text, fromHex("e282"), { fin: false }))
        expect(events(connection).length).toBe(1)
        receive(connection, peerFrame(side, Opcode.Continuation, ""))
        expectFailed(connection, 1007, "invalid UTF-8 in text message", "InvalidUtf8")
      })

      it(`${side} receives text after a binary message with invalid UTF-8`, () => {
        const connection = make(side)
        receive(
          connection,
          peerFrame(side, Opcode.Binary, fromHex("e2"), { fin: false }),
          peerFrame(side, Opcode.Continuation, fromHex("ff")),
          peerFrame(side, Opcode.Text, "ok")
        )
        expect(events(connection).length).toBe(3)
        expect(connection.state).toBe(State.OPEN)
      })

      it(`${side} receives data after a close frame`, () => {
        const connection = make(side)
        receive(
          connection,
          concat([peerFrame(side, Opcode.Close, fromHex("03e8")), peerFrame(side, Opcode.Text, "late")])
        )
        // RFC 6455 §1.4: after a close frame, further data is discarded, never delivered.
        expect(events(connection)).toEqual([{ opcode: Opcode.Close, fin: true, data: "03e8" }])
        receive(connection, peerFrame(side, Opcode.Binary, "later"))
        expect(events(connection)).toEqual([])
        expect(sent(connection)).toEqual(side === "server" ? [closeFrame(1000), "EOF"] : [closeFrame(1000)])
        expect(connection.parserExc).toBeUndefined()
      })

      it(`${side} receives data after receiving EOF`, () => {
        const connection = make(side)
        connection.receiveEof()
        expect(outcome(connection.receiveData(utf8("x")))).toEqual({ _tag: "InvalidState", message: "stream ended" })
        expect(outcome(connection.receiveEof())).toEqual({ _tag: "InvalidState", message: "stream ended" })
      })
    }
  })

  describe("receiving control frames", () => {
    it("server receives ping and answers with an unmasked pong echoing it", () => {
      const server = make("server")
      receive(server, clientFrame(Opcode.Ping, "abc"))
      expect(events(server)).toEqual([{ opcode: Opcode.Ping, fin: true, data: "616263" }])
      expect(written(server)).toEqual(["8a03616263"])
    })

    it("answers pings without emitting them when emitsPings is off; other frames are still events", () => {
      const server = make("server")
      server.emitsPings = false
      receive(
        server,
        concat([clientFrame(Opcode.Ping, "abc"), clientFrame(Opcode.Pong, "d"), clientFrame(Opcode.Ping, "e")])
      )
      expect(events(server)).toEqual([{ opcode: Opcode.Pong, fin: true, data: "64" }])
      expect(written(server)).toEqual(["8a036162638a0165"])
    })

    for (const side of SIDES) {
      it(`${side} with emitsPings off answers every ping, however the reads cut them, in order, between fragments (property)`, () => {
        fc.assert(
          fc.property(
            fc.array(fc.uint8Array({ maxLength: 125 }), { minLength: 1, maxLength: 40 }),
            fc.array(fc.nat(), { maxLength: 12 }),
            (payloads, cuts) => {
              const connection = make(side)
              connection.emitsPings = false
              // The pings arrive inside a fragmented text message: control frames may interleave (§5.4).
              const wire = concat([
                peerFrame(side, Opcode.Text, "ab", { fin: false }),
                ...payloads.map((p) => peerFrame(side, Opcode.Ping, p)),
                peerFrame(side, Opcode.Continuation, "c")
              ])
              for (const read of readsOf(wire, cuts)) receive(connection, read)
              expect(parseOutput(concat(output(connection)), side === "client")).toEqual(
                payloads.map((p) => ({ opcode: Opcode.Pong, fin: true, data: hex(p) }))
              )
              expect(events(connection)).toEqual([
                { opcode: Opcode.Text, fin: false, data: "6162" },
                { opcode: Opcode.Continuation, fin: true, data: "63" }
              ])
            }
          ),
          { numRuns: 200 }
        )
      })
    }

    it("answers pings in place whatever their mask key, an all-zero one included, and empty ones", () => {
      const server = make("server")
      server.emitsPings = false
      // Masked by hand: key 00000000 (payload as is), then key 01020304 over "abcd".
      receive(server, fromHex("8982000000006869" + "8984010203046060606089" + "80" + "00000000"))
      expect(written(server)).toEqual(["8a0268698a04616263648a00"])
    })

    for (const side of SIDES) {
      it(`${side} keeps no reference to a read of pings it answered (receivedDataKept), and only then`, () => {
        const connection = make(side)
        connection.emitsPings = false
        const pings = concat([peerFrame(side, Opcode.Ping, "ab"), peerFrame(side, Opcode.Ping, "c")])
        receive(connection, pings)
        expect(connection.receivedDataKept).toBe(false)
        // The pongs are copies: clobbering the read changes nothing.
        pings.fill(0xee)
        expect(parseOutput(concat(output(connection)), side === "client")).toEqual([
          { opcode: Opcode.Pong, fin: true, data: "6162" },
          { opcode: Opcode.Pong, fin: true, data: "63" }
        ])
        // A data frame or a pong is an event holding a view of the read.
        for (const kept of [
          concat([peerFrame(side, Opcode.Ping, "a"), peerFrame(side, Opcode.Binary, "b")]),
          peerFrame(side, Opcode.Pong, "a")
        ]) {
          receive(connection, kept)
          expect(connection.receivedDataKept).toBe(true)
        }
        // A frame cut by the end of the read: a small tail is copied, the read is not kept; a large
        // one stays a view of its read until the frame is complete, and is then copied out of its
        // reads: the last one is not kept.
        const many = concat(Array.from({ length: 20 }, () => peerFrame(side, Opcode.Ping, "x".repeat(100))))
        const ping = peerFrame(side, Opcode.Ping, "tail")
        receive(connection, concat([many, ping.subarray(0, 3)]))
        expect(connection.receivedDataKept).toBe(false)
        receive(connection, ping.slice(3))
        expect(connection.receivedDataKept).toBe(false)
        // Reads in memory of their own, as a socket gives them (a view of Buffer's pool would share
        // its memory with the copy the parser makes, and is then kept to be safe).
        const large = new Uint8Array(peerFrame(side, Opcode.Binary, new Uint8Array(6000)))
        receive(connection, large.slice(0, 5000))
        expect(connection.receivedDataKept).toBe(true)
        receive(connection, large.slice(5000))
        expect(connection.receivedDataKept).toBe(false)
        // A message in one read is a view of it.
        receive(connection, peerFrame(side, Opcode.Binary, "whole"))
        expect(connection.receivedDataKept).toBe(true)
        // Tiny fragments, taken into a buffer of their own, keep nothing (`coalescesFragments`).
        connection.coalescesFragments = true
        receive(connection, peerFrame(side, Opcode.Binary, "a", { fin: false }))
        const fragments = concat(
          Array.from({ length: 10 }, () => peerFrame(side, Opcode.Continuation, "b", { fin: false }))
        )
        receive(connection, fragments)
        expect(connection.receivedDataKept).toBe(false)
        fragments.fill(0xee)
        receive(connection, peerFrame(side, Opcode.Continuation, "c"))
        expect(events(connection).slice(-3)).toEqual([
          { opcode: Opcode.Binary, fin: false, data: "61" },
          { opcode: Opcode.Continuation, fin: false, data: "62".repeat(10) },
          { opcode: Opcode.Continuation, fin: true, data: "63" }
        ])
        connection.coalescesFragments = false
        events(connection)
        output(connection)
        // With pings as events, every read is kept.
        connection.emitsPings = true
        receive(connection, peerFrame(side, Opcode.Ping, "a"))
        expect(connection.receivedDataKept).toBe(true)
        // After a failure, what still arrives is dropped unread.
        receive(connection, peerFrame(side, Opcode.Continuation, "x"))
        expect(connection.parserExc?._tag).toBe("ProtocolError")
        receive(connection, peerFrame(side, Opcode.Binary, "dropped"))
        expect(connection.receivedDataKept).toBe(false)
      })

      it(`${side}: a read it does not keep can be clobbered without changing any event or write (property)`, () => {
        const frameArb = fc.oneof(
          fc.record({ opcode: fc.constant(Opcode.Ping), payload: fc.uint8Array({ maxLength: 125 }) }),
          fc.record({ opcode: fc.constant(Opcode.Pong), payload: fc.uint8Array({ maxLength: 125 }) }),
          fc.record({ opcode: fc.constant(Opcode.Binary), payload: fc.uint8Array({ maxLength: 300 }) }),
          // A message in fragments (its continuations coalesced when `coalescesFragments`).
          fc.record({
            opcode: fc.constant(Opcode.Continuation),
            pieces: fc.array(fc.uint8Array({ maxLength: 130 }), { minLength: 1, maxLength: 20 })
          })
        )
        const wireOf = (f: { opcode: number; payload?: Uint8Array; pieces?: Array<Uint8Array> }) =>
          f.pieces === undefined
            ? peerFrame(side, f.opcode, f.payload!)
            : concat(
                f.pieces
                  .map((piece, i) =>
                    peerFrame(side, i === 0 ? Opcode.Binary : Opcode.Continuation, piece, { fin: false })
                  )
                  .concat([peerFrame(side, Opcode.Continuation, "")])
              )
        fc.assert(
          fc.property(
            fc.array(frameArb, { minLength: 1, maxLength: 40 }),
            fc.array(fc.nat(), { maxLength: 12 }),
            fc.boolean(),
            fc.boolean(),
            (frames, cuts, emitsPings, coalesces) => {
              const wire = concat(frames.map(wireOf))
              const run = (clobber: boolean) => {
                const connection = make(side)
                connection.emitsPings = emitsPings
                connection.coalescesFragments = coalesces
                let released = 0
                for (const read of readsOf(wire, cuts)) {
                  receive(connection, read)
                  if (!connection.receivedDataKept) {
                    released++
                    if (clobber) read.fill(0xee)
                  }
                }
                const written = parseOutput(concat(output(connection)), side === "client")
                return { events: events(connection), written, released }
              }
              const clobbered = run(true)
              expect(clobbered).toEqual(run(false))
              // The last read completes the last frame: with pings only, nothing is kept.
              if (!emitsPings && frames.every((f) => f.opcode === Opcode.Ping)) {
                expect(clobbered.released).toBeGreaterThan(0)
              }
            }
          ),
          { numRuns: 300 }
        )
      })
    }

    for (const side of SIDES) {
      it(`${side} answers pings in place as it answers pings taken as frames, malformed ones included (property)`, () => {
        // A ping as the peer sends it, or spoiled: a reserved bit, not final, or masked wrongly.
        const pingArb = fc.record({
          opcode: fc.constant(Opcode.Ping),
          payload: fc.uint8Array({ maxLength: 125 }),
          spoil: fc.oneof(
            { weight: 20, arbitrary: fc.constant("none" as const) },
            { weight: 1, arbitrary: fc.constantFrom("rsv" as const, "notFinal" as const, "mask" as const) }
          )
        })
        const dataArb = fc.record({
          opcode: fc.constantFrom(Opcode.Text, Opcode.Binary, Opcode.Continuation, Opcode.Pong),
          payload: fc.string({ maxLength: 200 }),
          fin: fc.boolean(),
          spoil: fc.constant("none" as const)
        })
        const wireOf = (f: { opcode: number; payload: Uint8Array | string; fin?: boolean; spoil: string }) => {
          const bytes = peerFrame(side, f.opcode, f.payload, {
            fin: f.opcode >= 0x8 ? f.spoil !== "notFinal" : f.fin === true
          })
          if (f.spoil === "rsv") bytes[0] = bytes[0]! | 0x40
          if (f.spoil === "mask") bytes[1] = bytes[1]! ^ 0x80
          return bytes
        }
        fc.assert(
          fc.property(
            fc.array(fc.oneof({ weight: 3, arbitrary: pingArb }, { weight: 1, arbitrary: dataArb }), {
              minLength: 1,
              maxLength: 60
            }),
            fc.array(fc.nat(), { maxLength: 12 }),
            (frames, cuts) => {
              const wire = concat(frames.map(wireOf))
              const run = (emitsPings: boolean) => {
                const connection = make(side)
                connection.emitsPings = emitsPings
                const results = readsOf(wire, cuts).map((read) => tagOf(connection.receiveData(read)))
                return {
                  results,
                  events: events(connection).filter((e) => (e as { opcode?: number }).opcode !== Opcode.Ping),
                  sent: sent(connection),
                  state: connection.state,
                  failure: connection.parserExc?.message
                }
              }
              expect(run(false)).toEqual(run(true))
            }
          ),
          { numRuns: 400 }
        )
      })
    }

    for (const side of SIDES) {
      it(`${side} gives the tiny fragments of a read as one frame, the same messages as frame by frame (property)`, () => {
        const fragmentArb = fc.record({
          size: fc.oneof({ weight: 4, arbitrary: fc.integer({ min: 0, max: 3 }) }, fc.integer({ min: 0, max: 130 })),
          spoil: fc.oneof(
            { weight: 30, arbitrary: fc.constant("none" as const) },
            { weight: 1, arbitrary: fc.constantFrom("rsv" as const, "mask" as const, "badUtf8" as const) }
          )
        })
        const messageArb = fc.record({
          opcode: fc.constantFrom(Opcode.Text, Opcode.Binary),
          text: fc.string({ unit: "grapheme", maxLength: 200, size: "large" }),
          fragments: fc.array(fragmentArb, { maxLength: 40, size: "large" }),
          pingAfter: fc.array(fc.nat({ max: 40 }), { maxLength: 3 })
        })
        fc.assert(
          fc.property(
            fc.array(messageArb, { minLength: 1, maxLength: 4 }),
            fc.array(fc.nat(), { maxLength: 12 }),
            fc.constantFrom(null, 64, 300),
            fc.boolean(),
            (messages, cuts, maxSize, emitsPings) => {
              const frames: Array<Uint8Array> = []
              for (const m of messages) {
                const bytes = utf8(m.text)
                let at = 0
                m.fragments.forEach((f, i) => {
                  const piece = bytes.slice(at, at + f.size)
                  at += piece.length
                  if (f.spoil === "badUtf8" && piece.length > 0) piece[0] = 0xff
                  const wire = peerFrame(side, i === 0 ? m.opcode : Opcode.Continuation, piece, { fin: false })
                  if (f.spoil === "rsv") wire[0] = wire[0]! | 0x20
                  if (f.spoil === "mask") wire[1] = wire[1]! ^ 0x80
                  frames.push(wire)
                  if (m.pingAfter.includes(i)) frames.push(peerFrame(side, Opcode.Ping, "p"))
                })
                const last = bytes.slice(at)
                frames.push(peerFrame(side, m.fragments.length === 0 ? m.opcode : Opcode.Continuation, last))
              }
              const wire = concat(frames)
              const run = (coalesces: boolean) => {
                const connection = make(side, { maxSize })
                connection.emitsPings = emitsPings
                connection.coalescesFragments = coalesces
                const results = readsOf(wire, cuts).map((read) => tagOf(connection.receiveData(read)))
                // Data frames assembled into messages; other events as they are.
                const transcript: Array<unknown> = []
                let message: { opcode: number; data: string } | undefined
                for (const event of connection.eventsReceived()) {
                  if (!(event instanceof Frame)) continue
                  if (event.opcode >= Opcode.Close) {
                    transcript.push({ control: event.opcode, data: hex(event.data) })
                    continue
                  }
                  if (event.opcode !== Opcode.Continuation) message = { opcode: event.opcode, data: "" }
                  message!.data += hex(event.data)
                  if (event.fin) {
                    transcript.push(message)
                    message = undefined
                  }
                }
                if (message !== undefined) transcript.push({ partial: message })
                return {
                  results,
                  transcript,
                  sent: sent(connection),
                  state: connection.state,
                  failure: connection.parserExc?.message
                }
              }
              expect(run(true)).toEqual(run(false))
            }
          ),
          { numRuns: 400 }
        )
      })
    }

    it("server receives empty ping", () => {
      const server = make("server")
      receive(server, clientFrame(Opcode.Ping, ""))
      expect(written(server)).toEqual(["8a00"])
    })

    it("server receives ping of 125 bytes", () => {
      const server = make("server")
      const payload = Uint8Array.from({ length: 125 }, (_, i) => i)
      receive(server, clientFrame(Opcode.Ping, payload))
      expect(written(server)).toEqual([`8a7d${hex(payload)}`])
    })

    it("client receives ping and answers with a masked pong echoing it", () => {
      const client = make("client")
      receive(client, frame(Opcode.Ping, "abc"))
      const [bytes] = output(client)
      expect(hex(bytes!.subarray(0, 2))).toBe("8a83")
      expect(parseOutput(bytes!, true)).toEqual([{ opcode: Opcode.Pong, fin: true, data: "616263" }])
    })

    for (const side of SIDES) {
      it(`${side} answers the pings of one read with one write, in order, before a close in the same read`, () => {
        const connection = make(side)
        const payloads = Array.from({ length: 300 }, (_, i) => Uint8Array.from({ length: i % 126 }, (_, j) => i + j))
        receive(
          connection,
          concat([
            ...payloads.map((p) => peerFrame(side, Opcode.Ping, p)),
            peerFrame(side, Opcode.Close, fromHex("03e8"))
          ])
        )
        const chunks = output(connection).filter((chunk) => chunk.byteLength > 0)
        // 300 pongs of up to 131 bytes: packed in buffers of at most 16 KiB, then the close frame.
        const pongBytes = payloads.reduce((n, p) => n + p.length + (side === "client" ? 6 : 2), 0)
        expect(chunks.length).toBe(Math.ceil(pongBytes / 16_384) + 1)
        for (const chunk of chunks) expect(chunk.byteLength).toBeLessThanOrEqual(16_384)
        expect(parseOutput(concat(chunks), side === "client")).toEqual([
          ...payloads.map((p) => ({ opcode: Opcode.Pong, fin: true, data: hex(p) })),
          closeFrame(1000)
        ])
      })

      it(`${side} answers pings read one at a time with a write each`, () => {
        const connection = make(side)
        receive(connection, peerFrame(side, Opcode.Ping, "a"))
        expect(parseOutput(concat(output(connection)), side === "client")).toEqual([
          { opcode: Opcode.Pong, fin: true, data: "61" }
        ])
        receive(connection, peerFrame(side, Opcode.Ping, "b"))
        expect(parseOutput(concat(output(connection)), side === "client")).toEqual([
          { opcode: Opcode.Pong, fin: true, data: "62" }
        ])
      })

      it(`${side} reuses the buffers of pongs once told the network took them, and only then`, () => {
        const connection = make(side)
        const masked = side === "client"
        const payloads = (seed: number) =>
          Array.from({ length: 300 }, (_, i) => Uint8Array.from({ length: 125 }, (_, j) => (seed + i + j) & 0xff))
        const pings = (ps: Array<Uint8Array>) => concat(ps.map((p) => peerFrame(side, Opcode.Ping, p)))
        const pongs = (ps: Array<Uint8Array>) => ps.map((p) => ({ opcode: Opcode.Pong, fin: true, data: hex(p) }))
        // The full-size (16 KiB) buffers that chunks were cut from (smaller ones come from Node's pool).
        const packs = (chunks: Array<Uint8Array>) =>
          new Set(chunks.filter((c) => c.buffer.byteLength === 16_384).map((c) => c.buffer))
        receive(connection, pings(payloads(1)))
        const first = output(connection)
        receive(connection, pings(payloads(2)))
        const second = output(connection)
        // Not reported written: the second read wrote into buffers of its own.
        expect(parseOutput(concat(first), masked)).toEqual(pongs(payloads(1)))
        expect(parseOutput(concat(second), masked)).toEqual(pongs(payloads(2)))
        expect(packs(second).size).toBe(2)
        for (const pack of packs(second)) expect(packs(first).has(pack)).toBe(false)
        connection.writesDone()
        receive(connection, pings(payloads(3)))
        const third = output(connection)
        expect(parseOutput(concat(third), masked)).toEqual(pongs(payloads(3)))
        expect([...packs(third)].filter((pack) => packs(second).has(pack)).length).toBeGreaterThan(0)
      })
    }

    for (const side of SIDES) {
      it(`${side} receives pong`, () => {
        const connection = make(side)
        receive(connection, peerFrame(side, Opcode.Pong, "abc"))
        expect(events(connection)).toEqual([{ opcode: Opcode.Pong, fin: true, data: "616263" }])
        expect(output(connection)).toEqual([])
      })

      it(`${side} receives ping while closing`, () => {
        const connection = make(side)
        connection.sendClose(1000)
        sent(connection)
        receive(connection, peerFrame(side, Opcode.Ping, "p"))
        // Control frames may follow a close frame (RFC 6455 §5.5).
        expect(sent(connection)).toEqual([{ opcode: Opcode.Pong, fin: true, data: "70" }])
      })

      it(`${side} receives close with code and reason`, () => {
        const connection = make(side)
        receive(connection, peerFrame(side, Opcode.Close, serializeClose(new Close(1000, "bye"))))
        expect(events(connection)).toEqual([closeFrame(1000, "bye")])
        // RFC 6455 §5.5.1: answer with a close frame echoing the code; the server half-closes first.
        expect(sent(connection)).toEqual(
          side === "server" ? [closeFrame(1000, "bye"), "EOF"] : [closeFrame(1000, "bye")]
        )
        expect(connection.state).toBe(State.CLOSING)
        expect(connection.closeRcvd).toEqual(new Close(1000, "bye"))
        expect(connection.closeSent).toEqual(new Close(1000, "bye"))
        expect(connection.closeRcvdThenSent).toBe(true)
      })

      it(`${side} receives close without code`, () => {
        const connection = make(side)
        receive(connection, peerFrame(side, Opcode.Close, ""))
        expect(sent(connection)).toEqual(
          side === "server"
            ? [{ opcode: Opcode.Close, fin: true, data: "" }, "EOF"]
            : [{ opcode: Opcode.Close, fin: true, data: "" }]
        )
        connection.receiveEof()
        expect(connection.closeCode).toBe(1005)
        expect(connection.closeReason).toBe("")
        expect(connection.closeExc).toMatchObject({ _tag: "ConnectionClosedError", code: 1005, sentCode: 1005 })
      })

      it(`${side} receives close with a 1-byte payload`, () => {
        const connection = make(side)
        receive(connection, peerFrame(side, Opcode.Close, fromHex("03")))
        expect(events(connection)).toEqual([])
        expectFailed(connection, 1002, "close frame too short", "ProtocolError")
      })

      for (const code of [0, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000, 65535]) {
        it(`${side} receives close with invalid code ${code}`, () => {
          const connection = make(side)
          receive(connection, peerFrame(side, Opcode.Close, Uint8Array.of(code >> 8, code & 0xff)))
          expectFailed(connection, 1002, `invalid status code ${code}`, "ProtocolError")
        })
      }

      it(`${side} receives close with invalid UTF-8 reason`, () => {
        const connection = make(side)
        receive(connection, peerFrame(side, Opcode.Close, fromHex("03e8 61c3")))
        expectFailed(connection, 1007, "invalid UTF-8 in close reason", "InvalidUtf8")
      })
    }
  })

  describe("closing handshake", () => {
    it("server starts the closing handshake", () => {
      const { client, server } = openPair()
      expect([client.state, server.state]).toEqual([State.OPEN, State.OPEN])
      expect([client.closeExpected(), server.closeExpected()]).toEqual([false, false])
      server.sendClose(1000, "done")
      expect(server.state).toBe(State.CLOSING)
      // The server now waits for the client's close frame and its TCP close.
      expect(server.closeExpected()).toBe(true)
      expect(written(server)).toEqual([`8806${closeData(1000, "done")}`])
      receive(client, frame(Opcode.Close, serializeClose(new Close(1000, "done"))))
      // The client echoes, then waits for the server to close the TCP connection first.
      expect(sent(client)).toEqual([closeFrame(1000, "done")])
      expect(client.state).toBe(State.CLOSING)
      expect(client.closeExpected()).toBe(true)
      receive(server, clientFrame(Opcode.Close, serializeClose(new Close(1000, "done"))))
      expect(events(server)).toEqual([closeFrame(1000, "done")])
      expect(sent(server)).toEqual(["EOF"])
      expect(server.state).toBe(State.CLOSING)
      client.receiveEof()
      // Only now does the client half-close.
      expect(sent(client)).toEqual(["EOF"])
      expect(client.state).toBe(State.CLOSED)
      expect(client.closeExpected()).toBe(false)
      server.receiveEof()
      expect(server.state).toBe(State.CLOSED)
      expect(server.closeExpected()).toBe(false)
      expect(sent(server)).toEqual([])
      expect([client.closeCode, client.closeReason, server.closeCode, server.closeReason]).toEqual([
        1000,
        "done",
        1000,
        "done"
      ])
      expect(server.closeRcvdThenSent).toBe(false)
      expect(client.closeRcvdThenSent).toBe(true)
      expect(server.closeExc).toMatchObject({
        _tag: "ConnectionClosedOK",
        code: 1000,
        sentCode: 1000,
        rcvdThenSent: false
      })
      expect(client.closeExc).toMatchObject({
        _tag: "ConnectionClosedOK",
        code: 1000,
        sentCode: 1000,
        rcvdThenSent: true
      })
    })

    it("client starts the closing handshake", () => {
      const { client, server } = openPair()
      client.sendClose(1001, "bye")
      expect(client.closeExpected()).toBe(true)
      transfer(client, server)
      expect(events(server)).toEqual([closeFrame(1001, "bye")])
      // The server echoes and half-closes at once.
      expect(server.state).toBe(State.CLOSING)
      const out = output(server)
      // The frame in one chunk (a small payload is copied behind its header), then SEND_EOF.
      expect(out.map(hex)).toEqual([`8805${closeData(1001, "bye")}`, ""])
      expect(out[1]).toBe(SEND_EOF)
      for (const chunk of out) chunk.byteLength > 0 ? client.receiveData(chunk) : client.receiveEof()
      expect(events(client)).toEqual([closeFrame(1001, "bye")])
      expect(client.state).toBe(State.CLOSED)
      expect(sent(client)).toEqual(["EOF"])
      server.receiveEof()
      expect(server.state).toBe(State.CLOSED)
      expect(client.closeExc).toMatchObject({ _tag: "ConnectionClosedOK", code: 1001, reason: "bye", sentCode: 1001 })
      expect(server.closeExc).toMatchObject({ _tag: "ConnectionClosedOK", code: 1001, reason: "bye", sentCode: 1001 })
    })

    it("client and server start the closing handshake at the same time", () => {
      const { client, server } = openPair()
      client.sendClose(1000)
      server.sendClose(1001)
      settle(client, server)
      expect([client.state, server.state]).toEqual([State.CLOSED, State.CLOSED])
      expect(client.closeExc).toMatchObject({
        _tag: "ConnectionClosedOK",
        code: 1001,
        sentCode: 1000,
        rcvdThenSent: false
      })
      expect(server.closeExc).toMatchObject({
        _tag: "ConnectionClosedOK",
        code: 1000,
        sentCode: 1001,
        rcvdThenSent: false
      })
    })

    it("client and server close at the same time with different codes", () => {
      const { client, server } = openPair()
      client.sendClose(1000)
      server.sendClose(1002)
      settle(client, server)
      expect(client.closeExc).toMatchObject({ _tag: "ConnectionClosedError", code: 1002, sentCode: 1000 })
      expect(server.closeExc).toMatchObject({ _tag: "ConnectionClosedError", code: 1000, sentCode: 1002 })
    })

    for (const [code, tag] of [
      [1000, "ConnectionClosedOK"],
      [1001, "ConnectionClosedOK"],
      [1002, "ConnectionClosedError"],
      [1011, "ConnectionClosedError"],
      [3000, "ConnectionClosedError"],
      [4999, "ConnectionClosedError"]
    ] as const) {
      it(`client closes with ${code}: both sides report ${tag}`, () => {
        const { client, server } = openPair()
        client.sendClose(code)
        settle(client, server)
        expect(client.closeExc).toMatchObject({ _tag: tag, code, sentCode: code })
        expect(server.closeExc).toMatchObject({ _tag: tag, code, sentCode: code })
        expect(isOkCloseCode(code)).toBe(tag === "ConnectionClosedOK")
      })
    }

    it("client closes without code: both sides report 1005", () => {
      const { client, server } = openPair()
      client.sendClose()
      settle(client, server)
      expect([client.closeCode, server.closeCode]).toEqual([1005, 1005])
      expect(server.closeExc).toMatchObject({ _tag: "ConnectionClosedError", code: 1005, sentCode: 1005 })
    })

    it("server receives EOF without close", () => {
      const { server } = openPair()
      server.receiveEof()
      expect(sent(server)).toEqual(["EOF"])
      expect(server.state).toBe(State.CLOSED)
      expect([server.closeCode, server.closeReason]).toEqual([1006, ""])
      expect(server.closeExc).toMatchObject({ _tag: "ConnectionClosedError", code: 1006, sentCode: undefined })
    })

    it("client receives EOF without close", () => {
      const { client } = openPair()
      client.receiveEof()
      expect(sent(client)).toEqual(["EOF"])
      expect(client.state).toBe(State.CLOSED)
      expect(client.closeCode).toBe(1006)
      expect(client.closeExc._tag).toBe("ConnectionClosedError")
    })

    it("client receives EOF while closing", () => {
      const { client } = openPair()
      client.sendClose(1000)
      output(client)
      client.receiveEof()
      expect(sent(client)).toEqual(["EOF"])
      expect(client.state).toBe(State.CLOSED)
      // Close sent but none received: not a clean closure.
      expect(client.closeExc).toMatchObject({ _tag: "ConnectionClosedError", code: 1006, sentCode: 1000 })
    })

    it("server receives data frames after sending close", () => {
      const { client, server } = openPair()
      server.sendClose(1000)
      // The client sent a message before it received the server's close frame: it is delivered
      // (RFC 6455 §5.5.1 lets an endpoint finish sending data before answering a close).
      client.sendText(utf8("in flight"))
      client.sendBinary(utf8("a"), false)
      transfer(client, server)
      expect(events(server).map((e) => e.opcode)).toEqual([Opcode.Text, Opcode.Binary])
      expect(server.parserExc).toBeUndefined()
      client.sendContinuation(utf8("b"), true)
      settle(client, server)
      expect(events(server).map((e) => e.opcode)).toEqual([Opcode.Continuation, Opcode.Close])
      expect([client.state, server.state]).toEqual([State.CLOSED, State.CLOSED])
      expect(server.closeExc._tag).toBe("ConnectionClosedOK")
    })

    it("closeCode and closeReason are unknown until closed", () => {
      const { client, server } = openPair()
      client.sendClose(1000, "x")
      transfer(client, server)
      expect([client.closeCode, client.closeReason, server.closeCode, server.closeReason]).toEqual([
        undefined,
        undefined,
        undefined,
        undefined
      ])
      settle(client, server)
      expect([client.closeCode, client.closeReason]).toEqual([1000, "x"])
    })

    it("client and server go through CONNECTING, OPEN, CLOSING, CLOSED", () => {
      const client = new ClientConnection(URI)
      const server = new ServerConnection()
      const states = () => [client.state, server.state]
      expect(states()).toEqual([State.CONNECTING, State.CONNECTING])
      client.sendRequest(client.connect())
      transfer(client, server)
      const [request] = server.eventsReceived()
      expect(request).toBeInstanceOf(Request)
      expect(states()).toEqual([State.CONNECTING, State.CONNECTING])
      server.sendResponse(server.accept(request as Request))
      expect(states()).toEqual([State.CONNECTING, State.OPEN])
      transfer(server, client)
      expect(states()).toEqual([State.OPEN, State.OPEN])
      client.sendClose(1000)
      expect(states()).toEqual([State.CLOSING, State.OPEN])
      transfer(client, server)
      expect(states()).toEqual([State.CLOSING, State.CLOSING])
      transfer(server, client)
      expect(states()).toEqual([State.CLOSED, State.CLOSING])
      transfer(client, server)
      expect(states()).toEqual([State.CLOSED, State.CLOSED])
    })
  })

  describe("fail", () => {
    for (const side of SIDES) {
      it(`${side} fails an open connection`, () => {
        const connection = make(side)
        expect(outcome(connection.fail(1011, "oops"))).toBe("ok")
        expect(connection.parserExc).toBeUndefined()
        connection.parserExc = undefined
        // Same as a failure on bad input, except there is no cause.
        const expected = side === "server" ? [closeFrame(1011, "oops"), "EOF"] : [closeFrame(1011, "oops")]
        expect(sent(connection)).toEqual(expected)
        expect(connection.state).toBe(State.CLOSING)
        expect(connection.closeExpected()).toBe(true)
        // RFC 6455 §7.1.7: no more input is processed, not even a close frame.
        receive(connection, peerFrame(side, Opcode.Ping, "p"), peerFrame(side, Opcode.Close, fromHex("03e8")))
        expect(connection.eventsReceived()).toEqual([])
        expect(sent(connection)).toEqual([])
        expect(connection.closeRcvd).toBeUndefined()
        connection.receiveEof()
        expect(sent(connection)).toEqual(side === "server" ? [] : ["EOF"])
        expect(connection.state).toBe(State.CLOSED)
        expect(connection.closeExc).toMatchObject({ _tag: "ConnectionClosedError", code: 1006, sentCode: 1011 })
      })

      it(`${side} fails with 1006`, () => {
        const connection = make(side)
        connection.fail(1006)
        // No close frame for an abnormal closure; a server still half-closes.
        expect(sent(connection)).toEqual(side === "server" ? ["EOF"] : [])
        expect(connection.closeSent).toBeUndefined()
        receive(connection, peerFrame(side, Opcode.Text, "x"))
        expect(connection.eventsReceived()).toEqual([])
        connection.receiveEof()
        expect(connection.state).toBe(State.CLOSED)
      })

      it(`${side} fails while closing`, () => {
        const connection = make(side)
        connection.sendClose(1000)
        sent(connection)
        connection.fail(1002, "x")
        // Only one close frame is ever sent.
        expect(sent(connection)).toEqual(side === "server" ? ["EOF"] : [])
        expect(connection.closeSent).toEqual(new Close(1000, ""))
      })

      it(`${side} fails with an invalid code`, () => {
        const connection = make(side)
        expect(outcome(connection.fail(999))).toEqual({ _tag: "ProtocolError", message: "invalid close code: 999" })
        expect(tagOf(connection.fail(1005))).toBe("ProtocolError")
        expect(connection.state).toBe(State.OPEN)
        expect(output(connection)).toEqual([])
      })

      it(`${side} fails with a reason over 123 bytes`, () => {
        const connection = make(side)
        expect(outcome(connection.fail(1011, "é".repeat(100)))).toBe("ok")
        // Truncated on a character boundary so that the close frame stays a valid control frame.
        expect(sent(connection)[0]).toEqual(closeFrame(1011, "é".repeat(61)))
      })

      it(`${side} fails after receiving EOF`, () => {
        const connection = make(side)
        connection.receiveEof()
        sent(connection)
        expect(outcome(connection.fail(1000))).toBe("ok")
        expect(sent(connection)).toEqual([])
        expect(connection.state).toBe(State.CLOSED)
      })
    }

    it("server fails during the opening handshake", () => {
      const server = new ServerConnection()
      server.fail(1011)
      // No WebSocket connection yet: no close frame, just the end of the TCP connection.
      expect(sent(server)).toEqual(["EOF"])
      server.receiveEof()
      expect(server.state).toBe(State.CLOSED)
    })

    it("client fails during the opening handshake", () => {
      const client = new ClientConnection(URI)
      client.sendRequest(client.connect())
      output(client)
      client.fail(1011)
      // No WebSocket connection yet: no close frame; the client closes the TCP connection.
      expect(sent(client)).toEqual(["EOF"])
      client.receiveData(utf8("HTTP/1.1 101 Switching Protocols\r\n\r\n"))
      expect(client.eventsReceived()).toEqual([])
      client.receiveEof()
      expect(client.state).toBe(State.CLOSED)
      expect(output(client)).toEqual([])
    })
  })

  describe("connection", () => {
    it("id is a unique UUID", () => {
      const a = make("client")
      const b = make("client")
      expect(a.id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/)
      expect(a.id).not.toBe(b.id)
    })

    it("defaults to OPEN and 1 MiB", () => {
      const connection = make("server")
      expect(connection.state).toBe(State.OPEN)
      expect(connection.maxSize).toBe(1_048_576)
      expect(make("server", { maxSize: null }).maxSize).toBeNull()
    })

    it("client sends a message to the server over the wire", () => {
      const { client, server } = openPair()
      client.sendText(utf8("Hello"))
      transfer(client, server)
      expect(events(server)).toEqual([{ opcode: Opcode.Text, fin: true, data: hex(utf8("Hello")) }])
      server.sendText(utf8("Hi"))
      expect(written(server)).toEqual(["81024869"])
    })
  })

  // ---------------------------------------------------------------------------
  // Property tests
  // ---------------------------------------------------------------------------

  /** Deterministic PRNG (mulberry32) so large payloads need not be generated by fast-check. */
  const prng = (seed: number) => {
    let a = seed >>> 0
    return (): number => {
      a = (a + 0x6d2b79f5) >>> 0
      let t = a
      t = Math.imul(t ^ (t >>> 15), t | 1)
      t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
      return ((t ^ (t >>> 14)) >>> 0) / 4294967296
    }
  }

  const CHARS = ["a", "z", " ", "é", "ß", "€", "中", "😀", "\u0000", "\u{10ffff}"]

  /** `size` bytes: binary from a PRNG, or valid UTF-8 mixing 1- to 4-byte characters. */
  const payload = (kind: "text" | "binary", size: number, seed: number): Uint8Array => {
    const random = prng(seed)
    if (kind === "binary") return Uint8Array.from({ length: size }, () => (random() * 256) | 0)
    const out = new Uint8Array(size)
    let n = 0
    while (n < size) {
      const char = utf8(CHARS[(random() * CHARS.length) | 0]!)
      const bytes = n + char.length <= size ? char : utf8("a")
      out.set(bytes, n)
      n += bytes.length
    }
    return out
  }

  /** Splits bytes at random points. */
  const rechunk =
    (seed: number) =>
    (bytes: Uint8Array): Array<Uint8Array> => {
      const random = prng(seed)
      const out: Array<Uint8Array> = []
      let start = 0
      while (start < bytes.length) {
        const length = 1 + Math.floor(random() ** 3 * Math.min(bytes.length, 20000))
        out.push(bytes.subarray(start, start + length))
        start += length
      }
      return out
    }

  const sizeArb = fc.oneof(
    { weight: 4, arbitrary: fc.integer({ min: 0, max: 300 }) },
    { weight: 1, arbitrary: fc.constantFrom(125, 126, 127, 65535, 65536, 65537) },
    { weight: 2, arbitrary: fc.integer({ min: 0, max: 70000 }) }
  )

  const actionArb = fc.record({
    from: fc.constantFrom<Side>("client", "server"),
    what: fc.oneof(
      {
        weight: 3,
        arbitrary: fc.record({
          kind: fc.constantFrom<"text" | "binary">("text", "binary"),
          size: sizeArb,
          seed: fc.integer(),
          cuts: fc.array(fc.nat(), { maxLength: 4 }),
          ping: fc.option(fc.uint8Array({ maxLength: 125 }), { nil: undefined })
        })
      },
      { weight: 1, arbitrary: fc.record({ ping: fc.uint8Array({ maxLength: 125 }) }) }
    ),
    deliver: fc.boolean(),
    chunkSeed: fc.integer()
  })

  interface Peer {
    readonly connection: Connection
    /** Messages sent, in order, as [opcode, payload]. */
    readonly sentMessages: Array<readonly [number, Uint8Array]>
    readonly received: Array<readonly [number, Uint8Array]>
    readonly pings: Array<Uint8Array>
    readonly pongs: Array<Uint8Array>
    current: { opcode: number; parts: Array<Uint8Array> } | undefined
  }

  const collect = (peer: Peer) => {
    for (const event of peer.connection.eventsReceived()) {
      if (!(event instanceof Frame)) throw new Error("unexpected handshake event")
      switch (event.opcode) {
        case Opcode.Text:
        case Opcode.Binary:
          expect(peer.current).toBeUndefined()
          peer.current = { opcode: event.opcode, parts: [new Uint8Array(event.data)] }
          break
        case Opcode.Continuation:
          peer.current!.parts.push(new Uint8Array(event.data))
          break
        case Opcode.Pong:
          peer.pongs.push(new Uint8Array(event.data))
          break
        case Opcode.Ping:
          break
        default:
          throw new Error(`unexpected frame ${event.opcode}`)
      }
      if (event.fin && peer.current !== undefined && event.opcode <= Opcode.Binary) {
        peer.received.push([peer.current.opcode, concat(peer.current.parts)])
        peer.current = undefined
      }
    }
  }

  const sameMessages = (
    a: ReadonlyArray<readonly [number, Uint8Array]>,
    b: ReadonlyArray<readonly [number, Uint8Array]>
  ) =>
    a.length === b.length && a.every(([opcode, data], i) => opcode === b[i]![0] && Buffer.from(data).equals(b[i]![1]))

  it("client and server agree on every message and pong (property)", () => {
    fc.assert(
      fc.property(fc.array(actionArb, { maxLength: 8 }), fc.integer(), (actions, finalSeed) => {
        const pair = openPair()
        const peers: Record<Side, Peer> = {
          client: { connection: pair.client, sentMessages: [], received: [], pings: [], pongs: [], current: undefined },
          server: { connection: pair.server, sentMessages: [], received: [], pings: [], pongs: [], current: undefined }
        }
        const deliver = (from: Side, seed: number) => {
          const to: Side = from === "client" ? "server" : "client"
          transfer(peers[from].connection, peers[to].connection, rechunk(seed))
          collect(peers[to])
          // Pongs answering pings go back at once.
          transfer(peers[to].connection, peers[from].connection, rechunk(seed + 1))
          collect(peers[from])
        }
        for (const action of actions) {
          const peer = peers[action.from]
          const connection = peer.connection
          const ok = (result: Either.Either<void, unknown>) => expect(Either.isRight(result)).toBe(true)
          const what = action.what
          if ("kind" in what) {
            const data = payload(what.kind, what.size, what.seed)
            const cuts = [...new Set(what.cuts.map((cut) => cut % (what.size + 1)))].sort((a, b) => a - b)
            const bounds = [0, ...cuts, what.size]
            const opcode = what.kind === "text" ? Opcode.Text : Opcode.Binary
            for (let i = 0; i + 1 < bounds.length; i++) {
              const part = data.subarray(bounds[i]!, bounds[i + 1]!)
              const fin = i + 2 === bounds.length
              if (i === 0) ok(what.kind === "text" ? connection.sendText(part, fin) : connection.sendBinary(part, fin))
              else ok(connection.sendContinuation(part, fin))
              if (i === 0 && !fin && what.ping !== undefined) {
                ok(connection.sendPing(what.ping))
                peer.pings.push(what.ping)
              }
            }
            peer.sentMessages.push([opcode, data])
          } else {
            ok(connection.sendPing(what.ping))
            peer.pings.push(what.ping)
          }
          if (action.deliver) deliver(action.from, action.chunkSeed)
        }
        deliver("client", finalSeed)
        deliver("server", finalSeed + 2)
        for (const [from, to] of [
          ["client", "server"],
          ["server", "client"]
        ] as const) {
          expect(sameMessages(peers[from].sentMessages, peers[to].received)).toBe(true)
          expect(peers[to].current).toBeUndefined()
          expect(peers[from].pongs.map(hex)).toEqual(peers[from].pings.map(hex))
        }
        pair.client.sendClose(1000)
        settle(pair.client, pair.server)
        expect([pair.client.state, pair.server.state]).toEqual([State.CLOSED, State.CLOSED])
        expect([pair.client.closeExc._tag, pair.server.closeExc._tag]).toEqual([
          "ConnectionClosedOK",
          "ConnectionClosedOK"
        ])
      }),
      { numRuns: 40 }
    )
  })

  /** Frames of any kind, valid or not, with the right or (rarely) the wrong masking for `side`. */
  const noiseFrameArb = (side: Side) =>
    fc
      .record({
        opcode: fc.oneof(
          { weight: 5, arbitrary: fc.constantFrom(0x0, 0x1, 0x2, 0x8, 0x9, 0xa) },
          { weight: 1, arbitrary: fc.integer({ min: 0, max: 15 }) }
        ),
        fin: fc.oneof({ weight: 3, arbitrary: fc.constant(true) }, { weight: 1, arbitrary: fc.constant(false) }),
        rsv: fc.oneof(
          { weight: 9, arbitrary: fc.constant(0) },
          { weight: 1, arbitrary: fc.integer({ min: 1, max: 7 }) }
        ),
        payload: fc.oneof(
          fc.uint8Array({ maxLength: 140 }),
          fc.constantFrom(utf8("ok"), utf8("é"), fromHex("e282"), fromHex("ff")),
          fc
            .tuple(
              fc.constantFrom(0, 999, 1000, 1001, 1002, 1005, 1006, 3000, 4999, 5000),
              fc.uint8Array({ maxLength: 8 })
            )
            .map(([code, reason]) => concat([Uint8Array.of(code >> 8, code & 0xff), reason]))
        ),
        wrongMask: fc.integer({ min: 0, max: 15 }).map((n) => n === 0)
      })
      .map(({ fin, opcode, payload, rsv, wrongMask }) =>
        serializeFrameToBytes(
          new Frame(opcode as Opcode, payload, fin, (rsv & 4) !== 0, (rsv & 2) !== 0, (rsv & 1) !== 0),
          (side === "server") !== wrongMask,
          MASK_KEY
        )
      )

  const noiseArb = (side: Side) =>
    fc.array(
      fc.oneof(
        { weight: 4, arbitrary: noiseFrameArb(side) },
        { weight: 1, arbitrary: fc.uint8Array({ minLength: 1, maxLength: 40 }) }
      ),
      { maxLength: 10 }
    )

  const appActionArb = fc.array(fc.constantFrom("none", "text", "fragment", "ping", "close", "fail"), { maxLength: 10 })

  /** Does what an application might do between two chunks; results are ignored, never thrown. */
  const appAction = (connection: Connection, action: string) => {
    switch (action) {
      case "text":
        return connection.sendText(utf8("x"))
      case "fragment":
        return connection.sendBinary(utf8("y"), false)
      case "ping":
        return connection.sendPing(utf8("z"))
      case "close":
        return connection.sendClose(1000)
      case "fail":
        return connection.fail(1011, "f")
      default:
        return Either.void
    }
  }

  const expectTypedEnd = (connection: Connection) => {
    expect(connection.state).toBe(State.CLOSED)
    expect(["ConnectionClosedOK", "ConnectionClosedError"]).toContain(connection.closeExc._tag)
    expect(typeof connection.closeCode).toBe("number")
    if (connection.parserExc !== undefined) {
      expect(["ProtocolError", "InvalidUtf8", "PayloadTooBig"]).toContain(connection.parserExc._tag)
    }
  }

  for (const side of SIDES) {
    it(`${side} receives random bytes after the handshake (property)`, () => {
      fc.assert(
        fc.property(noiseArb(side), appActionArb, fc.integer(), (noise, app, seed) => {
          const pair = openPair({ maxSize: 100 }, { maxSize: 100 })
          const connection: Connection = pair[side]
          const chunks = rechunk(seed)(concat(noise))
          const out: Array<Uint8Array> = []
          for (let i = 0; i < Math.max(chunks.length, app.length); i++) {
            if (i < chunks.length) connection.receiveData(chunks[i]!)
            if (i < app.length) appAction(connection, app[i]!)
            connection.eventsReceived()
            out.push(...output(connection))
          }
          expect(Either.isRight(connection.receiveEof())).toBe(true)
          out.push(...output(connection))
          expectTypedEnd(connection)
          // Whatever it wrote is a valid stream of frames for its peer.
          const peer = new Connection(side === "client" ? "server" : "client")
          for (const chunk of out) chunk.byteLength > 0 ? peer.receiveData(new Uint8Array(chunk)) : peer.receiveEof()
          expect(peer.parserExc).toBeUndefined()
        }),
        { numRuns: 200 }
      )
    })
  }

  it("server receives random bytes from the start (property)", () => {
    const request = () => {
      const client = new ClientConnection(URI)
      return client.connect().serialize()
    }
    fc.assert(
      fc.property(
        fc.constantFrom("none", "request", "partial"),
        noiseArb("server"),
        fc.integer(),
        (prefix, noise, seed) => {
          const server = new ServerConnection({ maxSize: 100 })
          const head =
            prefix === "none" ? new Uint8Array(0) : prefix === "request" ? request() : request().subarray(0, 30)
          const chunks = rechunk(seed)(concat([head, ...noise]))
          for (const chunk of chunks) {
            server.receiveData(chunk)
            for (const event of server.eventsReceived()) {
              if (event instanceof Request) server.sendResponse(server.accept(event))
            }
            output(server)
          }
          server.receiveEof()
          output(server)
          expect(server.state).toBe(State.CLOSED)
          if (server.handshakeExc !== undefined) expect(isInvalidHandshake(server.handshakeExc)).toBe(true)
          else expectTypedEnd(server)
        }
      ),
      { numRuns: 200 }
    )
  })

  it("client receives random bytes from the start (property)", () => {
    fc.assert(
      fc.property(
        fc.constantFrom("none", "101", "101-bad-accept", "404", "partial"),
        noiseArb("client"),
        fc.integer(),
        (prefix, noise, seed) => {
          const client = new ClientConnection(URI, { maxSize: 100 })
          client.sendRequest(client.connect())
          const accept = prefix === "101-bad-accept" ? acceptKey("x") : acceptKey(client.key)
          const headers = new Headers([
            ["Upgrade", "websocket"],
            ["Connection", "Upgrade"],
            ["Sec-WebSocket-Accept", accept]
          ])
          const head =
            prefix === "none"
              ? ""
              : prefix === "404"
                ? "HTTP/1.1 404 Not Found\r\nContent-Length: 3\r\n\r\nabc"
                : `HTTP/1.1 101 Switching Protocols\r\n${headers.serialize()}`
          const bytes = utf8(prefix === "partial" ? head.slice(0, 40) : head)
          for (const chunk of rechunk(seed)(concat([bytes, ...noise]))) {
            client.receiveData(chunk)
            client.eventsReceived()
            output(client)
          }
          client.receiveEof()
          output(client)
          expect(client.state).toBe(State.CLOSED)
          if (client.handshakeExc !== undefined) expect(isInvalidHandshake(client.handshakeExc)).toBe(true)
          else expectTypedEnd(client)
        }
      ),
      { numRuns: 200 }
    )
  })
})
