#!/usr/bin/env node
/**
 * The `effect-websockets` executable: `effect-websockets <uri>` (interactive client) and
 * `effect-websockets serve` (echo server). See `effect-websockets --help`.
 *
 * Help, version and usage errors are answered before anything heavy loads; Effect and the library
 * load only to run a command.
 *
 * @since 0.1.0
 */
import { readFileSync } from "node:fs"
import { type Command, EXIT_FAILURE, EXIT_USAGE, HELP, parseArgs, UsageError } from "../internal/cliArgs.js"

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
  try {
    const { main } = await import("../internal/cli.js")
    main(command)
  } catch (error) {
    // effect is a peer dependency: npm installs it, but --legacy-peer-deps or a pruned tree may not.
    if ((error as NodeJS.ErrnoException).code !== "ERR_MODULE_NOT_FOUND" || !String(error).includes("'effect'")) {
      throw error
    }
    process.stderr.write(
      "Error: effect-websockets needs the effect package (version 3.20 or later, before 4): npm install effect@3\n"
    )
    process.exit(EXIT_FAILURE)
  }
}
