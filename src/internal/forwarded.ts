/**
 * The client address behind reverse proxies, from `X-Forwarded-For` (the de facto header; nginx's
 * `$proxy_add_x_forwarded_for` appends the address it saw to what the client sent).
 */
import { isIP } from "node:net"
import type { Headers } from "../Headers.js"
import type { Address } from "../WebSocket.js"

/**
 * The address `hops` entries from the right of `X-Forwarded-For`: each trusted proxy appended the
 * address it saw, so the entries further left came from the client and cannot be trusted. With
 * one proxy, the last entry. `undefined` when the header is missing, too short or not an IP
 * address. The client's port is not forwarded: it is 0.
 */
export const forwardedFor = (headers: Headers, hops: number): Address | undefined => {
  const entries = headers
    .getAll("X-Forwarded-For")
    .flatMap((value) => value.split(","))
    .map((entry) => entry.trim())
  const entry = entries[entries.length - hops]
  if (entry === undefined) return undefined
  // An IPv6 address may come in brackets.
  const hostname = entry.startsWith("[") && entry.endsWith("]") ? entry.slice(1, -1) : entry
  return isIP(hostname) === 0 ? undefined : { _tag: "TcpAddress", hostname, port: 0 }
}
