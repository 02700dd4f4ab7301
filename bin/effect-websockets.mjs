#!/usr/bin/env node
// The `effect-websockets` executable: runs the command line of the shell that matches the
// application's `effect`, the Effect 4 shell (dist/effect4/bin/cli.js) for effect 4.x, else the
// Effect 3 one (dist/bin/cli.js, which also answers when effect is missing). Plain JavaScript, so
// that choosing loads nothing but effect's package.json.
import { createRequire } from "node:module"

let major = 3
try {
  const { version } = createRequire(import.meta.url)("effect/package.json")
  major = Number.parseInt(version, 10)
} catch {
  // No effect installed: the Effect 3 command line reports it.
}
await import(major >= 4 ? "../dist/effect4/bin/cli.js" : "../dist/bin/cli.js")
