import { describe, expect, it } from "@effect/vitest"
import * as Either from "effect/Either"
import { ClientConnection, type ClientConnectionOptions, USER_AGENT } from "../src/ClientConnection.js"
import { State } from "../src/Connection.js"
import { Opcode } from "../src/Frames.js"
import { acceptKey } from "../src/Handshake.js"
import { Headers } from "../src/Headers.js"
import { Request, Response } from "../src/Http11.js"
import {
  clientExtension,
  concat,
  events,
  frame,
  latin1,
  output,
  parseOutput,
  URI,
  uri,
  utf8,
  written
} from "./fixtures/connections.js"

const make = (options: ClientConnectionOptions = {}, wsuri = URI) => new ClientConnection(wsuri, options)

/** A client that sent its request; its output is drained. */
const started = (options: ClientConnectionOptions = {}) => {
  const client = make(options)
  client.sendRequest(client.connect())
  output(client)
  return client
}

const head = (status: string, headers: ReadonlyArray<readonly [string, string]>, body = ""): Uint8Array =>
  utf8(`HTTP/1.1 ${status}\r\n${new Headers(headers).serialize()}${body}`)

/**
 * A 101 response for `client`; `overrides` replaces or (with `null`) removes the standard headers,
 * `extra` adds headers.
 */
const switching = (
  client: ClientConnection,
  overrides: Readonly<Record<string, string | null>> = {},
  extra: ReadonlyArray<readonly [string, string]> = []
): Uint8Array => {
  const base: Record<string, string | null> = {
    Upgrade: "websocket",
    Connection: "Upgrade",
    "Sec-WebSocket-Accept": acceptKey(client.key),
    ...overrides
  }
  const headers: Array<readonly [string, string]> = []
  for (const [name, value] of Object.entries(base)) if (value !== null) headers.push([name, value])
  return head("101 Switching Protocols", [...headers, ...extra])
}

const receive = (client: ClientConnection, ...chunks: ReadonlyArray<Uint8Array>) => {
  for (const chunk of chunks) expect(Either.isRight(client.receiveData(chunk))).toBe(true)
}

/** Plain fields of the handshake error, `_tag` included. */
const handshakeError = (client: ClientConnection): Record<string, unknown> & { _tag: string; message: string } => {
  const error = client.handshakeExc
  if (error === undefined) throw new Error("expected a handshake failure")
  return { ...Object.fromEntries(Object.entries(error)), _tag: error._tag, message: error.message }
}

/**
 * Checks the end of a failed handshake: the client closes the TCP connection at once, ignores any
 * further data, and is CLOSED once the server closes too.
 */
const expectHandshakeFailed = (client: ClientConnection) => {
  expect(written(client)).toEqual(["EOF"])
  expect(client.state).toBe(State.CONNECTING)
  expect(client.closeExpected()).toBe(true)
  client.eventsReceived()
  receive(client, frame(Opcode.Text, "ignored"))
  expect(client.eventsReceived()).toEqual([])
  client.receiveEof()
  expect(client.state).toBe(State.CLOSED)
  expect(output(client)).toEqual([])
  expect(client.closeCode).toBe(1006)
}

describe("ClientConnection", () => {
  describe("connect", () => {
    it("client builds the handshake request", () => {
      const client = make()
      const request = client.connect()
      expect(request).toBeInstanceOf(Request)
      expect(request.path).toBe("/chat")
      expect([...request.headers.rawItems()]).toEqual([
        ["Host", "example.com"],
        ["Upgrade", "websocket"],
        ["Connection", "Upgrade"],
        ["Sec-WebSocket-Key", client.key],
        ["Sec-WebSocket-Version", "13"],
        ["User-Agent", USER_AGENT]
      ])
      // Nothing is sent until sendRequest.
      expect(output(client)).toEqual([])
    })

    it("client key is 16 random bytes in base64", () => {
      const a = make()
      const b = make()
      expect(a.key).toMatch(/^[A-Za-z0-9+/]{22}==$/)
      expect(Buffer.from(a.key, "base64").length).toBe(16)
      expect(a.key).not.toBe(b.key)
      // The same key in every request of one connection.
      expect(a.connect().headers.getFirst("Sec-WebSocket-Key")).toBe(a.key)
    })

    for (const [text, host, path] of [
      ["ws://example.com:8080/", "example.com:8080", "/"],
      ["ws://example.com:80", "example.com", "/"],
      ["wss://example.com/", "example.com", "/"],
      ["wss://example.com:80/", "example.com:80", "/"],
      ["ws://[::1]:9000/a/b", "[::1]:9000", "/a/b"],
      ["ws://EXAMPLE.com/path?query=1", "example.com", "/path?query=1"]
    ] as const) {
      it(`client builds the request for ${text}`, () => {
        const request = make({}, uri(text)).connect()
        expect(request.headers.getFirst("Host")).toBe(host)
        expect(request.path).toBe(path)
      })
    }

    it("client sends Authorization for user info in the URI", () => {
      const request = make({}, uri("ws://user:pass@example.com/")).connect()
      // RFC 7617: base64("user:pass").
      expect(request.headers.getAll("Authorization")).toEqual(["Basic dXNlcjpwYXNz"])
      expect(request.headers.getFirst("Host")).toBe("example.com")
      expect(make().connect().headers.has("Authorization")).toBe(false)
    })

    it("client sends Origin", () => {
      const request = make({ origin: "https://example.com" }).connect()
      expect([...request.headers.rawItems()].slice(0, 3)).toEqual([
        ["Host", "example.com"],
        ["Origin", "https://example.com"],
        ["Upgrade", "websocket"]
      ])
    })

    it("client offers extensions in order", () => {
      const request = make({
        extensions: [
          clientExtension("x-a", [
            ["p", "1"],
            ["q", null]
          ]),
          clientExtension("x-b")
        ]
      }).connect()
      expect(request.headers.getAll("Sec-WebSocket-Extensions")).toEqual(["x-a; p=1; q, x-b"])
    })

    it("client offers subprotocols in order", () => {
      const request = make({ subprotocols: ["chat", "superchat"] }).connect()
      expect(request.headers.getAll("Sec-WebSocket-Protocol")).toEqual(["chat, superchat"])
      expect(make({ subprotocols: [] }).connect().headers.has("Sec-WebSocket-Protocol")).toBe(false)
    })

    it("client adds extra headers", () => {
      const fromRecord = make({ extraHeaders: { "X-Token": "abc", Cookie: "a=1" } }).connect()
      expect(fromRecord.headers.getAll("X-Token")).toEqual(["abc"])
      expect(fromRecord.headers.getAll("Cookie")).toEqual(["a=1"])
      const fromPairs = make({
        extraHeaders: [
          ["X-Multi", "1"],
          ["X-Multi", "2"]
        ]
      }).connect()
      expect(fromPairs.headers.getAll("X-Multi")).toEqual(["1", "2"])
      const fromHeaders = make({ extraHeaders: new Headers([["X-H", "v"]]) }).connect()
      expect(fromHeaders.headers.getAll("x-h")).toEqual(["v"])
    })

    it("client sends one Host: an extra Host header replaces the URI's (RFC 7230 §5.4)", () => {
      const request = make({ extraHeaders: { host: "virtual.example.com", "X-A": "1" } }).connect()
      expect(request.headers.getAll("Host")).toEqual(["virtual.example.com"])
      // Still the first header, as the URI's would be.
      const [name, value] = [...request.headers.rawItems()][0]!
      expect([name.toLowerCase(), value]).toEqual(["host", "virtual.example.com"])
      expect(request.headers.getAll("X-A")).toEqual(["1"])
      expect(
        make({ extraHeaders: { "X-A": "1" } })
          .connect()
          .headers.getAll("Host")
      ).toEqual(["example.com"])
    })

    it("client sets User-Agent", () => {
      expect(make({ userAgent: "test/1.0" }).connect().headers.getAll("User-Agent")).toEqual(["test/1.0"])
      expect(make({ userAgent: null }).connect().headers.has("User-Agent")).toBe(false)
      // An extra User-Agent header replaces the default one rather than duplicating it.
      expect(
        make({ extraHeaders: { "User-Agent": "mine" } })
          .connect()
          .headers.getAll("User-Agent")
      ).toEqual(["mine"])
    })

    it("client sends the request", () => {
      const client = make({ userAgent: null })
      client.sendRequest(client.connect())
      const [bytes, ...rest] = output(client)
      expect(rest).toEqual([])
      expect(latin1(bytes!)).toBe(
        "GET /chat HTTP/1.1\r\n" +
          "Host: example.com\r\n" +
          "Upgrade: websocket\r\n" +
          "Connection: Upgrade\r\n" +
          `Sec-WebSocket-Key: ${client.key}\r\n` +
          "Sec-WebSocket-Version: 13\r\n" +
          "\r\n"
      )
      expect(client.state).toBe(State.CONNECTING)
    })

    it("client sends a request modified after connect", () => {
      const client = make({ userAgent: null })
      const request = client.connect()
      request.headers.append("X-Added", "yes")
      client.sendRequest(request)
      expect(latin1(output(client)[0]!)).toContain("X-Added: yes\r\n\r\n")
    })
  })

  describe("handshake response", () => {
    it("client receives 101", () => {
      const client = started()
      receive(client, switching(client))
      const [response, ...rest] = client.eventsReceived()
      expect(rest).toEqual([])
      expect(response).toBeInstanceOf(Response)
      expect((response as Response).statusCode).toBe(101)
      expect(client.state).toBe(State.OPEN)
      expect(client.handshakeExc).toBeUndefined()
      expect(client.closeExpected()).toBe(false)
      expect(client.subprotocol).toBeUndefined()
      expect(client.extensions).toEqual([])
      expect(output(client)).toEqual([])
    })

    it("client receives 101 one byte at a time", () => {
      const client = started()
      const bytes = switching(client)
      for (let i = 0; i < bytes.length; i++) {
        expect(client.state).toBe(State.CONNECTING)
        receive(client, bytes.subarray(i, i + 1))
      }
      expect(client.state).toBe(State.OPEN)
      expect(client.eventsReceived().length).toBe(1)
    })

    it("client receives 101 with case-insensitive header values", () => {
      const client = started()
      receive(client, switching(client, { Upgrade: "WebSocket", Connection: "keep-alive, upgrade" }))
      expect(client.state).toBe(State.OPEN)
    })

    it("client receives frames in the same chunk as the 101", () => {
      const client = started()
      // Bytes right after the response are frames (RFC 6455 §4.1).
      receive(client, concat([switching(client), frame(Opcode.Text, "Hello"), frame(Opcode.Ping, "p")]))
      const [response, ...frames] = events(client)
      expect(response).toEqual({ event: "Response" })
      expect(frames).toEqual([
        { opcode: Opcode.Text, fin: true, data: "48656c6c6f" },
        { opcode: Opcode.Ping, fin: true, data: "70" }
      ])
      expect(parseOutput(output(client)[0]!, true)).toEqual([{ opcode: Opcode.Pong, fin: true, data: "70" }])
    })

    it("client receives a frame split between the 101 chunk and the next one", () => {
      const client = started()
      const bytes = concat([switching(client), frame(Opcode.Binary, "abcdef")])
      receive(client, bytes.subarray(0, bytes.length - 3), bytes.subarray(bytes.length - 3))
      expect(events(client).slice(1)).toEqual([{ opcode: Opcode.Binary, fin: true, data: "616263646566" }])
    })

    it("client receives invalid frame in the same chunk as the 101", () => {
      const client = started()
      receive(client, concat([switching(client), frame(Opcode.Text, "x", { mask: true })]))
      expect(client.state).toBe(State.CLOSING)
      expect(client.handshakeExc).toBeUndefined()
      expect(client.parserExc?._tag).toBe("ProtocolError")
    })

    it("client accepts the subprotocol chosen by the server", () => {
      const client = started({ subprotocols: ["chat", "superchat"] })
      receive(client, switching(client, {}, [["Sec-WebSocket-Protocol", "superchat"]]))
      expect(client.state).toBe(State.OPEN)
      expect(client.subprotocol).toBe("superchat")
    })

    it("client accepts the extensions chosen by the server", () => {
      const client = started({ extensions: [clientExtension("x-a"), clientExtension("x-b")] })
      receive(client, switching(client, {}, [["Sec-WebSocket-Extensions", "x-b; p=2, x-a"]]))
      expect(client.state).toBe(State.OPEN)
      // In the order of the response, which is the order in which they apply.
      expect(client.extensions.map((e) => [e.name, (e as unknown as { params: unknown }).params])).toEqual([
        ["x-b", [["p", "2"]]],
        ["x-a", []]
      ])
    })

    it("client receives non-101 status with a body", () => {
      const client = started()
      receive(
        client,
        head("404 Not Found", [
          ["Content-Length", "9"],
          ["X-Why", "gone"]
        ]),
        utf8("not here\n")
      )
      const [response] = client.eventsReceived()
      expect((response as Response).statusCode).toBe(404)
      const error = handshakeError(client)
      expect(error).toMatchObject({
        _tag: "InvalidStatusCode",
        statusCode: 404,
        headers: [
          ["Content-Length", "9"],
          ["X-Why", "gone"]
        ],
        message: "server rejected WebSocket connection: HTTP 404"
      })
      expect(latin1(error.body as Uint8Array)).toBe("not here\n")
      expectHandshakeFailed(client)
    })

    it("client receives non-101 status with a body until EOF", () => {
      const client = started()
      receive(client, head("500 Internal Server Error", []), utf8("oops"))
      expect(client.handshakeExc).toBeUndefined()
      client.receiveEof()
      expect(handshakeError(client)).toMatchObject({ _tag: "InvalidStatusCode", statusCode: 500 })
      expect(latin1(handshakeError(client).body as Uint8Array)).toBe("oops")
      expect(written(client)).toEqual(["EOF"])
      expect(client.state).toBe(State.CLOSED)
    })

    it("client receives redirect", () => {
      const client = started()
      receive(
        client,
        head("302 Found", [
          ["Location", "ws://other.example/"],
          ["Content-Length", "0"]
        ])
      )
      expect(handshakeError(client)).toMatchObject({
        _tag: "InvalidStatusCode",
        statusCode: 302,
        headers: [
          ["Location", "ws://other.example/"],
          ["Content-Length", "0"]
        ]
      })
      expectHandshakeFailed(client)
    })

    for (const [name, overrides, expected] of [
      ["missing Upgrade", { Upgrade: null }, { _tag: "InvalidUpgrade", name: "Upgrade", value: undefined }],
      ["wrong Upgrade", { Upgrade: "h2c" }, { _tag: "InvalidUpgrade", name: "Upgrade", value: "h2c" }],
      ["missing Connection", { Connection: null }, { _tag: "InvalidUpgrade", name: "Connection", value: undefined }],
      ["wrong Connection", { Connection: "close" }, { _tag: "InvalidUpgrade", name: "Connection", value: "close" }],
      [
        "missing Sec-WebSocket-Accept",
        { "Sec-WebSocket-Accept": null },
        { _tag: "InvalidHeader", name: "Sec-WebSocket-Accept", message: "missing Sec-WebSocket-Accept header" }
      ],
      [
        "bad Sec-WebSocket-Accept",
        { "Sec-WebSocket-Accept": "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" },
        { _tag: "InvalidHeaderValue", name: "Sec-WebSocket-Accept", value: "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" }
      ]
    ] as const) {
      it(`client receives 101 with ${name}`, () => {
        const client = started()
        receive(client, switching(client, overrides))
        expect(handshakeError(client)).toMatchObject(expected)
        // The response is still reported, for logs.
        expect(events(client)).toEqual([{ event: "Response" }])
        expectHandshakeFailed(client)
      })
    }

    it("client receives an extension it did not offer", () => {
      const client = started()
      receive(client, switching(client, {}, [["Sec-WebSocket-Extensions", "x-a"]]))
      expect(handshakeError(client)).toMatchObject({ _tag: "NegotiationError", message: "no extensions supported" })
      expectHandshakeFailed(client)
    })

    it("client receives an extension other than those offered", () => {
      const client = started({ extensions: [clientExtension("x-a")] })
      receive(client, switching(client, {}, [["Sec-WebSocket-Extensions", "x-b; p=1"]]))
      expect(handshakeError(client)).toMatchObject({
        _tag: "NegotiationError",
        message: 'unsupported extension: name = x-b, params = [["p","1"]]'
      })
      expectHandshakeFailed(client)
    })

    it("client receives extension parameters it refuses", () => {
      const client = started({ extensions: [clientExtension("x-a", [], true)] })
      receive(client, switching(client, {}, [["Sec-WebSocket-Extensions", "x-a"]]))
      expect(handshakeError(client)).toMatchObject({ _tag: "NegotiationError" })
      expectHandshakeFailed(client)
    })

    it("client receives a malformed extensions header", () => {
      const client = started({ extensions: [clientExtension("x-a")] })
      receive(client, switching(client, {}, [["Sec-WebSocket-Extensions", "x-a;;"]]))
      expect(handshakeError(client)).toMatchObject({ _tag: "InvalidHeaderFormat", name: "Sec-WebSocket-Extensions" })
      expectHandshakeFailed(client)
    })

    it("client receives a subprotocol it did not offer", () => {
      const client = started()
      receive(client, switching(client, {}, [["Sec-WebSocket-Protocol", "chat"]]))
      expect(handshakeError(client)).toMatchObject({ _tag: "NegotiationError", message: "no subprotocols supported" })
      expectHandshakeFailed(client)
    })

    it("client receives a subprotocol other than those offered", () => {
      const client = started({ subprotocols: ["chat"] })
      receive(client, switching(client, {}, [["Sec-WebSocket-Protocol", "other"]]))
      expect(handshakeError(client)).toMatchObject({
        _tag: "NegotiationError",
        message: "unsupported subprotocol: other"
      })
      expect(client.subprotocol).toBeUndefined()
      expectHandshakeFailed(client)
    })

    it("client receives several subprotocols", () => {
      const client = started({ subprotocols: ["chat", "superchat"] })
      receive(
        client,
        switching(client, {}, [
          ["Sec-WebSocket-Protocol", "chat"],
          ["Sec-WebSocket-Protocol", "superchat"]
        ])
      )
      expect(handshakeError(client)).toMatchObject({
        _tag: "InvalidHeader",
        name: "Sec-WebSocket-Protocol",
        value: "multiple values: chat, superchat"
      })
      expectHandshakeFailed(client)
    })

    for (const [name, bytes, message] of [
      ["garbage", "hello\r\n\r\n", 'invalid HTTP status line: "hello"'],
      ["HTTP/1.0", "HTTP/1.0 101 Switching Protocols\r\n\r\n", "unsupported protocol"],
      ["a bad status code", "HTTP/1.1 1O1 Switching\r\n\r\n", "invalid status code"],
      ["a bad header line", "HTTP/1.1 101 Switching Protocols\r\nno colon\r\n\r\n", "invalid HTTP header line"],
      ["a bare LF", "HTTP/1.1 101 Switching Protocols\n\n", "line without CRLF"]
    ] as const) {
      it(`client receives a malformed response: ${name}`, () => {
        const client = started()
        receive(client, utf8(bytes))
        const error = handshakeError(client)
        expect(error._tag).toBe("InvalidMessage")
        expect(error.message).toContain(message)
        expect(client.eventsReceived()).toEqual([])
        expectHandshakeFailed(client)
      })
    }

    it("client receives a response with a line over 8 KiB", () => {
      const client = started()
      receive(client, utf8(`HTTP/1.1 101 Switching Protocols\r\nX-Big: ${"a".repeat(8200)}\r\n\r\n`))
      expect(handshakeError(client)).toMatchObject({ _tag: "SecurityError", message: "line too long" })
      expectHandshakeFailed(client)
    })

    it("client receives a response with too many headers", () => {
      const client = started()
      const lines = Array.from({ length: 129 }, (_, i) => `X-H${i}: v\r\n`).join("")
      receive(client, utf8(`HTTP/1.1 101 Switching Protocols\r\n${lines}\r\n`))
      expect(handshakeError(client)).toMatchObject({ _tag: "SecurityError", message: "too many HTTP headers" })
      expectHandshakeFailed(client)
    })

    it("client receives an endless response head: SecurityError at 16 KiB, before it ends", () => {
      const client = started()
      receive(client, utf8("HTTP/1.1 101 Switching Protocols\r\n"))
      const line = utf8(`X-Endless: ${"e".repeat(1000)}\r\n`)
      let fed = 0
      while (client.handshakeExc === undefined && fed < 1 << 20) {
        receive(client, line)
        fed += line.byteLength
      }
      expect(handshakeError(client)).toMatchObject({
        _tag: "SecurityError",
        message: "HTTP head too large: over 16384 bytes"
      })
      // Failed with the line that crossed the limit.
      expect(fed).toBeLessThan(16_384 + line.byteLength)
      expectHandshakeFailed(client)
    })

    it("client with maxHeaderSize receives a response over it", () => {
      const client = started({ maxHeaderSize: 512 })
      receive(client, switching(client, {}, [["X-Pad", "p".repeat(512)]]))
      expect(handshakeError(client)).toMatchObject({
        _tag: "SecurityError",
        message: "HTTP head too large: over 512 bytes"
      })
      expectHandshakeFailed(client)
    })

    it("client with a larger maxHeaderSize accepts a response over 16 KiB", () => {
      const client = started({ maxHeaderSize: 65_536 })
      const pad = Array.from({ length: 4 }, (_, i) => [`X-Pad-${i}`, "p".repeat(8000)] as const)
      receive(client, switching(client, {}, pad))
      expect(client.handshakeExc).toBeUndefined()
      expect(client.state).toBe(State.OPEN)
    })

    it("client receives a 101 and frames over 16 KiB in one chunk: the frames are not the head", () => {
      const client = started()
      const frames = Array.from({ length: 40 }, () => frame(Opcode.Binary, new Uint8Array(1000)))
      receive(client, concat([switching(client), ...frames]))
      expect(client.state).toBe(State.OPEN)
      expect(client.eventsReceived().filter((event) => !(event instanceof Response))).toHaveLength(40)
    })

    it("client receives EOF during the handshake", () => {
      const client = started()
      receive(client, utf8("HTTP/1.1 101 Switching Protocols\r\nUpgrade: webs"))
      expect(client.handshakeExc).toBeUndefined()
      client.receiveEof()
      expect(handshakeError(client)).toMatchObject({
        _tag: "InvalidMessage",
        message: "connection closed while reading HTTP headers"
      })
      expect(written(client)).toEqual(["EOF"])
      expect(client.state).toBe(State.CLOSED)
      expect(client.closeCode).toBe(1006)
      expect(client.closeExc._tag).toBe("ConnectionClosedError")
    })

    it("client receives EOF before any response", () => {
      const client = started()
      client.receiveEof()
      expect(handshakeError(client)).toMatchObject({
        _tag: "InvalidMessage",
        message: "connection closed while reading HTTP status line"
      })
      expect(written(client)).toEqual(["EOF"])
      expect(client.state).toBe(State.CLOSED)
    })

    it("client skips the handshake when created OPEN", () => {
      const client = make({ state: State.OPEN })
      receive(client, frame(Opcode.Text, "hi"))
      expect(events(client)).toEqual([{ opcode: Opcode.Text, fin: true, data: "6869" }])
    })

    it("client sends frames only once the handshake completed", () => {
      const client = started()
      expect(Either.isLeft(client.sendText(utf8("early")))).toBe(true)
      receive(client, switching(client))
      expect(Either.isRight(client.sendText(utf8("now")))).toBe(true)
      expect(parseOutput(output(client)[0]!, true)).toEqual([{ opcode: Opcode.Text, fin: true, data: "6e6f77" }])
    })
  })
})
