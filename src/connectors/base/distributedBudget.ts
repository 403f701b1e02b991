import { randomBytes } from 'node:crypto';
import { z } from 'zod';
import { ConflictError, PreconditionFailedError } from '../../platform/errors';
import type { PartitionKey, TenantTable } from '../../storage';
import { raceSignal, sleep } from './abort';

/** A rolling window: at most `limit` calls in any `intervalMs`. */
export interface RateWindow {
  limit: number;
  intervalMs: number;
}

export type CallClass = 'interactive' | 'background';

/** Where a budget lives: one row per limited thing (a HubSpot portal, a Teams webhook, a mailbox) and window. */
export interface BudgetKey {
  /** Process-local identity of the budget (also the pool key). */
  id: string;
  pk: PartitionKey;
  rk: string;
}

export interface BudgetRow extends Record<string, string | number | boolean | Date | null | undefined> {
  /** JSON array of reservations still inside the window (see `Entry`). */
  entries: string;
  /** Epoch ms; nothing is reserved before (a 429 seen by any instance). */
  pausedUntil: number;
  /** Epoch ms; while in the future, background work leaves the reserved share to interactive work. */
  interactiveWaitingUntil: number;
}

/**
 * One reservation: `n` calls made (or allowed) between `r` and `e`. An open reservation ends at its
 * expiry; the instance that made it closes it at its next reservation with the calls it really made
 * and the time of the last one, so a steady stream is counted almost exactly.
 */
const entrySchema = z.object({ i: z.string(), c: z.enum(['i', 'b']), n: z.number().int().positive(), r: z.number(), e: z.number() });
type Entry = z.infer<typeof entrySchema>;

export interface BudgetOptions {
  /** Share of the limit background work leaves free while interactive work waits. Default 0.2. */
  interactiveReserve?: number;
  now?: () => number;
  sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
  /** Conditional-write attempts per reservation before giving up on a contended row. Default 20. */
  maxWriteAttempts?: number;
  /** Least latency/skew allowance, whatever the window (see `marginMs`). Default 50 ms. */
  minMarginMs?: number;
}

interface Pool {
  remaining: number;
  expiresAt: number;
  entryId: string | undefined;
  /** When the last call of the current reservation was let through. */
  lastUse: number | undefined;
  flight: Promise<number> | undefined;
  /** No reservation ahead of time before this (the last one was denied). */
  notBefore: number;
}

export interface BudgetStats {
  reservations: number;
  /** Calls booked again because they left well after their grant (see `sent`). */
  lateCalls: number;
  denials: number;
  writeConflicts: number;
  waitedMs: number;
}

/**
 * Providers' limits are per account, webhook or mailbox across everything our app runs (HubSpot per
 * portal, Teams per webhook, Outlook per app and mailbox), so a limiter inside one process is not enough
 * once Azure runs two instances. This is the cross-instance half, shared by the connectors and knowing
 * none of them: every instance reserves calls from one Table Storage row per key with ETag-conditional
 * writes, a few at a time, so the row sees a handful of writes per second rather than one per call.
 *
 * The row holds the reservations of the last window. A reservation may be granted only if, with it,
 * the reservations still counted stay within the limit; counting a reservation from its start to its
 * (closed or expiry) end plus one window plus a margin (latency, clock skew) makes any rolling window
 * of the provider's contain at most `limit` calls. Background reservations are capped below the limit only
 * while interactive work is waiting, so a sync uses the whole limit when nothing else needs it and
 * interactive work gets through within one reservation's span when it does.
 */
export class DistributedBudget {
  readonly #table: TenantTable<BudgetRow>;
  readonly #reserveShare: number;
  readonly #now: () => number;
  readonly #sleep: (ms: number, signal?: AbortSignal) => Promise<void>;
  readonly #maxWriteAttempts: number;
  readonly #minMarginMs: number;
  readonly #pools = new Map<string, Pool>();
  readonly #stats: BudgetStats = { reservations: 0, lateCalls: 0, denials: 0, writeConflicts: 0, waitedMs: 0 };

  constructor(table: TenantTable<BudgetRow>, opts: BudgetOptions = {}) {
    this.#table = table;
    this.#reserveShare = opts.interactiveReserve ?? 0.2;
    this.#now = opts.now ?? Date.now;
    this.#sleep = opts.sleep ?? sleep;
    this.#maxWriteAttempts = opts.maxWriteAttempts ?? 20;
    this.#minMarginMs = opts.minMarginMs ?? DEFAULT_MIN_MARGIN_MS;
  }

  stats(): BudgetStats {
    return { ...this.#stats };
  }

  /** How long past its window a reservation under `window` still counts (`marginMs` with this budget's floor). */
  marginFor(window: RateWindow): number {
    return marginMs(window, this.#minMarginMs);
  }

  /**
   * Waits until one call may be made under `key` and returns how long it waited (ms). Rejects with the
   * signal's reason on abort and with the storage error if the row cannot be read or written.
   */
  async take(key: BudgetKey, cls: CallClass, window: RateWindow, signal?: AbortSignal): Promise<number> {
    return (await this.takeCall(key, cls, window, signal)).waitedMs;
  }

  /**
   * As `take`, and names the reservation the call came from, for `finished`: a provider that counts a
   * call when it arrives may see it any time until its response, which can be later than the grant by
   * more than the margin (a cold connection, a slow webhook).
   */
  async takeCall(key: BudgetKey, cls: CallClass, window: RateWindow, signal?: AbortSignal): Promise<{ waitedMs: number; entryId: string | undefined }> {
    const started = this.#now();
    const pool = this.#pool(key, cls);
    for (;;) {
      signal?.throwIfAborted();
      const now = this.#now();
      if (pool.remaining > 0 && now < pool.expiresAt) {
        pool.remaining--;
        pool.lastUse = now;
        // Background work reserves the next calls before these run out, so it never stalls on the
        // row's round trip; interactive work is sparse and would only leave calls unused.
        if (cls === 'background' && !pool.flight && now >= pool.notBefore && pool.remaining <= Math.ceil(chunkSize(window) / 2)) {
          this.#startFlight(key, cls, window, pool).catch(() => undefined);
        }
        const waited = now - started;
        this.#stats.waitedMs += waited;
        return { waitedMs: waited, entryId: pool.entryId };
      }
      const flight = pool.flight ?? this.#startFlight(key, cls, window, pool);
      const retryInMs = await raceSignal(flight, signal);
      if (retryInMs > 0 && !(pool.remaining > 0 && this.#now() < pool.expiresAt)) await this.#sleep(retryInMs, signal);
    }
  }

  #startFlight(key: BudgetKey, cls: CallClass, window: RateWindow, pool: Pool): Promise<number> {
    const flight = this.#reserve(key, cls, window, pool).finally(() => {
      if (pool.flight === flight) pool.flight = undefined;
    });
    pool.flight = flight;
    return flight;
  }

  /**
   * Stops every instance from reserving under `key` for `ms` (after a 429 or a `Remaining: 0`
   * header). Best effort: a lost race is retried a few times, then left to the next 429.
   */
  async pause(key: BudgetKey, ms: number): Promise<void> {
    const until = this.#now() + ms;
    for (let attempt = 0; attempt < 5; attempt++) {
      const row = await this.#table.get(key.pk, key.rk);
      if (row && row.data.pausedUntil >= until) return;
      try {
        if (row) await this.#table.update(key.pk, key.rk, { pausedUntil: until }, row.etag);
        else await this.#table.create(key.pk, key.rk, { entries: '[]', pausedUntil: until, interactiveWaitingUntil: 0 });
        return;
      } catch (err) {
        if (err instanceof PreconditionFailedError || err instanceof ConflictError) continue;
        throw err;
      }
    }
  }

  /**
   * The call `take` let through at `grantedAt` left only at `sentAt` (a new TLS connection, a cold code
   * path, a stalled event loop), so the provider counts it that much later. Up to half the margin is what the
   * margin is for; beyond that the call is booked once more, at the time it left, so it goes on counting
   * until one window after it left. Counted again rather than moved, so it is never counted short; the
   * extra count lasts one window. Best effort: a row that keeps changing is left to the margin.
   */
  async sent(key: BudgetKey, cls: CallClass, window: RateWindow, grantedAt: number, sentAt: number): Promise<void> {
    const margin = marginMs(window, this.#minMarginMs);
    if (sentAt - grantedAt <= margin / 2) return;
    const countedForMs = window.intervalMs + margin;
    const entry: Entry = { i: randomBytes(6).toString('base64url'), c: cls === 'interactive' ? 'i' : 'b', n: 1, r: sentAt, e: sentAt };
    for (let attempt = 0; attempt < this.#maxWriteAttempts; attempt++) {
      const row = await this.#table.get(key.pk, key.rk);
      const live = liveEntries(parseEntries(row?.data.entries), countedForMs, this.#now());
      const data: BudgetRow = { entries: JSON.stringify([...live, entry]), pausedUntil: row?.data.pausedUntil ?? 0, interactiveWaitingUntil: row?.data.interactiveWaitingUntil ?? 0 };
      if (await this.#write(key, row, data)) {
        this.#stats.lateCalls++;
        return;
      }
    }
  }

  /**
   * The call taken from reservation `entryId` got its response at `at`: the reservation is counted as
   * lasting until then (its end moves, no call is added), so a provider counting arrivals, which happen
   * before the response, never sees more than the limit in a window, however slow the call was. Needs
   * the write to land before the reservation would have stopped counting (its end plus one window and
   * the margin); a row that keeps changing is left to the margin. Calls well within the margin of their
   * grant need no write.
   */
  async finished(key: BudgetKey, cls: CallClass, window: RateWindow, entryId: string | undefined, grantedAt: number, at: number): Promise<void> {
    const pool = this.#pools.get(`${key.id}|${cls}`);
    // The instance closes its own reservation at its last use; the last use is now this response.
    if (pool && pool.entryId === entryId && (pool.lastUse === undefined || pool.lastUse < at)) pool.lastUse = at;
    if (entryId === undefined || at - grantedAt <= marginMs(window, this.#minMarginMs) / 2) return;
    const countedForMs = window.intervalMs + marginMs(window, this.#minMarginMs);
    for (let attempt = 0; attempt < this.#maxWriteAttempts; attempt++) {
      const row = await this.#table.get(key.pk, key.rk);
      const entries = liveEntries(parseEntries(row?.data.entries), countedForMs, this.#now());
      const own = entries.find((x) => x.i === entryId);
      if (!own || own.e >= at) return;
      own.e = at;
      const data: BudgetRow = { entries: JSON.stringify(entries), pausedUntil: row?.data.pausedUntil ?? 0, interactiveWaitingUntil: row?.data.interactiveWaitingUntil ?? 0 };
      if (await this.#write(key, row, data)) {
        this.#stats.lateCalls++;
        return;
      }
    }
  }

  /** Writes the row under the ETag it was read with; false when another instance wrote it first. */
  async #write(key: BudgetKey, row: { etag: string } | undefined, data: BudgetRow): Promise<boolean> {
    try {
      if (row) await this.#table.update(key.pk, key.rk, data, row.etag, 'Replace');
      else await this.#table.create(key.pk, key.rk, data);
      return true;
    } catch (err) {
      if (err instanceof PreconditionFailedError || err instanceof ConflictError) {
        this.#stats.writeConflicts++;
        return false;
      }
      throw err;
    }
  }

  #pool(key: BudgetKey, cls: CallClass): Pool {
    const id = `${key.id}|${cls}`;
    let pool = this.#pools.get(id);
    if (!pool) {
      pool = { remaining: 0, expiresAt: 0, entryId: undefined, lastUse: undefined, flight: undefined, notBefore: 0 };
      this.#pools.set(id, pool);
      // Pools of keys no longer used are dropped; the map holds what ran in the last minute or so.
      if (this.#pools.size > 1000) this.#sweep();
    }
    return pool;
  }

  #sweep(): void {
    const now = this.#now();
    for (const [id, p] of this.#pools) if (!p.flight && (p.remaining === 0 || now >= p.expiresAt) && now - p.expiresAt > 60_000) this.#pools.delete(id);
  }

  /**
   * One reservation under the row's ETag. The calls still unused in the pool are carried into the new
   * reservation (taken off the previous one, which is closed at its last call), so a reservation made
   * ahead of time neither loses nor double-counts them. Resolves 0 when the pool got calls, else how
   * long to wait.
   */
  async #reserve(key: BudgetKey, cls: CallClass, window: RateWindow, pool: Pool): Promise<number> {
    const want = cls === 'interactive' ? 1 : chunkSize(window);
    const margin = marginMs(window, this.#minMarginMs);
    const hold = holdMs(window);
    const countedForMs = window.intervalMs + margin;
    const reserve = Math.min(window.limit - 1, Math.ceil(window.limit * this.#reserveShare));
    for (let attempt = 0; attempt < this.#maxWriteAttempts; attempt++) {
      const now = this.#now();
      const row = await this.#table.get(key.pk, key.rk);
      const stored = parseEntries(row?.data.entries);
      const live = liveEntries(stored, countedForMs, now);
      let changed = live.length !== stored.length;

      // Snapshot of the pool: usable calls move to the new reservation, unusable ones are given back.
      const usable = pool.entryId !== undefined && now < pool.expiresAt ? pool.remaining : 0;
      const lastUse = pool.lastUse;
      const closed = live.map((x) => ({ ...x }));
      const own = pool.entryId !== undefined ? closed.find((x) => x.i === pool.entryId) : undefined;
      if (own) {
        own.n -= Math.max(0, pool.remaining);
        own.e = Math.min(own.e, lastUse ?? own.r);
      }
      const afterClose = closed.filter((x) => x.n > 0);

      const pausedUntil = row?.data.pausedUntil ?? 0;
      let interactiveWaitingUntil = row?.data.interactiveWaitingUntil ?? 0;
      let grant = 0;
      let wait = 0;
      if (pausedUntil > now) {
        wait = pausedUntil - now;
      } else {
        const sumAll = sum(afterClose) + usable;
        const sumBg = sum(afterClose.filter((x) => x.c === 'b')) + (cls === 'background' ? usable : 0);
        let room = window.limit - sumAll;
        const capped = cls === 'background' && interactiveWaitingUntil > now;
        if (capped) room = Math.min(room, window.limit - reserve - sumBg);
        grant = Math.max(0, Math.min(want, room));
        if (grant === 0) {
          wait = Math.max(
            waitUntilRoom(live, window.limit, countedForMs, now),
            capped ? waitUntilRoom(live.filter((x) => x.c === 'b'), window.limit - reserve, countedForMs, now) : 0,
          );
          if (cls === 'interactive' && interactiveWaitingUntil < now + window.intervalMs / 2) {
            interactiveWaitingUntil = now + window.intervalMs;
            changed = true;
          }
        }
      }
      const entryId = grant > 0 ? randomBytes(6).toString('base64url') : undefined;
      // Denied: our own reservation stays as it was (its calls may still be used); only expired rows go.
      const entries = entryId ? [...afterClose, { i: entryId, c: cls === 'interactive' ? ('i' as const) : ('b' as const), n: grant + usable, r: now, e: now + hold }] : live;
      if ((entryId || changed) && !(await this.#write(key, row, { entries: JSON.stringify(entries), pausedUntil, interactiveWaitingUntil }))) continue;
      if (entryId) {
        // Calls taken from the pool since the snapshot came out of `usable`, which the new entry covers.
        pool.remaining = (usable > 0 ? pool.remaining : 0) + grant;
        pool.entryId = entryId;
        pool.expiresAt = now + hold;
        if (pool.lastUse !== undefined && pool.lastUse < now) pool.lastUse = undefined;
        this.#stats.reservations++;
        return 0;
      }
      this.#stats.denials++;
      const retryIn = Math.max(5, Math.min(wait, window.intervalMs));
      pool.notBefore = now + retryIn;
      return retryIn;
    }
    // Heavy contention: back off a little and let the caller try again.
    return 20 + Math.floor(Math.random() * 30);
  }
}

/**
 * Calls reserved at a time by background work. Small on purpose: the straddling reservation is counted
 * whole, so the steady rate is about (limit − chunk + 1) per (window + margin); 1/40 of the limit keeps
 * that above 97 % of the provider's bound with a handful of row writes per second.
 */
export function chunkSize(window: RateWindow): number {
  return Math.max(1, Math.round(window.limit / 40));
}

/**
 * How long past its window a reservation still counts: the provider counts a call when it arrives, so this
 * covers the spread of request latency and the clock skew between instances.
 */
export function marginMs(window: RateWindow, minMarginMs: number = DEFAULT_MIN_MARGIN_MS): number {
  return Math.max(minMarginMs, Math.round(window.intervalMs / 100));
}

export const DEFAULT_MIN_MARGIN_MS = 50;

/** How long reserved calls stay usable; callers take them right after the local limiter, so this is generous. */
export function holdMs(window: RateWindow): number {
  return Math.max(100, Math.round(window.intervalMs / 10));
}

function sum(entries: Entry[]): number {
  let s = 0;
  for (const e of entries) s += e.n;
  return s;
}

/** Time until the counted entries fall to at most `cap - 1` calls, i.e. until one more may be granted. */
function waitUntilRoom(entries: Entry[], cap: number, countedForMs: number, now: number): number {
  let total = sum(entries);
  if (total < cap) return 0;
  const byEnd = [...entries].sort((a, b) => a.e - b.e);
  for (const e of byEnd) {
    total -= e.n;
    if (total < cap) return Math.max(0, e.e + countedForMs - now);
  }
  return 0;
}

/** The reservations still counted at `now`. */
function liveEntries(entries: Entry[], countedForMs: number, now: number): Entry[] {
  return entries.filter((x) => x.n > 0 && x.e + countedForMs > now);
}

function parseEntries(raw: string | undefined): Entry[] {
  if (!raw) return [];
  try {
    const parsed = z.array(entrySchema).safeParse(JSON.parse(raw));
    return parsed.success ? parsed.data : [];
  } catch {
    return [];
  }
}

