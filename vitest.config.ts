import { defineConfig } from "vitest/config"

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    // Every test is bounded: a hang is a failure, not a stuck CI run.
    testTimeout: 10_000,
    hookTimeout: 10_000,
    // Two cores on CI: keep the worker count small so loopback tests do not starve.
    pool: "forks",
    // --expose-gc: the hostile-peer tests measure memory after a full collection.
    poolOptions: { forks: { maxForks: 2, minForks: 1, execArgv: ["--expose-gc"] } },
    // Tests that raise the servers' connection lines to Info (connectionLogLevel; Debug by default)
    // print one per connection opened and closed: thousands of lines that say nothing here.
    onConsoleLog: (log) => !/message="connection (open|closed|rejected)/.test(log)
  }
})
