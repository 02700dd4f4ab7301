/**
 * The Effect calls the two shells share but the Effect majors spell differently, under one name:
 * Effect 3 here, Effect 4 in `effect4/src/internal/effectCompat.ts`. A shell module that needs of
 * Effect only these and the calls both majors spell alike (`Effect.gen`, `Effect.andThen`, ...) is
 * written once in src/ and copied into the Effect 4 shell by scripts/sync-core.mjs, as the
 * sans-I/O core is with internal/result.ts.
 *
 * Not exported (internal/), and without the internal tag: stripInternal would take this comment
 * for the first statement's and drop that statement from the declarations.
 */

import * as Brand from "effect/Brand"
import * as Cause from "effect/Cause"
import type * as Clock from "effect/Clock"
import * as Config from "effect/Config"
import * as ConfigErrors from "effect/ConfigError"
import * as Context from "effect/Context"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as ExecutionStrategy from "effect/ExecutionStrategy"
import * as Exit from "effect/Exit"
import type * as Fiber from "effect/Fiber"
import * as FiberId from "effect/FiberId"
import * as FiberRef from "effect/FiberRef"
import * as FiberRefs from "effect/FiberRefs"
import * as FiberSet from "effect/FiberSet"
import * as HashMap from "effect/HashMap"
import * as Layer from "effect/Layer"
import * as Metric from "effect/Metric"
import * as MetricBoundaries from "effect/MetricBoundaries"
import * as Option from "effect/Option"
import * as Runtime from "effect/Runtime"
import * as RuntimeFlags from "effect/RuntimeFlags"
import * as Schedule from "effect/Schedule"
import * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"

/** What a duration option accepts: `Duration.DurationInput` in Effect 3, `Duration.Input` in Effect 4. */
export type DurationInput = Duration.DurationInput

/** A duration from what a duration option accepts (throws on a malformed string, as both majors do). */
export const decodeDuration: (input: DurationInput) => Duration.Duration = Duration.decode

/** An effect resumed by a callback: `Effect.async` in Effect 3, `Effect.callback` in Effect 4. */
export const callback: typeof Effect.async = Effect.async

/** A fiber waiting in {@link awaitWakeUp}. */
export interface Waiter {
  /** Resumes the fiber; nothing happens if it left its wait. */
  wake(): void
  /** The fiber left its wait without being woken (interrupted out of it, or ended): drop it. */
  readonly stale: boolean
}

class FiberWaiter<A, E> implements Waiter {
  constructor(
    readonly fiber: Fiber.RuntimeFiber<unknown, unknown>,
    /** Whether interruption ends the wait (an uninterruptible one waits until woken). */
    readonly interruptible: boolean,
    readonly resume: (effect: Effect.Effect<A, E>) => void,
    readonly then: Effect.Effect<A, E>
  ) {}
  wake(): void {
    this.resume(this.then)
  }
  get stale(): boolean {
    return (
      this.fiber.unsafePoll() !== null ||
      (this.interruptible && !Cause.isEmpty(this.fiber.getFiberRef(FiberRef.interruptedCause)))
    )
  }
}

/**
 * Waits until the waiter given to `register` is woken, then runs `then`. In Effect 3 the wait has
 * no canceler (an interruptible `Effect.async` with one costs 1.6 KiB more while it waits and 1.2
 * µs more per wake-up): a fiber interrupted out of it leaves a stale waiter, whose `wake` the
 * runtime ignores (the resume callback of an interrupted `async` does nothing), for the caller to
 * sweep out; `unregister` is not called. In Effect 4, where a canceler costs 0.1 µs, interruption
 * calls `unregister`.
 */
export const awaitWakeUp = <A, E>(
  register: (waiter: Waiter) => void,
  _unregister: (waiter: Waiter) => void,
  then: Effect.Effect<A, E>
): Effect.Effect<A, E> =>
  Effect.withFiberRuntime<A, E>((fiber, status) => {
    const interruptible = RuntimeFlags.interruptible(status.runtimeFlags)
    return Effect.async<A, E>((resume) => {
      register(new FiberWaiter(fiber, interruptible, resume, then))
    })
  })

/** Recovers from every failure: `Effect.catchAll` in Effect 3, `Effect.catch` in Effect 4. */
export const catchAll: typeof Effect.catchAll = Effect.catchAll

/** The current `Clock` service. */
export const clock: Effect.Effect<Clock.Clock> = Effect.clock

/** The clock's time in milliseconds, synchronously. */
export const currentTimeMillis = (clock: Clock.Clock): number => clock.unsafeCurrentTimeMillis()

/** A layer from a scoped effect: `Layer.scoped` in Effect 3, `Layer.effect` in Effect 4. */
export const scopedLayer: typeof Layer.scoped = Layer.scoped

/**
 * The base class of a service: `Context.Tag(id)<Self, Shape>()` in Effect 3,
 * `Context.Service<Self, Shape>()(id)` in Effect 4.
 */
export const Service =
  <Self, Shape>() =>
  <const Id extends string>(id: Id) =>
    Context.Tag(id)<Self, Shape>()

/** A histogram metric with exponential bucket boundaries. */
export const exponentialHistogram = (
  name: string,
  boundaries: { readonly start: number; readonly factor: number; readonly count: number },
  description: string
) => Metric.histogram(name, MetricBoundaries.exponential(boundaries), description)

/** The schedule whose delay is the shorter of the two schedules' at each step (both keep going). */
export const shorterDelay = (
  left: Schedule.Schedule<unknown>,
  right: Schedule.Schedule<unknown>
): Schedule.Schedule<unknown> => Schedule.union(left, right)

/** A duration as `Config.duration` reads it (`"20 seconds"`, `"500 millis"`), if the text is one. */
export const decodeDurationText = (text: string): Option.Option<Duration.Duration> => Duration.decodeUnknown(text)

/**
 * The optional config key `name`: `None` when it is missing, an InvalidData `ConfigError` whose path
 * is the key when `parse` refuses its text. `nested` outside `mapOrFail`, so that the path is the key.
 */
export const optionalKey = <A>(
  name: string,
  parse: (text: string) => Either.Either<A, string>
): Config.Config<Option.Option<A>> =>
  Config.option(
    Config.nested(
      Config.mapOrFail(Config.string(), (text) =>
        Either.mapLeft(parse(text), (message) => ConfigErrors.InvalidData([], message))
      ),
      name
    )
  )

/** The error type of a `Config` that fails: `ConfigError.ConfigError` in Effect 3, `Config.ConfigError` in Effect 4. */
export type ConfigError = ConfigErrors.ConfigError

/** A success-or-failure value as an Effect (`Either` is one already in Effect 3). */
export const fromResult = <A, E>(result: Either.Either<A, E>): Effect.Effect<A, E> => result

/** The first typed error of a cause, if it has one. */
export const firstError = <E>(cause: Cause.Cause<E>): E | undefined => Option.getOrUndefined(Cause.failureOption(cause))

/** A child scope of `scope` whose finalizers run in sequence. */
export const forkScope = (scope: Scope.Scope): Effect.Effect<Scope.CloseableScope> =>
  Scope.fork(scope, ExecutionStrategy.sequential)

/** Runs a scoped effect in `scope`: `Scope.extend` in Effect 3, `Scope.provide` in Effect 4. */
export const provideScope: <A, E, R>(
  effect: Effect.Effect<A, E, R>,
  scope: Scope.Scope
) => Effect.Effect<A, E, Exclude<R, Scope.Scope>> = Scope.extend

/** The exit of an interruption by no fiber in particular. */
export const interrupted: Exit.Exit<never> = Exit.interrupt(FiberId.none)

/** Fails with `onTimeout()` when `effect` takes longer than `duration`. */
export const timeoutFail = <A, E, R, E2>(
  effect: Effect.Effect<A, E, R>,
  duration: Duration.Duration,
  onTimeout: () => E2
): Effect.Effect<A, E | E2, R> => Effect.timeoutFail(effect, { duration, onTimeout })

/** A constructor of a branded string that checks `test` (`Brand.refined` in Effect 3, `Brand.make` in Effect 4). */
export const refinedString = <B extends string & Brand.Brand<any>>(
  test: (value: string) => boolean,
  message: (value: string) => string
) =>
  Brand.refined<B>(
    (value) => test(value),
    (value) => Brand.error(message(value))
  )

/** A fiber started by a runtime: `Fiber.RuntimeFiber` in Effect 3, `Fiber.Fiber` in Effect 4. */
export type RunningFiber<A, E> = Fiber.RuntimeFiber<A, E>

/** A Deferred made outside any fiber. */
export const makeDeferred = <A, E = never>(): Deferred.Deferred<A, E> => Deferred.unsafeMake<A, E>(FiberId.none)

/** Completes a Deferred synchronously (a no-op when it is done already). */
export const completeDeferred = <A, E>(deferred: Deferred.Deferred<A, E>, exit: Exit.Exit<A, E>): void => {
  Deferred.unsafeDone(deferred, exit)
}

/** Whether a value is a Stream. */
export const isStream = (value: object): value is Stream.Stream<unknown, unknown, unknown> =>
  Stream.StreamTypeId in value

/** Runs `f` on the cause of a failure, then fails with it: `tapErrorCause` in Effect 3, `tapCause` in Effect 4. */
export const tapCause: typeof Effect.tapErrorCause = Effect.tapErrorCause

/** Whether a cause holds interruptions only. */
export const isInterruptedOnly: <E>(cause: Cause.Cause<E>) => boolean = Cause.isInterruptedOnly

/** Recovers from every cause: `Effect.catchAllCause` in Effect 3, `Effect.catchCause` in Effect 4. */
export const catchAllCause: typeof Effect.catchAllCause = Effect.catchAllCause

/**
 * What fibers are started from outside any fiber, with the services and references of the fiber
 * that captured it: a `Runtime` in Effect 3, a `Context` in Effect 4.
 */
export type FiberStarter<R> = Runtime.Runtime<R>

/** The log annotations a fiber starter carries. */
export type LogAnnotations = HashMap.HashMap<string, unknown>

/** The current fiber's starter. */
export const currentFiberStarter = <R>(): Effect.Effect<FiberStarter<R>, never, R> => Effect.runtime<R>()

/** The services of a fiber starter. */
export const starterContext = <R>(starter: FiberStarter<R>): Context.Context<R> => starter.context

/**
 * A context without the stack frame of the span or `Effect.fn` it was captured in: Effect 3 keeps
 * none in the context (its spans hold their stack traces), so the context is unchanged.
 */
export const omitStackFrame = <R>(context: Context.Context<R>): Context.Context<R> => context

/** The log annotations of a fiber starter. */
export const starterLogAnnotations = (starter: FiberStarter<never>): LogAnnotations =>
  FiberRefs.getOrDefault(starter.fiberRefs, FiberRef.currentLogAnnotations)

/** A starter like `starter`, with other services and the log annotations plus `key`. */
export const deriveFiberStarter = <R>(
  starter: FiberStarter<never>,
  context: Context.Context<R>,
  annotations: LogAnnotations,
  key: string,
  value: unknown
): FiberStarter<R> =>
  Runtime.make({
    context,
    runtimeFlags: starter.runtimeFlags,
    fiberRefs: FiberRefs.updateAs(starter.fiberRefs, {
      fiberId: FiberId.none,
      fiberRef: FiberRef.currentLogAnnotations,
      value: HashMap.set(annotations, key, value)
    })
  })

/** Starts a fiber from a starter. */
export const forkWith =
  <R>(starter: FiberStarter<R>) =>
  <A, E>(effect: Effect.Effect<A, E, R>): RunningFiber<A, E> =>
    Runtime.runFork(starter)(effect)

/** A fiber's exit if it has ended already. */
export const pollFiber = <A, E>(fiber: RunningFiber<A, E>): Exit.Exit<A, E> | undefined =>
  fiber.unsafePoll() ?? undefined

/** Adds a running fiber to a FiberSet, synchronously. */
export const addToFiberSet = <A, E>(set: FiberSet.FiberSet<A, E>, fiber: RunningFiber<A, E>): void => {
  FiberSet.unsafeAdd(set, fiber)
}

/** Interrupts a fiber without waiting for it. */
export const interruptFiber = (fiber: RunningFiber<unknown, unknown>): void => {
  fiber.unsafeInterruptAsFork(FiberId.none)
}
