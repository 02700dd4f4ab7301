/**
 * `ws` echo server for the hostile-peer measurements (bench/hostile/run.mjs): bufferutil loaded
 * when installed, permessage-deflate on, maxPayload 1 MiB (our default maxSize, for a fair
 * comparison). Prints its port once listening.
 */
import { WebSocketServer } from "ws"

const wss = new WebSocketServer({
  host: "127.0.0.1",
  port: Number(process.argv[2] ?? 0),
  perMessageDeflate: true,
  maxPayload: 1 << 20
})
wss.on("connection", (ws) => {
  ws.on("error", () => {})
  ws.on("message", (data, isBinary) => ws.send(data, { binary: isBinary }))
})
wss.on("listening", () => console.log(JSON.stringify({ port: wss.address().port })))
process.stdin.on("end", () => process.exit(0))
process.stdin.resume()
