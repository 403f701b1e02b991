/*
 * Hand-written on purpose. Bottleneck, the usual choice, has had no release since 2019, and it is the
 * limiter inside @hubspot/api-client that leaks: every `new Client()` / `setAccessToken()` makes a new
 * Bottleneck whose reservoir timer is never cleared (+25 MB per 5,000 tokens measured, HubSpot issue
 * #657). We have one limiter per API for the whole process, keyed by portal or mailbox, and a key
 * costs nothing once its window has passed.
 *
 * Scope: one process. Azure scale-out multiplies throughput by the instance count, so limits passed
 * here should be the provider's limit divided by the expected instances, and 429s still feed
 * `penalize()`.
 */

export interface KeyedRateLimiterOptions {
  /** Calls allowed per key in any window of `intervalMs`. */
  limit: number;
  intervalMs: number;
  /** Calls in flight per key (Outlook allows 4 per mailbox). Unlimited when omitted. */
  maxConcurrent?: number;
  /** Monotonic clock in ms. Wall-clock time jumps with NTP; a jump back would stall every key. */
  now?: () => number;
}

export interface RateLimiterStats {
  /** Calls let through. */
  granted: number;
  /** Calls that had to queue. */
  waits: number;
  /** Total time spent queued, ms. */
  waitedMs: number;
  /** `penalize()` calls. */
  penalties: number;
  /** Keys currently held in memory. */
  keys: number;
  /** Calls queued right now, all keys. */
  queued: number;
}

/** Gives the concurrency slot back. Idempotent; a no-op unless `maxConcurrent` is set. */
export type Release = () => void;

const noop: Release = () => undefined;

interface Waiter {
  resolve(release: Release): void;
  reject(err: unknown): void;
  enqueuedAt: number;
  detach(): void;
}

interface KeyState {
  /** Grant times still inside the window, oldest first, from index `head`. */
  stamps: number[];
  head: number;
  queue: Waiter[];
  running: number;
  pausedUntil: number;
  timer: ReturnType<typeof setTimeout> | undefined;
}

/**
 * A sliding-window log per key: a call is let through only if fewer than `limit` calls were let
 * through in the last `intervalMs`, which is exact (a token bucket with a full bucket allows up to
 * twice the limit across a window boundary, and HubSpot's TEN_SECONDLY_ROLLING window is rolling).
 * Memory per key is the calls of one window. Each key has its own FIFO queue and its own timer, so
 * keys never wait on each other; idle keys are swept once their window has passed.
 */
export class KeyedRateLimiter {
  readonly #limit: number;
  readonly #intervalMs: number;
  readonly #maxConcurrent: number;
  readonly #now: () => number;
  readonly #keys = new Map<string, KeyState>();
  #lastSweep: number;
  #stats = { granted: 0, waits: 0, waitedMs: 0, penalties: 0 };

  constructor(opts: KeyedRateLimiterOptions) {
    if (!Number.isInteger(opts.limit) || opts.limit < 1) throw new RangeError('limit must be a positive integer');
    if (!(opts.intervalMs > 0)) throw new RangeError('intervalMs must be positive');
    if (opts.maxConcurrent !== undefined && (!Number.isInteger(opts.maxConcurrent) || opts.maxConcurrent < 1)) {
      throw new RangeError('maxConcurrent must be a positive integer');
    }
    this.#limit = opts.limit;
    this.#intervalMs = opts.intervalMs;
    this.#maxConcurrent = opts.maxConcurrent ?? Infinity;
    // Looked up per call so test clocks that replace `performance` are honoured.
    this.#now = opts.now ?? (() => performance.now());
    this.#lastSweep = this.#now();
  }

  /**
   * Waits for a slot for `key`. Resolves with a `Release` to call when the call finishes: required
   * with `maxConcurrent` (the key stays occupied, and in memory, until then), a no-op otherwise. An
   * abort while queued rejects with the signal's reason and gives up the place in the queue.
   */
  acquire(key: string, signal?: AbortSignal): Promise<Release> {
    if (signal?.aborted) return Promise.reject(signal.reason);
    const now = this.#now();
    this.#maybeSweep(now);
    const state = this.#state(key);
    return new Promise<Release>((resolve, reject) => {
      const waiter: Waiter = { resolve, reject, enqueuedAt: now, detach: () => undefined };
      if (signal) {
        const onAbort = () => {
          const i = state.queue.indexOf(waiter);
          if (i < 0) return;
          state.queue.splice(i, 1);
          reject(signal.reason);
          this.#pump(key, state);
        };
        signal.addEventListener('abort', onAbort, { once: true });
        waiter.detach = () => signal.removeEventListener('abort', onAbort);
      }
      state.queue.push(waiter);
      this.#pump(key, state, now);
    });
  }

  /** Runs `fn` when `key` has a slot, holding the concurrency slot until it settles. */
  async schedule<T>(key: string, fn: () => Promise<T>, signal?: AbortSignal): Promise<T> {
    const release = await this.acquire(key, signal);
    try {
      return await fn();
    } finally {
      release();
    }
  }

  /**
   * Lets nothing through for `key` for `ms` from now (after a 429, with its Retry-After), so callers
   * queued behind the failing one don't spend more of the quota. Extends, never shortens, a pause.
   */
  penalize(key: string, ms: number): void {
    const now = this.#now();
    this.#maybeSweep(now);
    const state = this.#state(key);
    state.pausedUntil = Math.max(state.pausedUntil, now + Math.max(0, ms));
    this.#stats.penalties++;
    this.#pump(key, state, now);
  }

  stats(): RateLimiterStats {
    let queued = 0;
    for (const s of this.#keys.values()) queued += s.queue.length;
    return { ...this.#stats, keys: this.#keys.size, queued };
  }

  #state(key: string): KeyState {
    let state = this.#keys.get(key);
    if (!state) {
      state = { stamps: [], head: 0, queue: [], running: 0, pausedUntil: 0, timer: undefined };
      this.#keys.set(key, state);
    }
    return state;
  }

  /** Grants queued callers in order while the key has room; otherwise arms one timer for when it will. */
  #pump(key: string, state: KeyState, now: number = this.#now()): void {
    if (state.timer !== undefined) {
      clearTimeout(state.timer);
      state.timer = undefined;
    }
    this.#prune(state, now);
    while (state.queue.length > 0) {
      if (state.running >= this.#maxConcurrent) return; // a release pumps again
      let wakeAt: number | undefined;
      if (now < state.pausedUntil) wakeAt = state.pausedUntil;
      else if (state.stamps.length - state.head >= this.#limit) wakeAt = (state.stamps[state.head] as number) + this.#intervalMs;
      if (wakeAt !== undefined) {
        // Timers may fire a little early against the clock; the pump re-checks and re-arms if so.
        state.timer = setTimeout(() => {
          state.timer = undefined;
          this.#pump(key, state);
        }, Math.max(1, Math.ceil(wakeAt - now)));
        return;
      }
      const waiter = state.queue.shift() as Waiter;
      state.stamps.push(now);
      this.#stats.granted++;
      if (now > waiter.enqueuedAt) {
        this.#stats.waits++;
        this.#stats.waitedMs += now - waiter.enqueuedAt;
      }
      waiter.detach();
      // Without a concurrency cap nothing is counted, so a caller of acquire() that never releases
      // cannot pin its key in memory.
      if (this.#maxConcurrent === Infinity) {
        waiter.resolve(noop);
        continue;
      }
      state.running++;
      let released = false;
      waiter.resolve(() => {
        if (released) return;
        released = true;
        state.running--;
        this.#pump(key, state);
      });
    }
  }

  #prune(state: KeyState, now: number): void {
    while (state.head < state.stamps.length && (state.stamps[state.head] as number) + this.#intervalMs <= now) state.head++;
    if (state.head > 0 && state.head * 2 >= state.stamps.length) {
      state.stamps = state.stamps.slice(state.head);
      state.head = 0;
    }
  }

  /**
   * Drops keys whose state no longer constrains anything. At most once per interval, so the cost is
   * amortised over the calls of that interval, and the map never holds more than the keys touched in
   * the last two intervals plus those still queued, running or paused.
   */
  #maybeSweep(now: number): void {
    if (now - this.#lastSweep < this.#intervalMs) return;
    this.#lastSweep = now;
    for (const [key, state] of this.#keys) {
      this.#prune(state, now);
      const idle = state.queue.length === 0 && state.running === 0 && state.stamps.length === state.head && state.pausedUntil <= now && state.timer === undefined;
      if (idle) this.#keys.delete(key);
    }
  }
}
