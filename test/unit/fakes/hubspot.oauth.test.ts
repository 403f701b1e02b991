import { Client } from '@hubspot/api-client';
import { startFakeHubSpot, type FakeHubSpot, type FakePortal } from '../../fakes/hubspot';
import { REDIRECT_URI, apiError, connect, postForm, sdk, type TokenResponse } from './hubspotHelpers';

/** OAuth on the fake: date-versioned token/introspect/revoke through the SDK's apiRequest, the legacy v1 helpers, private-app tokens. */

const VERSION = '2026-03';

/** A form POST through the SDK's own `apiRequest`, which honours `basePath` (how the connector reaches the date-versioned endpoints). */
async function sdkForm(fake: FakeHubSpot, path: string, form: Record<string, string>): Promise<{ status: number; body: Record<string, unknown> }> {
  const client = new Client({ basePath: fake.url });
  const res = await client.apiRequest({
    method: 'POST',
    path,
    body: new URLSearchParams(form).toString(),
    defaultJson: false,
    headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
  });
  const text = await res.text();
  return { status: res.status, body: text ? (JSON.parse(text) as Record<string, unknown>) : {} };
}

describe('fake HubSpot OAuth', () => {
  let fake: FakeHubSpot;
  let portal: FakePortal;

  beforeAll(async () => {
    fake = await startFakeHubSpot({ clientId: 'cid-123', clientSecret: 'secret-456' });
    portal = fake.addPortal({ hubDomain: 'acme.example.com', userEmail: 'owner@acme.example.com' });
    fake.seed(portal.hubId, 'tickets', 2);
  });

  afterAll(async () => {
    await fake.close();
  });

  const creds = (): Record<string, string> => ({ client_id: fake.clientId, client_secret: fake.clientSecret });

  it('exchanges a one-time code on the date-versioned token endpoint via the SDK apiRequest', async () => {
    fake.resetStats();
    const code = fake.issueAuthorizationCode(portal.hubId, REDIRECT_URI);
    const res = await sdkForm(fake, `/oauth/${VERSION}/token`, { grant_type: 'authorization_code', ...creds(), redirect_uri: REDIRECT_URI, code });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ token_type: 'bearer', token_use: 'access_token', expires_in: 1800, hub_id: portal.hubId, scopes: portal.scopes });
    expect(typeof res.body.access_token).toBe('string');
    expect(String(res.body.refresh_token)).toMatch(/^na1-/);

    const page = await sdk(fake, String(res.body.access_token)).crm.tickets.basicApi.getPage(10);
    expect(page.results).toHaveLength(2);

    const reused = await sdkForm(fake, `/oauth/${VERSION}/token`, { grant_type: 'authorization_code', ...creds(), redirect_uri: REDIRECT_URI, code });
    expect(reused.status).toBe(400);
    expect(reused.body).toMatchObject({ error: 'invalid_grant', status: 'BAD_AUTH_CODE' });
    expect(fake.stats().byRoute[`POST /oauth/${VERSION}/token`]).toBe(2);
    expect(fake.stats().legacyOauthCalls).toBe(0);
  });

  it('binds codes to their redirect URI and checks the client credentials', async () => {
    const code = fake.issueAuthorizationCode(portal.hubId, REDIRECT_URI);
    const wrongRedirect = await postForm(`${fake.url}/oauth/${VERSION}/token`, { grant_type: 'authorization_code', ...creds(), redirect_uri: 'https://evil.example/cb', code });
    expect(wrongRedirect.status).toBe(400);
    expect(await wrongRedirect.json()).toMatchObject({ error: 'invalid_grant', status: 'BAD_REDIRECT_URI' });
    const wrongSecret = await postForm(`${fake.url}/oauth/${VERSION}/token`, { grant_type: 'authorization_code', client_id: fake.clientId, client_secret: 'nope', redirect_uri: REDIRECT_URI, code });
    expect(wrongSecret.status).toBe(400);
    expect(await wrongSecret.json()).toMatchObject({ error: 'invalid_client' });
    const badGrant = await postForm(`${fake.url}/oauth/${VERSION}/token`, { grant_type: 'password', ...creds() });
    expect(await badGrant.json()).toMatchObject({ error: 'unsupported_grant_type' });
  });

  it('refreshes: a new access token, the same refresh token, and the old access token still valid until it expires', async () => {
    const first = await connect(fake, portal.hubId);
    const res = await sdkForm(fake, `/oauth/${VERSION}/token`, { grant_type: 'refresh_token', ...creds(), refresh_token: first.refresh_token });
    expect(res.status).toBe(200);
    expect(res.body.access_token).not.toBe(first.access_token);
    expect(res.body.refresh_token).toBe(first.refresh_token);
    expect((await sdk(fake, first.access_token).crm.tickets.basicApi.getPage(1)).results).toHaveLength(1);
    expect((await sdk(fake, String(res.body.access_token)).crm.tickets.basicApi.getPage(1)).results).toHaveLength(1);
  });

  it('introspects access and refresh tokens (RFC 7662 with HubSpot metadata)', async () => {
    const t = await connect(fake, portal.hubId);
    const access = await sdkForm(fake, `/oauth/${VERSION}/token/introspect`, { ...creds(), token: t.access_token, token_type_hint: 'access_token' });
    expect(access.status).toBe(200);
    expect(access.body).toMatchObject({ active: true, token_use: 'access_token', hub_id: portal.hubId, hub_domain: 'acme.example.com', user: 'owner@acme.example.com', scopes: portal.scopes, app_id: fake.appId, client_id: 'cid-123' });
    expect(access.body.expires_in).toBeGreaterThan(1700);
    const refresh = await sdkForm(fake, `/oauth/${VERSION}/token/introspect`, { ...creds(), token: t.refresh_token, token_type_hint: 'refresh_token' });
    expect(refresh.body).toMatchObject({ active: true, token_use: 'refresh_token', hub_id: portal.hubId, hub_domain: 'acme.example.com' });
    const unknown = await sdkForm(fake, `/oauth/${VERSION}/token/introspect`, { ...creds(), token: 'not-a-token' });
    expect(unknown.body).toEqual({ active: false });
    const noCreds = await sdkForm(fake, `/oauth/${VERSION}/token/introspect`, { token: t.access_token });
    expect(noCreds.status).toBe(400);
  });

  it("answers 401 EXPIRED_AUTHENTICATION with HubSpot's body once tokens expire, and a refresh recovers", async () => {
    const t = await connect(fake, portal.hubId);
    fake.expireAccessTokens(portal.hubId);
    const err = await apiError(sdk(fake, t.access_token).crm.tickets.basicApi.getPage(1));
    expect(err.code).toBe(401);
    expect(err.body).toMatchObject({ status: 'error', category: 'EXPIRED_AUTHENTICATION' });
    expect(String(err.body.message)).toMatch(/^The OAuth token used to make this call expired \d+ (minute|hour|day)\(s\) ago\.$/);
    const intro = await sdkForm(fake, `/oauth/${VERSION}/token/introspect`, { ...creds(), token: t.access_token });
    expect(intro.body).toEqual({ active: false });
    const refreshed = await sdkForm(fake, `/oauth/${VERSION}/token`, { grant_type: 'refresh_token', ...creds(), refresh_token: t.refresh_token });
    expect((await sdk(fake, String(refreshed.body.access_token)).crm.tickets.basicApi.getPage(1)).results).toHaveLength(1);

    const garbage = await apiError(sdk(fake, 'garbage').crm.tickets.basicApi.getPage(1));
    expect(garbage.code).toBe(401);
    expect(garbage.body.category).toBe('INVALID_AUTHENTICATION');
  });

  it('lets access tokens run out after accessTokenTtlSeconds', async () => {
    const short = await startFakeHubSpot({ accessTokenTtlSeconds: 1 });
    try {
      const p = short.addPortal();
      const t = await connect(short, p.hubId);
      expect(t.expires_in).toBe(1);
      expect((await sdk(short, t.access_token).crm.tickets.basicApi.getPage(1)).results).toEqual([]);
      await new Promise((r) => setTimeout(r, 1200));
      expect((await apiError(sdk(short, t.access_token).crm.tickets.basicApi.getPage(1))).body.category).toBe('EXPIRED_AUTHENTICATION');
    } finally {
      await short.close();
    }
  });

  it('answers invalid_grant / BAD_REFRESH_TOKEN after the refresh tokens are revoked', async () => {
    const other = fake.addPortal();
    const t = await connect(fake, other.hubId);
    fake.revokeRefreshTokens(other.hubId);
    const res = await postForm(`${fake.url}/oauth/${VERSION}/token`, { grant_type: 'refresh_token', ...creds(), refresh_token: t.refresh_token });
    expect(res.status).toBe(400);
    expect(await res.json()).toMatchObject({ error: 'invalid_grant', error_description: 'refresh token is invalid, expired or revoked', status: 'BAD_REFRESH_TOKEN' });
    // Revoking the refresh token leaves issued access tokens alone, as HubSpot documents.
    expect((await sdk(fake, t.access_token).crm.tickets.basicApi.getPage(1)).results).toEqual([]);
  });

  it('revokes a refresh token on the date-versioned revoke endpoint and records it', async () => {
    fake.resetStats();
    const t = await connect(fake, portal.hubId);
    const res = await sdkForm(fake, `/oauth/${VERSION}/token/revoke`, { ...creds(), token: t.refresh_token, token_type_hint: 'refresh_token' });
    expect(res.status).toBe(200);
    expect(fake.stats().revokedTokens).toEqual([t.refresh_token]);
    const refresh = await sdkForm(fake, `/oauth/${VERSION}/token`, { grant_type: 'refresh_token', ...creds(), refresh_token: t.refresh_token });
    expect(refresh.body).toMatchObject({ error: 'invalid_grant' });
    expect(fake.stats().legacyOauthCalls).toBe(0);
  });

  it('serves the legacy v1 endpoints the SDK helpers call, and counts every use', async () => {
    fake.resetStats();
    const client = new Client({ basePath: fake.url });
    const code = fake.issueAuthorizationCode(portal.hubId, REDIRECT_URI);
    const tokens = await client.oauth.tokensApi.create('authorization_code', code, REDIRECT_URI, fake.clientId, fake.clientSecret);
    expect(tokens.expiresIn).toBe(1800);
    const info = await client.oauth.accessTokensApi.get(tokens.accessToken);
    expect(info).toMatchObject({ hubId: portal.hubId, hubDomain: 'acme.example.com', user: 'owner@acme.example.com', tokenType: 'access', appId: fake.appId });
    const rinfo = await client.oauth.refreshTokensApi.get(tokens.refreshToken);
    expect(rinfo).toMatchObject({ hubId: portal.hubId, clientId: fake.clientId });
    await client.oauth.refreshTokensApi.archive(tokens.refreshToken);
    const s = fake.stats();
    expect(s.legacyOauthCalls).toBe(4);
    expect(s.revokedTokens).toEqual([tokens.refreshToken]);
    const again = await apiError(client.oauth.tokensApi.create('refresh_token', undefined, undefined, fake.clientId, fake.clientSecret, tokens.refreshToken));
    expect(again.code).toBe(400);
  });

  it('validates a private-app token: account details and access-token info', async () => {
    const token = fake.createPrivateAppToken(portal.hubId, ['tickets']);
    expect(token).toMatch(/^pat-na1-/);
    const client = sdk(fake, token);
    const res = await client.apiRequest({ method: 'GET', path: '/account-info/v3/details' });
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ portalId: portal.hubId, timeZone: expect.any(String), uiDomain: 'app.hubspot.com' });
    const info = await fetch(`${fake.url}/oauth/v2/private-apps/get/access-token-info`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ tokenKey: token }) });
    expect(await info.json()).toMatchObject({ hubId: portal.hubId, scopes: ['tickets'], appId: expect.any(Number) });
    // Scopes are the private app's: contacts were not granted.
    expect((await apiError(client.crm.contacts.basicApi.getPage(1))).code).toBe(403);
    const bad = await sdk(fake, 'pat-na1-00000000-0000-0000-0000-000000000000').apiRequest({ method: 'GET', path: '/account-info/v3/details' });
    expect(bad.status).toBe(401);
  });

  it("redirects the browser's authorize request back with a code and the state", async () => {
    const mine = fake.addPortal();
    const url = new URL(`${fake.url}/oauth/authorize`);
    url.search = new URLSearchParams({ client_id: fake.clientId, redirect_uri: REDIRECT_URI, scope: 'oauth tickets', state: 'signed.state' }).toString();
    const res = await fetch(url, { redirect: 'manual' });
    expect(res.status).toBe(302);
    const back = new URL(res.headers.get('location') ?? '');
    expect(back.origin + back.pathname).toBe(REDIRECT_URI);
    expect(back.searchParams.get('state')).toBe('signed.state');
    const tokens = await postForm(`${fake.url}/oauth/${VERSION}/token`, { grant_type: 'authorization_code', ...creds(), redirect_uri: REDIRECT_URI, code: back.searchParams.get('code') ?? '' });
    expect(((await tokens.json()) as TokenResponse).hub_id).toBe(mine.hubId);
  });

  it('uninstalling the app invalidates the portal tokens', async () => {
    const p = fake.addPortal();
    const t = await connect(fake, p.hubId);
    const res = await sdk(fake, t.access_token).apiRequest({ method: 'DELETE', path: '/appinstalls/v3/external-install' });
    expect(res.status).toBe(204);
    expect((await apiError(sdk(fake, t.access_token).crm.tickets.basicApi.getPage(1))).code).toBe(401);
    const refresh = await postForm(`${fake.url}/oauth/${VERSION}/token`, { grant_type: 'refresh_token', ...creds(), refresh_token: t.refresh_token });
    expect(await refresh.json()).toMatchObject({ status: 'BAD_REFRESH_TOKEN' });
  });
});
