import { registerSecret, type Logger } from '../../platform/logging';
import { tenantSecretName, type SecretStore } from '../../secrets';
import type { Integration, IntegrationId, IntegrationsRepository, Leases, TenantId } from '../../storage';
import { InvalidGrantError, OAuth2TokenManager, REFRESH_TOKEN_SECRET_PURPOSE, ACCESS_TOKEN_SECRET_PURPOSE } from '../base';
import type { HubSpotAuth } from './client';
import { markNeedsReauth, updateIntegration } from './integrationState';
import type { HubSpotOAuthClient } from './oauth';
import type { HubSpotAuthKind } from './rateLimit';

/** Secret purpose of a private-app token (an OAuth integration stores refresh and access tokens instead). */
export const PRIVATE_APP_TOKEN_PURPOSE = 'private-app-token';

/**
 * How an integration authenticates, read from the secret it names: OAuth integrations name their
 * refresh-token secret, private-app integrations their token secret. The name is derived from the
 * tenant and integration, so it cannot be pointed at another integration's secret.
 */
export function authKindOf(integration: Pick<Integration, 'tenantId' | 'integrationId' | 'secretName'>): HubSpotAuthKind {
  return integration.secretName === tenantSecretName(integration.tenantId, integration.integrationId, PRIVATE_APP_TOKEN_PURPOSE) ? 'private_app' : 'oauth';
}

/** Every secret an integration may have, for deletion. */
export function integrationSecretNames(tenant: TenantId, integration: IntegrationId): string[] {
  return [REFRESH_TOKEN_SECRET_PURPOSE, ACCESS_TOKEN_SECRET_PURPOSE, PRIVATE_APP_TOKEN_PURPOSE].map((p) => tenantSecretName(tenant, integration, p));
}

/**
 * The token manager with HubSpot's refresh (date-versioned endpoint) and the integration row kept
 * current: refresh times and expiry on success; `needs_reauth` at once on `invalid_grant` /
 * `BAD_REFRESH_TOKEN` (syncs check the status before they start and stop); counted failures otherwise.
 */
export function createHubSpotTokenManager(deps: {
  oauth: HubSpotOAuthClient;
  secrets: SecretStore;
  leases: Leases;
  integrations: IntegrationsRepository;
  log?: Logger;
  refreshAheadMs?: number;
}): OAuth2TokenManager {
  return new OAuth2TokenManager({
    provider: {
      refresh: async (refreshToken, options) => {
        registerSecret(refreshToken);
        const set = await deps.oauth.refresh(refreshToken, options?.signal ? { signal: options.signal } : {});
        return { accessToken: set.accessToken, expiresAt: set.expiresAt, refreshToken: set.refreshToken, scopes: set.scopes, tokenType: set.tokenType };
      },
    },
    secrets: deps.secrets,
    leases: deps.leases,
    ...(deps.refreshAheadMs !== undefined ? { refreshAheadMs: deps.refreshAheadMs } : {}),
    onRefreshed: async (e) => {
      await updateIntegration(deps.integrations, e.tenant, e.integration, (current) =>
        current.status === 'disconnected'
          ? undefined
          : {
              credentialsExpiresAt: new Date(e.expiresAt).toISOString(),
              lastRefreshSuccess: new Date(e.obtainedAt).toISOString(),
              refreshAttempts: 0,
              ...(e.scopes?.length ? { scopes: e.scopes.join(' ') } : {}),
            },
      );
    },
    onRefreshFailed: async (e) => {
      if (e.error instanceof InvalidGrantError) {
        deps.log?.warn('HubSpot grant is gone; integration needs re-authorisation', { tenantId: e.tenant, integrationId: e.integration, reason: e.error.reason });
        await markNeedsReauth(deps.integrations, e.tenant, e.integration, e.error.message);
        return;
      }
      const now = new Date().toISOString();
      await updateIntegration(deps.integrations, e.tenant, e.integration, (current) => ({
        lastRefreshFailure: now,
        refreshAttempts: (current.refreshAttempts ?? 0) + 1,
        lastError: e.error.message.slice(0, 500),
      }));
    },
  });
}

/** OAuth: tokens from the manager; a 401 drops the cached token so the next attempt refreshes once. */
export function oauthAuth(manager: OAuth2TokenManager, tenant: TenantId, integration: IntegrationId): HubSpotAuth {
  return {
    kind: 'oauth',
    accessToken: () => manager.getAccessToken(tenant, integration),
    unauthorized: async (token) => {
      manager.invalidate(tenant, integration, token);
      return true;
    },
  };
}

/** Private app: a static token; a 401 means it was revoked or rotated in HubSpot, so nothing retries. */
export function privateAppAuth(secrets: SecretStore, integrations: IntegrationsRepository, tenant: TenantId, integration: IntegrationId): HubSpotAuth {
  const name = tenantSecretName(tenant, integration, PRIVATE_APP_TOKEN_PURPOSE);
  return {
    kind: 'private_app',
    accessToken: async () => {
      const token = await secrets.get(name);
      if (!token) throw new InvalidGrantError({ tenant, integration, reason: 'missing_refresh_token' });
      registerSecret(token);
      return token;
    },
    unauthorized: async () => {
      await markNeedsReauth(integrations, tenant, integration, 'HubSpot rejected the private-app token (revoked or rotated)');
      return false;
    },
  };
}
