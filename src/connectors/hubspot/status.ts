import { ServiceUnavailableError } from '../../platform/errors';
import type { Logger } from '../../platform/logging';
import type { Integration, IntegrationId, IntegrationStatus, TenantId } from '../../storage';
import { InvalidGrantError, TokenRefreshError } from '../base';
import { requestJson } from './client';
import { HubSpotUnauthorizedError } from './errors';
import { markNeedsReauth } from './integrationState';
import type { HubSpotServices } from './services';
import { authKindOf } from './tokens';

/** The status endpoint's answer; field names as the existing clients read them. */
export interface HubSpotStatusView {
  connected: boolean;
  hub_domain: string | null;
  hub_id: string | null;
  scopes: string[];
  token_type: string | null;
  expires_in: number | null;
  status: IntegrationStatus;
}

function offline(i: Integration, status: IntegrationStatus = i.status): HubSpotStatusView {
  return {
    connected: false,
    hub_domain: i.externalAccountName ?? null,
    hub_id: i.externalAccountId ?? null,
    scopes: i.scopes ? i.scopes.split(' ').filter(Boolean) : [],
    token_type: null,
    expires_in: null,
    status,
  };
}

/**
 * Asks HubSpot whether the integration's credentials work now: OAuth tokens are refreshed if due and
 * introspected at the date-versioned endpoint; a private-app token makes one cheap call. A dead grant
 * is an answer (`connected: false`, `needs_reauth`), not an error; only HubSpot or our storage being
 * unreachable is (503, try again).
 */
export async function integrationStatus(hs: HubSpotServices, tenant: TenantId, id: IntegrationId, log: Logger): Promise<HubSpotStatusView> {
  const integration = await hs.getIntegration(tenant, id);
  if (integration.status !== 'active') return offline(integration);

  if (authKindOf(integration) === 'private_app') {
    try {
      const caller = hs.callerFor(integration, { priority: 'interactive', log, maxAttempts: 2 });
      await caller.call('standard', 'account-info.details', (client) => requestJson(client, { method: 'GET', path: '/account-info/v3/details' }));
      return { ...offline(integration, 'active'), connected: true, token_type: 'private_app' };
    } catch (err) {
      if (err instanceof HubSpotUnauthorizedError || err instanceof InvalidGrantError) return offline(integration, 'needs_reauth');
      throw unavailable(err, log);
    }
  }

  if (!hs.oauth || !hs.tokens) throw new ServiceUnavailableError('HubSpot OAuth is not configured in this deployment.');
  try {
    for (let attempt = 0; attempt < 2; attempt++) {
      const token = await hs.tokens.getAccessToken(tenant, id);
      const info = await hs.oauth.introspect(token, 'access_token');
      if (info.active) {
        return {
          connected: true,
          hub_domain: info.hubDomain ?? integration.externalAccountName ?? null,
          hub_id: info.hubId ?? integration.externalAccountId ?? null,
          scopes: info.scopes.length > 0 ? info.scopes : integration.scopes ? integration.scopes.split(' ').filter(Boolean) : [],
          token_type: info.tokenType ?? 'bearer',
          expires_in: info.expiresIn ?? null,
          status: 'active',
        };
      }
      // HubSpot no longer knows this access token: one refresh decides.
      hs.tokens.invalidate(tenant, id, token);
    }
    await markNeedsReauth(hs.base.integrations, tenant, id, 'HubSpot reports the access token inactive after a refresh');
    return offline(integration, 'needs_reauth');
  } catch (err) {
    // The token manager's hook has already marked the integration.
    if (err instanceof InvalidGrantError) return offline(integration, 'needs_reauth');
    throw unavailable(err, log);
  }
}

function unavailable(err: unknown, log: Logger): Error {
  if (err instanceof TokenRefreshError && !err.retryable) return err;
  log.warn('HubSpot status could not be determined', { error: err instanceof Error ? err.message : String(err) });
  return new ServiceUnavailableError('HubSpot could not be reached to check the connection; try again shortly.', 30);
}
