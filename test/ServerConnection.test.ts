import { describe, expect, it } from "@effect/vitest"
import * as Either from "effect/Either"
import { ClientConnection, USER_AGENT } from "../src/ClientConnection.js"
import { State } from "../src/Connection.js"
import { Opcode } from "../src/Frames.js"
import { Headers } from "../src/Headers.js"
import { makeResponse, Request, Response } from "../src/Http11.js"
import { defaultSelectSubprotocol, ServerConnection, type ServerConnectionOptions } from "../src/ServerConnection.js"
import {
  clientExtension,
  clientFrame,
  concat,
  events,
  frame,
  fromHex,
  hex,
  latin1,
  openPair,
  output,
  serverExtension,
  settle,
  transfer,
  URI,
  utf8,
  written
} from "./fixtures/connections.js"
import { retainedBytes } from "./fixtures/memory.js"

// RFC 6455 §1.3
const KEY = "dGhlIHNhbXBsZSBub25jZQ=="
const ACCEPT = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
const HANDSHAKE_FAILED = "Failed to open a WebSocket connection"

/**
 * A handshake request; `overrides` replaces or (with `null`) removes the standard headers, `extra`
 * adds headers.
 */
const requestBytes = (
  overrides: Readonly<Record<string, string | null>> = {},
  extra: ReadonlyArray<readonly [string, string]> = [],
  path = "/chat"
): Uint8Array => {
  const base: Record<string, string | null> = {
    Host: "server.example.com",
    Upgrade: "websocket",
    Connection: "Upgrade",
    "Sec-WebSocket-Key": KEY,
    "Sec-WebSocket-Version": "13",
    ...overrides
  }
  const headers = new Headers()
  for (const [name, value] of Object.entries(base)) if (value !== null) headers.append(name, value)
  for (const [name, value] of extra) headers.append(name, value)
  return utf8(`GET ${path} HTTP/1.1\r\n${headers.serialize()}`)
}

const receive = (server: ServerConnection, ...chunks: ReadonlyArray<Uint8Array>) => {
  for (const chunk of chunks) expect(Either.isRight(server.receiveData(chunk))).toBe(true)
}

/** Feeds a request and returns the Request event. */
const received = (server: ServerConnection, bytes: Uint8Array = requestBytes()): Request => {
  receive(server, bytes)
  const [request, ...rest] = server.eventsReceived()
  expect(rest).toEqual([])
  expect(request).toBeInstanceOf(Request)
  return request as Request
}

/** A server with `options` that received a request and built its response. */
const accepting = (
  options: ServerConnectionOptions = {},
  overrides: Readonly<Record<string, string | null>> = {},
  extra: ReadonlyArray<readonly [string, string]> = []
) => {
  const server = new ServerConnection(options)
  const response = server.accept(received(server, requestBytes(overrides, extra)))
  return { server, response }
}

/** A response as plain data, with the Date header checked and left out. */
const plain = (response: Response) => {
  const headers = [...response.headers.rawItems()]
  const date = headers.find(([name]) => name === "Date")
  // RFC 7231 §7.1.1.1 IMF-fixdate, e.g. "Sun, 06 Nov 1994 08:49:37 GMT".
  expect(date?.[1]).toMatch(/^[A-Z][a-z]{2}, \d{2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}:\d{2} GMT$/)
  return {
    status: response.statusCode,
    reason: response.reasonPhrase,
    headers: headers.filter(([name]) => name !== "Date"),
    body: latin1(response.body)
  }
}

/** Plain fields of the handshake error, `_tag` and message included. */
const handshakeError = (server: ServerConnection): Record<string, unknown> & { _tag: string; message: string } => {
  const error = server.handshakeExc
  if (error === undefined) throw new Error("expected a handshake failure")
  return { ...Object.fromEntries(Object.entries(error)), _tag: error._tag, message: error.message }
}

/**
 * Sends a rejection and checks what follows: the response, then EOF; input is ignored; CLOSED once
 * the client closes too.
 */
const expectRejected = (server: ServerConnection, response: Response) => {
  server.sendResponse(response)
  expect(written(server)).toEqual([hex(response.serialize()), "EOF"])
  expect(server.state).toBe(State.CONNECTING)
  expect(server.closeExpected()).toBe(true)
  receive(server, clientFrame(Opcode.Text, "ignored"))
  expect(server.eventsReceived()).toEqual([])
  server.receiveEof()
  expect(server.state).toBe(State.CLOSED)
  expect(output(server)).toEqual([])
}

/** A server that answers a malformed request by itself: the error response, then EOF. */
const expectAnsweredWith = (server: ServerConnection, status: number, tag: string) => {
  expect(server.eventsReceived()).toEqual([])
  const [bytes, eof, ...rest] = output(server)
  expect(rest).toEqual([])
  expect(eof?.byteLength).toBe(0)
  // The body is UTF-8 text (the head is ASCII).
  const text = Buffer.from(bytes!).toString("utf8")
  expect(text.split("\r\n")[0]).toBe(
    `HTTP/1.1 ${status} ${status === 400 ? "Bad Request" : "Request Header Fields Too Large"}`
  )
  expect(text).toContain("\r\nConnection: close\r\n")
  expect(text).toContain(`\r\n\r\n${HANDSHAKE_FAILED}: ${server.handshakeExc?.message}.\n`)
  expect(server.handshakeExc?._tag).toBe(tag)
  expect(server.closeExpected()).toBe(true)
  receive(server, requestBytes())
  expect(server.eventsReceived()).toEqual([])
  server.receiveEof()
  expect(server.state).toBe(State.CLOSED)
}

/** A client whose handshake the server rejects with 503, over the in-memory wire. */
const openPairRejected = () => {
  const client = new ClientConnection(URI)
  const server = new ServerConnection()
  client.sendRequest(client.connect())
  transfer(client, server)
  server.eventsReceived()
  server.sendResponse(server.reject(503, "busy\n"))
  settle(client, server)
  return { client, server }
}

describe("ServerConnection", () => {
  describe("request", () => {
    it("server receives the handshake request", () => {
      const server = new ServerConnection()
      const request = received(server, requestBytes({}, [["X-Extra", "1"]], "/chat?room=1"))
      expect(request.path).toBe("/chat?room=1")
      expect(request.headers.getAll("x-extra")).toEqual(["1"])
      expect(request.headers.getFirst("Host")).toBe("server.example.com")
      // Nothing is sent until the application answers.
      expect(output(server)).toEqual([])
      expect(server.state).toBe(State.CONNECTING)
    })

    it("server receives the handshake request one byte at a time", () => {
      const server = new ServerConnection()
      const bytes = requestBytes()
      for (let i = 0; i < bytes.length - 1; i++) receive(server, bytes.subarray(i, i + 1))
      expect(server.eventsReceived()).toEqual([])
      receive(server, bytes.subarray(bytes.length - 1))
      expect(server.eventsReceived().length).toBe(1)
    })
  })

  describe("accept", () => {
    it("server accepts the handshake with 101", () => {
      const { server, response } = accepting()
      expect(plain(response)).toEqual({
        status: 101,
        reason: "Switching Protocols",
        headers: [
          ["Upgrade", "websocket"],
          ["Connection", "Upgrade"],
          ["Sec-WebSocket-Accept", ACCEPT],
          ["Server", USER_AGENT]
        ],
        body: ""
      })
      expect(server.handshakeExc).toBeUndefined()
      expect(server.state).toBe(State.CONNECTING)
      server.sendResponse(response)
      expect(server.state).toBe(State.OPEN)
      const date = response.headers.getFirst("Date")
      expect(written(server)).toEqual([
        hex(
          utf8(
            "HTTP/1.1 101 Switching Protocols\r\n" +
              `Date: ${date}\r\n` +
              "Upgrade: websocket\r\n" +
              "Connection: Upgrade\r\n" +
              `Sec-WebSocket-Accept: ${ACCEPT}\r\n` +
              `Server: ${USER_AGENT}\r\n` +
              "\r\n"
          )
        )
      ])
      expect(server.closeExpected()).toBe(false)
    })

    it("the usual 101 (built in one array) has the headers and bytes of the general one, for any Server header, and takes more headers", () => {
      // extraHeaders of nothing takes the general path: the same response otherwise.
      for (const serverHeader of [undefined, "test/1", null]) {
        const usual = accepting(serverHeader === undefined ? {} : { serverHeader }).response
        const general = accepting({
          ...(serverHeader === undefined ? {} : { serverHeader }),
          extraHeaders: []
        }).response
        // The Date of either may be of the next second: the same one in both before comparing.
        expect([...usual.headers].map(([name]) => name)).toEqual([...general.headers].map(([name]) => name))
        const date = usual.headers.getFirst("Date")!
        general.headers.set("Date", date)
        usual.headers.set("Date", date)
        expect([...usual.headers]).toEqual([...general.headers])
        expect(usual.serialize()).toEqual(general.serialize())
        expect(usual.headers.get("server")).toBe(serverHeader === undefined ? USER_AGENT : (serverHeader ?? undefined))
        usual.headers.append("X-Later", "1")
        expect(usual.headers.getAll("x-later")).toEqual(["1"])
        expect([...usual.headers].at(-1)).toEqual(["X-Later", "1"])
      }
    })

    it("server accepts with a custom Server header or none", () => {
      expect(accepting({ serverHeader: "test/1" }).response.headers.getAll("Server")).toEqual(["test/1"])
      expect(accepting({ serverHeader: null }).response.headers.has("Server")).toBe(false)
    })

    it("server accepts with extra headers", () => {
      const { response } = accepting({ extraHeaders: { "Set-Cookie": "a=1", "X-Id": "7" } })
      expect(plain(response).headers).toEqual([
        ["Upgrade", "websocket"],
        ["Connection", "Upgrade"],
        ["Sec-WebSocket-Accept", ACCEPT],
        ["Set-Cookie", "a=1"],
        ["X-Id", "7"],
        ["Server", USER_AGENT]
      ])
    })

    it("server accepts with extra headers computed from the request", () => {
      const seen: Array<unknown> = []
      const { response } = accepting(
        {
          extraHeaders: (path, headers) => {
            seen.push([path, headers.getFirst("X-Token")])
            return [["X-Echo", headers.getFirst("X-Token") ?? ""]]
          }
        },
        {},
        [["X-Token", "t0k"]]
      )
      expect(seen).toEqual([["/chat", "t0k"]])
      expect(response.headers.getAll("X-Echo")).toEqual(["t0k"])
    })

    it("server accepts with extra headers that throw", () => {
      const { server, response } = accepting({
        extraHeaders: () => {
          throw new Error("boom")
        }
      })
      expect(response.statusCode).toBe(500)
      expect(latin1(response.body)).toBe(`${HANDSHAKE_FAILED}.\nSee server log for more information.\n`)
      expect(handshakeError(server)._tag).toBe("InvalidMessage")
      expect((server.handshakeExc as { cause?: unknown }).cause).toEqual(new Error("boom"))
      expectRejected(server, response)
    })

    it("server and client complete the handshake over the wire", () => {
      const { client, server } = openPair(
        { subprotocols: ["chat", "superchat"], extensions: [clientExtension("x-a")], origin: "https://ok" },
        { subprotocols: ["superchat"], extensions: [serverExtension("x-a", [["p", "1"]])], origins: ["https://ok"] }
      )
      expect([client.state, server.state]).toEqual([State.OPEN, State.OPEN])
      expect([client.subprotocol, server.subprotocol]).toEqual(["superchat", "superchat"])
      expect([client.extensions.map((e) => e.name), server.extensions.map((e) => e.name)]).toEqual([["x-a"], ["x-a"]])
      expect(server.origin).toBe("https://ok")
    })

    it("server and client exchange frames through a negotiated extension that claims RSV2", () => {
      const { client, server } = openPair(
        { extensions: [clientExtension("x-a")] },
        { extensions: [serverExtension("x-a")] }
      )
      server.sendText(utf8("Hi"))
      // RSV2 (0x20) is set on the wire by the extension.
      const bytes = concat(output(server))
      expect(hex(bytes)).toBe("a1024869")
      receive(server, clientFrame(Opcode.Text, "x", { rsv2: true }))
      expect(events(server)).toEqual([{ opcode: Opcode.Text, fin: true, data: "78" }])
      client.receiveData(bytes)
      expect(events(client)).toEqual([{ opcode: Opcode.Text, fin: true, data: "4869" }])
      // RSV3 is claimed by no extension.
      receive(server, clientFrame(Opcode.Text, "x", { rsv2: true, rsv3: true }))
      expect(server.parserExc).toMatchObject({ _tag: "ProtocolError", detail: "reserved bits must be 0" })
    })
  })

  describe("subprotocols", () => {
    const negotiate = (client: ReadonlyArray<string>, options: ServerConnectionOptions) => {
      const extra: Array<readonly [string, string]> =
        client.length > 0 ? [["Sec-WebSocket-Protocol", client.join(", ")]] : []
      const { server, response } = accepting(options, {}, extra)
      return [server.subprotocol, response.headers.getAll("Sec-WebSocket-Protocol")] as const
    }

    it("server selects the subprotocol with the best sum of client and server ranks", () => {
      // b: 1 + 3, c: 2 + 0 — equal weight to both rankings picks c (not the client's favorite b).
      expect(negotiate(["a", "b", "c"], { subprotocols: ["c", "x", "y", "b"] })).toEqual(["c", ["c"]])
      // a: 0 + 1, c: 2 + 0.
      expect(negotiate(["a", "b", "c"], { subprotocols: ["c", "a"] })).toEqual(["a", ["a"]])
    })

    it("server breaks ties in subprotocol ranks with the client's order", () => {
      expect(negotiate(["a", "b"], { subprotocols: ["b", "a"] })).toEqual(["a", ["a"]])
      expect(defaultSelectSubprotocol(["b", "a"], ["a", "b"])).toBe("b")
    })

    it("server selects no subprotocol when none is common", () => {
      expect(negotiate(["a", "b"], { subprotocols: ["c"] })).toEqual([undefined, []])
      expect(negotiate(["a"], {})).toEqual([undefined, []])
      expect(negotiate([], { subprotocols: ["a"] })).toEqual([undefined, []])
    })

    it("server reads subprotocols from several headers", () => {
      const { server } = accepting({ subprotocols: ["d"] }, {}, [
        ["Sec-WebSocket-Protocol", "a, b"],
        ["Sec-WebSocket-Protocol", "d"]
      ])
      expect(server.subprotocol).toBe("d")
    })

    it("server selects the subprotocol with a custom function", () => {
      const calls: Array<unknown> = []
      const options: ServerConnectionOptions = {
        subprotocols: ["x"],
        selectSubprotocol: (client, server) => {
          calls.push([client, server])
          return client.at(-1)
        }
      }
      expect(negotiate(["a", "b"], options)).toEqual(["b", ["b"]])
      expect(negotiate([], options)).toEqual([undefined, []])
      expect(calls).toEqual([
        [["a", "b"], ["x"]],
        [[], ["x"]]
      ])
      expect(negotiate(["a"], { selectSubprotocol: () => null })).toEqual([undefined, []])
    })

    it("server selects a subprotocol the client did not offer", () => {
      const { server, response } = accepting({ selectSubprotocol: () => "z" }, {}, [["Sec-WebSocket-Protocol", "a"]])
      expect(response.statusCode).toBe(400)
      expect(handshakeError(server)).toMatchObject({
        _tag: "NegotiationError",
        message: "selected subprotocol was not offered: z"
      })
      expectRejected(server, response)
    })

    it("server selects a subprotocol with a function that throws", () => {
      const { server, response } = accepting(
        {
          selectSubprotocol: () => {
            throw new Error("boom")
          }
        },
        {},
        [["Sec-WebSocket-Protocol", "a"]]
      )
      expect(response.statusCode).toBe(500)
      expect(handshakeError(server)._tag).toBe("InvalidMessage")
      expectRejected(server, response)
    })

    it("server receives a malformed subprotocol header", () => {
      const { server, response } = accepting({ subprotocols: ["a"] }, {}, [["Sec-WebSocket-Protocol", "a,,/"]])
      expect(response.statusCode).toBe(400)
      expect(handshakeError(server)).toMatchObject({ _tag: "InvalidHeaderFormat", name: "Sec-WebSocket-Protocol" })
      expectRejected(server, response)
    })
  })

  describe("extensions", () => {
    it("server accepts an offered extension", () => {
      const { server, response } = accepting({ extensions: [serverExtension("x-a", [["p", "1"]])] }, {}, [
        ["Sec-WebSocket-Extensions", "x-a; q"]
      ])
      expect(response.headers.getAll("Sec-WebSocket-Extensions")).toEqual(["x-a; p=1"])
      expect(server.extensions.map((e) => [e.name, (e as unknown as { params: unknown }).params])).toEqual([
        ["x-a", [["q", null]]]
      ])
    })

    it("server declines an offer and accepts the next one", () => {
      const { server, response } = accepting({ extensions: [serverExtension("x-a")] }, {}, [
        ["Sec-WebSocket-Extensions", "x-a; refuse, x-a; second"]
      ])
      expect(response.statusCode).toBe(101)
      expect(response.headers.getAll("Sec-WebSocket-Extensions")).toEqual(["x-a"])
      expect((server.extensions[0] as unknown as { params: unknown }).params).toEqual([["second", null]])
    })

    it("server accepts several extensions in the client's order", () => {
      const { response } = accepting({ extensions: [serverExtension("x-b"), serverExtension("x-a")] }, {}, [
        ["Sec-WebSocket-Extensions", "x-a"],
        ["Sec-WebSocket-Extensions", "x-c, x-b"]
      ])
      expect(response.headers.getAll("Sec-WebSocket-Extensions")).toEqual(["x-a, x-b"])
    })

    it("server ignores extensions it does not support", () => {
      const { server, response } = accepting({}, {}, [["Sec-WebSocket-Extensions", "x-a"]])
      expect(response.statusCode).toBe(101)
      expect(response.headers.has("Sec-WebSocket-Extensions")).toBe(false)
      expect(server.extensions).toEqual([])
    })

    it("server receives a malformed extensions header", () => {
      const { server, response } = accepting({ extensions: [serverExtension("x-a")] }, {}, [
        ["Sec-WebSocket-Extensions", "x-a;;"]
      ])
      expect(response.statusCode).toBe(400)
      expect(handshakeError(server)).toMatchObject({ _tag: "InvalidHeaderFormat", name: "Sec-WebSocket-Extensions" })
      expectRejected(server, response)
    })
  })

  describe("origins", () => {
    it("server accepts an allowed origin", () => {
      const { server, response } = accepting({ origins: ["https://a.example", "https://b.example"] }, {}, [
        ["Origin", "https://b.example"]
      ])
      expect(response.statusCode).toBe(101)
      expect(server.origin).toBe("https://b.example")
    })

    it("server accepts any origin without an origins option", () => {
      const { server, response } = accepting({}, {}, [["Origin", "https://any"]])
      expect(response.statusCode).toBe(101)
      expect(server.origin).toBe("https://any")
    })

    it("server rejects a forbidden origin with 403", () => {
      const { server, response } = accepting({ origins: ["https://a.example"] }, {}, [
        ["Origin", "https://evil.example"]
      ])
      const body = `${HANDSHAKE_FAILED}: invalid Origin header: https://evil.example.\n`
      expect(plain(response)).toEqual({
        status: 403,
        reason: "Forbidden",
        headers: [
          ["Connection", "close"],
          ["Content-Length", String(body.length)],
          ["Content-Type", "text/plain; charset=utf-8"],
          ["Server", USER_AGENT]
        ],
        body
      })
      expect(handshakeError(server)).toMatchObject({ _tag: "InvalidOrigin", origin: "https://evil.example" })
      expectRejected(server, response)
    })

    it("server rejects a missing origin with 403 unless null is allowed", () => {
      const rejected = accepting({ origins: ["https://a.example"] })
      expect(rejected.response.statusCode).toBe(403)
      expect(handshakeError(rejected.server)).toMatchObject({ _tag: "InvalidOrigin", message: "missing Origin header" })
      const accepted = accepting({ origins: ["https://a.example", null] })
      expect(accepted.response.statusCode).toBe(101)
      expect(accepted.server.origin).toBeUndefined()
    })

    it("server rejects several Origin headers with 400", () => {
      const { server, response } = accepting({ origins: ["https://a"] }, {}, [
        ["Origin", "https://a"],
        ["Origin", "https://b"]
      ])
      expect(response.statusCode).toBe(400)
      expect(handshakeError(server)).toMatchObject({ _tag: "InvalidHeader", name: "Origin" })
    })
  })

  describe("invalid requests", () => {
    for (const [name, overrides, detail] of [
      ["missing Upgrade", { Upgrade: null }, "missing Upgrade header"],
      ["wrong Upgrade", { Upgrade: "h2c" }, 'invalid Upgrade header: "h2c"'],
      ["missing Connection", { Connection: null }, "missing Connection header"],
      ["Connection without upgrade", { Connection: "keep-alive" }, 'invalid Connection header: "keep-alive"']
    ] as const) {
      it(`server receives request with ${name}: 426`, () => {
        const { server, response } = accepting({}, overrides)
        const body =
          `${HANDSHAKE_FAILED}: ${detail}.\n\n` +
          "You cannot access a WebSocket server directly with a browser. You need a WebSocket client.\n"
        expect(plain(response)).toEqual({
          status: 426,
          reason: "Upgrade Required",
          headers: [
            ["Connection", "close"],
            ["Content-Length", String(body.length)],
            ["Content-Type", "text/plain; charset=utf-8"],
            ["Server", USER_AGENT],
            ["Upgrade", "websocket"]
          ],
          body
        })
        expect(handshakeError(server)._tag).toBe("InvalidUpgrade")
        expectRejected(server, response)
      })
    }

    it("server accepts Connection with several options and any case", () => {
      const { response } = accepting({}, { Connection: "keep-alive, UPGRADE", Upgrade: "WebSocket" })
      expect(response.statusCode).toBe(101)
    })

    for (const [name, overrides, expected] of [
      ["missing key", { "Sec-WebSocket-Key": null }, { _tag: "InvalidHeader", name: "Sec-WebSocket-Key" }],
      ["short key", { "Sec-WebSocket-Key": "abc" }, { _tag: "InvalidHeaderValue", value: "abc" }],
      [
        "key of 15 bytes",
        { "Sec-WebSocket-Key": Buffer.alloc(15).toString("base64") },
        { _tag: "InvalidHeaderValue", name: "Sec-WebSocket-Key" }
      ],
      ["two keys", { "Sec-WebSocket-Key": `${KEY}, ${KEY}` }, { _tag: "InvalidHeaderValue", name: "Sec-WebSocket-Key" }]
    ] as const) {
      it(`server receives request with ${name}: 400`, () => {
        const { server, response } = accepting({}, overrides)
        expect(response.statusCode).toBe(400)
        expect(response.reasonPhrase).toBe("Bad Request")
        expect(handshakeError(server)).toMatchObject(expected)
        expect(latin1(response.body)).toBe(`${HANDSHAKE_FAILED}: ${server.handshakeExc?.message}.\n`)
        expectRejected(server, response)
      })
    }

    it("server receives request with repeated key headers: 400", () => {
      const { server, response } = accepting({}, {}, [["Sec-WebSocket-Key", KEY]])
      expect(response.statusCode).toBe(400)
      expect(handshakeError(server)).toMatchObject({ _tag: "InvalidHeader", name: "Sec-WebSocket-Key" })
    })

    for (const [name, overrides] of [
      ["version 8", { "Sec-WebSocket-Version": "8" }],
      ["missing version", { "Sec-WebSocket-Version": null }]
    ] as const) {
      it(`server receives request with ${name}: 426 with the supported version`, () => {
        const { server, response } = accepting({}, overrides)
        // RFC 6455 §4.2.2, §4.4: 426 and the versions the server speaks.
        expect(response.statusCode).toBe(426)
        expect(response.headers.getAll("Sec-WebSocket-Version")).toEqual(["13"])
        expect(handshakeError(server)).toMatchObject({ name: "Sec-WebSocket-Version" })
        expectRejected(server, response)
      })
    }

    for (const [name, bytes] of [
      ["HTTP/1.0", "GET /chat HTTP/1.0\r\nHost: a\r\n\r\n"],
      ["garbage", "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n"],
      ["a bad header line", "GET / HTTP/1.1\r\nno colon here\r\n\r\n"],
      ["a folded header", "GET / HTTP/1.1\r\nX-A: 1\r\n  2\r\n\r\n"],
      ["a body", "GET / HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello"],
      ["a bare LF", "GET / HTTP/1.1\nHost: a\n\n"]
    ] as const) {
      it(`server receives a malformed request: ${name}: 400`, () => {
        const server = new ServerConnection()
        receive(server, new Uint8Array(Buffer.from(bytes, "latin1")))
        expectAnsweredWith(server, 400, "InvalidMessage")
      })
    }

    it("server receives a request line over 8 KiB: 431", () => {
      const server = new ServerConnection()
      receive(server, utf8(`GET /${"a".repeat(8200)}`))
      expectAnsweredWith(server, 431, "SecurityError")
    })

    it("server receives a request with too many headers: 431", () => {
      const server = new ServerConnection()
      const lines = Array.from({ length: 129 }, (_, i) => `X-H${i}: v\r\n`).join("")
      receive(server, utf8(`GET / HTTP/1.1\r\n${lines}\r\n`))
      expectAnsweredWith(server, 431, "SecurityError")
      expect(server.handshakeExc?.message).toBe("too many HTTP headers")
    })

    it("server receives a request head over 16 KiB in lines within limits: 431 before it ends", () => {
      const server = new ServerConnection()
      const line = `X-Big: ${"b".repeat(8000)}\r\n`
      receive(server, utf8(`GET / HTTP/1.1\r\nHost: a\r\n${line}${line}`))
      expect(output(server)).toEqual([])
      receive(server, utf8(line))
      expectAnsweredWith(server, 431, "SecurityError")
      expect(server.handshakeExc?.message).toBe("HTTP head too large: over 16384 bytes")
    })

    it("server with maxHeaderSize receives a request over it: 431", () => {
      const server = new ServerConnection({ maxHeaderSize: 1024 })
      receive(server, requestBytes({}, [["X-Pad", "p".repeat(1024)]]))
      expectAnsweredWith(server, 431, "SecurityError")
      expect(server.handshakeExc?.message).toBe("HTTP head too large: over 1024 bytes")
    })

    it("server with a larger maxHeaderSize accepts a request over 16 KiB", () => {
      const pad = Array.from({ length: 4 }, (_, i) => [`X-Pad-${i}`, "p".repeat(8000)] as const)
      const { response } = accepting({ maxHeaderSize: 65_536 }, {}, pad)
      expect(response.statusCode).toBe(101)
    })

    for (const [name, overrides, extra, value] of [
      ["without Host", { Host: null }, [], undefined],
      ["with two Host headers", {}, [["Host", "evil.example.com"]], "more than one Host header"]
    ] as const) {
      it(`server receives a request ${name}: 400 (RFC 7230 §5.4)`, () => {
        const server = new ServerConnection()
        receive(server, requestBytes(overrides, extra))
        expectAnsweredWith(server, 400, "InvalidHeader")
        expect(server.handshakeExc).toMatchObject({ name: "Host", value })
      })
    }
  })

  describe("other methods than GET", () => {
    for (const method of ["POST", "HEAD", "PUT", "get"]) {
      it(`server receives a ${method} request: the Request event, then 405 with Allow: GET from accept`, () => {
        const server = new ServerConnection()
        const request = received(server, utf8(`${method} /chat HTTP/1.1\r\nHost: a\r\n\r\n`))
        expect(request.method).toBe(method)
        const response = server.accept(request)
        expect([response.statusCode, response.reasonPhrase]).toEqual([405, "Method Not Allowed"])
        expect(response.headers.getAll("Allow")).toEqual(["GET"])
        expect(handshakeError(server)).toMatchObject({
          _tag: "InvalidMessage",
          message: `unsupported HTTP method; expected GET; got ${method}`
        })
        expect(latin1(response.body)).toBe(
          `${HANDSHAKE_FAILED}: unsupported HTTP method; expected GET; got ${method}.\n`
        )
        server.sendResponse(response)
        const [sent, eof] = written(server)
        // No body after a HEAD (RFC 9110 §9.3.2); Content-Length still says how long it would be.
        const expected = method === "HEAD" ? new Response(405, "Method Not Allowed", response.headers) : response
        expect([sent, eof]).toEqual([hex(expected.serialize()), "EOF"])
        expect(server.state).toBe(State.CONNECTING)
      })
    }

    it("server answers a HEAD with 200 and a body: the head only", () => {
      const server = new ServerConnection()
      received(server, utf8("HEAD /health HTTP/1.1\r\nHost: a\r\n\r\n"))
      server.sendResponse(makeResponse(200, { Connection: "close" }, "ok"))
      expect(written(server)).toEqual([
        hex(utf8("HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\n")),
        "EOF"
      ])
      expect(handshakeError(server)).toMatchObject({ _tag: "InvalidMessage", message: "answered with HTTP 200" })
    })
  })

  describe("reject", () => {
    it("server rejects the handshake", () => {
      const server = new ServerConnection()
      received(server)
      const response = server.reject(404, "Not here\n")
      expect(plain(response)).toEqual({
        status: 404,
        reason: "Not Found",
        headers: [
          ["Connection", "close"],
          ["Content-Length", "9"],
          ["Content-Type", "text/plain; charset=utf-8"],
          ["Server", USER_AGENT]
        ],
        body: "Not here\n"
      })
      expect(server.handshakeExc).toBeUndefined()
      expectRejected(server, response)
      expect(handshakeError(server)).toMatchObject({ _tag: "InvalidMessage", message: "rejected with HTTP 404" })
    })

    it("server rejects with UTF-8 text and no Server header", () => {
      const server = new ServerConnection({ serverHeader: null })
      const response = server.reject(401, "Non autorisé\n")
      expect(response.headers.has("Server")).toBe(false)
      expect(response.headers.getAll("Content-Length")).toEqual(["14"])
      expect(hex(response.body)).toBe(hex(utf8("Non autorisé\n")))
    })

    it("server rejects and the client reports the status", () => {
      const { client, server } = openPairRejected()
      expect(client.handshakeExc).toMatchObject({ _tag: "InvalidStatusCode", statusCode: 503 })
      expect(latin1((client.handshakeExc as { body: Uint8Array }).body)).toBe("busy\n")
      expect([client.state, server.state]).toEqual([State.CLOSED, State.CLOSED])
    })
  })

  describe("end of stream", () => {
    it("server receives EOF during the request", () => {
      const server = new ServerConnection()
      receive(server, requestBytes().subarray(0, 20))
      server.receiveEof()
      expect(handshakeError(server)).toMatchObject({
        _tag: "InvalidMessage",
        message: "connection closed while reading HTTP request"
      })
      expect(server.eventsReceived()).toEqual([])
      expect(written(server)).toEqual(["EOF"])
      expect(server.state).toBe(State.CLOSED)
      expect(server.closeCode).toBe(1006)
    })

    it("server receives EOF before any byte", () => {
      const server = new ServerConnection()
      server.receiveEof()
      expect(handshakeError(server)._tag).toBe("InvalidMessage")
      expect(written(server)).toEqual(["EOF"])
      expect(server.state).toBe(State.CLOSED)
    })

    it("server receives EOF after the request, before its response", () => {
      const server = new ServerConnection()
      const request = received(server)
      server.receiveEof()
      expect(handshakeError(server)).toMatchObject({
        _tag: "InvalidMessage",
        message: "connection closed before the handshake response was sent"
      })
      expect(written(server)).toEqual(["EOF"])
      expect(server.state).toBe(State.CLOSED)
      // The application answers late: nothing may be written after the half-close.
      server.sendResponse(server.accept(request))
      expect(output(server)).toEqual([])
      expect(server.state).toBe(State.CLOSED)
    })
  })

  describe("data before the handshake completes", () => {
    it("server receives a frame in the same chunk as the request", () => {
      const server = new ServerConnection()
      const request = received(server, concat([requestBytes(), clientFrame(Opcode.Text, "early")]))
      const response = server.accept(request)
      server.sendResponse(response)
      // RFC 6455 §4.1: the client must wait for the 101 before sending frames.
      const reason = "data received before the opening handshake completed"
      expect(written(server)).toEqual([
        hex(concat([response.serialize(), frame(Opcode.Close, concat([fromHex("03ea"), utf8(reason)]))])),
        "EOF"
      ])
      expect(server.eventsReceived()).toEqual([])
      expect(server.parserExc).toMatchObject({ _tag: "ProtocolError", detail: reason })
      server.receiveEof()
      expect(server.state).toBe(State.CLOSED)
      expect(server.closeExc).toMatchObject({ _tag: "ConnectionClosedError", code: 1006, sentCode: 1002 })
    })

    it("server receives a frame after the request, before its response", () => {
      const server = new ServerConnection()
      const request = received(server)
      receive(server, clientFrame(Opcode.Ping, "early"))
      expect(server.eventsReceived()).toEqual([])
      expect(output(server)).toEqual([])
      server.sendResponse(server.accept(request))
      expect(server.parserExc?._tag).toBe("ProtocolError")
      expect(server.state).toBe(State.CLOSING)
    })

    it("server receives a lot of data after the request, before its response: none of it is kept", () => {
      const server = new ServerConnection()
      const request = received(server)
      // 64 MiB while the application decides: dropped as it arrives (it fails the connection anyway).
      const before = retainedBytes()
      for (let i = 0; i < 64; i++) receive(server, new Uint8Array(1 << 20).fill(0x82))
      expect(retainedBytes() - before).toBeLessThan(8 << 20)
      expect(server.eventsReceived()).toEqual([])
      server.sendResponse(server.accept(request))
      expect(server.parserExc).toMatchObject({ _tag: "ProtocolError" })
      expect(server.eventsReceived()).toEqual([])
    })

    it("server receives data after a rejected handshake", () => {
      const server = new ServerConnection()
      received(server)
      server.sendResponse(server.reject(400, "no\n"))
      output(server)
      receive(server, clientFrame(Opcode.Text, "x"), requestBytes())
      expect(server.eventsReceived()).toEqual([])
      expect(output(server)).toEqual([])
    })

    it("server skips the handshake when created OPEN", () => {
      const server = new ServerConnection({ state: State.OPEN })
      receive(server, clientFrame(Opcode.Text, "hi"))
      expect(events(server)).toEqual([{ opcode: Opcode.Text, fin: true, data: "6869" }])
    })
  })
})
