/**
 * The metrics every connection updates (Effect's `Metric`, so any Effect metrics exporter, such as
 * `@effect/opentelemetry`'s, publishes them). Labels (tags in Effect 3, attributes in Effect 4):
 * `side` (`"server"` or `"client"`) on all of them, plus `type` (`"text"` or `"binary"`) on
 * messages and bytes, `code` on closed connections, `error` (the error's tag) on handshake failures
 * and `reason` (`"maxQueue"`, `"writeLimit"` or `"send"`) on backpressure pauses. Labels set around
 * `serve` or `connect` (`Effect.tagMetrics` in Effect 3, `Metric.CurrentMetricAttributes` in
 * Effect 4) are added too.
 *
 * Updating them costs a few tens of nanoseconds per message; the `metrics: false` option of a
 * server or a client turns them off.
 *
 * @example
 * ```ts
 * import { Metric } from "effect"
 * import { Metrics } from "effect-websockets"
 *
 * // Text messages received by servers:
 * const received = Metric.value(Metric.tagged(Metric.tagged(Metrics.messagesReceived, "side", "server"), "type", "text"))
 * // In Effect 4: Metric.value(Metric.withAttributes(Metrics.messagesReceived, { side: "server", type: "text" }))
 * ```
 * @since 0.3.0
 */
import * as Metric from "effect/Metric"
import { exponentialHistogram } from "./internal/effectCompat.js"

/**
 * Connections open now (after their opening handshake), by `side`.
 * @since 0.3.0
 * @category metrics
 */
export const connectionsOpen = Metric.gauge("effect_websockets_connections_open", {
  description: "WebSocket connections open now"
})

/**
 * Connections opened (opening handshake completed), by `side`.
 * @since 0.3.0
 * @category metrics
 */
export const connectionsOpened = Metric.counter("effect_websockets_connections_opened_total", {
  description: "WebSocket connections opened",
  incremental: true
})

/**
 * Connections closed, by `side` and `code`: the close code received (1005 without code, 1006
 * without closing frame, as `closeCode`).
 * @since 0.3.0
 * @category metrics
 */
export const connectionsClosed = Metric.counter("effect_websockets_connections_closed_total", {
  description: "WebSocket connections closed, by close code received",
  incremental: true
})

/**
 * Opening handshakes that failed, by `side` and `error` (the tag of the handshake error, such as
 * `InvalidUpgrade` or `InvalidStatus`; `InvalidMessage` for a rejection by `processRequest`).
 * @since 0.3.0
 * @category metrics
 */
export const handshakeFailures = Metric.counter("effect_websockets_handshake_failures_total", {
  description: "WebSocket opening handshakes that failed, by error",
  incremental: true
})

/**
 * Messages received, by `side` and `type`.
 * @since 0.3.0
 * @category metrics
 */
export const messagesReceived = Metric.counter("effect_websockets_messages_received_total", {
  description: "WebSocket messages received",
  incremental: true
})

/**
 * Messages sent, by `side` and `type`.
 * @since 0.3.0
 * @category metrics
 */
export const messagesSent = Metric.counter("effect_websockets_messages_sent_total", {
  description: "WebSocket messages sent",
  incremental: true
})

/**
 * Payload bytes of the messages received (after decompression), by `side` and `type`.
 * @since 0.3.0
 * @category metrics
 */
export const bytesReceived = Metric.counter("effect_websockets_bytes_received_total", {
  description: "Payload bytes of WebSocket messages received",
  incremental: true
})

/**
 * Payload bytes of the messages sent (before compression), by `side` and `type`.
 * @since 0.3.0
 * @category metrics
 */
export const bytesSent = Metric.counter("effect_websockets_bytes_sent_total", {
  description: "Payload bytes of WebSocket messages sent",
  incremental: true
})

/**
 * Round-trip times of pings (keepalive and `ping()`) in milliseconds, by `side`.
 * @since 0.3.0
 * @category metrics
 */
export const pingRoundTrip = exponentialHistogram(
  "effect_websockets_ping_rtt_ms",
  { start: 0.25, factor: 2, count: 16 },
  "Round-trip time of WebSocket pings in milliseconds"
)

/**
 * Times a connection stopped reading or a `send` waited, by `side` and `reason`: `"maxQueue"` (the
 * application reads slower than messages arrive), `"writeLimit"` (the peer reads slower than we
 * answer it) or `"send"` (a `send` waited for the write buffer to drain).
 * @since 0.3.0
 * @category metrics
 */
export const backpressurePauses = Metric.counter("effect_websockets_backpressure_pauses_total", {
  description: "Times WebSocket connections paused for backpressure, by reason",
  incremental: true
})
