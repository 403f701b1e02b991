import { createHash } from 'node:crypto';
import type { PartitionKey } from '../../storage';
import type { BudgetKey, CallClass, DistributedBudget, RateWindow } from './distributedBudget';

/** Where a limited thing's rows live; each window gets its own row under `rk`. */
export interface SharedLimitKey {
  /** Process-local identity (pool key); no credential, no personal data. */
  id: string;
  pk: PartitionKey;
  /** Row-key prefix; the window is appended. */
  rk: string;
}

/** Grant times per window (same order as the windows), for `sent`. */
export type SharedGrant = readonly number[];

/**
 * Up to this limit a window reserves one call at a time (one row entry per call, about 60 bytes, so a
 * few hundred fit in the 64 KiB a Table property holds); above it, calls are reserved in chunks of a
 * fortieth of the limit (`chunkSize`), which keeps the row small at the cost of a reservation held by
 * an instance that then goes quiet (given back at its next reservation, or counted until it expires).
 */
export const MAX_SINGLE_CALL_LIMIT = 200;

/** Rounds of re-taking stale grants before the call goes anyway (see `take`). */
const MAX_PASSES = 4;

/**
 * Several rolling windows for one limited thing (a webhook, a mailbox), held across every instance by
 * `DistributedBudget` rows. The caller's in-process limiter still goes first (it keeps a burst of local
 * callers off the row and holds per-process concurrency); this is what makes the limit hold when Azure
 * runs more than one instance.
 */
export class SharedRateLimiter {
  readonly #windows: RateWindow[];

  constructor(
    private readonly budget: DistributedBudget,
    windows: ReadonlyArray<RateWindow>,
  ) {
    // Shortest first: it is the one usually waited for, and a long window rarely makes the call wait.
    this.#windows = [...windows].sort((a, b) => a.intervalMs - b.intervalMs);
  }

  /**
   * One call under every window; rejects with the signal's reason on abort (reservations made stay
   * counted). A window's grant counts the call from the moment it was granted, so a grant that went
   * stale while a later window made the call wait (older than half its margin) is taken again: the
   * first reservation stays counted (it cannot be undone), which wastes one call of a window that was
   * not the one holding us back.
   */
  async take(key: SharedLimitKey, signal?: AbortSignal): Promise<SharedGrant> {
    const granted: Array<number | undefined> = this.#windows.map(() => undefined);
    const staleAfter = this.#windows.map((w) => this.budget.marginFor(w) / 2);
    for (let pass = 0; pass < MAX_PASSES; pass++) {
      for (let i = 0; i < this.#windows.length; i++) {
        const at = granted[i];
        if (at !== undefined && Date.now() - at <= (staleAfter[i] as number)) continue;
        const w = this.#windows[i] as RateWindow;
        await this.budget.take(this.#key(key, w), classFor(w), w, signal);
        granted[i] = Date.now();
      }
      const now = Date.now();
      if (granted.every((at, i) => at !== undefined && now - at <= (staleAfter[i] as number))) break;
    }
    // After MAX_PASSES (windows that keep taking turns to wait), the late grants are booked again by `sent`.
    return granted.map((at) => at ?? Date.now());
  }

  /** The call granted by `grant` left now; a late one is booked again (`DistributedBudget.sent`). Best effort. */
  async sent(key: SharedLimitKey, grant: SharedGrant, sentAt: number = Date.now()): Promise<void> {
    await Promise.all(this.#windows.map((w, i) => (grant[i] === undefined ? undefined : this.budget.sent(this.#key(key, w), classFor(w), w, grant[i] as number, sentAt))));
  }

  /** No instance reserves under `key`'s shortest window for `ms` (after a 429). */
  async pause(key: SharedLimitKey, ms: number): Promise<void> {
    const shortest = this.#windows[this.#windows.length - 1];
    if (shortest) await this.budget.pause(this.#key(key, shortest), ms);
  }

  #key(key: SharedLimitKey, w: RateWindow): BudgetKey {
    // The limit is part of the row, so a changed setting starts a fresh row instead of misreading the old one.
    const suffix = `${w.limit}per${w.intervalMs}`;
    return { id: `${key.id}|${suffix}`, pk: key.pk, rk: `${key.rk}.${suffix}` };
  }
}

function classFor(w: RateWindow): CallClass {
  // 'interactive' reserves exactly one call per take and nothing ahead; 'background' reserves chunks.
  return w.limit <= MAX_SINGLE_CALL_LIMIT ? 'interactive' : 'background';
}

/** A short, stable, non-reversible name for something that must not be stored as is (a webhook URL, a mailbox). */
export function limitKeyHash(raw: string): string {
  return createHash('sha256').update(raw).digest('base64url').slice(0, 32);
}
