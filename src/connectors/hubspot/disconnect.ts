import { AppError } from '../../platform/errors';
import type { Logger } from '../../platform/logging';
import { tenantSecretName } from '../../secrets';
import type { IntegrationId, TenantId } from '../../storage';
import { REFRESH_TOKEN_SECRET_PURPOSE } from '../base';
import { updateIntegration } from './integrationState';
import { retiredTokensSecretName, revokeRetiredTokens } from './retiredTokens';
import type { HubSpotServices } from './services';
import { authKindOf, integrationSecretNames } from './tokens';

export interface DisconnectResult {
  status: 'disconnected';
  /** `revoked`: HubSpot revoked the refresh token now; `already_invalid`: it no longer knew it; `not_applicable`: private app or no token. */
  revocation: 'revoked' | 'already_invalid' | 'not_applicable';
}

/**
 * Disconnects: the refresh token is revoked at HubSpot first (Nango #459: tokens that outlive the
 * connection), then the secrets are deleted, the integration marked `disconnected` and its portal
 * unindexed. Records and sync history stay. If HubSpot cannot be reached the whole call fails and
 * nothing changes: deleting the secret first would leave a live grant no one can revoke any more.
 * The app is not uninstalled from the portal: another tenant may use the same installation.
 */
export async function disconnectIntegration(hs: HubSpotServices, tenant: TenantId, id: IntegrationId, log: Logger): Promise<DisconnectResult> {
  const integration = await hs.getIntegration(tenant, id);
  if (integration.status === 'disconnected') return { status: 'disconnected', revocation: 'not_applicable' };

  let revocation: DisconnectResult['revocation'] = 'not_applicable';
  if (authKindOf(integration) === 'oauth') {
    const refreshToken = await hs.base.secrets.get(tenantSecretName(tenant, id, REFRESH_TOKEN_SECRET_PURPOSE));
    if (refreshToken) {
      if (!hs.oauth) throw new AppError({ status: 503, code: 'hubspot-not-configured', title: 'HubSpot OAuth is not configured', detail: 'the refresh token cannot be revoked without the app credentials' });
      try {
        revocation = await hs.oauth.revoke(refreshToken);
      } catch (err) {
        log.warn('HubSpot did not revoke the refresh token; nothing was changed', { error: err instanceof Error ? err.message : String(err) });
        throw new AppError({ status: 502, code: 'hubspot-revoke-failed', title: 'HubSpot did not confirm the revocation', detail: 'The integration is still connected; try again.' });
      }
    }
  }
  // Grants an earlier reconnect replaced but could not revoke: revoked now, or nothing is deleted either.
  if ((await revokeRetiredTokens(hs, tenant, id, log)).left > 0) {
    throw new AppError({ status: 502, code: 'hubspot-revoke-failed', title: 'HubSpot did not confirm the revocation', detail: 'The integration is still connected; try again.' });
  }
  for (const name of [...integrationSecretNames(tenant, id), retiredTokensSecretName(tenant, id)]) await hs.base.secrets.delete(name);
  hs.tokens?.invalidate(tenant, id);
  await updateIntegration(hs.base.integrations, tenant, id, () => ({ status: 'disconnected', lastError: '' }));
  if (integration.externalAccountId) await hs.accountIndex.unlink(integration.externalAccountId, tenant, id);
  log.info('HubSpot integration disconnected', { tenantId: tenant, integrationId: id, revocation });
  return { status: 'disconnected', revocation };
}
