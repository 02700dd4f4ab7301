#!/usr/bin/env node
/**
 * Packaging test, run by `.ci/run` (not by vitest: it installs from the npm registry). As a user
 * would: `npm pack`, then install the tarball into fresh applications next to their Effect
 * packages, at the lowest and the highest versions of every peer (effect, @effect/platform,
 * @effect/platform-node, @redis/client), with the install line the README gives, and check that
 *
 * - npm resolves one copy of effect (`npm ls effect`) and reports no invalid peer (Effect 4
 *   applications: test/package/checkEffect4.mjs);
 * - the application typechecks against the published types (skipLibCheck off), the shipped
 *   examples included (copied into it, as a user would), and runs an echo round trip with no
 *   "Executing an Effect versioned ..." warning, an HttpRouter app with a WebSocket route on
 *   NodeHttpServer, and the compiled examples/http-router.ts (health, 426, SIGTERM);
 * - (highest row) every shipped example runs as its header says, `npx tsx examples/NAME.ts`, with
 *   tsx added to the application's devDependencies: the servers answer, the client examples run
 *   against them, each checked by what it prints or answers (test/package/app/run-examples.mjs;
 *   chat-cluster.ts only when a redis-server is on PATH);
 * - `require("effect-websockets")` works from CommonJS, and private paths are not exported;
 * - `npx effect-websockets --help` works with nothing but effect installed;
 * - the published declarations expose no `@internal` member or internal module but the core's
 *   per-major facades;
 * - a library user does not download what only the CLI needed (@effect/platform-node & co).
 *
 * Usage: node test/package/check.mjs [--keep]   (--keep leaves the temporary applications)
 */
import { spawnSync } from "node:child_process"
import { cpSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { fileURLToPath } from "node:url"

const ROOT = fileURLToPath(new URL("../..", import.meta.url))
const APP = fileURLToPath(new URL("app", import.meta.url))
const keep = process.argv.includes("--keep")
const pkg = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8"))

/**
 * The ends of our peer ranges. Keep in step with package.json's peerDependencies and the README's
 * Install (whose `npm i` line is the highest row). @effect/platform-node 0.94.0 is the first release
 * for @effect/platform 0.90 (its peer range is ^0.90.0), 0.108 the one for 0.97. With platform-node
 * 0.94.0, npm cannot install @effect/platform 0.90.0 itself (the @effect/rpc 0.68.4 it pulls needs
 * ^0.90.2), so the lowest row takes the last 0.90 patch.
 */
const MATRIX = [
  { name: "lowest", effect: "3.20.0", platform: "0.90", platformNode: "0.94.0", redis: "6.3.1" },
  { name: "highest", effect: "3", platform: "0.97", platformNode: "0.108", redis: "6" }
]

/** The README's install line: the highest row installs exactly what it says, so it must resolve today. */
const readmeInstall = /## Install[\s\S]*?```sh\n(npm install effect-websockets [^\n]+)\n/.exec(
  readFileSync(join(ROOT, "README.md"), "utf8")
)?.[1]
const readmeSpecs = readmeInstall?.split(/\s+/).slice(3) ?? []
const readmeVersion = (name) => readmeSpecs.find((spec) => spec.startsWith(`${name}@`))?.slice(name.length + 1)

const work = mkdtempSync(join(tmpdir(), "effect-websockets-package-"))
const failures = []
const check = (condition, message) => {
  console.log(`${condition ? "ok  " : "FAIL"} ${message}`)
  if (!condition) failures.push(message)
}

const run = (cmd, args, cwd, options = {}) => {
  const result = spawnSync(cmd, args, { cwd, encoding: "utf8", timeout: 300_000, ...options })
  if (options.allowFailure !== true && result.status !== 0) {
    throw new Error(`${cmd} ${args.join(" ")} failed (${result.status}) in ${cwd}\n${result.stdout}\n${result.stderr}`)
  }
  return result
}
const npm = (args, cwd, options) => run("npm", [...args, "--no-audit", "--no-fund"], cwd, options)

/** Packages and megabytes of an application's node_modules. */
const footprint = (dir) => {
  const lock = JSON.parse(readFileSync(join(dir, "package-lock.json"), "utf8"))
  const packages = Object.keys(lock.packages).filter((path) => path !== "")
  const size = (path) => {
    const stat = statSync(path)
    if (!stat.isDirectory()) return stat.size
    return readdirSync(path).reduce((sum, entry) => sum + size(join(path, entry)), 0)
  }
  return { packages, mb: size(join(dir, "node_modules")) / 1e6 }
}

const newApp = (name, extraFiles = true) => {
  const dir = join(work, name)
  if (extraFiles) cpSync(APP, dir, { recursive: true })
  else cpSync(APP, dir, { recursive: true, filter: (src) => src === APP })
  writeFileSync(join(dir, "package.json"), JSON.stringify({ name: `consumer-${name}`, private: true, type: "module" }))
  return dir
}

try {
  const packed = JSON.parse(npm(["pack", "--json", "--pack-destination", work], ROOT).stdout)
  const tarball = join(work, packed[0].filename)
  const files = packed[0].files.map((file) => file.path)
  console.log(`packed ${packed[0].filename}: ${files.length} files, ${(packed[0].size / 1e3).toFixed(0)} kB`)
  check(files.includes("LICENSE") && files.includes("README.md"), "the tarball has LICENSE and README.md")
  check(
    files.some((file) => file.startsWith("examples/")),
    "the tarball has the examples"
  )
  const highest = MATRIX.find((row) => row.name === "highest")
  check(
    readmeVersion("effect") === highest.effect &&
      readmeVersion("@effect/platform") === highest.platform &&
      readmeVersion("@effect/platform-node") === highest.platformNode,
    `the README's install line names every package of its examples, at the highest row's versions (${readmeInstall})`
  )

  for (const { name, effect, platform, platformNode, redis } of MATRIX) {
    const peers = [
      `effect@${effect}`,
      `@effect/platform@${platform}`,
      `@effect/platform-node@${platformNode}`,
      `@redis/client@${redis}`
    ]
    console.log(`\n# ${name}: ${peers.join(", ")}`)
    const dir = newApp(name)
    // Without --force or --legacy-peer-deps: an ERESOLVE here is a peer range narrower than the code needs.
    npm(["install", tarball, ...peers, "typescript@~5.9", "@types/node@20", "@types/ws@8"], dir)
    const shipped = join(dir, "node_modules", "effect-websockets", "examples")
    const examples = readdirSync(shipped).filter((file) => file.endsWith(".ts"))
    cpSync(shipped, join(dir, "examples"), { recursive: true, filter: (src) => !src.endsWith("tsconfig.json") })
    const versions = JSON.parse(
      run(
        "node",
        [
          "-p",
          "JSON.stringify(['effect', '@effect/platform', '@effect/platform-node', '@redis/client'].map((name) => require(name + '/package.json').version))"
        ],
        dir
      ).stdout
    )
    console.log(
      `installed effect ${versions[0]}, @effect/platform ${versions[1]}, @effect/platform-node ${versions[2]}, @redis/client ${versions[3]}`
    )
    const copies = run("npm", ["ls", "effect", "--all", "--parseable"], dir).stdout.trim().split("\n")
    check(copies.length === 1, `one copy of effect (npm ls effect: ${copies.length})`)
    check(npm(["ls", "--all"], dir, { allowFailure: true }).status === 0, "npm ls reports no invalid or missing peer")

    const tsc = run("npx", ["tsc", "-p", "."], dir, { allowFailure: true })
    check(
      tsc.status === 0,
      `the application and the ${examples.length} shipped examples typecheck against the published types${tsc.status === 0 ? "" : `\n${tsc.stdout}`}`
    )
    const app = run("node", ["out/consumer.js"], dir, { allowFailure: true })
    let result = {}
    try {
      // The last line: the server logs each connection opened and closed at Info before it.
      result = JSON.parse(app.stdout.trim().split("\n").pop() ?? "")
    } catch {}
    check(
      app.status === 0 &&
        result.reply === "hello" &&
        result.header === "consumer" &&
        result.invalidClose === "ProtocolError" &&
        result.isSocket === true,
      `an echo round trip runs (${app.stdout.trim()})`
    )
    check(
      /^cannot connect to 127\.0\.0\.1:1: connect ECONNREFUSED/.test(result.refused ?? ""),
      "a refused connection says ECONNREFUSED"
    )
    check(
      app.stderr === "",
      `nothing on stderr (no version-mismatch warnings)${app.stderr === "" ? "" : `\n${app.stderr}`}`
    )

    const routed = run("node", ["out/platform-node.js"], dir, { allowFailure: true })
    let routedResult = {}
    try {
      routedResult = JSON.parse(routed.stdout.trim().split("\n").pop() ?? "")
    } catch {}
    check(
      routed.status === 0 &&
        routedResult.reply === "routed" &&
        routedResult.plain === 426 &&
        routedResult.missing === 404,
      `@effect/platform-node: an HttpRouter app with a WebSocket route echoes, answers a plain GET 426, and a client meets an unserved path as InvalidStatusCode 404 (${routed.stdout.trim()}${routed.stderr})`
    )

    const example = run("node", ["run-example.mjs"], dir, { allowFailure: true, timeout: 60_000 })
    let exampleResult = {}
    try {
      exampleResult = JSON.parse(example.stdout.trim().split("\n").pop() ?? "")
    } catch {}
    check(
      example.status === 0 &&
        exampleResult.health === "200 ok" &&
        exampleResult.plain === 426 &&
        exampleResult.upgrade === "websocket" &&
        exampleResult.exit === 0,
      `examples/http-router.ts runs from the installed package: /health, 426 on a plain GET, exit 0 on SIGTERM (${example.stdout.trim()}${example.stderr})`
    )

    const cjs = run("node", ["consumer.cjs"], dir, { allowFailure: true })
    check(
      cjs.status === 0,
      `require() from CommonJS works and private paths are not exported${cjs.status === 0 ? "" : `\n${cjs.stderr}`}`
    )

    if (name === "highest") {
      // As a user would: tsx as a devDependency (so `npx tsx` runs it without a prompt), ws for the
      // test's clients. Added last, so that every check above sees the README's install alone.
      npm(["install", "--save-dev", "tsx@4", "ws@8"], dir)
      const began = Date.now()
      const examplesRun = run("node", ["run-examples.mjs"], dir, { allowFailure: true, timeout: 180_000 })
      const lines = examplesRun.stdout
        .trim()
        .split("\n")
        .flatMap((line) => {
          try {
            return [JSON.parse(line)]
          } catch {
            return []
          }
        })
      for (const { ok, message } of lines) check(ok, message)
      check(
        examplesRun.status === 0 && lines.length > 0,
        `the shipped examples run with npx tsx (${((Date.now() - began) / 1000).toFixed(0)} s, exit ${examplesRun.status ?? examplesRun.signal})${examplesRun.status === 0 ? "" : `\n${examplesRun.stdout}${examplesRun.stderr}`}`
      )
    }

    const dist = join(dir, "node_modules", "effect-websockets", "dist")
    // The Effect 3 entry's declarations. They may import the per-major facades (internal/result,
    // schemaError, effectCompat, schemaCodec, effectTelemetry): through them their types are the
    // major's own (`Either`, `ParseError`, `Duration.DurationInput`, `Schema.Schema`; Effect 4's
    // `Result`, `SchemaError`, `Duration.Input`, `Schema.Codec` under effect4/).
    const declarations = readdirSync(dist, { recursive: true }).filter(
      (file) => file.endsWith(".d.ts") && !/^(internal|effect4|bin)\//.test(file)
    )
    const leaking = declarations.filter((file) =>
      /@internal|from "\.{1,2}\/(\.\.\/)?internal\/(?!(result|schemaError|effectCompat|schemaCodec|effectTelemetry)\.js")/.test(
        readFileSync(join(dist, file), "utf8")
      )
    )
    check(
      leaking.length === 0,
      `public declarations expose no @internal member or internal module (${leaking.join(", ") || "none"})`
    )
  }

  console.log("\n# CLI and footprint: an application with effect only")
  const bare = newApp("effect-only", false)
  npm(["install", "effect@3"], bare)
  const before = footprint(bare)
  npm(["install", tarball], bare)
  const after = footprint(bare)
  const added = after.packages.filter((path) => !before.packages.includes(path))
  console.log(
    `adding effect-websockets: +${added.length} packages (${added.map((p) => p.replace(/^node_modules\//, "")).join(", ")}), +${(after.mb - before.mb).toFixed(1)} MB`
  )
  check(
    !after.packages.some((path) => /@effect\/(platform-node|cluster|sql|workflow|rpc|cli)$/.test(path)),
    "no @effect/platform-node, cluster, sql, workflow, rpc or cli"
  )
  check(after.mb - before.mb < 10, "adds less than 10 MB")
  const help = run("npx", ["--no-install", "effect-websockets", "--help"], bare, { allowFailure: true })
  check(help.status === 0 && help.stdout.startsWith("Usage: effect-websockets"), "npx effect-websockets --help")
  const version = run("npx", ["--no-install", "effect-websockets", "--version"], bare, { allowFailure: true })
  check(version.stdout.trim() === pkg.version, `npx effect-websockets --version prints ${pkg.version}`)
  const refused = run("npx", ["--no-install", "effect-websockets", "ws://127.0.0.1:1/"], bare, { allowFailure: true })
  check(
    refused.status === 1 && refused.stderr.includes("ECONNREFUSED"),
    "the CLI client runs (a refused connection exits 1)"
  )
} finally {
  if (keep) console.log(`\nkept ${work}`)
  else rmSync(work, { recursive: true, force: true })
}

if (failures.length > 0) {
  console.error(`\n${failures.length} packaging check(s) failed`)
  process.exit(1)
}
console.log("\npackaging checks passed")
