import { FilterOperatorEnum } from '@hubspot/api-client/lib/codegen/crm/tickets';
import { startFakeHubSpot, type FakeHubSpot } from '../../fakes/hubspot';
import { apiError, connect, sdk } from './hubspotHelpers';

/** Rate limits (rolling window, search, daily), their headers and 429 bodies, and fault injection. */

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function list(fake: FakeHubSpot, token: string): Promise<Response> {
  return fetch(`${fake.url}/crm/v3/objects/tickets?limit=1`, { headers: { authorization: `Bearer ${token}` } });
}

async function searchRaw(fake: FakeHubSpot, token: string): Promise<Response> {
  return fetch(`${fake.url}/crm/v3/objects/tickets/search`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify({ filterGroups: [{ filters: [{ propertyName: 'hs_lastmodifieddate', operator: 'GTE', value: '0' }] }], limit: 1 }),
  });
}

describe('fake HubSpot rate limits', () => {
  it("sends HubSpot's rate-limit headers on API calls, daily ones only for private apps, none on search", async () => {
    const fake = await startFakeHubSpot();
    try {
      const p = fake.addPortal();
      fake.seed(p.hubId, 'tickets', 1);
      const oauth = (await connect(fake, p.hubId)).access_token;
      const first = await list(fake, oauth);
      expect(first.headers.get('x-hubspot-ratelimit-max')).toBe('110');
      expect(first.headers.get('x-hubspot-ratelimit-remaining')).toBe('109');
      expect(first.headers.get('x-hubspot-ratelimit-interval-milliseconds')).toBe('10000');
      expect(first.headers.get('x-hubspot-ratelimit-daily')).toBeNull();
      expect((await list(fake, oauth)).headers.get('x-hubspot-ratelimit-remaining')).toBe('108');

      const viaSdk = await sdk(fake, oauth).crm.tickets.basicApi.getPageWithHttpInfo(1);
      expect(viaSdk.headers['x-hubspot-ratelimit-remaining']).toBe('107');

      const pat = fake.createPrivateAppToken(p.hubId);
      const priv = await list(fake, pat);
      expect(priv.headers.get('x-hubspot-ratelimit-daily')).toBe('500000');
      expect(Number(priv.headers.get('x-hubspot-ratelimit-daily-remaining'))).toBeLessThan(500000);
      expect(priv.headers.get('x-hubspot-ratelimit-remaining')).toBe('109');

      const s = await searchRaw(fake, oauth);
      expect(s.status).toBe(200);
      expect([...s.headers.keys()].filter((k) => k.startsWith('x-hubspot-ratelimit'))).toEqual([]);
    } finally {
      await fake.close();
    }
  });

  it('enforces the rolling window per portal with a TEN_SECONDLY_ROLLING 429 and no Retry-After', async () => {
    const fake = await startFakeHubSpot({ rateLimit: { perTenSeconds: 5, windowMs: 60_000 } });
    try {
      const p = fake.addPortal();
      const q = fake.addPortal();
      const token = (await connect(fake, p.hubId)).access_token;
      const other = (await connect(fake, q.hubId)).access_token;
      const statuses: number[] = [];
      let limited: Response | undefined;
      for (let i = 0; i < 7; i++) {
        const res = await list(fake, token);
        statuses.push(res.status);
        if (res.status === 429) limited = res;
        else await res.arrayBuffer();
      }
      expect(statuses).toEqual([200, 200, 200, 200, 200, 429, 429]);
      expect(limited?.headers.get('retry-after')).toBeNull();
      expect(limited?.headers.get('x-hubspot-ratelimit-remaining')).toBe('0');
      expect(await limited?.json()).toMatchObject({
        status: 'error',
        message: 'You have reached your ten_secondly_rolling limit.',
        errorType: 'RATE_LIMIT',
        policyName: 'TEN_SECONDLY_ROLLING',
      });
      expect((await list(fake, other)).status).toBe(200);
      const err = await apiError(sdk(fake, token).crm.tickets.basicApi.getPage(1));
      expect(err.code).toBe(429);
      expect(err.body.policyName).toBe('TEN_SECONDLY_ROLLING');
      const s = fake.stats();
      expect(s.rateLimited).toBe(3);
      expect(s.maxPerWindowSeen).toBe(8);

      fake.setRateLimit({ sendRetryAfter: true });
      const withHeader = await list(fake, token);
      expect(withHeader.status).toBe(429);
      expect(Number(withHeader.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);

      // Shrinking the window lets the old requests fall out of it: the window rolls.
      fake.setRateLimit({ windowMs: 200 });
      await sleep(300);
      expect((await list(fake, token)).status).toBe(200);
    } finally {
      await fake.close();
    }
  });

  it('reports a paced client as never exceeding the limit', async () => {
    const fake = await startFakeHubSpot({ rateLimit: { perTenSeconds: 5, windowMs: 500 } });
    try {
      const p = fake.addPortal();
      const token = (await connect(fake, p.hubId)).access_token;
      for (let i = 0; i < 8; i++) {
        expect((await list(fake, token)).status).toBe(200);
        await sleep(150);
      }
      const s = fake.stats();
      expect(s.rateLimited).toBe(0);
      expect(s.maxPerWindowSeen).toBeGreaterThan(0);
      expect(s.maxPerWindowSeen).toBeLessThanOrEqual(5);
    } finally {
      await fake.close();
    }
  });

  it("limits search per token per second with HubSpot's secondly body, which the SDK's own retry handles", async () => {
    // A long window first, so a slow machine cannot spread the three raw searches over two windows.
    const fake = await startFakeHubSpot({ rateLimit: { searchPerSecond: 2, perTenSeconds: 3, windowMs: 100_000 } });
    const quiet = jest.spyOn(console, 'error').mockImplementation(() => undefined);
    try {
      const p = fake.addPortal();
      fake.seed(p.hubId, 'tickets', 3);
      const token = (await connect(fake, p.hubId)).access_token;
      const raw = [await searchRaw(fake, token), await searchRaw(fake, token), await searchRaw(fake, token)];
      expect(raw.map((r) => r.status)).toEqual([200, 200, 429]);
      expect(await raw[2]?.json()).toMatchObject({ status: 'error', message: 'You have reached your secondly limit.', errorType: 'RATE_LIMIT', policyName: 'SECONDLY' });
      // Search does not spend the ten-secondly budget.
      expect((await list(fake, token)).headers.get('x-hubspot-ratelimit-remaining')).toBe('2');

      // HubSpot's real one-second search window, which the SDK's retry (1 s, then 2 s) is built for.
      fake.setRateLimit({ windowMs: 10_000 });
      await sleep(1100);
      fake.resetStats();
      const client = sdk(fake, token, 3);
      const q = { filterGroups: [{ filters: [{ propertyName: 'hs_lastmodifieddate', operator: FilterOperatorEnum.Gte, value: '0' }] }], limit: 10 };
      const results = await Promise.all([1, 2, 3, 4].map(() => client.crm.tickets.searchApi.doSearch(q)));
      expect(results.map((r) => r.total)).toEqual([3, 3, 3, 3]);
      const s = fake.stats();
      expect(s.rateLimited).toBeGreaterThanOrEqual(2);
      expect(s.searchRequests).toBe(4 + s.rateLimited);
    } finally {
      quiet.mockRestore();
      await fake.close();
    }
  });

  it('enforces a daily limit for private-app tokens with a DAILY 429', async () => {
    const fake = await startFakeHubSpot({ rateLimit: { dailyLimit: 3 } });
    try {
      const p = fake.addPortal();
      const pat = fake.createPrivateAppToken(p.hubId);
      const statuses: number[] = [];
      let last: Response | undefined;
      for (let i = 0; i < 4; i++) {
        last = await list(fake, pat);
        statuses.push(last.status);
      }
      expect(statuses).toEqual([200, 200, 200, 429]);
      expect(last?.headers.get('x-hubspot-ratelimit-daily-remaining')).toBe('0');
      expect(await last?.json()).toMatchObject({ message: 'You have reached your daily limit.', errorType: 'RATE_LIMIT', policyName: 'DAILY' });
    } finally {
      await fake.close();
    }
  });
});

describe('fake HubSpot fault injection', () => {
  let fake: FakeHubSpot;
  let token: string;

  beforeAll(async () => {
    fake = await startFakeHubSpot();
    const p = fake.addPortal();
    fake.seed(p.hubId, 'tickets', 2);
    token = (await connect(fake, p.hubId)).access_token;
  });

  afterAll(async () => {
    await fake.close();
  });

  afterEach(() => fake.clearFaults());

  it('fails matching requests with a status the given number of times, then serves them', async () => {
    fake.resetStats();
    fake.injectFault({ match: /\/crm\/v3\/objects\/tickets/, status: 503, times: 2 });
    expect((await list(fake, token)).status).toBe(503);
    const err = await apiError(sdk(fake, token).crm.tickets.basicApi.getPage(1));
    expect(err.code).toBe(503);
    expect(err.body.status).toBe('error');
    expect((await list(fake, token)).status).toBe(200);
    expect(fake.stats().faultsInjected).toBe(2);
    expect(fake.stats().byRoute['GET /crm/v3/objects/tickets']).toBe(3);
  });

  it("lets the SDK's 5xx retry recover from a single failure", async () => {
    const quiet = jest.spyOn(console, 'error').mockImplementation(() => undefined);
    try {
      fake.resetStats();
      fake.injectFault({ match: /^GET \/crm\/v3\/objects\/tickets/, status: 502 });
      const page = await sdk(fake, token, 2).crm.tickets.basicApi.getPage(10);
      expect(page.results).toHaveLength(2);
      expect(fake.stats().requests).toBe(2);
    } finally {
      quiet.mockRestore();
    }
  });

  it('sends a custom body, and only to requests that match', async () => {
    fake.injectFault({ match: /\/search$/, status: 400, body: { status: 'error', message: 'custom', category: 'VALIDATION_ERROR' } });
    expect((await list(fake, token)).status).toBe(200);
    const res = await searchRaw(fake, token);
    expect(res.status).toBe(400);
    expect(await res.json()).toEqual({ status: 'error', message: 'custom', category: 'VALIDATION_ERROR' });
  });

  it('resets the connection', async () => {
    fake.injectFault({ resetConnection: true });
    await expect(list(fake, token)).rejects.toThrow();
    expect((await list(fake, token)).status).toBe(200);
  });

  it('slows a reply down without failing it', async () => {
    fake.injectFault({ delayMs: 300 });
    const started = Date.now();
    const res = await list(fake, token);
    expect(res.status).toBe(200);
    expect(Date.now() - started).toBeGreaterThanOrEqual(290);
  });
});
