import { describe, expect, it } from "@effect/vitest"
import * as Either from "effect/Either"
import * as fc from "fast-check"
import { InvalidURI } from "../src/Errors.js"
import { formatUri, hostHeader, parseUri, type WebSocketURI } from "../src/Uri.js"

const right = <A, E>(result: Either.Either<A, E>): A => {
  if (Either.isLeft(result)) throw new Error(`expected Right, got ${String(result.left)}`)
  return result.right
}

const left = <A, E>(result: Either.Either<A, E>): E => {
  if (Either.isRight(result)) throw new Error(`expected Left, got ${JSON.stringify(result.right)}`)
  return result.left
}

const wsuri = (
  secure: boolean,
  host: string,
  port: number,
  resourceName: string,
  userInfo?: readonly [string, string]
): WebSocketURI => ({ secure, host, port, resourceName, userInfo })

const VALID: ReadonlyArray<readonly [string, WebSocketURI]> = [
  ["ws://localhost/", wsuri(false, "localhost", 80, "/")],
  ["wss://localhost/", wsuri(true, "localhost", 443, "/")],
  ["ws://localhost", wsuri(false, "localhost", 80, "/")],
  ["ws://localhost/path?query", wsuri(false, "localhost", 80, "/path?query")],
  ["ws://localhost/path;params", wsuri(false, "localhost", 80, "/path;params")],
  ["ws://localhost?query", wsuri(false, "localhost", 80, "/?query")],
  ["ws://localhost/?", wsuri(false, "localhost", 80, "/")],
  ["WS://LocalHost/PATH?QUERY", wsuri(false, "localhost", 80, "/PATH?QUERY")],
  ["WsS://localhost", wsuri(true, "localhost", 443, "/")],
  ["ws://localhost:8080/", wsuri(false, "localhost", 8080, "/")],
  ["ws://localhost:443/", wsuri(false, "localhost", 443, "/")],
  ["wss://localhost:80/", wsuri(true, "localhost", 80, "/")],
  ["ws://localhost:0080/", wsuri(false, "localhost", 80, "/")],
  ["ws://localhost:1/", wsuri(false, "localhost", 1, "/")],
  ["ws://localhost:65535/", wsuri(false, "localhost", 65535, "/")],
  ["ws://localhost:/", wsuri(false, "localhost", 80, "/")],
  ["ws://127.0.0.1:8765/chat", wsuri(false, "127.0.0.1", 8765, "/chat")],
  ["ws://[::1]/", wsuri(false, "::1", 80, "/")],
  ["wss://[::1]:8443/x", wsuri(true, "::1", 8443, "/x")],
  ["ws://[::FFFF:1.2.3.4]/", wsuri(false, "::ffff:1.2.3.4", 80, "/")],
  ["ws://[2001:DB8::1]:9000", wsuri(false, "2001:db8::1", 9000, "/")],
  ["ws://user:pass@localhost/", wsuri(false, "localhost", 80, "/", ["user", "pass"])],
  ["ws://user:@localhost/", wsuri(false, "localhost", 80, "/", ["user", ""])],
  ["ws://:pass@localhost/", wsuri(false, "localhost", 80, "/", ["", "pass"])],
  ["ws://user:p:ss@localhost/", wsuri(false, "localhost", 80, "/", ["user", "p:ss"])],
  ["ws://user:p@ss@localhost/", wsuri(false, "localhost", 80, "/", ["user", "p@ss"])],
  ["ws://us%40er:p%3Ass%2@localhost/", wsuri(false, "localhost", 80, "/", ["us@er", "p:ss%2"])],
  ["ws://user:p%C3%A4ss@localhost/", wsuri(false, "localhost", 80, "/", ["user", "päss"])],
  ["ws://üser:päss@localhost/", wsuri(false, "localhost", 80, "/", ["üser", "päss"])],
  ["wss://user:pass@[::1]:8443/", wsuri(true, "::1", 8443, "/", ["user", "pass"])],
  ["ws://localhost/p%20q%zz", wsuri(false, "localhost", 80, "/p%20q%zz")],
  ["ws://localhost/p q", wsuri(false, "localhost", 80, "/p%20q")],
  ["ws://localhost/ä?ö=ü", wsuri(false, "localhost", 80, "/%C3%A4?%C3%B6=%C3%BC")],
  ["ws://localhost/\u{1F600}", wsuri(false, "localhost", 80, "/%F0%9F%98%80")],
  ['ws://localhost/a"<>\\^`{|}\u007f', wsuri(false, "localhost", 80, "/a%22%3C%3E%5C%5E%60%7B%7C%7D%7F")],
  ["ws://localhost/[x]:@!$&'()*+,;=~-._?/?", wsuri(false, "localhost", 80, "/[x]:@!$&'()*+,;=~-._?/?")],
  ["ws://bücher.de/", wsuri(false, "xn--bcher-kva.de", 80, "/")],
  ["ws://ÉXAMPLE.com:8080/ä", wsuri(false, "xn--xample-9ua.com", 8080, "/%C3%A4")],
  ["ws://xn--bcher-kva.de/", wsuri(false, "xn--bcher-kva.de", 80, "/")],
  ["  \u0000ws://localhost/x \n", wsuri(false, "localhost", 80, "/x")],
  ["ws://local\thost/pa\r\nth", wsuri(false, "localhost", 80, "/path")]
]

const INVALID: ReadonlyArray<readonly [string, string]> = [
  ["http://localhost/", "scheme isn't ws or wss"],
  ["https://localhost/", "scheme isn't ws or wss"],
  ["wsx://localhost/", "scheme isn't ws or wss"],
  ["localhost:8080", "scheme isn't ws or wss"],
  ["/path", "scheme isn't ws or wss"],
  ["//localhost/", "scheme isn't ws or wss"],
  ["", "scheme isn't ws or wss"],
  ["ws", "scheme isn't ws or wss"],
  ["ws:/localhost/", "hostname isn't provided"],
  ["ws:localhost", "hostname isn't provided"],
  ["ws:", "hostname isn't provided"],
  ["ws://", "hostname isn't provided"],
  ["ws:///path", "hostname isn't provided"],
  ["ws://:8080/", "hostname isn't provided"],
  ["ws://user:pass@/", "hostname isn't provided"],
  ["ws://localhost/#", "fragment identifier is meaningless"],
  ["ws://localhost/path#frag", "fragment identifier is meaningless"],
  ["ws://localhost#", "fragment identifier is meaningless"],
  ["ws://localhost:0/", "port is out of range"],
  ["ws://localhost:65536/", "port is out of range"],
  ["ws://localhost:99999999999999999999999/", "port is out of range"],
  ["ws://localhost:http/", "port isn't a valid integer"],
  ["ws://localhost:-1/", "port isn't a valid integer"],
  ["ws://localhost:+80/", "port isn't a valid integer"],
  ["ws://localhost:80:80/", "port isn't a valid integer"],
  ["ws://localhost: 80/", "port isn't a valid integer"],
  ["ws://user@localhost/", "username provided without password"],
  ["ws://@localhost/", "username provided without password"],
  ["ws://us%3Aer:pass@localhost/", "username contains a colon"],
  ["ws://user:%FF@localhost/", "user info isn't valid UTF-8"],
  ["ws://[::1/", "invalid IPv6 address"],
  ["ws://[::g]/", "invalid IPv6 address"],
  ["ws://[]/", "invalid IPv6 address"],
  ["ws://[127.0.0.1]/", "invalid IPv6 address"],
  ["ws://[fe80::1%25eth0]/", "invalid IPv6 address"],
  ["ws://[v1.fe]/", "invalid IPv6 address"],
  ["ws://[::1]x/", "invalid host"],
  ["ws://[::1]]/", "invalid host"],
  ["ws://local host/", "invalid host"],
  ["ws://local<host/", "invalid host"],
  ["ws://local\\host/", "invalid host"],
  ["ws://exa%6Dple.com/", "invalid host"],
  ["ws://::1/", "hostname isn't provided"],
  ["ws://a\u0001b/", "invalid host"],
  ["ws://ex ample.é/", "invalid internationalized domain name"],
  ["ws://localhost/\uD800", "URI contains an unpaired surrogate"],
  ["ws://\uDC00x/", "URI contains an unpaired surrogate"]
]

describe("Uri", () => {
  describe("parseUri", () => {
    it.each(VALID)("accepts %j", (uri, expected) => {
      expect(right(parseUri(uri))).toStrictEqual(expected)
    })

    it.each(INVALID)("rejects %j", (uri, detail) => {
      const error = left(parseUri(uri))
      expect(error).toBeInstanceOf(InvalidURI)
      expect(error._tag).toBe("InvalidURI")
      expect(error.uri).toBe(uri)
      expect(error.detail).toBe(detail)
      expect(error.message).toBe(`${uri} isn't a valid URI: ${detail}`)
    })

    it("never throws on random strings", () => {
      fc.assert(
        fc.property(fc.string({ unit: "binary", maxLength: 80 }), (s) => {
          expect(Either.isEither(parseUri(s))).toBe(true)
        }),
        { numRuns: 500 }
      )
    })

    it("never throws on random strings after a ws:// prefix, and yields a clean host and request target", () => {
      const unit = fc.oneof(
        fc.constantFrom(..."ws:/?#@[]%.:-_~ !$&'()*+,;=\\\"<>^`{|}\t\r\n\u0000aA09äé\u{1F600}\uD800"),
        fc.string({ unit: "binary", minLength: 1, maxLength: 1 })
      )
      fc.assert(
        fc.property(fc.constantFrom("ws://", "wss://", "WS://u:p@"), fc.string({ unit, maxLength: 40 }), (p, s) => {
          const result = parseUri(p + s)
          if (Either.isRight(result)) {
            const u = result.right
            // The resource name goes into the request line: printable ASCII only (RFC 7230 §3.1.1).
            expect(u.resourceName).toMatch(/^\/[\x21-\x7e]*$/)
            expect(u.host).toMatch(/^(?:[a-z0-9\-._~!$&'()*+,;=]+|[0-9a-f:.]+)$/)
            expect(u.port).toBeGreaterThanOrEqual(1)
            expect(u.port).toBeLessThanOrEqual(65535)
          } else {
            expect(result.left._tag).toBe("InvalidURI")
          }
        }),
        { numRuns: 1000 }
      )
    })

    it("is idempotent: parsing formatUri(u) with user info gives back u", () => {
      const url = fc.webUrl({
        authoritySettings: { withIPv4: true, withIPv6: true, withPort: true, withUserInfo: true },
        withQueryParameters: true
      })
      fc.assert(
        fc.property(url, fc.boolean(), (httpUrl, secure) => {
          const result = parseUri(httpUrl.replace(/^https?/, secure ? "wss" : "ws"))
          if (Either.isLeft(result)) return
          const u = result.right
          expect(right(parseUri(formatUri(u, { includeUserInfo: true })))).toStrictEqual(u)
          expect(right(parseUri(formatUri(u)))).toStrictEqual({ ...u, userInfo: undefined })
        }),
        { numRuns: 300 }
      )
    })

    it("decodes percent-encoded user info and keeps host and port", () => {
      const host = fc.oneof(
        fc.domain(),
        fc.ipV4(),
        fc.ipV6().map((a) => `[${a}]`)
      )
      const username = fc.string({ unit: "grapheme", maxLength: 10 }).filter((s) => !s.includes(":"))
      const password = fc.string({ unit: "grapheme", maxLength: 10 })
      fc.assert(
        fc.property(
          fc.boolean(),
          host,
          fc.integer({ min: 1, max: 65535 }),
          username,
          password,
          (s, h, p, user, pass) => {
            const u = right(
              parseUri(`${s ? "wss" : "ws"}://${encodeURIComponent(user)}:${encodeURIComponent(pass)}@${h}:${p}`)
            )
            expect(u).toStrictEqual(wsuri(s, h.replace(/^\[|\]$/g, "").toLowerCase(), p, "/", [user, pass]))
            expect(right(parseUri(formatUri(u, { includeUserInfo: true })))).toStrictEqual(u)
          }
        ),
        { numRuns: 300 }
      )
    })
  })

  describe("hostHeader", () => {
    const cases: ReadonlyArray<readonly [WebSocketURI, string]> = [
      [wsuri(false, "localhost", 80, "/"), "localhost"],
      [wsuri(false, "localhost", 8080, "/"), "localhost:8080"],
      [wsuri(false, "localhost", 443, "/"), "localhost:443"],
      [wsuri(true, "localhost", 443, "/"), "localhost"],
      [wsuri(true, "localhost", 80, "/"), "localhost:80"],
      [wsuri(false, "127.0.0.1", 80, "/"), "127.0.0.1"],
      [wsuri(false, "::1", 80, "/"), "[::1]"],
      [wsuri(true, "::1", 8443, "/"), "[::1]:8443"]
    ]
    it.each(cases)("builds Host for %j as %j", (u, expected) => {
      expect(hostHeader(u)).toBe(expected)
    })

    it("matches the URI authority after parsing", () => {
      expect(hostHeader(right(parseUri("ws://[::1]:8080/")))).toBe("[::1]:8080")
      expect(hostHeader(right(parseUri("wss://user:pass@Example.COM:443/x")))).toBe("example.com")
    })
  })

  describe("formatUri", () => {
    it("rebuilds ws and wss URIs without default ports", () => {
      expect(formatUri(right(parseUri("ws://localhost:80/path?q")))).toBe("ws://localhost/path?q")
      expect(formatUri(right(parseUri("wss://localhost:8443")))).toBe("wss://localhost:8443/")
      expect(formatUri(right(parseUri("ws://[::1]:8080/ä")))).toBe("ws://[::1]:8080/%C3%A4")
    })

    it("leaves user info out unless asked", () => {
      const u = right(parseUri("ws://us%40er:p%C3%A4ss@localhost/"))
      expect(formatUri(u)).toBe("ws://localhost/")
      expect(formatUri(u, { includeUserInfo: true })).toBe("ws://us%40er:p%C3%A4ss@localhost/")
      expect(formatUri(u, { includeUserInfo: false })).toBe("ws://localhost/")
    })
  })
})
