#!/usr/bin/env node
/**
 * The `effect-websockets` executable on the Effect 4 shell, which `bin/effect-websockets.mjs` runs
 * when the application's `effect` is 4.x: `effect-websockets <uri>` (interactive client) and
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
  // effect4/src/bin/cli.ts and dist/effect4/bin/cli.js both sit three levels below package.json.
  const json: unknown = JSON.parse(readFileSync(new URL("../../../package.json", import.meta.url), "utf8"))
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
    process.stderr.write("Error: effect-websockets needs the effect package: npm install effect\n")
    process.exit(EXIT_FAILURE)
  }
}
