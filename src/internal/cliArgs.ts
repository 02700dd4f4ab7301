/**
 * The command line of `effect-websockets`: the help text and the parser of its arguments. Imports
 * nothing, so that `--help`, `--version` and usage errors answer at Node's start-up speed, before
 * Effect and the library load (`src/bin/cli.ts` loads `./cli.js` only to run a command).
 *
 * Hand-written rather than `@effect/cli`: about ten options do not justify a dependency that
 * brought `@effect/platform-node` to every user of the library, a second of start-up, and help
 * text about options we do not have.
 *
 * @internal
 */

/** Name of the executable (the `bin` entry of package.json). */
export const CLI_NAME = "effect-websockets"

/** Default interface and port of `serve`, those of Python's examples. */
export const DEFAULT_HOST = "127.0.0.1"
export const DEFAULT_PORT = 8765

/** Exit statuses: 0 normal close, 1 failure (connection, handshake, abnormal close), 2 bad usage. */
export const EXIT_OK = 0
export const EXIT_FAILURE = 1
export const EXIT_USAGE = 2

/** Options of `effect-websockets <uri>`. */
export interface ClientArgs {
  readonly uri: string
  readonly subprotocols: ReadonlyArray<string>
  readonly headers: ReadonlyArray<readonly [string, string]>
  readonly origin?: string | undefined
  readonly noCompression: boolean
  readonly maxSize?: number | undefined
  readonly pingInterval?: number | undefined
}

/** Options of `effect-websockets serve`. */
export interface ServeArgs {
  readonly host: string
  readonly port: number
  readonly unix?: string | undefined
  readonly noCompression: boolean
  readonly maxSize?: number | undefined
  readonly subprotocols: ReadonlyArray<string>
  /** Worker processes sharing the port (node:cluster); 0: none. */
  readonly workers: number
}

/** What the command line asks for. */
export type Command =
  | { readonly _tag: "Help" }
  | { readonly _tag: "Version" }
  | { readonly _tag: "Client"; readonly args: ClientArgs }
  | { readonly _tag: "Serve"; readonly args: ServeArgs }

/** A command line that cannot be run; reported on one line, exit status {@link EXIT_USAGE}. */
export class UsageError extends Error {
  readonly _tag = "UsageError"
  constructor(message: string) {
    super(`${message} (see ${CLI_NAME} --help)`)
    this.name = "UsageError"
  }
}

/** The whole help: only our options, no colours (it is read in terminals and in pipes alike). */
export const HELP = `Usage: ${CLI_NAME} [options] <uri>
       ${CLI_NAME} serve [options]

${CLI_NAME} <uri>
  Interactive WebSocket client: sends each line of stdin as a text message and prints the
  messages received (binary as hex). Exits 0 after a normal close, 1 after an error.

  <uri>                     WebSocket URI to connect to (ws:// or wss://).
  --subprotocol NAME        Subprotocol to negotiate (repeatable, in order of preference).
  --header "NAME: VALUE"    Extra HTTP header of the handshake request (repeatable).
  --origin ORIGIN           Value of the Origin header.
  --no-compression          Disable permessage-deflate compression (RFC 7692).
  --max-size BYTES          Maximum size of incoming messages (default 1048576; 0: no limit).
  --ping-interval SECONDS   Seconds between keepalive pings (default 20; 0: no pings).

${CLI_NAME} serve
  Echo server: sends every message back with its type; stops cleanly on SIGINT/SIGTERM.

  --host HOST               Interface to listen on (default ${DEFAULT_HOST}).
  --port PORT               Port to listen on (default ${DEFAULT_PORT}; 0: any free port).
  --unix PATH               Listen on this unix socket path instead of TCP.
  --no-compression          Disable permessage-deflate compression (RFC 7692).
  --max-size BYTES          Maximum size of incoming messages (default 1048576; 0: no limit).
  --subprotocol NAME        Subprotocol to accept (repeatable, in order of preference).
  --workers N               Worker processes sharing the port (node:cluster); 0: none (default).

  -h, --help                Show this help.
  --version                 Show the version.
`

/** Parses `--header "Name: value"`. */
export const parseHeaderOption = (raw: string): readonly [string, string] => {
  const colon = raw.indexOf(":")
  const name = colon === -1 ? "" : raw.slice(0, colon).trim()
  // RFC 7230 §3.2: field-name = token.
  if (!/^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/.test(name)) {
    throw new UsageError(`invalid --header ${JSON.stringify(raw)}: expected "Name: value"`)
  }
  return [name, raw.slice(colon + 1).trim()]
}

const nonNegative = (option: string, raw: string, integer: boolean): number => {
  const value = Number(raw)
  if (raw.trim() === "" || !Number.isFinite(value) || value < 0 || (integer && !Number.isInteger(value))) {
    throw new UsageError(
      `${option} expects a ${integer ? "non-negative integer" : "non-negative number"}, not ${JSON.stringify(raw)}`
    )
  }
  return value
}

/** Which options take a value, per command; the others are flags. */
const CLIENT_OPTIONS = new Set(["--subprotocol", "--header", "--origin", "--max-size", "--ping-interval"])
const SERVE_OPTIONS = new Set(["--subprotocol", "--host", "--port", "--unix", "--max-size", "--workers"])
const FLAGS = new Set(["--no-compression"])

/**
 * Parses the arguments after the script (`process.argv.slice(2)`). Options take their value as the
 * next argument or after `=`; `--` ends the options. Throws {@link UsageError}.
 */
export const parseArgs = (argv: ReadonlyArray<string>): Command => {
  const serve = argv[0] === "serve"
  const args = serve ? argv.slice(1) : argv
  const withValue = serve ? SERVE_OPTIONS : CLIENT_OPTIONS
  const values = new Map<string, Array<string>>()
  const flags = new Set<string>()
  const positional: Array<string> = []
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!
    if (arg === "--") {
      positional.push(...args.slice(i + 1))
      break
    }
    if (arg === "-h" || arg === "--help") return { _tag: "Help" }
    if (arg === "--version") return { _tag: "Version" }
    if (!arg.startsWith("-") || arg === "-") {
      positional.push(arg)
      continue
    }
    const eq = arg.indexOf("=")
    const name = eq === -1 ? arg : arg.slice(0, eq)
    if (FLAGS.has(name)) {
      if (eq !== -1) throw new UsageError(`${name} takes no value`)
      flags.add(name)
    } else if (withValue.has(name)) {
      const value = eq === -1 ? args[++i] : arg.slice(eq + 1)
      if (value === undefined) throw new UsageError(`${name} needs a value`)
      values.set(name, [...(values.get(name) ?? []), value])
    } else {
      const other = serve ? CLIENT_OPTIONS.has(name) : SERVE_OPTIONS.has(name)
      throw new UsageError(
        other ? `${name} is an option of ${serve ? "the client" : "serve"} only` : `unknown option ${name}`
      )
    }
  }
  const last = (name: string): string | undefined => values.get(name)?.at(-1)
  const all = (name: string): ReadonlyArray<string> => values.get(name) ?? []
  const number = (name: string, integer: boolean): number | undefined => {
    const raw = last(name)
    return raw === undefined ? undefined : nonNegative(name, raw, integer)
  }
  if (serve) {
    if (positional.length > 0) throw new UsageError(`unexpected argument ${JSON.stringify(positional[0])}`)
    const port = number("--port", true)
    if (port !== undefined && port > 65535) throw new UsageError(`--port expects a port number, not ${port}`)
    return {
      _tag: "Serve",
      args: {
        host: last("--host") ?? DEFAULT_HOST,
        port: port ?? DEFAULT_PORT,
        unix: last("--unix"),
        noCompression: flags.has("--no-compression"),
        maxSize: number("--max-size", true),
        subprotocols: all("--subprotocol"),
        workers: number("--workers", true) ?? 0
      }
    }
  }
  const [uri, extra] = positional
  if (uri === undefined) throw new UsageError("missing <uri> argument")
  if (extra !== undefined) throw new UsageError(`unexpected argument ${JSON.stringify(extra)}`)
  return {
    _tag: "Client",
    args: {
      uri,
      subprotocols: all("--subprotocol"),
      headers: all("--header").map(parseHeaderOption),
      origin: last("--origin"),
      noCompression: flags.has("--no-compression"),
      maxSize: number("--max-size", true),
      pingInterval: number("--ping-interval", false)
    }
  }
}
