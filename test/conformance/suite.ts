/**
 * Registers the cases of the table as tests: one test per case, named after its number, title
 * and expected behaviour, comparing what the peer observed with what the case expects.
 */
import { expect, type Vitest } from "@effect/vitest"
import * as Effect from "effect/Effect"
import { type Case, caseName, expected, runCase, TargetUnderTest } from "./peer.js"

/** Margin of the test timeout over the case's own deadline, for the handshake and the outcome. */
const TEST_TIMEOUT_MARGIN_MS = 5000

/** Runs one case against the target of the file and compares the observation with the expectation. */
export const check = (c: Case): Effect.Effect<void, Error, TargetUnderTest> =>
  Effect.gen(function* () {
    const target = yield* TargetUnderTest
    const observed = yield* runCase(target, c)
    expect(observed).toEqual(expected(c.expect, c.steps))
  })

/** One test per case. */
export const testCases = (it: Vitest.MethodsNonLive<TargetUnderTest, true>, cases: ReadonlyArray<Case>): void => {
  for (const c of cases) it.effect(caseName(c), () => check(c), (c.timeout ?? 2000) + TEST_TIMEOUT_MARGIN_MS)
}
