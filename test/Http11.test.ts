import { describe, expect, it } from "@effect/vitest"
import * as Either from "effect/Either"
import * as fc from "fast-check"
import type { InvalidHeader, InvalidMessage, SecurityError } from "../src/Errors.js"
import { Headers } from "../src/Headers.js"
import {
  MAX_BODY_SIZE,
  MAX_HEADER_SIZE,
  MAX_LINE_LENGTH,
  MAX_NUM_HEADERS,
  makeResponse,
  Request,
  RequestParser,
  Response,
  ResponseParser,
  reasonPhrase
} from "../src/Http11.js"

/** One byte per char, as the parser decodes. */
const bytes = (text: string): Uint8Array => new Uint8Array(Buffer.from(text, "latin1"))
const text = (data: Uint8Array): string => Buffer.from(data).toString("latin1")

type Result<M> = Either.Either<M | undefined, InvalidMessage | SecurityError | InvalidHeader>
interface Parser<M> {
  feed(chunk: Uint8Array): Result<M>
}

/** Feeds every chunk, stopping at the first result that is not "need more", then feeds the remainder. */
const feedChunks = <M>(parser: Parser<M>, data: Uint8Array, cuts: ReadonlyArray<number>): Result<M> => {
  let result: Result<M> = Either.right(undefined)
  let from = 0
  for (const cut of [...cuts, data.byteLength]) {
    if (cut < from) continue
    result = parser.feed(data.subarray(from, cut))
    from = cut
    if (Either.isLeft(result) || result.right !== undefined) {
      if (from < data.byteLength) result = parser.feed(data.subarray(from))
      return result
    }
  }
  return result
}

const byteByByte = <M>(parser: Parser<M>, data: Uint8Array): Result<M> =>
  feedChunks(
    parser,
    data,
    Array.from({ length: data.byteLength }, (_, i) => i + 1)
  )

const left = (result: Either.Either<unknown, unknown>): { _tag: string; detail: string } => {
  if (Either.isRight(result)) throw new Error(`expected Left, got ${JSON.stringify(result.right)}`)
  return result.left as { _tag: string; detail: string }
}

const right = <A>(result: Either.Either<A | undefined, unknown>): A => {
  if (Either.isLeft(result)) throw new Error(`expected Right, got ${String(result.left)}`)
  if (result.right === undefined) throw new Error("expected a message, got undefined (need more)")
  return result.right
}

const parseRequest = (head: string): Result<Request> => new RequestParser().feed(bytes(head))
const parseResponse = (head: string): Result<Response> => new ResponseParser().feed(bytes(head))

const expectError = (result: Either.Either<unknown, unknown>, tag: string, detail: string | RegExp) => {
  const error = left(result)
  expect(error._tag).toBe(tag)
  if (typeof detail === "string") expect(error.detail).toBe(detail)
  else expect(error.detail).toMatch(detail)
}

// RFC 6455 §1.3
const SAMPLE_REQUEST =
  "GET /chat HTTP/1.1\r\n" +
  "Host: server.example.com\r\n" +
  "Upgrade: websocket\r\n" +
  "Connection: Upgrade\r\n" +
  "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n" +
  "Origin: http://example.com\r\n" +
  "Sec-WebSocket-Protocol: chat, superchat\r\n" +
  "Sec-WebSocket-Version: 13\r\n" +
  "\r\n"

const SAMPLE_RESPONSE =
  "HTTP/1.1 101 Switching Protocols\r\n" +
  "Upgrade: websocket\r\n" +
  "Connection: Upgrade\r\n" +
  "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n" +
  "Sec-WebSocket-Protocol: chat\r\n" +
  "\r\n"

/** An unmasked text frame "Hello" (RFC 6455 §5.7), which follows the 101 response on the wire. */
const HELLO_FRAME = new Uint8Array([0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f])

const concat = (...parts: ReadonlyArray<Uint8Array>): Uint8Array => new Uint8Array(Buffer.concat(parts))

const headersOf = (count: number): string => Array.from({ length: count }, (_, i) => `X-Header-${i}: ${i}\r\n`).join("")

describe("Http11", () => {
  describe("limits", () => {
    it("are Python's named limits", () => {
      expect([MAX_NUM_HEADERS, MAX_LINE_LENGTH, MAX_BODY_SIZE]).toEqual([128, 8192, 1_048_576])
    })

    it("caps the head at 16 KiB, as Node's http", () => {
      expect(MAX_HEADER_SIZE).toBe(16_384)
    })
  })

  describe("serialize", () => {
    it("request is byte-exact", () => {
      const headers = new Headers([
        ["Host", "example.com"],
        ["Upgrade", "websocket"]
      ])
      expect(text(new Request("/path?q=1", headers).serialize())).toBe(
        "GET /path?q=1 HTTP/1.1\r\nHost: example.com\r\nUpgrade: websocket\r\n\r\n"
      )
    })

    it("request without headers ends with the empty line", () => {
      expect(text(new Request("/", new Headers()).serialize())).toBe("GET / HTTP/1.1\r\n\r\n")
    })

    it("response with body is byte-exact", () => {
      const response = new Response(404, "Not Found", new Headers({ "Content-Length": "3" }), bytes("abc"))
      expect(text(response.serialize())).toBe("HTTP/1.1 404 Not Found\r\nContent-Length: 3\r\n\r\nabc")
    })

    it("response without body ends with the empty line", () => {
      const response = new Response(101, "Switching Protocols", new Headers({ Upgrade: "websocket" }))
      expect(response.body).toEqual(new Uint8Array(0))
      expect(text(response.serialize())).toBe("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n")
    })

    it("response with empty reason keeps the space after the status", () => {
      expect(text(new Response(599, "", new Headers()).serialize())).toBe("HTTP/1.1 599 \r\n\r\n")
    })

    it("obs-text is encoded as latin1, one byte per char", () => {
      const serialized = new Request("/", new Headers({ X: "caf\u00e9" })).serialize()
      expect([...serialized.subarray(-7)]).toEqual([0x61, 0x66, 0xe9, 0x0d, 0x0a, 0x0d, 0x0a])
    })

    it("chars beyond latin1 are encoded as UTF-8, as Python does", () => {
      const serialized = new Request("/", new Headers({ X: "\u20ac" })).serialize()
      expect(Buffer.from(serialized).toString("utf8")).toBe("GET / HTTP/1.1\r\nX: \u20ac\r\n\r\n")
    })

    it("writes the bytes of the head's text (latin1, else all of it UTF-8) and the body, as a plain Uint8Array", () => {
      // Mostly latin1, sometimes a char beyond it anywhere (path, reason, a name or a value).
      const piece = fc.string({
        unit: fc.oneof(
          { weight: 20, arbitrary: fc.integer({ min: 0, max: 0xff }).map((c) => String.fromCharCode(c)) },
          { weight: 1, arbitrary: fc.constantFrom("\u20ac", "\u0130", "\u{1f600}") }
        ),
        maxLength: 12
      })
      const pairs = fc.array(fc.tuple(piece, piece), { maxLength: 6 })
      const reference = (head: string, body: Uint8Array = new Uint8Array(0)) => {
        // biome-ignore lint/suspicious/noControlCharactersInRegex: the whole latin1 range is the point
        const encoded = Buffer.from(head, /[^\u0000-\u00ff]/.test(head) ? "utf8" : "latin1")
        return new Uint8Array(Buffer.concat([encoded, body]))
      }
      const wire = (h: Headers) => [...h].map(([name, value]) => `${name}: ${value}\r\n`).join("")
      fc.assert(
        fc.property(
          piece,
          piece,
          pairs,
          fc.uint8Array({ maxLength: 40 }),
          fc.integer({ min: 100, max: 599 }),
          (a, b, items, body, status) => {
            const headers = new Headers(items)
            const request = new Request(a, headers, b === "" ? "GET" : b).serialize()
            expect(Object.getPrototypeOf(request)).toBe(Uint8Array.prototype)
            expect(request).toEqual(reference(`${b === "" ? "GET" : b} ${a} HTTP/1.1\r\n${wire(headers)}\r\n`))
            const response = new Response(status, a, headers, body).serialize()
            expect(Object.getPrototypeOf(response)).toBe(Uint8Array.prototype)
            expect(response).toEqual(reference(`HTTP/1.1 ${status} ${a}\r\n${wire(headers)}\r\n`, body))
          }
        )
      )
    })
  })

  describe("reasonPhrase", () => {
    it("gives standard phrases", () => {
      expect(reasonPhrase(101)).toBe("Switching Protocols")
      expect(reasonPhrase(200)).toBe("OK")
      expect(reasonPhrase(400)).toBe("Bad Request")
      expect(reasonPhrase(403)).toBe("Forbidden")
      expect(reasonPhrase(426)).toBe("Upgrade Required")
      expect(reasonPhrase(500)).toBe("Internal Server Error")
      expect(reasonPhrase(503)).toBe("Service Unavailable")
    })

    it("gives an empty phrase for an unregistered status", () => {
      expect(reasonPhrase(599)).toBe("")
    })
  })

  describe("makeResponse", () => {
    it("with a string body adds Content-Length and encodes UTF-8", () => {
      const response = makeResponse(400, { "Content-Type": "text/plain" }, "d\u00e9j\u00e0\n")
      expect(text(response.serialize())).toBe(
        "HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain\r\nContent-Length: 7\r\n\r\nd\u00c3\u00a9j\u00c3\u00a0\n"
      )
    })

    it("without body on a status with a body adds Content-Length: 0", () => {
      expect(text(makeResponse(200).serialize())).toBe("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
    })

    it("for 101, 204 and 304 adds no Content-Length", () => {
      expect(text(makeResponse(101, [["Upgrade", "websocket"]]).serialize())).toBe(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n"
      )
      expect(makeResponse(204).headers.has("Content-Length")).toBe(false)
      expect(makeResponse(304).headers.has("Content-Length")).toBe(false)
    })

    it("keeps an explicit Content-Length and copies the headers", () => {
      const headers = new Headers({ "content-length": "2" })
      const response = makeResponse(200, headers, new Uint8Array([1, 2]))
      expect(response.headers.getAll("Content-Length")).toEqual(["2"])
      response.headers.append("X", "y")
      expect(headers.has("X")).toBe(false)
      expect(response.body).toEqual(new Uint8Array([1, 2]))
    })
  })

  describe("RequestParser", () => {
    it("names and values of a usual text's length but other bytes keep their own bytes (the shared texts are matched byte by byte)", () => {
      const lines = [
        ["Host", "websocket"],
        ["Hosx", "websockeT"],
        ["X-HOST", "Upgradf"],
        ["Upgrade", "\u00e9ebsocket"],
        ["Sec-WebSocket-Kez", "14"],
        ["Connection", "13"]
      ]
      const head = `GET / HTTP/1.1\r\n${lines.map(([name, value]) => `${name}: ${value}\r\n`).join("")}\r\n`
      const request = right(new RequestParser().feed(Buffer.from(head, "latin1")))
      expect([...request.headers]).toEqual(lines)
    })

    it("server receives the RFC 6455 §1.3 request", () => {
      const parser = new RequestParser()
      const request = right(parser.feed(bytes(SAMPLE_REQUEST)))
      expect(request.path).toBe("/chat")
      expect([...request.headers]).toEqual([
        ["Host", "server.example.com"],
        ["Upgrade", "websocket"],
        ["Connection", "Upgrade"],
        ["Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="],
        ["Origin", "http://example.com"],
        ["Sec-WebSocket-Protocol", "chat, superchat"],
        ["Sec-WebSocket-Version", "13"]
      ])
      expect(parser.rest).toEqual(new Uint8Array(0))
    })

    it("server receives a request followed by frames: they are the rest", () => {
      const parser = new RequestParser()
      right(parser.feed(concat(bytes(SAMPLE_REQUEST), HELLO_FRAME)))
      expect(parser.rest).toEqual(HELLO_FRAME)
    })

    it("server receives a partial request: needs more, then completes", () => {
      const parser = new RequestParser()
      expect(parser.feed(bytes("GET /chat HTTP/1.1\r\nHost: a"))).toEqual(Either.right(undefined))
      expect(parser.feed(bytes("\r\n"))).toEqual(Either.right(undefined))
      const request = right(parser.feed(bytes("\r\n")))
      expect(request.headers.getFirst("host")).toBe("a")
    })

    it("server receives the request whole, in chunks and byte by byte alike", () => {
      const data = concat(bytes(SAMPLE_REQUEST), HELLO_FRAME)
      const whole = new RequestParser()
      const expected = right(whole.feed(data))
      const chunked = new RequestParser()
      expect(right(feedChunks(chunked, data, [3, 4, 20, 21, 22, 100, 150, 200]))).toEqual(expected)
      expect(chunked.rest).toEqual(whole.rest)
      const bytewise = new RequestParser()
      expect(right(byteByByte(bytewise, data))).toEqual(expected)
      expect(bytewise.rest).toEqual(HELLO_FRAME)
    })

    it("a chunk is not kept after feed: clobbering each one once fed changes no request or response", () => {
      // The parser reads lines where they lie in a chunk and copies only what must wait for more.
      const fedCopies = <M>(parser: Parser<M>, data: Uint8Array, cuts: ReadonlyArray<number>): Result<M> => {
        let result: Result<M> = Either.right(undefined)
        let from = 0
        for (const cut of [...cuts, data.byteLength]) {
          if (cut < from) continue
          const chunk = data.slice(from, cut)
          const fed = parser.feed(chunk)
          chunk.fill(0x0a)
          from = cut
          // Once the message is complete, the chunks after it only add to `rest`.
          if (Either.isLeft(result) || result.right === undefined) result = fed
        }
        return result
      }
      const cases = [
        [() => new RequestParser(), concat(bytes(SAMPLE_REQUEST), HELLO_FRAME)],
        [() => new ResponseParser(), concat(bytes(SAMPLE_RESPONSE), HELLO_FRAME)],
        [() => new ResponseParser(), bytes("HTTP/1.1 403 Forbidden\r\nX-A: 1\r\nContent-Length: 5\r\n\r\nnope!extra")],
        [
          () => new ResponseParser(),
          bytes("HTTP/1.1 500 Oops\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\nzz")
        ]
      ] as const
      for (const [make, data] of cases) {
        const whole = make() as Parser<unknown> & { rest: Uint8Array }
        const expected = right(whole.feed(data))
        fc.assert(
          fc.property(fc.array(fc.nat(data.byteLength), { maxLength: 30 }), (cuts) => {
            const parser = make() as Parser<unknown> & { rest: Uint8Array }
            const result = fedCopies(
              parser,
              data,
              [...cuts].sort((a, b) => a - b)
            )
            expect(right(result)).toEqual(expected)
            expect(parser.rest).toEqual(whole.rest)
          })
        )
      }
    })

    it("server receives the request in random chunks alike", () => {
      const data = concat(bytes(SAMPLE_REQUEST), HELLO_FRAME)
      const expected = right(new RequestParser().feed(data))
      fc.assert(
        fc.property(fc.array(fc.nat(300), { maxLength: 30 }), (cuts) => {
          const parser = new RequestParser()
          const result = right(
            feedChunks(
              parser,
              data,
              [...cuts].sort((a, b) => a - b)
            )
          )
          expect(result).toEqual(expected)
          expect(parser.rest).toEqual(HELLO_FRAME)
        })
      )
    })

    it("server receives bytes after completion: they join the rest", () => {
      const parser = new RequestParser()
      const request = right(parser.feed(bytes(`${SAMPLE_REQUEST}ab`)))
      expect(parser.feed(bytes("cd"))).toEqual(Either.right(request))
      expect(text(parser.rest)).toBe("abcd")
      expect(parser.feedEof()).toEqual(Either.right(request))
    })

    it("server receives a request with obs-text: decoded as latin1", () => {
      const parser = new RequestParser()
      const data = concat(
        bytes("GET /caf"),
        new Uint8Array([0xe9]),
        bytes(" HTTP/1.1\r\nHost: a\r\nX: \xff\x80\r\n\r\n")
      )
      const request = right(parser.feed(data))
      expect(request.path).toBe("/caf\u00e9")
      expect(request.headers.getFirst("x")).toBe("\u00ff\u0080")
      expect(request.serialize()).toEqual(data)
    })

    it("server receives header values with OWS: it is stripped", () => {
      const request = right(parseRequest("GET / HTTP/1.1\r\nHost: a\r\nA:\t x y \t\r\nB:\r\nC:   \r\n\r\n"))
      expect([...request.headers]).toEqual([
        ["Host", "a"],
        ["A", "x y"],
        ["B", ""],
        ["C", ""]
      ])
    })

    it("server receives repeated headers: all values are kept in order", () => {
      const request = right(
        parseRequest("GET / HTTP/1.1\r\nHost: a\r\nConnection: keep-alive\r\nconnection: Upgrade\r\n\r\n")
      )
      expect(request.headers.getAll("Connection")).toEqual(["keep-alive", "Upgrade"])
    })

    it("server receives one empty line before the request line: it is ignored (RFC 7230 §3.5)", () => {
      expect(right(parseRequest(`\r\n${SAMPLE_REQUEST}`)).path).toBe("/chat")
    })

    it("server receives two empty lines before the request line", () => {
      expectError(parseRequest(`\r\n\r\n${SAMPLE_REQUEST}`), "InvalidMessage", 'invalid HTTP request line: ""')
    })

    it("server receives Content-Length: 0: accepted, as Python does", () => {
      expect(right(parseRequest("GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n")).path).toBe("/")
    })

    it("server receives a request line with a raw request-target", () => {
      expect(right(parseRequest("GET http://x/%20?a=b#c HTTP/1.1\r\nHost: x\r\n\r\n")).path).toBe("http://x/%20?a=b#c")
    })

    const requestErrors: ReadonlyArray<readonly [string, string, string, string | RegExp]> = [
      ["a method that is no token", "G(T / HTTP/1.1\r\n\r\n", "InvalidMessage", 'invalid HTTP method: "G(T"'],
      [
        "HTTP/1.0",
        "GET / HTTP/1.0\r\n\r\n",
        "InvalidMessage",
        'unsupported protocol; expected HTTP/1.1: "GET / HTTP/1.0"'
      ],
      ["HTTP/2", "GET / HTTP/2\r\n\r\n", "InvalidMessage", /^unsupported protocol/],
      ["a space in the path", "GET /a b HTTP/1.1\r\n\r\n", "InvalidMessage", /^unsupported protocol/],
      ["a request line without version", "GET /\r\n\r\n", "InvalidMessage", 'invalid HTTP request line: "GET /"'],
      ["a request line alone", "GET\r\n\r\n", "InvalidMessage", 'invalid HTTP request line: "GET"'],
      ["a bare LF after the request line", "GET / HTTP/1.1\n\r\n", "InvalidMessage", "line without CRLF"],
      ["a bare LF after a header", "GET / HTTP/1.1\r\nA: b\n\r\n", "InvalidMessage", "line without CRLF"],
      ["a bare LF as the last line", "GET / HTTP/1.1\r\nA: b\r\n\n", "InvalidMessage", "line without CRLF"],
      [
        "obsolete line folding",
        "GET / HTTP/1.1\r\nA: b\r\n c\r\n\r\n",
        "InvalidMessage",
        `obsolete line folding isn't supported: " c"`
      ],
      ["folding with HTAB", "GET / HTTP/1.1\r\nA: b\r\n\tc\r\n\r\n", "InvalidMessage", /^obsolete line folding/],
      [
        "a header line without colon",
        "GET / HTTP/1.1\r\nA b\r\n\r\n",
        "InvalidMessage",
        'invalid HTTP header line: "A b"'
      ],
      ["an empty header name", "GET / HTTP/1.1\r\n: b\r\n\r\n", "InvalidMessage", 'invalid HTTP header name: ""'],
      [
        "a space before the colon",
        "GET / HTTP/1.1\r\nA : b\r\n\r\n",
        "InvalidMessage",
        'invalid HTTP header name: "A "'
      ],
      ["a separator in the name", "GET / HTTP/1.1\r\nA(b): c\r\n\r\n", "InvalidMessage", /^invalid HTTP header name/],
      [
        "a control char in a value",
        "GET / HTTP/1.1\r\nA: b\x01c\r\n\r\n",
        "InvalidMessage",
        /^invalid HTTP header value/
      ],
      ["DEL in a value", "GET / HTTP/1.1\r\nA: b\x7f\r\n\r\n", "InvalidMessage", 'invalid HTTP header value: "b\x7f"'],
      ["a bare CR in a value", "GET / HTTP/1.1\r\nA: b\rc\r\n\r\n", "InvalidMessage", /^invalid HTTP header value/],
      ["NUL in a value", "GET / HTTP/1.1\r\nA: \x00\r\n\r\n", "InvalidMessage", /^invalid HTTP header value/],
      [
        "Transfer-Encoding",
        "GET / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n",
        "InvalidMessage",
        "transfer codings aren't supported"
      ],
      [
        "a request body",
        "GET / HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello",
        "InvalidMessage",
        "unsupported request body"
      ],
      [
        "a bad Content-Length",
        "GET / HTTP/1.1\r\nContent-Length: 1e3\r\n\r\n",
        "InvalidMessage",
        'invalid Content-Length: "1e3"'
      ],
      [
        "a signed Content-Length",
        "GET / HTTP/1.1\r\nContent-Length: +0\r\n\r\n",
        "InvalidMessage",
        /^invalid Content-Length/
      ],
      [
        "two Content-Length",
        "GET / HTTP/1.1\r\nContent-Length: 0\r\nContent-Length: 0\r\n\r\n",
        "InvalidMessage",
        'multiple Content-Length headers: "0, 0"'
      ]
    ]

    for (const [name, head, tag, detail] of requestErrors) {
      it(`server receives ${name}`, () => {
        expectError(parseRequest(head), tag, detail)
        // The same error whatever the chunking.
        expectError(byteByByte(new RequestParser(), bytes(head)), tag, detail)
      })
    }

    it("server receives a bad request line: fails before the headers arrive", () => {
      expectError(new RequestParser().feed(bytes("GET / HTTP/1.0\r\n")), "InvalidMessage", /^unsupported protocol/)
    })

    it("server receives other methods: parsed with their method for the request hook, a body left unread", () => {
      for (const method of ["HEAD", "POST", "OPTIONS", "get"]) {
        const parser = new RequestParser()
        const request = right(
          parser.feed(bytes(`${method} /health HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\nok`))
        )
        expect([request.method, request.path]).toEqual([method, "/health"])
        expect(text(parser.rest)).toBe("ok")
        expect(text(request.serialize())).toBe(`${method} /health HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\n`)
      }
      const chunked = right(parseRequest("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"))
      expect(chunked.method).toBe("POST")
      expect(right(parseRequest("GET / HTTP/1.1\r\nHost: a\r\n\r\n")).method).toBe("GET")
    })

    it("server receives more after an error: the error sticks", () => {
      const parser = new RequestParser()
      const first = left(parser.feed(bytes("GET / HTTP/1.0\r\n")))
      expect(left(parser.feed(bytes(SAMPLE_REQUEST)))).toBe(first)
      expect(left(parser.feedEof())).toBe(first)
    })

    it("server receives EOF before anything", () => {
      expectError(new RequestParser().feedEof(), "InvalidMessage", "connection closed while reading HTTP request line")
    })

    it("server receives EOF in the request line", () => {
      const parser = new RequestParser()
      expect(parser.feed(bytes("GET / HTT"))).toEqual(Either.right(undefined))
      expectError(parser.feedEof(), "InvalidMessage", "connection closed while reading HTTP request line")
    })

    it("server receives EOF in the headers", () => {
      const parser = new RequestParser()
      expect(parser.feed(bytes("GET / HTTP/1.1\r\nHost: a\r\n"))).toEqual(Either.right(undefined))
      expectError(parser.feedEof(), "InvalidMessage", "connection closed while reading HTTP headers")
    })

    it(`server receives ${MAX_NUM_HEADERS} headers: accepted`, () => {
      const request = right(parseRequest(`GET / HTTP/1.1\r\nHost: a\r\n${headersOf(MAX_NUM_HEADERS - 1)}\r\n`))
      expect(request.headers.size).toBe(MAX_NUM_HEADERS)
    })

    it(`server receives ${MAX_NUM_HEADERS + 1} headers: fails on the last one, before the empty line`, () => {
      expectError(
        parseRequest(`GET / HTTP/1.1\r\n${headersOf(MAX_NUM_HEADERS + 1)}`),
        "SecurityError",
        "too many HTTP headers"
      )
    })

    it("server receives a line of exactly MAX_LINE_LENGTH bytes with its CRLF: accepted", () => {
      const value = "a".repeat(MAX_LINE_LENGTH - "X: \r\n".length)
      const request = right(parseRequest(`GET / HTTP/1.1\r\nHost: a\r\nX: ${value}\r\n\r\n`))
      expect(request.headers.getFirst("X")).toBe(value)
    })

    it("server receives a line one byte over MAX_LINE_LENGTH with its CRLF", () => {
      const value = "a".repeat(MAX_LINE_LENGTH - "X: \r\n".length + 1)
      expectError(parseRequest(`GET / HTTP/1.1\r\nX: ${value}\r\n\r\n`), "SecurityError", "line too long")
    })

    it(`server receives ${MAX_LINE_LENGTH + 1} bytes without CRLF: fails at once`, () => {
      const parser = new RequestParser()
      expectError(parser.feed(bytes("G".repeat(MAX_LINE_LENGTH + 1))), "SecurityError", "line too long")
    })

    it("server receives an endless request line byte by byte: fails as soon as it cannot fit", () => {
      const parser = new RequestParser()
      const a = new Uint8Array([0x61])
      let fedBytes = 0
      let result: Result<Request> = Either.right(undefined)
      while (Either.isRight(result) && fedBytes < 10 * MAX_LINE_LENGTH) {
        result = parser.feed(a)
        fedBytes++
      }
      expectError(result, "SecurityError", "line too long")
      // With MAX_LINE_LENGTH bytes and no LF yet, the line plus its LF is already too long.
      expect(fedBytes).toBe(MAX_LINE_LENGTH)
    })

    it("server receives an endless header line in big chunks: fails without buffering them all", () => {
      const parser = new RequestParser()
      expect(parser.feed(bytes("GET / HTTP/1.1\r\nX: "))).toEqual(Either.right(undefined))
      expectError(parser.feed(new Uint8Array(4 * 1024 * 1024).fill(0x61)), "SecurityError", "line too long")
    })

    it("server receives a large head byte by byte: parsing stays linear", () => {
      const value = "v".repeat(MAX_LINE_LENGTH - 32)
      const head = `GET / HTTP/1.1\r\nHost: a\r\n${Array.from({ length: 16 }, (_, i) => `X-${i}: ${value}\r\n`).join("")}\r\n`
      const request = right(byteByByte(new RequestParser({ maxHeaderSize: 2 * head.length }), bytes(head)))
      expect(request.headers.size).toBe(17)
    })
  })

  describe("head size limit", () => {
    /** A request head of exactly `size` bytes, padded in an X-Pad header. */
    const requestOfSize = (size: number): string => {
      const prefix = "GET / HTTP/1.1\r\nHost: a\r\n"
      const lines: Array<string> = []
      let left = size - prefix.length - 2
      for (let i = 0; left > 0; i++) {
        const length = Math.min(left, 4096)
        const name = `X-${i}: `
        lines.push(`${name}${"p".repeat(length - name.length - 2)}\r\n`)
        left -= length
      }
      return `${prefix}${lines.join("")}\r\n`
    }
    /** The parser's buffer (private): what a pending head costs in memory. */
    const bufferSize = (parser: RequestParser | ResponseParser): number =>
      (parser as unknown as { buf: Buffer }).buf.length

    it("server receives a head of exactly MAX_HEADER_SIZE bytes: accepted", () => {
      const head = requestOfSize(MAX_HEADER_SIZE)
      expect(head.length).toBe(MAX_HEADER_SIZE)
      expect(right(parseRequest(head)).headers.getFirst("Host")).toBe("a")
      expect(right(byteByByte(new RequestParser(), bytes(head))).path).toBe("/")
    })

    it("server receives a head one byte over MAX_HEADER_SIZE: fails after MAX_HEADER_SIZE bytes", () => {
      const head = bytes(requestOfSize(MAX_HEADER_SIZE + 1))
      expectError(new RequestParser().feed(head), "SecurityError", `HTTP head too large: over ${MAX_HEADER_SIZE} bytes`)
      // Byte by byte: the error comes with the last byte that could still belong to the head.
      const parser = new RequestParser()
      for (let i = 0; i < MAX_HEADER_SIZE - 1; i++)
        expect(parser.feed(head.subarray(i, i + 1))).toEqual(Either.right(undefined))
      expectError(parser.feed(head.subarray(MAX_HEADER_SIZE - 1, MAX_HEADER_SIZE)), "SecurityError", /head too large/)
    })

    it("server receives 127 header lines of 8 KB in one chunk: fails, buffering at most the limit", () => {
      const line = `X: ${"a".repeat(8000)}\r\n`
      const parser = new RequestParser()
      const result = parser.feed(bytes(`GET / HTTP/1.1\r\nHost: a\r\n${line.repeat(127)}`))
      expectError(result, "SecurityError", /head too large/)
      expect(bufferSize(parser)).toBeLessThanOrEqual(MAX_HEADER_SIZE)
    })

    for (const size of [1, 100, 1000, 5000, 65_536]) {
      it(`server receives an endless head in chunks of ${size} bytes: the buffer never exceeds the limit`, () => {
        const parser = new RequestParser()
        const data = bytes(`GET / HTTP/1.1\r\n${`X-Filler: ${"f".repeat(200)}\r\n`.repeat(1000)}`)
        let result: Result<Request> = Either.right(undefined)
        let fed = 0
        while (Either.isRight(result) && fed < data.byteLength) {
          result = parser.feed(data.subarray(fed, fed + size))
          fed += size
          expect(bufferSize(parser)).toBeLessThanOrEqual(MAX_HEADER_SIZE)
        }
        expectError(result, "SecurityError", /head too large/)
        expect(fed).toBeLessThan(MAX_HEADER_SIZE + size)
      })
    }

    it("server receives a head over a smaller maxHeaderSize", () => {
      expectError(
        new RequestParser({ maxHeaderSize: 100 }).feed(bytes(requestOfSize(101))),
        "SecurityError",
        "HTTP head too large: over 100 bytes"
      )
      expect(right(new RequestParser({ maxHeaderSize: 100 }).feed(bytes(requestOfSize(100)))).path).toBe("/")
    })

    it("server with a maxHeaderSize of 0, negative or NaN lets no head through", () => {
      for (const maxHeaderSize of [0, -1, Number.NaN]) {
        expectError(new RequestParser({ maxHeaderSize }).feed(bytes(SAMPLE_REQUEST)), "SecurityError", /head too large/)
      }
    })

    it("server receives a head within a larger maxHeaderSize", () => {
      const head = requestOfSize(4 * MAX_HEADER_SIZE)
      expect(right(new RequestParser({ maxHeaderSize: 4 * MAX_HEADER_SIZE }).feed(bytes(head))).path).toBe("/")
    })

    it("server receives a request and 64 KiB more in one chunk: the request, and the rest whole", () => {
      const parser = new RequestParser()
      const more = new Uint8Array(65_536).fill(0x2a)
      expect(right(parser.feed(concat(bytes(SAMPLE_REQUEST), more))).path).toBe("/chat")
      expect(parser.rest).toEqual(more)
    })

    it("client receives a 101 and 64 KiB of frames in one chunk: the response, and the frames as the rest", () => {
      const parser = new ResponseParser()
      const frames = concat(...Array.from({ length: 10_000 }, () => HELLO_FRAME))
      const response = right(parser.feed(concat(bytes(SAMPLE_RESPONSE), frames)))
      expect(response.statusCode).toBe(101)
      expect(parser.rest).toEqual(frames)
    })

    it("client receives a body larger than the limit in the same chunk as the head", () => {
      const parser = new ResponseParser()
      const body = new Uint8Array(3 * MAX_HEADER_SIZE).fill(0x62)
      const response = right(
        parser.feed(concat(bytes(`HTTP/1.1 200 OK\r\nContent-Length: ${body.byteLength}\r\n\r\n`), body, bytes("xy")))
      )
      expect(response.body).toEqual(body)
      expect(text(parser.rest)).toBe("xy")
    })

    it("client receives an endless response head: fails at the limit", () => {
      const parser = new ResponseParser({ maxHeaderSize: 1000 })
      expect(parser.feed(bytes("HTTP/1.1 101 Switching Protocols\r\n"))).toEqual(Either.right(undefined))
      let result: Result<Response> = Either.right(undefined)
      for (let i = 0; i < 100 && Either.isRight(result); i++) result = parser.feed(bytes("X-Endless: 1\r\n"))
      expectError(result, "SecurityError", "HTTP head too large: over 1000 bytes")
      expect(bufferSize(parser)).toBeLessThanOrEqual(1000)
    })
  })

  describe("Host (RFC 7230 §5.4)", () => {
    it("server receives a request without Host: InvalidHeader", () => {
      const error = left(parseRequest("GET / HTTP/1.1\r\nUpgrade: websocket\r\n\r\n"))
      expect(error).toMatchObject({
        _tag: "InvalidHeader",
        name: "Host",
        value: undefined,
        message: "missing Host header"
      })
    })

    it("server receives a request with two Host headers: InvalidHeader", () => {
      const error = left(parseRequest("GET / HTTP/1.1\r\nHost: a\r\nX: 1\r\nhost: b\r\n\r\n"))
      expect(error).toMatchObject({ _tag: "InvalidHeader", name: "Host", value: "more than one Host header" })
    })

    it("server receives an empty Host: accepted (a URI without authority)", () => {
      expect(right(parseRequest("GET / HTTP/1.1\r\nHost:\r\n\r\n")).headers.getAll("Host")).toEqual([""])
    })

    it("client receives a response without Host: accepted", () => {
      expect(right(parseResponse(SAMPLE_RESPONSE)).headers.has("Host")).toBe(false)
    })
  })

  describe("ResponseParser", () => {
    it("client receives the RFC 6455 §1.3 response followed by a frame: the frame is the rest", () => {
      const parser = new ResponseParser()
      const response = right(parser.feed(concat(bytes(SAMPLE_RESPONSE), HELLO_FRAME)))
      expect(response.statusCode).toBe(101)
      expect(response.reasonPhrase).toBe("Switching Protocols")
      expect(response.headers.getFirst("Sec-WebSocket-Accept")).toBe("s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")
      expect(response.body).toEqual(new Uint8Array(0))
      expect(parser.rest).toEqual(HELLO_FRAME)
    })

    it("client receives 101 with Content-Length: no body, everything after the head is the rest", () => {
      const parser = new ResponseParser()
      const response = right(parser.feed(bytes("HTTP/1.1 101 Switching Protocols\r\nContent-Length: 3\r\n\r\nabc")))
      expect(response.body).toEqual(new Uint8Array(0))
      expect(text(parser.rest)).toBe("abc")
    })

    it("client receives 204 and 304 with Transfer-Encoding: no body, no error", () => {
      for (const status of [204, 304]) {
        const parser = new ResponseParser()
        const response = right(parser.feed(bytes(`HTTP/1.1 ${status} X\r\nTransfer-Encoding: chunked\r\n\r\nzz`)))
        expect(response.statusCode).toBe(status)
        expect(response.body).toEqual(new Uint8Array(0))
        expect(text(parser.rest)).toBe("zz")
      }
    })

    it("client receives the response whole, in chunks and byte by byte alike", () => {
      const data = concat(bytes(SAMPLE_RESPONSE), HELLO_FRAME)
      const whole = new ResponseParser()
      const expected = right(whole.feed(data))
      const chunked = new ResponseParser()
      expect(right(feedChunks(chunked, data, [1, 13, 14, 50, 120, 145]))).toEqual(expected)
      expect(chunked.rest).toEqual(HELLO_FRAME)
      const bytewise = new ResponseParser()
      expect(right(byteByByte(bytewise, data))).toEqual(expected)
      expect(bytewise.rest).toEqual(HELLO_FRAME)
    })

    it("client receives a body with Content-Length, then more bytes", () => {
      const parser = new ResponseParser()
      const response = right(parser.feed(bytes("HTTP/1.1 403 Forbidden\r\nContent-Length: 5\r\n\r\nnope!extra")))
      expect(text(response.body)).toBe("nope!")
      expect(text(parser.rest)).toBe("extra")
    })

    it("client receives a body with Content-Length in pieces", () => {
      const parser = new ResponseParser()
      expect(parser.feed(bytes("HTTP/1.1 500 Oops\r\nContent-Length: 6\r\n\r\nab"))).toEqual(Either.right(undefined))
      expect(parser.feed(bytes("cd"))).toEqual(Either.right(undefined))
      expect(text(right(parser.feed(bytes("ef"))).body)).toBe("abcdef")
      expect(parser.rest).toEqual(new Uint8Array(0))
    })

    it("client receives Content-Length: 0", () => {
      expect(right(parseResponse("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")).body).toEqual(new Uint8Array(0))
    })

    it("client receives a body that runs to EOF: complete only at EOF", () => {
      const parser = new ResponseParser()
      expect(parser.feed(bytes("HTTP/1.1 400 Bad Request\r\n\r\nsome"))).toEqual(Either.right(undefined))
      expect(parser.feed(bytes(" text"))).toEqual(Either.right(undefined))
      const response = right(parser.feedEof())
      expect(text(response.body)).toBe("some text")
      expect(parser.rest).toEqual(new Uint8Array(0))
    })

    it("client receives a body of exactly MAX_BODY_SIZE bytes to EOF: accepted", () => {
      const parser = new ResponseParser()
      expect(parser.feed(bytes("HTTP/1.1 200 OK\r\n\r\n"))).toEqual(Either.right(undefined))
      expect(parser.feed(new Uint8Array(MAX_BODY_SIZE))).toEqual(Either.right(undefined))
      expect(right(parser.feedEof()).body.byteLength).toBe(MAX_BODY_SIZE)
    })

    it("client receives a body over MAX_BODY_SIZE to EOF: fails before EOF", () => {
      const parser = new ResponseParser()
      expect(parser.feed(bytes("HTTP/1.1 200 OK\r\n\r\n"))).toEqual(Either.right(undefined))
      expect(parser.feed(new Uint8Array(MAX_BODY_SIZE))).toEqual(Either.right(undefined))
      expectError(parser.feed(new Uint8Array(1)), "SecurityError", `body too large: over ${MAX_BODY_SIZE} bytes`)
      expectError(parser.feedEof(), "SecurityError", `body too large: over ${MAX_BODY_SIZE} bytes`)
    })

    describe("chunked body (RFC 9112 §7.1)", () => {
      const CHUNKED_404 = [
        "HTTP/1.1 404 Not Found\r\n",
        "Content-Type: text/plain\r\n",
        "Transfer-Encoding: chunked\r\n",
        "\r\n",
        "4\r\nNot \r\n",
        "5;name=value\r\nFound\r\n",
        "0\r\n",
        "X-Trailer: 1\r\n",
        "\r\n"
      ].join("")

      it("client receives a 404 with a chunked body: the body decoded, the bytes after it are the rest", () => {
        const parser = new ResponseParser()
        const response = right(parser.feed(bytes(`${CHUNKED_404}next`)))
        expect([response.statusCode, response.reasonPhrase, text(response.body)]).toEqual([
          404,
          "Not Found",
          "Not Found"
        ])
        expect(response.headers.get("Content-Type")).toBe("text/plain")
        expect(text(parser.rest)).toBe("next")
      })

      it("client receives it whole, in chunks and byte by byte alike", () => {
        const data = bytes(CHUNKED_404)
        const expected = right(new ResponseParser().feed(data))
        expect(right(feedChunks(new ResponseParser(), data, [3, 60, 61, 75, 80, 90, 100]))).toEqual(expected)
        expect(right(byteByByte(new ResponseParser(), data))).toEqual(expected)
      })

      it("client receives an empty chunked body, upper-case hex, leading zeros and Transfer-Encoding over Content-Length", () => {
        expect(
          right(parseResponse("HTTP/1.1 404 Not Found\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n")).body
        ).toEqual(new Uint8Array(0))
        const response = right(
          parseResponse(
            "HTTP/1.1 500 Oops\r\nContent-Length: 2\r\nTransfer-Encoding: gzip, Chunked\r\n\r\n000A\r\n0123456789\r\n0\r\n\r\n"
          )
        )
        expect(text(response.body)).toBe("0123456789")
      })

      it("client receives chunks adding up to exactly MAX_BODY_SIZE: accepted", () => {
        const half = MAX_BODY_SIZE / 2
        const parser = new ResponseParser()
        const head = bytes(`HTTP/1.1 404 Not Found\r\nTransfer-Encoding: chunked\r\n\r\n${half.toString(16)}\r\n`)
        expect(parser.feed(head)).toEqual(Either.right(undefined))
        expect(parser.feed(new Uint8Array(half))).toEqual(Either.right(undefined))
        expect(parser.feed(bytes(`\r\n${half.toString(16)}\r\n`))).toEqual(Either.right(undefined))
        expect(parser.feed(new Uint8Array(half))).toEqual(Either.right(undefined))
        expect(right(parser.feed(bytes("\r\n0\r\n\r\n"))).body.byteLength).toBe(MAX_BODY_SIZE)
      })

      it("client receives EOF in a chunked body: InvalidMessage with the bytes read", () => {
        const parser = new ResponseParser()
        const head = "HTTP/1.1 404 Not Found\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n5\r\nab"
        expect(parser.feed(bytes(head))).toEqual(Either.right(undefined))
        expectError(
          parser.feedEof(),
          "InvalidMessage",
          "connection closed while reading chunked HTTP body: got 8 bytes"
        )
      })

      it("client receives a final coding other than chunked: the body runs to EOF, as it is", () => {
        const parser = new ResponseParser()
        expect(parser.feed(bytes("HTTP/1.1 404 Not Found\r\nTransfer-Encoding: gzip\r\n\r\n\x1f\x8b"))).toEqual(
          Either.right(undefined)
        )
        expect([...right(parser.feedEof()).body]).toEqual([0x1f, 0x8b])
      })
    })

    it("client receives a Content-Length over MAX_BODY_SIZE: fails at the end of the head", () => {
      expectError(
        parseResponse(`HTTP/1.1 200 OK\r\nContent-Length: ${MAX_BODY_SIZE + 1}\r\n\r\n`),
        "SecurityError",
        `body too large: ${MAX_BODY_SIZE + 1} bytes`
      )
    })

    it("client receives EOF in a body with Content-Length", () => {
      const parser = new ResponseParser()
      expect(parser.feed(bytes("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc"))).toEqual(Either.right(undefined))
      expectError(parser.feedEof(), "InvalidMessage", "connection closed while reading HTTP body: got 3 of 10 bytes")
    })

    it("client receives EOF before anything", () => {
      expectError(new ResponseParser().feedEof(), "InvalidMessage", "connection closed while reading HTTP status line")
    })

    it("client receives EOF in the headers", () => {
      const parser = new ResponseParser()
      expect(parser.feed(bytes("HTTP/1.1 101 Switching Protocols\r\nUpg"))).toEqual(Either.right(undefined))
      expectError(parser.feedEof(), "InvalidMessage", "connection closed while reading HTTP headers")
    })

    it("client receives reason phrases: empty, with spaces, tabs and obs-text", () => {
      expect(right(parseResponse("HTTP/1.1 101 \r\n\r\n")).reasonPhrase).toBe("")
      expect(right(parseResponse("HTTP/1.1 101 Switching  Protocols \r\n\r\n")).reasonPhrase).toBe(
        "Switching  Protocols "
      )
      expect(right(parseResponse("HTTP/1.1 101 a\tb\r\n\r\n")).reasonPhrase).toBe("a\tb")
      expect(right(parseResponse("HTTP/1.1 101 caf\xe9\r\n\r\n")).reasonPhrase).toBe("caf\u00e9")
    })

    it("client receives a response whose headers are then serialized: the identity", () => {
      const data = bytes("HTTP/1.1 404 Not\tFound\xff\r\nA: b\r\nContent-Length: 2\r\n\r\nhi")
      expect(right(new ResponseParser().feed(data)).serialize()).toEqual(data)
    })

    const responseErrors: ReadonlyArray<readonly [string, string, string, string | RegExp]> = [
      [
        "HTTP/1.0",
        "HTTP/1.0 101 OK\r\n\r\n",
        "InvalidMessage",
        'unsupported protocol; expected HTTP/1.1: "HTTP/1.0 101 OK"'
      ],
      [
        "a status line without reason",
        "HTTP/1.1 101\r\n\r\n",
        "InvalidMessage",
        'invalid HTTP status line: "HTTP/1.1 101"'
      ],
      ["a status line alone", "HTTP/1.1\r\n\r\n", "InvalidMessage", 'invalid HTTP status line: "HTTP/1.1"'],
      ["an empty status line", "\r\n\r\n", "InvalidMessage", 'invalid HTTP status line: ""'],
      [
        "a status of two digits",
        "HTTP/1.1 99 X\r\n\r\n",
        "InvalidMessage",
        'invalid status code; expected 3 digits; got "99"'
      ],
      [
        "a status of four digits",
        "HTTP/1.1 1010 X\r\n\r\n",
        "InvalidMessage",
        /^invalid status code; expected 3 digits/
      ],
      ["a status that is not a number", "HTTP/1.1 abc X\r\n\r\n", "InvalidMessage", /^invalid status code; expected 3/],
      ["a signed status", "HTTP/1.1 +10 X\r\n\r\n", "InvalidMessage", /^invalid status code; expected 3 digits/],
      [
        "a status of 600",
        "HTTP/1.1 600 X\r\n\r\n",
        "InvalidMessage",
        'invalid status code; expected 100–599; got "600"'
      ],
      ["a status of 099", "HTTP/1.1 099 X\r\n\r\n", "InvalidMessage", /^invalid status code; expected 100–599/],
      ["a control char in the reason", "HTTP/1.1 101 a\x00b\r\n\r\n", "InvalidMessage", /^invalid HTTP reason phrase/],
      ["a bare LF", "HTTP/1.1 101 OK\n\n", "InvalidMessage", "line without CRLF"],
      ["obsolete line folding", "HTTP/1.1 101 OK\r\nA: b\r\n c\r\n\r\n", "InvalidMessage", /^obsolete line folding/],
      ["a bad header name", "HTTP/1.1 101 OK\r\n{A}: b\r\n\r\n", "InvalidMessage", /^invalid HTTP header name/],
      ["a bad header value", "HTTP/1.1 101 OK\r\nA: \x1b[0m\r\n\r\n", "InvalidMessage", /^invalid HTTP header value/],
      [
        "a chunk size that is not hex",
        "HTTP/1.1 404 Not Found\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        "InvalidMessage",
        'invalid chunk size: "zz"'
      ],
      [
        "a chunk without CRLF after its data",
        "HTTP/1.1 404 Not Found\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabX\r\n",
        "InvalidMessage",
        "chunk without CRLF"
      ],
      [
        "a chunk over MAX_BODY_SIZE",
        `HTTP/1.1 404 Not Found\r\nTransfer-Encoding: chunked\r\n\r\n${(MAX_BODY_SIZE + 1).toString(16)}\r\n`,
        "SecurityError",
        `body too large: chunk of ${MAX_BODY_SIZE + 1} bytes after 0 bytes`
      ],
      [
        "a chunk size of 17 hex digits",
        "HTTP/1.1 404 Not Found\r\nTransfer-Encoding: chunked\r\n\r\n1ffffffffffffffff\r\n",
        "SecurityError",
        "body too large: chunk of 0x1ffffffffffffffff bytes after 0 bytes"
      ],
      [
        "chunks that add up to over MAX_BODY_SIZE",
        `HTTP/1.1 404 Not Found\r\nTransfer-Encoding: chunked\r\n\r\n1\r\na\r\n${MAX_BODY_SIZE.toString(16)}\r\n`,
        "SecurityError",
        `body too large: chunk of ${MAX_BODY_SIZE} bytes after 1 bytes`
      ],
      [
        "too many trailer lines",
        `HTTP/1.1 404 Not Found\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n${headersOf(MAX_NUM_HEADERS + 1)}`,
        "SecurityError",
        "too many HTTP trailer lines"
      ],
      [
        "a chunk-size line too long",
        `HTTP/1.1 404 Not Found\r\nTransfer-Encoding: chunked\r\n\r\n1;${"x".repeat(MAX_LINE_LENGTH)}`,
        "SecurityError",
        "line too long"
      ],
      [
        "a negative Content-Length",
        "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
        "InvalidMessage",
        /^invalid Content/
      ],
      ["an empty Content-Length", "HTTP/1.1 200 OK\r\nContent-Length:\r\n\r\n", "InvalidMessage", /^invalid Content/],
      [
        "two Content-Length",
        "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
        "InvalidMessage",
        /^multiple Content-Length/
      ],
      [
        "too many headers",
        `HTTP/1.1 101 OK\r\n${headersOf(MAX_NUM_HEADERS + 1)}`,
        "SecurityError",
        "too many HTTP headers"
      ],
      ["a line too long", `HTTP/1.1 101 ${"x".repeat(MAX_LINE_LENGTH)}`, "SecurityError", "line too long"]
    ]

    for (const [name, head, tag, detail] of responseErrors) {
      it(`client receives ${name}`, () => {
        expectError(parseResponse(head), tag, detail)
        expectError(byteByByte(new ResponseParser(), bytes(head)), tag, detail)
      })
    }
  })

  describe("properties", () => {
    const tokenChar = fc.constantFrom(
      ..."!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
    )
    const token = fc.string({ unit: tokenChar, minLength: 1, maxLength: 20 })
    const fieldChar = fc.oneof(
      fc.integer({ min: 0x21, max: 0x7e }),
      fc.integer({ min: 0x80, max: 0xff }),
      fc.constantFrom(0x20, 0x09)
    )
    // A field value: no leading or trailing OWS, which parsing strips.
    const fieldValue = fc
      .array(fieldChar, { maxLength: 30 })
      .map((codes) => String.fromCharCode(...codes).replace(/^[ \t]+|[ \t]+$/g, ""))
    const headerList = fc.array(fc.tuple(token, fieldValue), { maxLength: 20 })
    const path = fc.string({ unit: fc.integer({ min: 0x21, max: 0xff }).map((c) => String.fromCharCode(c)) })
    const reason = fc.array(fieldChar, { maxLength: 30 }).map((codes) => String.fromCharCode(...codes))
    const chunking = fc.array(fc.nat(2000), { maxLength: 20 }).map((cuts) => [...cuts].sort((a, b) => a - b))
    const noBodyHeaders = (list: ReadonlyArray<readonly [string, string]>) =>
      list.filter(([name]) => !/^(content-length|transfer-encoding)$/i.test(name))
    // A request has exactly one Host (RFC 7230 §5.4), added by the test.
    const requestHeaders = (list: ReadonlyArray<readonly [string, string]>) =>
      noBodyHeaders(list).filter(([name]) => name.toLowerCase() !== "host")

    it("request serialize then parse is the identity", () => {
      fc.assert(
        fc.property(path, headerList, chunking, (p, list, cuts) => {
          const request = new Request(p, new Headers([["Host", "a"], ...requestHeaders(list)]))
          const data = request.serialize()
          const parser = new RequestParser()
          const parsed = right(feedChunks(parser, data, cuts))
          expect(parsed.path).toBe(p)
          expect([...parsed.headers]).toEqual([...request.headers])
          expect(parsed.serialize()).toEqual(data)
          expect(parser.rest).toEqual(new Uint8Array(0))
        })
      )
    })

    it("response serialize then parse is the identity", () => {
      fc.assert(
        fc.property(
          fc.integer({ min: 100, max: 599 }),
          reason,
          headerList,
          fc.uint8Array({ maxLength: 100 }),
          chunking,
          (status, r, list, body, cuts) => {
            const headers = new Headers(noBodyHeaders(list))
            const withBody = !(status < 200 || status === 204 || status === 304)
            if (withBody) headers.append("Content-Length", String(body.byteLength))
            const response = new Response(status, r, headers, withBody ? body : new Uint8Array(0))
            const data = concat(response.serialize(), HELLO_FRAME)
            const parser = new ResponseParser()
            const parsed = right(feedChunks(parser, data, cuts))
            expect(parsed.statusCode).toBe(status)
            expect(parsed.reasonPhrase).toBe(r)
            expect([...parsed.headers]).toEqual([...headers])
            expect(parsed.body).toEqual(response.body)
            expect(parser.rest).toEqual(HELLO_FRAME)
          }
        )
      )
    })

    // Random bytes with a bias towards the bytes that matter to the grammar.
    const noisyByte = fc.oneof(fc.integer({ min: 0, max: 255 }), fc.constantFrom(0x0d, 0x0a, 0x20, 0x3a, 0x09))
    const noise = fc.oneof(
      fc.array(noisyByte, { maxLength: 600 }).map((a) => new Uint8Array(a)),
      fc
        .tuple(fc.constantFrom(SAMPLE_REQUEST, SAMPLE_RESPONSE, "HTTP/1.1 200 OK\r\n"), fc.array(noisyByte))
        .map(([prefix, a]) => concat(bytes(prefix), new Uint8Array(a)))
    )

    it("random bytes in random chunks never throw", () => {
      fc.assert(
        fc.property(noise, chunking, fc.boolean(), (data, cuts, eof) => {
          const parsers: ReadonlyArray<Parser<unknown> & { feedEof(): Either.Either<unknown, unknown> }> = [
            new RequestParser(),
            new ResponseParser()
          ]
          for (const parser of parsers) {
            let from = 0
            for (const cut of [...cuts, data.byteLength]) {
              if (cut < from || cut > data.byteLength) continue
              const result = parser.feed(data.subarray(from, cut))
              from = cut
              expect(Either.isEither(result)).toBe(true)
            }
            if (eof) {
              const result = parser.feedEof()
              expect(Either.isEither(result)).toBe(true)
              if (Either.isRight(result)) expect(result.right).toBeDefined()
            }
          }
        }),
        { numRuns: 300 }
      )
    })
  })
})
