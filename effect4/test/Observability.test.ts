/**
 * Logs and spans of the Effect 4 shell over real loopback sockets, as test/Observability.test.ts
 * and test/residue.test.ts check them for Effect 3: connection lines at Debug unless
 * `connectionLogLevel` says otherwise, in Python's words, never events of a long-lived span;
 * handler fibers annotated with `connectionId`; a clean close with an application's code ending
 * the connection spans OK.
 */
import { describe, expect, it } from "@effect/vitest"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import type * as Exit from "effect/Exit"
import * as Option from "effect/Option"
import * as References from "effect/References"
import * as Tracer from "effect/Tracer"
import * as Client from "../src/Client.js"
import * as Server from "../src/Server.js"
import type { WebSocket } from "../src/WebSocket.js"
import { echo, eventually, recordingLogger, serveLocal, uriOf } from "./fixtures/loopback.js"

let nextId = 0

class RecordedSpan implements Tracer.Span {
  readonly _tag = "Span"
  readonly spanId = `span${++nextId}`
  readonly traceId: string
  readonly sampled = true
  readonly name: string
  readonly parent: Option.Option<Tracer.AnySpan>
  readonly annotations: Tracer.Span["annotations"]
  readonly kind: Tracer.SpanKind
  status: Tracer.SpanStatus
  readonly attributes = new Map<string, unknown>()
  readonly links: Array<Tracer.SpanLink>
  readonly events: Array<string> = []

  constructor(options: Parameters<Tracer.Tracer["span"]>[0]) {
    this.name = options.name
    this.parent = options.parent
    this.annotations = options.annotations
    this.kind = options.kind
    this.traceId = Option.isSome(options.parent) ? options.parent.value.traceId : `trace${nextId}`
    this.links = [...options.links]
    this.status = { _tag: "Started", startTime: options.startTime }
  }
  end(endTime: bigint, exit: Exit.Exit<unknown, unknown>): void {
    this.status = { _tag: "Ended", startTime: this.status.startTime, endTime, exit }
  }
  attribute(key: string, value: unknown): void {
    this.attributes.set(key, value)
  }
  event(name: string): void {
    this.events.push(name)
  }
  addLinks(links: ReadonlyArray<Tracer.SpanLink>): void {
    this.links.push(...links)
  }
  get ended(): boolean {
    return this.status._tag === "Ended"
  }
  /** The tag of the error it ended with, "success", or undefined while it runs. */
  get outcome(): string | undefined {
    if (this.status._tag !== "Ended") return undefined
    const exit = this.status.exit
    if (exit._tag === "Success") return "success"
    const reason = exit.cause.reasons[0]
    return reason?._tag === "Fail" ? (reason.error as { _tag: string })._tag : reason?._tag
  }
}

const memoryTracer = () => {
  const spans: Array<RecordedSpan> = []
  const tracer = Tracer.make({
    span: (options) => {
      const span = new RecordedSpan(options)
      spans.push(span)
      return span
    }
  })
  return { spans, tracer }
}

const connectionSpans = (spans: ReadonlyArray<RecordedSpan>, side: "server" | "client") =>
  spans.filter((span) => span.name === "effect-websockets.connection" && span.kind === side)

describe("Effect 4 shell: logs", () => {
  it.live("at the default level (Info), nothing is logged: the connection lines are at Debug", () =>
    Effect.gen(function* () {
      const { entries, layer } = recordingLogger()
      yield* Effect.gen(function* () {
        const server = yield* serveLocal(echo)
        const ws = yield* Client.connect(uriOf(server), { compression: null })
        yield* ws.send("hello")
        yield* ws.recv
        yield* ws.close()
        yield* server.close
      }).pipe(Effect.provide(layer), Effect.scoped)
      expect(entries).toEqual([])
    })
  )

  it.live("connectionLogLevel Info: the server's open, closed and rejected lines at Info, no frame", () =>
    Effect.gen(function* () {
      const { entries, layer } = recordingLogger()
      yield* Effect.gen(function* () {
        const server = yield* serveLocal(echo, {
          connectionLogLevel: "Info",
          processRequest: (request) =>
            Effect.succeed(request.path === "/private" ? { status: 403, body: "no\n" } : undefined)
        })
        const ws = yield* Client.connect(uriOf(server), { compression: null })
        yield* ws.send("hello")
        yield* ws.recv
        yield* ws.close()
        yield* Effect.flip(Effect.scoped(Client.connect(uriOf(server, "/private"))))
        yield* server.close
      }).pipe(Effect.provide(layer), Effect.scoped)
      expect(entries.map((entry) => `${entry.level} ${entry.message}`)).toEqual([
        "INFO connection open",
        "INFO connection closed: received 1000 (OK); then sent 1000 (OK)",
        "INFO connection rejected (403 Forbidden)"
      ])
      expect(entries.every((entry) => typeof entry.annotations.connectionId === "string")).toBe(true)
    })
  )

  it.live("a connection the server closed with 1009 is logged with the code it sent", () =>
    Effect.gen(function* () {
      const { entries, layer } = recordingLogger()
      const server = yield* serveLocal(echo, { maxSize: 16, connectionLogLevel: "Info" }).pipe(Effect.provide(layer))
      const ws = yield* Client.connect(uriOf(server), { compression: null })
      yield* ws.send(new Uint8Array(17))
      yield* ws.waitClosed
      expect(ws.closeCode).toBe(1009)
      const closed = yield* eventually(() =>
        entries.find((entry) => String(entry.message).startsWith("connection closed"))
      )
      expect(closed.message).toBe(
        "connection closed: sent 1009 (message too big) over size limit (17 > 16 bytes); no close frame received"
      )
    })
  )

  it.live("a handler's own log lines carry its connectionId, as the library's do", () =>
    Effect.gen(function* () {
      const { entries, layer } = recordingLogger()
      const ids = yield* Deferred.make<string>()
      const server = yield* serveLocal(
        (ws: WebSocket) =>
          Effect.gen(function* () {
            yield* Deferred.succeed(ids, ws.id)
            const message = yield* ws.recv
            yield* Effect.log(`handler got ${String(message)}`)
            // A fiber the handler forks inherits them.
            yield* Effect.forkChild(Effect.logWarning("forked"))
            yield* ws.send(message)
            yield* ws.recv
          }),
        { processRequest: () => Effect.as(Effect.log("hook"), undefined) }
      ).pipe(Effect.provide(layer))
      const onMessage = yield* serveLocal(
        Server.onMessage((message, ws) =>
          Effect.andThen(Effect.log(`onMessage got ${String(message)}`), ws.send(message))
        )
      ).pipe(Effect.provide(layer))
      for (const target of [server, onMessage]) {
        const ws = yield* Client.connect(uriOf(target), { compression: null })
        yield* ws.send("x")
        yield* ws.recv
        // The client's own lines: with the connection's annotations added by the application.
        yield* Effect.log("client got x").pipe(Effect.annotateLogs(ws.logAnnotations), Effect.provide(layer))
        expect(ws.logAnnotations).toEqual({ connectionId: ws.id })
        const index = entries.findIndex((entry) => entry.message === "client got x")
        expect(entries[index]?.annotations.connectionId).toBe(ws.id)
        entries.splice(index, 1)
        yield* ws.close()
      }
      const id = yield* Deferred.await(ids)
      const byMessage = (message: string) => eventually(() => entries.find((entry) => entry.message === message))
      for (const message of ["hook", "handler got x", "forked"]) {
        expect((yield* byMessage(message)).annotations.connectionId).toBe(id)
      }
      const other = yield* byMessage("onMessage got x")
      expect(typeof other.annotations.connectionId).toBe("string")
      expect(other.annotations.connectionId).not.toBe(id)
    })
  )
})

describe("Effect 4 shell: spans", () => {
  it.live("every line logged at Debug: none is an event of the serve span or the caller's", () =>
    Effect.gen(function* () {
      const { layer } = recordingLogger()
      const { spans, tracer } = memoryTracer()
      yield* Effect.gen(function* () {
        const server = yield* serveLocal(echo)
        for (let i = 0; i < 3; i++) {
          yield* Effect.scoped(
            Effect.gen(function* () {
              const ws = yield* Client.connect(uriOf(server), { compression: null })
              yield* ws.send("hello")
              yield* ws.recv
              yield* ws.close()
            })
          )
        }
        yield* eventually(() => (connectionSpans(spans, "server").every((span) => span.ended) ? true : undefined))
      }).pipe(
        Effect.withSpan("test"),
        Effect.withTracer(tracer),
        Effect.provide(layer),
        Effect.provideService(References.MinimumLogLevel, "Debug"),
        Effect.scoped
      )
      const longLived = spans.filter(
        (span) => !span.name.startsWith("effect-websockets.") || span.name.endsWith("serve")
      )
      expect(longLived.map((span) => span.name).sort()).toEqual(["effect-websockets.serve", "test"])
      for (const span of longLived) expect(span.events).toEqual([])
      // The connection lines are events of the connection's span, which ends with it.
      const server = connectionSpans(spans, "server")
      expect(server).toHaveLength(3)
      for (const span of server) {
        expect(span.events).toEqual(["connection open", "connection closed: received 1000 (OK); then sent 1000 (OK)"])
      }
    })
  )

  it.live("a clean close with an application's code (4000) ends both connection spans without error", () =>
    Effect.gen(function* () {
      const { spans, tracer } = memoryTracer()
      yield* Effect.gen(function* () {
        // The server closes with 4001 on one path, the client with 4000 on the other.
        const server = yield* serveLocal(
          (ws: WebSocket): Effect.Effect<void, unknown> =>
            ws.path === "/server-closes" ? ws.close(4001, "done") : echo(ws)
        )
        const ws = yield* Client.connect(uriOf(server), { compression: null })
        yield* ws.close(4000, "bye")
        const other = yield* Client.connect(uriOf(server, "/server-closes"), { compression: null })
        yield* other.waitClosed
      }).pipe(Effect.withTracer(tracer), Effect.scoped)
      for (const side of ["server", "client"] as const) {
        const ended = yield* eventually(() => {
          const found = connectionSpans(spans, side).filter((span) => span.ended)
          return found.length === 2 ? found : undefined
        })
        for (const span of ended) {
          expect(span.attributes.get("websocket.close.clean")).toBe(true)
          expect(span.outcome).toBe("success")
        }
        const codes = ended.map((span) => span.attributes.get("websocket.close.sent.code")).sort()
        expect(codes).toEqual([4000, 4001])
      }
    })
  )

  it.live("a clean close with 1011 after a handler failed still fails the spans", () =>
    Effect.gen(function* () {
      const { spans, tracer } = memoryTracer()
      yield* Effect.gen(function* () {
        const server = yield* serveLocal((_ws: WebSocket) => Effect.fail("boom"))
        const ws = yield* Client.connect(uriOf(server), { compression: null })
        yield* ws.waitClosed
        expect(ws.closeCode).toBe(1011)
      }).pipe(Effect.withTracer(tracer), Effect.provideService(References.MinimumLogLevel, "None"), Effect.scoped)
      for (const side of ["server", "client"] as const) {
        const span = yield* eventually(() => connectionSpans(spans, side).find((s) => s.ended))
        expect(span.attributes.get("websocket.close.clean")).toBe(true)
        expect(span.outcome).toBe("ConnectionClosedError")
      }
    })
  )
})
