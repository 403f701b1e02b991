import { z } from 'zod';
import { InvalidKeyError } from '../platform/errors';

/**
 * Tenant-first keys by construction: a `PartitionKey` can only be made by the builders below, and every
 * builder but `accountIndex` needs a validated `TenantId`. Repositories take `PartitionKey`, never a raw
 * string, so no query can be written without a tenant.
 */

declare const tenantBrand: unique symbol;
declare const integrationBrand: unique symbol;
declare const pkBrand: unique symbol;

export type TenantId = string & { readonly [tenantBrand]: true };
export type IntegrationId = string & { readonly [integrationBrand]: true };
export type PartitionKey = string & { readonly [pkBrand]: true };

// Ids we mint or accept from the engine: no separators, nothing Table Storage forbids, short enough
// that composite keys stay well under the 1 KiB key limit.
const ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

export const tenantIdSchema = z
  .string()
  .regex(ID_PATTERN, 'must be 1-128 characters: letters, digits, ".", "_" or "-", starting with a letter or digit')
  .transform((v) => v as TenantId);

export const integrationIdSchema = z
  .string()
  .regex(ID_PATTERN, 'must be 1-128 characters: letters, digits, ".", "_" or "-", starting with a letter or digit')
  .transform((v) => v as IntegrationId);

export function tenantId(raw: string): TenantId {
  if (!ID_PATTERN.test(raw)) throw new InvalidKeyError('tenant id must be 1-128 characters: letters, digits, ".", "_" or "-"');
  return raw as TenantId;
}

export function integrationId(raw: string): IntegrationId {
  if (!ID_PATTERN.test(raw)) throw new InvalidKeyError('integration id must be 1-128 characters: letters, digits, ".", "_" or "-"');
  return raw as IntegrationId;
}

const MAX_KEY_LENGTH = 1024;

// Table Storage forbids / \ # ? and control characters in keys; ':' is our separator inside composite
// keys and '%' is the escape itself. Percent-encoding keeps the mapping reversible and order-stable for
// plain ids (digits, letters), which is what range scans rely on.
// eslint-disable-next-line no-control-regex
const ESCAPE = /[%/\\#?:\u0000-\u001f\u007f-\u009f]/g;

/** Escapes an external id (a HubSpot object id, a Graph conversation id, …) for use in a key. */
export function escapeKeyPart(raw: string): string {
  if (raw.length === 0) throw new InvalidKeyError('key part must not be empty');
  const escaped = raw.replace(ESCAPE, (c) => '%' + c.charCodeAt(0).toString(16).toUpperCase().padStart(2, '0'));
  if (escaped.length > MAX_KEY_LENGTH) throw new InvalidKeyError(`key is longer than ${MAX_KEY_LENGTH} characters once escaped`);
  return escaped;
}

export function unescapeKeyPart(escaped: string): string {
  return escaped.replace(/%([0-9A-F]{2})/g, (_, hex: string) => String.fromCharCode(parseInt(hex, 16)));
}

function checkedKey(key: string): string {
  if (key.length > MAX_KEY_LENGTH) throw new InvalidKeyError(`key is longer than ${MAX_KEY_LENGTH} characters`);
  return key;
}

/** A row key from an external id; escapes what Table Storage forbids. */
export function rowKey(raw: string): string {
  return escapeKeyPart(raw);
}

export const partitionKey = {
  /** Rows owned by a tenant as a whole (Integrations, Conversations, Subscriptions). */
  tenant(t: TenantId): PartitionKey {
    return checkedKey(t) as PartitionKey;
  },
  /** Rows owned by one integration of a tenant (SyncState, SyncEvents, leases). */
  integration(t: TenantId, i: IntegrationId): PartitionKey {
    return checkedKey(`${t}:${i}`) as PartitionKey;
  },
  /** Synced records of one object type of one integration. */
  records(t: TenantId, i: IntegrationId, objectType: string): PartitionKey {
    return checkedKey(`${t}:${i}:${escapeKeyPart(objectType)}`) as PartitionKey;
  },
  /** Idempotency keys per event source and tenant. */
  processed(source: string, t: TenantId): PartitionKey {
    return checkedKey(`${escapeKeyPart(source)}:${t}`) as PartitionKey;
  },
  /**
   * Reverse index from an external account (HubSpot portal, Entra tenant) to the integrations using it.
   * Deliberately not tenant-scoped: webhook fan-out starts from the account and finds the tenants; the
   * rows it returns carry the tenant and integration ids, and everything after uses those.
   */
  accountIndex(type: string, externalAccountId: string): PartitionKey {
    return checkedKey(`${escapeKeyPart(type)}:${escapeKeyPart(externalAccountId)}`) as PartitionKey;
  },
  /**
   * The DeploymentState table's only partition: settings of the deployment itself (the token-signing
   * key's secret name), which belong to no tenant. That table holds no tenant data.
   */
  deployment(): PartitionKey {
    return 'deployment' as PartitionKey;
  },
  /**
   * Expiry index: the rows of one tenant that expire within one UTC hour (`YYYYMMDDHH`). Hour first, so
   * the clean-up finds every tenant's expired hours with one range over the keys (`expiredHours`); each
   * partition still holds one tenant's rows only.
   */
  expiry(hourBucket: string, t: TenantId): PartitionKey {
    if (!/^\d{10}$/.test(hourBucket)) throw new InvalidKeyError('expiry bucket must be YYYYMMDDHH');
    return checkedKey(`${hourBucket}:${t}`) as PartitionKey;
  },
};

/** The UTC hour bucket (`YYYYMMDDHH`) of an epoch-ms instant, for `partitionKey.expiry`. */
export function expiryHour(epochMs: number): string {
  return new Date(epochMs).toISOString().slice(0, 13).replace(/[-T]/g, '');
}

/** Bounds of every expiry partition of hours before the one `nowMs` is in: all their rows have expired. */
export function expiredHours(nowMs: number): { from: string; to: string } {
  return { from: '0000000000:', to: `${expiryHour(nowMs)}:` };
}

/**
 * Bounds of every partition that starts with `<tenant>:`, for tenant-wide scans over integration-level
 * partitions. ';' is the character after ':', and tenant ids cannot contain either.
 */
export function tenantPartitionRange(t: TenantId): { from: string; to: string } {
  return { from: `${t}:`, to: `${t};` };
}
