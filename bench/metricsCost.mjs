/**
 * The work metrics add to one echoed message, measured in-process (issue 13): the updates a
 * connection makes for a message received and one sent (two counters each, labels resolved once).
 * The end-to-end comparison of servers with and without metrics is noisier (±5% run to run) than
 * the cost it looks for. Prints one JSON line: `{"nsPerMessage":…}` (median of 5 rounds).
 */
import { MetricsRecorder } from "../dist/internal/telemetry.js"

const recorder = new MetricsRecorder("server", [])
const N = 1_000_000
const rounds = []
for (let round = 0; round < 6; round++) {
  const start = process.hrtime.bigint()
  for (let i = 0; i < N; i++) {
    recorder.received(2, 16)
    recorder.sent(2, 16, true)
  }
  // The first round warms the JIT up.
  if (round > 0) rounds.push(Number(process.hrtime.bigint() - start) / N)
}
rounds.sort((a, b) => a - b)
process.stdout.write(`${JSON.stringify({ nsPerMessage: rounds[rounds.length >> 1] })}\n`)
