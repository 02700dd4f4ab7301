/**
 * A {@link Backplane} over Redis pub/sub: a message published on a topic in any process reaches the
 * subscribers of that topic in every process connected to the same Redis.
 *
 * Uses the official Node client, `@redis/client`, an optional peer dependency: install it to use
 * this module (`npm install @redis/client`). It is loaded when the layer is built, so programs that
 * do not use Redis never load it.
 *
 * - Each topic is a Redis channel (`channelPrefix` + topic); a process subscribes to a channel
 *   while some local connection is subscribed to the topic, so Redis sends a process only the
 *   topics it needs.
 * - A message carries its kind (text or binary) and the id of the publishing process: text and
 *   binary messages cross unchanged, and a process skips its own messages (it delivered them
 *   locally already, without waiting for Redis).
 * - Order is kept per publisher (one connection writes every `PUBLISH` of a process in order, and
 *   Redis forwards them in order). Delivery is at most once: Redis pub/sub stores nothing, so a
 *   process that is disconnected misses what is published meanwhile.
 * - When Redis goes away: local delivery goes on, `publish` fails with `BackplaneUnavailable`
 *   (nothing is queued, so a long outage costs no memory), and the layer reconnects on the
 *   `reconnect` schedule, then subscribes again to every topic that has local subscribers.
 *   Publications are pipelined (see `maxInFlight`): those in flight when the connection drops are
 *   lost, and the next `publish` reports the outage.
 *
 * @since 0.1.0
 */
import { randomBytes } from "node:crypto"
import type { RedisClientType } from "@redis/client"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import type * as Layer from "effect/Layer"
import * as Schedule from "effect/Schedule"
import type * as Scope from "effect/Scope"
import { Backplane, type BackplaneNode, type BackplaneService } from "./Backplane.js"
import { type BackplaneError, BackplaneFailure, BackplaneUnavailable } from "./Errors.js"
import {
  callback,
  catchAll,
  type DurationInput,
  decodeDuration,
  scopedLayer,
  shorterDelay
} from "./internal/effectCompat.js"
import { TopicHub } from "./internal/topicHub.js"
import type { Data } from "./WebSocket.js"

/**
 * Redis of the examples and tests: the default port on loopback.
 * @since 0.1.0
 * @category constants
 */
export const DEFAULT_URL = "redis://127.0.0.1:6379"

/**
 * Prefix of the Redis channels of topics, so that other users of the same Redis are not disturbed.
 * @since 0.1.0
 * @category constants
 */
export const DEFAULT_CHANNEL_PREFIX = "effect-websockets:"

/**
 * Default reconnection schedule: exponential from 100 ms with jitter, capped at 5 s, forever.
 * @since 0.1.0
 * @category constants
 */
export const defaultReconnectSchedule: Schedule.Schedule<unknown> = shorterDelay(
  Schedule.jittered(Schedule.exponential("100 millis", 1.618)),
  Schedule.spaced("5 seconds")
)

/**
 * Default bound of unanswered `PUBLISH` commands per process (about 1,024 messages of client memory).
 * @since 0.1.0
 * @category constants
 */
export const DEFAULT_MAX_IN_FLIGHT = 1024

/**
 * Options of the Redis backplane.
 * @since 0.1.0
 * @category models
 */
export interface RedisBackplaneOptions {
  /** Redis URL, `redis://[[user]:password@]host[:port][/db]` or `rediss://` for TLS. Default {@link DEFAULT_URL}. */
  readonly url?: string | undefined
  /** Prefix of the channel names. Default {@link DEFAULT_CHANNEL_PREFIX}. */
  readonly channelPrefix?: string | undefined
  /** Delays between connection attempts. Default {@link defaultReconnectSchedule}. */
  readonly reconnect?: Schedule.Schedule<unknown, unknown> | undefined
  /** Time allowed for each connection attempt. Default 5 seconds. */
  readonly connectTimeout?: DurationInput | undefined
  /**
   * `PUBLISH` commands of this process sent without waiting for Redis's reply; beyond, `publish`
   * waits for its reply. Default {@link DEFAULT_MAX_IN_FLIGHT}.
   */
  readonly maxInFlight?: number | undefined
}

/** Size of the header of a message on a channel: kind (1 byte), publishing process (16 bytes). */
const HEADER_SIZE = 17
const KIND_TEXT = 1
const KIND_BINARY = 2

const NAME = "redis"

type Client = RedisClientType

/** One connection to Redis: a client for commands, one for subscriptions (which has no other use). */
interface Link {
  readonly pub: Client
  readonly sub: Client
  /** Topics subscribed on this link. */
  readonly channels: Set<string>
  lost: boolean
  onLost: (() => void) | undefined
}

const encode = (origin: Buffer, message: Data): Buffer => {
  if (typeof message === "string") {
    const out = Buffer.allocUnsafe(HEADER_SIZE + Buffer.byteLength(message, "utf8"))
    out[0] = KIND_TEXT
    origin.copy(out, 1)
    out.write(message, HEADER_SIZE, "utf8")
    return out
  }
  const out = Buffer.allocUnsafe(HEADER_SIZE + message.byteLength)
  out[0] = KIND_BINARY
  origin.copy(out, 1)
  out.set(message, HEADER_SIZE)
  return out
}

/**
 * Connects to Redis and returns the backplane. Waits for the first connection attempt only: if
 * Redis is down at start, the backplane starts anyway and keeps trying on the `reconnect`
 * schedule. Fails only when `@redis/client` cannot be loaded.
 * @since 0.1.0
 * @category constructors
 */
export const make = (
  options: RedisBackplaneOptions = {}
): Effect.Effect<BackplaneService, BackplaneFailure, Scope.Scope> =>
  Effect.gen(function* () {
    const { createClient } = yield* Effect.tryPromise({
      try: () => import("@redis/client"),
      catch: (cause) => new BackplaneFailure({ backplane: NAME, operation: "load @redis/client", cause })
    })
    const url = options.url ?? DEFAULT_URL
    const prefix = options.channelPrefix ?? DEFAULT_CHANNEL_PREFIX
    const connectTimeout = Duration.toMillis(decodeDuration(options.connectTimeout ?? "5 seconds"))
    const schedule = options.reconnect ?? defaultReconnectSchedule
    const maxInFlight = options.maxInFlight ?? DEFAULT_MAX_IN_FLIGHT
    let inFlight = 0
    // Identifies this process's messages, which it skips when Redis echoes them back.
    const origin = randomBytes(HEADER_SIZE - 1)
    const hub = new TopicHub()
    // Every client not yet destroyed, so that the scope's end destroys them even mid-connection.
    const clients = new Set<Client>()
    let current: Link | undefined

    const onMessage = (message: Buffer, channel: Buffer): void => {
      if (message.byteLength < HEADER_SIZE || origin.equals(message.subarray(1, HEADER_SIZE))) return
      const payload = message.subarray(HEADER_SIZE)
      const data: Data = message[0] === KIND_TEXT ? payload.toString("utf8") : payload
      hub.dispatch(channel.toString("utf8").slice(prefix.length), data)
    }

    const destroy = (client: Client): void => {
      clients.delete(client)
      try {
        client.destroy()
      } catch {
        // Already closed.
      }
    }

    const connectOnce: Effect.Effect<Link, BackplaneFailure> = Effect.tryPromise({
      try: async () => {
        const make = () => {
          const client = createClient({
            url,
            // We reconnect ourselves, on our schedule; and a command while disconnected fails at
            // once rather than wait in an unbounded offline queue.
            socket: { reconnectStrategy: false, connectTimeout },
            disableOfflineQueue: true
          }) as unknown as Client
          clients.add(client)
          return client
        }
        const link: Link = { pub: make(), sub: make(), channels: new Set(), lost: false, onLost: undefined }
        const lose = () => {
          if (link.lost) return
          link.lost = true
          link.onLost?.()
        }
        for (const client of [link.pub, link.sub]) {
          client.on("error", lose)
          client.on("end", lose)
        }
        try {
          await Promise.all([link.pub.connect(), link.sub.connect()])
        } catch (cause) {
          destroy(link.pub)
          destroy(link.sub)
          throw cause
        }
        return link
      },
      catch: (cause) => new BackplaneFailure({ backplane: NAME, operation: "connect", cause })
    })

    /** Subscribes the link to every topic with local subscribers, and unsubscribes it from the others. */
    const sync = (link: Link): Effect.Effect<void> =>
      Effect.suspend(() => {
        const add: Array<string> = []
        const remove: Array<string> = []
        for (const topic of hub.topics()) if (!link.channels.has(topic)) add.push(prefix + topic)
        for (const topic of link.channels) if (!hub.has(topic)) remove.push(prefix + topic)
        for (const channel of add) link.channels.add(channel.slice(prefix.length))
        for (const channel of remove) link.channels.delete(channel.slice(prefix.length))
        if (add.length === 0 && remove.length === 0) return Effect.void
        return Effect.tryPromise(async () => {
          if (add.length > 0) await link.sub.subscribe(add, onMessage, true)
          if (remove.length > 0) await link.sub.unsubscribe(remove, onMessage, true)
        }).pipe(
          // The link is lost (the session reconnects and syncs again) or Redis refused.
          catchAll((error) => Effect.logWarning("redis backplane: subscription failed", error.cause))
        )
      })

    const waitLost = (link: Link): Effect.Effect<void> =>
      callback<void>((resume) => {
        if (link.lost) return resume(Effect.void)
        link.onLost = () => resume(Effect.void)
      })

    const firstAttempt = yield* Deferred.make<void>()
    const session = Effect.gen(function* () {
      const link = yield* connectOnce.pipe(
        Effect.tapError((error) =>
          Effect.andThen(
            Deferred.succeed(firstAttempt, undefined),
            Effect.logWarning("redis backplane: connection failed", error.cause)
          )
        ),
        Effect.retry(schedule)
      )
      current = link
      yield* sync(link)
      yield* Deferred.succeed(firstAttempt, undefined)
      yield* waitLost(link)
      current = undefined
      destroy(link.pub)
      destroy(link.sub)
      yield* Effect.logWarning("redis backplane: connection lost, reconnecting")
    })
    yield* Effect.addFinalizer(() =>
      Effect.sync(() => {
        current = undefined
        for (const client of [...clients]) destroy(client)
      })
    )
    yield* session.pipe(
      Effect.forever,
      catchAll((error) =>
        Effect.logError("redis backplane: reconnection schedule exhausted, staying disconnected", error.cause)
      ),
      Effect.forkScoped
    )
    yield* Deferred.await(firstAttempt)

    const join = (deliver: (topic: string, message: Data) => void) =>
      Effect.acquireRelease(
        Effect.sync(() => hub.join(deliver)),
        (node) =>
          Effect.suspend(() => {
            const orphaned = hub.leave(node)
            return orphaned.length > 0 && current !== undefined ? sync(current) : Effect.void
          })
      ).pipe(
        Effect.map(
          (node): BackplaneNode => ({
            publish: (topic, message) =>
              Effect.suspend((): Effect.Effect<unknown, BackplaneError> => {
                hub.dispatch(topic, message, node)
                const link = current
                if (link === undefined || link.lost) return Effect.fail(new BackplaneUnavailable({ backplane: NAME }))
                const payload = encode(origin, message)
                // Pipelined: the command is written now, in order, and the reply is not awaited, so
                // a publisher is not held to one Redis round trip per message. Past `maxInFlight`
                // unanswered commands (Redis slower than the publishers), publish waits for this
                // one's reply, which bounds the client's queue. A command lost with the connection
                // is one more message lost (at most once); the next publish finds the link down.
                const reply = link.pub.publish(prefix + topic, payload)
                inFlight++
                const settled = reply.then(
                  () => {
                    inFlight--
                  },
                  (cause: unknown) => {
                    inFlight--
                    throw cause
                  }
                )
                if (inFlight <= maxInFlight) {
                  settled.catch(() => {})
                  return Effect.void
                }
                return Effect.tryPromise({
                  try: () => settled,
                  catch: (cause) => new BackplaneFailure({ backplane: NAME, operation: "publish", cause })
                })
              }).pipe(Effect.asVoid),
            follow: (topic) =>
              Effect.suspend(() => (hub.follow(node, topic) && current !== undefined ? sync(current) : Effect.void)),
            unfollow: (topic) =>
              Effect.suspend(() => (hub.unfollow(node, topic) && current !== undefined ? sync(current) : Effect.void))
          })
        )
      )

    return { name: NAME, join } satisfies BackplaneService
  })

/**
 * Layer of the Redis {@link Backplane}; disconnects when released.
 * @since 0.1.0
 * @category layers
 */
export const layer = (options: RedisBackplaneOptions = {}): Layer.Layer<Backplane, BackplaneFailure> =>
  scopedLayer(Backplane, make(options))
