// Typechecks every ```ts block of the Markdown guides (docs/**/*.md, generated docs/modules/ aside)
// as an application would compile it: each block is a module of its own that imports
// `effect-websockets` (mapped to src/, as examples/tsconfig.json does) and the packages installed
// here. A block fenced as ```ts no-check is deliberately partial and skipped; a block fenced as
// ```ts run is a whole program that ends by itself, and is also run (with tsx, 30 s at most): it
// must exit with 0. A block fenced as ```ts effect4 is an Effect 4 application: it is typechecked
// against the Effect 4 shell instead (from effect4/, where effect 4 is installed, with
// `effect-websockets/effect4` mapped to effect4/src/, the core copied there first by
// scripts/sync-core.mjs); it is not run, as the Effect 4 shell needs Node 22.19 or newer.
// Usage: node docs/check-guides.mjs   (part of `npm run docs`)
import { execFileSync, spawnSync } from "node:child_process"
import { mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs"
import { dirname, join, relative } from "node:path"
import { fileURLToPath } from "node:url"

const root = join(dirname(fileURLToPath(import.meta.url)), "..")
const docs = join(root, "docs")
// Inside the repository (so that imports of installed packages resolve from the blocks) and outside
// node_modules (where tsx would not apply the tsconfig's paths). Left behind only after a failure.
const work = join(docs, ".check")
// The Effect 4 blocks' own directory, where `effect` resolves to effect4/node_modules/effect.
const work4 = join(root, "effect4", ".check")

const guides = (dir) =>
  readdirSync(dir).flatMap((name) => {
    const path = join(dir, name)
    if (statSync(path).isDirectory())
      return name === "modules" || name === "examples" || name === ".check" ? [] : guides(path)
    return name.endsWith(".md") && !name.endsWith(".ts.md") ? [path] : []
  })

const blocks = []
for (const file of guides(docs)) {
  const lines = readFileSync(file, "utf8").split("\n")
  for (let i = 0; i < lines.length; i++) {
    const fence = /^```(ts|typescript)(\s.*)?$/.exec(lines[i])
    if (fence === null) continue
    const start = i + 1
    let end = start
    while (end < lines.length && !lines[end].startsWith("```")) end++
    const info = fence[2] ?? ""
    if (!/\bno-check\b/.test(info))
      blocks.push({
        file,
        start,
        code: lines.slice(start, end),
        run: /\brun\b/.test(info),
        effect4: /\beffect4\b/.test(info)
      })
    i = end
  }
}

// Writes the blocks as modules of a project in `dir` whose `paths` map the package's specifiers
// to `sources`, typechecks it and returns tsc's errors (pointing at the guides' own lines).
const typecheck = (dir, group, sources, specifier) => {
  rmSync(dir, { recursive: true, force: true })
  mkdirSync(dir, { recursive: true })
  group.forEach(([name, block]) => {
    // `export {}` keeps each block a module of its own, whatever it declares.
    writeFileSync(join(dir, name), `${block.code.join("\n")}\nexport {}\n`)
  })
  const src = relative(dir, sources)
  writeFileSync(
    join(dir, "tsconfig.json"),
    JSON.stringify({
      extends: relative(dir, join(root, "tsconfig.json")),
      compilerOptions: {
        noEmit: true,
        rootDir: relative(dir, root),
        noUnusedLocals: false,
        noUnusedParameters: false,
        paths: { [specifier]: [`${src}/index.ts`], [`${specifier}/*`]: [`${src}/*.ts`] }
      },
      include: ["*.ts"]
    })
  )
  let output = ""
  try {
    execFileSync(process.execPath, [join(root, "node_modules", "typescript", "bin", "tsc"), "-p", dir], {
      encoding: "utf8",
      stdio: ["ignore", "pipe", "pipe"]
    })
  } catch (error) {
    output = `${error.stdout ?? ""}${error.stderr ?? ""}`
  }
  return output.replace(/^(?:.*[\\/])?(block\d+\.ts)\((\d+),(\d+)\)/gm, (whole, name, line, column) => {
    const block = byName.get(name)
    return block === undefined ? whole : `${relative(root, block.file)}:${block.start + Number(line)}:${column}`
  })
}

const byName = new Map(blocks.map((block, n) => [`block${n}.ts`, block]))
const effect3 = [...byName].filter(([, block]) => !block.effect4)
const effect4 = [...byName].filter(([, block]) => block.effect4)
let report = typecheck(work, effect3, join(root, "src"), "effect-websockets")
if (effect4.length > 0) {
  execFileSync(process.execPath, [join(root, "scripts", "sync-core.mjs")], { stdio: ["ignore", "ignore", "inherit"] })
  report += typecheck(work4, effect4, join(root, "effect4", "src"), "effect-websockets/effect4")
}
const files = new Set(blocks.map((block) => block.file)).size
if (report.trim() !== "") {
  process.stderr.write(report)
  process.stderr.write(`\ndocs: ${blocks.length} TypeScript blocks in ${files} guides, type errors above\n`)
  process.exit(1)
}

// The runnable blocks, one after the other (each may listen on a port of its own choosing).
const runnable = effect3.filter(([, block]) => block.run)
for (const [name, block] of runnable) {
  const result = spawnSync(
    process.execPath,
    [join(root, "node_modules", "tsx", "dist", "cli.mjs"), "--tsconfig", join(work, "tsconfig.json"), join(work, name)],
    { cwd: work, encoding: "utf8", timeout: 30_000 }
  )
  if (result.status !== 0) {
    const why = result.error !== undefined ? String(result.error) : `exit code ${result.status ?? result.signal}`
    process.stderr.write(`${result.stdout}${result.stderr}`)
    process.stderr.write(`\ndocs: the block at ${relative(root, block.file)}:${block.start} failed (${why})\n`)
    process.exit(1)
  }
}
rmSync(work, { recursive: true, force: true })
rmSync(work4, { recursive: true, force: true })
console.log(
  `docs: ${blocks.length} TypeScript blocks in ${files} guides typecheck (${effect4.length} against Effect 4); ${runnable.length} of them ran`
)
