import { ConflictError, NotFoundError, PreconditionFailedError } from '../../platform/errors';
import { escapeKeyPart, partitionKey, type TenantId } from '../keys';
import type { TenantTable } from '../tenantTable';

export interface ProcessedRow extends Record<string, string | number | boolean | Date | null | undefined> {
  processedAt: number;
  note?: string;
  /** A provisional claim whose work is not confirmed done yet (absent on plain claims). */
  pending?: boolean;
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
