/**
 * The work observability adds to one echoed message, measured in-process (issue 13):
 * - `nsPerMessage`: the metric updates a connection makes for a message received and one sent (two
 *   counters each, labels resolved once);
 * - `logNsPerMessage`: what a logger at Info (frames not logged) adds to parsing and answering one
 *   16-byte message in the sans-I/O connection, against no logger (expected: nothing).
 * The end-to-end comparison of servers with and without them is noisier (±5% run to run) than the
 * cost it looks for. Prints one JSON line (medians of 5 rounds, after one to warm the JIT up).
 */
import { randomFillSync } from "node:crypto"
import { State } from "../dist/Connection.js"
import { MetricsRecorder } from "../dist/internal/effectTelemetry.js"
import { ServerConnection } from "../dist/ServerConnection.js"

const median = (run) => {
  const rounds = []
  for (let round = 0; round < 6; round++) {
    const value = run()
    if (round > 0) rounds.push(value)
  }
  rounds.sort((a, b) => a - b)
  return rounds[rounds.length >> 1]
}

const recorder = new MetricsRecorder("server", [])
const N = 1_000_000
const metricsNs = median(() => {
  const start = process.hrtime.bigint()
  for (let i = 0; i < N; i++) {
    recorder.received(2, 16)
    recorder.sent(2, 16, true)
  }
  return Number(process.hrtime.bigint() - start) / N
})

// 16-byte binary messages from a client (masked), parsed and echoed by a sans-I/O server connection.
const FRAMES = 20_000
const wireOf = () => {
  const frame = Buffer.alloc(22)
  frame[0] = 0x82
  frame[1] = 0x80 | 16
  const wire = Buffer.alloc(22 * FRAMES)
  for (let i = 0; i < FRAMES; i++) {
    randomFillSync(frame, 2)
    frame.copy(wire, i * 22)
  }
  return wire
}
const infoLogger = { debugEnabled: false, debug: () => {}, info: () => {} }
const echoOnce = (logger) => {
  // Unmasking happens in place: a fresh copy of the wire each round.
  const wire = wireOf()
  const connection = new ServerConnection({ state: State.OPEN, logger })
  const start = process.hrtime.bigint()
  for (let offset = 0; offset < wire.length; offset += 65_536) {
    connection.receiveData(wire.subarray(offset, offset + 65_536))
    for (const frame of connection.eventsReceived()) connection.sendBinary(frame.data)
    connection.dataToSend()
  }
  return Number(process.hrtime.bigint() - start) / FRAMES
}
// Alternated rounds, so that both see the same JIT state and the same machine.
const withLogger = []
const without = []
for (let round = 0; round < 24; round++) {
  const a = echoOnce(infoLogger)
  const b = echoOnce(undefined)
  if (round >= 4) {
    withLogger.push(a)
    without.push(b)
  }
}
const mid = (values) => values.sort((a, b) => a - b)[values.length >> 1]

process.stdout.write(
  `${JSON.stringify({ nsPerMessage: metricsNs, logNsPerMessage: mid(withLogger) - mid(without), sansIoEchoNs: mid(without) })}\n`
)
