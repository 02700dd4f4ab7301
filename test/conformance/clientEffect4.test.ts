/**
 * The client conformance cases of `client.test.ts` against the Effect 4 shell's client running the
 * echo handler (in a process of its own, `effect4/test/fixtures/echoClient.ts`): the same raw
 * server and the same cases, so both shells meet one definition of correct behaviour.
 */
import { describe, layer } from "@effect/vitest"
import {
  closing,
  defaultMaxSize,
  deflate,
  fragmentation,
  framing,
  fuzzCase,
  opcodes,
  pings,
  reservedBits,
  utf8
} from "./cases.js"
import { type Case, clientOptions, effect4ClientUnderTest } from "./peer.js"
import { check, testCases } from "./suite.js"

const light = (cases: ReadonlyArray<Case>) => cases.filter((c) => c.heavy !== true)

// Starting a vite-node process that loads effect 4 takes a few seconds on a busy machine.
const SETUP = { excludeTestServices: true, timeout: 60_000 } as const

layer(effect4ClientUnderTest(), SETUP)("Effect 4 client conformance", (it) => {
  describe("1 framing", () => testCases(it, light(framing())))
  describe("2 pings and pongs", () => testCases(it, pings()))
  describe("3 reserved bits", () => testCases(it, reservedBits()))
  describe("4 reserved opcodes", () => testCases(it, opcodes()))
  describe("5 fragmentation", () => testCases(it, light(fragmentation())))
  describe("6 UTF-8", () => testCases(it, utf8()))
  describe("7 close handling", () => testCases(it, closing()))
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
})

const { maxSize: _maxSize, ...defaultOptions } = clientOptions

layer(effect4ClientUnderTest(defaultOptions), SETUP)("Effect 4 client conformance at the default maxSize", (it) => {
  describe("12.3 maxSize counts the inflated size", () => testCases(it, defaultMaxSize()))
})
