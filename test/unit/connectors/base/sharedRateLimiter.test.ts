import { DistributedBudget, limitKeyHash, SharedRateLimiter, type BudgetRow, type SharedLimitKey } from '../../../../src/connectors/base';
import { maxInWindow } from '../../../helpers/windows';
import { criticalTicketCard, TEAMS_BUDGET_MARGIN_MS, toEnvelope, WebhookRateLimiter, WebhookSender } from '../../../../src/connectors/teams';
import { partitionKey, TABLES, TenantTable } from '../../../../src/storage';
import { startFakeTeams, type FakeTeams } from '../../../fakes/teams';
import { useAzurite } from '../../../helpers/azurite';

/**
 * The shared limiter on a real Azurite: each instance is its own `DistributedBudget` over its own table
 * client, as separate Functions instances are. Grant (or arrival) times are checked against every
 * window: in no rolling window more than its limit, however the instances interleave.
 */
describe('SharedRateLimiter across instances', () => {
  let az: Awaited<ReturnType<typeof useAzurite>>;
  let fake: FakeTeams;
  let n = 0;
  beforeAll(async () => {
    az = await useAzurite();
    fake = await startFakeTeams();
  });
  afterAll(async () => {
    await fake?.stop();
    await az?.stop();
  });

  const budget = (minMarginMs = 100) => new DistributedBudget(new TenantTable<BudgetRow>(az.clients.table(TABLES.rateBudgets)), { minMarginMs });
  const key = (): SharedLimitKey => {
    n++;
    return { id: `k${n}`, pk: partitionKey.accountIndex('test-limit', `thing${n}`), rk: 'limit' };
  };

  it('three instances, two windows: no rolling window of either holds more than its limit', async () => {
    const windows = [
      { limit: 4, intervalMs: 500 },
      { limit: 10, intervalMs: 2_000 },
    ];
    const limiters = [0, 1, 2].map(() => new SharedRateLimiter(budget(), windows));
    const k = key();
    const times: number[] = [];
    const perInstance = [0, 0, 0];
    let issued = 0;
    await Promise.all(
      limiters.flatMap((l, i) =>
        [0, 1].map(async () => {
          while (issued < 24) {
            issued++;
            await l.take(k);
            times.push(Date.now());
            perInstance[i] = (perInstance[i] ?? 0) + 1;
          }
        }),
      ),
    );
    expect(times).toHaveLength(24);
    expect(maxInWindow(times, 500)).toBeLessThanOrEqual(4);
    expect(maxInWindow(times, 2_000)).toBeLessThanOrEqual(10);
    // Every instance was granted calls: the limit held across instances, not inside one.
    expect(perInstance.every((c) => c > 0)).toBe(true);
  }, 60_000);

  it('a large limit is reserved in chunks, so the row stays small', async () => {
    const window = { limit: 10_000, intervalMs: 600_000 };
    const b = budget();
    const l = new SharedRateLimiter(b, [window]);
    const k = key();
    for (let i = 0; i < 600; i++) await l.take(k);
    const row = await new TenantTable<BudgetRow>(az.clients.table(TABLES.rateBudgets)).get(k.pk, `${k.rk}.10000per600000`);
    // 600 calls in chunks of 250 (a fortieth of the limit): a few entries, not 600.
    expect((JSON.parse(row?.data.entries ?? '[]') as unknown[]).length).toBeLessThanOrEqual(4);
    expect(b.stats().reservations).toBeLessThanOrEqual(4);
  });

  it('a slow call counts until its response: the row moves its end, and no other instance is granted inside the window after it', async () => {
    const window = { limit: 1, intervalMs: 500 };
    const a = new SharedRateLimiter(budget(), [window]);
    const b = new SharedRateLimiter(budget(), [window]);
    const k = key();
    const grant = await a.take(k);
    // A's call got its answer 800 ms after its grant (a cold connection): the provider may have seen it at any point until then.
    const answeredAt = (grant[0]?.at as number) + 800;
    await a.finished(k, grant, answeredAt);
    const row = await new TenantTable<BudgetRow>(az.clients.table(TABLES.rateBudgets)).get(k.pk, `${k.rk}.1per500`);
    expect(JSON.parse(row?.data.entries ?? '[]')).toEqual([expect.objectContaining({ i: grant[0]?.entryId, n: 1, e: answeredAt })]);
    await b.take(k);
    // With a limit of 1, B's call may go only once A's call, counted until its answer, has left the window.
    expect(Date.now()).toBeGreaterThanOrEqual(answeredAt + window.intervalMs);
  }, 30_000);

  it("Teams' daily window is not shared (implied by the 2-hour one); the shorter ones each have a row", async () => {
    const b = budget(TEAMS_BUDGET_MARGIN_MS);
    const limiter = new WebhookRateLimiter(undefined, { shared: { budget: b, scope: 'teams-webhook' } });
    const url = 'https://example.webhook.office.com/workflows/abc?sig=SECRET';
    const slot = await limiter.acquire('secret-name', 5_000, url);
    slot.release();
    const rows = [];
    for await (const r of new TenantTable<BudgetRow>(az.clients.table(TABLES.rateBudgets)).all(partitionKey.accountIndex('teams-webhook', limitKeyHash(url)))) rows.push(r);
    expect(rows.map((r) => r.rowKey.replace(/^.*\./, '')).sort()).toEqual(['135per7200000', '3per1250', '55per30000', '90per3600000']);
    // The row names a hash of the URL, never the URL or its signature.
    expect(JSON.stringify(rows)).not.toMatch(/SECRET|webhook\.office\.com/);
  });

  it('three Teams senders (three instances) on one webhook: arrivals at Teams stay within the window', async () => {
    const windows = [{ limit: 3, intervalMs: 1_000 }];
    const url = fake.url('shared-hook');
    const senders = [0, 1, 2].map(
      () => new WebhookSender({ limiter: new WebhookRateLimiter(windows, { shared: { budget: budget(TEAMS_BUDGET_MARGIN_MS), scope: 'teams-webhook' } }), baseDelayMs: 20, maxLimiterWaitMs: 60_000 }),
    );
    const ticket = { id: 'INC-1', title: 'Printer on fire', priority: 'P1', status: 'New', url: 'https://itil.example.com/t/1' };
    const envelope = toEnvelope(criticalTicketCard(ticket, { notificationId: 'n-8000000000000-000000000001', count: 1, windowMinutes: 30, createdAt: new Date() }));
    // Each sender names the webhook by a different secret name (as versioned secrets do): the URL is what Teams limits.
    await Promise.all(senders.flatMap((s, i) => Array.from({ length: 5 }, () => s.post({ key: `secret-v${i}`, url, kind: 'workflows' }, envelope))));
    const arrivals = fake.posts('shared-hook').map((p) => p.at);
    expect(arrivals).toHaveLength(15);
    expect(maxInWindow(arrivals, 1_000)).toBeLessThanOrEqual(3);
  }, 60_000);
});
