import { ConflictError, NotFoundError, PreconditionFailedError } from '../../platform/errors';
import { escapeKeyPart, partitionKey, type TenantId } from '../keys';
import type { ExpiryIndex } from '../expiry';
import type { TenantTable } from '../tenantTable';

const HOUR = 3600_000;
const DAY = 24 * HOUR;

/**
 * How long a claim is kept, per source: longer than anything can bring its id back. After that the row
 * is deleted (see `ExpiryIndex`), and the same id would be handled again.
 */
export const PROCESSED_RETENTION_MS: Readonly<Record<string, number>> = {
  // HubSpot retries a failed webhook delivery up to 10 times over 24 h (reference/hubspot.md): 3 days.
  'hubspot-webhook': 3 * DAY,
  // Graph redelivers a notification for up to 4 h, the graph-notifications queue keeps a message up to
  // 7 days (its default time-to-live), and a delta resync re-lists mail from the last sync minus an
  // overlap: 14 days covers all three with a week to spare for a stalled backstop.
  'msgraph-mail': 14 * DAY,
  'msgraph-mail-id': 14 * DAY,
  // The engine's retries of a reply with its idempotency key, and the queue's 7-day time-to-live: 8 days.
  'msgraph-reply': 8 * DAY,
  // A card's claim guards one teams-cards message, which lives at most 7 days on the queue: 8 days.
  'teams-card': 8 * DAY,
  // A merge announcement's claim guards one hubspot-events message (at most 7 days on the queue): 8 days.
  'hubspot-merge': 8 * DAY,
};

/**
 * Single-use signed tokens (`token-<purpose>`: OAuth states, snooze links) must stay claimed while the
 * token itself is valid: the longest such token (a snooze link) lives 24 h, plus a day of margin.
 */
export const TOKEN_CLAIM_RETENTION_MS = 2 * DAY;

/** Anything not listed: two weeks, the longest of the above. */
export const DEFAULT_PROCESSED_RETENTION_MS = 14 * DAY;

export function processedRetentionMs(source: string): number {
  if (source.startsWith('token-')) return TOKEN_CLAIM_RETENTION_MS;
  return PROCESSED_RETENTION_MS[source] ?? DEFAULT_PROCESSED_RETENTION_MS;
}

/** The `ExpiryIndex` kind of Processed rows: the entry's part is the source. */
export const PROCESSED_EXPIRY_KIND = 'processed';

export interface ProcessedRow extends Record<string, string | number | boolean | Date | null | undefined> {
  processedAt: number;
  note?: string;
  /** A provisional claim whose work is not confirmed done yet (absent on plain claims). */
  pending?: boolean;
  /** Who took a provisional claim (`claimMany`): that owner's retry may take it over at once. */
  owner?: string;
}

export type ProvisionalClaim = 'claimed' | 'done' | 'pending';

/**
 * Idempotency keys: every queue delivers at least once, so a consumer records the id of what it handled
 * and skips an id it has seen. Each row is entered in the expiry index before it is written, and deleted
 * once it is older than its source's retention (`processedRetentionMs`).
 */
export class ProcessedStore {
  constructor(
    private readonly table: TenantTable<ProcessedRow>,
    private readonly now: () => number = Date.now,
    private readonly expiry?: ExpiryIndex,
  ) {
    expiry?.register(PROCESSED_EXPIRY_KIND, {
      table,
      partition: (t, source) => partitionKey.processed(source, t),
      expired: (data, now, source) => typeof data.processedAt === 'number' && now - data.processedAt >= processedRetentionMs(source),
    });
  }

  /** True the first time `(source, tenant, id)` is claimed; false on every later call. */
  async claim(source: string, tenant: TenantId, id: string, note?: string): Promise<boolean> {
    // A repeat (a redelivery, a replayed single-use token: often anonymous) is answered from a read and
    // writes nothing, not even the index entry, which would otherwise be rewritten on every repeat.
    if (await this.seen(source, tenant, id)) return false;
    try {
      const at = this.now();
      await this.#scheduleExpiry(source, tenant, id, at);
      await this.table.create(partitionKey.processed(source, tenant), escapeKeyPart(id), { processedAt: at, ...(note ? { note } : {}) });
      return true;
    } catch (err) {
      if (err instanceof ConflictError) return false;
      throw err;
    }
  }

  /**
   * A claim that holds for good only once `confirm`ed. Used where the claim is taken before the work it
   * guards (a webhook's events are claimed, then queued): if the process dies in between, the sender's
   * retry finds the claim still pending and, once it is older than `staleAfterMs` (longer than the work
   * can take), takes it over instead of dropping the work as a duplicate.
   * `claimed`: the caller holds it; `done`: confirmed by someone; `pending`: someone holds it unconfirmed
   * and may still be at work (the caller should come back later rather than call it a duplicate).
   * `owner` (as in `claimMany`): a claim this owner took earlier is taken over at once, stale or not. Only
   * for an owner that cannot be at work twice, such as a queue message, which is visible again only once
   * the invocation that held it has ended.
   */
  async claimProvisional(source: string, tenant: TenantId, id: string, opts: { staleAfterMs: number; note?: string; owner?: string }, attempt = 1): Promise<ProvisionalClaim> {
    const pk = partitionKey.processed(source, tenant);
    const rk = escapeKeyPart(id);
    const row: ProcessedRow = { processedAt: this.now(), pending: true, ...(opts.note ? { note: opts.note } : {}), ...(opts.owner ? { owner: opts.owner } : {}) };
    // A claim already held is decided from a read, writing nothing (a redelivery must not rewrite the
    // index entry); only a new claim or a takeover is entered in the index, before its row is written.
    let held = await this.table.get(pk, rk);
    if (!held) {
      await this.#scheduleExpiry(source, tenant, id, row.processedAt);
      try {
        await this.table.create(pk, rk, row);
        return 'claimed';
      } catch (err) {
        if (!(err instanceof ConflictError)) throw err;
      }
      held = await this.table.get(pk, rk);
      // Released between our create and read: try again (a claim that keeps flapping counts as held).
      if (!held) return attempt < 3 ? this.claimProvisional(source, tenant, id, opts, attempt + 1) : 'pending';
    }
    if (held.data.pending !== true) return 'done';
    const ours = opts.owner !== undefined && held.data.owner === opts.owner;
    if (!ours && this.now() - held.data.processedAt < opts.staleAfterMs) return 'pending';
    await this.#scheduleExpiry(source, tenant, id, row.processedAt);
    try {
      // Conditional on the ETag: of two retries taking over the same stale claim, one wins.
      await this.table.update(pk, rk, row, held.etag, 'Replace');
      return 'claimed';
    } catch (err) {
      if (err instanceof PreconditionFailedError) return 'pending';
      if (err instanceof NotFoundError) return attempt < 3 ? this.claimProvisional(source, tenant, id, opts, attempt + 1) : 'pending';
      throw err;
    }
  }

  /**
   * `claimProvisional` for up to 100 ids at once, in a few round trips instead of one or three per id: a
   * read of the ids (≤ 15 comparisons per query), their expiry entries in one write, then one all-or-none
   * transaction of inserts for those absent (the common case: all of them); claims still pending are taken
   * over one by one with an ETag condition, when `owner` holds them (an earlier attempt of the same work,
   * which died) or they are stale. Reading first is what lets a repeat (a redelivered delivery) write
   * nothing at all, not even expiry entries. Bounded: three rounds, then the ids still contended count as
   * `pending`.
   */
  async claimMany(source: string, tenant: TenantId, items: Array<{ id: string; note?: string }>, opts: { staleAfterMs: number; owner: string }): Promise<Map<string, ProvisionalClaim>> {
    const pk = partitionKey.processed(source, tenant);
    const out = new Map<string, ProvisionalClaim>();
    const notes = new Map<string, string | undefined>();
    for (const i of items) notes.set(i.id, i.note);
    if (notes.size > 100) throw new Error('claimMany takes at most 100 ids');
    const row = (id: string): ProcessedRow => {
      const note = notes.get(id);
      return { processedAt: this.now(), pending: true, owner: opts.owner, ...(note ? { note } : {}) };
    };
    let open = [...notes.keys()];
    for (let round = 0; round < 3 && open.length > 0; round++) {
      const held = await this.table.getMany(pk, open.map(escapeKeyPart));
      const absent: string[] = [];
      const takeovers: Array<{ id: string; etag: string }> = [];
      for (const id of open) {
        const h = held.get(escapeKeyPart(id));
        if (!h) absent.push(id);
        else if (h.data.pending !== true) out.set(id, 'done');
        else if (h.data.owner !== opts.owner && this.now() - h.data.processedAt < opts.staleAfterMs) out.set(id, 'pending');
        else takeovers.push({ id, etag: h.etag });
      }
      const writing = [...absent, ...takeovers.map((t) => t.id)];
      if (writing.length === 0) break;
      // Entered in the expiry index before any row is written, as single claims are.
      const at = this.now();
      await this.expiry?.scheduleMany(tenant, PROCESSED_EXPIRY_KIND, writing.map((id) => ({ part: source, rk: escapeKeyPart(id), expiresAt: at + processedRetentionMs(source) })));
      const next: string[] = [];
      await Promise.all(
        takeovers.map(async ({ id, etag }) => {
          try {
            await this.table.update(pk, escapeKeyPart(id), row(id), etag, 'Replace');
            out.set(id, 'claimed');
          } catch (e) {
            if (e instanceof PreconditionFailedError) return void out.set(id, 'pending');
            if (e instanceof NotFoundError) return void next.push(id);
            throw e;
          }
        }),
      );
      if (absent.length > 0) {
        try {
          await this.table.createAll(pk, absent.map((id) => ({ rowKey: escapeKeyPart(id), data: row(id) })));
          for (const id of absent) out.set(id, 'claimed');
        } catch (err) {
          if (!(err instanceof ConflictError)) throw err;
          // Another claimant inserted one of them meanwhile: read again.
          next.push(...absent);
        }
      }
      open = next;
    }
    for (const id of open) if (!out.has(id)) out.set(id, 'pending');
    return out;
  }

  /** Gives many claims back (transactions of 100). */
  async releaseMany(source: string, tenant: TenantId, ids: string[]): Promise<void> {
    await this.table.deleteMany(partitionKey.processed(source, tenant), ids.map(escapeKeyPart));
  }

  /** Marks provisional claims of one source and tenant done (one transaction per 100). */
  async confirm(source: string, tenant: TenantId, ids: string[]): Promise<void> {
    if (ids.length === 0) return;
    await this.table.upsertMany(
      partitionKey.processed(source, tenant),
      ids.map((id) => ({ rowKey: escapeKeyPart(id), data: { pending: false } })),
      'Merge',
    );
  }

  async seen(source: string, tenant: TenantId, id: string): Promise<boolean> {
    return (await this.table.get(partitionKey.processed(source, tenant), escapeKeyPart(id))) !== undefined;
  }

  /**
   * Entered under the hour the row expires in; the same row in the same hour is one entry. A takeover
   * (a newer `processedAt`) enters it again under its later hour, and the earlier entry finds the row
   * still young and leaves it.
   */
  async #scheduleExpiry(source: string, tenant: TenantId, id: string, at: number): Promise<void> {
    await this.expiry?.schedule(tenant, PROCESSED_EXPIRY_KIND, source, escapeKeyPart(id), at + processedRetentionMs(source));
  }

  /** Gives a claim back (the work it guarded failed and must be retried). */
  async release(source: string, tenant: TenantId, id: string): Promise<void> {
    await this.table.delete(partitionKey.processed(source, tenant), escapeKeyPart(id));
  }
}
