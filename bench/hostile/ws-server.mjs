/**
 * `ws` echo server for the hostile-peer measurements (bench/hostile/run.mjs): bufferutil loaded
 * when installed, permessage-deflate on, maxPayload 1 MiB (our default maxSize, for a fair
 * comparison). Prints its port once listening. A second argument `no-fragment-cap` lifts its
 * limit on the fragments of a message (16,384 by default).
 */
import { WebSocketServer } from "ws"

const wss = new WebSocketServer({
  host: "127.0.0.1",
  port: Number(process.argv[2] ?? 0),
  perMessageDeflate: true,
  maxPayload: 1 << 20,
  // `no-fragment-cap`: no limit on the fragments of a message (bench/hostile/emptyFrames.mjs).
  ...(process.argv[3] === "no-fragment-cap" ? { maxFragments: 0 } : {})
})
wss.on("connection", (ws) => {
  ws.on("error", () => {})
  ws.on("message", (data, isBinary) => ws.send(data, { binary: isBinary }))
})
wss.on("listening", () => console.log(JSON.stringify({ port: wss.address().port })))
process.stdin.on("end", () => process.exit(0))
process.stdin.resume()
