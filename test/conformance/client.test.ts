/**
 * Conformance of our client: `Client.connect` running the echo handler against a raw server that
 * performs the opening handshake and sends frames itself (unmasked, as a server must). Every
 * section of the table runs here too, except the cases with megabytes on the wire; then the
 * opening handshake, where the raw server answers wrongly on purpose.
 */
import { describe, expect, layer } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Client from "../../src/Client.js"
import { isInvalidHandshake, isNegotiationError } from "../../src/Errors.js"
import {
  closing,
  defaultMaxSize,
  deflate,
  fragmentation,
  framing,
  fuzzCase,
  manyFragments,
  opcodes,
  pings,
  reservedBits,
  utf8
} from "./cases.js"
import {
  acceptRequest,
  type Case,
  ClientUnderTest,
  clientOptions,
  clientUnderTest,
  LOCALHOST,
  RawServer,
  switchingProtocols
} from "./peer.js"
import { check, testCases } from "./suite.js"
import { acceptFor, encodeFrame, Op } from "./wire.js"

const light = (cases: ReadonlyArray<Case>) => cases.filter((c) => c.heavy !== true)

const HANDSHAKE_TIMEOUT_MS = 2000

/**
 * Lets the client connect to the raw server, answers its handshake request with `respond(key)`,
 * and returns how `connect` ended and whether the client then closed the TCP connection.
 */
const handshake = (respond: (key: string) => string | Uint8Array) =>
  Effect.gen(function* () {
    const listener = yield* RawServer
    const deadline = Date.now() + HANDSHAKE_TIMEOUT_MS
    const connecting = yield* Effect.forkScoped(
      Effect.either(Client.connect(`ws://${LOCALHOST}:${listener.port}/`, clientOptions))
    )
    const { wire, key } = yield* acceptRequest(listener.accept, deadline)
    wire.write(respond(key))
    const result = yield* Fiber.join(connecting)
    return { result, wire, deadline }
  })

/** The handshake must fail: returns the error and checks that the client closed the TCP connection. */
const handshakeFailure = (respond: (key: string) => string) =>
  Effect.gen(function* () {
    const { deadline, result, wire } = yield* handshake(respond)
    if (result._tag === "Right") return yield* Effect.die(new Error("the handshake succeeded"))
    const closed = yield* wire.until(() => (wire.eof ? true : undefined), deadline)
    expect(closed).toBe(true)
    return result.left
  })

const UPGRADE = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"

layer(ClientUnderTest, { excludeTestServices: true })("client conformance", (it) => {
  describe("1 framing", () => testCases(it, light(framing())))
  describe("2 pings and pongs", () => testCases(it, pings()))
  describe("3 reserved bits", () => testCases(it, reservedBits()))
  describe("4 reserved opcodes", () => testCases(it, opcodes()))
  describe("5 fragmentation", () => testCases(it, light(fragmentation())))
  describe("6 UTF-8", () => testCases(it, utf8()))
  describe("7 close handling", () => testCases(it, closing()))
  describe("9.3-9.4 large messages in many fragments", () => testCases(it, manyFragments()))
  describe("12-13 permessage-deflate", () => testCases(it, deflate()))
  it.effect.prop(
    "fuzz: random fragmented messages, pings between fragments, maybe one violation",
    [fuzzCase],
    ([c]) => check(c),
    {
      timeout: 20_000,
      fastCheck: { numRuns: 25 }
    }
  )

  describe("opening handshake", () => {
    it.scoped("server answers with a wrong Sec-WebSocket-Accept → InvalidHeaderValue", () =>
      Effect.gen(function* () {
        const error = yield* handshakeFailure(
          () => `${UPGRADE}Sec-WebSocket-Accept: ${acceptFor("AAAAAAAAAAAAAAAAAAAAAA==")}\r\n\r\n`
        )
        expect(error).toMatchObject({ _tag: "InvalidHeaderValue", name: "Sec-WebSocket-Accept" })
      })
    )
    it.scoped("server answers without Sec-WebSocket-Accept → InvalidHeader", () =>
      Effect.gen(function* () {
        const error = yield* handshakeFailure(() => `${UPGRADE}\r\n`)
        expect(error).toMatchObject({ _tag: "InvalidHeader", name: "Sec-WebSocket-Accept" })
      })
    )
    it.scoped("server answers with Upgrade: h2c → InvalidUpgrade", () =>
      Effect.gen(function* () {
        const error = yield* handshakeFailure(
          (key) =>
            `HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${acceptFor(key)}\r\n\r\n`
        )
        expect(error).toMatchObject({ _tag: "InvalidUpgrade", name: "Upgrade" })
      })
    )
    it.scoped("server answers without Connection: Upgrade → InvalidUpgrade", () =>
      Effect.gen(function* () {
        const error = yield* handshakeFailure(
          (key) =>
            `HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nSec-WebSocket-Accept: ${acceptFor(key)}\r\n\r\n`
        )
        expect(error).toMatchObject({ _tag: "InvalidUpgrade", name: "Connection" })
      })
    )
    it.scoped("server answers 403 → InvalidStatusCode", () =>
      Effect.gen(function* () {
        const error = yield* handshakeFailure(() => "HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")
        expect(error).toMatchObject({ _tag: "InvalidStatusCode", statusCode: 403 })
      })
    )
    it.scoped("server accepts an extension that was not offered → NegotiationError", () =>
      Effect.gen(function* () {
        const error = yield* handshakeFailure((key) =>
          switchingProtocols(key, "Sec-WebSocket-Extensions: x-unknown-extension\r\n")
        )
        expect(isNegotiationError(error)).toBe(true)
      })
    )
    it.scoped("server answers permessage-deflate with an invalid window size → NegotiationError", () =>
      Effect.gen(function* () {
        const error = yield* handshakeFailure((key) =>
          switchingProtocols(key, "Sec-WebSocket-Extensions: permessage-deflate; server_max_window_bits=7\r\n")
        )
        expect(isNegotiationError(error)).toBe(true)
      })
    )
    it.scoped("server selects a subprotocol that was not offered → NegotiationError", () =>
      Effect.gen(function* () {
        const error = yield* handshakeFailure((key) => switchingProtocols(key, "Sec-WebSocket-Protocol: chat\r\n"))
        expect(isNegotiationError(error)).toBe(true)
      })
    )
    it.scoped("server answers with something that is not HTTP → InvalidMessage", () =>
      Effect.gen(function* () {
        const error = yield* handshakeFailure(() => "SSH-2.0-OpenSSH_9.6\r\n\r\n")
        expect(error._tag).toBe("InvalidMessage")
        expect(isInvalidHandshake(error)).toBe(true)
      })
    )
    it.scoped("frames in the same segment as the 101 response are received", () =>
      Effect.gen(function* () {
        const early = encodeFrame({ opcode: Op.Text, payload: Buffer.from("early") }, false)
        const { result } = yield* handshake((key) => Buffer.concat([Buffer.from(switchingProtocols(key)), early]))
        if (result._tag === "Left") return yield* Effect.die(result.left)
        const ws = result.right
        expect(yield* ws.recv).toBe("early")
      })
    )
  })
})

const { maxSize: _maxSize, ...defaultOptions } = clientOptions

layer(clientUnderTest(defaultOptions), { excludeTestServices: true })(
  "client conformance at the default maxSize",
  (it) => {
    describe("12.3 maxSize counts the inflated size", () => testCases(it, defaultMaxSize()))
  }
)
