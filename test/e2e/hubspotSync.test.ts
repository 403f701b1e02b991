import { mkdtempSync, rmSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import os from 'node:os';
import { startAzurite, type AzuriteInstance } from '../../runner/azurite';
import { LocalSecretStore, tenantSecretName } from '../../src/secrets';
import { IntegrationsRepository, StorageClients, TABLES, TenantTable, integrationId, tenantId, type IntegrationId } from '../../src/storage';
import { startFakeHubSpot, type FakeHubSpot } from '../fakes/hubspot';
import { TestBrowser } from '../helpers/browser';
import { TEST_JWT_SECRET } from '../helpers/jwt';
import { apiClient, queueLength, startRunner, type RunningHost, localAppEnv } from '../helpers/runner';

/**
 * The issue's chain through the real app under the local runner: connect by OAuth → the first full sync
 * of 6,000 tickets → a signed webhook updates a ticket → an incremental sync picks up 12,000 changes
 * across the search cap → disconnect; plus what another tenant may not do, and the timer. Everything
 * goes HTTP API → hubspot-sync queue → worker (the production caller with its limiter and storage
 * budget) → the fake HubSpot → Records → tickets API. Windows are scaled to 1 s (HubSpot's 10 s) on both
 * sides; the time budget is 2 s, so every sync runs across several invocations that re-queue themselves.
 */
describe('HubSpot sync end to end', () => {
  let azurite: AzuriteInstance;
  let fake: FakeHubSpot;
  let host: RunningHost;
  let secretDir: string;
  let clients: StorageClients;
  let hubId: number;
  const localKey = randomBytes(32);
  const PUBLIC_BASE_URL = 'http://localhost:7071';
  const REDIRECT_URI = `${PUBLIC_BASE_URL}/api/hubspot/oauth/callback`;
  const WEBHOOK_PATH = '/api/webhooks/hubspot';
  // A's integration id is minted by the authorize call.
  const A = { t: tenantId('tenant-a'), i: '' as IntegrationId };
  const B = { t: tenantId('tenant-b'), i: integrationId('hubspot-b') };
  const C = { t: tenantId('tenant-c'), i: integrationId('hubspot-c') };
  let seeded: string[] = [];

  beforeAll(async () => {
    secretDir = mkdtempSync(`${os.tmpdir()}/itil-secrets-`);
    azurite = await startAzurite();
    fake = await startFakeHubSpot({ rateLimit: { perTenSeconds: 110, searchPerSecond: 5, windowMs: 1000 } });
    clients = new StorageClients({ kind: 'connectionString', connectionString: azurite.connectionString });
    await clients.ensureAll();

    const portal = fake.addPortal({ hubDomain: 'acme-support.hubspot.com' });
    hubId = portal.hubId;
    fake.setPipelines(hubId, [{ id: '0', label: 'Support', stages: [{ id: '1', label: 'New', ticketState: 'OPEN' }, { id: '4', label: 'Closed', ticketState: 'CLOSED' }] }]);
    const secrets = new LocalSecretStore({ key: localKey, directory: secretDir });
    const repo = new IntegrationsRepository(new TenantTable(clients.table(TABLES.integrations)));
    // B and C are private-app integrations as the integrations API leaves them: a row naming its secret.
    for (const [who, hub, status] of [[B, fake.addPortal().hubId, 'active'] as const, [C, fake.addPortal().hubId, 'needs_reauth'] as const]) {
      const secretName = tenantSecretName(who.t, who.i, 'private-app-token');
      await secrets.set(secretName, fake.createPrivateAppToken(hub));
      await repo.create(who.t, { integrationId: who.i, type: 'hubspot', status, externalAccountId: String(hub), secretName });
    }
    seeded = fake.seed(hubId, 'tickets', 6000);

    host = await startRunner({
      env: {
        ...localAppEnv({ storage: azurite.connectionString, secretKey: localKey.toString('base64'), secretDir: secretDir, jwtSecret: TEST_JWT_SECRET, publicBaseUrl: PUBLIC_BASE_URL }),
        HUBSPOT_CLIENT_ID: fake.clientId,
        HUBSPOT_CLIENT_SECRET: fake.clientSecret,
        HUBSPOT_REDIRECT_URI: REDIRECT_URI,
        HUBSPOT_API_BASE_URL: fake.url,
        HUBSPOT_RATE_WINDOW_MS: '1000',
        HUBSPOT_PRIVATE_APP_RATE_LIMIT: '100',
        HUBSPOT_SYNC_TIME_BUDGET_SECONDS: '2',
      },
    });
  }, 120_000);

  afterAll(async () => {
    await host?.stop();
    await fake?.close();
    await azurite?.stop();
    rmSync(secretDir, { recursive: true, force: true });
  });

  const api = apiClient(() => host, { tenant: 'tenant-a' });

  type Status = {
    sync: { sync_id: string; sync_type: string; state: string; trigger: string | null; invocations: number; pages: number; records: number; changes: number; hubspot_calls: number; estimated_total: number | null; error: string | null } | null;
    events: Array<{ sync_id: string; status: string; records: number; changes: number; started_at: string }>;
    objects: Record<string, { record_count: number }>;
  };

  /**
   * POSTs a sync. The app's own 5-minute timer also runs while the suite does; if one of its syncs is
   * already running, that one is waited for and the request made again.
   */
  async function startSync(type: 'full' | 'incremental'): Promise<string> {
    for (let attempt = 0; attempt < 5; attempt++) {
      const res = await api(`hubspot/sync/${A.t}/${A.i}`, { method: 'POST', body: JSON.stringify({ sync_type: type }) });
      if (res.status === 202) return ((await res.json()) as { sync_id: string }).sync_id;
      expect(res.status).toBe(409);
      await waitForSync(((await res.json()) as { sync_id: string }).sync_id, 240_000);
    }
    throw new Error('could not start a sync');
  }

  async function waitForSync(syncId: string, timeoutMs: number): Promise<Status> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const res = await api(`hubspot/sync/${A.t}/${A.i}`);
      expect(res.status).toBe(200);
      const body = (await res.json()) as Status;
      if (body.sync?.sync_id === syncId && ['completed', 'failed', 'skipped'].includes(body.sync.state)) return body;
      if (Date.now() > deadline) throw new Error(`sync ${syncId} did not finish: ${JSON.stringify(body.sync)}\n${host.output().slice(-3000)}`);
      await new Promise((r) => setTimeout(r, 500));
    }
  }

  it('connect by OAuth queues the first full sync, which takes 6,000 tickets across self-re-queued invocations; it is not started twice', async () => {
    const auth = (await (await api(`hubspot/authorize/${A.t}`)).json()) as { authorization_url: string; integration_id: string };
    A.i = integrationId(auth.integration_id);
    // The browser opens our start page (cookie) and is sent to HubSpot with the state.
    const browser = new TestBrowser();
    const start = new URL(auth.authorization_url);
    const started = await browser.get(`${host.url}${start.pathname}${start.search}`);
    const state = new URL(started.location as string).searchParams.get('state') as string;
    // The user consents at HubSpot, which sends the browser to our callback with a code.
    const code = fake.issueAuthorizationCode(hubId, REDIRECT_URI);
    const cb = await browser.get(`${host.url}/api/hubspot/oauth/callback?${new URLSearchParams({ code, state }).toString()}`);
    expect(cb.status).toBe(200);

    // The connect started the first full sync; asking for another while it runs is refused, naming it.
    const first = ((await (await api(`hubspot/sync/${A.t}/${A.i}`)).json()) as Status).sync;
    expect(first).toMatchObject({ sync_type: 'full', trigger: 'connect' });
    const again = await api(`hubspot/sync/${A.t}/${A.i}`, { method: 'POST', body: JSON.stringify({ sync_type: 'full' }) });
    expect(again.status).toBe(409);
    expect(await again.json()).toMatchObject({ sync_id: first?.sync_id });

    const done = await waitForSync(first?.sync_id ?? '', 180_000);
    expect(done.sync).toMatchObject({ state: 'completed', records: 6000, error: null, estimated_total: 6000 });
    expect(done.sync?.invocations).toBeGreaterThan(1);
    expect(done.events[0]).toMatchObject({ sync_id: first?.sync_id, status: 'completed', records: 6000 });
    expect(done.objects['tickets']?.record_count).toBe(6000);
    // The limiter spent no more than the (scaled) limit in any window.
    expect(fake.stats().maxPerWindowSeen).toBeLessThanOrEqual(110);

    const p1 = await api(`hubspot/tickets/${A.t}/${A.i}?limit=50`);
    expect(p1.status).toBe(200);
    const page1 = (await p1.json()) as { success: boolean; tenant_id: string; total_count: number; next_after: string | null; tickets: Array<{ id: string; properties: Record<string, string>; stage_label: string }> };
    expect(page1).toMatchObject({ success: true, tenant_id: 'tenant-a', total_count: 6000 });
    expect(page1.tickets).toHaveLength(50);
    expect(page1.tickets[0]?.properties).toMatchObject({ subject: expect.stringMatching(/^Ticket /), hs_pipeline_stage: '1', hs_ticket_priority: expect.any(String) });
    expect(page1.tickets[0]?.stage_label).toBe('New');
    const p2 = (await (await api(`hubspot/tickets/${A.t}/${A.i}?limit=50&after=${encodeURIComponent(page1.next_after ?? '')}`)).json()) as typeof page1;
    expect(p2.tickets).toHaveLength(50);
    expect(p2.tickets.map((x) => x.id).filter((id) => page1.tickets.some((y) => y.id === id))).toEqual([]);
    const high = (await (await api(`hubspot/tickets/${A.t}/${A.i}?limit=5&priority=HIGH`)).json()) as typeof page1;
    expect(high.total_count).toBe(2000);
    expect(high.tickets.every((x) => x.properties['hs_ticket_priority'] === 'HIGH')).toBe(true);
  }, 240_000);

  it('a signed webhook updates a ticket: the store and the tickets API show it without waiting for a sync', async () => {
    await clients.queue('engine-events').clearMessages();
    const ticket = seeded[10] as string;
    fake.upsertObject(hubId, 'tickets', ticket, { subject: 'VPN down for the whole floor' });
    const event = fake.webhookEvent(hubId, { subscriptionType: 'ticket.propertyChange', objectId: ticket, propertyName: 'subject', propertyValue: 'VPN down for the whole floor' });
    const res = await fake.sendWebhook(`${host.url}${WEBHOOK_PATH}`, [event], { uriForSignature: `${PUBLIC_BASE_URL}${WEBHOOK_PATH}` });
    expect(res.status).toBe(204);
    const since = encodeURIComponent(new Date(Date.now() - 60_000).toISOString());
    const deadline = Date.now() + 60_000;
    let subject: string | undefined;
    while (Date.now() < deadline) {
      const page = (await (await api(`hubspot/tickets/${A.t}/${A.i}?limit=100&modified_since=${since}`)).json()) as { tickets: Array<{ id: string; properties: Record<string, string> }> };
      subject = page.tickets.find((x) => x.id === ticket)?.properties['subject'];
      if (subject === 'VPN down for the whole floor') break;
      await new Promise((r) => setTimeout(r, 300));
    }
    expect(subject).toBe('VPN down for the whole floor');
  }, 120_000);

  it('incremental sync picks up 12,000 changes across the 10,000-result search cap, one engine event each', async () => {
    await clients.queue('engine-events').clearMessages();
    const marker = new Date().toISOString();
    for (const id of seeded) fake.upsertObject(hubId, 'tickets', id, { hs_pipeline_stage: '4' });
    for (let x = 0; x < 6000; x++) fake.upsertObject(hubId, 'tickets', undefined, { subject: `new ${x}`, hs_pipeline: '0', hs_ticket_priority: 'LOW' });
    fake.resetStats();

    const syncId = await startSync('incremental');
    const done = await waitForSync(syncId, 240_000);
    expect(done.sync).toMatchObject({ state: 'completed', error: null });
    expect(done.sync?.invocations).toBeGreaterThan(1);
    // Normally this one sync found all 12,000; a timer sweep that started first may have taken a share.
    const since = done.events.filter((e) => e.started_at >= marker && e.status === 'completed');
    expect(since.map((e) => e.sync_id)).toContain(syncId);
    expect(since.reduce((a, e) => a + e.changes, 0)).toBe(12_000);

    const stats = fake.stats();
    // 12,000 results sorted by last-modified cannot come from one query: the search restarted its window.
    expect(stats.byRoute['POST /crm/v3/objects/tickets/search']).toBeGreaterThanOrEqual(60);
    expect(stats.maxPerWindowSeen).toBeLessThanOrEqual(110);
    // 6,000 ticket.updated + 6,000 ticket.created + one sync.completed per sync that found changes.
    expect(await queueLength(azurite.connectionString, 'engine-events')).toBe(12_000 + since.filter((e) => e.changes > 0).length);

    const closed = (await (await api(`hubspot/tickets/${A.t}/${A.i}?limit=1&stage=4`)).json()) as { total_count: number };
    expect(closed.total_count).toBe(6000);
    const all = (await (await api(`hubspot/tickets/${A.t}/${A.i}?limit=1`)).json()) as { total_count: number };
    expect(all.total_count).toBe(12_000);
    const hourAgo = new Date(Date.now() - 60 * 60_000).toISOString();
    const recent = (await (await api(`hubspot/tickets/${A.t}/${A.i}?limit=3&modified_since=${encodeURIComponent(hourAgo)}&priority=LOW`)).json()) as { total_count: number; tickets: unknown[] };
    expect(recent.total_count).toBe(6000 + 2000);
    expect(recent.tickets).toHaveLength(3);
  }, 300_000);

  it("tenant B can neither read nor start anything of tenant A's", async () => {
    const before = ((await (await api(`hubspot/sync/${A.t}/${A.i}`)).json()) as Status).sync?.sync_id;
    for (const [method, path, body] of [
      ['GET', `hubspot/tickets/${A.t}/${A.i}`, undefined],
      ['GET', `hubspot/sync/${A.t}/${A.i}`, undefined],
      ['POST', `hubspot/sync/${A.t}/${A.i}`, JSON.stringify({ sync_type: 'full' })],
    ] as const) {
      const res = await api(path, { method, tenant: 'tenant-b', ...(body ? { body } : {}) });
      expect({ path, method, status: res.status }).toEqual({ path, method, status: 403 });
      expect(await res.text()).not.toMatch(/Ticket \d|sync_id/);
    }
    // A's integration id under B's own tenant is simply not there.
    for (const [method, path, body] of [
      ['GET', `hubspot/tickets/${B.t}/${A.i}`, undefined],
      ['GET', `hubspot/sync/${B.t}/${A.i}`, undefined],
      ['POST', `hubspot/sync/${B.t}/${A.i}`, JSON.stringify({ sync_type: 'full' })],
    ] as const) {
      const res = await api(path, { method, tenant: 'tenant-b', ...(body ? { body } : {}) });
      expect({ path, method, status: res.status }).toEqual({ path, method, status: 404 });
    }
    const own = (await (await api(`hubspot/tickets/${B.t}/${B.i}`, { tenant: 'tenant-b' })).json()) as { total_count: number; tickets: unknown[] };
    expect(own).toMatchObject({ total_count: 0, tickets: [] });
    // Nothing was started for A (a sync B could start would now be A's current one).
    const after = ((await (await api(`hubspot/sync/${A.t}/${A.i}`)).json()) as Status).sync;
    expect(after?.sync_id === before || after?.trigger === 'timer').toBe(true);
  });

  it('the timer queues one staggered incremental per active integration, none for one needing re-authorisation', async () => {
    const res = await fetch(`${host.url}/admin/functions/hubspotSyncTimer`, { method: 'POST', headers: { 'x-functions-key': host.masterKey, 'content-type': 'application/json' }, body: '{"input":""}' });
    expect(res.status).toBeLessThan(300);
    const deadline = Date.now() + 20_000;
    let st: Status | undefined;
    while (Date.now() < deadline) {
      st = (await (await api(`hubspot/sync/${A.t}/${A.i}`)).json()) as Status;
      if (st.sync?.state === 'queued' || st.sync?.state === 'running') break;
      await new Promise((r) => setTimeout(r, 300));
    }
    expect(st?.sync).toMatchObject({ state: expect.stringMatching(/queued|running/), trigger: 'timer' });
    const bStatus = (await (await api(`hubspot/sync/${B.t}/${B.i}`, { tenant: 'tenant-b' })).json()) as Status;
    expect(bStatus.sync).toMatchObject({ trigger: 'timer' });
    const cStatus = (await (await api(`hubspot/sync/${C.t}/${C.i}`, { tenant: 'tenant-c' })).json()) as Status;
    expect(cStatus.sync).toBeNull();
  });
  it('disconnect stops the syncs and keeps the synced tickets and the history', async () => {
    const res = await api(`hubspot/integrations/${A.t}/${A.i}`, { method: 'DELETE' });
    expect(res.status).toBe(200);
    const refused = await api(`hubspot/sync/${A.t}/${A.i}`, { method: 'POST', body: JSON.stringify({ sync_type: 'incremental' }) });
    expect(refused.status).toBe(409);
    expect(await refused.json()).toMatchObject({ integrationStatus: 'disconnected' });
    const all = (await (await api(`hubspot/tickets/${A.t}/${A.i}?limit=1`)).json()) as { total_count: number };
    expect(all.total_count).toBe(12_000);
    const st = (await (await api(`hubspot/sync/${A.t}/${A.i}`)).json()) as Status & { integration_status: string };
    expect(st.integration_status).toBe('disconnected');
    expect(st.events.length).toBeGreaterThanOrEqual(2);
  });
});
