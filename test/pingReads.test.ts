/**
 * A read of a TCP socket that holds only pings is freed as soon as they are answered (issue 23):
 * the connection detaches the read's memory instead of leaving it to the garbage collector, which a
 * peer flooding pings otherwise fills with 64 KiB reads. Reads that hold anything else are left
 * alone, and what they carry arrives intact.
 */
import * as net from "node:net"
import { expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Client from "../src/Client.js"
import { Opcode } from "../src/Frames.js"
import {
  acceptHandshake,
  bounded,
  frameBytes,
  LOCALHOST,
  parseRawFrame,
  type RawPeer,
  rawServer
} from "./fixtures/loopback.js"

/** Payloads of the pongs `peer` received so far (it keeps every byte received). */
const pongsOf = (peer: RawPeer): Array<string> => {
  const pongs: Array<string> = []
  let rest = peer.received
  for (let frame = parseRawFrame(rest); frame !== undefined; frame = parseRawFrame(rest)) {
    if (frame[0].opcode === Opcode.Pong) pongs.push(frame[0].payload.toString("latin1"))
    rest = rest.subarray(frame[1])
  }
  return pongs
}

it.scopedLive("a read of pings only is freed once they are answered; a read with a message is not", () =>
  Effect.gen(function* () {
    const raw = yield* rawServer()
    const sock = yield* Effect.acquireRelease(
      Effect.async<net.Socket>((resume) => {
        const socket = net.connect({ host: LOCALHOST, port: raw.port }, () => resume(Effect.succeed(socket)))
      }),
      (socket) => Effect.sync(() => socket.destroy())
    )
    // What each read held, and whether it was freed once every listener had it (observed without
    // adding a listener: the connection frees a read only when it is the only one).
    const reads: Array<{ readonly bytes: Buffer; freed: boolean }> = []
    const emit = sock.emit as (this: net.Socket, event: string | symbol, ...args: Array<unknown>) => boolean
    sock.emit = function (this: net.Socket, event: string | symbol, ...args: Array<unknown>): boolean {
      if (event !== "data") return emit.apply(this, [event, ...args])
      const chunk = args[0] as Buffer
      const read = { bytes: Buffer.from(chunk), freed: false }
      const result = emit.apply(this, [event, ...args])
      read.freed = chunk.byteLength === 0 && chunk.buffer.byteLength === 0
      reads.push(read)
      return result
    }
    const connecting = yield* Effect.fork(Client.connect(`ws://${LOCALHOST}:${raw.port}/`, { sock, compression: null }))
    const peer = yield* raw.accept
    yield* acceptHandshake(peer)
    const ws = yield* Fiber.join(connecting)
    // Gone before the connection closes: it does not wait for a close handshake with it.
    yield* Effect.addFinalizer(() => Effect.sync(() => peer.socket.destroy()))
    const handshakeReads = reads.length

    const pings = (from: number, count: number) =>
      Array.from({ length: count }, (_, i) => `ping ${from + i} `.padEnd(100, "."))
    // 300 pings: a read of more than 16 KiB, the smallest the connection frees.
    const first = pings(0, 300)
    yield* peer.write(Buffer.concat(first.map((p) => frameBytes(Opcode.Ping, p, false))))
    yield* peer.waitUntil(() => pongsOf(peer).length >= 300).pipe(bounded(5000))

    // A message between pings, in one write: its read holds a view the application gets.
    const message = Buffer.from("the message, intact".repeat(20))
    const second = pings(300, 10)
    yield* peer.write(
      Buffer.concat([
        ...second.slice(0, 5).map((p) => frameBytes(Opcode.Ping, p, false)),
        frameBytes(Opcode.Binary, message, false),
        ...second.slice(5).map((p) => frameBytes(Opcode.Ping, p, false))
      ])
    )
    const received = yield* ws.recv
    expect(Buffer.from(received as Uint8Array).equals(message)).toBe(true)
    yield* peer.waitUntil(() => pongsOf(peer).length >= 310).pipe(bounded(5000))
    // Every ping answered once, in order, with its payload.
    expect(pongsOf(peer)).toEqual([...first, ...second])

    const after = reads.slice(handshakeReads)
    const withMessage = after.filter((read) => read.bytes.includes("the message, intact"))
    expect(withMessage.length).toBeGreaterThan(0)
    for (const read of withMessage) expect(read.freed).toBe(false)
    // The first pings: the read that completed them left nothing kept, so at least it was freed.
    expect(after.filter((read) => read.freed).length).toBeGreaterThan(0)
    // The message still reads the same after its read went through the connection.
    expect(Buffer.from(received as Uint8Array).equals(message)).toBe(true)
  }).pipe(bounded(15_000))
)
