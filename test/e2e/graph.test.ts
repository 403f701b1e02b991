import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startAzurite, type AzuriteInstance } from '../../runner/azurite';
import { StorageClients } from '../../src/storage/clients';
import { TABLES } from '../../src/storage/names';
import { TenantTable } from '../../src/storage/tenantTable';
import { partitionKey, tenantId } from '../../src/storage/keys';
import { startFakeGraph, type FakeGraph, type FakeMessage } from '../fakes/graph';
import { TestBrowser, type BrowserResponse } from '../helpers/browser';
import { TEST_JWT_SECRET } from '../helpers/jwt';
import { apiClient, freePort, nextMessage, queueLength, startRunner, type RunningHost, localAppEnv, fakeGraphAppEnv } from '../helpers/runner';

const APP = { clientId: 'e2e-graph-app', clientSecret: 'e2e-graph-secret-5f0c1e9a7b3d' };

interface CloudEventJson {
  specversion: string;
  id: string;
  type: string;
  source: string;
  subject?: string;
  tenantid: string;
  integrationid?: string;
  data: Record<string, unknown>;
}

async function waitFor<T>(what: string, probe: () => T | undefined | Promise<T | undefined>, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/**
 * The whole Graph mail flow through the local runner, against the HTTPS fake Graph that really calls
 * the app: the subscription handshake, notifications, lifecycle events, and the reply.
 */
describe('Microsoft Graph end to end', () => {
  let azurite: AzuriteInstance;
  let fake: FakeGraph;
  let host: RunningHost;
  let tmp: string;
  let publicBase: string;
  let entraA: string;
  let entraB: string;
  let integrationA = '';
  let integrationB = '';
  const supportA = 'support@a.example';
  const supportB = 'help@b.example';
  const customer = 'ann@customer.example';

  beforeAll(async () => {
    tmp = mkdtempSync(path.join(os.tmpdir(), 'itil-graph-e2e-'));
    azurite = await startAzurite();
    fake = await startFakeGraph(APP);
    const home = fake.addTenant();
    fake.consent(home);
    entraA = fake.addTenant();
    entraB = fake.addTenant();
    fake.addUser(entraA, { mail: supportA, displayName: 'A Support' });
    fake.addUser(entraB, { mail: supportB, displayName: 'B Help' });
    // The runner is a child process: trusting the fake's CA through its environment keeps verification on.
    const caFile = path.join(tmp, 'fake-graph-ca.pem');
    writeFileSync(caFile, fake.ca);
    const port = await freePort();
    publicBase = `http://127.0.0.1:${port}`;
    host = await startRunner({
      port,
      env: {
        ...localAppEnv({ storage: azurite.connectionString, secretKey: randomBytes(32).toString('base64'), secretDir: path.join(tmp, 'secrets'), jwtSecret: TEST_JWT_SECRET, publicBaseUrl: publicBase }),
        ...fakeGraphAppEnv({ app: APP, homeTenant: home, fakeUrl: fake.url, caFile }),
      },
    });
  });

  afterAll(async () => {
    // GRAPH_E2E_DUMP=<file> keeps the runner's log for a look after the run.
    if (process.env.GRAPH_E2E_DUMP) writeFileSync(process.env.GRAPH_E2E_DUMP, host?.output() ?? '');
    await host?.stop();
    await fake?.stop();
    await azurite?.stop();
    rmSync(tmp, { recursive: true, force: true });
  });

  const api = apiClient(() => host);
  const postJson = (p: string, body: unknown, tenant: string, extra: Record<string, string> = {}) =>
    api(p, { method: 'POST', tenant, headers: { 'content-type': 'application/json', ...extra }, body: JSON.stringify(body) });
  const nextEvent = async (): Promise<CloudEventJson> => JSON.parse(await nextMessage(azurite.connectionString, 'engine-events', 30_000)) as CloudEventJson;
  const logLines = (needle: string) => host.output().split('\n').filter((l) => l.includes(needle));
  const waitForLog = (needle: string, count = 1) => waitFor(`${count}× "${needle}" in the log`, () => logLines(needle).length >= count || undefined);
  /** Every clientState the fake ever held, to check none reached the log. */
  const seenStates = new Set<string>();
  const remember = () => fake.subscriptions().forEach((s) => s.clientState && seenStates.add(s.clientState));

  const COOKIE = '__Host-itil-oauth-msgraph';
  const callbackBase = () => `${publicBase}/api/msgraph/oauth/callback`;
  const isCallback = (h: BrowserResponse) => h.url.startsWith(callbackBase());
  const accountLinks = async (entra: string) => {
    const clients = new StorageClients({ kind: 'connectionString', connectionString: azurite.connectionString });
    const rows = [];
    for await (const row of new TenantTable<Record<string, string>>(clients.table(TABLES.accountIndex)).all(partitionKey.accountIndex('msgraph', entra.toLowerCase()))) rows.push(row);
    return rows;
  };
  const integrationOf = async (tenant: string, id: string) => {
    const { integrations } = (await (await api(`integrations/${tenant}?type=msgraph`, { tenant })).json()) as { integrations: Array<Record<string, unknown>> };
    return integrations.find((i) => i.integration_id === id);
  };
  async function authorize(tenant: string): Promise<{ url: string; integrationId: string }> {
    const res = await api(`msgraph/authorize/${tenant}`, { tenant });
    expect(res.status).toBe(200);
    const body = (await res.json()) as { authorize_url: string; integration_id: string; expires_in: number };
    return { url: body.authorize_url, integrationId: body.integration_id };
  }

  /**
   * authorize → our start page (cookie) → Microsoft sign-in (the admin is signed in at the fake) →
   * callback with the code → admin consent for the signed-in tenant → callback: connected.
   */
  async function connect(tenant: string, entra: string, admin: string): Promise<string> {
    const started = await authorize(tenant);
    const start = new URL(started.url);
    expect(`${start.origin}${start.pathname}`).toBe(`${publicBase}/api/msgraph/oauth/start`);
    fake.signIn(entra, admin);
    const browser = new TestBrowser(fake.ca);
    const hops = await browser.follow(started.url);
    expect(hops.map((h) => h.status)).toEqual([302, 302, 302, 302, 200]);
    const [startHop, signInHop, codeHop, consentHop, done] = hops as [BrowserResponse, BrowserResponse, BrowserResponse, BrowserResponse, BrowserResponse];
    // The start page binds the flow to this browser with a __Host- cookie.
    expect(startHop.setCookies).toHaveLength(1);
    expect(startHop.setCookies[0]).toMatch(new RegExp(`^${COOKIE}=[\\w-]{43}; Path=/; Max-Age=600; Secure; HttpOnly; SameSite=Lax$`));
    // Microsoft's OpenID Connect sign-in: code flow with PKCE and a nonce.
    const signIn = new URL(signInHop.url);
    expect(`${signIn.origin}${signIn.pathname}`).toBe(`${fake.url}/organizations/oauth2/v2.0/authorize`);
    expect(Object.fromEntries(signIn.searchParams)).toMatchObject({ client_id: APP.clientId, response_type: 'code', scope: 'openid profile', redirect_uri: callbackBase(), code_challenge_method: 'S256' });
    expect(signIn.searchParams.get('nonce')).toMatch(/^[\w-]{43}$/);
    expect(signIn.searchParams.get('code_challenge')).toMatch(/^[\w-]{43}$/);
    expect(isCallback(codeHop) && new URL(codeHop.url).searchParams.has('code')).toBe(true);
    // Admin consent for exactly the tenant of the signed-in admin.
    const consent = new URL(consentHop.url);
    expect(`${consent.origin}${consent.pathname}`).toBe(`${fake.url}/${entra}/v2.0/adminconsent`);
    expect(consent.searchParams.get('client_id')).toBe(APP.clientId);
    expect(consent.searchParams.get('scope')).toBe('https://graph.microsoft.com/.default');
    expect(consent.searchParams.get('redirect_uri')).toBe(callbackBase());
    expect(isCallback(done)).toBe(true);
    expect(done.contentType).toMatch(/^text\/html/);
    expect(done.text).toContain('Microsoft 365 connected');
    // The page names what was connected to what.
    expect(done.text).toContain(entra);
    expect(done.text).toContain(tenant);
    expect(done.setCookies.some((c) => c.startsWith(`${COOKIE}=;`) && /Max-Age=0/.test(c))).toBe(true);
    expect(browser.cookie(new URL(publicBase).host, COOKIE)).toBeUndefined();
    // single use, even replayed with the cookie the browser had
    const replay = await new TestBrowser().get(done.url, { cookie: `${COOKIE}=${/=([\w-]+)/.exec(startHop.setCookies[0] as string)?.[1] ?? ''}` });
    expect(replay.status).toBe(400);
    expect(replay.text).toContain('expired or was already used');
    return started.integrationId;
  }

  it('reports the Graph connector up in /api/health (token from the fake authority)', async () => {
    const res = await api('health', { key: null });
    expect(res.status).toBe(200);
    expect(((await res.json()) as { checks: { connectors: Record<string, string> } }).checks.connectors.msgraph).toBe('up');
  });

  it('connects a tenant through admin consent: signed single-use state, integration active with the Entra tenant', async () => {
    integrationA = await connect('tenant-a', entraA, supportA);
    const list = await api('integrations/tenant-a?type=msgraph', { tenant: 'tenant-a' });
    const { integrations } = (await list.json()) as { integrations: Array<Record<string, unknown>> };
    expect(integrations).toEqual([expect.objectContaining({ integration_id: integrationA, type: 'msgraph', status: 'active', external_account_id: entraA })]);
  });

  it('a declined consent marks the integration in error and the page escapes what Microsoft sent', async () => {
    const entraC = fake.addTenant();
    fake.addUser(entraC, { mail: 'admin@c.example' });
    const started = await authorize('tenant-c');
    fake.signIn(entraC, 'admin@c.example');
    const browser = new TestBrowser(fake.ca);
    const hops = await browser.follow(started.url, 3); // start → sign-in → callback (code) → 302 to admin consent
    const consentUrl = new URL(hops[2]?.location as string);
    const state = consentUrl.searchParams.get('state') as string;
    // Microsoft sends the browser back with an error (and text we did not write).
    const cb = await browser.get(`${callbackBase()}?error=access_denied%3Cscript%3E&error_description=${encodeURIComponent('<script>alert(1)</script>')}&state=${encodeURIComponent(state)}`);
    expect(cb.status).toBe(400);
    expect(cb.text).not.toContain('<script');
    expect(cb.text).toContain('access_deniedscript');
    expect((await integrationOf('tenant-c', started.integrationId))?.status).toBe('error');
  });

  it('a non-admin is sent back by Microsoft without consent: nothing connected', async () => {
    const entraD = fake.addTenant();
    fake.addUser(entraD, { mail: 'user@d.example' });
    const started = await authorize('tenant-d');
    fake.signIn(entraD, 'user@d.example', { admin: false });
    const hops = await new TestBrowser(fake.ca).follow(started.url);
    const done = hops[hops.length - 1] as BrowserResponse;
    expect(done.status).toBe(400);
    expect(done.text).toContain('Consent not granted');
    expect(fake.consented(entraD)).toBe(false);
    expect(await accountLinks(entraD)).toEqual([]);
  });

  describe('onboarding cannot be steered to another organisation or another browser', () => {
    let victim: string;
    let attackerEntra: string;
    beforeAll(() => {
      // The victim organisation consented to our multi-tenant app earlier (for its own tenant of ours).
      victim = fake.addTenant();
      fake.addUser(victim, { mail: 'admin@victim.example' });
      fake.consent(victim);
      attackerEntra = fake.addTenant();
      fake.addUser(attackerEntra, { mail: 'admin@attacker.example' });
    });

    /** The `state` tenant X's flow exposes: in the authorize URL itself, or in the URL the start page sends the browser to. */
    async function stateFromAuthorize(url: string, browser: TestBrowser): Promise<string> {
      const direct = new URL(url).searchParams.get('state');
      if (direct) return direct;
      const first = await browser.get(url);
      return new URL(first.location as string).searchParams.get('state') as string;
    }

    it("a forged callback naming the victim's Entra tenant with tenant X's state connects nothing and links nothing", async () => {
      const started = await authorize('tenant-x');
      const browser = new TestBrowser(fake.ca);
      const state = await stateFromAuthorize(started.url, browser);
      const forged = `${callbackBase()}?admin_consent=True&tenant=${victim}&state=${encodeURIComponent(state)}`;
      for (const cookie of [undefined, null]) {
        const res = await browser.get(forged, cookie === null ? { cookie: null } : {});
        expect(res.status).toBeGreaterThanOrEqual(400);
        expect(res.status).toBeLessThan(500);
        expect(res.text).not.toContain('Microsoft 365 connected');
      }
      // The start link itself as a state is no better.
      const ticket = new URL(started.url).searchParams.get('ticket');
      if (ticket) expect((await browser.get(`${callbackBase()}?admin_consent=True&tenant=${victim}&state=${encodeURIComponent(ticket)}`)).status).toBe(400);
      expect(await accountLinks(victim)).toEqual([]);
      const row = await integrationOf('tenant-x', started.integrationId);
      expect(row?.status).not.toBe('active');
      expect(row?.external_account_id ?? null).not.toBe(victim);
    });

    it("signed in as its own organisation, tenant X still cannot swap in the victim's tenant at the consent callback", async () => {
      const started = await authorize('tenant-x');
      fake.signIn(attackerEntra, 'admin@attacker.example');
      const browser = new TestBrowser(fake.ca);
      const hops = await browser.follow(started.url, 3);
      const consentUrl = new URL(hops[2]?.location as string);
      expect(consentUrl.pathname).toBe(`/${attackerEntra}/v2.0/adminconsent`);
      const state = consentUrl.searchParams.get('state') as string;
      // Instead of going to Microsoft, the attacker answers the callback himself.
      const forged = await browser.get(`${callbackBase()}?admin_consent=True&tenant=${victim}&state=${encodeURIComponent(state)}`);
      expect(forged.status).toBe(400);
      expect(forged.text).not.toContain('Microsoft 365 connected');
      expect(await accountLinks(victim)).toEqual([]);
      expect((await integrationOf('tenant-x', started.integrationId))?.status).toBe('pending');
      // The refused forgery used nothing up: the genuine consent for the attacker's own organisation still completes.
      const genuine = await browser.follow(consentUrl.toString());
      expect(genuine[genuine.length - 1]?.text).toContain('Microsoft 365 connected');
      expect(await accountLinks(victim)).toEqual([]);
      expect((await integrationOf('tenant-x', started.integrationId))?.external_account_id).toBe(attackerEntra);
    });

    it.each([
      ['signed by a key not in the JWKS', { key: 'foreign' as const }],
      ['unsigned (alg none)', { key: 'none' as const }],
      ['for another audience', { claims: { aud: 'some-other-app' } }],
      ['with another nonce', { claims: { nonce: 'not-this-browsers-nonce' } }],
      ['issued by another tenant than it names', { claims: { tid: '00000000-0000-0000-0000-000000000001' } }],
      ['expired', { claims: { exp: Math.floor(Date.now() / 1000) - 600, iat: Math.floor(Date.now() / 1000) - 4200, nbf: Math.floor(Date.now() / 1000) - 4200 } }],
      ['without a tenant', { claims: { tid: undefined } }],
    ])('an id_token %s is refused: no admin consent asked, nothing connected', async (_what, tamper) => {
      const started = await authorize('tenant-x');
      fake.signIn(victim, 'admin@victim.example');
      fake.tamperNextIdToken(tamper);
      const before = fake.browserRequests.filter((r) => r.endpoint === 'adminconsent').length;
      const hops = await new TestBrowser(fake.ca).follow(started.url);
      const done = hops[hops.length - 1] as BrowserResponse;
      expect(isCallback(done)).toBe(true);
      expect(done.status).toBe(400);
      expect(done.text).toContain('sign-in was refused');
      expect(fake.browserRequests.filter((r) => r.endpoint === 'adminconsent').length).toBe(before);
      expect(await accountLinks(victim)).toEqual([]);
      expect((await integrationOf('tenant-x', started.integrationId))?.status).toBe('pending');
    });

    it('the callback only works in the browser that opened the start page: no cookie or another browser\'s cookie is refused and uses nothing up', async () => {
      const started = await authorize('tenant-y');
      fake.signIn(attackerEntra, 'admin@attacker.example');
      const alice = new TestBrowser(fake.ca);
      const hops = await alice.follow(started.url, 2); // start → Microsoft sign-in → 302 to our callback with the code
      const callback = hops[1]?.location as string;
      expect(callback.startsWith(callbackBase())).toBe(true);
      // Mallory opened a start page of her own: she has a cookie, just not Alice's.
      const mallory = new TestBrowser(fake.ca);
      await mallory.get((await authorize('tenant-y')).url);
      for (const res of [await new TestBrowser().get(callback), await mallory.get(callback)]) {
        expect(res.status).toBe(400);
        expect(res.text).toContain('started in another browser');
        expect(res.setCookies).toEqual([]);
      }
      expect((await integrationOf('tenant-y', started.integrationId))?.status).toBe('pending');
      // Alice's own callback still goes on to admin consent.
      const next = await alice.get(callback);
      expect(next.status).toBe(302);
      expect(new URL(next.location as string).pathname).toBe(`/${attackerEntra}/v2.0/adminconsent`);
    });

    it('the start link is single use', async () => {
      const started = await authorize('tenant-y');
      expect((await new TestBrowser().get(started.url)).status).toBe(302);
      const again = await new TestBrowser().get(started.url);
      expect(again.status).toBe(400);
      expect(again.setCookies).toEqual([]);
    });
  });

  it('watches a mailbox: Graph validates both URLs with a real handshake before the subscription exists', async () => {
    const res = await postJson(`msgraph/mailboxes/tenant-a/${integrationA}`, { address: 'Support@A.example' }, 'tenant-a');
    expect(res.status).toBe(201);
    const body = (await res.json()) as Record<string, unknown>;
    expect(body).toMatchObject({ address: supportA, status: 'active' });

    const validations = fake.deliveries.filter((d) => d.kind === 'validation');
    expect(validations.map((d) => d.url).sort()).toEqual([`${publicBase}/api/webhooks/graph`, `${publicBase}/api/webhooks/graph/lifecycle`]);
    expect(validations.every((d) => d.ok && d.status === 200)).toBe(true);

    const subs = fake.subscriptions().filter((s) => s.tenantId === entraA);
    expect(subs).toHaveLength(1);
    const sub = subs[0] as (typeof subs)[number];
    expect(body.subscription_id).toBe(sub.id);
    expect(sub).toMatchObject({ changeType: 'created', notificationUrl: `${publicBase}/api/webhooks/graph`, lifecycleNotificationUrl: `${publicBase}/api/webhooks/graph/lifecycle`, immutableIds: true });
    expect(sub.resource).toMatch(/^users\/[0-9a-f-]{36}\/mailFolders\('inbox'\)\/messages$/);
    expect(sub.clientState?.length).toBeGreaterThanOrEqual(40);

    // Only the hash of the clientState is stored in the table.
    const clients = new StorageClients({ kind: 'connectionString', connectionString: azurite.connectionString });
    const row = await new TenantTable<Record<string, string>>(clients.table(TABLES.subscriptions)).get(partitionKey.tenant(tenantId('tenant-a')), sub.id);
    expect(row?.data.clientStateHash).toBe(createHash('sha256').update(sub.clientState as string).digest('hex'));
    expect(JSON.stringify(row?.data)).not.toContain(sub.clientState as string);

    // Watching it again changes nothing.
    const again = await postJson(`msgraph/mailboxes/tenant-a/${integrationA}`, { address: supportA }, 'tenant-a');
    expect(again.status).toBe(200);
    expect(fake.subscriptions().filter((s) => s.tenantId === entraA)).toHaveLength(1);

    const list = await api(`msgraph/mailboxes/tenant-a/${integrationA}`, { tenant: 'tenant-a' });
    expect(((await list.json()) as { mailboxes: unknown[] }).mailboxes).toEqual([expect.objectContaining({ address: supportA, status: 'active', subscription_id: sub.id })]);
  });

  it('answers the validation handshake with the decoded token as text/plain on both URLs', async () => {
    for (const p of ['webhooks/graph', 'webhooks/graph/lifecycle']) {
      const res = await api(`${p}?validationToken=${encodeURIComponent('Validation: a b+c&d')}`, { key: null, method: 'POST', headers: { 'content-type': 'text/plain' } });
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toMatch(/^text\/plain/);
      expect(await res.text()).toBe('Validation: a b+c&d');
    }
  });

  let first: FakeMessage;
  let ticketEvent: CloudEventJson;

  it('a new email becomes ticket.create_requested on engine-events (notification answered 202)', async () => {
    const { message, deliveries } = await fake.deliverMail(entraA, supportA, {
      from: { address: customer, name: 'Ann' },
      subject: 'FW: Printer on floor 3 is broken',
      html: '<p>Hello,</p><p>the printer <b>does not</b> print.</p>',
      importance: 'high',
      attachments: [{ name: 'photo.jpg', contentType: 'image/jpeg', size: 2048 }],
    });
    first = message;
    expect(deliveries).toEqual([expect.objectContaining({ kind: 'notification', status: 202, ok: true })]);
    ticketEvent = await nextEvent();
    expect(ticketEvent).toMatchObject({
      specversion: '1.0',
      type: 'com.itil-next.connectors.ticket.create_requested.v1',
      source: '/connectors/msgraph/tenants/tenant-a',
      tenantid: 'tenant-a',
      integrationid: integrationA,
      subject: `conversations/${message.conversationId}`,
    });
    expect(ticketEvent.data).toMatchObject({
      source: 'email',
      mailbox: supportA,
      subject: 'Printer on floor 3 is broken',
      description: 'Hello,\n\nthe printer does not print.',
      from: { address: customer, name: 'Ann' },
      priority: 'high',
      internetMessageId: message.internetMessageId,
      conversationId: message.conversationId,
      messageId: message.immutableId,
      attachments: [expect.objectContaining({ name: 'photo.jpg', size: 2048 })],
    });
  });

  let second: FakeMessage;

  it('a second email in the same conversation becomes ticket.comment_added pointing at the request', async () => {
    const { message } = await fake.deliverMail(entraA, supportA, {
      from: customer,
      subject: 'RE: FW: Printer on floor 3 is broken',
      html: '<p>It also jams now.</p><hr><p>From: Ann</p><p>Hello, the printer does not print.</p>',
      conversationId: first.conversationId,
      inReplyTo: first.internetMessageId,
      // Graph's times have whole seconds; the customer answers a minute later.
      receivedAt: new Date(Date.parse(first.receivedDateTime) + 60_000),
    });
    second = message;
    const ev = await nextEvent();
    expect(ev.type).toBe('com.itil-next.connectors.ticket.comment_added.v1');
    expect(ev.data).toMatchObject({ conversationId: first.conversationId, ticketRef: ticketEvent.id, body: 'It also jams now.', messageId: message.immutableId });
  });

  it('the engine replies through our API and the reply lands in the same conversation, answering the latest customer mail', async () => {
    const res = await postJson(`msgraph/reply/tenant-a/${integrationA}`, { conversation_id: first.conversationId, body_html: '<p>A technician is on the way.</p>', ticket_id: 'T-100' }, 'tenant-a', { 'idempotency-key': 'reply-1' });
    expect(res.status).toBe(202);
    expect(await res.json()).toMatchObject({ status: 'sent', from_address: supportA, replied_to_message_id: second.immutableId });
    const sent = fake.messages(entraA, supportA, 'sentitems');
    expect(sent).toHaveLength(1);
    expect(sent[0]).toMatchObject({ conversationId: first.conversationId, body: { contentType: 'html', content: '<p>A technician is on the way.</p>' } });
    expect(sent[0]?.toRecipients[0]?.emailAddress.address).toBe(customer);
    expect(sent[0]?.internetMessageHeaders.find((h) => h.name === 'In-Reply-To')?.value).toBe(second.internetMessageId);

    // The same Idempotency-Key does not send a second mail.
    const dup = await postJson(`msgraph/reply/tenant-a/${integrationA}`, { conversation_id: first.conversationId, body_html: '<p>A technician is on the way.</p>' }, 'tenant-a', { 'idempotency-key': 'reply-1' });
    expect(dup.status).toBe(200);
    expect(fake.messages(entraA, supportA, 'sentitems')).toHaveLength(1);

    // Only a watched mailbox may send.
    const spoof = await postJson(`msgraph/reply/tenant-a/${integrationA}`, { conversation_id: first.conversationId, body_html: '<p>x</p>', from_address: 'ceo@a.example' }, 'tenant-a');
    expect(spoof.status).toBe(422);
    expect(fake.messages(entraA, supportA, 'sentitems')).toHaveLength(1);
  });

  // Replies tenant A's support mailbox has sent so far (the isolation checks below count them).
  let sentByA = 1;

  it("an outsider's message threaded into the conversation does not make them the reply's recipient: the requester gets it", async () => {
    const outsider = 'mallory@outsider.example';
    const { message: intruding } = await fake.deliverMail(entraA, supportA, {
      from: outsider,
      subject: 'RE: Printer on floor 3 is broken',
      html: '<p>Please send me the details.</p>',
      conversationId: first.conversationId,
      inReplyTo: second.internetMessageId,
      receivedAt: new Date(Date.parse(first.receivedDateTime) + 120_000),
    });
    const comment = await nextEvent();
    expect(comment.data).toMatchObject({ conversationId: first.conversationId, from: { address: outsider }, messageId: intruding.immutableId });

    const res = await postJson(`msgraph/reply/tenant-a/${integrationA}`, { conversation_id: first.conversationId, body_html: '<p>Fixed.</p>' }, 'tenant-a', { 'idempotency-key': 'reply-2' });
    expect(res.status).toBe(202);
    // Threaded under the requester's latest mail, not the outsider's.
    expect(await res.json()).toMatchObject({ status: 'sent', replied_to_message_id: second.immutableId });
    const sent = fake.messages(entraA, supportA, 'sentitems');
    expect(sent).toHaveLength(++sentByA);
    const reply = sent.at(-1);
    expect(reply?.body.content).toBe('<p>Fixed.</p>');
    expect(reply?.toRecipients.map((r) => r.emailAddress.address)).toEqual([customer]);
    expect(reply?.ccRecipients).toEqual([]);
    expect(reply?.internetMessageHeaders.find((h) => h.name === 'In-Reply-To')?.value).toBe(second.internetMessageId);

    // Addresses the engine names are the recipients instead.
    const named = await postJson(`msgraph/reply/tenant-a/${integrationA}`, { conversation_id: first.conversationId, body_html: '<p>FYI</p>', to: ['Colleague@Customer.example'] }, 'tenant-a', { 'idempotency-key': 'reply-3' });
    expect(named.status).toBe(202);
    expect(fake.messages(entraA, supportA, 'sentitems')).toHaveLength(++sentByA);
    expect(fake.messages(entraA, supportA, 'sentitems').at(-1)?.toRecipients.map((r) => r.emailAddress.address)).toEqual(['colleague@customer.example']);
  });

  it('an auto-reply, a bounce and a redelivered notification produce nothing', async () => {
    const ignoredBefore = logLines('graph mail ignored').length;
    const dupBefore = logLines('"reason":"duplicate"').length;
    await fake.deliverMail(entraA, supportA, { from: customer, subject: 'Automatic reply: Printer', text: 'I am out of office', headers: { 'Auto-Submitted': 'auto-replied' } });
    await fake.deliverMail(entraA, supportA, { from: 'MAILER-DAEMON@mx.customer.example', subject: 'Undeliverable: Printer', text: 'could not deliver' });
    await fake.notifyAgain(first);
    await waitForLog('graph mail ignored', ignoredBefore + 2);
    await waitForLog('"reason":"duplicate"', dupBefore + 1);
    expect(logLines('graph mail ignored').slice(ignoredBefore).map((l) => /"reason":"([a-z-]+)"/.exec(l)?.[1]).sort()).toEqual(['auto-reply', 'bounce']);
    expect(await queueLength(azurite.connectionString, 'engine-events')).toBe(0);
  });

  it('a dropped notification is recovered by delta when Graph sends a `missed` lifecycle event', async () => {
    const { message, deliveries } = await fake.deliverMail(entraA, supportA, { from: 'bob@customer.example', subject: 'VPN down', text: 'VPN is down' }, { notify: false });
    expect(deliveries).toEqual([]);
    const sub = fake.subscriptions().find((s) => s.tenantId === entraA) as ReturnType<FakeGraph['subscriptions']>[number];
    const [lc] = await fake.lifecycle(sub.id, 'missed');
    expect(lc).toMatchObject({ kind: 'lifecycle', status: 202 });
    const ev = await nextEvent();
    expect(ev.type).toBe('com.itil-next.connectors.ticket.create_requested.v1');
    expect(ev.data).toMatchObject({ messageId: message.immutableId, subject: 'VPN down' });
  });

  it('a dropped notification is recovered by the timer’s delta backstop', async () => {
    const { message } = await fake.deliverMail(entraA, supportA, { from: 'carl@customer.example', subject: 'Laptop', text: 'screen flickers' }, { notify: false });
    const run = await fetch(`${host.url}/admin/functions/graphSubscriptionTimer`, { method: 'POST', headers: { 'x-functions-key': host.masterKey, 'content-type': 'application/json' }, body: '{"input":""}' });
    expect(run.status).toBeLessThan(300);
    const ev = await nextEvent();
    expect(ev.data).toMatchObject({ messageId: message.immutableId, subject: 'Laptop' });
  });

  it('reauthorizationRequired reauthorizes; subscriptionRemoved recreates the subscription, which then delivers', async () => {
    remember();
    const sub = fake.subscriptions().find((s) => s.tenantId === entraA) as ReturnType<FakeGraph['subscriptions']>[number];
    await fake.lifecycle(sub.id, 'reauthorizationRequired');
    await waitFor('reauthorize call', () => (sub.reauthorizations === 1 ? true : undefined));

    await fake.lifecycle(sub.id, 'subscriptionRemoved');
    const fresh = await waitFor('a new subscription', () => fake.subscriptions().find((s) => s.tenantId === entraA && s.id !== sub.id));
    expect(fresh.clientState).not.toBe(sub.clientState);
    await waitFor('mailbox to point at the new subscription', async () => {
      const list = await api(`msgraph/mailboxes/tenant-a/${integrationA}`, { tenant: 'tenant-a' });
      const { mailboxes } = (await list.json()) as { mailboxes: Array<{ subscription_id: string }> };
      return mailboxes[0]?.subscription_id === fresh.id ? true : undefined;
    });
    const { message } = await fake.deliverMail(entraA, supportA, { from: customer, subject: 'After recreate', text: 'still there?' });
    const ev = await nextEvent();
    expect(ev.data).toMatchObject({ messageId: message.immutableId });

    // The old subscription's clientState no longer opens the door.
    const before = logLines('"reason":"unknown subscription"').length;
    await postJson('webhooks/graph', { value: [{ subscriptionId: sub.id, clientState: sub.clientState, tenantId: entraA, changeType: 'created', resourceData: { id: message.immutableId } }] }, '');
    await waitForLog('"reason":"unknown subscription"', before + 1);
  });

  it('forged notifications are dropped: wrong clientState, unknown subscription, wrong Entra tenant; malformed JSON is a 400', async () => {
    const sub = fake.subscriptions().find((s) => s.tenantId === entraA) as ReturnType<FakeGraph['subscriptions']>[number];
    const queuedBefore = logLines('graph notification queued').length;
    const post = (body: string) => api('webhooks/graph', { key: null, method: 'POST', headers: { 'content-type': 'application/json' }, body });
    const item = (over: Record<string, unknown>) => JSON.stringify({ value: [{ subscriptionId: sub.id, clientState: sub.clientState, tenantId: entraA, changeType: 'created', resourceData: { id: 'forged-message-id' }, ...over }] });

    const wrongState = await post(item({ clientState: 'guess' }));
    expect(wrongState.status).toBe(202);
    const unknown = await post(item({ subscriptionId: '00000000-0000-0000-0000-000000000000' }));
    expect(unknown.status).toBe(202);
    const otherTenant = await post(item({ tenantId: entraB }));
    expect(otherTenant.status).toBe(202);
    const missingState = await post(item({ clientState: null }));
    expect(missingState.status).toBe(202);
    expect((await post('{"value": [')).status).toBe(400);
    expect((await post('"just a string"')).status).toBe(400);

    await waitForLog('"reason":"clientState mismatch"', 2);
    expect(logLines('graph notification queued').length).toBe(queuedBefore);
    expect(await queueLength(azurite.connectionString, 'engine-events')).toBe(0);
    const dropped = logLines('graph notification dropped');
    for (const l of dropped) expect(l).not.toContain(sub.clientState as string);
  });

  describe('tenant isolation', () => {
    beforeAll(async () => {
      integrationB = await connect('tenant-b', entraB, supportB);
      const res = await postJson(`msgraph/mailboxes/tenant-b/${integrationB}`, { address: supportB }, 'tenant-b');
      expect(res.status).toBe(201);
    });

    it("tenant B cannot see, change or reply through tenant A's integration", async () => {
      expect((await api(`msgraph/mailboxes/tenant-a/${integrationA}`, { tenant: 'tenant-b' })).status).toBe(403);
      expect((await api(`msgraph/mailboxes/tenant-b/${integrationA}`, { tenant: 'tenant-b' })).status).toBe(404);
      expect((await api(`msgraph/mailboxes/tenant-b/${integrationA}?address=${supportA}`, { tenant: 'tenant-b', method: 'DELETE' })).status).toBe(404);
      expect((await postJson(`msgraph/mailboxes/tenant-b/${integrationA}`, { address: supportA }, 'tenant-b')).status).toBe(404);
      expect((await postJson(`msgraph/reply/tenant-b/${integrationA}`, { conversation_id: first.conversationId, body_html: '<p>x</p>' }, 'tenant-b')).status).toBe(404);
      // B's own integration cannot send from A's mailbox or reply into A's conversation.
      const cross = await postJson(`msgraph/reply/tenant-b/${integrationB}`, { conversation_id: first.conversationId, body_html: '<p>x</p>', from_address: supportA }, 'tenant-b');
      expect(cross.status).toBe(422);
      const noThread = await postJson(`msgraph/reply/tenant-b/${integrationB}`, { conversation_id: first.conversationId, body_html: '<p>x</p>' }, 'tenant-b');
      expect(noThread.status).toBe(404);
      expect(fake.messages(entraA, supportA, 'sentitems')).toHaveLength(sentByA);
      expect(fake.messages(entraB, supportB, 'sentitems')).toHaveLength(0);
      const listB = await api(`msgraph/mailboxes/tenant-b/${integrationB}`, { tenant: 'tenant-b' });
      expect(((await listB.json()) as { mailboxes: Array<{ address: string }> }).mailboxes.map((m) => m.address)).toEqual([supportB]);
    });

    it("B's mail becomes B's event; A's clientState does not open B's subscription", async () => {
      const { message } = await fake.deliverMail(entraB, supportB, { from: customer, subject: 'B issue', text: 'b' });
      const ev = await nextEvent();
      expect(ev).toMatchObject({ tenantid: 'tenant-b', integrationid: integrationB, source: '/connectors/msgraph/tenants/tenant-b' });
      expect(ev.data).toMatchObject({ messageId: message.immutableId, mailbox: supportB });

      const subA = fake.subscriptions().find((s) => s.tenantId === entraA) as ReturnType<FakeGraph['subscriptions']>[number];
      const subB = fake.subscriptions().find((s) => s.tenantId === entraB) as ReturnType<FakeGraph['subscriptions']>[number];
      const before = logLines('"reason":"clientState mismatch"').length;
      const res = await postJson('webhooks/graph', { value: [{ subscriptionId: subB.id, clientState: subA.clientState, tenantId: entraB, changeType: 'created', resourceData: { id: message.immutableId } }] }, '');
      expect(res.status).toBe(202);
      await waitForLog('"reason":"clientState mismatch"', before + 1);
      expect(await queueLength(azurite.connectionString, 'engine-events')).toBe(0);
    });
  });

  it('unwatching deletes the subscription at Graph', async () => {
    remember();
    const res = await api(`msgraph/mailboxes/tenant-b/${integrationB}?address=${supportB}`, { tenant: 'tenant-b', method: 'DELETE' });
    expect(res.status).toBe(204);
    expect(fake.subscriptions().filter((s) => s.tenantId === entraB)).toHaveLength(0);
  });

  it('never writes the app secret, a clientState or an access token to the log', () => {
    const out = host.output();
    expect(out).not.toContain(APP.clientSecret);
    expect(out).not.toContain('fake-graph-token.');
    remember();
    expect(seenStates.size).toBeGreaterThanOrEqual(3);
    for (const s of seenStates) expect(out).not.toContain(s);
  });
});
