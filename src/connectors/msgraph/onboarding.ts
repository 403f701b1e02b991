import { decodeJwt } from 'jose';
import { z } from 'zod';
import { NotFoundError, ValidationError } from '../../platform/errors';
import { bindingOf, oidcNonceOf, pkceOf, requireSameBrowser, START_TICKET_TTL_SECONDS, startTicketPurpose } from '../../platform/http/browserBinding';
import type { Logger } from '../../platform/logging';
import { InvalidSignedTokenError } from '../../platform/signedTokens';
import { integrationIdSchema, tenantIdSchema, type Integration, type IntegrationId, type TenantId } from '../../storage';
import { describeAuthError, ENTRA_TENANT_ID, GRAPH_SCOPE } from './client';
import { GraphNotConfiguredError, type GraphServices } from './services';

/**
 * Onboarding a customer's Microsoft 365 organisation, in three browser legs, each bound to the
 * browser that opened our start page (its `__Host-` cookie, see platform/http/browserBinding):
 * 1. start page → Microsoft's OpenID Connect sign-in of the admin (code flow, PKCE, nonce);
 * 2. callback with the code → the id_token, verified, gives the admin's Entra tenant (`tid`) → admin
 *    consent for exactly that tenant, with `tid` carried in the signed state;
 * 3. callback with `admin_consent=True&tenant=…` → `tenant` must equal the signed `tid`, a token for it
 *    proves the consent took effect, and only then is the integration active and indexed.
 * The `tenant` query parameter alone is never trusted: anyone can type one.
 */

export const SIGN_IN_PURPOSE = 'msgraph-sign-in';
export const CONSENT_PURPOSE = 'msgraph-consent';
export const CONSENT_TTL_SECONDS = 600;

export function callbackUrl(publicBaseUrl: string): string {
  return `${publicBaseUrl}/api/msgraph/oauth/callback`;
}

/** Our first-party start page: the link the authorize endpoint returns. */
export function startPageUrl(publicBaseUrl: string, ticket: string): string {
  return `${publicBaseUrl}/api/msgraph/oauth/start?ticket=${encodeURIComponent(ticket)}`;
}

/** The v2 admin-consent URL for one Entra tenant: an admin of that organisation grants the app's application permissions. */
export function adminConsentUrl(opts: { authorityHost: string; entraTenantId: string; clientId: string; redirectUri: string; state: string }): string {
  const u = new URL(`${opts.authorityHost}/${encodeURIComponent(opts.entraTenantId)}/v2.0/adminconsent`);
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

/** Starts onboarding: a pending integration (new unless one is named) and a link to our start page with a signed, single-use ticket. */
export async function startAdminConsent(gs: GraphServices, tenant: TenantId, existing?: IntegrationId): Promise<{ url: string; integrationId: IntegrationId; expiresIn: number }> {
  gs.requireFactory();
  const integration = existing ? await requireGraphIntegration(gs, tenant, existing) : await gs.services.integrations.create(tenant, { type: 'msgraph', status: 'pending' });
  const ticket = await gs.services.signedTokens.sign(startTicketPurpose('msgraph'), tenant, { integration_id: integration.integrationId }, START_TICKET_TTL_SECONDS);
  return { url: startPageUrl(gs.services.config.publicBaseUrl, ticket), integrationId: integration.integrationId, expiresIn: START_TICKET_TTL_SECONDS };
}

const ticketClaimsSchema = z.object({ tenant_id: tenantIdSchema, integration_id: integrationIdSchema });

/**
 * The start page: consumes the ticket and answers Microsoft's sign-in URL, whose state names the
 * tenant, the integration and a hash of the browser's secret; nonce and PKCE come from the secret too.
 */
export async function beginSignIn(gs: GraphServices, ticket: string, browserSecret: string): Promise<{ url: string; tenantId: TenantId; integrationId: IntegrationId }> {
  gs.requireFactory();
  if (!gs.signIn) throw new GraphNotConfiguredError();
  const claims = ticketClaimsSchema.safeParse(await gs.services.signedTokens.verify(startTicketPurpose('msgraph'), ticket, { singleUse: true }));
  if (!claims.success) throw new InvalidSignedTokenError('invalid');
  const tenant = claims.data.tenant_id;
  const integrationId = claims.data.integration_id;
  await requireGraphIntegration(gs, tenant, integrationId);
  const state = await gs.services.signedTokens.sign(SIGN_IN_PURPOSE, tenant, { integration_id: integrationId, bh: bindingOf(browserSecret) }, CONSENT_TTL_SECONDS);
  const url = await gs.signIn.authorizeUrl({ redirectUri: callbackUrl(gs.services.config.publicBaseUrl), state, nonce: oidcNonceOf(browserSecret), codeChallenge: pkceOf(browserSecret).challenge });
  return { url, tenantId: tenant, integrationId };
}

export const consentCallbackQuerySchema = z.object({
  code: z.string().max(4096).optional(),
  tenant: z.string().max(128).optional(),
  admin_consent: z.string().max(16).optional(),
  state: z.string().max(4096).optional(),
  error: z.string().max(256).optional(),
  error_description: z.string().max(4096).optional(),
  scope: z.string().max(4096).optional(),
});
export type ConsentCallbackQuery = z.infer<typeof consentCallbackQuerySchema>;

export type ConsentOutcome =
  | { status: 'consent_redirect'; tenant: TenantId; integrationId: IntegrationId; entraTenantId: string; url: string }
  | { status: 'connected'; tenant: TenantId; integrationId: IntegrationId; entraTenantId: string }
  | { status: 'declined'; tenant: TenantId; integrationId: IntegrationId; error: string }
  | { status: 'token_failed'; tenant: TenantId; integrationId: IntegrationId; entraTenantId: string };

const signInClaimsSchema = z.object({ tenant_id: tenantIdSchema, integration_id: integrationIdSchema });
const consentClaimsSchema = z.object({ tenant_id: tenantIdSchema, integration_id: integrationIdSchema, entra_tenant_id: z.string().regex(ENTRA_TENANT_ID) });

/**
 * One redirect URI for both of Microsoft's legs (one to register in the app). The leg is read from the
 * state's purpose, unverified, only to choose which verification to run; that one checks everything.
 */
export async function completeCallback(gs: GraphServices, query: ConsentCallbackQuery, browserSecret: string | undefined, log: Logger): Promise<ConsentOutcome> {
  if (!query.state) throw new InvalidSignedTokenError('invalid');
  let purpose: unknown;
  try {
    purpose = decodeJwt(query.state).purpose;
  } catch {
    throw new InvalidSignedTokenError('invalid');
  }
  return purpose === SIGN_IN_PURPOSE ? completeSignIn(gs, query, browserSecret, log) : completeAdminConsent(gs, query, browserSecret, log);
}

async function markDeclined(gs: GraphServices, ids: { tenant: TenantId; integrationId: IntegrationId }, integration: Integration, error: string, log: Logger): Promise<ConsentOutcome> {
  // Microsoft's code only ([a-z_]); its description may carry user-supplied text and goes nowhere.
  const code = error.replace(/[^a-z_]/gi, '').slice(0, 64) || 'error';
  await gs.services.integrations.update(ids.tenant, ids.integrationId, { status: 'error', lastError: `admin consent was not granted (${code})` }, integration.etag);
  log.warn('msgraph admin consent declined', { tenantId: ids.tenant, integrationId: ids.integrationId, upstreamCode: code });
  return { status: 'declined', ...ids, error: code };
}

/** Leg 2: the admin signed in; the verified id_token names the Entra tenant that admin consent is then asked for. */
export async function completeSignIn(gs: GraphServices, query: ConsentCallbackQuery, browserSecret: string | undefined, log: Logger): Promise<ConsentOutcome> {
  if (!gs.signIn) throw new GraphNotConfiguredError();
  const app = gs.services.config.msgraph.app as { clientId: string };
  if (!query.state) throw new InvalidSignedTokenError('invalid');
  // Checked before the state is consumed: a callback from another browser, or one without a code, uses up nothing.
  const check = (c: Record<string, unknown>) => {
    requireSameBrowser(browserSecret, c.bh);
    if (!query.error && !query.code) throw new ValidationError('The sign-in callback carried no authorization code.', [{ location: 'query', path: 'code', message: 'required' }]);
  };
  const claims = signInClaimsSchema.safeParse(await gs.services.signedTokens.verify(SIGN_IN_PURPOSE, query.state, { singleUse: true, check }));
  if (!claims.success) throw new InvalidSignedTokenError('invalid');
  const ids = { tenant: claims.data.tenant_id, integrationId: claims.data.integration_id };
  const integration = await requireGraphIntegration(gs, ids.tenant, ids.integrationId);
  if (query.error) return markDeclined(gs, ids, integration, query.error, log);

  const secret = browserSecret as string; // checked above
  const redirectUri = callbackUrl(gs.services.config.publicBaseUrl);
  const signedIn = await gs.signIn.redeem({ code: query.code as string /* checked before consuming */, redirectUri, codeVerifier: pkceOf(secret).verifier, nonce: oidcNonceOf(secret) });
  const entraTenantId = signedIn.entraTenantId;
  const state = await gs.services.signedTokens.sign(CONSENT_PURPOSE, ids.tenant, { integration_id: ids.integrationId, bh: bindingOf(secret), entra_tenant_id: entraTenantId }, CONSENT_TTL_SECONDS);
  log.info('msgraph admin signed in; asking admin consent', { tenantId: ids.tenant, integrationId: ids.integrationId, entraTenantId });
  const url = adminConsentUrl({ authorityHost: gs.services.config.msgraph.authorityHost, entraTenantId, clientId: app.clientId, redirectUri, state });
  return { status: 'consent_redirect', ...ids, entraTenantId, url };
}

/**
 * Leg 3: Microsoft sends the browser back after admin consent. The state (verified, bound to this
 * browser, naming the signed-in admin's tenant) must agree with the callback's `tenant` before it is
 * consumed, so a forged callback uses up and writes nothing. Then a token is requested for the tenant,
 * which proves the consent took effect before the integration is marked active.
 */
export async function completeAdminConsent(gs: GraphServices, query: ConsentCallbackQuery, browserSecret: string | undefined, log: Logger): Promise<ConsentOutcome> {
  if (!query.state) throw new InvalidSignedTokenError('invalid');
  const check = (c: Record<string, unknown>) => {
    requireSameBrowser(browserSecret, c.bh);
    if (query.error) return;
    const signedTenant = typeof c.entra_tenant_id === 'string' ? c.entra_tenant_id : undefined;
    if (!/^true$/i.test(query.admin_consent ?? '') || !signedTenant || (query.tenant ?? '').toLowerCase() !== signedTenant) {
      throw new ValidationError('The callback did not carry a granted admin consent for the organisation that signed in.', [
        { location: 'query', path: 'tenant', message: 'admin_consent=True and the Entra tenant of the signed-in administrator are required' },
      ]);
    }
  };
  const claims = consentClaimsSchema.safeParse(await gs.services.signedTokens.verify(CONSENT_PURPOSE, query.state, { singleUse: true, check }));
  if (!claims.success) throw new InvalidSignedTokenError('invalid');
  const tenant = claims.data.tenant_id;
  const integrationId = claims.data.integration_id;
  const integration = await requireGraphIntegration(gs, tenant, integrationId);
  const ids = { tenant, integrationId };

  if (query.error) return markDeclined(gs, ids, integration, query.error, log);
  const entraTenantId = claims.data.entra_tenant_id;

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

