import { DistributedBudget, type BudgetRow } from '../../../../src/connectors/base';
import { getUser, GRAPH_BUDGET_MARGIN_MS, GraphClientFactory } from '../../../../src/connectors/msgraph';
import { TABLES, TenantTable } from '../../../../src/storage';
import { startFakeGraph, type FakeGraph } from '../../../fakes/graph';
import { useAzurite } from '../../../helpers/azurite';
import { maxInWindow } from '../../../helpers/windows';

const APP = { clientId: 'app-client-id', clientSecret: 'app-secret-0123456789abcdef' };

/**
 * Outlook's per-mailbox window across instances: three factories, each with its own budget object and
 * table client (three Functions instances), on one Azurite and one fake Graph. What counts is when the
 * requests reach Graph, so the check is on the fake's arrival times, per mailbox.
 */
describe('per-mailbox request window across instances', () => {
  let az: Awaited<ReturnType<typeof useAzurite>>;
  let fake: FakeGraph;
  let tenant: string;
  let other: string;
  const A = 'busy@contoso.example';
  const B = 'quiet@contoso.example';

  beforeAll(async () => {
    az = await useAzurite();
    fake = await startFakeGraph(APP);
    tenant = fake.addTenant();
    other = fake.addTenant();
    fake.consent(tenant);
    fake.consent(other);
    fake.addUser(tenant, { mail: A });
    fake.addUser(tenant, { mail: B });
    fake.addUser(other, { mail: A });
  });
  afterAll(async () => {
    await fake?.stop();
    await az?.stop();
  });

  const instance = (window: { limit: number; intervalMs: number }) =>
    new GraphClientFactory({
      ...APP,
      baseUrl: fake.url,
      authorityHost: fake.url,
      tls: { ca: fake.ca },
      requestsPerWindow: window.limit,
      windowMs: window.intervalMs,
      budget: new DistributedBudget(new TenantTable<BudgetRow>(az.clients.table(TABLES.rateBudgets)), { minMarginMs: GRAPH_BUDGET_MARGIN_MS }),
    });

  it('three instances on one mailbox: never more than the limit in any window at Graph, every call answered once', async () => {
    const window = { limit: 5, intervalMs: 1_000 };
    const factories = [instance(window), instance(window), instance(window)];
    // Tokens first, so the window is about mail calls (token requests are not mailbox calls anyway).
    await Promise.all(factories.map((f) => f.token(tenant)));
    fake.clearRequests();
    const users = await Promise.all(factories.flatMap((f) => Array.from({ length: 7 }, () => getUser(f.client(tenant), A))));
    expect(users.every((u) => u?.mail === A)).toBe(true);
    const arrivals = fake.requests.filter((r) => r.mailbox === A && r.tenantId === tenant).map((r) => r.at);
    expect(arrivals).toHaveLength(21);
    expect(maxInWindow(arrivals, window.intervalMs)).toBeLessThanOrEqual(window.limit);
  }, 60_000);

  it('the window is per Entra tenant and mailbox: another mailbox, or the same address in another tenant, is not held back', async () => {
    const window = { limit: 2, intervalMs: 3_000 };
    const [f1, f2] = [instance(window), instance(window)] as [GraphClientFactory, GraphClientFactory];
    await Promise.all([f1.token(tenant), f1.token(other), f2.token(tenant)]);
    await getUser(f1.client(tenant), A);
    await getUser(f2.client(tenant), A);
    fake.clearRequests();
    // A is spent across both instances; A again waits, while B, and A in the other tenant, go at once.
    const third = getUser(f2.client(tenant), A);
    await Promise.all([getUser(f2.client(tenant), B), getUser(f1.client(other), A)]);
    expect(fake.requests.map((r) => `${r.tenantId === tenant ? 'own' : 'other'}:${r.mailbox}`).sort()).toEqual([`other:${A}`, `own:${B}`]);
    expect((await third)?.mail).toBe(A);
    expect(fake.requests.at(-1)).toMatchObject({ tenantId: tenant, mailbox: A });
  }, 30_000);
});
