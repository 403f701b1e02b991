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

/** What `take` got, per window (shortest first), for `finished`. */
export type SharedGrant = ReadonlyArray<{ at: number; entryId: string | undefined }>;

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
    const granted: Array<{ at: number; entryId: string | undefined } | undefined> = this.#windows.map(() => undefined);
    const staleAfter = this.#windows.map((w) => this.budget.marginFor(w) / 2);
    const fresh = (i: number, now: number) => {
      const g = granted[i];
      return g !== undefined && now - g.at <= (staleAfter[i] as number);
    };
    for (let pass = 0; pass < MAX_PASSES; pass++) {
      for (let i = 0; i < this.#windows.length; i++) {
        if (fresh(i, Date.now())) continue;
        const w = this.#windows[i] as RateWindow;
        const { entryId } = await this.budget.takeCall(this.#key(key, w), classFor(w), w, signal);
        granted[i] = { at: Date.now(), entryId };
      }
      const now = Date.now();
      if (this.#windows.every((_, i) => fresh(i, now))) break;
    }
    // After MAX_PASSES (windows that keep taking turns to wait), `finished` stretches the older grants.
    return granted.map((g) => g ?? { at: Date.now(), entryId: undefined });
  }

  /**
   * The call of `grant` got its response (or gave up) now: each window counts it until then
   * (`DistributedBudget.finished`), since the provider saw it at some point before. Best effort, like the
   * margin it backs up: it must land before the reservation stops counting (one window and the margin
   * after its grant), which a single row write does unless storage stalls.
   */
  async finished(key: SharedLimitKey, grant: SharedGrant, at: number = Date.now()): Promise<void> {
    await Promise.all(
      this.#windows.map((w, i) => {
        const g = grant[i];
        return g ? this.budget.finished(this.#key(key, w), classFor(w), w, g.entryId, g.at, at) : undefined;
      }),
    );
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
