/**
 * The backplane behind topics: it carries the messages published on a topic to the other
 * `Topics` services that have subscribers for it, in this process or, for a backplane such as
 * {@link https://redis.io Redis} (see `RedisBackplane`), in every process connected to it.
 *
 * Each `Topics` service joins the backplane as one node. A node delivers what it publishes to its
 * own subscribers itself; the backplane delivers it to the other nodes only, so local delivery
 * never waits for, nor depends on, the backplane.
 *
 * Delivery guarantees of every backplane here: at most once (a message published while a node is
 * unreachable is lost for it, never replayed), in order per publisher (messages published by one
 * node reach each other node in the order they were published).
 *
 * @since 0.1.0
 */
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type * as Scope from "effect/Scope"
import type { BackplaneError } from "./Errors.js"
import { Service } from "./internal/effectCompat.js"
import { TopicHub } from "./internal/topicHub.js"
import type { Data } from "./WebSocket.js"

/**
 * Receives the messages of the topics a node follows, published by other nodes.
 * @since 0.1.0
 * @category models
 */
export type Deliver = (topic: string, message: Data) => void

/**
 * A `Topics` service's membership of a backplane.
 * @since 0.1.0
 * @category models
 */
export interface BackplaneNode {
  /**
   * Sends a message to the other nodes that follow `topic`. Fails when the message could not be
   * handed to the backplane (it then reached no other process).
   */
  readonly publish: (topic: string, message: Data) => Effect.Effect<void, BackplaneError>
  /**
   * Starts receiving the messages of `topic` published by other nodes. Never fails: a backplane
   * that is down follows the topic once it reconnects.
   */
  readonly follow: (topic: string) => Effect.Effect<void>
  /** Stops receiving the messages of `topic`. */
  readonly unfollow: (topic: string) => Effect.Effect<void>
}

/**
 * A backplane: nodes join it to exchange topic messages.
 * @since 0.1.0
 * @category models
 */
export interface BackplaneService {
  /** Name used in errors and logs, for example `"memory"` or `"redis"`. */
  readonly name: string
  /**
   * Joins as a node that receives, through `deliver`, the messages of the topics it follows that
   * other nodes publish. The node leaves when the scope closes.
   */
  readonly join: (deliver: Deliver) => Effect.Effect<BackplaneNode, never, Scope.Scope>
}

/**
 * Tag of the {@link BackplaneService}.
 * @since 0.1.0
 * @category tags
 */
export class Backplane extends Service<Backplane, BackplaneService>()("effect-websockets/Backplane") {}

/**
 * A backplane within this process: the nodes joined to it exchange messages synchronously. This is
 * the default; nothing to install.
 * @since 0.1.0
 * @category constructors
 */
export const makeMemory: Effect.Effect<BackplaneService> = Effect.sync(() => {
  const hub = new TopicHub()
  return {
    name: "memory",
    join: (deliver) =>
      Effect.acquireRelease(
        Effect.sync(() => hub.join(deliver)),
        (node) => Effect.sync(() => hub.leave(node))
      ).pipe(
        Effect.map(
          (node): BackplaneNode => ({
            publish: (topic, message) => Effect.sync(() => hub.dispatch(topic, message, node)),
            follow: (topic) => Effect.sync(() => void hub.follow(node, topic)),
            unfollow: (topic) => Effect.sync(() => void hub.unfollow(node, topic))
          })
        )
      )
  }
})

/**
 * Layer of the in-process backplane.
 * @since 0.1.0
 * @category layers
 */
export const layerMemory: Layer.Layer<Backplane> = Layer.effect(Backplane, makeMemory)
