import { defineConfig } from "vitest/config"

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    // Every test is bounded: a hang is a failure, not a stuck CI run.
    testTimeout: 10_000,
    hookTimeout: 10_000,
    // Two cores on CI: keep the worker count small so loopback tests do not starve.
    pool: "forks",
    maxWorkers: 2,
    // Servers log every connection opened and closed at Info (Effect's default level): thousands
    // of lines that say nothing here.
    onConsoleLog: (log) => !/connection (open|closed|rejected)/.test(log)
  }
})
