#!/usr/bin/env node
/**
 * Bundles the command line (src/internal/cli.ts, with the library and the Effect 3 modules it uses)
 * into dist/bin/main.js, which dist/bin/cli.js loads to run a command. The executable then needs
 * no Effect of the application's: `npx effect-websockets` works the same in an application on
 * Effect 3, on Effect 4, or on none. Run by `npm run build`.
 */
import { chmodSync } from "node:fs"
import { fileURLToPath } from "node:url"
import { build } from "esbuild"

const ROOT = fileURLToPath(new URL("..", import.meta.url))

await build({
  absWorkingDir: ROOT,
  entryPoints: ["src/internal/cli.ts"],
  outfile: "dist/bin/main.js",
  bundle: true,
  platform: "node",
  format: "esm",
  target: "node20.19",
  // Optional native helpers stay outside the bundle, loaded from node_modules when installed.
  external: ["bufferutil", "utf-8-validate"],
  legalComments: "none",
  logLevel: "warning"
})
chmodSync(new URL("../dist/bin/cli.js", import.meta.url), 0o755)
