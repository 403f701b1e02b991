import { mkdtempSync, rmSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import os from 'node:os';
import { startAzurite, type AzuriteInstance } from '../../runner/azurite';
import { LocalSecretStore, tenantSecretName } from '../../src/secrets';
import { eventKey, WEBHOOK_CLAIM_SOURCE, WEBHOOK_CLAIM_STALE_MS, webhookClaimId, webhookEventSchema } from '../../src/connectors/hubspot';
import { ProcessedStore, StorageClients, TABLES, TenantTable, integrationId, partitionKey, tenantId, type ProcessedRow } from '../../src/storage';
import { startFakeHubSpot, type FakeHubSpot } from '../fakes/hubspot';
import { TestBrowser } from '../helpers/browser';
import { checkEngineEventMessage } from '../helpers/engineEvents';
import { TEST_JWT_SECRET } from '../helpers/jwt';
import { apiClient, startRunner, type RunningHost, localAppEnv } from '../helpers/runner';

const PUBLIC_BASE_URL = 'http://localhost:7071';
const REDIRECT_URI = `${PUBLIC_BASE_URL}/api/hubspot/oauth/callback`;
const WEBHOOK_PATH = '/api/webhooks/hubspot';
const COOKIE = '__Host-itil-oauth-hubspot';

interface CloudEventLike {
  type: string;
  subject?: string;
  tenantid: string;
  integrationid?: string;
  data: { source?: string; objectId?: string; properties?: Record<string, string | null> };
}

/**
 * The HubSpot connector through the real app under the local runner, against the fake HubSpot:
 * OAuth connect → status → signed webhook → engine event → contacts push → disconnect, and what a
 * second tenant may not do. HubSpot signs the public target URL; the runner listens elsewhere, so
 * deliveries are signed for PUBLIC_BASE_URL and sent to the runner, as behind Azure's front end.
 */
describe('HubSpot connector end to end', () => {
  let azurite: AzuriteInstance;
  let fake: FakeHubSpot;
  let host: RunningHost;
  let runnerEnv: Record<string, string | undefined> = {};
  let secretDir: string;
  let clients: StorageClients;
  let secrets: LocalSecretStore;
  let hubId: number;
  let integration = '';
  const localKey = randomBytes(32);
  const A = 'tenant-a';
  const B = 'tenant-b';

  beforeAll(async () => {
    secretDir = mkdtempSync(`${os.tmpdir()}/itil-secrets-`);
    azurite = await startAzurite();
    fake = await startFakeHubSpot();
    clients = new StorageClients({ kind: 'connectionString', connectionString: azurite.connectionString });
    secrets = new LocalSecretStore({ key: localKey, directory: secretDir });
    hubId = fake.addPortal({ hubDomain: 'acme-support.hubspot.com' }).hubId;
    fake.setPipelines(hubId, [{ id: '0', label: 'Support', stages: [{ id: '1', label: 'New' }, { id: '2', label: 'In progress' }] }]);
    fake.seed(hubId, 'tickets', 25);
    runnerEnv = {
      ...localAppEnv({ storage: azurite.connectionString, secretKey: localKey.toString('base64'), secretDir: secretDir, jwtSecret: TEST_JWT_SECRET, publicBaseUrl: PUBLIC_BASE_URL }),
      HUBSPOT_CLIENT_ID: fake.clientId,
      HUBSPOT_CLIENT_SECRET: fake.clientSecret,
      HUBSPOT_REDIRECT_URI: REDIRECT_URI,
      HUBSPOT_API_BASE_URL: fake.url,
    };
    host = await startRunner({ env: runnerEnv });
  }, 120_000);

  afterAll(async () => {
    await host?.stop();
    await fake?.close();
    await azurite?.stop();
    rmSync(secretDir, { recursive: true, force: true });
  });

  const api = apiClient(() => host, { tenant: A });

  /** Log lines the webhook function wrote, parsed. */
  const webhookLogs = () =>
    host
      .output()
      .split('\n')
      .filter((l) => l.includes('"HubSpot webhook'))
      .map((l) => JSON.parse(l.slice(l.indexOf('{'))) as { msg: string; queued?: number; duplicates?: number; reason?: string; unrouted?: number; deferred?: number; accepted?: number; messages?: number });
  const fannedOut = () => webhookLogs().filter((l) => l.msg === 'HubSpot webhook delivery fanned out');

  /** Reads engine-events until `match` is seen (others are dropped); the runner's workers fill it. */
  async function nextEngineEvent(match: (e: CloudEventLike) => boolean, timeoutMs = 60_000): Promise<CloudEventLike> {
    const q = clients.queue('engine-events');
    await q.createIfNotExists();
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      const res = await q.receiveMessages({ numberOfMessages: 32, visibilityTimeout: 60 });
      for (const m of res.receivedMessageItems) {
        await q.deleteMessage(m.messageId, m.popReceipt);
        const e = JSON.parse(Buffer.from(m.messageText, 'base64').toString('utf8')) as CloudEventLike;
        await checkEngineEventMessage(e);
        if (match(e)) return e;
      }
      if (res.receivedMessageItems.length === 0) await new Promise((r) => setTimeout(r, 250));
    }
    throw new Error(`no matching engine event within ${timeoutMs} ms\n${host.output().slice(-3000)}`);
  }

  async function waitFor<T>(what: string, fn: () => Promise<T | undefined>, timeoutMs = 60_000): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const v = await fn();
      if (v !== undefined) return v;
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}\n${host.output().slice(-3000)}`);
      await new Promise((r) => setTimeout(r, 300));
    }
  }

  const send = (events: Array<Record<string, unknown>>, opts: { timestamp?: number; tamper?: boolean } = {}) =>
    fake.sendWebhook(`${host.url}${WEBHOOK_PATH}`, events, { uriForSignature: `${PUBLIC_BASE_URL}${WEBHOOK_PATH}`, ...opts });

  /** The app's public URL as the runner serves it (it listens elsewhere than PUBLIC_BASE_URL). */
  const local = (u: string) => {
    const x = new URL(u);
    return `${host.url}${x.pathname}${x.search}`;
  };
  /** The browser opens the link authorize returned: our start page sets the cookie and sends it to HubSpot. */
  async function openStart(authorizationUrl: string, browser = new TestBrowser()) {
    const res = await browser.get(local(authorizationUrl));
    expect(res.status).toBe(302);
    const consent = new URL(res.location as string);
    return { browser, consent, state: consent.searchParams.get('state') as string, setCookie: res.setCookies[0] as string };
  }
  const callbackUrl = (params: Record<string, string>) => `${host.url}/api/hubspot/oauth/callback?${new URLSearchParams(params).toString()}`;

  it('authorize → start page → consent → callback: the integration is active, its portal indexed, its first full sync queued', async () => {
    const res = await api(`hubspot/authorize/${A}`);
    expect(res.status).toBe(200);
    const body = (await res.json()) as { success: boolean; authorization_url: string; integration_id: string; tenant_id: string };
    expect(body).toMatchObject({ success: true, tenant_id: A, integration_id: expect.any(String) });
    integration = body.integration_id;
    const start = new URL(body.authorization_url);
    expect(start.origin + start.pathname).toBe(`${PUBLIC_BASE_URL}/api/hubspot/oauth/start`);
    expect(start.searchParams.get('state')).toBeNull();
    const { browser, consent, state, setCookie } = await openStart(body.authorization_url);
    expect(consent.origin + consent.pathname).toBe('https://app.hubspot.com/oauth/authorize');
    expect(consent.searchParams.get('redirect_uri')).toBe(REDIRECT_URI);
    expect(setCookie).toMatch(new RegExp(`^${COOKIE}=[\\w-]{43}; Path=/; Max-Age=600; Secure; HttpOnly; SameSite=Lax$`));
    const cookie = setCookie.split(';')[0] as string;

    // The user consents at HubSpot, which redirects the browser to our callback with a code.
    const code = fake.issueAuthorizationCode(hubId, REDIRECT_URI);
    const cb = await browser.get(callbackUrl({ code, state }));
    expect(cb.status).toBe(200);
    expect(cb.contentType).toMatch(/^text\/html/);
    expect(cb.text).toContain('HubSpot connected');
    expect(cb.text).toContain('acme-support.hubspot.com');
    // The page names the portal and the tenant of ours it was connected to; the cookie is cleared.
    expect(cb.text).toContain(`portal ${hubId}`);
    expect(cb.text).toContain(`tenant ${A}`);
    expect(cb.setCookies).toEqual([expect.stringMatching(new RegExp(`^${COOKIE}=; Path=/; Max-Age=0; Secure; HttpOnly; SameSite=Lax$`))]);

    // The same state again (a replayed callback, even with the browser's cookie) is refused.
    const replay = await new TestBrowser().get(callbackUrl({ code: fake.issueAuthorizationCode(hubId, REDIRECT_URI), state }), { cookie });
    expect(replay.status).toBe(400);
    expect(replay.text).toContain('was not connected');
    expect(replay.text).toContain('already been used');

    const list = (await (await api(`hubspot/integrations/${A}`)).json()) as { integrations: Array<{ integration_id: string; status: string; hub_id: string; auth_type: string }> };
    expect(list.integrations).toEqual([expect.objectContaining({ integration_id: integration, status: 'active', hub_id: String(hubId), auth_type: 'oauth' })]);

    const index = new TenantTable(clients.table(TABLES.accountIndex));
    expect(await index.get(partitionKey.accountIndex('hubspot', String(hubId)), `${A}:${integration}`)).toBeDefined();
    expect(await secrets.get(tenantSecretName(tenantId(A), integrationId(integration), 'refresh-token'))).toMatch(/^na1-/);

    // The connect queued a full sync on hubspot-sync; the runner's sync worker is already running it.
    const sync = await waitFor('the first full sync', async () => {
      const s = (await (await api(`hubspot/sync/${A}/${integration}`)).json()) as { sync: { sync_type: string; trigger: string; state: string } | null };
      return s.sync && s.sync.state === 'completed' ? s.sync : undefined;
    });
    expect(sync).toMatchObject({ sync_type: 'full', trigger: 'connect' });
  }, 120_000);

  it('the callback also accepts a POSTed form, and the connection belongs only to the tenant that asked for it', async () => {
    const C = 'tenant-c';
    const portal = fake.addPortal({ hubDomain: 'gamma.hubspot.com' });
    const auth = (await (await api(`hubspot/authorize/${C}`, { tenant: C })).json()) as { authorization_url: string; integration_id: string };
    const { browser, state } = await openStart(auth.authorization_url);
    const form = new URLSearchParams({ code: fake.issueAuthorizationCode(portal.hubId, REDIRECT_URI), state });
    const cookie = browser.cookieHeader(host.url) as string;
    const cb = await api('hubspot/oauth/callback', { anonymous: true, method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', cookie }, body: form.toString() });
    expect(cb.status).toBe(200);
    expect(await cb.text()).toContain('HubSpot connected');
    const listC = (await (await api(`hubspot/integrations/${C}`, { tenant: C })).json()) as { integrations: Array<{ integration_id: string; status: string; hub_id: string }> };
    expect(listC.integrations).toEqual([expect.objectContaining({ integration_id: auth.integration_id, status: 'active', hub_id: String(portal.hubId) })]);
    // Tenant A sees none of it.
    const listA = (await (await api(`hubspot/integrations/${A}`)).json()) as { integrations: Array<{ integration_id: string }> };
    expect(listA.integrations.map((x) => x.integration_id)).not.toContain(auth.integration_id);
  }, 120_000);

  it('the callback is taken only from the browser that opened the start page: without its cookie or with another browser\'s, nothing changes', async () => {
    const D = 'tenant-d';
    const portal = fake.addPortal({ hubDomain: 'delta.hubspot.com' });
    const auth = (await (await api(`hubspot/authorize/${D}`, { tenant: D })).json()) as { authorization_url: string; integration_id: string };
    // The state of Alice's flow, wherever the flow exposes it (in the link itself, or where the start page sends her).
    const flowState = async (url: string, browser: TestBrowser) => new URL(url).searchParams.get('state') ?? (await openStart(url, browser)).state;
    const alice = { browser: new TestBrowser(), state: '' };
    alice.state = await flowState(auth.authorization_url, alice.browser);
    // Mallory opened a start page of her own: she has a cookie, just not Alice's.
    const mallory = { browser: new TestBrowser() };
    await flowState(((await (await api(`hubspot/authorize/${D}`, { tenant: D })).json()) as { authorization_url: string }).authorization_url, mallory.browser);
    const index = new TenantTable(clients.table(TABLES.accountIndex));
    const rowsOfPortal = async () => {
      const rows = [];
      for await (const r of index.all(partitionKey.accountIndex('hubspot', String(portal.hubId)))) rows.push(r);
      return rows;
    };
    for (const [who, cookie] of [['no cookie', null], ["another browser's cookie", mallory.browser.cookieHeader(host.url) ?? null]] as const) {
      const res = await new TestBrowser().get(callbackUrl({ code: fake.issueAuthorizationCode(portal.hubId, REDIRECT_URI), state: alice.state }), { cookie });
      expect([who, res.status]).toEqual([who, 400]);
      expect(res.text).toContain('in this browser');
      expect(res.setCookies).toEqual([]);
    }
    const list = (await (await api(`hubspot/integrations/${D}`, { tenant: D })).json()) as { integrations: Array<{ integration_id: string; status: string }> };
    expect(list.integrations.find((i) => i.integration_id === auth.integration_id)?.status).toBe('pending');
    expect(await rowsOfPortal()).toEqual([]);
    // Nothing was used up: Alice's own browser completes it.
    const ok = await alice.browser.get(callbackUrl({ code: fake.issueAuthorizationCode(portal.hubId, REDIRECT_URI), state: alice.state }));
    expect(ok.status).toBe(200);
    expect(ok.text).toContain(`tenant ${D}`);
    expect(await rowsOfPortal()).toHaveLength(1);
    // A start link works once.
    const again = await new TestBrowser().get(local(auth.authorization_url));
    expect(again.status).toBe(400);
    expect(again.setCookies).toEqual([]);
  }, 120_000);

  it('status reports the live connection', async () => {
    const res = await api(`hubspot/status/${A}/${integration}`);
    expect(res.status).toBe(200);
    const s = (await res.json()) as Record<string, unknown>;
    expect(Object.keys(s).sort()).toEqual(['connected', 'expires_in', 'hub_domain', 'hub_id', 'scopes', 'status', 'token_type']);
    expect(s).toMatchObject({ connected: true, hub_id: String(hubId), hub_domain: 'acme-support.hubspot.com', status: 'active' });
    expect(s.scopes).toEqual(expect.arrayContaining(['tickets']));
    expect(s.expires_in).toBeGreaterThan(0);
  });

  it('a signed webhook about a changed ticket becomes a ticket.updated CloudEvent on engine-events', async () => {
    await clients.queue('engine-events').clearMessages();
    const [ticket] = fake.seed(hubId, 'tickets', 1) as [string];
    // First the creation (so the store holds it), then a change.
    expect((await send([fake.webhookEvent(hubId, { subscriptionType: 'ticket.creation', objectId: ticket })])).status).toBe(204);
    await nextEngineEvent((e) => e.type.endsWith('ticket.created.v1') && e.subject === `tickets/${ticket}`);

    fake.upsertObject(hubId, 'tickets', ticket, { subject: 'VPN down for the whole floor', hs_pipeline_stage: '2' });
    const res = await send([fake.webhookEvent(hubId, { subscriptionType: 'ticket.propertyChange', objectId: ticket, propertyName: 'subject', propertyValue: 'VPN down for the whole floor' })]);
    expect(res.status).toBe(204);
    const ev = await nextEngineEvent((e) => e.type.endsWith('ticket.updated.v1') && e.subject === `tickets/${ticket}`);
    expect(ev).toMatchObject({ tenantid: A, integrationid: integration, data: { source: 'webhook', objectId: ticket } });
    expect(ev.data.properties?.subject).toBe('VPN down for the whole floor');
    // The store serves the new version (the tickets endpoint reads it, with no HubSpot call).
    const page = (await (await api(`hubspot/tickets/${A}/${integration}?limit=100`)).json()) as { tickets: Array<{ id: string; properties: Record<string, string> }> };
    expect(page.tickets.find((t) => t.id === ticket)?.properties.subject).toBe('VPN down for the whole floor');
  }, 120_000);

  it('forged, stale, truncated, oversized and replayed deliveries are rejected or ignored, with nothing queued', async () => {
    const [ticket] = fake.seed(hubId, 'tickets', 1) as [string];
    const event = fake.webhookEvent(hubId, { subscriptionType: 'ticket.propertyChange', objectId: ticket, propertyName: 'subject' });
    const accepted = () => webhookLogs().filter((l) => l.msg === 'HubSpot webhook accepted');
    const before = accepted().length;

    expect((await send([event], { tamper: true })).status).toBe(401);
    expect((await send([event], { timestamp: Date.now() - 5 * 60_000 - 5_000 })).status).toBe(401);
    // Signed with another secret: a forgery.
    const body = JSON.stringify([event]);
    const ts = Date.now();
    const forged = await fetch(`${host.url}${WEBHOOK_PATH}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-hubspot-signature-v3': 'c2lnbmVkIHdpdGggYW5vdGhlciBzZWNyZXQgMDAwMDA=', 'x-hubspot-request-timestamp': String(ts) },
      body,
    });
    expect(forged.status).toBe(401);
    // Truncated: the signature is for the whole body.
    const sig = fake.signV3('POST', `${PUBLIC_BASE_URL}${WEBHOOK_PATH}`, body, ts);
    const truncated = await fetch(`${host.url}${WEBHOOK_PATH}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-hubspot-signature-v3': sig, 'x-hubspot-request-timestamp': String(ts) },
      body: body.slice(0, -10),
    });
    expect(truncated.status).toBe(401);
    // Oversized: refused before any signature work.
    const big = JSON.stringify([{ ...event, propertyValue: 'x'.repeat(300 * 1024) }]);
    const oversized = await fetch(`${host.url}${WEBHOOK_PATH}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-hubspot-signature-v3': fake.signV3('POST', `${PUBLIC_BASE_URL}${WEBHOOK_PATH}`, big, ts), 'x-hubspot-request-timestamp': String(ts) },
      body: big,
    });
    expect(oversized.status).toBe(413);
    // Unsigned.
    expect((await fetch(`${host.url}${WEBHOOK_PATH}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body })).status).toBe(401);
    expect(accepted().length).toBe(before);
    const refused = webhookLogs().filter((l) => l.msg === 'HubSpot webhook refused').map((l) => l.reason);
    expect(refused).toEqual(expect.arrayContaining(['mismatch', 'stale', 'missing']));

    // Replayed: the same event twice; the second delivery is accepted (one message each) but its
    // fan-out queues nothing.
    const fanned = fannedOut().length;
    expect((await send([event])).status).toBe(204);
    await waitFor('the first fan-out', async () => (fannedOut().length > fanned ? true : undefined));
    expect((await send([{ ...event, attemptNumber: 1 }])).status).toBe(204);
    await waitFor('the second fan-out', async () => (fannedOut().length > fanned + 1 ? true : undefined));
    expect(accepted().slice(before).map((l) => [l.accepted, l.messages])).toEqual([
      [1, 1],
      [1, 1],
    ]);
    expect(fannedOut().slice(fanned).map((l) => [l.queued, l.duplicates])).toEqual([
      [1, 0],
      [0, 1],
    ]);
    // Nothing of it leaks into a response or a log: no secret, no token.
    expect(host.output()).not.toContain(fake.clientSecret);
  }, 60_000);

  it('events another delivery holds unconfirmed are not dropped as duplicates: answered 204 at once, deferred in the worker', async () => {
    const [ticket] = fake.seed(hubId, 'tickets', 1) as [string];
    const event = fake.webhookEvent(hubId, { subscriptionType: 'ticket.propertyChange', objectId: ticket, propertyName: 'subject' });
    // What a fan-out leaves behind when its process dies after claiming: a young, unconfirmed claim.
    const processed = new ProcessedStore(new TenantTable<ProcessedRow>(clients.table(TABLES.processed)));
    const claims = await processed.claimMany(WEBHOOK_CLAIM_SOURCE, tenantId(A), [{ id: webhookClaimId(integration, eventKey(webhookEventSchema.parse(event))) }], { staleAfterMs: WEBHOOK_CLAIM_STALE_MS, owner: 'a-dead-delivery' });
    expect([...claims.values()]).toEqual(['claimed']);
    const fanned = fannedOut().length;
    await clients.queue('hubspot-events').clearMessages();

    const res = await send([event]);
    expect(res.status).toBe(204);
    await waitFor('the fan-out', async () => (fannedOut().length > fanned ? true : undefined));
    expect(fannedOut().slice(fanned).map((l) => [l.queued, l.duplicates, l.deferred])).toEqual([[0, 0, 1]]);
    expect((await clients.queue('hubspot-events').peekMessages({ numberOfMessages: 32 })).peekedMessageItems).toHaveLength(0);
    // Deferred means written back, invisible until the claim is stale: the queue holds it.
    expect((await clients.queue('hubspot-webhooks').getProperties()).approximateMessagesCount).toBeGreaterThanOrEqual(1);
    await clients.queue('hubspot-webhooks').clearMessages();
  }, 60_000);

  it('a crash after the 204 loses nothing: the delivery is on hubspot-webhooks before the answer, and the next process fans it out once', async () => {
    const env = runnerEnv;
    // A process whose fan-out worker never runs: the answer can only rest on the queued delivery.
    await host.stop();
    host = await startRunner({ env: { ...env, 'AzureWebJobs.hubspotWebhookFanOut.Disabled': 'true' } });
    await clients.queue('hubspot-events').clearMessages();
    const ids = fake.seed(hubId, 'tickets', 100);
    const events = ids.map((id) => fake.webhookEvent(hubId, { subscriptionType: 'ticket.propertyChange', objectId: id, propertyName: 'subject' }));
    expect((await send(events)).status).toBe(204);
    // A redelivery of the same events (HubSpot did not see the answer) and a crash right after.
    expect((await send(events.map((e) => ({ ...e, attemptNumber: 1 })))).status).toBe(204);
    await host.kill();
    expect((await clients.queue('hubspot-webhooks').peekMessages({ numberOfMessages: 32 })).peekedMessageItems).toHaveLength(2);

    host = await startRunner({ env: { ...env, 'AzureWebJobs.hubspotEventWorker.Disabled': 'true' } });
    await waitFor('both deliveries fanned out', async () => (fannedOut().length >= 2 ? true : undefined));
    const got = (await clients.queue('hubspot-events').peekMessages({ numberOfMessages: 32 })).peekedMessageItems;
    const seen = got.flatMap((m) => (JSON.parse(Buffer.from(m.messageText, 'base64').toString('utf8')) as { events: Array<{ objectId: string }> }).events.map((e) => e.objectId));
    // Exactly once: the two deliveries of the same events became one per event. (Handled side by side,
    // the second found the first's claims unconfirmed and deferred them, which only yields duplicates later.)
    expect(seen.sort()).toEqual([...ids].sort());
    const outcome = fannedOut().map((l) => [l.queued ?? 0, (l.duplicates ?? 0) + (l.deferred ?? 0)]);
    expect(outcome.map((o) => o.join('+')).sort()).toEqual(['0+100', '100+0']);
    await host.stop();
    await clients.queue('hubspot-events').clearMessages();
    await clients.queue('hubspot-webhooks').clearMessages();
    host = await startRunner({ env });
  }, 180_000);

  it('contacts and companies pushed by the engine are upserted and come back with their HubSpot ids', async () => {
    const one = await api(`hubspot/contacts/${A}/${integration}`, { method: 'POST', body: JSON.stringify({ email: 'Jane.Doe@Example.com', properties: { firstname: 'Jane' } }) });
    expect(one.status).toBe(200);
    const r1 = (await one.json()) as { success: boolean; results: Array<{ email: string; id: string; created: boolean }> };
    expect(r1).toMatchObject({ success: true, results: [{ email: 'jane.doe@example.com', id: expect.stringMatching(/^\d+$/), created: true }] });
    expect(fake.getObject(hubId, 'contacts', r1.results[0]?.id as string)?.properties).toMatchObject({ email: 'jane.doe@example.com', firstname: 'Jane' });

    const many = await api(`hubspot/contacts/${A}/${integration}`, {
      method: 'POST',
      body: JSON.stringify({ contacts: [{ email: 'jane.doe@example.com', properties: { lastname: 'Doe' } }, { email: 'bob@example.com' }] }),
    });
    const r2 = (await many.json()) as { results: Array<{ email: string; id: string; created: boolean }> };
    expect(r2.results).toEqual([
      { email: 'jane.doe@example.com', id: r1.results[0]?.id, created: false },
      { email: 'bob@example.com', id: expect.stringMatching(/^\d+$/), created: true },
    ]);

    const co = await api(`hubspot/companies/${A}/${integration}`, { method: 'POST', body: JSON.stringify({ domain: 'acme.example', properties: { name: 'Acme' } }) });
    expect(co.status).toBe(200);
    expect(((await co.json()) as { results: unknown[] }).results).toEqual([{ domain: 'acme.example', id: expect.stringMatching(/^\d+$/), created: true }]);

    const bad = await api(`hubspot/contacts/${A}/${integration}`, { method: 'POST', body: JSON.stringify({ email: 'not an email' }) });
    expect(bad.status).toBe(400);
  }, 60_000);

  it('a ticket created by the engine lands in HubSpot with its contact and company associations', async () => {
    const contactId = fake.seed(hubId, 'contacts', 1, (i) => ({ email: `assoc${i}@example.com` }))[0] as string;
    const companyIds = fake.seed(hubId, 'companies', 2, (i) => ({ domain: `assoc${i}.example`, name: `Assoc ${i}` }));
    const res = await api(`hubspot/tickets/${A}/${integration}`, {
      method: 'POST',
      body: JSON.stringify({ properties: { subject: 'Printer on fire', hs_pipeline: '0', hs_pipeline_stage: '1' }, contactIds: [contactId], companyIds }),
    });
    expect(res.status).toBe(201);
    const { id } = (await res.json()) as { id: string };
    expect(fake.getObject(hubId, 'tickets', id)?.properties).toMatchObject({ subject: 'Printer on fire', hs_pipeline_stage: '1' });
    expect(fake.associations(hubId, 'tickets', id, 'contacts')).toEqual([contactId]);
    expect([...fake.associations(hubId, 'tickets', id, 'companies')].sort()).toEqual([...companyIds].sort());

    const missingStage = await api(`hubspot/tickets/${A}/${integration}`, { method: 'POST', body: JSON.stringify({ properties: { subject: 'x' } }) });
    expect(missingStage.status).toBe(400);
    const asB = await api(`hubspot/tickets/${A}/${integration}`, { tenant: B, method: 'POST', body: JSON.stringify({ properties: { subject: 'x', hs_pipeline_stage: '1' } }) });
    expect(asB.status).toBe(403);
  }, 60_000);

  it("tenant B can neither read nor trigger anything of tenant A's", async () => {
    const asB = { tenant: B };
    const forbidden = [
      api(`hubspot/status/${A}/${integration}`, asB),
      api(`hubspot/integrations/${A}`, asB),
      api(`hubspot/authorize/${A}`, asB),
      api(`hubspot/contacts/${A}/${integration}`, { ...asB, method: 'POST', body: JSON.stringify({ email: 'x@example.com' }) }),
      api(`hubspot/companies/${A}/${integration}`, { ...asB, method: 'POST', body: JSON.stringify({ domain: 'x.example' }) }),
      api(`hubspot/integrations/${A}/${integration}`, { ...asB, method: 'DELETE' }),
      api(`hubspot/integrations/${A}`, { ...asB, method: 'POST', body: JSON.stringify({ access_token: fake.createPrivateAppToken(hubId) }) }),
    ];
    for (const res of await Promise.all(forbidden)) expect(res.status).toBe(403);
    // On B's own paths, A's integration id does not exist.
    for (const res of await Promise.all([
      api(`hubspot/status/${B}/${integration}`, asB),
      api(`hubspot/contacts/${B}/${integration}`, { ...asB, method: 'POST', body: JSON.stringify({ email: 'x@example.com' }) }),
      api(`hubspot/integrations/${B}/${integration}`, { ...asB, method: 'DELETE' }),
    ])) {
      expect(res.status).toBe(404);
      expect(await res.text()).not.toContain(String(hubId));
    }
    const listB = (await (await api(`hubspot/integrations/${B}`, asB)).json()) as { integrations: unknown[] };
    expect(listB.integrations).toEqual([]);
    // A's integration is untouched.
    expect(((await (await api(`hubspot/status/${A}/${integration}`)).json()) as { connected: boolean }).connected).toBe(true);
  });

  it('a private-app token is checked against HubSpot before it is stored', async () => {
    const bad = await api(`hubspot/integrations/${B}`, { tenant: B, method: 'POST', body: JSON.stringify({ access_token: 'pat-na1-00000000-0000-0000-0000-000000000000' }) });
    expect(bad.status).toBe(400);
    const other = fake.addPortal().hubId;
    const token = fake.createPrivateAppToken(other);
    const ok = await api(`hubspot/integrations/${B}`, { tenant: B, method: 'POST', body: JSON.stringify({ access_token: token }) });
    expect(ok.status).toBe(201);
    const body = (await ok.json()) as { integration_id: string; hub_id: string; status: string };
    expect(body).toMatchObject({ hub_id: String(other), status: 'active' });
    expect(JSON.stringify(body)).not.toContain(token);
    const s = (await (await api(`hubspot/status/${B}/${body.integration_id}`, { tenant: B })).json()) as Record<string, unknown>;
    expect(s).toMatchObject({ connected: true, token_type: 'private_app', hub_id: String(other) });
  });

  it('disconnect revokes the refresh token at HubSpot, keeps the history, and the portal no longer routes to it', async () => {
    const refresh = (await secrets.get(tenantSecretName(tenantId(A), integrationId(integration), 'refresh-token'))) as string;
    expect(refresh).toBeTruthy();
    const res = await api(`hubspot/integrations/${A}/${integration}`, { method: 'DELETE' });
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ success: true, status: 'disconnected', revocation: 'revoked' });
    expect(fake.stats().revokedTokens).toContain(refresh);
    expect(await secrets.get(tenantSecretName(tenantId(A), integrationId(integration), 'refresh-token'))).toBeUndefined();

    const s = (await (await api(`hubspot/status/${A}/${integration}`)).json()) as Record<string, unknown>;
    expect(s).toMatchObject({ connected: false, status: 'disconnected' });
    // History kept: the integration row and its sync history are still there.
    const list = (await (await api(`hubspot/integrations/${A}`)).json()) as { integrations: Array<{ integration_id: string; status: string }> };
    expect(list.integrations).toEqual([expect.objectContaining({ integration_id: integration, status: 'disconnected' })]);
    const sync = (await (await api(`hubspot/sync/${A}/${integration}`)).json()) as { events: unknown[] };
    expect(sync.events.length).toBeGreaterThan(0);

    const before = fannedOut().length;
    expect((await send([fake.webhookEvent(hubId, { subscriptionType: 'ticket.creation', objectId: 1 })])).status).toBe(204);
    await waitFor('the fan-out', async () => (fannedOut().length > before ? true : undefined));
    expect(fannedOut().slice(before)).toEqual([expect.objectContaining({ queued: 0, unrouted: 1 })]);

    // Only the date-versioned OAuth endpoints were ever used.
    expect(fake.stats().legacyOauthCalls).toBe(0);
    expect(host.output()).not.toContain(refresh);
  });
});
