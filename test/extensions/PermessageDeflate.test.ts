import { Buffer } from "node:buffer"
import { createRequire } from "node:module"
import * as zlib from "node:zlib"
import { describe, expect, it } from "@effect/vitest"
import * as Either from "effect/Either"
import * as fc from "fast-check"
import { InvalidArgument, ProtocolError } from "../../src/Errors.js"
import type { Extension } from "../../src/extensions/Extension.js"
import {
  ClientPerMessageDeflateFactory,
  type ClientPerMessageDeflateOptions,
  DEFAULT_MIN_SIZE,
  enableClientPermessageDeflate,
  enableServerPermessageDeflate,
  PerMessageDeflate,
  ServerPerMessageDeflateFactory,
  type ServerPerMessageDeflateOptions
} from "../../src/extensions/PermessageDeflate.js"
import { Frame, Opcode } from "../../src/Frames.js"
import type { ExtensionParameter } from "../../src/HeaderParsers.js"

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

const hex = (data: Uint8Array): string => Buffer.from(data.buffer, data.byteOffset, data.byteLength).toString("hex")
const fromHex = (text: string): Uint8Array => new Uint8Array(Buffer.from(text.replace(/\s+/g, ""), "hex"))
const utf8 = (text: string): Uint8Array => new TextEncoder().encode(text)

/** Byte-exact comparison; vitest's deep equality is far too slow on megabytes. */
const expectBytes = (actual: Uint8Array, expected: Uint8Array): void => {
  const same = actual.byteLength === expected.byteLength && Buffer.from(actual).equals(Buffer.from(expected))
  if (!same && actual.byteLength + expected.byteLength < 2000) expect(hex(actual)).toBe(hex(expected))
  expect({ length: actual.byteLength, same }).toStrictEqual({ length: expected.byteLength, same: true })
}

const right = <A, E>(result: Either.Either<A, E>): A => {
  if (Either.isLeft(result)) throw new Error(`expected Right, got ${String(result.left)}`)
  return result.right
}

const leftTag = <A, E extends { readonly _tag: string }>(result: Either.Either<A, E>): string => {
  if (Either.isRight(result)) throw new Error("expected Left, got Right")
  return result.left._tag
}

/** Per-connection configuration, for comparing with expectations. */
const config = (ext: Extension) => {
  const pmd = ext as PerMessageDeflate
  return [pmd.remoteNoContextTakeover, pmd.localNoContextTakeover, pmd.remoteMaxWindowBits, pmd.localMaxWindowBits]
}

/** Both ends of a connection, negotiated through the factories. */
const negotiate = (
  clientOptions: ClientPerMessageDeflateOptions = {},
  serverOptions: ServerPerMessageDeflateOptions = {}
): { client: PerMessageDeflate; server: PerMessageDeflate; response: ReadonlyArray<ExtensionParameter> } => {
  const clientFactory = new ClientPerMessageDeflateFactory(clientOptions)
  const [response, server] = right(
    new ServerPerMessageDeflateFactory(serverOptions).processRequestParams(clientFactory.getRequestParams(), [])
  )
  const client = right(clientFactory.processResponseParams(response, []))
  return { client: client as PerMessageDeflate, server: server as PerMessageDeflate, response }
}

const text = (data: Uint8Array | string, fin = true, rsv1 = false) =>
  new Frame(Opcode.Text, typeof data === "string" ? utf8(data) : data, fin, rsv1)
const cont = (data: Uint8Array | string, fin = true, rsv1 = false) =>
  new Frame(Opcode.Continuation, typeof data === "string" ? utf8(data) : data, fin, rsv1)

/** Encodes one message split at `cuts`, returns the frames as sent. */
const send = (ext: PerMessageDeflate, data: Uint8Array, cuts: ReadonlyArray<number> = []): Array<Frame> => {
  const bounds = [0, ...[...new Set(cuts.map((c) => c % (data.byteLength + 1)))].sort((a, b) => a - b), data.byteLength]
  const frames: Array<Frame> = []
  for (let i = 0; i + 1 < bounds.length; i++) {
    const chunk = data.subarray(bounds[i]!, bounds[i + 1]!)
    const last = i + 2 === bounds.length
    frames.push(ext.encode(new Frame(i === 0 ? Opcode.Binary : Opcode.Continuation, chunk, last)))
  }
  return frames
}

/** Decodes the frames of one message, returns the payload. */
const receive = (ext: PerMessageDeflate, frames: ReadonlyArray<Frame>, maxSize: number | null = null): Uint8Array => {
  const parts = frames.map((frame) => {
    const decoded = right(ext.decode(frame, maxSize))
    expect(decoded.rsv1).toBe(false)
    return decoded.data
  })
  return new Uint8Array(Buffer.concat(parts))
}

/** Deterministic compressible bytes: words from a small vocabulary. */
const wordsData = (seed: number, size: number): Uint8Array => {
  const words = ["alpha", "beta", "gamma", "delta", '{"id":', '"name":', "true", "null", " ", ",", "\n"]
  let state = seed >>> 0 || 1
  const parts: Array<string> = []
  let length = 0
  while (length < size) {
    state = (state * 1103515245 + 12345) >>> 0
    const word = words[state % words.length]!
    parts.push(word)
    length += word.length
  }
  return utf8(parts.join("")).subarray(0, size)
}

/** RFC 7692 §7.2.1 done with zlib directly: the sync-flushed stream without its last 4 bytes. */
const rawDeflate = (data: Uint8Array, windowBits = 15): Uint8Array => {
  const out = zlib.deflateRawSync(data, { windowBits, finishFlush: zlib.constants.Z_SYNC_FLUSH })
  return new Uint8Array(out.subarray(0, out.byteLength - 4))
}

// ---------------------------------------------------------------------------
// Negotiation, client side
// ---------------------------------------------------------------------------

describe("ClientPerMessageDeflateFactory", () => {
  const requests: ReadonlyArray<readonly [string, ClientPerMessageDeflateOptions, ReadonlyArray<ExtensionParameter>]> =
    [
      ["defaults (seed: client_max_window_bits=None, not offered)", {}, []],
      ["client_max_window_bits true (bare)", { clientMaxWindowBits: true }, [["client_max_window_bits", null]]],
      ["no client_max_window_bits", { clientMaxWindowBits: null }, []],
      ["client_max_window_bits false", { clientMaxWindowBits: false }, []],
      ["client_max_window_bits=10", { clientMaxWindowBits: 10 }, [["client_max_window_bits", "10"]]],
      [
        "every parameter",
        {
          serverNoContextTakeover: true,
          clientNoContextTakeover: true,
          serverMaxWindowBits: 9,
          clientMaxWindowBits: 8
        },
        [
          ["server_no_context_takeover", null],
          ["client_no_context_takeover", null],
          ["server_max_window_bits", "9"],
          ["client_max_window_bits", "8"]
        ]
      ]
    ]
  for (const [name, options, expected] of requests) {
    it(`client offers ${name}`, () => {
      expect(new ClientPerMessageDeflateFactory(options).getRequestParams()).toStrictEqual(expected)
    })
  }

  // [case, configuration, response parameters, [remoteNoCT, localNoCT, remoteBits, localBits] or error tag]
  const responses: ReadonlyArray<
    readonly [
      string,
      ClientPerMessageDeflateOptions,
      ReadonlyArray<ExtensionParameter>,
      ReadonlyArray<unknown> | string
    ]
  > = [
    ["no parameters", {}, [], [false, false, 15, 15]],
    ["server_no_context_takeover granted unasked", {}, [["server_no_context_takeover", null]], [true, false, 15, 15]],
    [
      "server_no_context_takeover asked and granted",
      { serverNoContextTakeover: true },
      [["server_no_context_takeover", null]],
      [true, false, 15, 15]
    ],
    ["server_no_context_takeover asked, not granted", { serverNoContextTakeover: true }, [], "NegotiationError"],
    ["client_no_context_takeover imposed", {}, [["client_no_context_takeover", null]], [false, true, 15, 15]],
    ["client_no_context_takeover asked, omitted", { clientNoContextTakeover: true }, [], [false, true, 15, 15]],
    ["server_max_window_bits imposed", {}, [["server_max_window_bits", "10"]], [false, false, 10, 15]],
    ["server_max_window_bits=8 imposed", {}, [["server_max_window_bits", "8"]], [false, false, 8, 15]],
    ["server_max_window_bits asked, omitted", { serverMaxWindowBits: 12 }, [], "NegotiationError"],
    [
      "server_max_window_bits asked, lower",
      { serverMaxWindowBits: 12 },
      [["server_max_window_bits", "10"]],
      [false, false, 10, 15]
    ],
    [
      "server_max_window_bits asked, equal",
      { serverMaxWindowBits: 12 },
      [["server_max_window_bits", "12"]],
      [false, false, 12, 15]
    ],
    [
      "server_max_window_bits asked, higher",
      { serverMaxWindowBits: 12 },
      [["server_max_window_bits", "13"]],
      "NegotiationError"
    ],
    [
      "client_max_window_bits not offered, imposed",
      { clientMaxWindowBits: null },
      [["client_max_window_bits", "10"]],
      "NegotiationError"
    ],
    ["bare client_max_window_bits, omitted", { clientMaxWindowBits: true }, [], [false, false, 15, 15]],
    [
      "bare client_max_window_bits, 10",
      { clientMaxWindowBits: true },
      [["client_max_window_bits", "10"]],
      [false, false, 15, 10]
    ],
    [
      "bare client_max_window_bits, 8",
      { clientMaxWindowBits: true },
      [["client_max_window_bits", "8"]],
      [false, false, 15, 8]
    ],
    [
      "client_max_window_bits by default (seed: None), imposed",
      {},
      [["client_max_window_bits", "10"]],
      "NegotiationError"
    ],
    ["client_max_window_bits=12, omitted", { clientMaxWindowBits: 12 }, [], [false, false, 15, 12]],
    [
      "client_max_window_bits=12, lower",
      { clientMaxWindowBits: 12 },
      [["client_max_window_bits", "9"]],
      [false, false, 15, 9]
    ],
    [
      "client_max_window_bits=12, higher",
      { clientMaxWindowBits: 12 },
      [["client_max_window_bits", "13"]],
      "NegotiationError"
    ],
    [
      "every parameter",
      { clientMaxWindowBits: true },
      [
        ["server_no_context_takeover", null],
        ["client_no_context_takeover", null],
        ["server_max_window_bits", "10"],
        ["client_max_window_bits", "11"]
      ],
      [true, true, 10, 11]
    ],
    ["client_max_window_bits without value", {}, [["client_max_window_bits", null]], "InvalidParameterValue"],
    ["server_max_window_bits without value", {}, [["server_max_window_bits", null]], "InvalidParameterValue"],
    ["server_max_window_bits=7", {}, [["server_max_window_bits", "7"]], "InvalidParameterValue"],
    ["server_max_window_bits=16", {}, [["server_max_window_bits", "16"]], "InvalidParameterValue"],
    ["server_max_window_bits=08", {}, [["server_max_window_bits", "08"]], "InvalidParameterValue"],
    ["client_max_window_bits=abc", {}, [["client_max_window_bits", "abc"]], "InvalidParameterValue"],
    ["server_no_context_takeover with a value", {}, [["server_no_context_takeover", "1"]], "InvalidParameterValue"],
    ["client_no_context_takeover with a value", {}, [["client_no_context_takeover", ""]], "InvalidParameterValue"],
    [
      "duplicate server_no_context_takeover",
      {},
      [
        ["server_no_context_takeover", null],
        ["server_no_context_takeover", null]
      ],
      "DuplicateParameter"
    ],
    [
      "duplicate client_no_context_takeover",
      {},
      [
        ["client_no_context_takeover", null],
        ["client_no_context_takeover", null]
      ],
      "DuplicateParameter"
    ],
    [
      "duplicate server_max_window_bits",
      {},
      [
        ["server_max_window_bits", "9"],
        ["server_max_window_bits", "9"]
      ],
      "DuplicateParameter"
    ],
    [
      "duplicate client_max_window_bits",
      {},
      [
        ["client_max_window_bits", "9"],
        ["client_max_window_bits", "10"]
      ],
      "DuplicateParameter"
    ],
    ["unknown parameter", {}, [["mem_level", "5"]], "InvalidParameterName"]
  ]
  for (const [name, options, params, expected] of responses) {
    it(`client receives ${name}`, () => {
      const result = new ClientPerMessageDeflateFactory(options).processResponseParams(params, [])
      if (typeof expected === "string") expect(leftTag(result)).toBe(expected)
      else expect(config(right(result))).toStrictEqual(expected)
    })
  }

  it("client rejects a second permessage-deflate", () => {
    const factory = new ClientPerMessageDeflateFactory()
    const first = right(factory.processResponseParams([], []))
    const second = factory.processResponseParams([], [first])
    expect(Either.isLeft(second) && second.left).toMatchObject({
      _tag: "NegotiationError",
      detail: "received duplicate permessage-deflate"
    })
  })

  it("client factory rejects invalid configurations", () => {
    expect(() => new ClientPerMessageDeflateFactory({ serverMaxWindowBits: 7 })).toThrow(InvalidArgument)
    expect(() => new ClientPerMessageDeflateFactory({ clientMaxWindowBits: 16 })).toThrow(InvalidArgument)
    expect(() => new ClientPerMessageDeflateFactory({ clientMaxWindowBits: 12.5 })).toThrow(InvalidArgument)
    expect(() => new ClientPerMessageDeflateFactory({ compressSettings: { memLevel: 10 } })).toThrow(InvalidArgument)
    expect(() => new ClientPerMessageDeflateFactory({ compressSettings: { level: 10 } })).toThrow(InvalidArgument)
    expect(
      () => new ClientPerMessageDeflateFactory({ compressSettings: { windowBits: 9 } as unknown as { level: number } })
    ).toThrow(InvalidArgument)
  })
})

// ---------------------------------------------------------------------------
// Negotiation, server side
// ---------------------------------------------------------------------------

describe("ServerPerMessageDeflateFactory", () => {
  // [case, configuration, offer, response or error tag, [remoteNoCT, localNoCT, remoteBits, localBits]]
  const offers: ReadonlyArray<
    readonly [
      string,
      ServerPerMessageDeflateOptions,
      ReadonlyArray<ExtensionParameter>,
      ReadonlyArray<ExtensionParameter> | string,
      ReadonlyArray<unknown>?
    ]
  > = [
    ["empty offer", {}, [], [], [false, false, 15, 15]],
    [
      "server_no_context_takeover asked",
      {},
      [["server_no_context_takeover", null]],
      [["server_no_context_takeover", null]],
      [false, true, 15, 15]
    ],
    [
      "server_no_context_takeover configured",
      { serverNoContextTakeover: true },
      [],
      [["server_no_context_takeover", null]],
      [false, true, 15, 15]
    ],
    [
      "client_no_context_takeover offered",
      {},
      [["client_no_context_takeover", null]],
      [["client_no_context_takeover", null]],
      [true, false, 15, 15]
    ],
    [
      "client_no_context_takeover configured",
      { clientNoContextTakeover: true },
      [],
      [["client_no_context_takeover", null]],
      [true, false, 15, 15]
    ],
    [
      "server_max_window_bits asked",
      {},
      [["server_max_window_bits", "10"]],
      [["server_max_window_bits", "10"]],
      [false, false, 15, 10]
    ],
    [
      "server_max_window_bits=8 asked",
      {},
      [["server_max_window_bits", "8"]],
      [["server_max_window_bits", "8"]],
      [false, false, 15, 8]
    ],
    [
      "server_max_window_bits configured, not asked",
      { serverMaxWindowBits: 12 },
      [],
      [["server_max_window_bits", "12"]],
      [false, false, 15, 12]
    ],
    [
      "server_max_window_bits configured, asked lower",
      { serverMaxWindowBits: 12 },
      [["server_max_window_bits", "10"]],
      [["server_max_window_bits", "10"]],
      [false, false, 15, 10]
    ],
    [
      "server_max_window_bits configured, asked higher",
      { serverMaxWindowBits: 12 },
      [["server_max_window_bits", "14"]],
      [["server_max_window_bits", "12"]],
      [false, false, 15, 12]
    ],
    ["bare client_max_window_bits, not configured", {}, [["client_max_window_bits", null]], [], [false, false, 15, 15]],
    [
      "client_max_window_bits=10, not configured",
      {},
      [["client_max_window_bits", "10"]],
      [["client_max_window_bits", "10"]],
      [false, false, 10, 15]
    ],
    ["client_max_window_bits configured, not offered", { clientMaxWindowBits: 12 }, [], [], [false, false, 15, 15]],
    [
      "client_max_window_bits required, not offered",
      { clientMaxWindowBits: 12, requireClientMaxWindowBits: true },
      [],
      "NegotiationError"
    ],
    [
      "client_max_window_bits configured, bare offer",
      { clientMaxWindowBits: 12 },
      [["client_max_window_bits", null]],
      [["client_max_window_bits", "12"]],
      [false, false, 12, 15]
    ],
    [
      "client_max_window_bits configured, offered lower",
      { clientMaxWindowBits: 12 },
      [["client_max_window_bits", "10"]],
      [["client_max_window_bits", "10"]],
      [false, false, 10, 15]
    ],
    [
      "client_max_window_bits configured, offered higher",
      { clientMaxWindowBits: 12 },
      [["client_max_window_bits", "14"]],
      [["client_max_window_bits", "12"]],
      [false, false, 12, 15]
    ],
    [
      "a browser offer with the default configuration",
      { serverMaxWindowBits: 12, clientMaxWindowBits: 12 },
      [["client_max_window_bits", null]],
      [
        ["server_max_window_bits", "12"],
        ["client_max_window_bits", "12"]
      ],
      [false, false, 12, 12]
    ],
    [
      "every parameter",
      { serverNoContextTakeover: true, clientNoContextTakeover: true, serverMaxWindowBits: 9, clientMaxWindowBits: 9 },
      [
        ["server_max_window_bits", "11"],
        ["client_max_window_bits", "10"]
      ],
      [
        ["server_no_context_takeover", null],
        ["client_no_context_takeover", null],
        ["server_max_window_bits", "9"],
        ["client_max_window_bits", "9"]
      ],
      [true, true, 9, 9]
    ],
    ["server_max_window_bits without value", {}, [["server_max_window_bits", null]], "InvalidParameterValue"],
    ["server_max_window_bits=16", {}, [["server_max_window_bits", "16"]], "InvalidParameterValue"],
    ["client_max_window_bits=7", {}, [["client_max_window_bits", "7"]], "InvalidParameterValue"],
    ["client_max_window_bits=+9", {}, [["client_max_window_bits", "+9"]], "InvalidParameterValue"],
    ["client_no_context_takeover with a value", {}, [["client_no_context_takeover", "x"]], "InvalidParameterValue"],
    [
      "duplicate client_max_window_bits",
      {},
      [
        ["client_max_window_bits", null],
        ["client_max_window_bits", "10"]
      ],
      "DuplicateParameter"
    ],
    [
      "duplicate server_no_context_takeover",
      {},
      [
        ["server_no_context_takeover", null],
        ["server_no_context_takeover", null]
      ],
      "DuplicateParameter"
    ],
    ["unknown parameter", {}, [["x-webkit", null]], "InvalidParameterName"]
  ]
  for (const [name, options, params, expected, expectedConfig] of offers) {
    it(`server receives ${name}`, () => {
      const result = new ServerPerMessageDeflateFactory(options).processRequestParams(params, [])
      if (typeof expected === "string") {
        expect(leftTag(result)).toBe(expected)
        return
      }
      const [response, extension] = right(result)
      expect(response).toStrictEqual(expected)
      expect(config(extension)).toStrictEqual(expectedConfig)
    })
  }

  it("server skips a second permessage-deflate offer", () => {
    const factory = new ServerPerMessageDeflateFactory()
    const [, first] = right(factory.processRequestParams([], []))
    const second = factory.processRequestParams([], [first])
    expect(Either.isLeft(second) && second.left).toMatchObject({
      _tag: "NegotiationError",
      detail: "skipped duplicate permessage-deflate"
    })
  })

  it("server factory rejects invalid configurations", () => {
    expect(() => new ServerPerMessageDeflateFactory({ serverMaxWindowBits: 16 })).toThrow(InvalidArgument)
    expect(() => new ServerPerMessageDeflateFactory({ clientMaxWindowBits: 7 })).toThrow(InvalidArgument)
    expect(() => new ServerPerMessageDeflateFactory({ requireClientMaxWindowBits: true })).toThrow(InvalidArgument)
    expect(() => new ServerPerMessageDeflateFactory({ compressSettings: { strategy: 5 } })).toThrow(InvalidArgument)
    expect(() => new ServerPerMessageDeflateFactory({ minSize: -1 }).processRequestParams([], [])).toThrow(
      InvalidArgument
    )
  })

  it("the factories' responses and offers agree for every combination", () => {
    const bits = [null, 8, 12, 15] as const
    for (const snct of [false, true])
      for (const cnct of [false, true])
        for (const smwb of bits)
          for (const cmwb of [...bits, true] as const) {
            const client = new ClientPerMessageDeflateFactory({
              serverNoContextTakeover: snct,
              clientNoContextTakeover: cnct,
              serverMaxWindowBits: smwb,
              clientMaxWindowBits: cmwb
            })
            for (const serverOptions of [{}, { serverMaxWindowBits: 10, clientMaxWindowBits: 10 }]) {
              const [response, server] = right(
                new ServerPerMessageDeflateFactory(serverOptions).processRequestParams(client.getRequestParams(), [])
              )
              const ext = right(client.processResponseParams(response, [])) as PerMessageDeflate
              const s = server as PerMessageDeflate
              // What one side compresses with, the other inflates with.
              expect([ext.localNoContextTakeover, ext.localMaxWindowBits]).toStrictEqual([
                s.remoteNoContextTakeover,
                s.remoteMaxWindowBits
              ])
              expect([ext.remoteNoContextTakeover, ext.remoteMaxWindowBits]).toStrictEqual([
                s.localNoContextTakeover,
                s.localMaxWindowBits
              ])
            }
          }
  })
})

describe("enablePermessageDeflate", () => {
  it("client gets a default factory", () => {
    const list = enableClientPermessageDeflate(undefined)
    expect(list).toHaveLength(1)
    const factory = list[0] as ClientPerMessageDeflateFactory
    expect(factory).toBeInstanceOf(ClientPerMessageDeflateFactory)
    expect(factory.getRequestParams()).toStrictEqual([["client_max_window_bits", null]])
    expect(factory.compressSettings).toStrictEqual({ memLevel: 5 })
  })

  it("server gets a default factory with 12-bit windows", () => {
    const list = enableServerPermessageDeflate([])
    const factory = list[0] as ServerPerMessageDeflateFactory
    expect([factory.serverMaxWindowBits, factory.clientMaxWindowBits, factory.compressSettings]).toStrictEqual([
      12,
      12,
      { memLevel: 5 }
    ])
  })

  it("an existing permessage-deflate factory is kept as configured", () => {
    const client = new ClientPerMessageDeflateFactory({ clientNoContextTakeover: true })
    expect(enableClientPermessageDeflate([client])).toStrictEqual([client])
    const server = new ServerPerMessageDeflateFactory({ serverNoContextTakeover: true })
    expect(enableServerPermessageDeflate([server])).toStrictEqual([server])
  })

  it("another extension is kept in front", () => {
    const other = { name: "x-other", processRequestParams: () => Either.left(new ProtocolError({ detail: "" })) }
    const list = enableServerPermessageDeflate([other as never])
    expect(list.map((f) => f.name)).toStrictEqual(["x-other", "permessage-deflate"])
  })
})

// ---------------------------------------------------------------------------
// Frames: RFC 7692 §7.2.3 examples
// ---------------------------------------------------------------------------

const HELLO = "f248cdc9c90700"

describe("PerMessageDeflate frames", () => {
  const fresh = (noContextTakeover = false, minSize = 0) =>
    new PerMessageDeflate(noContextTakeover, noContextTakeover, 15, 15, {}, { minSize })

  it("sender compresses Hello (RFC 7692 §7.2.3.1)", () => {
    const frame = fresh().encode(text("Hello"))
    expect([frame.opcode, hex(frame.data), frame.fin, frame.rsv1]).toStrictEqual([Opcode.Text, HELLO, true, true])
  })

  it("receiver decodes Hello (RFC 7692 §7.2.3.1)", () => {
    const frame = right(fresh().decode(text(fromHex(HELLO), true, true), null))
    expect([frame.opcode, Buffer.from(frame.data).toString(), frame.fin, frame.rsv1]).toStrictEqual([
      Opcode.Text,
      "Hello",
      true,
      false
    ])
    expect(frame.data.constructor).toBe(Uint8Array)
  })

  it("receiver decodes fragmented Hello (RFC 7692 §7.2.3.1)", () => {
    const ext = fresh()
    const first = right(ext.decode(text(fromHex("f248cd"), false, true), null))
    const second = right(ext.decode(cont(fromHex("c9c90700")), null))
    expect([first.opcode, first.fin, first.rsv1, second.opcode, second.fin, second.rsv1]).toStrictEqual([
      Opcode.Text,
      false,
      false,
      Opcode.Continuation,
      true,
      false
    ])
    expect(Buffer.concat([first.data, second.data]).toString()).toBe("Hello")
  })

  it("sender shares the sliding window with context takeover (RFC 7692 §7.2.3.2)", () => {
    const ext = fresh()
    expect([hex(ext.encode(text("Hello")).data), hex(ext.encode(text("Hello")).data)]).toStrictEqual([
      HELLO,
      "f200110000"
    ])
  })

  it("receiver shares the sliding window with context takeover (RFC 7692 §7.2.3.2)", () => {
    const ext = fresh()
    expectBytes(receive(ext, [text(fromHex(HELLO), true, true)]), utf8("Hello"))
    expectBytes(receive(ext, [text(fromHex("f200110000"), true, true)]), utf8("Hello"))
  })

  it("sender without context takeover compresses each message alone", () => {
    const ext = fresh(true)
    expect([hex(ext.encode(text("Hello")).data), hex(ext.encode(text("Hello")).data)]).toStrictEqual([HELLO, HELLO])
  })

  it("receiver without context takeover rejects a reference to the previous message", () => {
    const ext = fresh(true)
    expectBytes(receive(ext, [text(fromHex(HELLO), true, true)]), utf8("Hello"))
    const result = ext.decode(text(fromHex("f200110000"), true, true), null)
    expect(Either.isLeft(result) && result.left).toMatchObject({
      _tag: "ProtocolError",
      detail: "decompression failed"
    })
  })

  it("receiver decodes a block with no compression (RFC 7692 §7.2.3.3)", () => {
    expectBytes(receive(fresh(), [text(fromHex("000500faff48656c6c6f00"), true, true)]), utf8("Hello"))
  })

  it("receiver decodes a block with BFINAL set, then the next message (RFC 7692 §7.2.3.4)", () => {
    const ext = fresh()
    expectBytes(receive(ext, [text(fromHex("f348cdc9c9070000"), true, true)]), utf8("Hello"))
    // The stream ended, so the next message starts a new one.
    expectBytes(receive(ext, [text(fromHex(HELLO), true, true)]), utf8("Hello"))
  })

  it("receiver decodes two DEFLATE blocks in one message (RFC 7692 §7.2.3.5)", () => {
    expectBytes(receive(fresh(), [text(fromHex("f24805000000ffffcac9c90700"), true, true)]), utf8("Hello"))
  })

  it("sender ends a fragmented message with an empty fragment as 0x00 (RFC 7692 §7.2.3.6)", () => {
    const ext = fresh()
    const first = ext.encode(text("Hello", false))
    const last = ext.encode(cont("", true))
    expect([hex(first.data), first.rsv1, hex(last.data), last.rsv1]).toStrictEqual([
      "f248cdc9c907000000ffff",
      true,
      "00",
      false
    ])
    const receiver = fresh()
    expectBytes(receive(receiver, [first, last]), utf8("Hello"))
    // The stream stays in sync for the next message.
    expectBytes(receive(receiver, [ext.encode(text("Hello again"))]), utf8("Hello again"))
  })

  it("sender compresses an empty message as 0x00", () => {
    const ext = fresh()
    for (let i = 0; i < 3; i++) {
      const frame = ext.encode(new Frame(Opcode.Binary, new Uint8Array(0)))
      expect([hex(frame.data), frame.rsv1]).toStrictEqual(["00", true])
      expectBytes(receive(fresh(), [frame]), new Uint8Array(0))
    }
  })

  it("sender compresses a fragmented message as one, RSV1 on the first frame only", () => {
    const ext = fresh()
    const frames = [text("Hel", false), cont("lo", false), cont(" world", true)].map((f) => ext.encode(f))
    expect(frames.map((f) => [f.opcode, f.fin, f.rsv1])).toStrictEqual([
      [Opcode.Text, false, true],
      [Opcode.Continuation, false, false],
      [Opcode.Continuation, true, false]
    ])
    // Only the last frame drops the 00 00 ff ff tail.
    expect(frames.map((f) => hex(f.data).endsWith("0000ffff"))).toStrictEqual([true, true, false])
    expect(Buffer.from(receive(fresh(), frames)).toString()).toBe("Hello world")
  })

  it("control frames pass through unchanged, also inside a fragmented message", () => {
    const ext = fresh()
    const ping = new Frame(Opcode.Ping, utf8("ping"))
    const close = new Frame(Opcode.Close, fromHex("03e8"))
    expect(ext.encode(ping)).toBe(ping)
    expect(right(ext.decode(ping, 0))).toBe(ping)
    const first = ext.encode(text("Hello", false))
    expect(ext.encode(close)).toBe(close)
    const last = ext.encode(cont("", true))
    const receiver = fresh()
    const decodedFirst = right(receiver.decode(first, null))
    expect(right(receiver.decode(ping, null))).toBe(ping)
    const decodedLast = right(receiver.decode(last, null))
    expect(Buffer.concat([decodedFirst.data, decodedLast.data]).toString()).toBe("Hello")
  })

  it("receiver passes an uncompressed message through unchanged, keeping the context", () => {
    const ext = fresh()
    expectBytes(receive(ext, [text(fromHex(HELLO), true, true)]), utf8("Hello"))
    const plain = [text("plain", false), cont(" text", true)]
    for (const frame of plain) expect(right(ext.decode(frame, null))).toBe(frame)
    expectBytes(receive(ext, [text(fromHex("f200110000"), true, true)]), utf8("Hello"))
  })

  it("receiver leaves RSV1 set on a continuation frame, for the connection to reject", () => {
    const ext = fresh()
    right(ext.decode(text(fromHex("f248cd"), false, true), null))
    const decoded = right(ext.decode(cont(fromHex("c9c90700"), true, true), null))
    expect([Buffer.from(decoded.data).toString(), decoded.rsv1]).toStrictEqual(["llo", true])
    const stray = cont("x", true, true)
    expect(right(ext.decode(stray, null))).toBe(stray)
  })

  it("receiver keeps RSV2 and RSV3 for other extensions", () => {
    const frame = new Frame(Opcode.Binary, fromHex(HELLO), true, true, true, true)
    const decoded = right(fresh().decode(frame, null))
    expect([decoded.rsv1, decoded.rsv2, decoded.rsv3]).toStrictEqual([false, true, true])
  })

  it("sender leaves single-frame messages below minSize uncompressed", () => {
    const ext = fresh(false, 16)
    const short = text("short message")
    expect(ext.encode(short)).toBe(short)
    const long = ext.encode(text("a message of sixteen bytes or more"))
    expect(long.rsv1).toBe(true)
    // A fragmented message is compressed whatever its first frame's size.
    const first = ext.encode(text("tiny", false))
    const last = ext.encode(cont("", true))
    expect([first.rsv1, Buffer.from(receive(fresh(), [first, last])).toString()]).toStrictEqual([true, "tiny"])
    expect(DEFAULT_MIN_SIZE).toBe(0)
  })

  it("close releases the streams and the extension stays usable", () => {
    const ext = fresh()
    expect(hex(ext.encode(text("Hello")).data)).toBe(HELLO)
    ext.close()
    ext.close()
    // A new stream: no reference to the message before close.
    expect(hex(ext.encode(text("Hello")).data)).toBe(HELLO)
    expect(String(ext)).toBe(
      "PerMessageDeflate(remoteNoContextTakeover=false, localNoContextTakeover=false, remoteMaxWindowBits=15, localMaxWindowBits=15)"
    )
  })

  it("constructor rejects invalid window bits", () => {
    expect(() => new PerMessageDeflate(false, false, 7, 15)).toThrow(InvalidArgument)
    expect(() => new PerMessageDeflate(false, false, 15, 16)).toThrow(InvalidArgument)
  })
})

// ---------------------------------------------------------------------------
// Size limit and corrupt data
// ---------------------------------------------------------------------------

describe("PerMessageDeflate limits", () => {
  it("receiver accepts a message of exactly maxSize and rejects one byte less", () => {
    const data = wordsData(7, 10_000)
    const compressed = rawDeflate(data)
    const ok = new PerMessageDeflate(false, false, 15, 15)
    expectBytes(receive(ok, [new Frame(Opcode.Binary, compressed, true, true)], 10_000), data)
    const result = new PerMessageDeflate(false, false, 15, 15).decode(
      new Frame(Opcode.Binary, compressed, true, true),
      9_999
    )
    expect(Either.isLeft(result) && result.left).toMatchObject({ _tag: "PayloadTooBig", maxSize: 9_999 })
  })

  it("receiver counts maxSize as what remains for the current frame", () => {
    const ext = new PerMessageDeflate(false, false, 15, 15)
    // "f248cd" inflates to "He" and "c9c90700" to "llo".
    expect(hex(right(ext.decode(text(fromHex("f248cd"), false, true), 2)).data)).toBe(hex(utf8("He")))
    expect(leftTag(ext.decode(cont(fromHex("c9c90700")), 2))).toBe("PayloadTooBig")
    const again = new PerMessageDeflate(false, false, 15, 15)
    right(again.decode(text(fromHex("f248cd"), false, true), 5))
    expect(hex(right(again.decode(cont(fromHex("c9c90700")), 3)).data)).toBe(hex(utf8("llo")))
  })

  it("receiver rejects a zip bomb quickly, with bounded memory", () => {
    // 64 MiB of zeros compress to about 64 KiB.
    const bomb = rawDeflate(new Uint8Array(64 * 1024 * 1024))
    expect(bomb.byteLength).toBeLessThan(100 * 1024)
    const ext = new PerMessageDeflate(false, false, 15, 15)
    const before = process.memoryUsage().arrayBuffers
    const start = performance.now()
    const result = ext.decode(new Frame(Opcode.Binary, bomb, true, true), 1024 * 1024)
    const elapsed = performance.now() - start
    const grown = process.memoryUsage().arrayBuffers - before
    expect(Either.isLeft(result) && result.left).toMatchObject({ _tag: "PayloadTooBig", maxSize: 1024 * 1024 })
    expect(elapsed).toBeLessThan(200)
    expect(grown).toBeLessThan(8 * 1024 * 1024)
  })

  it("receiver rejects a zip bomb spread over fragments", () => {
    const bomb = rawDeflate(new Uint8Array(8 * 1024 * 1024))
    const ext = new PerMessageDeflate(false, false, 15, 15)
    const half = bomb.byteLength >> 1
    const budget = 5 * 1024 * 1024
    const first = right(ext.decode(new Frame(Opcode.Binary, bomb.subarray(0, half), false, true), budget))
    expect(first.data.byteLength).toBeGreaterThan(1024 * 1024)
    const remaining = budget - first.data.byteLength
    const second = ext.decode(new Frame(Opcode.Continuation, bomb.subarray(half), true), remaining)
    expect(leftTag(second)).toBe("PayloadTooBig")
  })

  it("receiver without a size limit inflates everything", () => {
    const data = new Uint8Array(3 * 1024 * 1024).fill(7)
    const ext = new PerMessageDeflate(false, false, 15, 15)
    expectBytes(receive(ext, [new Frame(Opcode.Binary, rawDeflate(data), true, true)], null), data)
  })

  it("receiver fails with ProtocolError on corrupt data, without crashing the process", async () => {
    const ext = new PerMessageDeflate(false, false, 15, 15)
    for (const corrupt of ["ff", "ffffffffffff", "f248cdc9c907ffff00", "0005000000"]) {
      const result = ext.decode(new Frame(Opcode.Text, fromHex(corrupt), true, true), null)
      expect(Either.isLeft(result) && result.left).toMatchObject({
        _tag: "ProtocolError",
        detail: "decompression failed"
      })
      expect(Either.isLeft(result) && result.left).toBeInstanceOf(ProtocolError)
    }
    // An invalid distance in a later message of a context-takeover stream.
    const result = ext.decode(new Frame(Opcode.Text, fromHex("f200110000"), true, true), null)
    expect(leftTag(result)).toBe("ProtocolError")
    // No late 'error' event escapes from zlib.
    await new Promise((resolve) => setTimeout(resolve, 20))
    expectBytes(receive(ext, [text(fromHex(HELLO), true, true)]), utf8("Hello"))
  })
})

// ---------------------------------------------------------------------------
// Round trips
// ---------------------------------------------------------------------------

describe("PerMessageDeflate round trips", () => {
  it("every window size and context takeover setting, both directions", () => {
    for (let bits = 8; bits <= 15; bits++) {
      for (const noContextTakeover of [false, true]) {
        const { client, server } = negotiate(
          {
            serverMaxWindowBits: bits,
            clientMaxWindowBits: bits,
            serverNoContextTakeover: noContextTakeover,
            clientNoContextTakeover: noContextTakeover
          },
          {}
        )
        expect(config(client)).toStrictEqual([noContextTakeover, noContextTakeover, bits, bits])
        for (let i = 0; i < 6; i++) {
          const data = wordsData(bits * 100 + i, 500 + i * 3000)
          const cuts = i % 2 === 0 ? [] : [i * 97, i * 1013]
          expectBytes(receive(server, send(client, data, cuts)), data)
          expectBytes(receive(client, send(server, data, cuts)), data)
        }
      }
    }
  })

  it("a negotiated 8-bit window never gets a reference beyond 256 bytes", () => {
    // Our compressor runs zlib with 9 bits (zlib has no 256-byte raw deflate); the receiver
    // inflates with exactly 8 bits, as a peer honouring the negotiation would.
    const { client, server } = negotiate({ clientMaxWindowBits: 8 }, {})
    expect(config(server)).toStrictEqual([false, false, 8, 15])
    for (let i = 0; i < 40; i++) {
      const data = wordsData(i + 1, 200 + i * 150)
      expectBytes(receive(server, send(client, data)), data)
    }
    // Control: the same receiver does reject what a 15-bit window produces, so it is strict.
    const wide = new PerMessageDeflate(false, false, 15, 15)
    const strict = new PerMessageDeflate(false, false, 8, 15)
    const failures = Array.from({ length: 10 }, (_, i) => wordsData(i + 1, 2000)).filter((data) =>
      Either.isLeft(strict.decode(wide.encode(new Frame(Opcode.Binary, data)), null))
    )
    expect(failures.length).toBeGreaterThan(0)
  })

  it("random messages with random parameters", () => {
    const bitsArb = fc.option(fc.integer({ min: 8, max: 15 }), { nil: null })
    const dataArb = fc.oneof(
      fc.uint8Array({ maxLength: 3000 }),
      fc.tuple(fc.nat(), fc.integer({ min: 0, max: 20_000 })).map(([seed, size]) => wordsData(seed, size))
    )
    fc.assert(
      fc.property(
        fc.record({
          serverNoContextTakeover: fc.boolean(),
          clientNoContextTakeover: fc.boolean(),
          serverMaxWindowBits: bitsArb,
          clientMaxWindowBits: fc.oneof(bitsArb, fc.constant(true as const)),
          level: fc.integer({ min: -1, max: 9 }),
          memLevel: fc.integer({ min: 1, max: 9 }),
          minSize: fc.integer({ min: 0, max: 64 })
        }),
        fc.boolean(),
        fc.array(fc.tuple(dataArb, fc.array(fc.nat(), { maxLength: 3 })), { minLength: 1, maxLength: 5 }),
        (options, defaultServer, messages) => {
          const compressSettings = { level: options.level, memLevel: options.memLevel }
          const { client, server } = negotiate(
            { ...options, compressSettings },
            defaultServer ? { serverMaxWindowBits: 12, clientMaxWindowBits: 12, compressSettings } : {}
          )
          for (const [data, cuts] of messages) {
            const sent = send(client, data, cuts)
            expect(sent[0]!.rsv1).toBe(sent.length > 1 || data.byteLength >= options.minSize)
            expectBytes(receive(server, sent), data)
            expectBytes(receive(client, send(server, data, cuts)), data)
          }
        }
      ),
      { numRuns: 60 }
    )
  })
})

// ---------------------------------------------------------------------------
// Compressing ahead, on libuv's thread pool
// ---------------------------------------------------------------------------

/** `encodeAhead` then `encode` of the same frame, as the connection's shell does for large messages. */
const encodeAhead = (ext: PerMessageDeflate, frame: Frame): Promise<Frame> =>
  new Promise((resolve) => ext.encodeAhead(frame.opcode, frame.data, frame.fin, () => resolve(ext.encode(frame))))

/** Like `send`, each frame compressed ahead or not as `ahead` says. */
const sendAhead = async (
  ext: PerMessageDeflate,
  data: Uint8Array,
  cuts: ReadonlyArray<number>,
  ahead: ReadonlyArray<boolean>
): Promise<Array<Frame>> => {
  const bounds = [0, ...[...new Set(cuts.map((c) => c % (data.byteLength + 1)))].sort((a, b) => a - b), data.byteLength]
  const frames: Array<Frame> = []
  for (let i = 0; i + 1 < bounds.length; i++) {
    const frame = new Frame(
      i === 0 ? Opcode.Binary : Opcode.Continuation,
      data.subarray(bounds[i]!, bounds[i + 1]!),
      i + 2 === bounds.length
    )
    frames.push((ahead[i] ?? true) ? await encodeAhead(ext, frame) : ext.encode(frame))
  }
  return frames
}

describe("PerMessageDeflate compressing ahead", () => {
  it("gives what compressing in place gives, mixed with it, with random parameters", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.record({
          serverNoContextTakeover: fc.boolean(),
          clientNoContextTakeover: fc.boolean(),
          clientMaxWindowBits: fc.option(fc.integer({ min: 8, max: 15 }), { nil: null }),
          minSize: fc.integer({ min: 0, max: 64 })
        }),
        fc.array(
          fc.tuple(
            fc.oneof(
              fc.uint8Array({ maxLength: 2000 }),
              fc.tuple(fc.nat(), fc.integer({ min: 0, max: 300_000 })).map(([seed, size]) => wordsData(seed, size))
            ),
            fc.array(fc.nat(), { maxLength: 3 }),
            fc.array(fc.boolean(), { maxLength: 4 })
          ),
          { minLength: 1, maxLength: 4 }
        ),
        async (options, messages) => {
          const { client, server } = negotiate(options, {})
          for (const [data, cuts, ahead] of messages) {
            const sent = await sendAhead(client, data, cuts, ahead)
            expect(sent[0]!.rsv1).toBe(sent.length > 1 || data.byteLength >= options.minSize)
            expectBytes(receive(server, sent), data)
          }
          client.close()
          server.close()
        }
      ),
      { numRuns: 40 }
    )
  })

  it("is byte for byte what compressing in place gives", async () => {
    const inPlace = new PerMessageDeflate(false, false, 15, 12)
    const ahead = new PerMessageDeflate(false, false, 15, 12)
    for (let i = 0; i < 4; i++) {
      const frame = new Frame(i === 0 ? Opcode.Text : Opcode.Continuation, wordsData(i + 1, 300_000), i === 3)
      const expected = inPlace.encode(frame)
      const actual = await encodeAhead(ahead, frame)
      expect([actual.opcode, actual.fin, actual.rsv1]).toStrictEqual([expected.opcode, expected.fin, expected.rsv1])
      expectBytes(actual.data, expected.data)
    }
  })

  it("leaves control frames and short messages as they are", async () => {
    const ext = new PerMessageDeflate(false, false, 15, 15, undefined, { minSize: 10 })
    const ping = new Frame(Opcode.Ping, utf8("ping"))
    expect(await encodeAhead(ext, ping)).toBe(ping)
    const short = text("short")
    expect(await encodeAhead(ext, short)).toBe(short)
  })

  it("ends at once when the extension closes meanwhile", async () => {
    const ext = new PerMessageDeflate(false, false, 15, 15)
    const data = wordsData(3, 1_000_000)
    const done = new Promise<void>((resolve) => ext.encodeAhead(Opcode.Binary, data, true, resolve))
    ext.close()
    await done
    // The extension stays usable: the next message gets a new stream, compressed in place.
    const peer = new PerMessageDeflate(false, false, 15, 15)
    expectBytes(receive(peer, [ext.encode(new Frame(Opcode.Binary, data, true))]), data)
  })
})

// ---------------------------------------------------------------------------
// Interoperability with the ws package's permessage-deflate
// ---------------------------------------------------------------------------

type WsCallback = (error: Error | null, result?: Buffer) => void
interface WsPerMessageDeflate {
  accept(configurations: Array<Record<string, Array<string | true>>>): Record<string, number | true>
  compress(data: Buffer, fin: boolean, callback: WsCallback): void
  decompress(data: Buffer, fin: boolean, callback: WsCallback): void
  cleanup(): void
}
const WsPerMessageDeflate: new (options: object) => WsPerMessageDeflate = createRequire(import.meta.url)(
  "ws"
).PerMessageDeflate

const toWs = (params: ReadonlyArray<ExtensionParameter>): Record<string, Array<string | true>> =>
  Object.fromEntries(params.map(([name, value]) => [name, [value ?? (true as const)]]))
const fromWs = (params: Record<string, number | true>): Array<ExtensionParameter> =>
  Object.entries(params).map(([name, value]) => [name, value === true ? null : String(value)])

const wsRun = (method: "compress" | "decompress", ws: WsPerMessageDeflate, data: Uint8Array, fin: boolean) =>
  new Promise<Uint8Array>((resolve, reject) =>
    ws[method](Buffer.from(data), fin, (error, result) => (error ? reject(error) : resolve(new Uint8Array(result!))))
  )

describe("PerMessageDeflate interoperability with ws", () => {
  const sizes = [0, 1, 100, 5_000, 70_000, 300_000]

  const exchange = async (ours: PerMessageDeflate, ws: WsPerMessageDeflate) => {
    for (const [i, size] of sizes.entries()) {
      const data = i % 2 === 0 ? wordsData(size + 1, size) : new Uint8Array(Buffer.alloc(size, i))
      // ws compresses, we decompress.
      const compressed = await wsRun("compress", ws, data, true)
      expectBytes(receive(ours, [new Frame(Opcode.Binary, compressed, true, true)], 1024 * 1024), data)
      // We compress, ws decompresses (a fragmented message as well).
      const frames = send(ours, data, i > 2 ? [size >> 2] : [])
      let received = new Uint8Array(0)
      for (const frame of frames) {
        const part = await wsRun("decompress", ws, frame.data, frame.fin)
        received = new Uint8Array(Buffer.concat([received, part]))
      }
      expectBytes(received, data)
    }
  }

  const cases: ReadonlyArray<readonly [string, object]> = [
    ["defaults", {}],
    ["8-bit windows and no context takeover", { serverMaxWindowBits: 8, clientMaxWindowBits: 8 }],
    ["no context takeover", { serverNoContextTakeover: true, clientNoContextTakeover: true }]
  ]

  for (const [name, wsOptions] of cases) {
    it(`ws client against our server: ${name}`, async () => {
      const ws = new WsPerMessageDeflate({ ...wsOptions, isServer: false, maxPayload: 1024 * 1024 })
      const offer: Array<ExtensionParameter> = fromWs(
        (ws as unknown as { offer(): Record<string, number | true> }).offer()
      )
      const [factory] = enableServerPermessageDeflate(undefined)
      const [response, server] = right(factory!.processRequestParams(offer, []))
      ws.accept([toWs(response)])
      await exchange(server as PerMessageDeflate, ws)
      ws.cleanup()
    })

    it(`our client against a ws server: ${name}`, async () => {
      const ws = new WsPerMessageDeflate({ ...wsOptions, isServer: true, maxPayload: 1024 * 1024 })
      const [factory] = enableClientPermessageDeflate(undefined)
      const response = fromWs(ws.accept([toWs(factory!.getRequestParams())]))
      const client = right(factory!.processResponseParams(response, []))
      await exchange(client as PerMessageDeflate, ws)
      ws.cleanup()
    })
  }
})
