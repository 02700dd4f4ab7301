/**
 * effect-websockets for Effect 4: `import { Client, Server } from "effect-websockets/effect4"`.
 * The same modules and names as the Effect 3 entry point (`effect-websockets`), over the same
 * sans-I/O protocol core; what differs is the Effect shell (services, streams, results).
 * `effect-websockets/effect4/HttpRouterRoute` needs the optional peer `@effect/platform-node`, so
 * it is imported by its own path and not re-exported here.
 *
 * @since 0.4.0
 */
export * as Auth from "./Auth.js"
export * as Backplane from "./Backplane.js"
export * as Client from "./Client.js"
export * as ClientConnection from "./ClientConnection.js"
export * as Connection from "./Connection.js"
export * as Errors from "./Errors.js"
export * as Extension from "./extensions/Extension.js"
export * as PermessageDeflate from "./extensions/PermessageDeflate.js"
export * as Frames from "./Frames.js"
export * as Handshake from "./Handshake.js"
export * as HeaderParsers from "./HeaderParsers.js"
export * as Headers from "./Headers.js"
export * as Http11 from "./Http11.js"
export * as Metrics from "./Metrics.js"
export * as NodeMount from "./NodeMount.js"
export * as RedisBackplane from "./RedisBackplane.js"
export * as Server from "./Server.js"
export * as ServerConnection from "./ServerConnection.js"
export * as Topics from "./Topics.js"
export * as TypedMessages from "./TypedMessages.js"
export * as Uri from "./Uri.js"
export * as Utf8 from "./Utf8.js"
export * as WebSocket from "./WebSocket.js"
export * as Workers from "./Workers.js"
