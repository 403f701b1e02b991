import { z } from 'zod';
import type { Logger } from '../../platform/logging';
import { tenantSecretName } from '../../secrets';
import type { IntegrationId, TenantId } from '../../storage';
import { REFRESH_TOKEN_SECRET_PURPOSE, type TokenSet } from '../base';
import type { HubSpotServices } from './services';

/**
 * Refresh tokens a reconnect replaced and HubSpot has not confirmed revoked yet: a JSON array in one
 * secret per integration (a secret, since they are still live credentials until revoked).
 */
export const RETIRED_TOKENS_PURPOSE = 'refresh-token-retired';
/** More than a few means something keeps failing; the oldest are dropped (and logged) past this. */
const MAX_RETIRED = 20;

const retiredSchema = z.array(z.string().min(1));

export function retiredTokensSecretName(tenant: TenantId, integration: IntegrationId): string {
  return tenantSecretName(tenant, integration, RETIRED_TOKENS_PURPOSE);
}

async function readRetired(hs: HubSpotServices, tenant: TenantId, integration: IntegrationId): Promise<string[]> {
  const raw = await hs.base.secrets.get(retiredTokensSecretName(tenant, integration));
  if (!raw) return [];
  try {
    const parsed = retiredSchema.safeParse(JSON.parse(raw));
    return parsed.success ? parsed.data : [];
  } catch {
    return [];
  }
}

async function writeRetired(hs: HubSpotServices, tenant: TenantId, integration: IntegrationId, tokens: string[]): Promise<void> {
  const name = retiredTokensSecretName(tenant, integration);
  if (tokens.length === 0) await hs.base.secrets.delete(name);
  else await hs.base.secrets.set(name, JSON.stringify(tokens), { contentType: 'application/json' });
}

/**
 * Stores a reconnect's new token set in place of the old grant, and revokes the old grant, in an order
 * a crash cannot turn into "no valid token": the old refresh token is first recorded as retired, then
 * the new set replaces it, then the retired tokens are revoked. Dying before the swap leaves the old
 * token current and recorded; a recorded token that is still the current one is never revoked, only
 * forgotten. After the swap, the new token is current and the old one waits for `revokeRetiredTokens`.
 * A failed revocation is logged, not fatal: the daily token job (and a disconnect) try again.
 */
export async function replaceGrant(hs: HubSpotServices, tenant: TenantId, integration: IntegrationId, tokens: TokenSet, log: Logger): Promise<void> {
  if (!hs.tokens) throw new Error('HubSpot OAuth is not configured');
  const old = await hs.base.secrets.get(tenantSecretName(tenant, integration, REFRESH_TOKEN_SECRET_PURPOSE));
  if (old && old !== tokens.refreshToken) {
    const retired = await readRetired(hs, tenant, integration);
    if (!retired.includes(old)) retired.push(old);
    if (retired.length > MAX_RETIRED) log.error('too many replaced HubSpot refresh tokens wait for revocation; the oldest are forgotten', { tenantId: tenant, integrationId: integration, forgotten: retired.length - MAX_RETIRED });
    await writeRetired(hs, tenant, integration, retired.slice(-MAX_RETIRED));
  }
  await hs.tokens.saveTokenSet(tenant, integration, tokens);
  await revokeRetiredTokens(hs, tenant, integration, log);
}

/**
 * Revokes the integration's retired refresh tokens at HubSpot and forgets those it revoked (or no
 * longer knew). Never throws for a refusal: what is left stays recorded for the next try.
 */
export async function revokeRetiredTokens(hs: HubSpotServices, tenant: TenantId, integration: IntegrationId, log: Logger): Promise<{ revoked: number; left: number }> {
  const retired = await readRetired(hs, tenant, integration);
  if (retired.length === 0) return { revoked: 0, left: 0 };
  if (!hs.oauth) return { revoked: 0, left: retired.length };
  // Recorded by a reconnect that died before its new token was stored: still the one in use.
  const current = await hs.base.secrets.get(tenantSecretName(tenant, integration, REFRESH_TOKEN_SECRET_PURPOSE));
  const left: string[] = [];
  let revoked = 0;
  for (const token of retired) {
    if (token === current) continue;
    try {
      await hs.oauth.revoke(token);
      revoked++;
    } catch (err) {
      left.push(token);
      log.warn('could not revoke a replaced HubSpot refresh token; it is tried again later', { tenantId: tenant, integrationId: integration, error: err instanceof Error ? err.message : String(err) });
    }
  }
  if (left.length < retired.length) await writeRetired(hs, tenant, integration, left);
  return { revoked, left: left.length };
}
