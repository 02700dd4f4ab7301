/**
 * One timer queue for the timers of many connections (keepalive pings, pong timeouts, close
 * timeouts), driven by a single fiber on Effect's `Clock`.
 *
 * A sleeping fiber per connection and per timer costs kilobytes of heap each (a fiber, its stack
 * and its sleep), which made up a fifth of an idle connection; a timer here is one small object in
 * a binary heap. The driver sleeps on the `Clock` until the earliest deadline, so `TestClock`
 * drives these timers as it drives `Effect.sleep`.
 */
import type * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"
import { callback, clock, currentTimeMillis } from "./effectCompat.js"

/** A scheduled task; `cancel` it to drop it. */
export class Timer {
  /** Position in the heap, -1 once fired or cancelled. */
  index = -1
  constructor(
    readonly deadline: number,
    readonly task: (arg: any) => void,
    private readonly timers: Timers,
    /** Given to `task`: one function can then serve every connection, where a closure each would cost memory. */
    readonly arg: unknown = undefined
  ) {}

  cancel(): void {
    if (this.index >= 0) this.timers.remove(this)
  }
}

/** A min-heap of timers by deadline and the fiber that fires them. */
export class Timers {
  private readonly heap: Array<Timer> = []
  /** Resumes the driver early, when a timer is due before what it sleeps until. */
  private wake: (() => void) | undefined = undefined
  private sleepingUntil = Number.POSITIVE_INFINITY

  constructor(private readonly clock: Clock.Clock) {}

  /** Runs `task` once, `delayMillis` from now on the clock (with `arg`, if given). */
  schedule(delayMillis: number, task: () => void): Timer
  schedule<A>(delayMillis: number, task: (arg: A) => void, arg: A): Timer
  schedule(delayMillis: number, task: (arg: unknown) => void, arg?: unknown): Timer {
    const timer = new Timer(currentTimeMillis(this.clock) + delayMillis, task, this, arg)
    const heap = this.heap
    timer.index = heap.length
    heap.push(timer)
    this.up(timer.index)
    if (timer.deadline < this.sleepingUntil && this.wake !== undefined) this.wake()
    return timer
  }

  /** Number of pending timers (tests). */
  get size(): number {
    return this.heap.length
  }

  /** @internal */
  remove(timer: Timer): void {
    const heap = this.heap
    const index = timer.index
    timer.index = -1
    const last = heap.pop()!
    if (last === timer) return
    heap[index] = last
    last.index = index
    this.down(index)
    this.up(last.index)
  }

  /** Fires every due timer, then sleeps until the next deadline or a wake-up. */
  private readonly loop: Effect.Effect<never> = Effect.suspend(() => {
    const heap = this.heap
    const now = currentTimeMillis(this.clock)
    while (heap.length > 0 && heap[0]!.deadline <= now) {
      const timer = heap[0]!
      this.remove(timer)
      try {
        timer.task(timer.arg)
      } catch {
        // A failing task (a bug) must not stop the timers of every other connection.
      }
    }
    const next = heap.length > 0 ? heap[0]!.deadline : Number.POSITIVE_INFINITY
    this.sleepingUntil = next
    const woken = callback<void>((resume) => {
      this.wake = () => {
        this.wake = undefined
        resume(Effect.void)
      }
      return Effect.sync(() => {
        this.wake = undefined
      })
    })
    const wait =
      next === Number.POSITIVE_INFINITY ? woken : Effect.raceFirst(this.clock.sleep(Duration.millis(next - now)), woken)
    return Effect.andThen(wait, this.loop)
  })

  private up(index: number): void {
    const heap = this.heap
    const timer = heap[index]!
    while (index > 0) {
      const parentIndex = (index - 1) >> 1
      const parent = heap[parentIndex]!
      if (parent.deadline <= timer.deadline) break
      heap[index] = parent
      parent.index = index
      index = parentIndex
    }
    heap[index] = timer
    timer.index = index
  }

  private down(index: number): void {
    const heap = this.heap
    const length = heap.length
    const timer = heap[index]!
    for (;;) {
      const left = 2 * index + 1
      if (left >= length) break
      const right = left + 1
      const child = right < length && heap[right]!.deadline < heap[left]!.deadline ? right : left
      if (heap[child]!.deadline >= timer.deadline) break
      heap[index] = heap[child]!
      heap[index]!.index = index
      index = child
    }
    heap[index] = timer
    timer.index = index
  }

  /** A timer queue whose driver fiber lives as long as the current scope. */
  static readonly make: Effect.Effect<Timers, never, Scope.Scope> = Effect.gen(function* () {
    const timers = new Timers(yield* clock)
    yield* Effect.forkScoped(timers.loop)
    return timers
  })
}
