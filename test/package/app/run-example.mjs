// Runs the shipped examples/http-router.ts, compiled in this application, as a user would on a free
// port: GET /health, a plain GET on /ws (426 Upgrade Required), then SIGTERM (exit 0). Prints one
// JSON line that `check.mjs` compares.
import { spawn } from "node:child_process"

const child = spawn(process.execPath, ["out/examples/http-router.js"], {
  env: { ...process.env, PORT: "0" },
  stdio: ["ignore", "pipe", "pipe"]
})
let output = ""
const exited = new Promise((resolve) => child.once("exit", (code) => resolve(code)))
const port = await new Promise((resolve, reject) => {
  const onData = (chunk) => {
    output += chunk
    const match = /Listening on http:\/\/127\.0\.0\.1:(\d+)/.exec(output)
    if (match !== null) resolve(Number(match[1]))
  }
  child.stdout.on("data", onData)
  child.stderr.on("data", onData)
  exited.then((code) => reject(new Error(`exited with ${code} before listening:\n${output}`)))
})
const health = await fetch(`http://127.0.0.1:${port}/health`)
const plain = await fetch(`http://127.0.0.1:${port}/ws`)
child.kill("SIGTERM")
console.log(
  JSON.stringify({
    health: `${health.status} ${await health.text()}`,
    plain: plain.status,
    upgrade: plain.headers.get("upgrade"),
    exit: await exited
  })
)
