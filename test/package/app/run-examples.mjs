// Runs every shipped example copied into this application as its header says a user runs it,
// `npx tsx examples/NAME.ts` (tsx and ws are this application's devDependencies, installed by
// check.mjs), each server on a free port (PORT=0), and checks each by what it prints or answers:
//
// - echo-server.ts echoes; client.ts and reconnecting-client.ts run against it; Ctrl-C (SIGINT to
//   its process group) closes connections with 1001 and the reconnecting client says so and retries;
// - chat-room.ts announces joins and relays with the sender's name; auth-server.ts answers 401 without
//   credentials and greets alice;
// - http-router.ts and node-http.ts: /health, 426 on a plain GET of /ws and /chat, compressed echo
//   (text, binary, 2 MiB), the chat relay, SIGTERM closing connections with 1001;
// - chat-cluster.ts, when a redis-server is on PATH: two processes relay through Redis.
//
// npm exec ends by the signal itself without forwarding it, so a stop is the signal sent to the
// example's process group (as a terminal's Ctrl-C is); it must end every process of that group.
// Every child is bounded in time and killed (its process group, SIGKILL) when this script ends.
// Prints one JSON line per check ({ ok, message }) for check.mjs.
import { spawn, spawnSync } from "node:child_process"
import { readdirSync, readFileSync } from "node:fs"
import * as net from "node:net"
import WebSocket from "ws"

const STEP_MS = 60_000
const groups = new Set()
const killAll = () => {
  for (const pid of groups) {
    try {
      process.kill(-pid, "SIGKILL")
    } catch {}
  }
}
process.on("exit", killAll)
for (const signal of ["SIGTERM", "SIGINT"]) process.on(signal, () => process.exit(1))

let failed = 0
const report = (ok, message) => {
  if (!ok) failed++
  console.log(JSON.stringify({ ok, message }))
}

const bounded = (promise, what, ms = STEP_MS) =>
  new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms)
    promise.then(
      (value) => {
        clearTimeout(timer)
        resolve(value)
      },
      (error) => {
        clearTimeout(timer)
        reject(error)
      }
    )
  })

/** Children of a process, from /proc (Linux). */
const childrenOf = (pid) =>
  readdirSync("/proc")
    .filter((entry) => /^\d+$/.test(entry))
    .filter((entry) => {
      try {
        const stat = readFileSync(`/proc/${entry}/stat`, "utf8")
        return Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]) === pid
      } catch {
        return false
      }
    })
    .map(Number)

/** Command line of a process, from /proc (Linux); "" once it ended. */
const commandOf = (pid) => {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, "utf8").replaceAll("\0", " ")
  } catch {
    return ""
  }
}

/**
 * The example's own process: the deepest descendant of `pid` (npx → sh → tsx → node, which starts
 * esbuild's service) whose command line names the example's file.
 */
const exampleProcessOf = (pid, file) => {
  let found = pid
  let level = [pid]
  while (level.length > 0) {
    level = level.flatMap(childrenOf)
    const named = level.filter((child) => commandOf(child).includes(file))
    if (named.length > 0) found = named[named.length - 1]
  }
  return found
}

/** `npx tsx examples/NAME.ts ...args` in its own process group; output collected, waits on it by pattern. */
const npxTsx = (name, args = [], env = {}) => {
  const child = spawn("npx", ["tsx", `examples/${name}`, ...args], {
    env: { ...process.env, PORT: "0", ...env },
    stdio: ["ignore", "pipe", "pipe"],
    detached: true
  })
  groups.add(child.pid)
  let output = ""
  const watchers = new Set()
  const onData = (chunk) => {
    output += chunk
    for (const watch of watchers) watch()
  }
  child.stdout.on("data", onData)
  child.stderr.on("data", onData)
  const exited = new Promise((resolve) => child.once("exit", (code, signal) => resolve({ code, signal })))
  const waitFor = (pattern) =>
    bounded(
      new Promise((resolve, reject) => {
        const watch = () => {
          const match = pattern.exec(output)
          if (match !== null) {
            watchers.delete(watch)
            resolve(match)
          }
        }
        watchers.add(watch)
        watch()
        exited.then(({ code, signal }) => {
          watchers.delete(watch)
          reject(new Error(`examples/${name} ended (${code ?? signal}) before printing ${pattern}:\n${output}`))
        })
      }),
      `examples/${name} printing ${pattern}:\n${output}`
    )
  /**
   * Sends `signal` to the example's own process (the node that tsx starts) and waits until
   * no process of its group is left. Not to the whole group: tsx relays the signal it gets to the
   * example, which then gets it twice, and `NodeRuntime.runMain` takes a second SIGTERM as "exit
   * now" (it removes its handlers after the first), closing connections with 1006 instead of 1001.
   */
  const stop = async (signal) => {
    process.kill(exampleProcessOf(child.pid, `examples/${name}`), signal)
    await bounded(exited, `examples/${name} ending on ${signal}`)
    await bounded(
      new Promise((resolve) => {
        const poll = () => {
          try {
            process.kill(-child.pid, 0)
            setTimeout(poll, 20)
          } catch {
            groups.delete(child.pid)
            resolve()
          }
        }
        poll()
      }),
      `every process of examples/${name} ending on ${signal}`
    )
  }
  return { child, output: () => output, exited, waitFor, stop }
}

/** A server example, once it prints the port it listens on. */
const server = async (name, env) => {
  const example = npxTsx(name, [], env)
  const match = await example.waitFor(/Listening on (?:http|ws):\/\/127\.0\.0\.1:(\d+)/)
  return { ...example, port: Number(match[1]) }
}

/** A `ws` client, open, recording what it receives; fails with the HTTP status of a refusal. */
const open = (url, options = {}) =>
  bounded(
    new Promise((resolve, reject) => {
      const socket = new WebSocket(url, options)
      const received = []
      const waiting = new Set()
      let closeCode
      const closed = new Promise((resolveClosed) =>
        socket.once("close", (code) => {
          closeCode = code
          resolveClosed(code)
        })
      )
      socket.on("message", (data, isBinary) => {
        received.push(isBinary ? Buffer.from(data) : data.toString("utf8"))
        for (const wake of waiting) wake()
      })
      /** Waits until `count` messages have arrived: the first `count`. */
      const messages = (count) =>
        bounded(
          new Promise((resolveMessages) => {
            const wake = () => {
              if (received.length >= count) {
                waiting.delete(wake)
                resolveMessages(received.slice(0, count))
              }
            }
            waiting.add(wake)
            wake()
          }),
          `${count} messages on ${url} (got ${JSON.stringify(received.map(String))})`
        )
      socket.once("unexpected-response", (_, response) => reject(new Error(`HTTP ${response.statusCode}`)))
      socket.once("error", reject)
      socket.once("open", () =>
        resolve({ socket, received, messages, closed, closeCode: () => closeCode, close: () => socket.terminate() })
      )
    }),
    `opening ${url}`
  )

const same = (a, b) => (typeof a === "string" ? a === b : typeof b !== "string" && Buffer.from(b).equals(a))

/** Runs `body`, reporting `message` as passed or failed with the error. */
const step = async (message, body) => {
  try {
    const detail = await body()
    report(true, detail === undefined ? message : `${message} (${detail})`)
  } catch (error) {
    report(false, `${message}: ${error instanceof Error ? error.message : error}`)
  }
}

const started = Date.now()
const examples = readdirSync("examples").filter((file) => file.endsWith(".ts"))
for (const file of examples) {
  const header = /^\/\*\*[\s\S]*?\*\//.exec(readFileSync(`examples/${file}`, "utf8"))?.[0] ?? ""
  report(
    header.includes(`npx tsx examples/${file}`),
    `examples/${file}: its header says how to run it (npx tsx examples/${file})`
  )
}
const hasRedis = spawnSync("redis-server", ["-v"], { stdio: "ignore" }).status === 0
const covered = [
  "echo-server.ts",
  "client.ts",
  "reconnecting-client.ts",
  "chat-room.ts",
  "auth-server.ts",
  "http-router.ts",
  "node-http.ts",
  "chat-cluster.ts"
]
const uncovered = examples.filter((file) => !covered.includes(file))
report(uncovered.length === 0, `every shipped example is run here (not run: ${uncovered.join(", ") || "none"})`)

// The servers start together (each `npx tsx` takes seconds to start on a busy machine).
const freePort = () =>
  new Promise((resolve) => {
    const probe = net.createServer()
    probe.listen(0, "127.0.0.1", () => {
      const { port } = probe.address()
      probe.close(() => resolve(port))
    })
  })
const startRedis = async () => {
  const port = await freePort()
  const child = spawn(
    "redis-server",
    ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
    {
      stdio: "ignore",
      detached: true
    }
  )
  groups.add(child.pid)
  await bounded(
    new Promise((resolve) => {
      const attempt = () => {
        const socket = net.connect(port, "127.0.0.1")
        socket.once("connect", () => {
          socket.destroy()
          resolve()
        })
        socket.once("error", () => setTimeout(attempt, 20))
      }
      attempt()
    }),
    `redis-server listening on ${port}`
  )
  return `redis://127.0.0.1:${port}`
}
const settle = (promise) =>
  promise.then(
    (value) => ({ value }),
    (error) => ({ error })
  )
const redisUrl = hasRedis ? await settle(startRedis()) : undefined
const servers = Object.fromEntries(
  await Promise.all(
    [
      ["echo", server("echo-server.ts")],
      ["chatRoom", server("chat-room.ts")],
      ["auth", server("auth-server.ts")],
      ["httpRouter", server("http-router.ts")],
      ["nodeHttp", server("node-http.ts")],
      ...(redisUrl?.value === undefined
        ? []
        : [
            ["cluster1", server("chat-cluster.ts", { REDIS_URL: redisUrl.value })],
            ["cluster2", server("chat-cluster.ts", { REDIS_URL: redisUrl.value })]
          ])
    ].map(async ([key, promise]) => [key, await settle(promise)])
  )
)
const running = (key) => {
  const { value, error } = servers[key]
  if (error !== undefined) throw error
  return value
}

await step("examples/echo-server.ts echoes; client.ts runs against it and exits 0", async () => {
  const echo = running("echo")
  const uri = `ws://127.0.0.1:${echo.port}/`
  const ws = await open(uri)
  ws.socket.send("echo me")
  const [reply] = await ws.messages(1)
  if (reply !== "echo me") throw new Error(`echoed ${JSON.stringify(reply)}`)
  ws.close()
  const client = npxTsx("client.ts", [uri])
  const { code } = await bounded(client.exited, "examples/client.ts ending")
  const output = client.output()
  if (
    code !== 0 ||
    !output.includes("< Hello world!") ||
    !output.includes("< 4 bytes") ||
    !/Ping round trip: \d+\.\d ms/.test(output)
  )
    throw new Error(`client.ts exited ${code}:\n${output}`)
  return output.trim().split("\n").join(" | ")
})

await step(
  "examples/reconnecting-client.ts connects to echo-server.ts; Ctrl-C on the server closes with 1001, ends its processes, and the client says so and retries",
  async () => {
    const echo = running("echo")
    const uri = `ws://127.0.0.1:${echo.port}/`
    const reconnecting = npxTsx("reconnecting-client.ts", [uri])
    await reconnecting.waitFor(/Connected\.\n< tick\n/)
    const ws = await open(uri)
    await echo.stop("SIGINT")
    const code = await bounded(ws.closed, "the echo server's close")
    if (code !== 1001) throw new Error(`closed with ${code}`)
    await reconnecting.waitFor(/Disconnected \(close code 1001\)\./)
    await reconnecting.waitFor(/Connection failed: .*ECONNREFUSED/)
    await reconnecting.stop("SIGINT")
  }
)

await step("examples/chat-room.ts announces joins and broadcasts with the sender's name", async () => {
  const { port } = running("chatRoom")
  const alice = await open(`ws://127.0.0.1:${port}/?name=alice`)
  await alice.messages(1)
  const bob = await open(`ws://127.0.0.1:${port}/?name=bob`)
  const expectations = [
    [await alice.messages(2), ["* alice joined (1 online)", "* bob joined (2 online)"]],
    [await bob.messages(1), ["* bob joined (2 online)"]]
  ]
  alice.socket.send("hi")
  expectations.push([await bob.messages(2), ["* bob joined (2 online)", "alice: hi"]])
  for (const [got, expected] of expectations)
    if (JSON.stringify(got) !== JSON.stringify(expected)) throw new Error(`got ${JSON.stringify(got)}`)
  alice.close()
  bob.close()
})

await step("examples/auth-server.ts refuses a client without credentials with 401 and greets alice", async () => {
  const { port } = running("auth")
  const refused = await open(`ws://127.0.0.1:${port}/`).then(
    () => "opened",
    (error) => error.message
  )
  if (refused !== "HTTP 401") throw new Error(`without credentials: ${refused}`)
  const alice = await open(`ws://alice:s3cret@127.0.0.1:${port}/`)
  const [greeting] = await alice.messages(1)
  if (greeting !== "Hello alice!") throw new Error(`greeted ${JSON.stringify(greeting)}`)
  alice.close()
})

for (const [key, name] of [
  ["httpRouter", "http-router.ts"],
  ["nodeHttp", "node-http.ts"]
]) {
  await step(
    `examples/${name}: /health, 426 on a plain GET of /ws and /chat, compressed echo (text, binary, 2 MiB), the chat relay, SIGTERM closing with 1001 and ending its processes`,
    async () => {
      const example = running(key)
      const base = `127.0.0.1:${example.port}`
      const health = await bounded(fetch(`http://${base}/health`), "GET /health")
      const body = await health.text()
      if (health.status !== 200 || body !== "ok" || !/^text\/plain/.test(health.headers.get("content-type") ?? ""))
        throw new Error(`GET /health: ${health.status} ${health.headers.get("content-type")} ${body}`)
      for (const path of ["/ws", "/chat"]) {
        const plain = await bounded(fetch(`http://${base}${path}`), `GET ${path}`)
        await plain.arrayBuffer()
        if (plain.status !== 426 || plain.headers.get("upgrade") !== "websocket")
          throw new Error(`plain GET ${path}: ${plain.status} upgrade ${plain.headers.get("upgrade")}`)
      }
      const echo = await open(`ws://${base}/ws`, { perMessageDeflate: true, maxPayload: 64 << 20 })
      if (echo.socket.extensions !== "permessage-deflate") throw new Error(`extensions: ${echo.socket.extensions}`)
      const sent = ["hello", Buffer.from([0, 1, 255]), "x".repeat(2 << 20)]
      for (const message of sent) echo.socket.send(message)
      const echoed = await echo.messages(sent.length)
      sent.forEach((message, i) => {
        if (!same(echoed[i], message)) throw new Error(`echo ${i}: ${String(echoed[i]).slice(0, 40)}`)
      })
      const [alice, bob, carol] = await Promise.all([1, 2, 3].map(() => open(`ws://${base}/chat`)))
      alice.socket.send("hi from alice")
      const relayed = [...(await bob.messages(1)), ...(await carol.messages(1))]
      bob.socket.send("hi from bob")
      const [toAlice] = await alice.messages(1)
      if (JSON.stringify([...relayed, toAlice]) !== JSON.stringify(["hi from alice", "hi from alice", "hi from bob"]))
        throw new Error(`relayed ${JSON.stringify([...relayed, toAlice])}`)
      await example.stop("SIGTERM")
      const codes = await Promise.all([echo, alice, bob, carol].map((ws) => bounded(ws.closed, "a close on SIGTERM")))
      if (codes.some((code) => code !== 1001)) throw new Error(`closed with ${codes.join(", ")}`)
    }
  )
}

if (!hasRedis) {
  report(true, "examples/chat-cluster.ts not run: no redis-server on PATH")
} else {
  await step(
    "examples/chat-cluster.ts: two processes on one redis-server relay a message to both (sender included); SIGTERM closes with 1001 and ends their processes",
    async () => {
      if (redisUrl.error !== undefined) throw redisUrl.error
      const one = running("cluster1")
      const two = running("cluster2")
      const a = await open(`ws://127.0.0.1:${one.port}/chat`)
      const b = await open(`ws://127.0.0.1:${two.port}/chat`)
      // Each subscribes when its connection opens: a message from b reaching a says both are.
      let ready = false
      const ping = async () => {
        for (let i = 0; !ready; i++) {
          b.socket.send(`ready? ${i}`)
          await new Promise((resolve) => setTimeout(resolve, 100))
        }
      }
      const pinging = ping()
      await bounded(
        new Promise((resolve) => {
          const wake = () => a.received.some((m) => String(m).startsWith("ready?")) && resolve()
          a.socket.on("message", wake)
          wake()
        }),
        "a message of process two reaching process one"
      )
      ready = true
      await pinging
      const aCount = a.received.length
      const bCount = b.received.length
      a.socket.send("hello from a")
      const [toA, toB] = await Promise.all([
        bounded(
          new Promise((resolve) => {
            const wake = () => a.received.slice(aCount).includes("hello from a") && resolve(true)
            a.socket.on("message", wake)
            wake()
          }),
          "hello from a reaching a"
        ),
        bounded(
          new Promise((resolve) => {
            const wake = () => b.received.slice(bCount).includes("hello from a") && resolve(true)
            b.socket.on("message", wake)
            wake()
          }),
          "hello from a reaching b"
        )
      ])
      if (!toA || !toB) throw new Error("hello from a was not relayed")
      await Promise.all([one.stop("SIGTERM"), two.stop("SIGTERM")])
      const codes = await Promise.all([a, b].map((ws) => bounded(ws.closed, "a close on SIGTERM")))
      if (codes.some((code) => code !== 1001)) throw new Error(`closed with ${codes.join(", ")}`)
    }
  )
}

report(true, `the examples ran with npx tsx in ${((Date.now() - started) / 1000).toFixed(1)} s`)
killAll()
process.exit(failed === 0 ? 0 : 1)
