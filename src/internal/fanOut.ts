/**
 * Sends one message to many connections without waiting for any of them (the server's `broadcast`
 * and topic delivery): the frame is serialized once for every receiver without extensions, and
 * compressed once per set of compression settings for receivers that negotiated permessage-deflate
 * without context takeover (their compressed frames do not depend on earlier messages, RFC 7692
 * §7.1.1.1). Other receivers (context takeover, other extensions, client connections, which mask)
 * encode the message themselves.
 */

import { PerMessageDeflate } from "../extensions/PermessageDeflate.js"
import { Frame, Opcode, serializeFrame } from "../Frames.js"
import type { Data, WebSocket } from "../WebSocket.js"
import { WebSocketImpl } from "./webSocket.js"

/** What a fan-out did: connections that got the message, and those skipped (closed or over `writeLimit`). */
export interface FanOutResult {
  readonly delivered: number
  readonly skipped: number
}

/**
 * Compressors shared by fan-outs, one per distinct compression settings. Without context takeover
 * a compressor keeps no state between messages, so one serves every connection with those
 * settings. Settings are few in practice (the server's options); past the cap, receivers fall back
 * to compressing for themselves rather than grow this map.
 */
const sharedCompressors = new Map<string, PerMessageDeflate>()
const MAX_SHARED_COMPRESSORS = 16

const sharedCompressorKey = (ws: WebSocketImpl): string | undefined => {
  const extensions = ws.protocol.extensions
  if (extensions.length !== 1 || ws.side !== "server") return undefined
  const deflate = extensions[0]
  if (!(deflate instanceof PerMessageDeflate) || !deflate.localNoContextTakeover) return undefined
  const s = deflate.compressSettings
  return `${deflate.localMaxWindowBits}:${s.level}:${s.memLevel}:${s.strategy}:${deflate.minSize}`
}

const sharedCompressor = (key: string, ws: WebSocketImpl): PerMessageDeflate | undefined => {
  let compressor = sharedCompressors.get(key)
  if (compressor === undefined) {
    if (sharedCompressors.size >= MAX_SHARED_COMPRESSORS) return undefined
    const deflate = ws.protocol.extensions[0] as PerMessageDeflate
    compressor = new PerMessageDeflate(
      true,
      true,
      deflate.localMaxWindowBits,
      deflate.localMaxWindowBits,
      deflate.compressSettings,
      { minSize: deflate.minSize }
    )
    sharedCompressors.set(key, compressor)
  }
  return compressor
}

/**
 * Sends `message` to every connection of `targets` that is open and whose write buffer is at most
 * `writeLimit`; never waits.
 */
export const fanOut = (message: Data, targets: Iterable<WebSocket>): FanOutResult => {
  let delivered = 0
  let skipped = 0
  let frame: Frame | undefined
  let plain: ReadonlyArray<Uint8Array> | undefined
  let compressed: Map<string, ReadonlyArray<Uint8Array>> | undefined
  const getFrame = (): Frame => {
    if (frame === undefined) {
      frame =
        typeof message === "string"
          ? new Frame(Opcode.Text, Buffer.from(message, "utf8"))
          : new Frame(Opcode.Binary, message)
    }
    return frame
  }
  for (const ws of targets) {
    if (!(ws instanceof WebSocketImpl)) {
      skipped++
      continue
    }
    let sent: boolean
    if (ws.protocol.extensions.length === 0 && ws.side === "server") {
      plain ??= serializeFrame(getFrame(), false)
      sent = ws.trySendSerialized(plain, getFrame())
    } else {
      const key = sharedCompressorKey(ws)
      let bytes = key === undefined ? undefined : compressed?.get(key)
      if (key !== undefined && bytes === undefined) {
        const compressor = sharedCompressor(key, ws)
        if (compressor !== undefined) {
          bytes = serializeFrame(compressor.encode(getFrame()), false)
          compressed ??= new Map()
          compressed.set(key, bytes)
        }
      }
      sent = bytes !== undefined ? ws.trySendSerialized(bytes, getFrame()) : ws.trySend(message)
    }
    if (sent) delivered++
    else skipped++
  }
  return { delivered, skipped }
}
