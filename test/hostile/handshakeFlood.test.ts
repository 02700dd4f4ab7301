/**
 * Hostile peers (issue 23): a handshake flood against the server of each shell, over loopback.
 * HOLDERS connections send an upgrade request and then nothing (each is an open WebSocket
 * connection the server must keep), SENDERS send one 1 MiB message each and never read its echo.
 * Every handshake completes, other connections keep echoing, what each held connection costs is
 * bounded, and once the attackers are gone the memory in use returns to where it was: nothing of
 * them is kept.
 *
 * The attackers are raw sockets of this process: for the Effect 3 shell, which runs here, the
 * memory measured counts their sockets too (about 1 KiB each), so the bound per connection is
 * generous; the figures against `ws` are in bench/handshakeFlood.mjs.
 */
import { randomBytes } from "node:crypto"
import * as net from "node:net"
import { expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import { describeShells, type Shell } from "../conformance/shells.js"
import { bounded, LOCALHOST, realSleep } from "../fixtures/loopback.js"
import { controlConnection, memoryProbe } from "./hostile.js"

const HOLDERS = 1000
const SENDERS = 20
/** Opened this many at a time, as bench/handshakeFlood.mjs does. */
const BATCH = 100
const MiB = 1024 * 1024
/**
 * Memory in use (heap and external, after a full GC) per held connection. Measured 2026-12-07 on
 * Node 20, 22 and 24: 2.6–2.9 KiB for the Effect 4 shell's process, 4.7–4.9 KiB for the Effect 3
 * shell's, which holds the raw peers' sockets too (bench/handshakeFlood.mjs, a server alone: 2.7
 * KiB of heap, `ws` 2.8).
 */
const BYTES_PER_HELD_CONNECTION = 8 * 1024
/**
 * Memory in use per sender: its 1 MiB message, whose echo waits in the socket's write buffer for a
 * reader that never comes (as in `ws`), and nothing more of it.
 */
const BYTES_PER_SENDER = 1.25 * MiB
/** How far above its level before the flood the memory in use may be once the attackers are gone. */
const LEFT_AFTER_CLOSE = 2 * MiB

const upgradeRequest = () =>
  Buffer.from(
    `GET / HTTP/1.1\r\nHost: ${LOCALHOST}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
      `Sec-WebSocket-Key: ${randomBytes(16).toString("base64")}\r\nSec-WebSocket-Version: 13\r\n\r\n`,
    "latin1"
  )

/** One masked 1 MiB binary frame with a zero mask key (the payload goes as is). */
const MESSAGE = Buffer.concat([Buffer.from([0x82, 0xff]), Buffer.alloc(8), Buffer.alloc(MiB)])
MESSAGE.writeBigUInt64BE(BigInt(MiB), 2)

/**
 * A raw peer that sends an upgrade request and completes once the 101 arrives; with `message`, it
 * then sends it and stops reading. Fails if the connection ends first or answers otherwise.
 */
const attacker = (port: number, sockets: Array<net.Socket>, message?: Buffer): Promise<void> =>
  new Promise((resolve, reject) => {
    const socket = net.connect({ host: LOCALHOST, port })
    sockets.push(socket)
    let head = ""
    const onData = (chunk: Buffer) => {
      head += chunk.toString("latin1")
      if (!head.includes("\r\n\r\n")) return
      socket.off("data", onData)
      if (!head.startsWith("HTTP/1.1 101")) return reject(new Error(`answered ${head.split("\r\n")[0]}`))
      if (message !== undefined) {
        socket.pause()
        socket.write(message)
      }
      resolve()
    }
    socket.on("data", onData)
    socket.once("error", reject)
    socket.once("close", () => reject(new Error("closed before the 101")))
    socket.write(upgradeRequest())
  })

/** Opens `count` attackers, BATCH at a time (`message`: senders); every one must get its 101. */
const flood = (port: number, sockets: Array<net.Socket>, count: number, message?: Buffer) =>
  Effect.promise(async () => {
    for (let started = 0; started < count; started += BATCH) {
      const batch: Array<Promise<void>> = []
      for (let i = started; i < Math.min(started + BATCH, count); i++) batch.push(attacker(port, sockets, message))
      await Promise.all(batch)
    }
  }).pipe(bounded(60_000))

/**
 * Closes every attacker at once, then reads the memory in use every 100 ms (30 s at most) until
 * `done(now, previous)`; the last reading. Polled: the server learns of the closes as its event
 * loop reads them.
 */
const closeAll = (shell: Shell, sockets: Array<net.Socket>, done: (now: number, previous: number) => boolean) =>
  Effect.gen(function* () {
    for (const socket of sockets.splice(0)) socket.destroy()
    let previous = Number.POSITIVE_INFINITY
    let now = (yield* shell.usage).memoryInUse
    for (let polls = 0; !done(now, previous) && polls < 300; polls++) {
      yield* realSleep(100)
      previous = now
      now = (yield* shell.usage).memoryInUse
    }
    return now
  })

describeShells("hostile peers: a handshake flood", (shell) => {
  it.scopedLive(
    `${HOLDERS} connections that send a request and nothing more, then ${SENDERS} that send 1 MiB and never read: every handshake completes, memory is bounded and given back`,
    () =>
      Effect.gen(function* () {
        // The README's echo (`Server.onMessage`): what an idle connection costs without a fiber.
        const server = yield* Effect.orDie(shell.serve("readmeEcho", { compression: null, pingInterval: null }))
        const control = yield* controlConnection(server.port)
        const sockets: Array<net.Socket> = []
        yield* Effect.addFinalizer(() =>
          Effect.sync(() => {
            for (const socket of sockets) socket.destroy()
          })
        )
        // A first, smaller flood: what the process keeps once for any number of connections (code,
        // pools) is not counted.
        yield* flood(server.port, sockets, BATCH)
        yield* flood(server.port, sockets, 2, MESSAGE)
        // Until the memory in use stops falling.
        yield* closeAll(shell, sockets, (now, previous) => previous - now < 64 * 1024)
        const memory = yield* memoryProbe(shell)
        const before = (yield* shell.usage).memoryInUse

        yield* flood(server.port, sockets, HOLDERS)
        const held = (yield* shell.usage).memoryInUse
        expect((held - before) / HOLDERS, "memory in use per held connection").toBeLessThan(BYTES_PER_HELD_CONNECTION)
        yield* flood(server.port, sockets, SENDERS, MESSAGE)
        yield* control.nextRoundTrip.pipe(bounded(10_000))
        const sending = (yield* shell.usage).memoryInUse
        expect((sending - held) / SENDERS, "memory in use per sender").toBeLessThan(BYTES_PER_SENDER)

        // A mass close: every attacker goes at once; the server keeps nothing of them.
        const left = (yield* closeAll(shell, sockets, (now) => now - before < LEFT_AFTER_CLOSE)) - before
        if (process.env.HOSTILE_MEMORY_REPORT !== undefined) {
          const kib = (n: number) => (n / 1024).toFixed(2)
          console.log(
            `handshake flood (${shell.name}): ${kib((held - before) / HOLDERS)} KiB per held connection, ` +
              `${kib((sending - held) / SENDERS)} KiB per sender, ${kib(left)} KiB left after the close`
          )
        }
        expect(left, "memory in use once the attackers are gone").toBeLessThan(LEFT_AFTER_CLOSE)
        yield* memory.check("handshake flood")
        yield* control.check
      }),
    120_000
  )
})
