/**
 * Conformance of our server: a raw client (its own frame encoder, `wire.ts`) against one
 * `Server.serve` running the echo handler, section by section (see `cases.ts`), then random
 * conversations. One server for the whole file: each case opens its own connection.
 */
import { describe, layer } from "@effect/vitest"
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
import { ServerUnderTest, serverUnderTest } from "./peer.js"
import { check, testCases } from "./suite.js"

layer(ServerUnderTest, { excludeTestServices: true })("server conformance", (it) => {
  describe("1 framing", () => testCases(it, framing()))
  describe("2 pings and pongs", () => testCases(it, pings()))
  describe("3 reserved bits", () => testCases(it, reservedBits()))
  describe("4 reserved opcodes", () => testCases(it, opcodes()))
  describe("5 fragmentation", () => testCases(it, fragmentation()))
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
      fastCheck: { numRuns: 30 }
    }
  )
})

layer(serverUnderTest(undefined), { excludeTestServices: true })("server conformance at the default maxSize", (it) => {
  describe("12.3 maxSize counts the inflated size", () => testCases(it, defaultMaxSize()))
})
