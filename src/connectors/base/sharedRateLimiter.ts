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
    // Longest first, like the local limiters: the call follows the shortest window's grant at once.
    this.#windows = [...windows].sort((a, b) => b.intervalMs - a.intervalMs);
  }

  /** One call under every window; rejects with the signal's reason on abort (reservations made stay counted). */
  async take(key: SharedLimitKey, signal?: AbortSignal): Promise<SharedGrant> {
    const granted: number[] = [];
    for (const w of this.#windows) {
      await this.budget.take(this.#key(key, w), classFor(w), w, signal);
      granted.push(Date.now());
    }
    return granted;
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
