import { COUNT_SCAN_CAP, HubSpotRecordStore, type HubSpotObject } from '../../../../src/connectors/hubspot';
import { integrationId, partitionKey, TABLES, TenantTable, tenantId, type StorageClients } from '../../../../src/storage';
import { useAzurite } from '../../../helpers/azurite';

/** The synced store on real Azurite: rows, chunking, versions, tombstones, counters, the tickets query. */
describe('HubSpot record store', () => {
  let az: Awaited<ReturnType<typeof useAzurite>>;
  let clients: StorageClients;
  let store: HubSpotRecordStore;
  let n = 0;

  beforeAll(async () => {
    az = await useAzurite();
    clients = az.clients;
    store = new HubSpotRecordStore(clients);
  });
  afterAll(async () => az?.stop());

  const ids = () => {
    n++;
    return { t: tenantId(`rt-${n}`), i: integrationId(`ri-${n}`) };
  };

  const ticket = (id: string, ms: number, props: Record<string, string> = {}): HubSpotObject => ({
    id,
    properties: { subject: `T${id}`, hs_pipeline: '0', hs_pipeline_stage: '1', hs_ticket_priority: 'LOW', hs_lastmodifieddate: new Date(ms).toISOString(), ...props },
    lastModifiedMs: ms,
    archived: false,
    associations: { contacts: ['9'], companies: [] },
  });

  it('round-trips properties and associations, and splits a very long body across columns', async () => {
    const { t, i } = ids();
    const body = 'é'.repeat(70_000);
    await store.apply(t, i, 'tickets', [ticket('1', 1000, { content: body })]);
    const got = await store.get(t, i, 'tickets', '1');
    expect(got?.properties['content']).toBe(body);
    expect(got?.associations).toEqual({ contacts: ['9'], companies: [] });
    expect(got?.truncated).toBeUndefined();
    const raw = await new TenantTable<Record<string, string | number | boolean>>(clients.table(TABLES.records)).get(partitionKey.records(t, i, 'tickets'), '1');
    expect(raw?.data['propsChunks']).toBe(3);
  });

  it('shortens what cannot fit a row and says which properties were cut', async () => {
    const { t, i } = ids();
    await store.apply(t, i, 'tickets', [ticket('2', 1000, { content: 'x'.repeat(500_000) })]);
    const got = await store.get(t, i, 'tickets', '2');
    expect(got?.truncated).toEqual(['content']);
    expect(got?.properties['subject']).toBe('T2');
    expect((got?.properties['content'] ?? '').length).toBeLessThan(500_000);
    expect((got?.properties['content'] ?? '').length).toBeGreaterThan(300_000);
  });

  it('classifies created, updated, unchanged and stale, and keeps the newer row', async () => {
    const { t, i } = ids();
    const first = await store.apply(t, i, 'tickets', [ticket('1', 1000), ticket('2', 1000)]);
    expect(first.changes.map((c) => [c.id, c.kind])).toEqual([['1', 'created'], ['2', 'created']]);
    expect(first.countDelta).toEqual({ '1|LOW': 2 });
    const second = await store.apply(t, i, 'tickets', [ticket('1', 2000, { hs_ticket_priority: 'high' }), ticket('2', 1000), ticket('3', 1500)]);
    expect(second.changes.map((c) => [c.id, c.kind])).toEqual([['1', 'updated'], ['3', 'created']]);
    expect(second.unchanged).toBe(1);
    // 1 moved from LOW to HIGH and 3 arrived as LOW: LOW is back where it was.
    expect(second.countDelta).toEqual({ '1|HIGH': 1 });
    // An older copy of 1 (a page read before a webhook wrote the newer one) is not written.
    const stale = await store.apply(t, i, 'tickets', [ticket('1', 1500, { subject: 'old' })]);
    expect(stale).toMatchObject({ stale: 1, written: 0, changes: [] });
    expect((await store.get(t, i, 'tickets', '1'))?.properties['subject']).toBe('T1');
  });

  it('tombstones only live rows, never from an archive older than what it holds, and hides them from the tickets query', async () => {
    const { t, i } = ids();
    await store.apply(t, i, 'tickets', [ticket('1', 1000), ticket('2', 5000)]);
    await store.setCounts(t, i, 'tickets', { '1|LOW': 2 });
    const plan = await store.planArchive(t, i, 'tickets', [
      { ...ticket('1', 1000), archived: true, archivedAtMs: 3000 },
      { ...ticket('2', 1000), archived: true, archivedAtMs: 4000 },
      { ...ticket('7', 1000), archived: true, archivedAtMs: 4000 },
    ]);
    expect(plan.changes.map((c) => [c.id, c.kind])).toEqual([['1', 'deleted']]);
    expect(plan).toMatchObject({ stale: 1, unchanged: 1, countDelta: { '1|LOW': -1 } });
    const res = await store.commit(t, i, 'tickets', plan);
    await store.adjustCounts(t, i, 'tickets', res.countDelta);
    expect(await store.get(t, i, 'tickets', '7')).toBeUndefined();
    const page = await store.listTickets(t, i, { limit: 10 });
    expect(page.tickets.map((x) => x.id)).toEqual(['2']);
    expect(page.totalCount).toBe(1);
    // A restore (the object comes back live) counts as created again.
    const back = await store.apply(t, i, 'tickets', [ticket('1', 6000)]);
    expect(back.changes.map((c) => [c.id, c.kind])).toEqual([['1', 'created']]);
  });

  it('the echo stub: lastPushedVersion survives sync writes and marks the matching version as an echo', async () => {
    const { t, i } = ids();
    await store.setLastPushedVersion(t, i, 'tickets', '5', '2000');
    // A stub alone is not a record.
    expect((await store.listTickets(t, i, { limit: 10 })).tickets).toEqual([]);
    const first = await store.apply(t, i, 'tickets', [ticket('5', 2000)]);
    expect(first.changes).toEqual([expect.objectContaining({ id: '5', kind: 'created', echo: true })]);
    expect(await store.isEcho(t, i, 'tickets', '5', '2000')).toBe(true);
    const next = await store.apply(t, i, 'tickets', [ticket('5', 3000)]);
    expect(next.changes).toEqual([expect.objectContaining({ id: '5', kind: 'updated', echo: false })]);
    expect((await store.get(t, i, 'tickets', '5'))?.lastPushedVersion).toBe('2000');
  });

  it('pages tickets in key order with next_after, filters by stage, priority and modified-since, and counts cheaply', async () => {
    const { t, i } = ids();
    const objs: HubSpotObject[] = [];
    for (let k = 0; k < 250; k++) objs.push(ticket(String(1000 + k), 10_000 + k, { hs_pipeline_stage: k % 2 === 0 ? '1' : '4', hs_ticket_priority: ['LOW', 'MEDIUM', 'HIGH'][k % 3] as string }));
    const res = await store.apply(t, i, 'tickets', objs, { assumeNew: true });
    await store.adjustCounts(t, i, 'tickets', res.countDelta);

    const seen: string[] = [];
    let after: string | undefined;
    for (let guard = 0; guard < 10; guard++) {
      const page = await store.listTickets(t, i, { limit: 100, ...(after ? { after } : {}) });
      expect(page.totalCount).toBe(250);
      seen.push(...page.tickets.map((x) => x.id));
      if (!page.nextAfter) break;
      after = page.nextAfter;
    }
    expect(seen).toHaveLength(250);
    expect(new Set(seen).size).toBe(250);
    expect([...seen].sort()).toEqual(seen);

    const closedHigh = await store.listTickets(t, i, { limit: 500, stage: '4', priority: 'high' });
    const expected = objs.filter((o) => o.properties['hs_pipeline_stage'] === '4' && o.properties['hs_ticket_priority'] === 'HIGH').map((o) => o.id);
    expect(closedHigh.tickets.map((x) => x.id)).toEqual(expected);
    expect(closedHigh).toMatchObject({ totalCount: expected.length, totalExact: true });
    expect(closedHigh.nextAfter).toBeUndefined();

    const recent = await store.listTickets(t, i, { limit: 5, modifiedSinceMs: 10_000 + 240 });
    expect(recent.tickets.map((x) => x.id)).toEqual(['1240', '1241', '1242', '1243', '1244']);
    expect(recent).toMatchObject({ totalCount: 10, totalExact: true, nextAfter: '1244' });
    expect(COUNT_SCAN_CAP).toBeGreaterThan(1000);
  });

  it('concurrent counter updates do not lose increments', async () => {
    const { t, i } = ids();
    await Promise.all(Array.from({ length: 12 }, (_, k) => store.adjustCounts(t, i, 'contacts', { '': 1 + (k % 2) })));
    expect(await store.counts(t, i, 'contacts')).toEqual({ '': 18 });
  });

  it('commit with counts moves the counters in the rows\' own transactions, over several of them and beside other writers', async () => {
    const { t, i } = ids();
    // Six writers of 110 new tickets each (two transactions apiece), side by side, then a move and a tombstone.
    await Promise.all(
      Array.from({ length: 6 }, async (_, w) => {
        const objs = Array.from({ length: 110 }, (_, k) => ticket(String(10_000 + w * 1000 + k), 1000, { hs_ticket_priority: k % 2 ? 'HIGH' : 'LOW' }));
        await store.commit(t, i, 'tickets', await store.plan(t, i, 'tickets', objs), { counts: true });
      }),
    );
    expect(await store.counts(t, i, 'tickets')).toEqual({ '1|LOW': 330, '1|HIGH': 330 });
    await store.commit(t, i, 'tickets', await store.plan(t, i, 'tickets', [ticket('10000', 2000, { hs_pipeline_stage: '4' })]), { counts: true });
    await store.commit(t, i, 'tickets', await store.planArchive(t, i, 'tickets', [{ ...ticket('10001', 1000), archived: true, archivedAtMs: 3000 }]), { counts: true });
    expect(await store.counts(t, i, 'tickets')).toEqual({ '1|LOW': 329, '1|HIGH': 329, '4|LOW': 1 });
    // Stored once, a retry of the same page finds nothing to move.
    const again = await store.plan(t, i, 'tickets', [ticket('10000', 2000, { hs_pipeline_stage: '4' })]);
    await store.commit(t, i, 'tickets', again, { counts: true });
    expect(await store.counts(t, i, 'tickets')).toEqual({ '1|LOW': 329, '1|HIGH': 329, '4|LOW': 1 });
    // The counters row is in the records' partition but never a ticket.
    const page = await store.listTickets(t, i, { limit: 1000 });
    expect(page.tickets).toHaveLength(659);
    expect(page.totalCount).toBe(659);
  });

  it('counters kept in SyncState before they moved are read, and the first move starts from them', async () => {
    const { t, i } = ids();
    await new TenantTable<{ byKey: string }>(clients.table(TABLES.syncState)).upsert(partitionKey.integration(t, i), 'count.tickets', { byKey: JSON.stringify({ '1|LOW': 7 }) });
    expect(await store.counts(t, i, 'tickets')).toEqual({ '1|LOW': 7 });
    await store.commit(t, i, 'tickets', await store.plan(t, i, 'tickets', [ticket('1', 1000)]), { counts: true });
    expect(await store.counts(t, i, 'tickets')).toEqual({ '1|LOW': 8 });
    await store.adjustCounts(t, i, 'contacts', { '': 2 });
    expect(await store.counts(t, i, 'contacts')).toEqual({ '': 2 });
  });

  it('keeps tenants apart: the same integration id under another tenant sees nothing', async () => {
    const a = ids();
    await store.apply(a.t, a.i, 'tickets', [ticket('1', 1000)]);
    await store.adjustCounts(a.t, a.i, 'tickets', { '1|LOW': 1 });
    const other = tenantId(`other-${n}`);
    expect(await store.get(other, a.i, 'tickets', '1')).toBeUndefined();
    expect(await store.listTickets(other, a.i, { limit: 10 })).toMatchObject({ tickets: [], totalCount: 0 });
    expect((await store.versions(other, a.i, 'tickets', ['1'])).size).toBe(0);
  });
});
