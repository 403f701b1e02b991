import { getUser, GraphClientFactory, limiterKey } from '../../../../src/connectors/msgraph';
import { startFakeGraph, type FakeGraph } from '../../../fakes/graph';

const APP = { clientId: 'app-client-id', clientSecret: 'app-secret-0123456789abcdef' };

describe('per-mailbox limits: Outlook concurrency and 429 Retry-After', () => {
  let fake: FakeGraph;
  let tenant: string;
  const A = 'busy@contoso.example';
  const B = 'quiet@contoso.example';

  beforeAll(async () => {
    fake = await startFakeGraph({ ...APP, responseDelayMs: 40 });
    tenant = fake.addTenant();
    fake.consent(tenant);
    fake.addUser(tenant, { mail: A });
    fake.addUser(tenant, { mail: B });
  });
  afterAll(async () => fake.stop());
  beforeEach(() => fake.clearRequests());

  const newFactory = (over: Partial<ConstructorParameters<typeof GraphClientFactory>[0]> = {}) =>
    new GraphClientFactory({ ...APP, baseUrl: fake.url, authorityHost: fake.url, tls: { ca: fake.ca }, ...over });

  it('keys mail calls by mailbox and everything else by app', () => {
    expect(limiterKey('https://graph.microsoft.com/v1.0/users/Support%40Contoso.example/messages?$top=5')).toBe('users/support@contoso.example');
    expect(limiterKey('https://graph.microsoft.com/v1.0/subscriptions/abc')).toBe('app');
  });

  it('never has more than 4 requests in flight for one mailbox', async () => {
    const factory = newFactory();
    const client = factory.client(tenant);
    await Promise.all(Array.from({ length: 12 }, () => getUser(client, A)));
    expect(fake.maxInFlight(A)).toBe(4);
  });

  it('a 429 pauses only its mailbox for Retry-After: the other mailbox goes on, and the throttled call succeeds on retry', async () => {
    const events: Array<{ key: string; status: number; waitMs: number; willRetry: boolean }> = [];
    const factory = newFactory({ onThrottled: (_t, e) => events.push(e) });
    const client = factory.client(tenant);
    fake.throttle({ times: 1, retryAfterSeconds: 2, when: (r) => r.mailbox === A });

    const done: string[] = [];
    const a = getUser(client, A).then((u) => {
      done.push('A');
      return u;
    });
    // Wait until the client has seen A's 429, then ask for B and for A again.
    while (events.length === 0) await new Promise((r) => setTimeout(r, 5));
    const a2 = getUser(client, A).then(() => done.push('A2'));
    const b = getUser(client, B).then(() => done.push('B'));
    await Promise.all([a, a2, b]);

    expect((await a)?.mail).toBe(A);
    expect(done[0]).toBe('B');
    const order = fake.requests.filter((r) => r.path.startsWith('/v1.0/users/')).map((r) => `${r.mailbox}:${r.status}`);
    // Nothing went to the busy mailbox between its 429 and B's answer.
    expect(order.slice(0, 2)).toEqual([`${A}:429`, `${B}:200`]);
    expect(order.filter((o) => o === `${A}:200`)).toHaveLength(2);
    expect(events).toEqual([expect.objectContaining({ key: `${tenant}:users/${A}`, status: 429, waitMs: 2000, willRetry: true })]);
  });

  it('a Retry-After longer than one call may wait is returned as the 429 (the queue retries later), and the mailbox stays paused', async () => {
    const factory = newFactory({ maxThrottleWaitMs: 1_000 });
    const client = factory.client(tenant);
    fake.throttle({ times: 1, retryAfterSeconds: 120, when: (r) => r.mailbox === A });
    await expect(getUser(client, A)).rejects.toMatchObject({ statusCode: 429 });
    expect(fake.requests.filter((r) => r.mailbox === A)).toHaveLength(1);
    expect(factory.limiter.stats().penalties).toBe(1);
  });

  it('a 503 is retried for a GET', async () => {
    const factory = newFactory();
    fake.throttle({ status: 503, times: 1, retryAfterSeconds: 0, when: (r) => r.mailbox === B });
    expect((await getUser(factory.client(tenant), B))?.mail).toBe(B);
    expect(fake.requests.filter((r) => r.mailbox === B).map((r) => r.status)).toEqual([503, 200]);
  });
});
