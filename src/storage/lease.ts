import { randomUUID } from 'node:crypto';
import { ConflictError, PreconditionFailedError } from '../platform/errors';
import { escapeKeyPart, type PartitionKey } from './keys';
import type { TenantTable } from './tenantTable';

export interface LeaseRow extends Record<string, string | number | boolean | Date | null | undefined> {
  owner: string;
  expiresAt: number;
  acquiredAt: number;
}

export interface Lease {
  readonly partitionKey: PartitionKey;
  readonly name: string;
  readonly owner: string;
  readonly expiresAt: number;
  readonly etag: string;
}

export class LeaseLostError extends Error {
  constructor(name: string) {
    super(`lease "${name}" was lost to another owner`);
    this.name = 'LeaseLostError';
  }
}

/**
 * A lease is a row written conditionally: created if absent, taken over only if expired, and renewed or
 * released only with the ETag its holder last saw. It works across processes and instances because
 * Table Storage is the arbiter; clocks only decide expiry, so keep TTLs far above clock skew.
 */
export class Leases {
  constructor(
    private readonly table: TenantTable<LeaseRow>,
    private readonly now: () => number = Date.now,
  ) {}

  /** Takes the lease, or returns undefined when someone else holds an unexpired one. */
  async tryAcquire(pk: PartitionKey, name: string, ttlMs: number, owner: string = randomUUID()): Promise<Lease | undefined> {
    const rk = escapeKeyPart(name);
    const now = this.now();
    const data: LeaseRow = { owner, expiresAt: now + ttlMs, acquiredAt: now };
    const existing = await this.table.get(pk, rk);
    if (!existing) {
      try {
        const etag = await this.table.create(pk, rk, data);
        return { partitionKey: pk, name, owner, expiresAt: data.expiresAt, etag };
      } catch (err) {
        if (err instanceof ConflictError) return undefined;
        throw err;
      }
    }
    if (existing.data.expiresAt > now && existing.data.owner !== owner) return undefined;
    try {
      const etag = await this.table.update(pk, rk, data, existing.etag, 'Replace');
      return { partitionKey: pk, name, owner, expiresAt: data.expiresAt, etag };
    } catch (err) {
      if (err instanceof PreconditionFailedError) return undefined;
      throw err;
    }
  }

  /** Extends a held lease; throws `LeaseLostError` if it expired and someone else took it. */
  async renew(lease: Lease, ttlMs: number): Promise<Lease> {
    const now = this.now();
    const data: LeaseRow = { owner: lease.owner, expiresAt: now + ttlMs, acquiredAt: now };
    try {
      const etag = await this.table.update(lease.partitionKey, escapeKeyPart(lease.name), data, lease.etag, 'Replace');
      return { ...lease, expiresAt: data.expiresAt, etag };
    } catch (err) {
      if (err instanceof PreconditionFailedError || (err instanceof Error && err.name === 'NotFoundError')) throw new LeaseLostError(lease.name);
      throw err;
    }
  }

  /** Gives the lease up; a lease already taken over by someone else is left alone. */
  async release(lease: Lease): Promise<void> {
    try {
      await this.table.delete(lease.partitionKey, escapeKeyPart(lease.name), lease.etag);
    } catch (err) {
      if (err instanceof PreconditionFailedError) return;
      throw err;
    }
  }

  /** Runs `fn` under the lease if it can be taken now; returns undefined without running it otherwise. */
  async withLease<R>(pk: PartitionKey, name: string, ttlMs: number, fn: (lease: Lease) => Promise<R>): Promise<{ value: R } | undefined> {
    const lease = await this.tryAcquire(pk, name, ttlMs);
    if (!lease) return undefined;
    try {
      return { value: await fn(lease) };
    } finally {
      await this.release(lease).catch(() => undefined);
    }
  }
}
