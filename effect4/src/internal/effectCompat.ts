/**
 * The Effect calls the two shells share but the Effect majors spell differently, under one name:
 * Effect 4 here, Effect 3 in `src/internal/effectCompat.ts`. A shell module that needs of Effect
 * only these and the calls both majors spell alike (`Effect.gen`, `Effect.andThen`, ...) is written
 * once in src/ and copied into this shell by scripts/sync-core.mjs, as the sans-I/O core is with
 * internal/result.ts.
 *
 * Not exported (internal/), and without the internal tag: stripInternal would take this comment
 * for the first statement's and drop that statement from the declarations.
 */

import * as Brand from "effect/Brand"
import * as Cause from "effect/Cause"
import type * as Clock from "effect/Clock"
import * as Config from "effect/Config"
import * as Context from "effect/Context"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import type * as Fiber from "effect/Fiber"
import * as FiberSet from "effect/FiberSet"
import * as Layer from "effect/Layer"
import * as Metric from "effect/Metric"
import * as Option from "effect/Option"
import * as References from "effect/References"
import * as Result from "effect/Result"
import * as Schedule from "effect/Schedule"
import * as Schema from "effect/Schema"
import * as SchemaIssue from "effect/SchemaIssue"
import * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"

/** What a duration option accepts: `Duration.DurationInput` in Effect 3, `Duration.Input` in Effect 4. */
export type DurationInput = Duration.Input

/** A duration from what a duration option accepts (throws on a malformed string, as both majors do). */
export const decodeDuration: (input: DurationInput) => Duration.Duration = Duration.fromInputUnsafe

/** An effect resumed by a callback: `Effect.async` in Effect 3, `Effect.callback` in Effect 4. */
export const callback: typeof Effect.callback = Effect.callback

/** A fiber waiting in {@link awaitWakeUp}. */
export interface Waiter {
  /** Resumes the fiber; nothing happens if it left its wait. */
  wake(): void
  /** The fiber left its wait without being woken (never in Effect 4: `unregister` is called). */
  readonly stale: boolean
}

class CallbackWaiter<A, E> implements Waiter {
  readonly stale = false
  constructor(
    readonly resume: (effect: Effect.Effect<A, E>) => void,
    readonly then: Effect.Effect<A, E>
  ) {}
  wake(): void {
    this.resume(this.then)
  }
}

/**
 * Waits until the waiter given to `register` is woken, then runs `then`; interruption calls
 * `unregister` (a canceler costs 0.1 µs in Effect 4; Effect 3's version has none).
 */
export const awaitWakeUp = <A, E>(
  register: (waiter: Waiter) => void,
  unregister: (waiter: Waiter) => void,
  then: Effect.Effect<A, E>
): Effect.Effect<A, E> =>
  Effect.callback<A, E>((resume) => {
    const waiter = new CallbackWaiter(resume, then)
    register(waiter)
    return Effect.sync(() => unregister(waiter))
  })

/** Recovers from every failure: `Effect.catchAll` in Effect 3, `Effect.catch` in Effect 4. */
export const catchAll: typeof Effect.catch = Effect.catch

/** The current `Clock` service. */
export const clock: Effect.Effect<Clock.Clock> = Effect.clockWith(Effect.succeed)

/** The clock's time in milliseconds, synchronously. */
export const currentTimeMillis = (clock: Clock.Clock): number => clock.currentTimeMillisUnsafe()

/** A layer from a scoped effect: `Layer.scoped` in Effect 3, `Layer.effect` in Effect 4. */
export const scopedLayer: typeof Layer.effect = Layer.effect

/**
 * The base class of a service: `Context.Tag(id)<Self, Shape>()` in Effect 3,
 * `Context.Service<Self, Shape>()(id)` in Effect 4.
 */
export const Service =
  <Self, Shape>() =>
  <const Id extends string>(id: Id) =>
    Context.Service<Self, Shape>()(id)

/** A histogram metric with exponential bucket boundaries. */
export const exponentialHistogram = (
  name: string,
  boundaries: { readonly start: number; readonly factor: number; readonly count: number },
  description: string
) => Metric.histogram(name, { boundaries: Metric.exponentialBoundaries(boundaries), description })

/** The schedule whose delay is the shorter of the two schedules' at each step (both keep going). */
export const shorterDelay = (
  left: Schedule.Schedule<unknown>,
  right: Schedule.Schedule<unknown>
): Schedule.Schedule<unknown> => Schedule.min([left, right])

/** A duration as `Config.duration` reads it (`"20 seconds"`, `"500 millis"`), if the text is one. */
export const decodeDurationText = (text: string): Option.Option<Duration.Duration> =>
  Duration.fromInput(text as Duration.Input)

/**
 * The optional config key `name`: `None` when it is missing, a `ConfigError` whose issue points at
 * the key when `parse` refuses its text, as Config's own parsers report.
 */
export const optionalKey = <A>(
  name: string,
  parse: (text: string) => Result.Result<A, string>
): Config.Config<Option.Option<A>> =>
  Config.option(
    Config.mapEffect(Config.String(name), (text) => {
      const parsed = parse(text)
      if (Result.isSuccess(parsed)) return Effect.succeed(parsed.success)
      const issue = new SchemaIssue.Pointer([name], new SchemaIssue.InvalidValue({ message: parsed.failure }, text))
      return Effect.fail(new Config.ConfigError(new Schema.SchemaError(issue)))
    })
  )

/** The error type of a `Config` that fails: `ConfigError.ConfigError` in Effect 3, `Config.ConfigError` in Effect 4. */
export type ConfigError = Config.ConfigError

/** A success-or-failure value as an Effect. */
export const fromResult = <A, E>(result: Result.Result<A, E>): Effect.Effect<A, E> => Effect.fromResult(result)

/** The first typed error of a cause, if it has one. */
export const firstError = <E>(cause: Cause.Cause<E>): E | undefined =>
  Option.getOrUndefined(Cause.findErrorOption(cause))

/** A child scope of `scope` whose finalizers run in sequence. */
export const forkScope = (scope: Scope.Scope): Effect.Effect<Scope.Closeable> => Scope.fork(scope, "sequential")

/** Runs a scoped effect in `scope`: `Scope.extend` in Effect 3, `Scope.provide` in Effect 4. */
export const provideScope: <A, E, R>(
  effect: Effect.Effect<A, E, R>,
  scope: Scope.Scope
) => Effect.Effect<A, E, Exclude<R, Scope.Scope>> = Scope.provide

/** The exit of an interruption by no fiber in particular. */
export const interrupted: Exit.Exit<never> = Exit.interrupt()

/** Fails with `onTimeout()` when `effect` takes longer than `duration`. */
export const timeoutFail = <A, E, R, E2>(
  effect: Effect.Effect<A, E, R>,
  duration: Duration.Duration,
  onTimeout: () => E2
): Effect.Effect<A, E | E2, R> => Effect.timeoutOrElse(effect, { duration, orElse: () => Effect.fail(onTimeout()) })

/** A constructor of a branded string that checks `test` (`Brand.refined` in Effect 3, `Brand.make` in Effect 4). */
export const refinedString = <B extends string & Brand.Brand<any>>(
  test: (value: string) => boolean,
  message: (value: string) => string
) => Brand.make<B>((value) => test(value) || message(value))

/** A fiber started by a runtime: `Fiber.RuntimeFiber` in Effect 3, `Fiber.Fiber` in Effect 4. */
export type RunningFiber<A, E> = Fiber.Fiber<A, E>

/** A Deferred made outside any fiber. */
export const makeDeferred = <A, E = never>(): Deferred.Deferred<A, E> => Deferred.makeUnsafe<A, E>()

/** Completes a Deferred synchronously (a no-op when it is done already). */
export const completeDeferred = <A, E>(deferred: Deferred.Deferred<A, E>, exit: Exit.Exit<A, E>): void => {
  Deferred.doneUnsafe(deferred, exit)
}

/** Whether a value is a Stream. */
export const isStream = (value: object): value is Stream.Stream<unknown, unknown, unknown> => Stream.isStream(value)

/** Runs `f` on the cause of a failure, then fails with it: `tapErrorCause` in Effect 3, `tapCause` in Effect 4. */
export const tapCause: typeof Effect.tapCause = Effect.tapCause

/** Whether a cause holds interruptions only. */
export const isInterruptedOnly: <E>(cause: Cause.Cause<E>) => boolean = Cause.hasInterruptsOnly

/** Recovers from every cause: `Effect.catchAllCause` in Effect 3, `Effect.catchCause` in Effect 4. */
export const catchAllCause: typeof Effect.catchCause = Effect.catchCause

/**
 * What fibers are started from outside any fiber, with the services and references of the fiber
 * that captured it: a `Runtime` in Effect 3, a `Context` in Effect 4.
 */
export type FiberStarter<R> = Context.Context<R>

/** The log annotations a fiber starter carries. */
export type LogAnnotations = Readonly<Record<string, unknown>>

/** The current fiber's starter. */
export const currentFiberStarter = <R>(): Effect.Effect<FiberStarter<R>, never, R> => Effect.context<R>()

/** The services of a fiber starter. */
export const starterContext = <R>(starter: FiberStarter<R>): Context.Context<R> => starter

/**
 * A context without the stack frame of the span or `Effect.fn` it was captured in
 * (`References.CurrentStackFrame`): a fiber started with it annotates no failure with that frame,
 * which costs two Maps and a copy of the failure each time (a Stream's end is such a failure).
 */
export const omitStackFrame = <R>(context: Context.Context<R>): Context.Context<R> =>
  Context.omit(References.CurrentStackFrame)(context) as Context.Context<R>

/** The log annotations of a fiber starter. */
export const starterLogAnnotations = (starter: FiberStarter<never>): LogAnnotations =>
  Context.get(starter, References.CurrentLogAnnotations)

/** A starter like `starter`, with other services and the log annotations plus `key`. */
export const deriveFiberStarter = <R>(
  _starter: FiberStarter<never>,
  context: Context.Context<R>,
  annotations: LogAnnotations,
  key: string,
  value: unknown
): FiberStarter<R> => Context.add(context, References.CurrentLogAnnotations, { ...annotations, [key]: value })

/** Starts a fiber from a starter. */
export const forkWith =
  <R>(starter: FiberStarter<R>) =>
  <A, E>(effect: Effect.Effect<A, E, R>): RunningFiber<A, E> =>
    Effect.runForkWith(starter)(effect)

/** A fiber's exit if it has ended already. */
export const pollFiber = <A, E>(fiber: RunningFiber<A, E>): Exit.Exit<A, E> | undefined => fiber.pollUnsafe()

/** Adds a running fiber to a FiberSet, synchronously. */
export const addToFiberSet = <A, E>(set: FiberSet.FiberSet<A, E>, fiber: RunningFiber<A, E>): void => {
  FiberSet.addUnsafe(set, fiber)
}

/** Interrupts a fiber without waiting for it. */
export const interruptFiber = (fiber: RunningFiber<unknown, unknown>): void => {
  fiber.interruptUnsafe()
}
