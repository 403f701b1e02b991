import { ConflictError, NotFoundError, PreconditionFailedError } from '../../platform/errors';
import { escapeKeyPart, partitionKey, type TenantId } from '../keys';
import type { TenantTable } from '../tenantTable';

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
 * and skips an id it has seen. Rows carry their age for clean-up.
 */
export class ProcessedStore {
  constructor(
    private readonly table: TenantTable<ProcessedRow>,
    private readonly now: () => number = Date.now,
  ) {}

  /** True the first time `(source, tenant, id)` is claimed; false on every later call. */
  async claim(source: string, tenant: TenantId, id: string, note?: string): Promise<boolean> {
    try {
      await this.table.create(partitionKey.processed(source, tenant), escapeKeyPart(id), { processedAt: this.now(), ...(note ? { note } : {}) });
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
   */
  async claimProvisional(source: string, tenant: TenantId, id: string, opts: { staleAfterMs: number; note?: string }, attempt = 1): Promise<ProvisionalClaim> {
    const pk = partitionKey.processed(source, tenant);
    const rk = escapeKeyPart(id);
    const row: ProcessedRow = { processedAt: this.now(), pending: true, ...(opts.note ? { note: opts.note } : {}) };
    try {
      await this.table.create(pk, rk, row);
      return 'claimed';
    } catch (err) {
      if (!(err instanceof ConflictError)) throw err;
    }
    const held = await this.table.get(pk, rk);
    // Released between our create and read: try again (a claim that keeps flapping counts as held).
    if (!held) return attempt < 3 ? this.claimProvisional(source, tenant, id, opts, attempt + 1) : 'pending';
    if (held.data.pending !== true) return 'done';
    if (this.now() - held.data.processedAt < opts.staleAfterMs) return 'pending';
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
   * `claimProvisional` for up to 100 ids at once, in about three round trips instead of one or three per
   * id: one all-or-none transaction of inserts (the common case, all fresh); when any exists, a read
   * of the ids (≤ 15 comparisons per query), then one transaction of inserts for those still absent;
   * claims still pending are taken over one by one with an ETag condition, when `owner` holds them (an
   * earlier attempt of the same work, which died) or they are stale. Bounded: three rounds, then the
   * ids still contended count as `pending`.
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
      try {
        await this.table.createAll(pk, open.map((id) => ({ rowKey: escapeKeyPart(id), data: row(id) })));
        for (const id of open) out.set(id, 'claimed');
        return out;
      } catch (err) {
        if (!(err instanceof ConflictError)) throw err;
      }
      const held = await this.table.getMany(pk, open.map(escapeKeyPart));
      const absent: string[] = [];
      await Promise.all(
        open.map(async (id) => {
          const h = held.get(escapeKeyPart(id));
          if (!h) return void absent.push(id);
          if (h.data.pending !== true) return void out.set(id, 'done');
          const ours = h.data.owner === opts.owner;
          if (!ours && this.now() - h.data.processedAt < opts.staleAfterMs) return void out.set(id, 'pending');
          try {
            await this.table.update(pk, escapeKeyPart(id), row(id), h.etag, 'Replace');
            out.set(id, 'claimed');
          } catch (e) {
            if (e instanceof PreconditionFailedError) return void out.set(id, 'pending');
            if (e instanceof NotFoundError) return void absent.push(id);
            throw e;
          }
        }),
      );
      open = absent;
    }
    for (const id of open) out.set(id, 'pending');
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

  /** Gives a claim back (the work it guarded failed and must be retried). */
  async release(source: string, tenant: TenantId, id: string): Promise<void> {
    await this.table.delete(partitionKey.processed(source, tenant), escapeKeyPart(id));
  }
}
