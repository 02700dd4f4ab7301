import { describe, expect, it } from "@effect/vitest"
import * as Either from "effect/Either"
import * as fc from "fast-check"
import { InvalidArgument, InvalidHeaderFormat, InvalidHeaderValue } from "../src/Errors.js"
import {
  buildAuthorizationBasic,
  buildExtension,
  buildQuotedString,
  buildSubprotocol,
  buildWwwAuthenticateBasic,
  type ExtensionHeader,
  isToken,
  parseAuthorizationBasic,
  parseConnection,
  parseExtension,
  parseQuotedString,
  parseSubprotocol,
  parseToken,
  parseUpgrade,
  validateSubprotocols
} from "../src/HeaderParsers.js"

const right = <A, E>(result: Either.Either<A, E>): A => {
  if (Either.isLeft(result)) throw new Error(`expected Right, got ${String(result.left)}`)
  return result.right
}

const left = <A, E>(result: Either.Either<A, E>): E => {
  if (Either.isRight(result)) throw new Error(`expected Left, got ${JSON.stringify(result.right)}`)
  return result.left
}

/** Checks an InvalidHeaderFormat field by field. */
const expectFormatError = (error: unknown, name: string, message: string, header: string, pos: number) => {
  expect(error).toBeInstanceOf(InvalidHeaderFormat)
  const e = error as InvalidHeaderFormat
  expect({ _tag: e._tag, name: e.name, error: e.error, header: e.header, pos: e.pos }).toStrictEqual({
    _tag: "InvalidHeaderFormat",
    name,
    error: message,
    header,
    pos
  })
}

const TCHARS = "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
const token = fc.string({ unit: fc.constantFrom(...TCHARS), minLength: 1, maxLength: 12 })

describe("HeaderParsers", () => {
  describe("parseConnection", () => {
    const valid: ReadonlyArray<readonly [string, ReadonlyArray<string>]> = [
      ["Upgrade", ["Upgrade"]],
      ["keep-alive, Upgrade", ["keep-alive", "Upgrade"]],
      ["keep-alive,Upgrade", ["keep-alive", "Upgrade"]],
      [",Upgrade", ["Upgrade"]],
      ["Upgrade,", ["Upgrade"]],
      [", ,\tUpgrade , ,close,,", ["Upgrade", "close"]]
    ]
    it.each(valid)("parses %j", (header, expected) => {
      expect(right(parseConnection(header))).toStrictEqual(expected)
    })

    const invalid: ReadonlyArray<readonly [string, string, number]> = [
      ["", "expected token", 0],
      [",", "expected token", 1],
      [", ,", "expected token", 3],
      ["???", "expected token", 0],
      ["Upgrade keep-alive", "expected comma", 8],
      ["Upgrade;", "expected comma", 7],
      ["Upgrade, ?", "expected token", 9]
    ]
    it.each(invalid)("rejects %j with %j at %i", (header, error, pos) => {
      expectFormatError(left(parseConnection(header)), "Connection", error, header, pos)
    })
  })

  describe("parseUpgrade", () => {
    const valid: ReadonlyArray<readonly [string, ReadonlyArray<string>]> = [
      ["websocket", ["websocket"]],
      ["WebSocket", ["WebSocket"]],
      ["h2c/1.0", ["h2c/1.0"]],
      ["HTTP/2.0, SHTTP/1.3, IRC/6.9, RTA/x11", ["HTTP/2.0", "SHTTP/1.3", "IRC/6.9", "RTA/x11"]],
      [",websocket,,", ["websocket"]]
    ]
    it.each(valid)("parses %j", (header, expected) => {
      expect(right(parseUpgrade(header))).toStrictEqual(expected)
    })

    const invalid: ReadonlyArray<readonly [string, string, number]> = [
      ["", "expected protocol", 0],
      ["/1.0", "expected protocol", 0],
      ["websocket/", "expected comma", 9],
      ["h2c/1.0/x", "expected comma", 7],
      ["websocket websocket", "expected comma", 10],
      [",", "expected protocol", 1]
    ]
    it.each(invalid)("rejects %j with %j at %i", (header, error, pos) => {
      expectFormatError(left(parseUpgrade(header)), "Upgrade", error, header, pos)
    })
  })

  describe("parseExtension", () => {
    const valid: ReadonlyArray<readonly [string, ReadonlyArray<ExtensionHeader>]> = [
      ["foo", [["foo", []]]],
      [
        "foo, bar",
        [
          ["foo", []],
          ["bar", []]
        ]
      ],
      [
        'foo; name; token=token; quoted-string="quoted-string", bar; quux; quuux',
        [
          [
            "foo",
            [
              ["name", null],
              ["token", "token"],
              ["quoted-string", "quoted-string"]
            ]
          ],
          [
            "bar",
            [
              ["quux", null],
              ["quuux", null]
            ]
          ]
        ]
      ],
      // Pathological but valid: empty elements and optional whitespace everywhere.
      [
        ",\t, ,  ,foo  ;bar = 42,,   baz,,",
        [
          ["foo", [["bar", "42"]]],
          ["baz", []]
        ]
      ],
      ['foo; bar="b\\az"', [["foo", [["bar", "baz"]]]]],
      ["permessage-deflate", [["permessage-deflate", []]]],
      ["permessage-deflate; client_max_window_bits", [["permessage-deflate", [["client_max_window_bits", null]]]]],
      ["permessage-deflate; server_max_window_bits=10", [["permessage-deflate", [["server_max_window_bits", "10"]]]]],
      [
        'permessage-deflate; client_max_window_bits="15", permessage-deflate',
        [
          ["permessage-deflate", [["client_max_window_bits", "15"]]],
          ["permessage-deflate", []]
        ]
      ]
    ]
    it.each(valid)("parses %j", (header, expected) => {
      expect(right(parseExtension(header))).toStrictEqual(expected)
    })

    const invalid: ReadonlyArray<readonly [string, string, number]> = [
      ["", "expected token", 0],
      [",\t,", "expected token", 3],
      ["foo;", "expected token", 4],
      ["foo; bar;", "expected token", 9],
      ["foo; bar=", "expected token", 9],
      ["foo; =bar", "expected token", 5],
      ['foo; bar="baz', "expected quoted string", 9],
      ['foo; bar="b\\', "expected quoted string", 9],
      ['foo; bar=""', "invalid quoted header content", 9],
      ['foo; bar=" "', "invalid quoted header content", 9],
      ['foo; bar="a,b"', "invalid quoted header content", 9],
      ["foo, bar, baz=quux; quuux", "expected comma", 13],
      ['foo; bar="baz"x', "expected comma", 14],
      ["foo bar", "expected comma", 4],
      ["foo; bar baz", "expected comma", 9]
    ]
    it.each(invalid)("rejects %j with %j at %i", (header, error, pos) => {
      expectFormatError(left(parseExtension(header)), "Sec-WebSocket-Extensions", error, header, pos)
    })
  })

  describe("buildExtension", () => {
    it("joins extensions with commas and parameters with semicolons", () => {
      expect(
        buildExtension([
          ["permessage-deflate", [["client_max_window_bits", null]]],
          [
            "x-webkit-deflate-frame",
            [
              ["a", "1"],
              ["b", null]
            ]
          ],
          ["foo", []]
        ])
      ).toBe("permessage-deflate; client_max_window_bits, x-webkit-deflate-frame; a=1; b, foo")
      expect(buildExtension([])).toBe("")
    })

    it("is the reverse of parseExtension for random tokens", () => {
      const parameter = fc.tuple(token, fc.option(token, { nil: null }))
      const extension = fc.tuple(token, fc.array(parameter, { maxLength: 4 }))
      fc.assert(
        fc.property(fc.array(extension, { minLength: 1, maxLength: 4 }), (extensions) => {
          expect(right(parseExtension(buildExtension(extensions)))).toStrictEqual(extensions)
        }),
        { numRuns: 300 }
      )
    })
  })

  describe("parseSubprotocol and buildSubprotocol", () => {
    const valid: ReadonlyArray<readonly [string, ReadonlyArray<string>]> = [
      ["foo", ["foo"]],
      ["foo, bar", ["foo", "bar"]],
      ["foo,bar", ["foo", "bar"]],
      [",\t, ,  ,foo  ,,   bar,,", ["foo", "bar"]],
      ["chat.v2, mqtt", ["chat.v2", "mqtt"]]
    ]
    it.each(valid)("parses %j", (header, expected) => {
      expect(right(parseSubprotocol(header))).toStrictEqual(expected)
    })

    const invalid: ReadonlyArray<readonly [string, string, number]> = [
      ["", "expected token", 0],
      [",\t,", "expected token", 3],
      ["foo bar", "expected comma", 4],
      ["foo; bar", "expected comma", 3],
      ['"foo"', "expected token", 0],
      ["foo/1", "expected comma", 3]
    ]
    it.each(invalid)("rejects %j with %j at %i", (header, error, pos) => {
      expectFormatError(left(parseSubprotocol(header)), "Sec-WebSocket-Protocol", error, header, pos)
    })

    it("builds a comma-separated list", () => {
      expect(buildSubprotocol(["chat", "superchat"])).toBe("chat, superchat")
      expect(buildSubprotocol(["chat"])).toBe("chat")
    })

    it("buildSubprotocol then parseSubprotocol is the identity for random tokens", () => {
      fc.assert(
        fc.property(fc.array(token, { minLength: 1, maxLength: 6 }), (subprotocols) => {
          expect(right(parseSubprotocol(buildSubprotocol(subprotocols)))).toStrictEqual(subprotocols)
        }),
        { numRuns: 300 }
      )
    })
  })

  describe("validateSubprotocols", () => {
    it("accepts lists of tokens", () => {
      expect(Either.isRight(validateSubprotocols([]))).toBe(true)
      expect(Either.isRight(validateSubprotocols(["chat", "superchat", "v2.bin+json"]))).toBe(true)
    })

    it.each([["foo bar"], [""], ["chat,json"], ["ä"], ['"chat"']])("rejects %j", (subprotocol) => {
      const error = left(validateSubprotocols(["chat", subprotocol]))
      expect(error).toBeInstanceOf(InvalidArgument)
      expect(error._tag).toBe("InvalidArgument")
      expect(error.detail).toBe(`invalid subprotocol: ${subprotocol}`)
    })
  })

  describe("tokens and quoted-strings", () => {
    it("isToken matches RFC 7230 tchar", () => {
      expect(isToken(TCHARS)).toBe(true)
      for (const s of ["", " ", "a b", "a,b", "a;b", "a=b", 'a"', "(", ")", "/", ":", "<", ">", "?", "@", "[", "\\"]) {
        expect(isToken(s)).toBe(false)
      }
      for (const s of ["]", "{", "}", "\u007f", "\u0080", "é", "a\n"]) expect(isToken(s)).toBe(false)
    })

    it("parseToken returns the token and the position after it", () => {
      expect(right(parseToken("foo bar", 0, "X"))).toStrictEqual(["foo", 3])
      expect(right(parseToken("foo bar", 4, "X"))).toStrictEqual(["bar", 7])
      expectFormatError(left(parseToken("foo bar", 3, "X")), "X", "expected token", "foo bar", 3)
      expectFormatError(left(parseToken("foo", 3, "X")), "X", "expected token", "foo", 3)
    })

    it("parseQuotedString unescapes quoted-pairs", () => {
      expect(right(parseQuotedString('x="a\\"b\\\\c"', 2, "X"))).toStrictEqual(['a"b\\c', 11])
      expect(right(parseQuotedString('""', 0, "X"))).toStrictEqual(["", 2])
      expect(right(parseQuotedString('"\\\u00e9"', 0, "X"))).toStrictEqual(["\u00e9", 4])
      // RFC 7230 §3.2.6: qdtext includes obs-text (Python refuses it).
      expect(right(parseQuotedString('"\u00e9"', 0, "X"))).toStrictEqual(["\u00e9", 3])
      expectFormatError(left(parseQuotedString('"\u0100"', 0, "X")), "X", "expected quoted string", '"\u0100"', 0)
      expectFormatError(left(parseQuotedString('"a\nb"', 0, "X")), "X", "expected quoted string", '"a\nb"', 0)
      expectFormatError(left(parseQuotedString("a", 0, "X")), "X", "expected quoted string", "a", 0)
    })

    it("buildQuotedString escapes quotes and backslashes", () => {
      expect(buildQuotedString("")).toBe('""')
      expect(buildQuotedString('a"b\\c')).toBe('"a\\"b\\\\c"')
      expect(() => buildQuotedString("a\nb")).toThrow("invalid characters for quoted-string encoding")
      expect(() => buildQuotedString("\u0100")).toThrow("invalid characters for quoted-string encoding")
    })

    it("buildQuotedString then parseQuotedString is the identity", () => {
      const quotable = fc.string({
        unit: fc.oneof(
          fc.constantFrom('"', "\\", "\t", " "),
          fc.integer({ min: 0x21, max: 0x7e }).map((c) => String.fromCharCode(c)),
          fc.integer({ min: 0x80, max: 0xff }).map((c) => String.fromCharCode(c))
        ),
        maxLength: 20
      })
      fc.assert(
        fc.property(quotable, (s) => {
          const quoted = buildQuotedString(s)
          expect(right(parseQuotedString(quoted, 0, "X"))).toStrictEqual([s, quoted.length])
        }),
        { numRuns: 300 }
      )
    })
  })

  describe("HTTP Basic Auth", () => {
    it("builds WWW-Authenticate challenges", () => {
      expect(buildWwwAuthenticateBasic("Foo")).toBe('Basic realm="Foo", charset="UTF-8"')
      expect(buildWwwAuthenticateBasic('My "realm" \\')).toBe('Basic realm="My \\"realm\\" \\\\", charset="UTF-8"')
      expect(() => buildWwwAuthenticateBasic("a\r\nSet-Cookie: x")).toThrow(TypeError)
    })

    it("builds Authorization headers", () => {
      expect(buildAuthorizationBasic("Aladdin", "open sesame")).toBe("Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==")
      expect(buildAuthorizationBasic("", "")).toBe("Basic Og==")
      expect(buildAuthorizationBasic("test", "123\u00a3")).toBe("Basic dGVzdDoxMjPCow==")
      expect(() => buildAuthorizationBasic("a:b", "c")).toThrow(TypeError)
    })

    const valid: ReadonlyArray<readonly [string, readonly [string, string]]> = [
      ["Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==", ["Aladdin", "open sesame"]],
      ["basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==", ["Aladdin", "open sesame"]],
      ["BASIC QWxhZGRpbjpvcGVuIHNlc2FtZQ==", ["Aladdin", "open sesame"]],
      ["Basic dGVzdDoxMjPCow==", ["test", "123\u00a3"]],
      ["Basic dXNlcjo=", ["user", ""]],
      ["Basic OnBhc3M=", ["", "pass"]],
      ["Basic dTpwOnc6", ["u", "p:w:"]],
      ["Basic Og==", ["", ""]]
    ]
    it.each(valid)("parses %j", (header, expected) => {
      expect(right(parseAuthorizationBasic(header))).toStrictEqual(expected)
    })

    const invalidFormat: ReadonlyArray<readonly [string, string, number]> = [
      ["", "expected token", 0],
      [" Basic", "expected token", 0],
      ["Basic", "expected space after scheme", 5],
      ["Basic\tdXNlcjo=", "expected space after scheme", 5],
      ["Basic ", "expected token68", 6],
      ["Basic  dXNlcjo=", "expected token68", 6],
      ["Basic ???", "expected token68", 6],
      ["Basic =", "expected token68", 6],
      ["Basic dXNlcjo= ", "trailing data", 14],
      ["Basic dXNlcjo=x", "trailing data", 14],
      ["Basic dXNlcjo= dXNlcjo=", "trailing data", 14]
    ]
    it.each(invalidFormat)("rejects %j with %j at %i", (header, error, pos) => {
      expectFormatError(left(parseAuthorizationBasic(header)), "Authorization", error, header, pos)
    })

    const invalidValue: ReadonlyArray<readonly [string, string]> = [
      ["Digest username=x", "unsupported scheme: Digest"],
      ["Bearer abc.def", "unsupported scheme: Bearer"],
      ["Basicx dXNlcjo=", "unsupported scheme: Basicx"],
      ["Basic dXNlcjo", "expected base64-encoded credentials"],
      ["Basic dXNlcjo===", "expected base64-encoded credentials"],
      ["Basic dXN-lcjo=", "expected base64-encoded credentials"],
      ["Basic dXNl_cjo=", "expected base64-encoded credentials"],
      ["Basic dXNlcjp=", "expected base64-encoded credentials"],
      ["Basic YR==", "expected base64-encoded credentials"],
      ["Basic /w==", "expected UTF-8-encoded credentials"],
      ["Basic dXNlcg==", "expected username:password credentials"],
      ["Basic YQ==", "expected username:password credentials"]
    ]
    it.each(invalidValue)("rejects %j as %j", (header, value) => {
      const error = left(parseAuthorizationBasic(header))
      expect(error).toBeInstanceOf(InvalidHeaderValue)
      expect({ _tag: error._tag, name: error.name, value: error.value }).toStrictEqual({
        _tag: "InvalidHeaderValue",
        name: "Authorization",
        value
      })
    })

    it("parseAuthorizationBasic is the reverse of buildAuthorizationBasic", () => {
      const username = fc.string({ unit: "grapheme", maxLength: 16 }).filter((s) => !s.includes(":"))
      fc.assert(
        fc.property(username, fc.string({ unit: "grapheme", maxLength: 16 }), (user, pass) => {
          expect(right(parseAuthorizationBasic(buildAuthorizationBasic(user, pass)))).toStrictEqual([user, pass])
        }),
        { numRuns: 300 }
      )
    })
  })

  describe("every parser on random input", () => {
    const parsers: ReadonlyArray<readonly [string, (header: string) => Either.Either<unknown, unknown>]> = [
      ["parseConnection", parseConnection],
      ["parseUpgrade", parseUpgrade],
      ["parseExtension", parseExtension],
      ["parseSubprotocol", parseSubprotocol],
      ["parseAuthorizationBasic", parseAuthorizationBasic]
    ]
    // Biased towards the characters of the grammars, so that deep paths are reached.
    const headerChars = fc.string({
      unit: fc.oneof(
        fc.constantFrom(...' \t,;="\\/:abcXYZ019-_.~+Basic'),
        fc.string({ unit: "binary", minLength: 1, maxLength: 1 })
      ),
      maxLength: 40
    })

    it.each(parsers)("%s returns an Either and never throws", (_, parse) => {
      fc.assert(
        fc.property(fc.oneof(fc.string({ unit: "binary", maxLength: 40 }), headerChars), (header) => {
          const result = parse(header)
          expect(Either.isEither(result)).toBe(true)
          if (Either.isLeft(result)) {
            const error = result.left
            if (error instanceof InvalidHeaderFormat) {
              expect(error.header).toBe(header)
              expect(error.pos).toBeGreaterThanOrEqual(0)
              expect(error.pos).toBeLessThanOrEqual(header.length)
            } else {
              expect(error).toBeInstanceOf(InvalidHeaderValue)
            }
          }
        }),
        { numRuns: 500 }
      )
    })
  })
})
