import { InvalidGrantError, looksLikeInvalidGrant } from '../../../../src/connectors/base';
import {
  beginConsent,
  completeAuthorization,
  connectPrivateApp,
  createHubSpotServices,
  HubSpotConnector,
  disconnectIntegration,
  integrationStatus,
  IntegrationUnavailableError,
  OAUTH_PATHS,
  PrivateAppTokenRejectedError,
  refreshIdleTokens,
  retiredTokensSecretName,
  revokeRetiredTokens,
  startAuthorization,
  updateIntegration,
} from '../../../../src/connectors/hubspot';
import { BrowserBindingError, newBrowserSecret } from '../../../../src/platform/http/browserBinding';
import { InvalidSignedTokenError } from '../../../../src/platform/signedTokens';
import { tenantSecretName } from '../../../../src/secrets';
import { QUEUES, tenantId, type IntegrationId } from '../../../../src/storage';
import { hubspotWorld, REDIRECT_URI, type HubSpotWorld } from './helpers';

/**
 * OAuth against the fake HubSpot through the real services (Azurite, local secret store): only the
 * date-versioned endpoints are used, tokens are refreshed once on a 401, a dead grant turns the
 * integration `needs_reauth` at once, and disconnecting revokes at HubSpot.
 */
describe('HubSpot OAuth, tokens and connection lifecycle', () => {
  let w: HubSpotWorld;
  const A = tenantId('tenant-a');
  const B = tenantId('tenant-b');

  beforeAll(async () => {
    w = await hubspotWorld();
  });
  afterAll(async () => w?.stop());

  const stateOf = (url: string) => new URL(url).searchParams.get('state') as string;

  /** authorize → start page (this "browser" gets its secret) → HubSpot's consent URL with the state. */
  async function begin(tenant = A, reconnect?: { integrationId: IntegrationId }): Promise<{ integrationId: IntegrationId; state: string; secret: string; url: string }> {
    const started = await startAuthorization(w.hs, tenant, reconnect ?? {});
    const secret = newBrowserSecret();
    const consent = await beginConsent(w.hs, new URL(started.authorizationUrl).searchParams.get('ticket') as string, secret);
    return { integrationId: started.integrationId, state: stateOf(consent.url), secret, url: consent.url };
  }

  /** authorize → start page → (the user consents at HubSpot) → callback from the same browser, in process. */
  async function connect(tenant = A, hubId = w.fake.addPortal().hubId): Promise<{ integrationId: IntegrationId; hubId: number }> {
    const started = await begin(tenant);
    const code = w.fake.issueAuthorizationCode(hubId, REDIRECT_URI);
    const done = await completeAuthorization(w.hs, { code, state: started.state, browserSecret: started.secret }, w.log);
    expect(done.hubId).toBe(String(hubId));
    return { integrationId: started.integrationId, hubId };
  }

  const tokenCalls = () => w.fake.stats().byRoute[`POST ${OAUTH_PATHS.token}`] ?? 0;

  it('authorize links to our start page; the start page builds the consent URL with the app, the redirect, the scopes and a signed state', async () => {
    const started = await startAuthorization(w.hs, A);
    const start = new URL(started.authorizationUrl);
    expect(start.origin + start.pathname).toBe(`${w.base.config.publicBaseUrl}/api/hubspot/oauth/start`);
    expect(start.searchParams.get('state')).toBeNull();
    const consent = await beginConsent(w.hs, start.searchParams.get('ticket') as string, newBrowserSecret());
    const url = new URL(consent.url);
    expect(url.origin + url.pathname).toBe('https://app.hubspot.com/oauth/authorize');
    expect(url.searchParams.get('client_id')).toBe(w.fake.clientId);
    expect(url.searchParams.get('redirect_uri')).toBe(REDIRECT_URI);
    expect(url.searchParams.get('scope')?.split(' ')).toEqual(expect.arrayContaining(['oauth', 'tickets', 'crm.objects.contacts.write']));
    expect(stateOf(consent.url)).toMatch(/^[\w-]+\.[\w-]+\.[\w-]+$/);
    expect(consent).toMatchObject({ tenantId: A, integrationId: started.integrationId });
    expect((await w.base.integrations.get(A, started.integrationId))?.status).toBe('pending');
  });

  it('the start link is single use', async () => {
    const started = await startAuthorization(w.hs, A);
    const ticket = new URL(started.authorizationUrl).searchParams.get('ticket') as string;
    await beginConsent(w.hs, ticket, newBrowserSecret());
    await expect(beginConsent(w.hs, ticket, newBrowserSecret())).rejects.toMatchObject({ reason: 'used' });
  });

  it('the state only completes in the browser that opened the start page: without its cookie or with another one, nothing changes and the state stays usable', async () => {
    const hubId = w.fake.addPortal().hubId;
    const started = await begin(A);
    const before = await w.base.integrations.get(A, started.integrationId);
    for (const browserSecret of [undefined, newBrowserSecret()]) {
      await expect(completeAuthorization(w.hs, { code: w.fake.issueAuthorizationCode(hubId, REDIRECT_URI), state: started.state, browserSecret }, w.log)).rejects.toBeInstanceOf(BrowserBindingError);
    }
    expect(await w.base.integrations.get(A, started.integrationId)).toEqual(before);
    expect(await w.hs.accountIndex.integrationsOf(String(hubId))).toEqual([]);
    // The initiating browser still completes it (the refused attempts used nothing up).
    const done = await completeAuthorization(w.hs, { code: w.fake.issueAuthorizationCode(hubId, REDIRECT_URI), state: started.state, browserSecret: started.secret }, w.log);
    expect(done).toMatchObject({ tenantId: A, integrationId: started.integrationId, hubId: String(hubId) });
  });

  it('the callback exchanges the code, introspects, stores the refresh token, activates, indexes the portal and queues a full sync', async () => {
    await w.drain(QUEUES.hubspotSync);
    w.fake.resetStats();
    const { integrationId, hubId } = await connect();
    const row = await w.base.integrations.get(A, integrationId);
    expect(row).toMatchObject({ status: 'active', externalAccountId: String(hubId), secretName: tenantSecretName(A, integrationId, 'refresh-token') });
    expect(row?.externalAccountName).toMatch(/hubspot|\./);
    expect(row?.scopes?.split(' ')).toContain('tickets');
    expect(await w.base.secrets.get(tenantSecretName(A, integrationId, 'refresh-token'))).toMatch(/^na1-/);
    expect(await w.hs.accountIndex.integrationsOf(String(hubId))).toEqual([{ tenantId: A, integrationId, portalId: String(hubId) }]);
    const queued = await w.drain(QUEUES.hubspotSync);
    expect(queued).toEqual([expect.objectContaining({ tenantId: A, integrationId, syncType: 'full', trigger: 'connect' })]);
    const stats = w.fake.stats();
    expect(stats.legacyOauthCalls).toBe(0);
    expect(stats.byRoute[`POST ${OAUTH_PATHS.token}`]).toBe(1);
    expect(stats.byRoute[`POST ${OAUTH_PATHS.introspect}`]).toBe(1);
  });

  it('the state is single use and bound to its tenant: a replay is refused and changes nothing', async () => {
    const hubId = w.fake.addPortal().hubId;
    const started = await begin(B);
    const { state, secret: browserSecret } = started;
    await completeAuthorization(w.hs, { code: w.fake.issueAuthorizationCode(hubId, REDIRECT_URI), state, browserSecret }, w.log);
    const other = w.fake.addPortal().hubId;
    await expect(completeAuthorization(w.hs, { code: w.fake.issueAuthorizationCode(other, REDIRECT_URI), state, browserSecret }, w.log)).rejects.toBeInstanceOf(InvalidSignedTokenError);
    expect((await w.base.integrations.get(B, started.integrationId))?.externalAccountId).toBe(String(hubId));
    // Tenant A cannot see B's integration through the state: it names B, and A's rows are untouched.
    expect((await w.base.integrations.list(A)).some((i) => i.integrationId === started.integrationId)).toBe(false);
    await expect(completeAuthorization(w.hs, { code: 'x', state: `${state.slice(0, -4)}AAAA`, browserSecret }, w.log)).rejects.toBeInstanceOf(InvalidSignedTokenError);
  });

  it('status introspects the live token: connected with hub id, domain, scopes, type and expiry', async () => {
    const { integrationId, hubId } = await connect();
    const s = await integrationStatus(w.hs, A, integrationId, w.log);
    expect(s).toMatchObject({ connected: true, hub_id: String(hubId), status: 'active', token_type: 'bearer' });
    expect(s.hub_domain).toBeTruthy();
    expect(s.scopes).toContain('tickets');
    expect(s.expires_in).toBeGreaterThan(0);
    expect(w.fake.stats().legacyOauthCalls).toBe(0);
  });

  it('a 401 triggers exactly one refresh and one retry', async () => {
    const { integrationId, hubId } = await connect();
    w.fake.seed(hubId, 'tickets', 2);
    const { caller } = await w.hs.activeCaller(A, integrationId, { priority: 'interactive' });
    await caller.call('standard', 't', (c) => c.crm.tickets.basicApi.getPage(5));
    const before = tokenCalls();
    w.fake.expireAccessTokens(hubId);
    const page = await caller.call('standard', 't', (c) => c.crm.tickets.basicApi.getPage(5));
    expect(page.results).toHaveLength(2);
    expect(tokenCalls() - before).toBe(1);
    const row = await w.base.integrations.get(A, integrationId);
    expect(row?.lastRefreshSuccess).toBeTruthy();
    expect(w.fake.stats().legacyOauthCalls).toBe(0);
  });

  it('invalid_grant / BAD_REFRESH_TOKEN marks the integration needs_reauth at once; status says so; its syncs cannot get a caller', async () => {
    const { integrationId, hubId } = await connect();
    const { caller } = await w.hs.activeCaller(A, integrationId, { priority: 'interactive' });
    w.fake.revokeRefreshTokens(hubId);
    w.fake.expireAccessTokens(hubId);
    const err = await caller.call('standard', 't', (c) => c.crm.tickets.basicApi.getPage(5)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(InvalidGrantError);
    const row = await w.base.integrations.get(A, integrationId);
    expect(row?.status).toBe('needs_reauth');
    expect(row?.lastRefreshFailure).toBeTruthy();
    await expect(w.hs.activeCaller(A, integrationId)).rejects.toBeInstanceOf(IntegrationUnavailableError);
    expect(await integrationStatus(w.hs, A, integrationId, w.log)).toMatchObject({ connected: false, status: 'needs_reauth', hub_id: String(hubId) });
  });

  it('the refresh error body is recognised as invalid_grant by the base manager', async () => {
    const err = await w.hs.oauth?.refresh('na1-not-a-refresh-token').catch((e: unknown) => e);
    expect(looksLikeInvalidGrant(err)).toBe(true);
    expect(String((err as Error).message)).not.toContain('na1-not-a-refresh-token');
  });

  it('status of a connection whose grant died while idle: connected false, needs_reauth, never a 500', async () => {
    const { integrationId, hubId } = await connect();
    w.fake.revokeRefreshTokens(hubId);
    w.fake.expireAccessTokens(hubId);
    // The manager still caches the (now expired) token; a new process would not. Make it refresh.
    w.hs.tokens?.invalidate(A, integrationId);
    expect(await integrationStatus(w.hs, A, integrationId, w.log)).toMatchObject({ connected: false, status: 'needs_reauth' });
    expect((await w.base.integrations.get(A, integrationId))?.status).toBe('needs_reauth');
  });

  it('disconnect revokes the refresh token at HubSpot, deletes the secrets, unindexes the portal and keeps the row', async () => {
    const { integrationId, hubId } = await connect();
    const refresh = (await w.base.secrets.get(tenantSecretName(A, integrationId, 'refresh-token'))) as string;
    const done = await disconnectIntegration(w.hs, A, integrationId, w.log);
    expect(done).toEqual({ status: 'disconnected', revocation: 'revoked' });
    expect(w.fake.stats().revokedTokens).toContain(refresh);
    expect(w.fake.stats().legacyOauthCalls).toBe(0);
    await expect(w.hs.oauth?.refresh(refresh)).rejects.toMatchObject({ body: { error: 'invalid_grant' } });
    expect(await w.base.secrets.get(tenantSecretName(A, integrationId, 'refresh-token'))).toBeUndefined();
    expect(await w.base.secrets.get(tenantSecretName(A, integrationId, 'access-token'))).toBeUndefined();
    expect(await w.hs.accountIndex.integrationsOf(String(hubId))).toEqual([]);
    expect((await w.base.integrations.get(A, integrationId))?.status).toBe('disconnected');
    expect(await integrationStatus(w.hs, A, integrationId, w.log)).toMatchObject({ connected: false, status: 'disconnected' });
    // Idempotent.
    expect(await disconnectIntegration(w.hs, A, integrationId, w.log)).toEqual({ status: 'disconnected', revocation: 'not_applicable' });
  });

  it('reconnecting revokes the replaced grant once the new one is stored; a failed revocation is retried, never fatal', async () => {
    const { integrationId, hubId } = await connect();
    const refreshName = tenantSecretName(A, integrationId, 'refresh-token');
    const reconnect = async () => {
      const again = await begin(A, { integrationId });
      await completeAuthorization(w.hs, { code: w.fake.issueAuthorizationCode(hubId, REDIRECT_URI), state: again.state, browserSecret: again.secret }, w.log);
      return (await w.base.secrets.get(refreshName)) as string;
    };
    const first = (await w.base.secrets.get(refreshName)) as string;
    const second = await reconnect();
    expect(second).not.toBe(first);
    // The old grant is revoked at HubSpot and no longer works; the new one does.
    expect(w.fake.stats().revokedTokens).toContain(first);
    await expect(w.hs.oauth?.refresh(first)).rejects.toMatchObject({ body: { error: 'invalid_grant' } });
    await expect(w.hs.oauth?.refresh(second)).resolves.toMatchObject({ accessToken: expect.any(String) });
    expect(await w.base.secrets.get(retiredTokensSecretName(A, integrationId))).toBeUndefined();

    // HubSpot refuses the revocation: the reconnect still succeeds, the old grant waits, recorded.
    w.fake.injectFault({ match: /token\/revoke/, status: 503, times: 10 });
    const third = await reconnect();
    w.fake.clearFaults();
    expect((await w.base.integrations.get(A, integrationId))?.status).toBe('active');
    expect(w.fake.stats().revokedTokens).not.toContain(second);
    expect(JSON.parse((await w.base.secrets.get(retiredTokensSecretName(A, integrationId))) as string)).toEqual([second]);
    // The daily token job tries again and succeeds.
    await refreshIdleTokens(w.hs, w.log);
    expect(w.fake.stats().revokedTokens).toContain(second);
    await expect(w.hs.oauth?.refresh(second)).rejects.toMatchObject({ body: { error: 'invalid_grant' } });
    expect(await w.base.secrets.get(retiredTokensSecretName(A, integrationId))).toBeUndefined();

    // A reconnect that died after recording the old token but before storing the new one: the recorded
    // token is still the current one, so it is forgotten, never revoked.
    await w.base.secrets.set(retiredTokensSecretName(A, integrationId), JSON.stringify([third]));
    expect(await revokeRetiredTokens(w.hs, A, integrationId, w.log)).toEqual({ revoked: 0, left: 0 });
    expect(w.fake.stats().revokedTokens).not.toContain(third);
    await expect(w.hs.oauth?.refresh(third)).resolves.toMatchObject({ accessToken: expect.any(String) });
    expect(await w.base.secrets.get(retiredTokensSecretName(A, integrationId))).toBeUndefined();
  });

  it('disconnect fails closed when HubSpot cannot revoke: nothing is deleted', async () => {
    const { integrationId } = await connect();
    w.fake.injectFault({ match: /token\/revoke/, status: 503, times: 5 });
    await expect(disconnectIntegration(w.hs, A, integrationId, w.log)).rejects.toMatchObject({ status: 502 });
    w.fake.clearFaults();
    expect(await w.base.secrets.get(tenantSecretName(A, integrationId, 'refresh-token'))).toBeTruthy();
    expect((await w.base.integrations.get(A, integrationId))?.status).toBe('active');
  });

  it('a private-app token is validated against HubSpot before it is stored', async () => {
    const hubId = w.fake.addPortal().hubId;
    const before = (await w.base.integrations.list(A)).length;
    await expect(connectPrivateApp(w.hs, A, 'pat-na1-00000000-0000-0000-0000-000000000000', w.log)).rejects.toBeInstanceOf(PrivateAppTokenRejectedError);
    expect((await w.base.integrations.list(A)).length).toBe(before);
    const token = w.fake.createPrivateAppToken(hubId);
    const done = await connectPrivateApp(w.hs, A, token, w.log);
    expect(done.hubId).toBe(String(hubId));
    const row = await w.base.integrations.get(A, done.integrationId);
    expect(row).toMatchObject({ status: 'active', externalAccountId: String(hubId), secretName: tenantSecretName(A, done.integrationId, 'private-app-token') });
    expect(JSON.stringify(row)).not.toContain(token);
    expect(await w.base.secrets.get(tenantSecretName(A, done.integrationId, 'private-app-token'))).toBe(token);
    expect(await integrationStatus(w.hs, A, done.integrationId, w.log)).toMatchObject({ connected: true, token_type: 'private_app', hub_id: String(hubId) });
  });

  it('the daily job refreshes integrations idle for a day and marks dead grants needs_reauth', async () => {
    const live = await connect();
    const dead = await connect();
    const fresh = await connect();
    const old = new Date(Date.now() - 2 * 24 * 3600_000).toISOString();
    for (const c of [live, dead]) await updateIntegration(w.base.integrations, A, c.integrationId, () => ({ lastRefreshSuccess: old }));
    w.fake.revokeRefreshTokens(dead.hubId);
    // A day idle: the stored access tokens have long expired.
    w.fake.expireAccessTokens(live.hubId);
    w.fake.expireAccessTokens(dead.hubId);
    for (const c of [live, dead]) w.hs.tokens?.invalidate(A, c.integrationId);
    const result = await refreshIdleTokens(w.hs, w.log);
    expect(result.refreshed).toBeGreaterThanOrEqual(1);
    expect(result.needsReauth).toBeGreaterThanOrEqual(1);
    expect((await w.base.integrations.get(A, live.integrationId))?.lastRefreshSuccess).not.toBe(old);
    expect((await w.base.integrations.get(A, dead.integrationId))?.status).toBe('needs_reauth');
    expect((await w.base.integrations.get(A, fresh.integrationId))?.status).toBe('active');
  });

  it('the connector is healthy while HubSpot answers, and not when it does not', async () => {
    expect(await new HubSpotConnector(() => w.hs).healthCheck()).toBe(true);
    const down = createHubSpotServices({ ...w.base, config: { ...w.base.config, hubspot: { ...w.base.config.hubspot, apiBaseUrl: 'http://127.0.0.1:9' } } });
    expect(await new HubSpotConnector(() => down).healthCheck()).toBe(false);
    w.fake.injectFault({ status: 503, times: 1 });
    expect(await new HubSpotConnector(() => w.hs).healthCheck()).toBe(false);
    w.fake.clearFaults();
  });
});
