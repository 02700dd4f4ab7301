// Copies the sans-I/O core of effect-websockets from src/ into effect4/src/, so that the Effect 4
// shell compiles the very same protocol code as the Effect 3 shell. The core imports from `effect`
// only effect/Data and effect/Predicate (same API in both majors) plus two per-major facades,
// internal/result.ts and internal/schemaError.ts, which each shell keeps its own version of.
// Then the shell modules both majors share: they use only Effect calls spelled alike in both, and
// the per-major facades for the others (internal/effectCompat.ts, schemaCodec.ts,
// effectTelemetry.ts, messagesStream.ts). What stays per major in effect4/src/ is those facades,
// SocketAdapter, HttpRouterRoute and index.
// The copies are gitignored (see .gitignore); edit the originals under src/.
import { mkdirSync, readFileSync, writeFileSync } from "node:fs"
import { dirname, join } from "node:path"
import { fileURLToPath } from "node:url"

const root = join(dirname(fileURLToPath(import.meta.url)), "..")

/** The core files, relative to src/: keep in step with the list in .gitignore. */
export const coreFiles = [
  "ClientConnection.ts",
  "Connection.ts",
  "Errors.ts",
  "Frames.ts",
  "Handshake.ts",
  "HeaderParsers.ts",
  "Headers.ts",
  "Http11.ts",
  "ServerConnection.ts",
  "Uri.ts",
  "Utf8.ts",
  "extensions/Extension.ts",
  "extensions/PermessageDeflate.ts",
  "internal/authenticated.ts",
  "internal/forwarded.ts",
  "internal/frameParser.ts",
  "internal/headerValues.ts",
  "internal/mask.ts",
  "internal/fanOut.ts",
  "internal/text.ts",
  "internal/topicHub.ts",
  "internal/zlibEngine.ts"
]

/** Shell modules written once (see internal/effectCompat.ts): keep in step with .gitignore too. */
export const sharedShellFiles = [
  "Auth.ts",
  "Backplane.ts",
  "Client.ts",
  "Metrics.ts",
  "NodeMount.ts",
  "RedisBackplane.ts",
  "Server.ts",
  "Topics.ts",
  "TypedMessages.ts",
  "WebSocket.ts",
  "Workers.ts",
  "internal/optionsConfig.ts",
  "internal/telemetry.ts",
  "internal/timers.ts",
  "internal/webSocket.ts"
]

/*
 * Besides the core proper, four internal modules free of `effect` that the shells share because
 * each shell has the modules they import, under the same names: internal/forwarded.ts (reads
 * X-Forwarded-For), internal/fanOut.ts (broadcast over internal/webSocket.ts's trySend),
 * internal/authenticated.ts (who Auth.basicAuth let in, for ws.username and ws.realm) and
 * internal/topicHub.ts (the local subscribers of each topic).
 */
let written = 0
const files = [...coreFiles, ...sharedShellFiles]
for (const file of files) {
  // Doc examples name the package's Effect 4 entry point in the copy.
  const source = readFileSync(join(root, "src", file), "utf8").replaceAll(
    'from "effect-websockets"',
    'from "effect-websockets/effect4"'
  )
  const copy = `// Generated from src/${file} by scripts/sync-core.mjs: edit the original.\n${source}`
  const target = join(root, "effect4", "src", file)
  let previous
  try {
    previous = readFileSync(target, "utf8")
  } catch {
    previous = undefined
  }
  // Rewrite only what changed, so tsc --watch and vitest see no spurious edits.
  if (previous !== copy) {
    mkdirSync(dirname(target), { recursive: true })
    writeFileSync(target, copy)
    written++
  }
}
if (process.argv.includes("--verbose")) console.log(`sync-core: ${written} of ${files.length} files rewritten`)
