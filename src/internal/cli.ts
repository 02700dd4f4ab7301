/**
 * The `effect-websockets` command line (Python's `python -m websockets <uri>`, plus an echo server):
 * argument parsing with `@effect/cli`, the interactive client, the echo server, and the one-line
 * error reports. `src/bin/cli.ts` only runs {@link main}.
 *
 * @internal
 */
import { readFileSync, rmSync, statSync } from "node:fs"
import * as readline from "node:readline"
import * as Args from "@effect/cli/Args"
import * as Command from "@effect/cli/Command"
import * as HelpDoc from "@effect/cli/HelpDoc"
import * as Options from "@effect/cli/Options"
import * as ValidationError from "@effect/cli/ValidationError"
import * as NodeContext from "@effect/platform-node/NodeContext"
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
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

// ---------------------------------------------------------------------------
// Constants
// ---------------------------------------------------------------------------

/** Name of the executable (the `bin` entry of package.json). */
export const CLI_NAME = "effect-websockets"

/** Default interface and port of `serve`, those of Python's examples. */
export const DEFAULT_HOST = "127.0.0.1"
export const DEFAULT_PORT = 8765

/** Binary messages up to this size are printed in full as hex; larger ones as a size and a hex prefix. */
export const BINARY_HEX_LIMIT = 64

/** Exit statuses: 0 normal close, 1 failure (connection, handshake, abnormal close), 2 bad usage. */
export const EXIT_OK = 0
export const EXIT_FAILURE = 1
export const EXIT_USAGE = 2

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

/** Parses `--header "Name: value"`. */
export const parseHeaderOption = (raw: string): Either.Either<readonly [string, string], string> => {
  const colon = raw.indexOf(":")
  const name = colon === -1 ? "" : raw.slice(0, colon).trim()
  // RFC 7230 §3.2: field-name = token.
  if (!/^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/.test(name)) {
    return Either.left(`invalid --header ${JSON.stringify(raw)}: expected "Name: value"`)
  }
  return Either.right([name, raw.slice(colon + 1).trim()])
}

const oneLine = (text: string): string => text.replace(/\s*[\r\n]+\s*/g, " ").trim()

const causeMessage = (cause: unknown): string | undefined =>
  cause instanceof Error && cause.message !== "" ? cause.message : undefined

/**
 * The one-line report of a failure: `Error: <tag>: <message>`, never a stack trace. Socket errors
 * carry the interesting part (ECONNREFUSED, EADDRINUSE) in their `cause`.
 */
export const formatError = (error: unknown): string => {
  if (typeof error === "object" && error !== null && "_tag" in error && typeof error._tag === "string") {
    const tag = error._tag
    const reason = "reason" in error ? error.reason : undefined
    const cause = "cause" in error ? causeMessage(error.cause) : undefined
    let message: string
    if (tag === "SocketError" && reason === "Open") message = `cannot connect: ${cause ?? "connection failed"}`
    else if (tag === "SocketServerError" && reason === "Open") message = `cannot listen: ${cause ?? "listen failed"}`
    else {
      message = error instanceof Error ? error.message : String(error)
      if (cause !== undefined && !message.includes(cause)) message = `${message}: ${cause}`
    }
    return oneLine(`Error: ${tag}: ${message}`)
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

/** Parsed options of `effect-websockets <uri>`. */
export interface ClientArgs {
  readonly uri: string
  readonly subprotocols: ReadonlyArray<string>
  readonly headers: ReadonlyArray<readonly [string, string]>
  readonly origin: Option.Option<string>
  readonly noCompression: boolean
  readonly maxSize: Option.Option<number>
  readonly pingInterval: Option.Option<number>
}

/** `--max-size 0` disables the limit (Python's `max_size=None`). */
const toMaxSize = (maxSize: Option.Option<number>): { maxSize?: number | null } =>
  Option.match(maxSize, { onNone: () => ({}), onSome: (n) => ({ maxSize: n > 0 ? n : null }) })

/** Builds the options of `Client.connect` from the command line. */
export const toConnectOptions = (args: ClientArgs): Client.ConnectOptions => ({
  subprotocols: args.subprotocols,
  extraHeaders: args.headers,
  ...Option.match(args.origin, { onNone: () => ({}), onSome: (origin) => ({ origin }) }),
  compression: args.noCompression ? null : "deflate",
  ...toMaxSize(args.maxSize),
  ...Option.match(args.pingInterval, {
    onNone: () => ({}),
    // `--ping-interval 0` disables keepalive pings.
    onSome: (seconds) => ({ pingInterval: seconds > 0 ? Duration.millis(seconds * 1000) : null })
  })
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

/** Parsed options of `effect-websockets serve`. */
export interface ServeArgs {
  readonly host: string
  readonly port: number
  readonly unix: Option.Option<string>
  readonly noCompression: boolean
  readonly maxSize: Option.Option<number>
  readonly subprotocols: ReadonlyArray<string>
}

const log = (line: string) => Effect.sync(() => process.stdout.write(`${line}\n`))

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
export const runServer = (args: ServeArgs) =>
  Effect.scoped(
    Effect.gen(function* () {
      yield* Effect.addFinalizer(() => log("Server stopped."))
      const unix = Option.getOrUndefined(args.unix)
      if (unix !== undefined) yield* Effect.addFinalizer(() => removeSocketFile(unix))
      const server = yield* Server.serve(echoHandler, {
        ...(unix !== undefined ? { unix } : { host: args.host, port: args.port }),
        compression: args.noCompression ? null : "deflate",
        ...toMaxSize(args.maxSize),
        subprotocols: args.subprotocols
      })
      yield* log(`Listening on ${formatListenAddress(server.address)}`)
      yield* server.waitClosed
    })
  )

// ---------------------------------------------------------------------------
// Command line
// ---------------------------------------------------------------------------

const subprotocolOption = Options.text("subprotocol").pipe(
  Options.withPseudoName("NAME"),
  Options.withDescription("Subprotocol to negotiate (repeatable, in order of preference)."),
  Options.repeated
)
const noCompressionOption = Options.boolean("no-compression").pipe(
  Options.withDescription("Disable permessage-deflate compression (RFC 7692).")
)
const maxSizeOption = Options.integer("max-size").pipe(
  Options.withPseudoName("BYTES"),
  Options.withDescription("Maximum size of incoming messages in bytes (default 1048576; 0: no limit)."),
  Options.optional
)

const clientCommand = Command.make(
  CLI_NAME,
  {
    uri: Args.text({ name: "uri" }).pipe(
      Args.withDescription("WebSocket URI to connect to (ws:// or wss://)."),
      Args.optional
    ),
    subprotocols: subprotocolOption,
    headers: Options.text("header").pipe(
      Options.withPseudoName('"NAME: VALUE"'),
      Options.withDescription('Extra HTTP header of the handshake request, "Name: value" (repeatable).'),
      Options.repeated,
      Options.mapEffect((raw) =>
        Effect.forEach(raw, (header) =>
          Either.mapLeft(parseHeaderOption(header), (message) => ValidationError.invalidValue(HelpDoc.p(message)))
        )
      )
    ),
    origin: Options.text("origin").pipe(
      Options.withPseudoName("ORIGIN"),
      Options.withDescription("Value of the Origin header."),
      Options.optional
    ),
    noCompression: noCompressionOption,
    maxSize: maxSizeOption,
    pingInterval: Options.float("ping-interval").pipe(
      Options.withPseudoName("SECONDS"),
      Options.withDescription("Seconds between keepalive pings (default 20; 0: no pings)."),
      Options.optional
    )
  },
  ({ uri, ...options }) =>
    Effect.gen(function* () {
      if (Option.isNone(uri)) {
        return yield* Effect.fail(new UsageError({ message: `missing <uri> argument (see ${CLI_NAME} --help)` }))
      }
      yield* runClient({ uri: uri.value, ...options })
    })
).pipe(
  Command.withDescription(
    "Interactive WebSocket client: sends each line of stdin as a text message and prints the messages received."
  )
)

const serveCommand = Command.make(
  "serve",
  {
    host: Options.text("host").pipe(
      Options.withPseudoName("HOST"),
      Options.withDescription(`Interface to listen on (default ${DEFAULT_HOST}).`),
      Options.withDefault(DEFAULT_HOST)
    ),
    port: Options.integer("port").pipe(
      Options.withPseudoName("PORT"),
      Options.withDescription(`Port to listen on (default ${DEFAULT_PORT}; 0: any free port).`),
      Options.withDefault(DEFAULT_PORT)
    ),
    unix: Options.text("unix").pipe(
      Options.withPseudoName("PATH"),
      Options.withDescription("Listen on this unix socket path instead of TCP."),
      Options.optional
    ),
    noCompression: noCompressionOption,
    maxSize: maxSizeOption,
    subprotocols: subprotocolOption
  },
  runServer
).pipe(Command.withDescription("Echo server: sends every message back with its type; stops cleanly on SIGINT/SIGTERM."))

/** The whole command: the client, with `serve` as a subcommand. */
export const command = clientCommand.pipe(Command.withSubcommands([serveCommand]))

/** A usage error found after parsing (for example a missing URI). */
export class UsageError extends Error {
  readonly _tag = "UsageError"
  constructor(options: { readonly message: string }) {
    super(options.message)
  }
}

const readVersion = (): string => {
  try {
    // src/internal/cli.ts and dist/internal/cli.js both sit two levels below package.json.
    const json: unknown = JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8"))
    if (typeof json === "object" && json !== null && "version" in json && typeof json.version === "string") {
      return json.version
    }
  } catch {
    // Fall through.
  }
  return "0.0.0"
}

/** Runs the command line on `argv` (as in `process.argv`: runtime, script, then arguments). */
export const cli = (argv: ReadonlyArray<string>): Effect.Effect<void, unknown> =>
  Command.run(command, { name: CLI_NAME, version: readVersion() })(argv).pipe(Effect.provide(NodeContext.layer))

/** The exit status for an exit of {@link cli}, printing the one-line report of a failure. */
export const reportExit = (exit: Exit.Exit<unknown, unknown>): number => {
  if (Exit.isSuccess(exit)) return EXIT_OK
  // Ctrl-C / SIGTERM: the program shut down as asked.
  if (Cause.isInterruptedOnly(exit.cause)) return EXIT_OK
  const failure = Cause.failureOption(exit.cause)
  if (Option.isSome(failure)) {
    const error = failure.value
    // @effect/cli has already printed what was wrong with the command line.
    if (ValidationError.isValidationError(error)) return EXIT_USAGE
    process.stderr.write(`${formatError(error)}\n`)
    return error instanceof UsageError ? EXIT_USAGE : EXIT_FAILURE
  }
  process.stderr.write(`${formatError(Cause.squash(exit.cause))}\n`)
  return EXIT_FAILURE
}

/** Entry point of the `effect-websockets` executable. */
export const main = (argv: ReadonlyArray<string> = process.argv): void =>
  NodeRuntime.runMain(cli(argv), {
    disableErrorReporting: true,
    teardown: (exit, onExit) => {
      const code = reportExit(exit as Exit.Exit<unknown, unknown>)
      process.exitCode = code
      setTimeout(() => process.exit(code), FORCED_EXIT_DELAY_MILLIS).unref()
      onExit(code)
    }
  })
