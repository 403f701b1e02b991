import { DistributedBudget, type BudgetKey, type BudgetRow, type CallClass } from '../../../../src/connectors/hubspot/budget';
import { partitionKey, TABLES, TenantTable } from '../../../../src/storage';
import { useAzurite } from '../../../helpers/azurite';

/**
 * The cross-instance budget on a real Azurite: several `DistributedBudget`s over one table are what
 * several Functions instances have. The invariant is checked on grant times, by the clock that decides
 * them: in no rolling window are more calls granted than the limit, however the instances interleave.
 */
describe('DistributedBudget', () => {
  let az: Awaited<ReturnType<typeof useAzurite>>;
  let n = 0;
  beforeAll(async () => {
    az = await useAzurite();
  });
  afterAll(async () => az?.stop());

  const table = () => new TenantTable<BudgetRow>(az.clients.table(TABLES.rateBudgets));
  const key = (): BudgetKey => {
    n++;
    return { id: `p${n}`, pk: partitionKey.accountIndex('hubspot', `900${n}`), rk: 'standard' };
  };

  function maxInWindow(times: number[], windowMs: number): number {
    const t = [...times].sort((a, b) => a - b);
    let max = 0;
    for (let i = 0, j = 0; i < t.length; i++) {
      while ((t[j] as number) <= (t[i] as number) - windowMs) j++;
      max = Math.max(max, i - j + 1);
    }
    return max;
  }

  async function run(budgets: DistributedBudget[], k: BudgetKey, window: { limit: number; intervalMs: number }, total: number, workers: number, cls: (b: number) => CallClass = () => 'background'): Promise<number[]> {
    const times: number[] = [];
    let issued = 0;
    await Promise.all(
      budgets.flatMap((b, bi) =>
        Array.from({ length: workers }, async () => {
          while (issued < total) {
            issued++;
            await b.take(k, cls(bi), window);
            times.push(Date.now());
          }
        }),
      ),
    );
    return times;
  }

  it('three instances together never grant more than the limit in any rolling window', async () => {
    const window = { limit: 20, intervalMs: 400 };
    const budgets = [new DistributedBudget(table()), new DistributedBudget(table()), new DistributedBudget(table())];
    const times = await run(budgets, key(), window, 120, 4);
    expect(times).toHaveLength(120);
    expect(maxInWindow(times, window.intervalMs)).toBeLessThanOrEqual(20);
    // Each instance got calls: nobody was locked out.
    expect(budgets.every((b) => b.stats().reservations > 0)).toBe(true);
    // Contention on the row happened and was resolved by the ETag, not by luck.
    expect(budgets.reduce((s, b) => s + b.stats().writeConflicts, 0)).toBeGreaterThan(0);
  });

  it('a call that left well after its grant is booked again at the time it left; a prompt one is not', async () => {
    const window = { limit: 5, intervalMs: 400 }; // margin 50 ms: more than 25 ms late is booked
    const k = key();
    const t = table();
    const b = new DistributedBudget(t);
    await b.take(k, 'interactive', window); // interactive: no reservation ahead of time changes the row
    const granted = Date.now();
    const entriesOf = async () => JSON.parse((await t.get(k.pk, k.rk))?.data.entries ?? '[]') as Array<{ n: number; r: number; e: number }>;
    const before = await entriesOf();

    await b.sent(k, 'interactive', window, granted, granted + 20);
    expect(b.stats().lateCalls).toBe(0);
    expect(await entriesOf()).toEqual(before);

    await b.sent(k, 'interactive', window, granted, granted + 200);
    expect(b.stats().lateCalls).toBe(1);
    const after = await entriesOf();
    expect(after).toHaveLength(before.length + 1);
    expect(after).toContainEqual(expect.objectContaining({ n: 1, r: granted + 200, e: granted + 200 }));
  });

  it('with a late call booked, no rolling window from the time it left holds more than the limit', async () => {
    const window = { limit: 5, intervalMs: 400 };
    const k = key();
    const b = new DistributedBudget(table());
    const times: number[] = [];
    for (let n = 0; n < 5; n++) {
      await b.take(k, 'background', window);
      times.push(Date.now());
    }
    // The last of them only left 150 ms after its grant (a TLS handshake, say): HubSpot counts it then.
    const late = (times.pop() as number) + 150;
    await b.sent(k, 'background', window, late - 150, late);
    times.push(late);
    for (let n = 0; n < 10; n++) {
      await b.take(k, 'background', window);
      times.push(Date.now());
    }
    expect(maxInWindow(times, window.intervalMs)).toBeLessThanOrEqual(5);
  });

  it('a pause (a 429 seen by one instance) holds every instance', async () => {
    const window = { limit: 50, intervalMs: 1000 };
    const k = key();
    const a = new DistributedBudget(table());
    const b = new DistributedBudget(table());
    await a.take(k, 'interactive', window);
    await a.pause(k, 300);
    const before = Date.now();
    await b.take(k, 'interactive', window);
    expect(Date.now() - before).toBeGreaterThanOrEqual(250);
  });
});
