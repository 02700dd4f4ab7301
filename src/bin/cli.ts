#!/usr/bin/env node
/**
 * The `effect-websockets` executable: `effect-websockets <uri>` (interactive client) and
 * `effect-websockets serve` (echo server). See `effect-websockets --help`.
 *
 * Help, version and usage errors are answered before anything heavy loads; Effect and the library
 * (bundled into `main.js` beside this file) load only to run a command.
 *
 * @since 0.1.0
 */
import { readFileSync } from "node:fs"
import { type Command, EXIT_USAGE, HELP, parseArgs, UsageError } from "../internal/cliArgs.js"

const version = (): string => {
  // src/bin/cli.ts and dist/bin/cli.js both sit two levels below package.json.
  const json: unknown = JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8"))
  return typeof json === "object" && json !== null && "version" in json ? String(json.version) : "unknown"
}

let command: Command
try {
  command = parseArgs(process.argv.slice(2))
} catch (error) {
  if (!(error instanceof UsageError)) throw error
  process.stderr.write(`Error: UsageError: ${error.message}\n`)
  process.exit(EXIT_USAGE)
}

if (command._tag === "Help") {
  process.stdout.write(HELP)
} else if (command._tag === "Version") {
  process.stdout.write(`${version()}\n`)
} else {
  // The commands run from dist/bin/main.js: src/internal/cli.ts bundled with the Effect 3 modules
  // it uses (scripts/build-cli.mjs), so the executable needs no Effect of the application's and
  // works in applications on either Effect major.
  const main: string = new URL("./main.js", import.meta.url).href
  const cli = (await import(main)) as typeof import("../internal/cli.js")
  cli.main(command)
}
