/**
 * effect-websockets: WebSocket client and server (RFC 6455, RFC 7692) for Effect applications.
 *
 * Each module is re-exported as a namespace (as in the example below).
 *
 * High level: {@link Client}, {@link Server}, {@link WebSocket}. Sans-I/O protocol:
 * {@link ClientConnection}, {@link ServerConnection}, {@link Connection}. Building blocks:
 * {@link Frames}, {@link Http11}, {@link Handshake}, {@link Headers}, {@link HeaderParsers},
 * {@link Uri}, {@link Utf8}, {@link Extension}, {@link PermessageDeflate}. Errors: {@link Errors}.
 * Messages as values of a `Schema`: {@link TypedMessages}.
 * Scaling out: {@link Topics}, {@link Backplane}, {@link RedisBackplane} (needs `@redis/client`,
 * loaded only when its layer is built), {@link Workers}.
 *
 * `SocketAdapter` (conversions to and from `@effect/platform`'s `Socket`) is not re-exported here:
 * it needs the optional peer `@effect/platform`, whose `Socket` module takes longer to load than
 * the rest of this library. Import it as `effect-websockets/SocketAdapter`. Likewise
 * `effect-websockets/HttpRouterRoute`, which needs the optional peers `@effect/platform` and
 * `@effect/platform-node`.
 *
 * @example
 * ```ts
 * import { Client, Server, WebSocket, Errors } from "effect-websockets"
 * ```
 *
 * @since 0.1.0
 */

/** @since 0.1.0 */
export * as Auth from "./Auth.js"
/** @since 0.1.0 */
export * as Backplane from "./Backplane.js"
/** @since 0.1.0 */
export * as Client from "./Client.js"
/** @since 0.1.0 */
export * as ClientConnection from "./ClientConnection.js"
/** @since 0.1.0 */
export * as Connection from "./Connection.js"
/** @since 0.1.0 */
export * as Errors from "./Errors.js"
/** @since 0.1.0 */
export * as Extension from "./extensions/Extension.js"
/** @since 0.1.0 */
export * as PermessageDeflate from "./extensions/PermessageDeflate.js"
/** @since 0.1.0 */
export * as Frames from "./Frames.js"
/** @since 0.1.0 */
export * as Handshake from "./Handshake.js"
/** @since 0.1.0 */
export * as HeaderParsers from "./HeaderParsers.js"
/** @since 0.1.0 */
export * as Headers from "./Headers.js"
/** @since 0.1.0 */
export * as Http11 from "./Http11.js"
/** @since 0.2.0 */
export * as Metrics from "./Metrics.js"
/** @since 0.2.0 */
export * as NodeMount from "./NodeMount.js"
/** @since 0.1.0 */
export * as RedisBackplane from "./RedisBackplane.js"
/** @since 0.1.0 */
export * as Server from "./Server.js"
/** @since 0.1.0 */
export * as ServerConnection from "./ServerConnection.js"
/** @since 0.1.0 */
export * as Topics from "./Topics.js"
/** @since 0.3.0 */
export * as TypedMessages from "./TypedMessages.js"
/** @since 0.1.0 */
export * as Uri from "./Uri.js"
/** @since 0.1.0 */
export * as Utf8 from "./Utf8.js"
/** @since 0.1.0 */
export * as WebSocket from "./WebSocket.js"
/** @since 0.1.0 */
export * as Workers from "./Workers.js"
