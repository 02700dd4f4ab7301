/**
 * The `effect-websockets` command line (Python's `python -m websockets <uri>`, plus an echo server):
 * the interactive client, the echo server, the one-line error reports and the runtime that runs
 * them. The arguments are parsed by `./cliArgs.js`; `src/bin/cli.ts` loads this module only once
 * there is a command to run.
 *
 * @internal
 */
import { rmSync, statSync } from "node:fs"
import * as readline from "node:readline"
import * as Cause from "effect/Cause"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Exit from "effect/Exit"
import * as Option from "effect/Option"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import * as Client from "../Client.js"
import { closeCodeName, isConnectionClosed } from "../Errors.js"
import * as Server from "../Server.js"
import type { Address, Data, WebSocket } from "../WebSocket.js"
import * as Workers from "../Workers.js"
import { type ClientArgs, EXIT_FAILURE, EXIT_OK, EXIT_USAGE, type ServeArgs, UsageError } from "./cliArgs.js"

// ---------------------------------------------------------------------------
// Constants
// ---------------------------------------------------------------------------

/** Binary messages up to this size are printed in full as hex; larger ones as a size and a hex prefix. */
export const BINARY_HEX_LIMIT = 64

/**
 * Once the program is done, give the event loop this long to drain (stdout, sockets) before forcing
 * the exit: a stray handle (a TTY stdin, say) must not keep a finished CLI alive.
 */
const FORCED_EXIT_DELAY_MILLIS = 1000

// ---------------------------------------------------------------------------
// Formatting (pure, unit-tested)
// ---------------------------------------------------------------------------

/** How a received message is printed: `< text`, or `< (binary) hex` / a size summary. */
export const formatMessage = (message: Data): string => {
  if (typeof message === "string") return `< ${message}`
  const hex = Buffer.from(message.buffer, message.byteOffset, message.byteLength)
  if (message.byteLength <= BINARY_HEX_LIMIT) return `< (binary) ${hex.toString("hex")}`
  return `< (binary, ${message.byteLength} bytes) ${hex.subarray(0, BINARY_HEX_LIMIT).toString("hex")}…`
}

/** `code 1000 (OK), no reason` / `code 4000 (private use), reason "bye"`. */
export const formatClose = (code: number | undefined, reason: string | undefined): string => {
  // No code once closed means no close frame at all: 1006 (RFC 6455 §7.1.5).
  const c = code ?? 1006
  const r = reason === undefined || reason === "" ? "no reason" : `reason ${JSON.stringify(reason)}`
  return `code ${c} (${closeCodeName(c)}), ${r}`
}

/** `host:port` (IPv6 in brackets, RFC 3986 §3.2.2) or the unix socket path. */
export const formatAddress = (address: Address | undefined): string => {
  if (address === undefined) return "unknown peer"
  if (address._tag === "UnixAddress") return address.path === "" ? "unix socket" : address.path
  const host = address.hostname.includes(":") ? `[${address.hostname}]` : address.hostname
  return `${host}:${address.port}`
}

/** What `serve` prints once it accepts connections: `ws://HOST:PORT`, or the unix socket path. */
export const formatListenAddress = (address: Address): string =>
  address._tag === "UnixAddress" ? address.path : `ws://${formatAddress(address)}`

const oneLine = (text: string): string => text.replace(/\s*[\r\n]+\s*/g, " ").trim()

const causeMessage = (cause: unknown): string | undefined =>
  cause instanceof Error && cause.message !== "" ? cause.message : undefined

/**
 * The one-line report of a failure: `Error: <tag>: <message>`, never a stack trace; the message of
 * the cause is added when the error's own does not include it.
 */
export const formatError = (error: unknown): string => {
  if (typeof error === "object" && error !== null && "_tag" in error && typeof error._tag === "string") {
    const cause = "cause" in error ? causeMessage(error.cause) : undefined
    let message = error instanceof Error ? error.message : String(error)
    if (cause !== undefined && !message.includes(cause)) message = `${message}: ${cause}`
    return oneLine(`Error: ${error._tag}: ${message}`)
  }
  if (error instanceof Error) return oneLine(`Error: ${error.name}: ${error.message}`)
  return oneLine(`Error: ${String(error)}`)
}

// ---------------------------------------------------------------------------
// Terminal: stdin lines and stdout printing that does not garble what the user is typing
// ---------------------------------------------------------------------------

interface Terminal {
  readonly print: (line: string) => Effect.Effect<void>
  /** Prints the last line: no prompt after it. */
  readonly printLast: (line: string) => Effect.Effect<void>
  /** Lines typed on (or piped into) stdin; ends at EOF. */
  readonly lines: Stream.Stream<string, unknown>
}

const PROMPT = "> "

const makeTerminal: Effect.Effect<Terminal, never, Scope.Scope> = Effect.acquireRelease(
  Effect.sync(() => {
    const interactive = process.stdin.isTTY === true && process.stdout.isTTY === true
    const rl = readline.createInterface({
      input: process.stdin,
      ...(interactive ? { output: process.stdout, prompt: PROMPT } : {}),
      terminal: interactive
    })
    // Ctrl-C in a terminal reaches readline, not the process: forward it so that the runtime
    // interrupts the program and the connection closes normally.
    rl.on("SIGINT", () => process.kill(process.pid, "SIGINT"))
    // Created at once so that no line typed before the first read is lost.
    const iterator = rl[Symbol.asyncIterator]()
    if (interactive) rl.prompt()
    let done = false
    const write = (line: string, last: boolean) =>
      Effect.sync(() => {
        if (!interactive) return void process.stdout.write(`${line}\n`)
        // Print above the prompt, then redraw the prompt and what was typed so far.
        readline.cursorTo(process.stdout, 0)
        readline.clearLine(process.stdout, 0)
        process.stdout.write(`${line}\n`)
        done ||= last
        if (!done) rl.prompt(true)
      })
    const lines = Stream.fromAsyncIterable({ [Symbol.asyncIterator]: () => iterator }, (e) => e)
    return {
      rl,
      terminal: {
        print: (line) => write(line, false),
        printLast: (line) => write(line, true),
        lines
      } satisfies Terminal
    }
  }),
  ({ rl }) =>
    Effect.sync(() => {
      rl.close()
      // A paused stdin (TTY or pipe) may still hold the event loop open.
      process.stdin.destroy()
    })
).pipe(Effect.map(({ terminal }) => terminal))

// ---------------------------------------------------------------------------
// Client
// ---------------------------------------------------------------------------

/** `--max-size 0` disables the limit (Python's `max_size=None`). */
const toMaxSize = (maxSize: number | undefined): { maxSize?: number | null } =>
  maxSize === undefined ? {} : { maxSize: maxSize > 0 ? maxSize : null }

/** Builds the options of `Client.connect` from the command line. */
export const toConnectOptions = (args: ClientArgs): Client.ConnectOptions => ({
  subprotocols: args.subprotocols,
  extraHeaders: args.headers,
  ...(args.origin === undefined ? {} : { origin: args.origin }),
  compression: args.noCompression ? null : "deflate",
  ...toMaxSize(args.maxSize),
  // `--ping-interval 0` disables keepalive pings.
  ...(args.pingInterval === undefined
    ? {}
    : { pingInterval: args.pingInterval > 0 ? Duration.millis(args.pingInterval * 1000) : null })
})

/**
 * The interactive client: connects, sends each stdin line as a Text message, prints each message
 * received, closes with 1000 at EOF, and prints the close code and reason. Fails with
 * ConnectionClosedError after an abnormal closure, so that the exit status is non-zero.
 */
export const runClient = (args: ClientArgs) =>
  Effect.scoped(
    Effect.gen(function* () {
      const ws = yield* Client.connect(args.uri, toConnectOptions(args))
      const terminal = yield* makeTerminal
      yield* terminal.print(`Connected to ${args.uri}.`)
      const printClose = Effect.suspend(() =>
        terminal.printLast(`Connection closed: ${formatClose(ws.closeCode, ws.closeReason)}.`)
      )
      // Sender: once stdin ends, start the closing handshake (RFC 6455 §7.1.2); a send that fails
      // because the connection closed is reported by the receiver below.
      yield* terminal.lines.pipe(
        Stream.runForEach((line) => ws.send(line)),
        Effect.zipRight(ws.close(1000)),
        Effect.ignore,
        Effect.forkScoped
      )
      const received = yield* Stream.runForEach(ws.messages, (message) => terminal.print(formatMessage(message))).pipe(
        Effect.either,
        // Ctrl-C / SIGTERM: close normally (1000) and still report how the connection ended.
        Effect.onInterrupt(() => ws.close().pipe(Effect.zipRight(printClose)))
      )
      yield* ws.waitClosed
      yield* printClose
      if (Either.isLeft(received)) return yield* Effect.fail(received.left)
    })
  )

// ---------------------------------------------------------------------------
// Echo server
// ---------------------------------------------------------------------------

// Each worker of `serve --workers` prefixes its lines, which interleave on the shared stdout.
const linePrefix = Workers.isWorker() ? `[worker ${process.pid}] ` : ""
const log = (line: string) => Effect.sync(() => process.stdout.write(`${linePrefix}${line}\n`))

/** Sends every message back with its type; logs the connection opening and closing. */
export const echoHandler = (ws: WebSocket): Effect.Effect<void> => {
  const peer = formatAddress(ws.remoteAddress)
  const subprotocol = ws.subprotocol === undefined ? "" : `, subprotocol ${ws.subprotocol}`
  return log(`Connection opened: ${peer} (id ${ws.id}${subprotocol})`).pipe(
    Effect.zipRight(ws.forEachMessage((message) => ws.send(message))),
    // How the connection ended is logged below; an error close is not a handler failure.
    Effect.catchIf(isConnectionClosed, () => Effect.void),
    Effect.catchAll((error) => log(`Connection ${ws.id}: ${formatError(error)}`)),
    Effect.ensuring(
      ws.waitClosed.pipe(
        Effect.timeout(Duration.seconds(30)),
        Effect.ignore,
        Effect.zipRight(
          Effect.suspend(() =>
            log(`Connection closed: ${peer} (id ${ws.id}): ${formatClose(ws.closeCode, ws.closeReason)}`)
          )
        )
      )
    )
  )
}

/** Removes the unix socket file we created, so that the next run can bind it again. */
const removeSocketFile = (path: string) =>
  Effect.sync(() => {
    try {
      if (statSync(path).isSocket()) rmSync(path)
    } catch {
      // Already gone.
    }
  })

/**
 * The echo server: runs until SIGINT/SIGTERM interrupts it; the scope then closes the server,
 * which closes every connection with 1001 (going away, RFC 6455 §7.4.1).
 */
export const runServer = (args: ServeArgs) => Workers.run(echoServer(args), { workers: args.workers })

const echoServer = (args: ServeArgs) =>
  Effect.scoped(
    Effect.gen(function* () {
      yield* Effect.addFinalizer(() => log("Server stopped."))
      const unix = args.unix
      if (unix !== undefined) yield* Effect.addFinalizer(() => removeSocketFile(unix))
      const server = yield* Server.serve(echoHandler, {
        ...(unix !== undefined ? { unix } : { host: args.host, port: args.port }),
        compression: args.noCompression ? null : "deflate",
        ...toMaxSize(args.maxSize),
        subprotocols: args.subprotocols,
        // As a server run by `python -m websockets`-style tools with logging set up: the library's
        // `connection open` / `connection closed` lines are shown (they are at Debug by default).
        connectionLogLevel: "Info"
      })
      yield* log(`Listening on ${formatListenAddress(server.address)}`)
      yield* server.waitClosed
    })
  )

// ---------------------------------------------------------------------------
// Running a command
// ---------------------------------------------------------------------------

/** The exit status for an exit of a command, printing the one-line report of a failure. */
export const reportExit = (exit: Exit.Exit<unknown, unknown>): number => {
  if (Exit.isSuccess(exit)) return EXIT_OK
  // Ctrl-C / SIGTERM: the program shut down as asked.
  if (Cause.isInterruptedOnly(exit.cause)) return EXIT_OK
  const failure = Cause.failureOption(exit.cause)
  const error = Option.isSome(failure) ? failure.value : Cause.squash(exit.cause)
  process.stderr.write(`${formatError(error)}\n`)
  return error instanceof UsageError ? EXIT_USAGE : EXIT_FAILURE
}

/**
 * Runs the client or the echo server until it ends, or until SIGINT/SIGTERM interrupts it (its
 * scope then closes the connections normally), and exits with {@link reportExit}'s status.
 */
export const main = (
  command: { readonly _tag: "Client"; readonly args: ClientArgs } | { readonly _tag: "Serve"; readonly args: ServeArgs }
): void => {
  const program: Effect.Effect<void, unknown> =
    command._tag === "Client" ? runClient(command.args) : runServer(command.args)
  const fiber = Effect.runFork(program)
  // A fiber waiting on a Deferred holds no handle: keep the process alive until the program ends.
  const keepAlive = setInterval(() => {}, 2 ** 31 - 1)
  const interrupt = () => fiber.unsafeInterruptAsFork(fiber.id())
  process.once("SIGINT", interrupt)
  process.once("SIGTERM", interrupt)
  fiber.addObserver((exit) => {
    clearInterval(keepAlive)
    process.off("SIGINT", interrupt)
    process.off("SIGTERM", interrupt)
    const code = reportExit(exit)
    process.exitCode = code
    setTimeout(() => process.exit(code), FORCED_EXIT_DELAY_MILLIS).unref()
  })
}
