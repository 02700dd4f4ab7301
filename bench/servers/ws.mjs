/**
 * Target: the `ws` package, the reference. `bufferutil` (native masking) is loaded by `ws` when
 * installed; UTF-8 validation uses Node's `buffer.isUtf8` (ws prefers it to `utf-8-validate`).
 * `WS_NO_BUFFER_UTIL=1` in the environment gives the "ws without native helpers" variant.
 *
 * `--fanout`: connections on `/sub` are subscribers, and every message received on `/pub` is sent
 * to each of them by a loop over the clients, as `ws` applications do.
 */
import { createRequire } from "node:module"
import { WebSocketServer } from "ws"
import { args, deflate, MAX_SIZE, ready } from "./common.mjs"

const require = createRequire(import.meta.url)
let bufferutil = "absent"
try {
  bufferutil = String(require("bufferutil").mask).includes("[native code]") ? "native" : "fallback"
} catch {}
if (process.env.WS_NO_BUFFER_UTIL) bufferutil = "disabled"

const wss = new WebSocketServer({ host: "127.0.0.1", port: 0, perMessageDeflate: deflate, maxPayload: MAX_SIZE })
const fanout = args.includes("--fanout")
const subscribers = new Set()
wss.on("connection", (ws, request) => {
  ws.on("error", () => {})
  if (!fanout) {
    ws.on("message", (data, isBinary) => ws.send(data, { binary: isBinary }))
  } else if (request.url === "/pub") {
    ws.on("message", (data, isBinary) => {
      for (const subscriber of subscribers) if (subscriber.readyState === 1) subscriber.send(data, { binary: isBinary })
    })
  } else {
    subscribers.add(ws)
    ws.on("close", () => subscribers.delete(ws))
  }
})
wss.on("listening", () => ready("ws", wss.address().port, { bufferutil }))
