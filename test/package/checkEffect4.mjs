#!/usr/bin/env node
/**
 * Packaging test of the Effect 4 entry point (`effect-websockets/effect4`), run by `.ci/run` under
 * Node 24 (or 22.19+: @effect/platform-node 4 needs it). As a user starting an Effect application
 * today would: `npm pack`, then a fresh application with `npm i effect@latest
 * @effect/platform-node@latest` installs the tarball, and this checks that
 *
 * - npm accepts it (our peer range takes effect 4) and resolves one copy of effect (`npm ls effect`);
 * - the application typechecks against the published types (strict, skipLibCheck off);
 * - it runs the README's echo server (a layer, under NodeRuntime) and client: a round trip, a
 *   fragmented message, ProtocolError for close(999), and ConnectFailed caught by its tag;
 * - `npx effect-websockets` (the bundled CLI) runs there: --help, --version, a refused client.
 *
 * Usage: node test/package/checkEffect4.mjs [--keep]   (--keep leaves the temporary application)
 */
import { spawnSync } from "node:child_process"
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { delimiter, dirname, join } from "node:path"
import { fileURLToPath } from "node:url"

const [major, minor] = process.versions.node.split(".").map(Number)
if (major < 22 || (major === 22 && minor < 19)) {
  console.error(`checkEffect4.mjs needs Node >= 22.19 (@effect/platform-node 4), not ${process.version}`)
  process.exit(2)
}

const ROOT = fileURLToPath(new URL("../..", import.meta.url))
const APP = fileURLToPath(new URL("app4", import.meta.url))
const keep = process.argv.includes("--keep")

const work = mkdtempSync(join(tmpdir(), "effect-websockets-package4-"))
const failures = []
const check = (condition, message) => {
  console.log(`${condition ? "ok  " : "FAIL"} ${message}`)
  if (!condition) failures.push(message)
}

// Children (npx, the CLI's `#!/usr/bin/env node`) run on this Node, not on whatever PATH has first.
const env = { ...process.env, PATH: `${dirname(process.execPath)}${delimiter}${process.env.PATH ?? ""}` }

const run = (cmd, args, cwd, options = {}) => {
  const result = spawnSync(cmd, args, { cwd, encoding: "utf8", timeout: 300_000, env, ...options })
  if (options.allowFailure !== true && result.status !== 0) {
    throw new Error(`${cmd} ${args.join(" ")} failed (${result.status}) in ${cwd}\n${result.stdout}\n${result.stderr}`)
  }
  return result
}
const npm = (args, cwd, options) => run("npm", [...args, "--no-audit", "--no-fund"], cwd, options)

try {
  const packed = JSON.parse(npm(["pack", "--json", "--pack-destination", work], ROOT).stdout)
  const tarball = join(work, packed[0].filename)
  const files = packed[0].files.map((file) => file.path)
  console.log(`packed ${packed[0].filename}: ${files.length} files, ${(packed[0].size / 1e3).toFixed(0)} kB`)
  check(
    files.includes("dist/effect4/index.js") && files.includes("dist/effect4/index.d.ts"),
    "the tarball has the Effect 4 entry point (dist/effect4)"
  )
  check(files.includes("effect4/src/Server.ts"), "the tarball has the Effect 4 shell's sources (for source maps)")

  console.log("\n# effect@latest, @effect/platform-node@latest")
  const dir = join(work, "effect4-app")
  cpSync(APP, dir, { recursive: true })
  writeFileSync(join(dir, "package.json"), JSON.stringify({ name: "consumer-effect4", private: true, type: "module" }))
  npm(["install", "effect@latest", "@effect/platform-node@latest", "typescript@~5.9", "@types/node@24"], dir)
  const install = npm(["install", tarball], dir, { allowFailure: true })
  check(
    install.status === 0,
    `npm installs the tarball next to effect 4${install.status === 0 ? "" : `\n${install.stderr}`}`
  )
  const versions = JSON.parse(
    run(
      process.execPath,
      [
        "-p",
        "JSON.stringify([require('effect/package.json').version, require('@effect/platform-node/package.json').version])"
      ],
      dir
    ).stdout
  )
  console.log(`installed effect ${versions[0]}, @effect/platform-node ${versions[1]}`)
  check(versions[0].startsWith("4."), `effect 4 is installed (${versions[0]})`)
  const copies = run("npm", ["ls", "effect", "--all", "--parseable"], dir).stdout.trim().split("\n")
  check(copies.length === 1, `one copy of effect (npm ls effect: ${copies.length})`)
  check(npm(["ls", "--all"], dir, { allowFailure: true }).status === 0, "npm ls reports no invalid or missing peer")

  const tsc = run("npx", ["tsc", "-p", "."], dir, { allowFailure: true })
  check(
    tsc.status === 0,
    `the application typechecks against the published types (strict, skipLibCheck off)${tsc.status === 0 ? "" : `\n${tsc.stdout}`}`
  )
  const app = run(process.execPath, ["out/consumer.js"], dir, { allowFailure: true, timeout: 60_000 })
  let result = {}
  try {
    // The one JSON line: the server logs each connection opened and closed at Info around it.
    result = JSON.parse(app.stdout.split("\n").find((line) => line.startsWith("{")) ?? "")
  } catch {}
  check(
    app.status === 0 &&
      result.reply === "hello" &&
      result.header === "consumer" &&
      result.fragmented === "fragments" &&
      result.invalidClose === "ProtocolError" &&
      result.errorsModule === "function",
    `the README's echo server and client run (${app.stdout.split("\n").find((line) => line.startsWith("{"))})`
  )
  check(
    /^cannot connect to 127\.0\.0\.1:1: connect ECONNREFUSED/.test(result.refused ?? ""),
    `ConnectFailed is caught by its tag (${result.refused})`
  )
  check(app.stderr === "", `nothing on stderr${app.stderr === "" ? "" : `\n${app.stderr}`}`)
  const declarations = readFileSync(join(dir, "node_modules/effect-websockets/dist/effect4/Server.d.ts"), "utf8")
  check(!/@internal/.test(declarations), "the Effect 4 Server declarations expose no @internal member")

  console.log("\n# npx effect-websockets")
  const pkg = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8"))
  const help = run("npx", ["--no-install", "effect-websockets", "--help"], dir, { allowFailure: true })
  check(help.status === 0 && help.stdout.startsWith("Usage: effect-websockets"), "npx effect-websockets --help")
  const version = run("npx", ["--no-install", "effect-websockets", "--version"], dir, { allowFailure: true })
  check(version.stdout.trim() === pkg.version, `npx effect-websockets --version prints ${pkg.version}`)
  const refused = run("npx", ["--no-install", "effect-websockets", "ws://127.0.0.1:1/"], dir, { allowFailure: true })
  check(
    refused.status === 1 && refused.stderr.includes("ECONNREFUSED"),
    `the CLI client runs on effect 4 (a refused connection exits 1)${refused.status === 1 ? "" : `\n${refused.stderr}`}`
  )
} finally {
  if (keep) console.log(`\nkept ${work}`)
  else rmSync(work, { recursive: true, force: true })
}

if (failures.length > 0) {
  console.error(`\n${failures.length} Effect 4 packaging check(s) failed`)
  process.exit(1)
}
console.log("\nEffect 4 packaging checks passed")
