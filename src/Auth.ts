/**
 * HTTP Basic Authentication for the server (RFC 7235, RFC 7617), Python's `websockets.auth`
 * (`basic_auth`) the Effect way: {@link basicAuth} builds a `processRequest` hook that answers 401
 * with a `WWW-Authenticate` challenge unless the handshake request carries valid credentials, and
 * continues with the username, which the handler receives as its second argument.
 *
 * @example
 * ```ts
 * import { Auth, Server, type WebSocket } from "effect-websockets"
 *
 * const greet = (ws: WebSocket.WebSocket, user: string) => ws.send(`Hello ${user}!`)
 * Server.serve(greet, { processRequest: Auth.basicAuth({ realm: "my dev server", credentials: ["hello", "iloveyou"] }) })
 * ```
 *
 * @since 0.1.0
 */
import { timingSafeEqual } from "node:crypto"
import * as Effect from "effect/Effect"
import { InvalidArgument } from "./Errors.js"
import { buildWwwAuthenticateBasic, parseAuthorizationBasic } from "./HeaderParsers.js"
import type { Headers } from "./Headers.js"
import { authenticatedBy } from "./internal/authenticated.js"
import * as Result from "./internal/result.js"
import { type HandshakeRequest, type HttpResponse, type ProcessRequest, proceed } from "./Server.js"
import type { WebSocket } from "./WebSocket.js"

/**
 * A `[username, password]` pair.
 * @since 0.1.0
 * @category models
 */
export type Credentials = readonly [username: string, password: string]

/**
 * Options of {@link basicAuth}: a realm, and either hard-coded `credentials` or a
 * `checkCredentials` function, exactly one (Python raises `TypeError` otherwise; here the type says
 * it, and `basicAuth` throws `InvalidArgument` for callers the type did not stop).
 * @since 0.1.0
 * @category models
 */
export type BasicAuthOptions<R = never> = {
  /**
   * Scope of protection (RFC 7235 §2.2), shown by browsers. ASCII only: the encoding of other
   * characters is undefined.
   */
  readonly realm: string
  /**
   * Applied after successful authentication (for example a health check, or more checks): an
   * {@link HttpResponse} answers the request, `undefined` continues with the username.
   */
  readonly next?:
    | ((
        request: HandshakeRequest,
        username: string
        // biome-ignore lint/suspicious/noConfusingVoidType: lets a hook end with `Effect.void` to continue.
      ) => Effect.Effect<HttpResponse | undefined | void, unknown, R>)
    | undefined
} & (
  | {
      /** One authorized pair, or several. */
      readonly credentials: Credentials | ReadonlyArray<Credentials>
      readonly checkCredentials?: undefined
    }
  | {
      readonly credentials?: undefined
      /** Decides whether a username and password are authorized. */
      readonly checkCredentials: (username: string, password: string) => Effect.Effect<boolean, never, R>
    }
)

/** Compares in constant time, so that response times do not reveal how much of a password matched. */
const sameSecret = (a: string, b: string): boolean => {
  const x = Buffer.from(a, "utf8")
  const y = Buffer.from(b, "utf8")
  return x.byteLength === y.byteLength && timingSafeEqual(x, y)
}

const isStringPair = (value: unknown): value is Credentials =>
  Array.isArray(value) && value.length === 2 && typeof value[0] === "string" && typeof value[1] === "string"

/** The authorized pairs, or InvalidArgument for a value of the wrong shape (Python's `TypeError`). */
const credentialPairs = (credentials: unknown): ReadonlyArray<Credentials> => {
  if (isStringPair(credentials)) return [credentials]
  if (Array.isArray(credentials) && credentials.every(isStringPair)) return credentials
  throw new InvalidArgument({ detail: `invalid credentials argument: ${JSON.stringify(credentials)}` })
}

/**
 * The credentials of a request's `Authorization` header, or the reason they cannot be used, with
 * Python's response texts: "Missing credentials" or "Unsupported credentials".
 * @since 0.1.0
 * @category utils
 */
export const credentialsOf = (headers: Headers): Result.Result<Credentials, string> => {
  const values = headers.getAll("Authorization")
  if (values.length === 0) return Result.fail("Missing credentials")
  if (values.length > 1) return Result.fail("Unsupported credentials")
  return Result.mapError(parseAuthorizationBasic(values[0]!), () => "Unsupported credentials")
}

/**
 * The username of the handshake's `Authorization` header, or `undefined`; it is not checked here.
 * On a server protected by {@link basicAuth}, `ws.username` is the username that `basicAuth`
 * authenticated, and the handler receives it as its second argument.
 * @since 0.1.0
 * @category utils
 */
export const username = (ws: WebSocket): string | undefined =>
  Result.getOrUndefined(Result.map(credentialsOf(ws.requestHeaders), ([user]) => user))

/**
 * A `processRequest` hook enforcing HTTP Basic Auth: a request without valid credentials is
 * answered 401 Unauthorized with `WWW-Authenticate: Basic realm="…", charset="UTF-8"` and the
 * connection is closed; a valid one continues to `next`, then to the WebSocket handshake, whose
 * handler receives the username; the connection's `username` and `realm` are then set (the seeds'
 * `BasicAuthWebSocketServerProtocol` attributes).
 *
 * Throws `InvalidArgument` when given both `credentials` and `checkCredentials`, or neither, or
 * credentials that are not `[username, password]` pairs of strings (Python's `TypeError`).
 * @since 0.1.0
 * @category constructors
 */
export const basicAuth = <R = never>(options: BasicAuthOptions<R>): ProcessRequest<R, string> => {
  const { credentials, realm } = options
  if ((credentials === undefined) === (options.checkCredentials === undefined)) {
    throw new InvalidArgument({ detail: "provide either credentials or checkCredentials" })
  }
  const check =
    options.checkCredentials ??
    (() => {
      const pairs = credentialPairs(credentials)
      const table = new Map(pairs.map(([user, password]) => [user, password] as const))
      return (user: string, password: string) => {
        const expected = table.get(user)
        return Effect.succeed(expected !== undefined && sameSecret(password, expected))
      }
    })()
  const unauthorized = (text: string): HttpResponse => ({
    status: 401,
    headers: [
      ["WWW-Authenticate", buildWwwAuthenticateBasic(realm)],
      ["Content-Type", "text/plain; charset=utf-8"]
    ],
    body: `${text}.\n`
  })
  return (request) =>
    Result.match(credentialsOf(request.headers), {
      onFailure: (reason) => Effect.succeed(unauthorized(reason)),
      onSuccess: ([user, password]) =>
        Effect.flatMap(check(user, password), (valid) => {
          if (!valid) return Effect.succeed(unauthorized("Invalid credentials"))
          authenticatedBy.set(request.headers, { username: user, realm })
          return options.next === undefined
            ? Effect.succeed(proceed(user))
            : Effect.map(options.next(request, user), (response) => response ?? proceed(user))
        })
    })
}
