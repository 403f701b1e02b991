import { criticalTicketCard, toEnvelope, WebhookPostError, WebhookRateLimiter, WebhookSender, RateLimitWaitError } from '../../../../src/connectors/teams';
import { startFakeTeams, type FakeTeams } from '../../../fakes/teams';

const ticket = { id: 'INC-1', title: 'Printer on fire', priority: 'P1', status: 'New', url: 'https://itil.example.com/t/1' };
const envelope = (id = 'n-8000000000000-000000000001') => toEnvelope(criticalTicketCard(ticket, { notificationId: id, count: 1, windowMinutes: 30, createdAt: new Date() }));

let fake: FakeTeams;
beforeAll(async () => {
  fake = await startFakeTeams();
});
afterAll(async () => fake.stop());
beforeEach(() => fake.reset());

const fastSender = (limiter = new WebhookRateLimiter()) => new WebhookSender({ limiter, baseDelayMs: 20, maxDelayMs: 2_000, defaultThrottleMs: 50 });

describe('WebhookSender', () => {
  it('posts the envelope to a Workflows webhook (202)', async () => {
    const res = await fastSender().post({ key: 'k1', url: fake.url('ops'), kind: 'workflows' }, envelope());
    expect(res).toEqual({ attempts: 1, status: 202 });
    expect(fake.accepted('ops')).toHaveLength(1);
    expect(fake.accepted('ops')[0]?.notificationId).toBe('n-8000000000000-000000000001');
  });

  it('retries a 429 after its Retry-After and a 503, then succeeds once', async () => {
    fake.inject('ops', '429', '503');
    const res = await new WebhookSender({ limiter: new WebhookRateLimiter(), baseDelayMs: 20, maxAttempts: 4 }).post({ key: 'k2', url: fake.url('ops'), kind: 'workflows' }, envelope());
    expect(res.attempts).toBe(3);
    expect(fake.posts('ops').map((p) => p.status)).toEqual([429, 503, 202]);
    const [first, , third] = fake.posts('ops');
    // Retry-After: 1 was honoured for the throttled attempt.
    expect((third?.at ?? 0) - (first?.at ?? 0)).toBeGreaterThanOrEqual(950);
    expect(fake.accepted('ops')).toHaveLength(1);
  });

  it('treats a legacy connector 200 whose body reports HTTP error 429 as throttling, and retries', async () => {
    fake.inject('legacy', '429-body');
    const res = await fastSender().post({ key: 'k3', url: fake.url('legacy', 'incoming-webhook'), kind: 'incoming-webhook' }, envelope());
    expect(res).toEqual({ attempts: 2, status: 200 });
    expect(fake.posts('legacy').map((p) => p.outcome)).toEqual(['injected', 'accepted']);
  });

  it('gives up on a webhook that keeps failing with the last error, which names the status but not the URL', async () => {
    fake.failAlways('down', '500');
    const url = fake.url('down');
    const err = await fastSender().post({ key: 'k4', url, kind: 'workflows' }, envelope()).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(WebhookPostError);
    expect((err as WebhookPostError).failure).toBe('server-error');
    expect((err as Error).message).toBe('Teams webhook answered 500');
    expect(fake.posts('down')).toHaveLength(3);
    expect(JSON.stringify(err) + String(err) + ((err as Error).stack ?? '')).not.toContain(new URL(url).searchParams.get('sig') as string);
  });

  it('says a post is waiting for a rate-limit slot while it still waits, and names every attempt (issue 12 finding 8: no silent wait)', async () => {
    // One call per 3 s: the second post waits ~3 s for its slot.
    const sender = new WebhookSender({ limiter: new WebhookRateLimiter([{ limit: 1, intervalMs: 3_000 }]), baseDelayMs: 20 });
    const target = { key: 'slow', url: fake.url('slow'), kind: 'workflows' as const };
    await sender.post(target, envelope());
    const events: Array<[string, number]> = [];
    const second = sender.post(target, envelope('n-8000000000000-000000000002'), {
      onSlotWait: (a) => events.push(['waiting', a]),
      onAttempt: (a) => events.push(['attempt', a]),
    });
    // Before the slot comes, the wait has already been reported (and nothing was posted yet).
    await new Promise((r) => setTimeout(r, 2_400));
    expect(events).toEqual([['waiting', 1]]);
    expect(fake.accepted('slow')).toHaveLength(1);
    await second;
    expect(events).toEqual([['waiting', 1], ['attempt', 1]]);
    expect(fake.accepted('slow')).toHaveLength(2);
    // A post granted at once reports its attempt and no wait.
    const quick: string[] = [];
    await fastSender().post({ key: 'quick', url: fake.url('quick'), kind: 'workflows' }, envelope(), { onSlotWait: () => quick.push('waiting'), onAttempt: () => quick.push('attempt') });
    expect(quick).toEqual(['attempt']);
  });

  it('does not retry a refusal (4xx other than 429)', async () => {
    fake.inject('gone', '404');
    const err = await fastSender().post({ key: 'k5', url: fake.url('gone'), kind: 'workflows' }, envelope()).catch((e: unknown) => e);
    expect(err).toMatchObject({ failure: 'rejected', retryable: false, status: 404 });
    expect(fake.posts('gone')).toHaveLength(1);
  });

  it('reports an unreachable webhook as a network failure without the URL', async () => {
    const err = await fastSender().post({ key: 'k6', url: 'http://127.0.0.1:1/workflows/x?sig=SECRETSIG', kind: 'workflows' }, envelope()).catch((e: unknown) => e);
    expect(err).toMatchObject({ failure: 'network' });
    expect(String((err as Error).message)).not.toContain('SECRETSIG');
  });
});

describe('WebhookRateLimiter', () => {
  it("keeps 24 parallel posts to one webhook within Teams' documented limits", async () => {
    const sender = fastSender();
    const results = await Promise.all(Array.from({ length: 24 }, (_, i) => sender.post({ key: 'burst', url: fake.url('burst'), kind: 'workflows' }, envelope(`n-8000000000000-${String(i).padStart(12, '0')}`))));
    expect(results.every((r) => r.attempts === 1)).toBe(true);
    expect(fake.accepted('burst')).toHaveLength(24);
    expect(fake.violations('burst')).toBe(0);
  });

  it('without it the same burst breaks the limit (so the check above can fail)', async () => {
    const sender = fastSender(new WebhookRateLimiter([{ limit: 1000, intervalMs: 1000 }], { maxConcurrent: 100 }));
    await Promise.allSettled(Array.from({ length: 12 }, () => sender.post({ key: 'nolimit', url: fake.url('nolimit'), kind: 'workflows' }, envelope())));
    expect(fake.violations('nolimit')).toBeGreaterThan(0);
  });

  it('keys are independent, and a wait longer than allowed is a RateLimitWaitError', async () => {
    const limiter = new WebhookRateLimiter([{ limit: 1, intervalMs: 60_000 }]);
    const release = await limiter.acquire('a', 100);
    release();
    const other = await limiter.acquire('b', 100);
    other();
    await expect(limiter.acquire('a', 200)).rejects.toBeInstanceOf(RateLimitWaitError);
  });
});
