/**
 * The shells under test: the behavioural suites (hostile peers, interop) are written once against
 * {@link Shell} and run against both. The Effect 3 shell runs in this process; the Effect 4 shell
 * runs in a process of its own (`effect4/test/fixtures/shellPeer.ts`, started by vite-node from
 * effect4/ as the conformance tests start theirs: this suite runs on effect 3), driven by JSON
 * commands, and reports its own memory and CPU time so that the same bounds apply to it.
 *
 * What a suite can ask of a shell: a server with a named handler (echo, the interop handler of
 * test/interop/fixtures/peers.ts, the greeter of the scaling tests), a client running the echo
 * handler, a client running an interop job (the steps of fixtures/peer.py's client jobs), and the
 * process's memory and CPU time.
 */
import type { ChildProcessWithoutNullStreams } from "node:child_process"
import { afterAll, beforeAll, describe } from "@effect/vitest"
import * as Cause from "effect/Cause"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Option from "effect/Option"
import * as Schedule from "effect/Schedule"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import { Backplane } from "../../src/Backplane.js"
import * as Client from "../../src/Client.js"
import * as RedisBackplane from "../../src/RedisBackplane.js"
import * as Server from "../../src/Server.js"
import * as Topics from "../../src/Topics.js"
import type { Data, WebSocket } from "../../src/WebSocket.js"
import { type FrontDoor, serveBehind } from "../fixtures/frontDoors.js"
import { retainedBytes } from "../fixtures/memory.js"
import {
  build,
  connectionTo,
  type Description,
  describeData,
  extensionNames,
  interopHandler,
  JsonLinesChild,
  type MessageSpec,
  type ServerLog
} from "../interop/fixtures/peers.js"
import { spawnEffect4 } from "./peer.js"

const LOCALHOST = "127.0.0.1"

/** A typed error of a shell, as plain data (it may come from another process). */
export interface ShellError {
  readonly tag: string
  readonly message: string
  readonly code?: number
  readonly reason?: string
  readonly address?: string
  /** `code` of the error's cause (an errno code such as EADDRINUSE). */
  readonly causeCode?: string
}

/** A connection the interop handler opened. */
export interface OpenRecord {
  readonly path: string
  readonly subprotocol: string | null
  /** Extensions of the handshake response. */
  readonly extensions: ReadonlyArray<string>
  /** Sec-WebSocket-Extensions values of the handshake request. */
  readonly requestExtensions: ReadonlyArray<string>
}

/** How a connection of the interop handler ended, and what it received. */
export interface ClosedRecord {
  readonly path: string
  readonly received: ReadonlyArray<Description>
  readonly error: string | null
  readonly errorCode: number | null
  readonly errorReason: string | null
  readonly closeCode: number | null
  readonly closeReason: string | null
}

/** A server of the shell under test. */
export interface ShellServer {
  readonly port: number
  /** The server's address (`TcpAddress` or `UnixAddress`). */
  readonly address: unknown
  /** The interop handler's connection to `path`, once open. */
  readonly opened: (path: string) => Effect.Effect<OpenRecord>
  /** The interop handler's connection to `path`, once closed. */
  readonly closed: (path: string) => Effect.Effect<ClosedRecord>
  /** Paths of the requests `processRequest` saw (servers with a page). */
  readonly requests: () => ReadonlyArray<string>
  /** Shuts the server down (1001 to open connections). */
  readonly close: Effect.Effect<void>
}

/** A step of an interop job (fixtures/peer.py's client jobs). */
export type Step =
  | { readonly op: "send"; readonly msg: MessageSpec; readonly stream?: boolean }
  | { readonly op: "recv" }
  | { readonly op: "ping"; readonly data?: string }
  | { readonly op: "close"; readonly code?: number; readonly reason?: string }
  | { readonly op: "wait_closed" }

/** A client job: connect to `uri` with `options`, run `steps`. */
export interface Job {
  readonly uri: string
  readonly options?: Record<string, unknown>
  readonly steps: ReadonlyArray<Step>
}

/**
 * What a job saw: messages received (described), the error that ended the steps (its tag, close
 * code and reason), the connection's close code and reason, the subprotocol and extensions
 * negotiated, pongs received; `failure` when it could not connect.
 */
export interface JobResult {
  readonly received: ReadonlyArray<Description>
  readonly error: string | null
  readonly errorCode?: number | null
  readonly errorReason?: string | null
  readonly code?: number | null
  readonly reason?: string | null
  readonly subprotocol?: string | null
  readonly extensions?: ReadonlyArray<string>
  /** Sec-WebSocket-Protocol values of the handshake response. */
  readonly protocolHeaders?: ReadonlyArray<string>
  readonly pongs?: number
  readonly failure?: ShellError
}

/** Memory and CPU time of the process that runs the shell. */
export interface Usage {
  /** Heap plus external memory after a full GC. */
  readonly memoryInUse: number
  /** Heap plus array buffers after a full GC (test/fixtures/memory.ts's retainedBytes). */
  readonly retained: number
  /** Peak RSS of the process, in bytes. */
  readonly maxRSS: number
  /** CPU time (user and system) the process used, in microseconds. */
  readonly cpuMicros: number
}

/** `echo` reads with the `messages` Stream; `readmeEcho` is the README's `Server.onMessage` echo. */
export type HandlerName = "echo" | "readmeEcho" | "interop" | "greeter" | "chat"

/** Where a server listens and what it serves besides WebSockets. */
export interface Where {
  readonly unix?: string
  /** How the server is reached (test/fixtures/frontDoors.ts); the Effect 3 shell's only: default "serve". */
  readonly door?: FrontDoor
  /** HTML answered to GET / by `processRequest` (paths under /ws/ go on to the handshake). */
  readonly page?: string
  /** The Redis URL of the chat handler's backplane. */
  readonly redis?: string
}

/** A shell under test, as the behavioural suites use it. Options are plain data (JSON). */
export interface Shell {
  readonly name: "Effect 3" | "Effect 4"
  /** Whether the shell runs in another process than the test (its CPU time is not the test's). */
  readonly remote: boolean
  readonly serve: (
    handler: HandlerName,
    options?: Record<string, unknown>,
    where?: Where
  ) => Effect.Effect<ShellServer, ShellError, Scope.Scope>
  /** A client of this shell running the echo handler; open once this completes; closed with the scope. */
  readonly connectEcho: (
    uri: string,
    options?: Record<string, unknown>,
    unix?: string
  ) => Effect.Effect<void, ShellError, Scope.Scope>
  readonly job: (job: Job) => Effect.Effect<JobResult>
  readonly usage: Effect.Effect<Usage>
  /** CPU time (user and system) the shell's process used, in microseconds (no GC forced). */
  readonly cpuMicros: Effect.Effect<number>
  /** Starts the shell's process (a no-op in this process). */
  readonly start: () => Promise<void>
  readonly stop: () => Promise<void>
}

// ---------------------------------------------------------------------------
// Handlers of the Effect 3 shell
// ---------------------------------------------------------------------------

/** A node of a chat over Redis: every connection subscribed to "chat", every message published there. */
const chat = (topics: Topics.TopicsService) => (ws: WebSocket) =>
  Effect.zipRight(
    topics.subscribe(ws, "chat"),
    Stream.runForEach(ws.messages, (message) => Effect.ignore(topics.publish("chat", message)))
  ).pipe(Effect.ignore)

/** Topics over a Redis connection of their own, as a separate process would have; reconnecting fast. */
const redisTopics = (url: string) =>
  Effect.flatMap(RedisBackplane.make({ url, reconnect: Schedule.spaced("50 millis") }), (backplane) =>
    Topics.make.pipe(Effect.provideService(Backplane, backplane))
  )

const echo = (ws: WebSocket) => Effect.ignore(Stream.runForEach(ws.messages, (message) => ws.send(message)))

/** Greets with the client address and how it came (X-Forwarded-Proto), then echoes. */
const greeter = (ws: WebSocket) =>
  Effect.zipRight(
    ws.send(
      `remote ${ws.remoteAddress?._tag === "TcpAddress" ? ws.remoteAddress.hostname : "?"} ` +
        `${ws.requestHeaders.getFirst("X-Forwarded-Proto") ?? "-"}`
    ),
    echo(ws)
  ).pipe(Effect.ignore)

const shellErrorOf = (cause: Cause.Cause<unknown>): ShellError => {
  const failure = Option.getOrUndefined(Cause.failureOption(cause)) as Record<string, any> | undefined
  if (failure === undefined) return { tag: "defect", message: Cause.pretty(cause) }
  return {
    tag: String(failure._tag),
    message: String(failure.message),
    ...(typeof failure.code === "number" ? { code: failure.code } : {}),
    ...(typeof failure.reason === "string" ? { reason: failure.reason } : {}),
    ...(typeof failure.address === "string" ? { address: failure.address } : {}),
    ...(typeof failure.cause?.code === "string" ? { causeCode: failure.cause.code } : {})
  }
}

const mapShellError = <A, R>(effect: Effect.Effect<A, unknown, R>): Effect.Effect<A, ShellError, R> =>
  Effect.catchAllCause(effect, (cause) => Effect.fail(shellErrorOf(cause)))

/** The README's echo: `Server.onMessage`, no fiber per connection. */
const readmeEcho = Server.onMessage((message: Data, ws: WebSocket) => ws.send(message))

const gc = (globalThis as { gc?: () => void }).gc

const usageHere = Effect.sync((): Usage => {
  const retained = retainedBytes()
  gc?.()
  const memory = process.memoryUsage()
  const cpu = process.cpuUsage()
  return {
    memoryInUse: memory.heapUsed + memory.external,
    retained,
    maxRSS: process.resourceUsage().maxRSS * 1024,
    cpuMicros: cpu.user + cpu.system
  }
})

/** The Effect 3 shell's client running an interop job (effect4/test/fixtures/shellPeer.ts's twin). */
const runJob = (job: Job): Effect.Effect<JobResult> =>
  Effect.scoped(
    Effect.gen(function* () {
      const opened = yield* Effect.exit(
        job.options === undefined ? Client.connect(job.uri) : Client.connect(job.uri, job.options as any)
      )
      if (Exit.isFailure(opened)) {
        const failure = shellErrorOf(opened.cause)
        return { received: [], error: failure.tag, failure }
      }
      const ws = opened.value
      const received: Array<Description> = []
      let pongs: number | undefined
      const steps = Effect.forEach(
        job.steps,
        (step): Effect.Effect<void, unknown> => {
          switch (step.op) {
            case "send": {
              const message = build(step.msg)
              return ws.send(
                step.stream === true && Array.isArray(message) ? Stream.fromIterable(message as Array<Data>) : message
              )
            }
            case "recv":
              return Effect.map(ws.recv.pipe(Effect.timeout("5 seconds")), (message) => {
                received.push(describeData(message))
              })
            case "ping":
              return Effect.flatMap(step.data === undefined ? ws.ping() : ws.ping(step.data), (pong) =>
                Effect.map(pong.pipe(Effect.timeout("5 seconds")), () => {
                  pongs = (pongs ?? 0) + 1
                })
              )
            case "close":
              return step.code === undefined ? ws.close() : ws.close(step.code, step.reason)
            case "wait_closed":
              return ws.waitClosed.pipe(Effect.timeout("5 seconds"))
          }
        },
        { discard: true }
      )
      const exit = yield* Effect.exit(steps)
      const ended: Partial<Record<"error" | "errorCode" | "errorReason", unknown>> = {}
      if (Exit.isFailure(exit)) {
        const error = shellErrorOf(exit.cause)
        Object.assign(ended, { error: error.tag, errorCode: error.code ?? null, errorReason: error.reason ?? null })
        yield* ws.waitClosed.pipe(Effect.timeout("5 seconds"), Effect.ignore)
      }
      return {
        received,
        error: null,
        ...(ended as object),
        subprotocol: ws.subprotocol ?? null,
        extensions: extensionNames(ws.responseHeaders.getAll("Sec-WebSocket-Extensions")),
        protocolHeaders: ws.responseHeaders.getAll("Sec-WebSocket-Protocol"),
        ...(pongs === undefined ? {} : { pongs }),
        code: ws.closeCode ?? null,
        reason: ws.closeReason ?? null
      } as JobResult
    })
  )

/** What the interop handler recorded in `log`, as the Effect 4 shell's process reports it. */
export const recordsOf = (log: ServerLog): Pick<ShellServer, "opened" | "closed"> => ({
  opened: (path) =>
    Effect.map(
      Deferred.await(connectionTo(log, path)),
      ({ ws }): OpenRecord => ({
        path,
        subprotocol: ws.subprotocol ?? null,
        extensions: extensionNames(ws.responseHeaders.getAll("Sec-WebSocket-Extensions")),
        requestExtensions: ws.requestHeaders.getAll("Sec-WebSocket-Extensions")
      })
    ),
  closed: (path) =>
    Effect.flatMap(Deferred.await(connectionTo(log, path)), (record) =>
      Effect.map(
        Deferred.await(record.closed),
        (closed): ClosedRecord => ({
          path,
          received: record.received,
          error: closed.error ?? null,
          errorCode: closed.errorCode ?? null,
          errorReason: closed.errorReason ?? null,
          closeCode: closed.closeCode ?? null,
          closeReason: closed.closeReason ?? null
        })
      )
    )
})

/** The Effect 3 shell, in this process. */
export const effect3: Shell = {
  name: "Effect 3",
  remote: false,
  serve: (handler, options = {}, where = {}) =>
    Effect.gen(function* () {
      const log: ServerLog = new Map()
      const requests: Array<string> = []
      const page = where.page
      const serveOptions = {
        ...options,
        ...(page === undefined
          ? {}
          : {
              processRequest: ({ path }: { readonly path: string }) =>
                Effect.sync(() => {
                  requests.push(path)
                  if (path === "/") {
                    return { status: 200, headers: { "Content-Type": "text/html; charset=utf-8" }, body: page }
                  }
                  return path.startsWith("/ws/") ? undefined : { status: 404, body: "Not Found\n" }
                })
            })
      } as Server.ServeOptions
      const handle =
        handler === "interop"
          ? interopHandler(log)
          : handler === "greeter"
            ? greeter
            : handler === "chat"
              ? chat(yield* mapShellError(redisTopics(where.redis ?? "")))
              : handler === "readmeEcho"
                ? readmeEcho
                : echo
      const server = yield* mapShellError(
        where.unix !== undefined
          ? Server.unixServe(handle, where.unix, serveOptions)
          : where.door !== undefined && where.door !== "serve"
            ? serveBehind(where.door)(handle, serveOptions)
            : Server.serve(handle, { host: LOCALHOST, port: 0, ...serveOptions })
      )
      return {
        port: server.address._tag === "TcpAddress" ? server.address.port : 0,
        address: server.address,
        ...recordsOf(log),
        requests: () => requests,
        close: server.close
      } satisfies ShellServer
    }),
  connectEcho: (uri, options = {}, unix) =>
    Effect.gen(function* () {
      const ws = yield* mapShellError(
        unix === undefined ? Client.connect(uri, options as any) : Client.unixConnect(unix, uri, options as any)
      )
      yield* Effect.forkScoped(echo(ws))
    }),
  job: runJob,
  usage: usageHere,
  cpuMicros: Effect.sync(() => {
    const { user, system } = process.cpuUsage()
    return user + system
  }),
  start: () => Promise.resolve(),
  stop: () => Promise.resolve()
}

// ---------------------------------------------------------------------------
// The Effect 4 shell, in a process of its own
// ---------------------------------------------------------------------------

/** Time to load effect 4 under vite-node on a busy machine. */
const START_TIMEOUT_MS = 50_000
/** Time a command may take to be answered (a job waits up to 5 s per step). */
const ANSWER_TIMEOUT_MS = 30_000

/** An event line of the Effect 4 shell's process without its routing fields. */
const record = ({ event: _event, server: _server, ...rest }: Record<string, any>) => rest

/** The Effect 4 shell, in a child process started by `start` (one per test file). */
export const effect4 = (): Shell => {
  let child: JsonLinesChild | undefined
  let nextId = 0
  const peer = (): JsonLinesChild => {
    if (child === undefined) throw new Error("the Effect 4 shell's process is not started")
    return child
  }
  /** Sends a command and waits for its answer. */
  const ask = (op: string, body: Record<string, unknown> = {}) =>
    Effect.suspend(() => {
      const id = ++nextId
      peer().send({ ...body, id, op })
      return Effect.map(
        peer().await((line) => line.id === id, ANSWER_TIMEOUT_MS),
        (answer) => ({ id, answer })
      )
    })
  const release = (target: number) => Effect.asVoid(ask("release", { target }))
  const event = (server: number, name: string, path: string) =>
    peer().await((line) => line.event === name && line.server === server && line.path === path, ANSWER_TIMEOUT_MS)
  return {
    name: "Effect 4",
    remote: true,
    serve: (handler, options = {}, where = {}) =>
      Effect.gen(function* () {
        if (where.door !== undefined && where.door !== "serve") {
          return yield* Effect.dieMessage(`front door ${where.door}: the Effect 3 shell's only`)
        }
        const { id, answer } = yield* Effect.acquireRelease(ask("serve", { handler, options, ...where }), ({ id }) =>
          release(id)
        )
        if (answer.error !== undefined) return yield* Effect.fail(answer.error as ShellError)
        return {
          port: answer.port as number,
          address: answer.address,
          opened: (path) => Effect.map(event(id, "open", path), (line) => record(line) as unknown as OpenRecord),
          closed: (path) => Effect.map(event(id, "closed", path), (line) => record(line) as unknown as ClosedRecord),
          requests: () =>
            peer()
              .lines.filter((line) => line.event === "request" && line.server === id)
              .map((line) => line.path as string),
          close: release(id)
        } satisfies ShellServer
      }),
    connectEcho: (uri, options = {}, unix) =>
      Effect.gen(function* () {
        const { answer } = yield* Effect.acquireRelease(
          ask("connect", { uri, options, ...(unix === undefined ? {} : { unix }) }),
          ({ id }) => release(id)
        )
        if (answer.error !== undefined) return yield* Effect.fail(answer.error as ShellError)
      }),
    job: (job) => Effect.map(ask("job", { ...job }), ({ answer }) => answer as unknown as JobResult),
    usage: Effect.map(ask("usage"), ({ answer }) => answer as unknown as Usage),
    cpuMicros: Effect.map(ask("usage", { gc: false }), ({ answer }) => answer.cpuMicros as number),
    start: async () => {
      // --expose-gc: it measures its memory after a full collection, as the tests here do.
      const process = spawnEffect4("shellPeer.ts", {}, ["pipe", "pipe", "pipe"], ["--expose-gc"])
      child = new JsonLinesChild(process as ChildProcessWithoutNullStreams)
      await child.waitFor((line) => line.ready === true, START_TIMEOUT_MS)
    },
    stop: async () => {
      await child?.stop()
    }
  }
}

/**
 * Runs `body` once per shell, in a `describe` named after it: the Effect 3 shell in this process,
 * the Effect 4 shell in a process started before the tests and stopped after them.
 */
export const describeShells = (title: string, body: (shell: Shell) => void): void => {
  for (const shell of [effect3, effect4()]) {
    describe(`${title} [${shell.name}]`, () => {
      beforeAll(() => shell.start(), START_TIMEOUT_MS + 10_000)
      afterAll(() => shell.stop())
      body(shell)
    })
  }
}
