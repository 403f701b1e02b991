import { z } from 'zod';
import { NotFoundError, ValidationError } from '../../platform/errors';
import type { Logger } from '../../platform/logging';
import { InvalidSignedTokenError } from '../../platform/signedTokens';
import { integrationIdSchema, tenantIdSchema, type Integration, type IntegrationId, type TenantId } from '../../storage';
import { describeAuthError, ENTRA_TENANT_ID, GRAPH_SCOPE } from './client';
import type { GraphServices } from './services';

export const CONSENT_PURPOSE = 'msgraph-consent';
export const CONSENT_TTL_SECONDS = 600;

export function callbackUrl(publicBaseUrl: string): string {
  return `${publicBaseUrl}/api/msgraph/oauth/callback`;
}

/** The v2 admin-consent URL: an admin of the customer's organisation grants the app's application permissions. */
export function adminConsentUrl(opts: { authorityHost: string; clientId: string; redirectUri: string; state: string }): string {
  const u = new URL(`${opts.authorityHost}/organizations/v2.0/adminconsent`);
  u.searchParams.set('client_id', opts.clientId);
  u.searchParams.set('scope', GRAPH_SCOPE);
  u.searchParams.set('redirect_uri', opts.redirectUri);
  u.searchParams.set('state', opts.state);
  return u.toString();
}

/** A msgraph integration of the tenant, or 404 (also when it belongs to another connector). */
export async function requireGraphIntegration(gs: GraphServices, tenant: TenantId, integration: IntegrationId): Promise<Integration> {
  const found = await gs.services.integrations.get(tenant, integration);
  if (!found || found.type !== 'msgraph') throw new NotFoundError('No Microsoft Graph integration with this id.');
  return found;
}

/** Starts onboarding: a pending integration (new unless one is named) and a signed, single-use state. */
export async function startAdminConsent(gs: GraphServices, tenant: TenantId, existing?: IntegrationId): Promise<{ url: string; integrationId: IntegrationId; expiresIn: number }> {
  gs.requireFactory();
  const app = gs.services.config.msgraph.app as { clientId: string };
  const integration = existing ? await requireGraphIntegration(gs, tenant, existing) : await gs.services.integrations.create(tenant, { type: 'msgraph', status: 'pending' });
  const state = await gs.services.signedTokens.sign(CONSENT_PURPOSE, tenant, { integration_id: integration.integrationId }, CONSENT_TTL_SECONDS);
  const url = adminConsentUrl({ authorityHost: gs.services.config.msgraph.authorityHost, clientId: app.clientId, redirectUri: callbackUrl(gs.services.config.publicBaseUrl), state });
  return { url, integrationId: integration.integrationId, expiresIn: CONSENT_TTL_SECONDS };
}

export const consentCallbackQuerySchema = z.object({
  tenant: z.string().max(128).optional(),
  admin_consent: z.string().max(16).optional(),
  state: z.string().max(4096).optional(),
  error: z.string().max(256).optional(),
  error_description: z.string().max(4096).optional(),
  scope: z.string().max(4096).optional(),
});
export type ConsentCallbackQuery = z.infer<typeof consentCallbackQuerySchema>;

export type ConsentOutcome =
  | { status: 'connected'; tenant: TenantId; integrationId: IntegrationId; entraTenantId: string }
  | { status: 'declined'; tenant: TenantId; integrationId: IntegrationId; error: string }
  | { status: 'token_failed'; tenant: TenantId; integrationId: IntegrationId; entraTenantId: string };

const claimsSchema = z.object({ tenant_id: tenantIdSchema, integration_id: integrationIdSchema });

/**
 * The browser comes back from Microsoft with the customer's Entra tenant id (or an error). The state
 * is verified and consumed first: without it nothing is written. Then a token is requested for the
 * tenant, which proves the consent took effect before the integration is marked active.
 */
export async function completeAdminConsent(gs: GraphServices, query: ConsentCallbackQuery, log: Logger): Promise<ConsentOutcome> {
  if (!query.state) throw new InvalidSignedTokenError('invalid');
  const claims = claimsSchema.safeParse(await gs.services.signedTokens.verify(CONSENT_PURPOSE, query.state, { singleUse: true }));
  if (!claims.success) throw new InvalidSignedTokenError('invalid');
  const tenant = claims.data.tenant_id;
  const integrationId = claims.data.integration_id;
  const integration = await requireGraphIntegration(gs, tenant, integrationId);
  const ids = { tenant, integrationId };

  if (query.error) {
    // Microsoft's code only ([a-z_]); its description may carry user-supplied text and goes nowhere.
    const code = query.error.replace(/[^a-z_]/gi, '').slice(0, 64) || 'error';
    await gs.services.integrations.update(tenant, integrationId, { status: 'error', lastError: `admin consent was not granted (${code})` }, integration.etag);
    log.warn('msgraph admin consent declined', { tenantId: tenant, integrationId, upstreamCode: code });
    return { status: 'declined', ...ids, error: code };
  }
  const entraTenantId = (query.tenant ?? '').toLowerCase();
  if (!/^true$/i.test(query.admin_consent ?? '') || !ENTRA_TENANT_ID.test(entraTenantId)) {
    throw new ValidationError('The callback did not carry a granted admin consent.', [{ location: 'query', path: 'tenant', message: 'an Entra tenant id with admin_consent=True is required' }]);
  }

  try {
    await gs.requireFactory().token(entraTenantId);
  } catch (err) {
    const d = describeAuthError(err);
    await gs.services.integrations.update(
      tenant,
      integrationId,
      { status: 'error', externalAccountId: entraTenantId, lastError: `token check after consent failed (${d.code ?? 'unknown'}); consent can take a few minutes to apply, then try again` },
      integration.etag,
    );
    log.warn('msgraph token check after consent failed', { tenantId: tenant, integrationId, upstreamCode: d.code, upstreamStatus: d.status });
    return { status: 'token_failed', ...ids, entraTenantId };
  }

  if (integration.externalAccountId && integration.externalAccountId !== entraTenantId) {
    await gs.accountIndex.unlink(integration.externalAccountId, tenant, integrationId);
  }
  await gs.accountIndex.link(entraTenantId, tenant, integrationId);
  await gs.services.integrations.update(
    tenant,
    integrationId,
    { status: 'active', externalAccountId: entraTenantId, scopes: GRAPH_SCOPE, credentialsExpiresAt: undefined, lastRefreshSuccess: new Date().toISOString(), refreshAttempts: 0 },
    integration.etag,
  );
  log.info('msgraph tenant connected', { tenantId: tenant, integrationId, entraTenantId });
  return { status: 'connected', ...ids, entraTenantId };
}

