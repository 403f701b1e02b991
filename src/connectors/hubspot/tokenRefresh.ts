import type { Logger } from '../../platform/logging';
import { InvalidGrantError } from '../base';
import type { HubSpotServices } from './services';
import { revokeRetiredTokens } from './retiredTokens';
import { authKindOf } from './tokens';

export interface IdleRefreshResult {
  checked: number;
  refreshed: number;
  needsReauth: number;
  failed: number;
  skipped: number;
}

const DAY_MS = 24 * 60 * 60_000;

/**
 * The daily job: every connected OAuth integration that has not refreshed for a day gets a refresh
 * now. A refresh token nobody uses is how a revoked grant (an uninstall, a removed user) goes unseen
 * until the next sync fails; here it turns `needs_reauth` within a day, and the token stays in use.
 * Access tokens live 30 minutes, so an integration idle for a day always has an expired one and
 * `getAccessToken` refreshes it; the token manager's hooks record the outcome on the row.
 */
export async function refreshIdleTokens(hs: HubSpotServices, log: Logger, opts: { idleMs?: number; concurrency?: number; now?: number } = {}): Promise<IdleRefreshResult> {
  const result: IdleRefreshResult = { checked: 0, refreshed: 0, needsReauth: 0, failed: 0, skipped: 0 };
  const tokens = hs.tokens;
  if (!tokens) return result;
  const idleMs = opts.idleMs ?? DAY_MS;
  const now = opts.now ?? Date.now();
  const links: Array<{ tenantId: Parameters<typeof tokens.getAccessToken>[0]; integrationId: Parameters<typeof tokens.getAccessToken>[1] }> = [];
  for await (const link of hs.accountIndex.all()) links.push(link);
  let next = 0;
  const worker = async () => {
    while (next < links.length) {
      const link = links[next++] as (typeof links)[number];
      result.checked++;
      const integration = await hs.base.integrations.get(link.tenantId, link.integrationId).catch(() => undefined);
      if (integration?.type === 'hubspot' && integration.status !== 'disconnected' && authKindOf(integration) === 'oauth') {
        // A reconnect whose revocation of the replaced grant failed (or died) left it recorded: try again.
        await revokeRetiredTokens(hs, link.tenantId, link.integrationId, log).catch((err: unknown) =>
          log.warn('could not read the replaced refresh tokens', { tenantId: link.tenantId, integrationId: link.integrationId, error: err instanceof Error ? err.message : String(err) }),
        );
      }
      if (!integration || integration.type !== 'hubspot' || integration.status !== 'active' || authKindOf(integration) !== 'oauth') {
        result.skipped++;
        continue;
      }
      const last = Date.parse(integration.lastRefreshSuccess ?? '') || 0;
      if (now - last < idleMs) {
        result.skipped++;
        continue;
      }
      try {
        await tokens.getAccessToken(link.tenantId, link.integrationId);
        result.refreshed++;
      } catch (err) {
        if (err instanceof InvalidGrantError) result.needsReauth++;
        else result.failed++;
        log.warn('idle token refresh failed', { tenantId: link.tenantId, integrationId: link.integrationId, error: err instanceof Error ? err.message : String(err) });
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(opts.concurrency ?? 4, links.length)) }, worker));
  return result;
}
