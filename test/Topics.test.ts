/**
 * Topics over the in-memory backplane, on real loopback connections (`ws` clients): subscribe,
 * unsubscribe, unsubscription on close, encode-once delivery (plain and compressed without
 * context takeover), skipping receivers over `writeLimit`, and two Topics services sharing one
 * backplane.
 */
import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Stream from "effect/Stream"
import { afterEach, vi } from "vitest"
import * as Backplane from "../src/Backplane.js"
import { PerMessageDeflate } from "../src/extensions/PermessageDeflate.js"
import type { ServeOptions } from "../src/Server.js"
import * as Topics from "../src/Topics.js"
import type { WebSocket } from "../src/WebSocket.js"
import { bounded, portOf, rawClient, serveLocal, uriOf } from "./fixtures/loopback.js"
import { recordingClient, until } from "./fixtures/scaling.js"

afterEach(() => {
  vi.restoreAllMocks()
})

/** A server whose handler subscribes each connection to the topic named by its path. */
const topicServer = (options: ServeOptions = {}) =>
  Effect.gen(function* () {
    const topics = yield* Topics.Topics
    const server = yield* serveLocal(
      (ws: WebSocket) =>
        Effect.zipRight(
          topics.subscribe(ws, ws.path.slice(1)),
          Stream.runForEach(ws.messages, (message) => topics.publish(ws.path.slice(1), message))
        ),
      options
    )
    return { topics, server }
  })

describe("Topics", () => {
  it.scopedLive("publish reaches every subscriber of the topic, and only them", () =>
    Effect.gen(function* () {
      const { topics, server } = yield* topicServer()
      const a = yield* recordingClient(uriOf(server, "/red"))
      const b = yield* recordingClient(uriOf(server, "/red"))
      const c = yield* recordingClient(uriOf(server, "/blue"))
      yield* until(() => topics.subscribers("red").size === 2 && topics.subscribers("blue").size === 1)
      const delivery = yield* topics.publish("red", "hello")
      expect(delivery).toEqual({ delivered: 2, skipped: 0 })
      yield* topics.publish("red", new Uint8Array([1, 2, 3]))
      yield* a.waitFor(new Uint8Array([1, 2, 3]))
      yield* b.waitFor(new Uint8Array([1, 2, 3]))
      expect(a.received).toEqual(["hello", Buffer.from([1, 2, 3])])
      expect(b.received).toEqual(["hello", Buffer.from([1, 2, 3])])
      // A client's own message comes back to it, as to the others.
      c.socket.send("from c")
      yield* c.waitFor("from c")
      expect(a.received).not.toContain("from c")
      expect(yield* topics.stats).toEqual({ delivered: 5, skipped: 0 })
    }).pipe(Effect.provide(Topics.layerMemory), bounded(8000))
  )

  it.scopedLive("unsubscribe stops delivery; a closed connection leaves every topic", () =>
    Effect.gen(function* () {
      const { topics, server } = yield* topicServer()
      const a = yield* recordingClient(uriOf(server, "/t"))
      yield* recordingClient(uriOf(server, "/t"))
      yield* until(() => topics.subscribers("t").size === 2)
      const [first] = [...topics.subscribers("t")]
      yield* topics.subscribe(first!, "other")
      expect(topics.topicsOf(first!)).toEqual(new Set(["t", "other"]))
      yield* topics.unsubscribe(first!, "other")
      expect(topics.subscribers("other").size).toBe(0)
      a.socket.close()
      yield* until(() => topics.subscribers("t").size === 1)
      expect((yield* topics.publish("t", "x")).delivered).toBe(1)
      // Subscribing a closed connection does nothing (and keeps nothing).
      const gone = [...topics.subscribers("t")][0] === first ? undefined : first
      if (gone !== undefined) {
        yield* gone.waitClosed
        yield* topics.subscribe(gone, "late")
        expect(topics.subscribers("late").size).toBe(0)
        expect(topics.topicsOf(gone).size).toBe(0)
      }
    }).pipe(Effect.provide(Topics.layerMemory), bounded(8000))
  )

  it.scopedLive("compresses once for every receiver with deflate and no context takeover", () =>
    Effect.gen(function* () {
      const { topics, server } = yield* topicServer({ compression: "deflate" })
      const noTakeover = { serverNoContextTakeover: true, clientNoContextTakeover: true, threshold: 0 }
      const compressed = yield* Effect.forEach([1, 2, 3], () =>
        recordingClient(uriOf(server, "/news"), { perMessageDeflate: noTakeover })
      )
      const takeover = yield* recordingClient(uriOf(server, "/news"), { perMessageDeflate: { threshold: 0 } })
      const plain = yield* recordingClient(uriOf(server, "/news"))
      yield* until(() => topics.subscribers("news").size === 5)
      const encode = vi.spyOn(PerMessageDeflate.prototype, "encode")
      const message = "compressible ".repeat(200)
      const delivery = yield* topics.publish("news", message)
      expect(delivery).toEqual({ delivered: 5, skipped: 0 })
      // Once for the three without context takeover, once for the one with it.
      expect(encode).toHaveBeenCalledTimes(2)
      for (const client of [...compressed, takeover, plain]) yield* client.waitFor(message)
      // The compressed frames really were compressed (the ws clients inflated them).
      const [deflateServer] = [...server.connections].filter((ws) =>
        String((ws as unknown as { protocol: { extensions: Array<unknown> } }).protocol.extensions[0]).includes(
          "localNoContextTakeover=true"
        )
      )
      expect(deflateServer).toBeDefined()
    }).pipe(Effect.provide(Topics.layerMemory), bounded(8000))
  )

  it.scopedLive("skips a receiver whose write buffer is over writeLimit, and counts it", () =>
    Effect.gen(function* () {
      const { topics, server } = yield* topicServer({ writeLimit: 1024 })
      const fast = yield* recordingClient(uriOf(server, "/feed"))
      // A raw client that completes the handshake and then never reads.
      const stalled = yield* rawClient(portOf(server), "/feed")
      stalled.socket.pause()
      yield* until(() => topics.subscribers("feed").size === 2)
      const big = new Uint8Array(256 * 1024)
      let skipped = 0
      for (let i = 0; i < 200 && skipped === 0; i++) {
        skipped += (yield* topics.publish("feed", big)).skipped
        yield* fast.waitFor(big).pipe(Effect.zipRight(Effect.sync(() => fast.received.splice(0))))
      }
      expect(skipped).toBeGreaterThan(0)
      expect((yield* topics.stats).skipped).toBe(skipped)
    }).pipe(Effect.provide(Topics.layerMemory), bounded(9000))
  )

  it.scopedLive("two Topics services on one backplane deliver each other's messages", () =>
    Effect.gen(function* () {
      const backplane = yield* Backplane.makeMemory
      const build = Topics.make.pipe(Effect.provideService(Backplane.Backplane, backplane))
      const one = yield* build
      const two = yield* build
      const serverOne = yield* serveLocal((ws: WebSocket) => Effect.zipRight(one.subscribe(ws, "room"), ws.waitClosed))
      const serverTwo = yield* serveLocal((ws: WebSocket) => Effect.zipRight(two.subscribe(ws, "room"), ws.waitClosed))
      const a = yield* recordingClient(uriOf(serverOne))
      const b = yield* recordingClient(uriOf(serverTwo))
      yield* until(() => one.subscribers("room").size === 1 && two.subscribers("room").size === 1)
      yield* one.publish("room", "from one")
      yield* two.publish("room", new Uint8Array([9]))
      yield* a.waitFor("from one")
      yield* a.waitFor(new Uint8Array([9]))
      yield* b.waitFor("from one")
      yield* b.waitFor(new Uint8Array([9]))
      expect(a.received.length).toBe(2)
      expect(b.received.length).toBe(2)
    }).pipe(bounded(8000))
  )
})
