/**
 * Worker processes on one port, with `node:cluster` (Node 20 has no `reusePort`): the primary
 * process forks workers that each run the same program, usually a `serve` on a fixed port; the
 * primary accepts the connections and hands them to the workers in turn. One process uses one core:
 * run about as many workers as cores.
 *
 * Run the whole program under `NodeRuntime.runMain`, which turns SIGINT/SIGTERM into
 * interruption (as in the example below).
 *
 * On SIGTERM of the primary, each worker gets SIGTERM: its `serve` scope closes, which closes every
 * connection with 1001 (going away) and waits for the handlers (`waitClosed`); the primary waits
 * for every worker to exit, up to `shutdownTimeout`, then kills those left. Connections are not
 * migrated: clients of a worker that stops reconnect to another.
 *
 * A worker that exits on its own (a crash) is not restarted; it is logged, and the primary ends
 * when every worker has exited. Workers share nothing but the port: give them a shared
 * `Backplane` (such as `RedisBackplane`) for topics to span them.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Server, Workers } from "effect-websockets"
 *
 * const handler = Server.onMessage((message, ws) => ws.send(message))
 * const program = Effect.scoped(
 *   Effect.gen(function* () {
 *     const server = yield* Server.serve(handler, { port: 8080 })
 *     yield* server.waitClosed
 *   })
 * )
 * // Run with NodeRuntime.runMain(main):
 * const main = Workers.run(program, { workers: 4 })
 * ```
 *
 * @since 0.1.0
 */
import cluster, { type Worker } from "node:cluster"
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import { InvalidArgument } from "./Errors.js"
import { callback, type DurationInput, decodeDuration } from "./internal/effectCompat.js"

/**
 * Time the primary gives its workers to close their connections and exit, by default.
 * @since 0.1.0
 * @category constants
 */
export const DEFAULT_SHUTDOWN_TIMEOUT: DurationInput = "30 seconds"

/**
 * Options of {@link run}.
 * @since 0.1.0
 * @category models
 */
export interface WorkersOptions {
  /** Number of worker processes; 0 runs the program in this process, without workers. */
  readonly workers: number
  /** Time the workers have to exit after SIGTERM before they are killed. Default {@link DEFAULT_SHUTDOWN_TIMEOUT}. */
  readonly shutdownTimeout?: DurationInput | undefined
}

/**
 * Whether this process is a worker forked by {@link run}.
 * @since 0.1.0
 * @category refinements
 */
export const isWorker = (): boolean => cluster.isWorker

const exitOf = (worker: Worker): Effect.Effect<number | null> =>
  callback<number | null>((resume) => {
    const code = worker.process.exitCode
    if (code !== null || worker.process.signalCode !== null) return resume(Effect.succeed(code))
    worker.once("exit", (exitCode: number | null) => resume(Effect.succeed(exitCode)))
  })

const stopAll = (workers: ReadonlyArray<Worker>, timeout: Duration.Duration): Effect.Effect<void> =>
  Effect.gen(function* () {
    const alive = workers.filter((worker) => !worker.isDead())
    for (const worker of alive) worker.process.kill("SIGTERM")
    const exited = yield* Effect.forEach(alive, exitOf, { concurrency: "unbounded", discard: true }).pipe(
      Effect.timeout(timeout),
      Effect.option
    )
    if (exited._tag === "Some") return
    const stuck = alive.filter((worker) => !worker.isDead())
    yield* Effect.logWarning(`${stuck.length} worker(s) still running after the shutdown timeout: killed`)
    for (const worker of stuck) worker.process.kill("SIGKILL")
    yield* Effect.forEach(stuck, exitOf, { concurrency: "unbounded", discard: true })
  })

const primary = (options: WorkersOptions): Effect.Effect<void> =>
  Effect.acquireRelease(
    Effect.sync(() => Array.from({ length: options.workers }, () => cluster.fork())),
    (workers) => stopAll(workers, decodeDuration(options.shutdownTimeout ?? DEFAULT_SHUTDOWN_TIMEOUT))
  ).pipe(
    Effect.flatMap((workers) =>
      Effect.forEach(
        workers,
        (worker) =>
          Effect.flatMap(exitOf(worker), (code) =>
            code === 0
              ? Effect.void
              : Effect.logError(`worker ${worker.process.pid} exited with ${code ?? worker.process.signalCode}`)
          ),
        { concurrency: "unbounded", discard: true }
      )
    ),
    Effect.scoped
  )

/**
 * Runs `program` in `options.workers` worker processes sharing the ports they listen on (in the
 * primary, forks the workers and waits for them; in a worker, runs `program`). With 0 workers, runs
 * `program` here. Interrupting the primary (SIGTERM under `NodeRuntime.runMain`) stops every
 * worker gracefully.
 * @since 0.1.0
 * @category constructors
 */
export const run = <A, E, R>(
  program: Effect.Effect<A, E, R>,
  options: WorkersOptions
): Effect.Effect<void, E | InvalidArgument, R> => {
  if (!Number.isInteger(options.workers) || options.workers < 0) {
    return Effect.fail(new InvalidArgument({ detail: "workers must be a non-negative integer" }))
  }
  if (options.workers === 0 || cluster.isWorker) return Effect.asVoid(program)
  return primary(options)
}
