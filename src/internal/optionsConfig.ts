/**
 * The options of the server and of every connection as Effect `Config`, under flat
 * environment-style names (`PORT`, `PING_INTERVAL`, `MAX_SIZE`...), read by `Server.config` and
 * `Client.config`.
 *
 * A missing key leaves its option out of the result, so that the value given in code, or else the
 * documented default, applies. A value that does not parse is a `ConfigError` (InvalidData) whose
 * path names the key. Where `null` disables an option (Python's `None`), the value `none` or `off`
 * (any case) disables it; zero is refused there, since the command line reads `0` as "disabled" and
 * a literal zero (a limit of 0 bytes, a 0 ms timeout) is never what one means.
 *
 * @internal
 */
import * as Config from "effect/Config"
import * as Duration from "effect/Duration"
import * as Option from "effect/Option"
import { decodeDurationText, optionalKey } from "./effectCompat.js"
import * as Result from "./result.js"

/** A value's parser: the value, or why the text is invalid. */
type Parse<A> = (text: string) => Result.Result<A, string>

const invalid = (message: string): Result.Result<never, string> => Result.fail(message)

const show = (text: string): string => JSON.stringify(text)

/** The words that disable an option whose `null` means "disabled" (Python's `None`). */
const DISABLED = new Set(["none", "off"])

/** `none`/`off` (any case) is `null`; anything else goes to `parse`. */
const orNone =
  <A>(parse: Parse<A>): Parse<A | null> =>
  (text) =>
    DISABLED.has(text.trim().toLowerCase()) ? Result.succeed(null) : parse(text)

const MILLIS = /^\d+(?:\.\d+)?$/

/**
 * A duration as `Config.duration` reads it (`"20 seconds"`, `"500 millis"`), or a plain number of
 * milliseconds. Negative and infinite durations are refused, zero too unless `allowZero`.
 */
const duration =
  (allowZero: boolean): Parse<Duration.Duration> =>
  (text) => {
    const trimmed = text.trim()
    const decoded = MILLIS.test(trimmed)
      ? Option.some(Duration.millis(Number(trimmed)))
      : trimmed.startsWith("-")
        ? Option.none()
        : decodeDurationText(trimmed)
    if (Option.isNone(decoded) || !Duration.isFinite(decoded.value)) {
      return invalid(
        `Expected a duration such as "20 seconds", "500 millis" or a number of milliseconds, but received ${show(text)}`
      )
    }
    if (!allowZero && Duration.isZero(decoded.value)) {
      return invalid(`Expected a duration above zero (or "none" to disable), but received ${show(text)}`)
    }
    return Result.succeed(decoded.value)
  }

const INTEGER = /^\d+$/

/** A non-negative integer number of bytes or messages, at least `min`. */
const size =
  (min: number, hint = ""): Parse<number> =>
  (text) => {
    const trimmed = text.trim()
    const value = Number(trimmed)
    if (!INTEGER.test(trimmed) || !Number.isSafeInteger(value)) {
      return invalid(`Expected a non-negative integer, but received ${show(text)}`)
    }
    if (value < min) return invalid(`Expected an integer of at least ${min}${hint}, but received ${show(text)}`)
    return Result.succeed(value)
  }

const port: Parse<number> = (text) => {
  const trimmed = text.trim()
  const value = Number(trimmed)
  if (!INTEGER.test(trimmed) || value > 65535) {
    return invalid(`Expected a port number from 0 to 65535, but received ${show(text)}`)
  }
  return Result.succeed(value)
}

/** A value that is not blank: trimmed (a host name), or as given (a path may hold any character). */
const nonBlank =
  (what: string, trim: boolean): Parse<string> =>
  (text) =>
    text.trim() === ""
      ? invalid(`Expected a ${what}, but received ${show(text)}`)
      : Result.succeed(trim ? text.trim() : text)

const compression: Parse<"deflate" | null> = (text) => {
  const value = text.trim().toLowerCase()
  if (value === "deflate") return Result.succeed("deflate")
  if (DISABLED.has(value)) return Result.succeed(null)
  return invalid(`Expected "deflate" or "none", but received ${show(text)}`)
}

const flag: Parse<boolean> = (text) => {
  const value = text.trim().toLowerCase()
  if (value === "true" || value === "on" || value === "1") return Result.succeed(true)
  if (value === "false" || value === "off" || value === "0") return Result.succeed(false)
  return invalid(`Expected true or false, but received ${show(text)}`)
}

/** The optional key `name`: `None` when it is missing, a ConfigError at `name` when it does not parse. */
const key: <A>(name: string, parse: Parse<A>) => Config.Config<Option.Option<A>> = optionalKey

/** The value of each key present; keys that are missing are left out. */
type Present<Fields> = {
  readonly [K in keyof Fields]?: Fields[K] extends Config.Config<Option.Option<infer A>> ? A : never
}

const present = <Fields extends Record<string, Config.Config<Option.Option<unknown>>>>(
  fields: Fields
): Config.Config<Present<Fields>> =>
  Config.map(Config.all(fields), (values) => {
    const result: Record<string, unknown> = {}
    for (const [name, value] of Object.entries(values as Record<string, Option.Option<unknown>>)) {
      if (Option.isSome(value)) result[name] = value.value
    }
    return result as Present<Fields>
  })

/** Keys of the options every connection takes, client or server side. */
const connectionFields = {
  openTimeout: key("OPEN_TIMEOUT", orNone(duration(false))),
  pingInterval: key("PING_INTERVAL", orNone(duration(false))),
  pingTimeout: key("PING_TIMEOUT", orNone(duration(false))),
  closeTimeout: key("CLOSE_TIMEOUT", duration(true)),
  maxSize: key("MAX_SIZE", orNone(size(1, ' (or "none" for no limit)'))),
  maxQueue: key("MAX_QUEUE", orNone(size(1, ' (or "none" for no limit)'))),
  readLimit: key("READ_LIMIT", size(0)),
  writeLimit: key("WRITE_LIMIT", size(0)),
  maxHeaderSize: key("MAX_HEADER_SIZE", size(1)),
  compression: key("COMPRESSION", compression),
  metrics: key("METRICS", flag)
}

/** The connection options (`OPEN_TIMEOUT` ... `COMPRESSION`), for the client. */
export const connectionConfig = present(connectionFields)

/** The server's options: `HOST`, `PORT`, `UNIX` and the connection options. */
export const serverConfig = present({
  host: key("HOST", nonBlank("host name or address", true)),
  port: key("PORT", port),
  unix: key("UNIX", nonBlank("unix socket path", false)),
  ...connectionFields
})
