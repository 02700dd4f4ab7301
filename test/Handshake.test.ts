import { describe, expect, it } from "@effect/vitest"
import * as Either from "effect/Either"
import * as fc from "fast-check"
import {
  acceptKey,
  buildRequest,
  buildResponse,
  checkRequest,
  checkResponse,
  GUID,
  generateKey
} from "../src/Handshake.js"
import { Headers } from "../src/Headers.js"

// RFC 6455 §1.3
const KEY = "dGhlIHNhbXBsZSBub25jZQ=="
const ACCEPT = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="

const requestHeaders = (overrides: Record<string, ReadonlyArray<string> | undefined> = {}): Headers => {
  const base: Record<string, ReadonlyArray<string>> = {
    Host: ["server.example.com"],
    Upgrade: ["websocket"],
    Connection: ["Upgrade"],
    "Sec-WebSocket-Key": [KEY],
    "Sec-WebSocket-Version": ["13"]
  }
  const headers = new Headers()
  for (const [name, values] of Object.entries({ ...base, ...overrides })) {
    for (const value of values ?? []) headers.append(name, value)
  }
  return headers
}

const responseHeaders = (overrides: Record<string, ReadonlyArray<string> | undefined> = {}): Headers => {
  const base: Record<string, ReadonlyArray<string>> = {
    Upgrade: ["websocket"],
    Connection: ["Upgrade"],
    "Sec-WebSocket-Accept": [ACCEPT]
  }
  const headers = new Headers()
  for (const [name, values] of Object.entries({ ...base, ...overrides })) {
    for (const value of values ?? []) headers.append(name, value)
  }
  return headers
}

/** The error as a plain object of its string-keyed fields, `_tag` included (brands left out). */
const failure = (result: Either.Either<unknown, object>): Record<string, unknown> => {
  if (Either.isRight(result)) throw new Error(`expected Left, got ${JSON.stringify(result.right)}`)
  return { ...Object.fromEntries(Object.entries(result.left)), _tag: (result.left as { _tag: string })._tag }
}

describe("Handshake", () => {
  describe("keys", () => {
    it("GUID is the one of RFC 6455 §1.3", () => {
      expect(GUID).toBe("258EAFA5-E914-47DA-95CA-C5AB0DC85B11")
    })

    it("acceptKey of the RFC 6455 §1.3 example", () => {
      expect(acceptKey(KEY)).toBe(ACCEPT)
    })

    it("generateKey gives 16 random bytes in base64", () => {
      const key = generateKey()
      expect(key).toMatch(/^[A-Za-z0-9+/]{22}==$/)
      expect(Buffer.from(key, "base64").byteLength).toBe(16)
      expect(generateKey()).not.toBe(key)
    })
  })

  describe("build", () => {
    it("client builds request headers after its own", () => {
      const headers = new Headers({ Host: "example.com" })
      const key = buildRequest(headers)
      expect([...headers]).toEqual([
        ["Host", "example.com"],
        ["Upgrade", "websocket"],
        ["Connection", "Upgrade"],
        ["Sec-WebSocket-Key", key],
        ["Sec-WebSocket-Version", "13"]
      ])
      expect(Buffer.from(key, "base64").byteLength).toBe(16)
    })

    it("client builds request headers over existing ones: replaced, never duplicated", () => {
      const headers = new Headers([
        ["connection", "keep-alive"],
        ["Sec-WebSocket-Version", "8"]
      ])
      buildRequest(headers)
      expect(headers.getAll("Connection")).toEqual(["Upgrade"])
      expect(headers.getAll("Sec-WebSocket-Version")).toEqual(["13"])
    })

    it("server builds response headers for the RFC 6455 §1.3 key", () => {
      const headers = new Headers({ Server: "test" })
      buildResponse(headers, KEY)
      expect([...headers]).toEqual([
        ["Server", "test"],
        ["Upgrade", "websocket"],
        ["Connection", "Upgrade"],
        ["Sec-WebSocket-Accept", ACCEPT]
      ])
    })

    it("client request passes the server check, and the server response the client check", () => {
      const request = new Headers()
      const key = buildRequest(request)
      expect(checkRequest(request)).toEqual(Either.right(key))
      const response = new Headers()
      buildResponse(response, key)
      expect(checkResponse(response, key)).toEqual(Either.right(undefined))
    })

    it("any 16-byte key round-trips", () => {
      fc.assert(
        fc.property(fc.uint8Array({ minLength: 16, maxLength: 16 }), (nonce) => {
          const key = Buffer.from(nonce).toString("base64")
          expect(checkRequest(requestHeaders({ "Sec-WebSocket-Key": [key] }))).toEqual(Either.right(key))
          const response = new Headers()
          buildResponse(response, key)
          expect(checkResponse(response, key)).toEqual(Either.right(undefined))
        })
      )
    })
  })

  describe("checkRequest", () => {
    it("server accepts the RFC 6455 §1.3 request", () => {
      expect(checkRequest(requestHeaders())).toEqual(Either.right(KEY))
    })

    it("server accepts Upgrade and Connection in any case, with other options", () => {
      const headers = requestHeaders({ Upgrade: ["WebSocket"], Connection: ["keep-alive, UPGRADE"] })
      expect(checkRequest(headers)).toEqual(Either.right(KEY))
    })

    it("server accepts Connection split over several headers", () => {
      const headers = requestHeaders({ Connection: ["keep-alive", "upgrade"] })
      expect(checkRequest(headers)).toEqual(Either.right(KEY))
    })

    const cases: ReadonlyArray<readonly [string, Record<string, ReadonlyArray<string> | undefined>, object]> = [
      ["no Connection", { Connection: undefined }, { _tag: "InvalidUpgrade", name: "Connection", value: undefined }],
      [
        "Connection without upgrade",
        { Connection: ["keep-alive"] },
        { _tag: "InvalidUpgrade", name: "Connection", value: "keep-alive" }
      ],
      [
        "Connection headers without upgrade",
        { Connection: ["keep-alive", "close"] },
        { _tag: "InvalidUpgrade", name: "Connection", value: "keep-alive, close" }
      ],
      [
        "a malformed Connection",
        { Connection: ["keep-alive;"] },
        { _tag: "InvalidHeaderFormat", name: "Connection", error: "expected comma", header: "keep-alive;", pos: 10 }
      ],
      ["no Upgrade", { Upgrade: undefined }, { _tag: "InvalidUpgrade", name: "Upgrade", value: undefined }],
      ["another Upgrade", { Upgrade: ["h2c"] }, { _tag: "InvalidUpgrade", name: "Upgrade", value: "h2c" }],
      [
        "Upgrade with two protocols",
        { Upgrade: ["websocket, h2c"] },
        { _tag: "InvalidUpgrade", name: "Upgrade", value: "websocket, h2c" }
      ],
      [
        "two Upgrade headers",
        { Upgrade: ["websocket", "websocket"] },
        { _tag: "InvalidUpgrade", name: "Upgrade", value: "websocket, websocket" }
      ],
      [
        "Upgrade with a version",
        { Upgrade: ["websocket/13"] },
        { _tag: "InvalidUpgrade", name: "Upgrade", value: "websocket/13" }
      ],
      [
        "a malformed Upgrade",
        { Upgrade: ["(websocket)"] },
        { _tag: "InvalidHeaderFormat", name: "Upgrade", error: "expected protocol", header: "(websocket)", pos: 0 }
      ],
      [
        "no Sec-WebSocket-Key",
        { "Sec-WebSocket-Key": undefined },
        { _tag: "InvalidHeader", name: "Sec-WebSocket-Key" }
      ],
      [
        "two Sec-WebSocket-Key",
        { "Sec-WebSocket-Key": [KEY, KEY] },
        { _tag: "InvalidHeader", name: "Sec-WebSocket-Key", value: "more than one Sec-WebSocket-Key header found" }
      ],
      [
        "a Sec-WebSocket-Key that is not base64",
        { "Sec-WebSocket-Key": ["not base64!"] },
        { _tag: "InvalidHeaderValue", name: "Sec-WebSocket-Key", value: "not base64!" }
      ],
      [
        "a Sec-WebSocket-Key of 15 bytes",
        { "Sec-WebSocket-Key": ["AAAAAAAAAAAAAAAAAAAA"] },
        { _tag: "InvalidHeaderValue", name: "Sec-WebSocket-Key", value: "AAAAAAAAAAAAAAAAAAAA" }
      ],
      [
        "a Sec-WebSocket-Key of 17 bytes",
        { "Sec-WebSocket-Key": ["AAAAAAAAAAAAAAAAAAAAAAA="] },
        { _tag: "InvalidHeaderValue", name: "Sec-WebSocket-Key", value: "AAAAAAAAAAAAAAAAAAAAAAA=" }
      ],
      [
        "a Sec-WebSocket-Key without padding",
        { "Sec-WebSocket-Key": ["dGhlIHNhbXBsZSBub25jZQ"] },
        { _tag: "InvalidHeaderValue", name: "Sec-WebSocket-Key", value: "dGhlIHNhbXBsZSBub25jZQ" }
      ],
      [
        "a Sec-WebSocket-Key in the URL-safe alphabet",
        { "Sec-WebSocket-Key": ["-_-_-_-_-_-_-_-_-_-_-w=="] },
        { _tag: "InvalidHeaderValue", name: "Sec-WebSocket-Key", value: "-_-_-_-_-_-_-_-_-_-_-w==" }
      ],
      [
        "a Sec-WebSocket-Key with inner whitespace",
        { "Sec-WebSocket-Key": ["dGhlIHNhbXBs ZSBub25jZQ=="] },
        { _tag: "InvalidHeaderValue", name: "Sec-WebSocket-Key", value: "dGhlIHNhbXBs ZSBub25jZQ==" }
      ],
      [
        "an empty Sec-WebSocket-Key",
        { "Sec-WebSocket-Key": [""] },
        { _tag: "InvalidHeaderValue", name: "Sec-WebSocket-Key", value: "" }
      ],
      [
        "no Sec-WebSocket-Version",
        { "Sec-WebSocket-Version": undefined },
        { _tag: "InvalidHeader", name: "Sec-WebSocket-Version" }
      ],
      [
        "two Sec-WebSocket-Version",
        { "Sec-WebSocket-Version": ["13", "13"] },
        {
          _tag: "InvalidHeader",
          name: "Sec-WebSocket-Version",
          value: "more than one Sec-WebSocket-Version header found"
        }
      ],
      [
        "Sec-WebSocket-Version 8",
        { "Sec-WebSocket-Version": ["8"] },
        { _tag: "InvalidHeaderValue", name: "Sec-WebSocket-Version", value: "8" }
      ],
      [
        "Sec-WebSocket-Version as a list",
        { "Sec-WebSocket-Version": ["13, 8"] },
        { _tag: "InvalidHeaderValue", name: "Sec-WebSocket-Version", value: "13, 8" }
      ]
    ]

    for (const [name, overrides, expected] of cases) {
      it(`server receives ${name}`, () => {
        expect(failure(checkRequest(requestHeaders(overrides)))).toEqual(expected)
      })
    }

    it("server checks Connection first, then Upgrade, then the key, then the version", () => {
      const all = {
        Connection: ["close"],
        Upgrade: ["h2c"],
        "Sec-WebSocket-Key": ["x"],
        "Sec-WebSocket-Version": ["1"]
      }
      expect(failure(checkRequest(requestHeaders(all)))).toMatchObject({ _tag: "InvalidUpgrade", name: "Connection" })
      expect(failure(checkRequest(requestHeaders({ ...all, Connection: ["upgrade"] })))).toMatchObject({
        _tag: "InvalidUpgrade",
        name: "Upgrade"
      })
      expect(
        failure(checkRequest(requestHeaders({ ...all, Connection: ["upgrade"], Upgrade: ["websocket"] })))
      ).toMatchObject({ _tag: "InvalidHeaderValue", name: "Sec-WebSocket-Key" })
    })

    it("server error messages read like Python's", () => {
      const message = (overrides: Record<string, ReadonlyArray<string> | undefined>) =>
        Either.match(checkRequest(requestHeaders(overrides)), { onLeft: (e) => e.message, onRight: () => "" })
      expect(message({ Connection: undefined })).toBe("missing Connection header")
      expect(message({ Upgrade: ["h2c"] })).toBe('invalid Upgrade header: "h2c"')
      expect(message({ "Sec-WebSocket-Key": undefined })).toBe("missing Sec-WebSocket-Key header")
      expect(message({ "Sec-WebSocket-Version": ["8"] })).toBe('invalid Sec-WebSocket-Version header: "8"')
    })
  })

  describe("checkResponse", () => {
    it("client accepts the RFC 6455 §1.3 response", () => {
      expect(checkResponse(responseHeaders(), KEY)).toEqual(Either.right(undefined))
    })

    it("client accepts Upgrade and Connection in any case", () => {
      const headers = responseHeaders({ Upgrade: ["WEBSOCKET"], Connection: ["upgrade"] })
      expect(checkResponse(headers, KEY)).toEqual(Either.right(undefined))
    })

    const cases: ReadonlyArray<readonly [string, Record<string, ReadonlyArray<string> | undefined>, object]> = [
      ["no Connection", { Connection: undefined }, { _tag: "InvalidUpgrade", name: "Connection", value: undefined }],
      ["Connection: close", { Connection: ["close"] }, { _tag: "InvalidUpgrade", name: "Connection", value: "close" }],
      [
        "a malformed Connection",
        { Connection: [""] },
        { _tag: "InvalidHeaderFormat", name: "Connection", error: "expected token", header: "", pos: 0 }
      ],
      ["no Upgrade", { Upgrade: undefined }, { _tag: "InvalidUpgrade", name: "Upgrade", value: undefined }],
      ["Upgrade: h2c", { Upgrade: ["h2c"] }, { _tag: "InvalidUpgrade", name: "Upgrade", value: "h2c" }],
      [
        "a malformed Upgrade",
        { Upgrade: ["websocket/"] },
        { _tag: "InvalidHeaderFormat", name: "Upgrade", error: "expected comma", header: "websocket/", pos: 9 }
      ],
      [
        "no Sec-WebSocket-Accept",
        { "Sec-WebSocket-Accept": undefined },
        { _tag: "InvalidHeader", name: "Sec-WebSocket-Accept" }
      ],
      [
        "two Sec-WebSocket-Accept",
        { "Sec-WebSocket-Accept": [ACCEPT, ACCEPT] },
        {
          _tag: "InvalidHeader",
          name: "Sec-WebSocket-Accept",
          value: "more than one Sec-WebSocket-Accept header found"
        }
      ],
      [
        "a wrong Sec-WebSocket-Accept",
        { "Sec-WebSocket-Accept": [acceptKey(generateKey())] },
        { _tag: "InvalidHeaderValue", name: "Sec-WebSocket-Accept" }
      ],
      [
        "a Sec-WebSocket-Accept in another case",
        { "Sec-WebSocket-Accept": [ACCEPT.toLowerCase()] },
        { _tag: "InvalidHeaderValue", name: "Sec-WebSocket-Accept", value: ACCEPT.toLowerCase() }
      ]
    ]

    for (const [name, overrides, expected] of cases) {
      it(`client receives ${name}`, () => {
        expect(failure(checkResponse(responseHeaders(overrides), KEY))).toMatchObject(expected)
      })
    }

    it("client receives the accept of another key", () => {
      const other = generateKey()
      expect(failure(checkResponse(responseHeaders(), other))).toEqual({
        _tag: "InvalidHeaderValue",
        name: "Sec-WebSocket-Accept",
        value: ACCEPT
      })
    })
  })
})
