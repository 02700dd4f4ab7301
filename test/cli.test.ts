/**
 * The `effect-websockets` command line, run as users run it: `node dist/bin/cli.js` in a child
 * process (built once in `beforeAll` when dist is missing or older than src), talking to our own
 * server and client over loopback. Plus the pure formatting helpers of `src/internal/cli.ts`.
 */
import { type ChildProcess, execFileSync, spawn } from "node:child_process"
import { existsSync, mkdtempSync, readdirSync, rmSync, statSync } from "node:fs"
import * as net from "node:net"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import { stripVTControlCharacters } from "node:util"
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"
import * as Client from "../src/Client.js"
import { ConnectFailed, ConnectionClosedError, InvalidURI, ListenFailed } from "../src/Errors.js"
import {
  BINARY_HEX_LIMIT,
  formatAddress,
  formatClose,
  formatError,
  formatListenAddress,
  formatMessage,
  toConnectOptions
} from "../src/internal/cli.js"
import { DEFAULT_HOST, DEFAULT_PORT, HELP, parseArgs, parseHeaderOption, UsageError } from "../src/internal/cliArgs.js"
import * as Server from "../src/Server.js"
import type { WebSocket } from "../src/WebSocket.js"

const ROOT = fileURLToPath(new URL("..", import.meta.url))
const CLI = join(ROOT, "dist", "bin", "cli.js")
const BUILD_TIMEOUT_MILLIS = 120_000
/**
 * Bounds every wait on a child process: a hang is a failure with the output so far, never a stuck
 * run. Generous because each process loads Effect (about 0.5 s of CPU) and CI machines are small.
 */
const WAIT_MILLIS = 15_000
/** Bound of each test that runs the executable (several processes in sequence). */
const PROCESS_TEST_MILLIS = 45_000

// ---------------------------------------------------------------------------
// Building dist when needed
// ---------------------------------------------------------------------------

const newestMtime = (dir: string): number => {
  let newest = 0
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name)
    newest = Math.max(newest, entry.isDirectory() ? newestMtime(path) : statSync(path).mtimeMs)
  }
  return newest
}

beforeAll(() => {
  const built = [CLI, join(ROOT, "dist", "bin", "main.js")]
  const stale = built.some((file) => !existsSync(file) || statSync(file).mtimeMs < newestMtime(join(ROOT, "src")))
  if (!stale) return
  try {
    execFileSync(
      process.execPath,
      [join(ROOT, "node_modules", "typescript", "bin", "tsc"), "-p", "tsconfig.build.json"],
      {
        cwd: ROOT,
        stdio: "pipe",
        timeout: BUILD_TIMEOUT_MILLIS
      }
    )
  } catch {
    // Type errors elsewhere in src do not stop tsc from emitting; what matters is the CLI below.
  }
  // The commands themselves, bundled (as `npm run build` does).
  execFileSync(process.execPath, [join(ROOT, "scripts", "build-cli.mjs")], {
    cwd: ROOT,
    stdio: "pipe",
    timeout: BUILD_TIMEOUT_MILLIS
  })
  if (!built.every(existsSync)) throw new Error(`building ${built.join(", ")} failed: run npm run build`)
}, BUILD_TIMEOUT_MILLIS + 10_000)

// ---------------------------------------------------------------------------
// Child processes
// ---------------------------------------------------------------------------

interface Exited {
  readonly code: number | null
  readonly signal: NodeJS.Signals | null
}

interface CliProcess {
  readonly child: ChildProcess
  readonly stdout: () => string
  readonly stderr: () => string
  /** Resolves with the first match of `pattern` in stdout (or stderr); rejects with the output on timeout or exit. */
  readonly waitFor: (pattern: RegExp, stream?: "stdout" | "stderr") => Promise<RegExpMatchArray>
  /** Resolves when the process exits; rejects after WAIT_MILLIS. */
  readonly exited: () => Promise<Exited>
}

const running = new Set<ChildProcess>()
afterAll(() => {
  for (const child of running) child.kill("SIGKILL")
})

const spawnCli = (args: ReadonlyArray<string>): CliProcess => {
  const child = spawn(process.execPath, [CLI, ...args], { cwd: ROOT, stdio: ["pipe", "pipe", "pipe"] })
  running.add(child)
  const output = { stdout: "", stderr: "" }
  const listeners = new Set<() => void>()
  const notify = () => {
    for (const listener of [...listeners]) listener()
  }
  child.stdout!.setEncoding("utf8").on("data", (chunk: string) => {
    output.stdout += chunk
    notify()
  })
  child.stderr!.setEncoding("utf8").on("data", (chunk: string) => {
    output.stderr += chunk
    notify()
  })
  // A child that already exited makes writes to its stdin fail with EPIPE: not the test's concern.
  child.stdin!.on("error", () => {})
  let exit: Exited | undefined
  const exitPromise = new Promise<Exited>((resolve) =>
    child.on("exit", (code, signal) => {
      running.delete(child)
      exit = { code, signal }
      // Let the last output chunks arrive before settling.
      setImmediate(() => {
        notify()
        resolve({ code, signal })
      })
    })
  )
  const describeState = () => `stdout:\n${output.stdout}\nstderr:\n${output.stderr}`
  const waitFor = (pattern: RegExp, stream: "stdout" | "stderr" = "stdout") =>
    new Promise<RegExpMatchArray>((resolve, reject) => {
      const check = () => {
        const match = output[stream].match(pattern)
        if (match !== null) {
          done()
          resolve(match)
        } else if (exit !== undefined) {
          done()
          reject(new Error(`process exited (${exit.code}) before ${pattern} in ${stream}\n${describeState()}`))
        }
      }
      const timer = setTimeout(() => {
        done()
        reject(new Error(`timed out waiting for ${pattern} in ${stream}\n${describeState()}`))
      }, WAIT_MILLIS)
      const done = () => {
        clearTimeout(timer)
        listeners.delete(check)
      }
      listeners.add(check)
      check()
    })
  const exited = () =>
    new Promise<Exited>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`process did not exit\n${describeState()}`)), WAIT_MILLIS)
      exitPromise.then((value) => {
        clearTimeout(timer)
        resolve(value)
      })
    })
  return { child, stdout: () => output.stdout, stderr: () => output.stderr, waitFor, exited }
}

/** A TCP port with nothing listening on it (bound, then released). */
const freePort = () =>
  new Promise<number>((resolve, reject) => {
    const server = net.createServer()
    server.once("error", reject)
    server.listen(0, "127.0.0.1", () => {
      const address = server.address() as net.AddressInfo
      server.close(() => resolve(address.port))
    })
  })

/** Runs `body` with one of our servers on 127.0.0.1 (port 0) running `handler`. */
const withServer = <A>(
  handler: Server.Handler<never, never>,
  options: Server.ServeOptions,
  body: (uri: string) => Promise<A>
): Promise<A> =>
  Effect.runPromise(
    Effect.scoped(
      Effect.gen(function* () {
        const server = yield* Server.serve(handler, { host: "127.0.0.1", port: 0, ...options })
        const port = server.address._tag === "TcpAddress" ? server.address.port : 0
        return yield* Effect.promise(() => body(`ws://127.0.0.1:${port}/`))
      })
    )
  )

/** One round trip through a server with our own client: what came back for `message`. */
const roundTrip = (connect: Effect.Effect<WebSocket, unknown, Scope.Scope>, message: string | Uint8Array) =>
  Effect.runPromise(
    Effect.scoped(
      Effect.gen(function* () {
        const ws = yield* connect
        yield* ws.send(message)
        return yield* ws.recv
      })
    ).pipe(Effect.timeout(Duration.millis(WAIT_MILLIS)))
  )

const lines = (text: string): Array<string> => text.split("\n").filter((line) => line !== "")

// ---------------------------------------------------------------------------
// The executable
// ---------------------------------------------------------------------------

describe.concurrent("effect-websockets executable", { timeout: PROCESS_TEST_MILLIS }, () => {
  it("--help describes the client, the serve subcommand and every option", async () => {
    const cli = spawnCli(["--help"])
    expect(await cli.exited()).toEqual({ code: 0, signal: null })
    const help = cli.stdout()
    // Plain text: no colours in a pipe (nor anywhere), and only our options.
    expect(stripVTControlCharacters(help)).toBe(help)
    expect(help).toBe(HELP)
    expect(cli.stderr()).toBe("")
    for (const boilerplate of ["--wizard", "--completions", "A user-defined piece of text"]) {
      expect(help).not.toContain(boilerplate)
    }
    for (const option of [
      "<uri>",
      "--subprotocol",
      "--header",
      "--origin",
      "--no-compression",
      "--max-size",
      "--ping-interval",
      "serve",
      "--host",
      "--port",
      "--unix",
      "--workers"
    ]) {
      expect(help).toContain(option)
    }
  })

  it("serve echoes both types, logs connections, and SIGTERM closes clients with 1001 then exits 0", async () => {
    const server = spawnCli(["serve", "--port", "0"])
    const [, uri, port] = await server.waitFor(/Listening on (ws:\/\/127\.0\.0\.1:(\d+))\n/)

    // The CLI client: each stdin line goes out as a Text message and comes back with a `< ` prefix.
    const client = spawnCli([`${uri}/`])
    await client.waitFor(/Connected to ws:\/\/127\.0\.0\.1:\d+\/\.\n/)
    client.child.stdin!.write("hello\n")
    await client.waitFor(/< hello\n/)
    client.child.stdin!.write("héllo wörld\n")
    await client.waitFor(/< héllo wörld\n/)
    // EOF: the client closes with 1000 and exits 0.
    client.child.stdin!.end()
    expect(await client.exited()).toEqual({ code: 0, signal: null })
    expect(lines(client.stdout())).toEqual([
      `Connected to ${uri}/.`,
      "< hello",
      "< héllo wörld",
      "Connection closed: code 1000 (OK), no reason."
    ])
    expect(client.stderr()).toBe("")

    // Each message comes back with its type: bytes as Binary, strings as Text.
    const bytes = new Uint8Array([0, 1, 2, 0xfe, 0xff])
    expect(await roundTrip(Client.connect(`${uri}/`), bytes)).toEqual(bytes)
    expect(await roundTrip(Client.connect(`${uri}/`, { compression: null }), "text")).toBe("text")

    // A client still connected when the server receives SIGTERM gets 1001 and exits 0.
    await server.waitFor(/(Connection closed: .*\n[\s\S]*){3}/)
    const waiting = spawnCli([`ws://127.0.0.1:${port}/`])
    await waiting.waitFor(/Connected to/)
    await server.waitFor(/(Connection opened: .*\n[\s\S]*){4}/)
    server.child.kill("SIGTERM")
    expect(await waiting.exited()).toEqual({ code: 0, signal: null })
    expect(waiting.stdout()).toContain("Connection closed: code 1001 (going away), no reason.\n")
    expect(await server.exited()).toEqual({ code: 0, signal: null })

    const log = lines(server.stdout())
    expect(log[0]).toBe(`Listening on ${uri}`)
    expect(log.filter((line) => line.startsWith("Connection opened: 127.0.0.1:"))).toHaveLength(4)
    const closed = log.filter((line) => line.startsWith("Connection closed: 127.0.0.1:"))
    expect(closed).toHaveLength(4)
    expect(closed.filter((line) => line.endsWith("code 1000 (OK), no reason"))).toHaveLength(3)
    expect(closed.filter((line) => line.endsWith("code 1001 (going away), no reason"))).toHaveLength(1)
    // The library's connection lines, at Debug by default, are shown at Info by the CLI's server.
    const library = (message: string) => log.filter((line) => line.includes(`level=INFO`) && line.includes(message))
    expect(library('message="connection open"')).toHaveLength(4)
    expect(library('message="connection closed: ')).toHaveLength(4)
    expect(log.at(-1)).toBe("Server stopped.")
    expect(server.stderr()).toBe("")
  })

  it("client passes its options to the handshake, prints binary as hex, and exits 1 after a 4000 close", async () => {
    const handler = (ws: WebSocket) =>
      Effect.gen(function* () {
        const header = (name: string) => ws.requestHeaders.getFirst(name) ?? "none"
        yield* ws.send(
          `subprotocol=${ws.subprotocol} x-test=${header("X-Test")} origin=${header("Origin")} extensions=${header("Sec-WebSocket-Extensions")}`
        )
        yield* ws.send(new Uint8Array([1, 2, 0xff]))
        yield* ws.send(new Uint8Array(1000).fill(0xab))
        const line = yield* ws.recv
        yield* ws.send(`got ${String(line)}`)
        yield* ws.close(4000, "bye")
      }).pipe(Effect.orDie)
    await withServer(handler, { subprotocols: ["superchat"] }, async (uri) => {
      const cli = spawnCli([
        uri,
        "--subprotocol",
        "chat",
        "--subprotocol",
        "superchat",
        "--header",
        "X-Test: 42",
        "--origin",
        "http://example.com",
        "--no-compression",
        "--ping-interval",
        "0",
        "--max-size",
        "2000"
      ])
      await cli.waitFor(/< \(binary, 1000 bytes\)/)
      cli.child.stdin!.write("ping me\n")
      expect(await cli.exited()).toEqual({ code: 1, signal: null })
      expect(lines(cli.stdout())).toEqual([
        `Connected to ${uri}.`,
        "< subprotocol=superchat x-test=42 origin=http://example.com extensions=none",
        "< (binary) 0102ff",
        `< (binary, 1000 bytes) ${"ab".repeat(BINARY_HEX_LIMIT)}…`,
        "< got ping me",
        'Connection closed: code 4000 (private use), reason "bye".'
      ])
      expect(cli.stderr()).toBe('Error: ConnectionClosedError: received 4000 (private use); reason "bye"\n')
    })
  })

  it("client refused a connection prints one typed error line, no stack trace, and exits 1", async () => {
    const port = await freePort()
    const cli = spawnCli([`ws://127.0.0.1:${port}/`])
    expect(await cli.exited()).toEqual({ code: 1, signal: null })
    expect(cli.stdout()).toBe("")
    expect(cli.stderr()).toBe(
      `Error: ConnectFailed: cannot connect to 127.0.0.1:${port}: connect ECONNREFUSED 127.0.0.1:${port}\n`
    )
  })

  it("client with an invalid URI exits 1 with InvalidURI", async () => {
    const cli = spawnCli(["http://example.com/"])
    expect(await cli.exited()).toEqual({ code: 1, signal: null })
    expect(cli.stderr()).toBe("Error: InvalidURI: http://example.com/ isn't a valid URI: scheme isn't ws or wss\n")
  })

  it("client without a URI, with a malformed --header or an unknown option exits 2 with one line", async () => {
    const missing = spawnCli([])
    const malformed = spawnCli(["ws://127.0.0.1:1/", "--header", "no colon here"])
    const unknown = spawnCli(["--bogus"])
    expect(await missing.exited()).toEqual({ code: 2, signal: null })
    expect(missing.stderr()).toBe("Error: UsageError: missing <uri> argument (see effect-websockets --help)\n")
    expect(await malformed.exited()).toEqual({ code: 2, signal: null })
    expect(malformed.stderr()).toBe(
      'Error: UsageError: invalid --header "no colon here": expected "Name: value" (see effect-websockets --help)\n'
    )
    expect(await unknown.exited()).toEqual({ code: 2, signal: null })
    expect(unknown.stderr()).toBe("Error: UsageError: unknown option --bogus (see effect-websockets --help)\n")
    for (const cli of [missing, malformed, unknown]) expect(cli.stdout()).toBe("")
  })

  it("serve on a unix socket echoes, and SIGINT exits 0 and removes the socket file", async () => {
    const dir = mkdtempSync(join(tmpdir(), "effect-websockets-cli-"))
    try {
      const path = join(dir, "echo.sock")
      const server = spawnCli(["serve", "--unix", path, "--no-compression", "--max-size", "100"])
      await server.waitFor(new RegExp(`Listening on ${path.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}\n`))
      expect(await roundTrip(Client.unixConnect(path), "over unix")).toBe("over unix")
      server.child.kill("SIGINT")
      expect(await server.exited()).toEqual({ code: 0, signal: null })
      expect(server.stdout()).toMatch(/Connection opened: .*\n/)
      expect(existsSync(path)).toBe(false)
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })

  it("serve on a port in use prints one typed error line and exits 1", async () => {
    const busy = net.createServer()
    await new Promise<void>((resolve) => busy.listen(0, "127.0.0.1", resolve))
    try {
      const port = (busy.address() as net.AddressInfo).port
      const server = spawnCli(["serve", "--host", "127.0.0.1", "--port", String(port)])
      expect(await server.exited()).toEqual({ code: 1, signal: null })
      expect(server.stderr()).toBe(
        `Error: ListenFailed: cannot listen on 127.0.0.1:${port}: listen EADDRINUSE: address already in use 127.0.0.1:${port}\n`
      )
    } finally {
      busy.close()
    }
  })
})

// ---------------------------------------------------------------------------
// Formatting helpers
// ---------------------------------------------------------------------------

describe("cli formatting", () => {
  it("formatMessage prints text, short binary as hex and long binary as a size and a prefix", () => {
    expect(formatMessage("héllo")).toBe("< héllo")
    expect(formatMessage(new Uint8Array(0))).toBe("< (binary) ")
    expect(formatMessage(new Uint8Array([0, 0x7f, 0x80, 0xff]))).toBe("< (binary) 007f80ff")
    expect(formatMessage(new Uint8Array(BINARY_HEX_LIMIT).fill(1))).toBe(`< (binary) ${"01".repeat(BINARY_HEX_LIMIT)}`)
    const big = new Uint8Array(BINARY_HEX_LIMIT + 1).fill(2)
    expect(formatMessage(big)).toBe(`< (binary, ${BINARY_HEX_LIMIT + 1} bytes) ${"02".repeat(BINARY_HEX_LIMIT)}…`)
    // A view into a larger buffer prints only its own bytes.
    expect(formatMessage(new Uint8Array([9, 1, 2, 9]).subarray(1, 3))).toBe("< (binary) 0102")
  })

  it("formatClose names the code and quotes the reason", () => {
    expect(formatClose(1000, "")).toBe("code 1000 (OK), no reason")
    expect(formatClose(1001, undefined)).toBe("code 1001 (going away), no reason")
    expect(formatClose(4000, 'say "bye"')).toBe('code 4000 (private use), reason "say \\"bye\\""')
    expect(formatClose(undefined, undefined)).toBe("code 1006 (connection closed abnormally [internal]), no reason")
  })

  it("formatAddress and formatListenAddress bracket IPv6 and show unix paths", () => {
    expect(formatAddress({ _tag: "TcpAddress", hostname: "127.0.0.1", port: 8765 })).toBe("127.0.0.1:8765")
    expect(formatAddress({ _tag: "TcpAddress", hostname: "::1", port: 80 })).toBe("[::1]:80")
    expect(formatAddress({ _tag: "UnixAddress", path: "" })).toBe("unix socket")
    expect(formatAddress(undefined)).toBe("unknown peer")
    expect(formatListenAddress({ _tag: "TcpAddress", hostname: "::", port: 8765 })).toBe("ws://[::]:8765")
    expect(formatListenAddress({ _tag: "UnixAddress", path: "/tmp/ws.sock" })).toBe("/tmp/ws.sock")
  })

  it("parseHeaderOption splits on the first colon and trims, and refuses a missing or invalid name", () => {
    expect(parseHeaderOption("X-Test: 42")).toEqual(["X-Test", "42"])
    expect(parseHeaderOption("Authorization:Basic a:b")).toEqual(["Authorization", "Basic a:b"])
    expect(parseHeaderOption("X-Empty:")).toEqual(["X-Empty", ""])
    for (const bad of ["no colon", ": value", "Bad Name: x", "Bad\u00e9: x"]) {
      expect(() => parseHeaderOption(bad)).toThrow(UsageError)
    }
  })

  it("formatError prints one line with the tag, and the cause of socket errors", () => {
    const refused = new ConnectFailed({ address: "127.0.0.1:1", cause: new Error("connect ECONNREFUSED 127.0.0.1:1") })
    expect(formatError(refused)).toBe(
      "Error: ConnectFailed: cannot connect to 127.0.0.1:1: connect ECONNREFUSED 127.0.0.1:1"
    )
    const inUse = new ListenFailed({ address: "::1:80", cause: new Error("listen EADDRINUSE") })
    expect(formatError(inUse)).toBe("Error: ListenFailed: cannot listen on ::1:80: listen EADDRINUSE")
    expect(formatError(new InvalidURI({ uri: "x", detail: "bad" }))).toBe("Error: InvalidURI: x isn't a valid URI: bad")
    expect(formatError(new ConnectionClosedError({ code: 1011, reason: "" }))).toBe(
      "Error: ConnectionClosedError: received 1011 (unexpected error); no reason"
    )
    expect(formatError(new TypeError("two\nlines"))).toBe("Error: TypeError: two lines")
    expect(formatError("boom")).toBe("Error: boom")
  })

  it("toConnectOptions maps the command line onto connect options", () => {
    const base = { uri: "ws://x/", subprotocols: [], headers: [], noCompression: false }
    expect(toConnectOptions(base)).toEqual({ subprotocols: [], extraHeaders: [], compression: "deflate" })
    const options = toConnectOptions({
      ...base,
      subprotocols: ["chat"],
      headers: [["X-A", "1"]],
      origin: "http://o",
      noCompression: true,
      maxSize: 0,
      pingInterval: 0
    })
    expect(options).toEqual({
      subprotocols: ["chat"],
      extraHeaders: [["X-A", "1"]],
      origin: "http://o",
      compression: null,
      maxSize: null,
      pingInterval: null
    })
    const timed = toConnectOptions({ ...base, maxSize: 10, pingInterval: 1.5 })
    expect(timed.maxSize).toBe(10)
    expect(Duration.toMillis(timed.pingInterval as Duration.Duration)).toBe(1500)
  })
})

describe("cli arguments", () => {
  it("parseArgs reads the client's options, repeated ones in order, with a space or an =", () => {
    expect(parseArgs(["ws://h/"])).toEqual({
      _tag: "Client",
      args: {
        uri: "ws://h/",
        subprotocols: [],
        headers: [],
        origin: undefined,
        noCompression: false,
        maxSize: undefined,
        pingInterval: undefined
      }
    })
    expect(
      parseArgs([
        "--subprotocol=a",
        "ws://h/",
        "--subprotocol",
        "b",
        "--header",
        "X: 1",
        "--origin=http://o",
        "--no-compression",
        "--max-size",
        "0",
        "--ping-interval",
        "0.5"
      ])
    ).toEqual({
      _tag: "Client",
      args: {
        uri: "ws://h/",
        subprotocols: ["a", "b"],
        headers: [["X", "1"]],
        origin: "http://o",
        noCompression: true,
        maxSize: 0,
        pingInterval: 0.5
      }
    })
    expect(parseArgs(["--", "-odd-uri"])).toMatchObject({ _tag: "Client", args: { uri: "-odd-uri" } })
  })

  it("parseArgs reads serve's options with their defaults, and help and version anywhere", () => {
    expect(parseArgs(["serve"])).toEqual({
      _tag: "Serve",
      args: {
        host: DEFAULT_HOST,
        port: DEFAULT_PORT,
        unix: undefined,
        noCompression: false,
        maxSize: undefined,
        subprotocols: [],
        workers: 0
      }
    })
    expect(
      parseArgs(["serve", "--host", "::", "--port=0", "--unix", "/tmp/s", "--subprotocol", "chat", "--workers", "2"])
    ).toEqual({
      _tag: "Serve",
      args: {
        host: "::",
        port: 0,
        unix: "/tmp/s",
        noCompression: false,
        maxSize: undefined,
        subprotocols: ["chat"],
        workers: 2
      }
    })
    expect(parseArgs(["--help"])).toEqual({ _tag: "Help" })
    expect(parseArgs(["serve", "-h"])).toEqual({ _tag: "Help" })
    expect(parseArgs(["ws://h/", "--version"])).toEqual({ _tag: "Version" })
  })

  it("parseArgs refuses unknown options, options of the other command, bad numbers and extra arguments", () => {
    const refused = (argv: ReadonlyArray<string>) => {
      try {
        parseArgs(argv)
      } catch (error) {
        expect(error).toBeInstanceOf(UsageError)
        return (error as UsageError).message
      }
      throw new Error(`accepted ${argv.join(" ")}`)
    }
    expect(refused(["--bogus"])).toBe("unknown option --bogus (see effect-websockets --help)")
    expect(refused(["ws://h/", "--port", "1"])).toBe("--port is an option of serve only (see effect-websockets --help)")
    expect(refused(["serve", "--origin", "x"])).toBe(
      "--origin is an option of the client only (see effect-websockets --help)"
    )
    expect(refused(["ws://h/", "--max-size", "-1"])).toBe(
      '--max-size expects a non-negative integer, not "-1" (see effect-websockets --help)'
    )
    expect(refused(["ws://h/", "--ping-interval", "soon"])).toContain("--ping-interval expects a non-negative number")
    expect(refused(["serve", "--port", "70000"])).toContain("--port expects a port number")
    expect(refused(["ws://h/", "--origin"])).toBe("--origin needs a value (see effect-websockets --help)")
    expect(refused(["ws://a/", "ws://b/"])).toBe('unexpected argument "ws://b/" (see effect-websockets --help)')
    expect(refused(["serve", "extra"])).toBe('unexpected argument "extra" (see effect-websockets --help)')
    expect(refused(["--no-compression=yes", "ws://h/"])).toBe(
      "--no-compression takes no value (see effect-websockets --help)"
    )
  })
})
