import { ConflictError } from '../../platform/errors';
import { escapeKeyPart, partitionKey, type TenantId } from '../keys';
import type { TenantTable } from '../tenantTable';

export interface ProcessedRow extends Record<string, string | number | boolean | Date | null | undefined> {
  processedAt: number;
  note?: string;
}

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

  async seen(source: string, tenant: TenantId, id: string): Promise<boolean> {
    return (await this.table.get(partitionKey.processed(source, tenant), escapeKeyPart(id))) !== undefined;
  }

  /** Gives a claim back (the work it guarded failed and must be retried). */
  async release(source: string, tenant: TenantId, id: string): Promise<void> {
    await this.table.delete(partitionKey.processed(source, tenant), escapeKeyPart(id));
  }
}
