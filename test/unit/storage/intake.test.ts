import fc from 'fast-check';
import { ZodError } from 'zod';
import { encodeQueueMessage, MAX_ENCODED_BYTES, MessageTooLargeError, QueueSender, splitIntoMessages } from '../../../src/storage/queueSender';
import { QUEUES, TABLES, type QueueName } from '../../../src/storage/names';
import { ProcessedStore, type ProcessedRow } from '../../../src/storage/repositories/processed';
import { TenantTable } from '../../../src/storage/tenantTable';
import { escapeKeyPart, partitionKey, tenantId } from '../../../src/storage/keys';
import { useAzurite } from '../../helpers/azurite';

let azurite: Awaited<ReturnType<typeof useAzurite>>;

beforeAll(async () => {
  azurite = await useAzurite();
  await azurite.clients.ensureAll();
});
afterAll(async () => azurite?.stop());

describe('splitIntoMessages', () => {
  const make = (items: string[], part: number) => ({ tenantId: 't', part, items });

  it('measures in the encoded bytes sent: every part fits, no two neighbours would have fit together, nothing lost or reordered', () => {
    fc.assert(
      fc.property(fc.array(fc.string({ unit: 'binary', maxLength: 3000 }), { maxLength: 200 }), fc.integer({ min: 4000, max: MAX_ENCODED_BYTES }), (items, limit) => {
        const parts = splitIntoMessages('q', items, make, limit);
        expect(parts.flatMap((p) => p.items)).toEqual(items);
        parts.forEach((p, i) => {
          expect(p.part).toBe(i);
          expect(encodeQueueMessage(p).length).toBeLessThanOrEqual(limit);
          const next = parts[i + 1];
          // Greedy and exact: the next part's first item would not have fit in this one.
          if (next) expect(encodeQueueMessage(make([...p.items, next.items[0] as string], i)).length).toBeGreaterThan(limit);
        });
      }),
      { numRuns: 150 },
    );
  });

  it('an item too large for any message is an error, not a silently oversized message', () => {
    expect(() => splitIntoMessages('q', ['x'.repeat(MAX_ENCODED_BYTES)], make)).toThrow(MessageTooLargeError);
  });
});

describe('QueueSender.sendIntake', () => {
  const sender = () => new QueueSender(azurite.clients);

  it('takes account-scoped deliveries on intake queues only', async () => {
    await expect(sender().sendIntake(QUEUES.hubspotWebhooks, { source: 'hubspot', deliveryId: 'd-1', events: [] })).resolves.toEqual(expect.any(String));
    await expect(sender().sendIntake(QUEUES.engineEvents as unknown as 'hubspot-webhooks', { source: 'hubspot', deliveryId: 'd-1' })).rejects.toThrow(/not an intake queue/);
    await expect(sender().sendIntake(QUEUES.graphWebhooks, { source: 'nobody', deliveryId: 'd-1' } as never)).rejects.toBeInstanceOf(ZodError);
    // And the tenant-scoped send still refuses a message without a tenant.
    await expect(sender().send(QUEUES.hubspotEvents as QueueName, { source: 'hubspot', deliveryId: 'd-1' } as never)).rejects.toBeInstanceOf(ZodError);
    await azurite.clients.queue(QUEUES.hubspotWebhooks).clearMessages();
  });
});

describe('ProcessedStore.claimMany', () => {
  const T = tenantId('tenant-claims');
  const table = () => new TenantTable<ProcessedRow>(azurite.clients.table(TABLES.processed));
  const ids = (prefix: string, n: number) => Array.from({ length: n }, (_, i) => ({ id: `${prefix}:${i}` }));

  it('claims 100 fresh ids in one go; a second owner sees them pending, the same owner takes them over', async () => {
    let clock = 1_000_000;
    const store = new ProcessedStore(table(), () => clock);
    const items = ids('fresh', 100);
    const first = await store.claimMany('src', T, items, { staleAfterMs: 60_000, owner: 'o1' });
    expect([...first.values()].every((v) => v === 'claimed')).toBe(true);
    expect(first.size).toBe(100);
    const other = await store.claimMany('src', T, items, { staleAfterMs: 60_000, owner: 'o2' });
    expect(new Set(other.values())).toEqual(new Set(['pending']));
    const again = await store.claimMany('src', T, items, { staleAfterMs: 60_000, owner: 'o1' });
    expect(new Set(again.values())).toEqual(new Set(['claimed']));
    // Confirmed: everyone sees them done, however late.
    await store.confirm('src', T, items.map((i) => i.id));
    clock += 10 * 60_000;
    expect(new Set((await store.claimMany('src', T, items, { staleAfterMs: 60_000, owner: 'o3' })).values())).toEqual(new Set(['done']));
  });

  it('a mix: fresh ones are claimed, confirmed ones are done, stale ones are taken over', async () => {
    let clock = 5_000_000;
    const store = new ProcessedStore(table(), () => clock);
    await store.claimMany('src', T, [{ id: 'mix:done' }, { id: 'mix:stale' }], { staleAfterMs: 60_000, owner: 'old' });
    await store.confirm('src', T, ['mix:done']);
    clock += 61_000;
    const out = await store.claimMany('src', T, [{ id: 'mix:done' }, { id: 'mix:stale' }, { id: 'mix:fresh' }], { staleAfterMs: 60_000, owner: 'new' });
    expect(Object.fromEntries(out)).toEqual({ 'mix:done': 'done', 'mix:stale': 'claimed', 'mix:fresh': 'claimed' });
    const rows = await table().getMany(partitionKey.processed('src', T), ['mix:stale', 'mix:fresh'].map(escapeKeyPart));
    expect([...rows.values()].map((r) => r.data.owner)).toEqual(['new', 'new']);
  });

  it('of two owners racing for the same fresh ids, exactly one gets each id', async () => {
    const store = new ProcessedStore(table());
    const items = ids('race', 60);
    const [a, b] = await Promise.all([store.claimMany('src', T, items, { staleAfterMs: 60_000, owner: 'a' }), store.claimMany('src', T, items, { staleAfterMs: 60_000, owner: 'b' })]);
    for (const { id } of items) expect([a.get(id), b.get(id)].filter((v) => v === 'claimed')).toHaveLength(1);
  });

  it('claims are per tenant: the same id in another tenant is fresh', async () => {
    const store = new ProcessedStore(table());
    await store.claimMany('src', T, [{ id: 'shared' }], { staleAfterMs: 60_000, owner: 'x' });
    expect(Object.fromEntries(await store.claimMany('src', tenantId('tenant-other'), [{ id: 'shared' }], { staleAfterMs: 60_000, owner: 'y' }))).toEqual({ shared: 'claimed' });
  });
});
