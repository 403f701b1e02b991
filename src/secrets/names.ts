import { createHash } from 'node:crypto';
import type { IntegrationId, TenantId } from '../storage/keys';
import { assertSecretName } from './types';

/**
 * Tenant ids and integration ids may hold "." and "_", which Key Vault names cannot, so both are
 * hashed into the name. The hash is one-way on purpose: a vault listing does not reveal tenants, and
 * the integration row stores the name it uses.
 */
export function tenantSecretName(tenant: TenantId, integration: IntegrationId, purpose: string): string {
  if (!/^[a-z][a-z0-9-]{0,40}$/.test(purpose)) throw new Error(`secret purpose "${purpose}" must be lowercase letters, digits and "-"`);
  const digest = createHash('sha256').update(`${tenant}\u0000${integration}`).digest('hex').slice(0, 40);
  const name = `t-${digest}-${purpose}`;
  assertSecretName(name);
  return name;
}

/** Names for deployment-wide secrets (app client secrets), fixed and readable. */
export function appSecretName(purpose: string): string {
  const name = `app-${purpose}`;
  assertSecretName(name);
  return name;
}
