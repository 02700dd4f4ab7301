/**
 * Target: the `ws` package, the reference. `bufferutil` (native masking) is loaded by `ws` when
 * installed; UTF-8 validation uses Node's `buffer.isUtf8` (ws prefers it to `utf-8-validate`).
 * `WS_NO_BUFFER_UTIL=1` in the environment gives the "ws without native helpers" variant.
 */
import { createRequire } from "node:module"
import { WebSocketServer } from "ws"
import { deflate, MAX_SIZE, ready } from "./common.mjs"

const require = createRequire(import.meta.url)
let bufferutil = "absent"
try {
  bufferutil = String(require("bufferutil").mask).includes("[native code]") ? "native" : "fallback"
} catch {}
if (process.env.WS_NO_BUFFER_UTIL) bufferutil = "disabled"

const wss = new WebSocketServer({ host: "127.0.0.1", port: 0, perMessageDeflate: deflate, maxPayload: MAX_SIZE })
wss.on("connection", (ws) => {
  ws.on("error", () => {})
  ws.on("message", (data, isBinary) => ws.send(data, { binary: isBinary }))
})
wss.on("listening", () => ready("ws", wss.address().port, { bufferutil }))
