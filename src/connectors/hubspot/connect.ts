import { z } from 'zod';
import { AppError, NotFoundError } from '../../platform/errors';
import { bindingOf, requireSameBrowser, START_TICKET_TTL_SECONDS, startTicketPurpose } from '../../platform/http/browserBinding';
import type { Logger } from '../../platform/logging';
import { tenantSecretName } from '../../secrets';
import { integrationIdSchema, tenantIdSchema, type Integration, type IntegrationId, type TenantId } from '../../storage';
import { REFRESH_TOKEN_SECRET_PURPOSE } from '../base';
import { updateIntegration } from './integrationState';
import { replaceGrant } from './retiredTokens';
import type { HubSpotServices } from './services';
import { requestSync } from './sync/scheduler';

/** Purpose of the signed OAuth `state`; 10 minutes, single use. */
export const OAUTH_STATE_PURPOSE = 'hubspot-oauth';
export const OAUTH_STATE_TTL_SECONDS = 600;

const stateClaimsSchema = z.object({ tenant_id: tenantIdSchema, integration_id: integrationIdSchema });
const ticketClaimsSchema = z.object({ tenant_id: tenantIdSchema, integration_id: integrationIdSchema });

/** Our first-party start page: the link the authorize endpoint returns; it binds the flow to the browser. */
export function startPageUrl(publicBaseUrl: string, ticket: string): string {
  return `${publicBaseUrl}/api/hubspot/oauth/start?ticket=${encodeURIComponent(ticket)}`;
}

export class HubSpotNotConfiguredError extends AppError {
  constructor() {
    super({ status: 503, code: 'hubspot-not-configured', title: 'HubSpot OAuth is not configured', detail: 'HUBSPOT_CLIENT_ID, HUBSPOT_CLIENT_SECRET and HUBSPOT_REDIRECT_URI are not set in this deployment.' });
  }
}

/** The consent step failed in a way the person in the browser should be told about. */
export class ConnectError extends AppError {
  constructor(detail: string, status = 400) {
    super({ status, code: 'hubspot-connect-failed', title: 'HubSpot could not be connected', detail });
  }
}

/**
 * Starts a connection: a pending integration (or an existing one to reconnect) and the link to our
 * start page, with a signed, 5-minute, single-use ticket naming the tenant and the integration. The
 * start page (`beginConsent`) binds the flow to the browser that opens it and sends it on to HubSpot.
 */
export async function startAuthorization(
  hs: HubSpotServices,
  tenant: TenantId,
  opts: { integrationId?: IntegrationId } = {},
): Promise<{ integrationId: IntegrationId; authorizationUrl: string }> {
  if (!hs.oauth) throw new HubSpotNotConfiguredError();
  let integration: Integration;
  if (opts.integrationId) {
    integration = await hs.getIntegration(tenant, opts.integrationId);
    if (integration.status === 'disconnected') throw new ConnectError('This integration was disconnected; start a new one instead.', 409);
  } else {
    integration = await hs.base.integrations.create(tenant, { type: 'hubspot', status: 'pending' });
  }
  const ticket = await hs.base.signedTokens.sign(startTicketPurpose('hubspot'), tenant, { integration_id: integration.integrationId }, START_TICKET_TTL_SECONDS);
  return { integrationId: integration.integrationId, authorizationUrl: startPageUrl(hs.base.config.publicBaseUrl, ticket) };
}

/**
 * The start page: consumes the ticket and answers HubSpot's consent URL, whose `state` is a signed,
 * expiring, single-use token naming the tenant, the integration and a hash of the browser's secret
 * (the cookie the page sets). A plain `tenant:integration` state would let anyone bind their portal
 * to another tenant; a state without the browser's hash could be mailed to someone else's admin.
 */
export async function beginConsent(hs: HubSpotServices, ticket: string, browserSecret: string): Promise<{ url: string; tenantId: TenantId; integrationId: IntegrationId }> {
  if (!hs.oauth) throw new HubSpotNotConfiguredError();
  const claims = ticketClaimsSchema.safeParse(await hs.base.signedTokens.verify(startTicketPurpose('hubspot'), ticket, { singleUse: true }));
  if (!claims.success) throw new ConnectError('The sign-in link is not valid.');
  const tenant = claims.data.tenant_id;
  const id = claims.data.integration_id;
  const integration = await hs.base.integrations.get(tenant, id);
  if (!integration || integration.type !== 'hubspot') throw new NotFoundError('The integration this sign-in was started for no longer exists.');
  if (integration.status === 'disconnected') throw new ConnectError('The integration this sign-in was started for was disconnected.', 409);
  const state = await hs.base.signedTokens.sign(OAUTH_STATE_PURPOSE, tenant, { integration_id: id, bh: bindingOf(browserSecret) }, OAUTH_STATE_TTL_SECONDS);
  return { url: hs.oauth.authorizationUrl(state), tenantId: tenant, integrationId: id };
}

export interface ConnectedIntegration {
  tenantId: TenantId;
  integrationId: IntegrationId;
  hubId: string;
  hubDomain: string | undefined;
  scopes: string[];
  syncId: string | undefined;
}

/**
 * The callback: trusts only the state (verified, matched to the browser's cookie and consumed here), exchanges the code at the
 * date-versioned token endpoint, introspects the token for the portal, stores the refresh token,
 * activates the integration, indexes the portal for webhooks and queues the first full sync.
 */
export async function completeAuthorization(
  hs: HubSpotServices,
  input: { code?: string | undefined; state: string; error?: string | undefined; browserSecret: string | undefined },
  log: Logger,
): Promise<ConnectedIntegration> {
  if (!hs.oauth || !hs.tokens) throw new HubSpotNotConfiguredError();
  // The browser check runs before the state is consumed: another browser's callback uses up nothing.
  const check = (c: Record<string, unknown>) => requireSameBrowser(input.browserSecret, c.bh);
  const claims = stateClaimsSchema.safeParse(await hs.base.signedTokens.verify(OAUTH_STATE_PURPOSE, input.state, { singleUse: true, check }));
  if (!claims.success) throw new ConnectError('The sign-in state is not valid.');
  const tenant = claims.data.tenant_id;
  const id = claims.data.integration_id;
  const integration = await hs.base.integrations.get(tenant, id);
  if (!integration || integration.type !== 'hubspot') throw new NotFoundError('The integration this sign-in was started for no longer exists.');
  if (integration.status === 'disconnected') throw new ConnectError('The integration this sign-in was started for was disconnected.', 409);
  if (input.error) throw new ConnectError(`HubSpot did not grant access (${input.error.slice(0, 100)}).`);
  if (!input.code) throw new ConnectError('HubSpot sent no authorization code.');

  const tokens = await hs.oauth.exchangeCode(input.code).catch((err: unknown) => {
    throw new ConnectError(`HubSpot refused the authorization code${err instanceof Error && 'status' in err ? ` (HTTP ${(err as { status: number }).status})` : ''}; start again.`, 502);
  });
  const info = await hs.oauth.introspect(tokens.accessToken, 'access_token');
  const hubId = info.hubId ?? tokens.hubId;
  if (!info.active || !hubId) throw new ConnectError('HubSpot did not confirm the new token; start again.', 502);
  const scopes = info.scopes.length > 0 ? info.scopes : (tokens.scopes ?? []);

  // A reconnect replaces a live grant: the old refresh token is revoked once the new one is stored.
  await replaceGrant(hs, tenant, id, tokens, log);
  const previousPortal = integration.externalAccountId;
  const now = new Date().toISOString();
  await updateIntegration(hs.base.integrations, tenant, id, () => ({
    status: 'active',
    externalAccountId: hubId,
    ...(info.hubDomain ? { externalAccountName: info.hubDomain } : {}),
    scopes: scopes.join(' '),
    secretName: tenantSecretName(tenant, id, REFRESH_TOKEN_SECRET_PURPOSE),
    credentialsExpiresAt: new Date(tokens.expiresAt).toISOString(),
    lastRefreshSuccess: now,
    refreshAttempts: 0,
    lastError: '',
  }));
  // Reconnected to another portal: the old portal's webhooks no longer concern this integration.
  if (previousPortal && previousPortal !== hubId) await hs.accountIndex.unlink(previousPortal, tenant, id);
  await hs.accountIndex.link(hubId, tenant, id);

  let syncId: string | undefined;
  try {
    const sync = await requestSync({ storage: hs.base.storage, queues: hs.base.queues }, tenant, id, { syncType: 'full', trigger: 'connect' });
    syncId = sync.syncId;
  } catch (err) {
    // Connected all the same; the sync timer (or the engine) starts it later.
    log.error('could not queue the first full sync', { tenantId: tenant, integrationId: id, error: err instanceof Error ? err.message : String(err) });
  }
  log.info('HubSpot connected', { tenantId: tenant, integrationId: id, portalId: hubId, scopes: scopes.length });
  return { tenantId: tenant, integrationId: id, hubId, hubDomain: info.hubDomain, scopes, syncId };
}
