/**
 * Topics (publish/subscribe): connections subscribe to named topics, and `publish` sends a message
 * to every subscriber of a topic, in this process and, through the {@link Backplane}, in every
 * process sharing the backplane (see `RedisBackplane`).
 *
 * Local delivery works as the server's `broadcast`: the message is encoded once for all receivers
 * (and compressed once for those that negotiated permessage-deflate without context takeover), and
 * a receiver whose write buffer is above `writeLimit` is skipped rather than waited for. Skips are
 * counted in the result of `publish` and in {@link TopicsService.stats}.
 *
 * Delivery is at most once and in order per publisher: a slow receiver misses messages, and while
 * the backplane is down the messages published meanwhile reach local subscribers only.
 *
 * @example
 * ```ts
 * import { Effect, Stream } from "effect"
 * import { Errors, Topics, type WebSocket } from "effect-websockets"
 *
 * const chat = (ws: WebSocket.WebSocket) =>
 *   Effect.gen(function* () {
 *     const topics = yield* Topics.Topics
 *     yield* topics.subscribe(ws, "chat")
 *     yield* Stream.runForEach(ws.messages, (message) =>
 *       topics.publish("chat", message).pipe(Effect.catchIf(Errors.isBackplaneError, Effect.logWarning))
 *     )
 *   })
 * // provide Topics.layer with Backplane.layerMemory, or RedisBackplane.layer({ url })
 * ```
 *
 * @since 0.1.0
 */
import * as Effect from "effect/Effect"
import * as FiberSet from "effect/FiberSet"
import * as Layer from "effect/Layer"
import type * as Scope from "effect/Scope"
import { Backplane, layerMemory as backplaneMemory } from "./Backplane.js"
import { State } from "./Connection.js"
import type { BackplaneError } from "./Errors.js"
import { Service, scopedLayer } from "./internal/effectCompat.js"
import { fanOut } from "./internal/fanOut.js"
import { WebSocketImpl } from "./internal/webSocket.js"
import type { Data, WebSocket } from "./WebSocket.js"

/**
 * Outcome of a local delivery: connections that got the message, and connections skipped because
 * their write buffer was above `writeLimit` (or they were closing).
 * @since 0.1.0
 * @category models
 */
export interface Delivery {
  /** Connections that got the message. */
  readonly delivered: number
  /** Connections skipped: closed, or with a write buffer over `writeLimit`. */
  readonly skipped: number
}

/**
 * Counters since the service started, over local and remote publications alike.
 * @since 0.1.0
 * @category models
 */
export interface TopicsStats {
  /** Messages handed to a connection. */
  readonly delivered: number
  /** Messages not handed to a connection that was subscribed (write buffer over `writeLimit`, or closing). */
  readonly skipped: number
}

/**
 * The topics of one process (or one server).
 * @since 0.1.0
 * @category models
 */
export interface TopicsService {
  /**
   * Subscribes a connection to a topic; it is unsubscribed from all topics when it closes. Does
   * nothing for a connection that is already closed. When the first local subscriber of a topic
   * comes, the backplane starts following it (waiting for the backplane's acknowledgement while
   * it is connected).
   */
  readonly subscribe: (ws: WebSocket, topic: string) => Effect.Effect<void>
  /** Unsubscribes a connection from a topic. */
  readonly unsubscribe: (ws: WebSocket, topic: string) => Effect.Effect<void>
  /**
   * Sends a message to every subscriber of the topic: first to the local ones, at once, then
   * through the backplane to the other processes. Fails with a `BackplaneError` when the
   * backplane could not take the message; local subscribers got it all the same.
   */
  readonly publish: (topic: string, message: Data) => Effect.Effect<Delivery, BackplaneError>
  /** The local subscribers of a topic (a live view). */
  readonly subscribers: (topic: string) => ReadonlySet<WebSocket>
  /** The topics a connection is subscribed to (a live view). */
  readonly topicsOf: (ws: WebSocket) => ReadonlySet<string>
  /** Delivery counters. */
  readonly stats: Effect.Effect<TopicsStats>
}

/**
 * Tag of the {@link TopicsService}.
 * @since 0.1.0
 * @category tags
 */
export class Topics extends Service<Topics, TopicsService>()("effect-websockets/Topics") {}

const EMPTY: ReadonlySet<never> = new Set()

/**
 * Creates the topics of this process, joined to the {@link Backplane}; they leave it when the scope
 * closes.
 * @since 0.1.0
 * @category constructors
 */
export const make: Effect.Effect<TopicsService, never, Backplane | Scope.Scope> = Effect.gen(function* () {
  const backplane = yield* Backplane
  const subscribers = new Map<string, Set<WebSocket>>()
  const subscriptions = new Map<WebSocket, Set<string>>()
  let delivered = 0
  let skipped = 0

  const deliverLocally = (topic: string, message: Data): Delivery => {
    const targets = subscribers.get(topic)
    if (targets === undefined) return { delivered: 0, skipped: 0 }
    const result = fanOut(message, targets)
    delivered += result.delivered
    skipped += result.skipped
    return result
  }

  const node = yield* backplane.join((topic, message) => void deliverLocally(topic, message))

  // Removes the subscription; returns whether the topic lost its last local subscriber.
  const remove = (ws: WebSocket, topic: string): boolean => {
    const topics = subscriptions.get(ws)
    if (topics === undefined || !topics.delete(topic)) return false
    if (topics.size === 0) subscriptions.delete(ws)
    const set = subscribers.get(topic)!
    set.delete(ws)
    if (set.size > 0) return false
    subscribers.delete(topic)
    return true
  }

  // Once the service is gone (its scope closed), a connection closing later has nothing to undo.
  let active = true
  yield* Effect.addFinalizer(() =>
    Effect.sync(() => {
      active = false
      subscribers.clear()
      subscriptions.clear()
    })
  )

  const dropConnection = (ws: WebSocket): Effect.Effect<void> =>
    Effect.suspend(() => {
      const topics = subscriptions.get(ws)
      if (topics === undefined || !active) return Effect.void
      const orphaned = [...topics].filter((topic) => remove(ws, topic))
      return Effect.forEach(orphaned, node.unfollow, { discard: true })
    })

  // Connections not of this library (never delivered to anyway) are watched by a fiber instead,
  // interrupted with the service.
  const runWatcher = yield* FiberSet.makeRuntime<never>()

  const watchClose = (ws: WebSocket): void => {
    if (ws instanceof WebSocketImpl) {
      // One listener per subscribed connection, no fiber: the connection's own 'close' listener,
      // registered first, has already moved it to CLOSED when this one runs.
      ws.socket.once("close", () => Effect.runFork(dropConnection(ws)))
    } else {
      runWatcher(Effect.andThen(ws.waitClosed, dropConnection(ws)))
    }
  }

  const subscribe = (ws: WebSocket, topic: string): Effect.Effect<void> =>
    Effect.suspend(() => {
      if (!active || ws.state === State.CLOSED || ws.state === State.CLOSING) return Effect.void
      let topics = subscriptions.get(ws)
      if (topics === undefined) {
        topics = new Set()
        subscriptions.set(ws, topics)
        watchClose(ws)
      }
      if (topics.has(topic)) return Effect.void
      topics.add(topic)
      let set = subscribers.get(topic)
      const first = set === undefined
      if (set === undefined) {
        set = new Set()
        subscribers.set(topic, set)
      }
      set.add(ws)
      return first ? node.follow(topic) : Effect.void
    })

  const unsubscribe = (ws: WebSocket, topic: string): Effect.Effect<void> =>
    Effect.suspend(() => (remove(ws, topic) ? node.unfollow(topic) : Effect.void))

  const publish = (topic: string, message: Data): Effect.Effect<Delivery, BackplaneError> =>
    Effect.suspend(() => {
      const result = deliverLocally(topic, message)
      return Effect.as(node.publish(topic, message), result)
    })

  return {
    subscribe,
    unsubscribe,
    publish,
    subscribers: (topic) => subscribers.get(topic) ?? EMPTY,
    topicsOf: (ws) => subscriptions.get(ws) ?? EMPTY,
    stats: Effect.sync(() => ({ delivered, skipped }))
  } satisfies TopicsService
})

/**
 * Layer of the {@link Topics} service over the {@link Backplane} it is given.
 * @since 0.1.0
 * @category layers
 */
export const layer: Layer.Layer<Topics, never, Backplane> = scopedLayer(Topics, make)

/**
 * Topics within this process only: {@link layer} with the in-memory backplane.
 * @since 0.1.0
 * @category layers
 */
export const layerMemory: Layer.Layer<Topics> = layer.pipe(Layer.provide(backplaneMemory))
