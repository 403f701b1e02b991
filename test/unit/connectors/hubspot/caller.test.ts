import http from 'node:http';
import net from 'node:net';
import { TABLES, TenantTable, integrationId, tenantId } from '../../../../src/storage';
import { DistributedBudget, type BudgetRow } from '../../../../src/connectors/hubspot/budget';
import { createHubSpotCaller, type HubSpotAuth } from '../../../../src/connectors/hubspot/client';
import { HubSpotApiError, HubSpotDailyLimitError, HubSpotUnauthorizedError } from '../../../../src/connectors/hubspot/errors';
import { HubSpotRateGate, ratePolicy, DEFAULT_RATE_LIMITS, type HubSpotRatePolicy } from '../../../../src/connectors/hubspot/rateLimit';
import type { HubSpotCaller } from '../../../../src/connectors/hubspot/caller';
import { startFakeHubSpot, type FakeHubSpot } from '../../../fakes/hubspot';
import { useAzurite } from '../../../helpers/azurite';

/**
 * The caller against the fake HubSpot speaking HubSpot's wire format, through the real SDK, with the
 * budget rows on a real Azurite. A "second instance" is a second gate and budget over the same table,
 * exactly what a second Functions instance has.
 */
describe('createHubSpotCaller', () => {
  let az: Awaited<ReturnType<typeof useAzurite>>;
  let fake: FakeHubSpot;
  const T = tenantId('tenant-a');
  const I = integrationId('int-1');

  beforeAll(async () => {
    az = await useAzurite();
    fake = await startFakeHubSpot();
  });
  afterAll(async () => {
    await fake?.close();
    await az?.stop();
  });
  afterEach(() => {
    fake.clearFaults();
    fake.setRateLimit({ perTenSeconds: 110, searchPerSecond: 5, dailyLimit: 500_000, windowMs: 10_000 });
  });

  const budgetTable = () => new TenantTable<BudgetRow>(az.clients.table(TABLES.rateBudgets));

  /** A token source over a fake private-app token; `rotate` issues a fresh one after a 401. */
  function staticAuth(token: string, onUnauthorized?: () => string | undefined): HubSpotAuth & { current: string; unauthorizedCalls: number } {
    const a = {
      kind: 'private_app' as const,
      current: token,
      unauthorizedCalls: 0,
      accessToken: async () => a.current,
      unauthorized: async () => {
        a.unauthorizedCalls++;
        const next = onUnauthorized?.();
        if (!next) return false;
        a.current = next;
        return true;
      },
    };
    return a;
  }

  function caller(portalId: string, auth: HubSpotAuth, gate: HubSpotRateGate, policy: HubSpotRatePolicy, extra: Partial<Parameters<typeof createHubSpotCaller>[0]> = {}): HubSpotCaller {
    return createHubSpotCaller({ tenantId: T, integrationId: I, portalId, auth, gate, policy, apiBaseUrl: fake.url, maxAttempts: 4, ...extra });
  }

  const listTickets = (c: HubSpotCaller) => c.call('standard', 'tickets.list', (client) => client.crm.tickets.basicApi.getPage(10));

  it('calls HubSpot through the SDK with the bearer token and counts the call', async () => {
    const portal = fake.addPortal();
    fake.seed(portal.hubId, 'tickets', 3);
    const c = caller(String(portal.hubId), staticAuth(fake.createPrivateAppToken(portal.hubId)), new HubSpotRateGate(new DistributedBudget(budgetTable())), ratePolicy('private_app', DEFAULT_RATE_LIMITS));
    const page = await listTickets(c);
    expect(page.results).toHaveLength(3);
    expect(c.stats()).toMatchObject({ calls: 1, retries: 0, status429: 0 });
  });

  it('a request that leaves late (a slow connection) is booked in the budget at the time it left', async () => {
    const portal = fake.addPortal();
    fake.seed(portal.hubId, 'tickets', 2);
    // Every new connection takes 120 ms to open, far beyond half the 100 ms margin of a 10 s window.
    const slow = new http.Agent({ keepAlive: false });
    Object.assign(slow, {
      createConnection: (options: net.NetConnectOpts, cb: (err: Error | null, socket: net.Socket) => void) => {
        setTimeout(() => cb(null, net.connect(options)), 120);
        return undefined;
      },
    });
    const budget = new DistributedBudget(budgetTable());
    const c = caller(String(portal.hubId), staticAuth(fake.createPrivateAppToken(portal.hubId)), new HubSpotRateGate(budget), ratePolicy('private_app', DEFAULT_RATE_LIMITS), { agent: slow });
    expect((await listTickets(c)).results).toHaveLength(2);
    // Booking is fire-and-forget beside the call; give its row write a moment.
    for (let n = 0; n < 50 && budget.stats().lateCalls === 0; n++) await new Promise((r) => setTimeout(r, 20));
    expect(budget.stats().lateCalls).toBe(1);

    const prompt = new DistributedBudget(budgetTable());
    const c2 = caller(String(portal.hubId), staticAuth(fake.createPrivateAppToken(portal.hubId)), new HubSpotRateGate(prompt), ratePolicy('private_app', DEFAULT_RATE_LIMITS));
    await listTickets(c2);
    await new Promise((r) => setTimeout(r, 100));
    expect(prompt.stats().lateCalls).toBe(0);
  });

  it('two instances sharing the budget table never exceed the portal limit together', async () => {
    const portal = fake.addPortal();
    fake.seed(portal.hubId, 'tickets', 1);
    // Scaled: 12 calls per 600 ms on both sides (HubSpot's 110/10 s at another speed).
    fake.setRateLimit({ perTenSeconds: 12, windowMs: 600 });
    fake.resetStats();
    const policy = ratePolicy('private_app', { ...DEFAULT_RATE_LIMITS, windowMs: 600, privateAppLimit: 12 });
    const token = fake.createPrivateAppToken(portal.hubId);
    // This fake shares the test's event loop, so arrival times spread more than over a network: a wider
    // latency allowance than the default keeps the assertion about the budget, not the event loop.
    const instance = () => new HubSpotRateGate(new DistributedBudget(budgetTable(), { minMarginMs: 100 }));
    const a = caller(String(portal.hubId), staticAuth(token), instance(), policy);
    const b = caller(String(portal.hubId), staticAuth(token), instance(), policy);
    await Promise.all([...Array.from({ length: 20 }, () => listTickets(a)), ...Array.from({ length: 20 }, () => listTickets(b))]);
    const s = fake.stats();
    expect(s.rateLimited).toBe(0);
    expect(s.maxPerWindowSeen).toBeLessThanOrEqual(12);
    expect(a.stats().calls + b.stats().calls).toBe(40);
    expect(a.stats().rateLimitWaits + b.stats().rateLimitWaits).toBeGreaterThan(0);
  });

  it('a TEN_SECONDLY_ROLLING 429 holds the portal for the window and the call then succeeds', async () => {
    const portal = fake.addPortal();
    fake.seed(portal.hubId, 'tickets', 1);
    // HubSpot allows less than we think (another client of the app uses the rest): we meet 429s.
    fake.setRateLimit({ perTenSeconds: 3, windowMs: 400 });
    const policy = ratePolicy('private_app', { ...DEFAULT_RATE_LIMITS, windowMs: 400, privateAppLimit: 50 });
    const c = caller(String(portal.hubId), staticAuth(fake.createPrivateAppToken(portal.hubId)), new HubSpotRateGate(new DistributedBudget(budgetTable())), policy, { maxAttempts: 6 });
    const results = await Promise.all(Array.from({ length: 6 }, () => listTickets(c)));
    expect(results).toHaveLength(6);
    expect(c.stats().status429).toBeGreaterThan(0);
    expect(c.stats().retries).toBeGreaterThan(0);
  });

  it('a DAILY 429 stops at once with HubSpotDailyLimitError', async () => {
    const portal = fake.addPortal();
    fake.setRateLimit({ dailyLimit: 1 });
    const c = caller(String(portal.hubId), staticAuth(fake.createPrivateAppToken(portal.hubId)), new HubSpotRateGate(new DistributedBudget(budgetTable())), ratePolicy('private_app', DEFAULT_RATE_LIMITS));
    await listTickets(c);
    await expect(listTickets(c)).rejects.toBeInstanceOf(HubSpotDailyLimitError);
    expect(c.stats()).toMatchObject({ calls: 2, retries: 0, status429: 1 });
  });

  it('retries a 5xx and a reset connection on idempotent calls', async () => {
    const portal = fake.addPortal();
    fake.seed(portal.hubId, 'tickets', 2);
    const c = caller(String(portal.hubId), staticAuth(fake.createPrivateAppToken(portal.hubId)), new HubSpotRateGate(new DistributedBudget(budgetTable())), ratePolicy('private_app', DEFAULT_RATE_LIMITS));
    fake.injectFault({ match: /GET \/crm\/v3\/objects\/tickets/, status: 502, times: 1 });
    fake.injectFault({ match: /GET \/crm\/v3\/objects\/tickets/, resetConnection: true, times: 1 });
    const page = await listTickets(c);
    expect(page.results).toHaveLength(2);
    expect(c.stats().retries).toBe(2);
  });

  it('does not repeat a non-idempotent call that failed with a 5xx', async () => {
    const portal = fake.addPortal();
    const c = caller(String(portal.hubId), staticAuth(fake.createPrivateAppToken(portal.hubId)), new HubSpotRateGate(new DistributedBudget(budgetTable())), ratePolicy('private_app', DEFAULT_RATE_LIMITS));
    fake.injectFault({ match: /POST \/crm\/v3\/objects\/tickets/, status: 500, times: 1 });
    const create = c.call('standard', 'tickets.create', (client) => client.crm.tickets.basicApi.create({ properties: { subject: 'x', hs_pipeline_stage: '1' } }), { idempotent: false });
    await expect(create).rejects.toBeInstanceOf(HubSpotApiError);
    expect(fake.count(portal.hubId, 'tickets')).toBe(0);
    expect(c.stats()).toMatchObject({ calls: 1, retries: 0 });
  });

  it('gives every attempt a timeout: a hung reply is abandoned and the call retried', async () => {
    const portal = fake.addPortal();
    fake.seed(portal.hubId, 'tickets', 1);
    const c = caller(String(portal.hubId), staticAuth(fake.createPrivateAppToken(portal.hubId)), new HubSpotRateGate(new DistributedBudget(budgetTable())), ratePolicy('private_app', DEFAULT_RATE_LIMITS), { timeoutMs: 300 });
    fake.injectFault({ match: /GET \/crm\/v3\/objects\/tickets/, delayMs: 5_000, times: 1 });
    const page = await listTickets(c);
    expect(page.results).toHaveLength(1);
    expect(c.stats()).toMatchObject({ calls: 2, retries: 1 });
  });

  it('a 401 gets one fresh token and one retry, then HubSpotUnauthorizedError', async () => {
    const portal = fake.addPortal();
    fake.seed(portal.hubId, 'tickets', 1);
    const good = fake.createPrivateAppToken(portal.hubId);
    const auth = staticAuth('pat-na1-not-a-token', () => good);
    const c = caller(String(portal.hubId), auth, new HubSpotRateGate(new DistributedBudget(budgetTable())), ratePolicy('private_app', DEFAULT_RATE_LIMITS));
    expect((await listTickets(c)).results).toHaveLength(1);
    expect(auth.unauthorizedCalls).toBe(1);

    const dead = staticAuth('pat-na1-also-not-a-token', () => 'pat-na1-still-not-a-token');
    const c2 = caller(String(portal.hubId), dead, new HubSpotRateGate(new DistributedBudget(budgetTable())), ratePolicy('private_app', DEFAULT_RATE_LIMITS));
    await expect(listTickets(c2)).rejects.toBeInstanceOf(HubSpotUnauthorizedError);
    expect(dead.unauthorizedCalls).toBe(1);
    expect(c2.stats().calls).toBe(2);
  });

  it('HubSpot errors surface without the SDK exception, its headers or the token', async () => {
    const portal = fake.addPortal();
    const token = fake.createPrivateAppToken(portal.hubId);
    const c = caller(String(portal.hubId), staticAuth(token), new HubSpotRateGate(new DistributedBudget(budgetTable())), ratePolicy('private_app', DEFAULT_RATE_LIMITS));
    const err = await c.call('standard', 'tickets.get', (client) => client.crm.tickets.basicApi.getById('999999')).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(HubSpotApiError);
    const e = err as HubSpotApiError;
    expect(e.upstreamStatus).toBe(404);
    expect(e.info.category).toBe('OBJECT_NOT_FOUND');
    expect(e.cause).toBeUndefined();
    expect(JSON.stringify({ m: e.message, x: e.extensions })).not.toContain(token);
  });

  it('interactive calls are not queued behind a background backlog on the same portal', async () => {
    const portal = fake.addPortal();
    fake.seed(portal.hubId, 'tickets', 1);
    fake.setRateLimit({ perTenSeconds: 10, windowMs: 500 });
    fake.resetStats();
    const policy = ratePolicy('private_app', { ...DEFAULT_RATE_LIMITS, windowMs: 500, privateAppLimit: 10 });
    const token = fake.createPrivateAppToken(portal.hubId);
    const gate = new HubSpotRateGate(new DistributedBudget(budgetTable()));
    const bg = caller(String(portal.hubId), staticAuth(token), gate, policy, { priority: 'background' });
    const fg = caller(String(portal.hubId), staticAuth(token), gate, policy, { priority: 'interactive' });
    const order: string[] = [];
    const background = Array.from({ length: 40 }, (_, i) => listTickets(bg).then(() => order.push(`bg${i}`)));
    await new Promise((r) => setTimeout(r, 300));
    const interactive = listTickets(fg).then(() => order.push('fg'));
    await Promise.all([...background, interactive]);
    // 40 background calls at 10 per 500 ms take about 2 s; the interactive one must not wait for them all.
    expect(order.indexOf('fg')).toBeLessThan(30);
    expect(fake.stats().rateLimited).toBe(0);
  });
});
