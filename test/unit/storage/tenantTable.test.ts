import { RestError, type TransactionAction } from '@azure/data-tables';
import { ConflictError, NotFoundError, PreconditionFailedError } from '../../../src/platform/errors';
import type { StorageClients } from '../../../src/storage/clients';
import { integrationId, partitionKey, rowKey, tenantId, tenantPartitionRange, unescapeKeyPart, type PartitionKey } from '../../../src/storage/keys';
import { TABLES } from '../../../src/storage/names';
import { TenantTable, type Row } from '../../../src/storage/tenantTable';
import { useAzurite } from '../../helpers/azurite';

type TestRow = { name: string; n: number; extra?: string };

let azurite: Awaited<ReturnType<typeof useAzurite>>;
let clients: StorageClients;
let table: TenantTable<TestRow>;

// Every test writes to its own tenant, so tests cannot see each other's rows.
let counter = 0;
const freshTenant = (prefix = 'tt') => tenantId(`${prefix}${++counter}x`);

async function collect<T>(gen: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of gen) out.push(x);
  return out;
}

const keysOf = (rows: Array<Row<TestRow>>) => rows.map((r) => `${r.partitionKey}|${r.rowKey}`).sort();

beforeAll(async () => {
  azurite = await useAzurite();
  clients = azurite.clients;
  table = new TenantTable<TestRow>(clients.table(TABLES.records));
});

afterAll(async () => {
  await azurite?.stop();
});

describe('TenantTable single-row operations', () => {
  it('creates, reads back exactly the data, and refuses a second create with ConflictError', async () => {
    const pk = partitionKey.tenant(freshTenant());
    const etag = await table.create(pk, 'r1', { name: 'first', n: 1 });
    expect(etag).toMatch(/^W\/"/);

    const row = await table.get(pk, 'r1');
    expect(row).toBeDefined();
    expect(row?.partitionKey).toBe(pk);
    expect(row?.rowKey).toBe('r1');
    expect(row?.etag).toBe(etag);
    expect(row?.data).toEqual({ name: 'first', n: 1 });

    await expect(table.create(pk, 'r1', { name: 'second', n: 2 })).rejects.toBeInstanceOf(ConflictError);
    expect((await table.get(pk, 'r1'))?.data).toEqual({ name: 'first', n: 1 });
  });

  it('returns undefined for a missing row', async () => {
    expect(await table.get(partitionKey.tenant(freshTenant()), 'nope')).toBeUndefined();
  });

  it('update with a stale ETag is PreconditionFailedError; with the fresh one it succeeds', async () => {
    const pk = partitionKey.tenant(freshTenant());
    const etag1 = await table.create(pk, 'r', { name: 'v1', n: 1 });
    const etag2 = await table.update(pk, 'r', { name: 'v2' }, etag1);
    expect(etag2).not.toBe(etag1);

    await expect(table.update(pk, 'r', { name: 'stale' }, etag1)).rejects.toBeInstanceOf(PreconditionFailedError);
    expect((await table.get(pk, 'r'))?.data).toEqual({ name: 'v2', n: 1 });

    const etag3 = await table.update(pk, 'r', { name: 'v3', n: 3 }, etag2);
    const row = await table.get(pk, 'r');
    expect(row?.etag).toBe(etag3);
    expect(row?.data).toEqual({ name: 'v3', n: 3 });
  });

  it('update merges by default and replaces on request', async () => {
    const pk = partitionKey.tenant(freshTenant());
    const etag1 = await table.create(pk, 'r', { name: 'v1', n: 1, extra: 'kept?' });
    const etag2 = await table.update(pk, 'r', { n: 2 }, etag1);
    expect((await table.get(pk, 'r'))?.data).toEqual({ name: 'v1', n: 2, extra: 'kept?' });
    await table.update(pk, 'r', { name: 'v3', n: 3 }, etag2, 'Replace');
    expect((await table.get(pk, 'r'))?.data).toEqual({ name: 'v3', n: 3 });
  });

  it('update of a missing row is NotFoundError', async () => {
    const pk = partitionKey.tenant(freshTenant());
    const etag = await table.create(pk, 'r', { name: 'x', n: 1 });
    await expect(table.update(pk, 'missing', { n: 2 }, etag)).rejects.toBeInstanceOf(NotFoundError);
  });

  it('delete of a missing row is fine; with a stale ETag it is PreconditionFailedError and the row stays', async () => {
    const pk = partitionKey.tenant(freshTenant());
    await expect(table.delete(pk, 'never-existed')).resolves.toBeUndefined();

    const etag1 = await table.create(pk, 'r', { name: 'v1', n: 1 });
    const etag2 = await table.update(pk, 'r', { n: 2 }, etag1);
    await expect(table.delete(pk, 'r', etag1)).rejects.toBeInstanceOf(PreconditionFailedError);
    expect(await table.get(pk, 'r')).toBeDefined();

    await table.delete(pk, 'r', etag2);
    expect(await table.get(pk, 'r')).toBeUndefined();
    // deleting it again, even with the old ETag, is fine: it is gone
    await expect(table.delete(pk, 'r', etag2)).resolves.toBeUndefined();
  });
});

describe('TenantTable batches', () => {
  it('upsertMany of 250 rows uses 3 transactions and every row is readable', async () => {
    const pk = partitionKey.integration(freshTenant(), integrationId('i1'));
    const rows = Array.from({ length: 250 }, (_, k) => ({ rowKey: `r${String(k).padStart(3, '0')}`, data: { name: `row ${k}`, n: k } }));
    expect(await table.upsertMany(pk, rows)).toBe(3);

    const stored = await collect(table.all(pk));
    expect(stored).toHaveLength(250);
    const byKey = new Map(stored.map((r) => [r.rowKey, r.data]));
    for (const r of rows) expect(byKey.get(r.rowKey)).toEqual(r.data);
  });

  it('upsertMany of exactly 100 rows is one transaction, 101 is two, none is zero', async () => {
    const pk = partitionKey.integration(freshTenant(), integrationId('i1'));
    const make = (count: number, offset = 0) => Array.from({ length: count }, (_, k) => ({ rowKey: `r${k + offset}`, data: { name: 'x', n: k } }));
    expect(await table.upsertMany(pk, make(100))).toBe(1);
    expect(await table.upsertMany(pk, make(101, 1000))).toBe(2);
    expect(await table.upsertMany(pk, [])).toBe(0);
    expect(await collect(table.all(pk))).toHaveLength(201);
  });

  it('upsertMany splits by the real size of large rows, quotes escaped, not only by count', async () => {
    const pk = partitionKey.integration(freshTenant(), integrationId('i1'));
    // 100 rows of ~66 KB once JSON-escaped (every 10th character a quote): 55 fit under 3.5 MiB, so two
    // transactions; a size bound alone (6 bytes per character) would have made ten, and no split a
    // transaction the service refuses.
    const text = (seed: number) => Array.from({ length: 3000 }, (_, k) => `${String((seed + k) % 1e8).padStart(9, '0')}"`).join('');
    const rows = Array.from({ length: 100 }, (_, k) => ({ rowKey: `big${k}`, data: { name: text(k), extra: text(k + 7), n: k } }));
    expect(JSON.stringify(rows[0]?.data).length).toBeGreaterThan(66_000);
    expect(await table.upsertMany(pk, rows)).toBe(2);
    const stored = await collect(table.all(pk));
    expect(stored).toHaveLength(100);
    const byKey = new Map(stored.map((r) => [r.rowKey, r.data]));
    for (const r of rows) expect(byKey.get(r.rowKey)).toEqual(r.data);
  });

  it('upsertMany collapses duplicate row keys (last wins) so the transaction touches each entity once', async () => {
    const pk = partitionKey.integration(freshTenant(), integrationId('i1'));
    // 200 rows, 100 distinct keys: without collapsing this would be two transactions, or a rejected one
    const rows = [
      ...Array.from({ length: 100 }, (_, k) => ({ rowKey: `r${k}`, data: { name: 'old', n: k } })),
      ...Array.from({ length: 100 }, (_, k) => ({ rowKey: `r${k}`, data: { name: 'new', n: k * 10 } })),
    ];
    expect(await table.upsertMany(pk, rows)).toBe(1);
    const stored = await collect(table.all(pk));
    expect(stored).toHaveLength(100);
    for (const r of stored) expect(r.data.name).toBe('new');
    expect((await table.get(pk, 'r7'))?.data).toEqual({ name: 'new', n: 70 });
  });

  it('upsertMany merges into existing rows by default and replaces on request', async () => {
    const pk = partitionKey.integration(freshTenant(), integrationId('i1'));
    await table.create(pk, 'a', { name: 'a', n: 1, extra: 'keep' });
    await table.create(pk, 'b', { name: 'b', n: 1, extra: 'drop' });
    await table.upsertMany(pk, [{ rowKey: 'a', data: { n: 2 } }]);
    await table.upsertMany(pk, [{ rowKey: 'b', data: { name: 'b2', n: 2 } }], 'Replace');
    expect((await table.get(pk, 'a'))?.data).toEqual({ name: 'a', n: 2, extra: 'keep' });
    expect((await table.get(pk, 'b'))?.data).toEqual({ name: 'b2', n: 2 });
  });

  it('deleteMany over 150 keys, some of them missing, deletes exactly the listed rows', async () => {
    const pk = partitionKey.integration(freshTenant(), integrationId('i1'));
    const existing = Array.from({ length: 130 }, (_, k) => `r${String(k).padStart(3, '0')}`);
    await table.upsertMany(pk, existing.map((rk, n) => ({ rowKey: rk, data: { name: rk, n } })));
    const keep = existing.slice(0, 10);
    const toDelete = existing.slice(10); // 120 present
    const missing = Array.from({ length: 30 }, (_, k) => `missing${k}`);
    // interleave the missing ones so both 100-row chunks contain some
    const keys = toDelete.flatMap((rk, k) => (k % 4 === 0 && missing.length ? [rk, missing.pop() as string] : [rk]));
    keys.push(...missing);
    expect(keys).toHaveLength(150);

    await table.deleteMany(pk, keys);
    const left = (await collect(table.all(pk))).map((r) => r.rowKey).sort();
    expect(left).toEqual(keep);
  });

  it('deleteMany of only present rows (and duplicates) deletes them all', async () => {
    const pk = partitionKey.integration(freshTenant(), integrationId('i1'));
    const keys = Array.from({ length: 105 }, (_, k) => `r${k}`);
    await table.upsertMany(pk, keys.map((rk, n) => ({ rowKey: rk, data: { name: rk, n } })));
    await table.deleteMany(pk, [...keys, 'r0', 'r1']);
    expect(await collect(table.all(pk))).toHaveLength(0);
  });

  it('upsertManyWithCompanion writes the companion in every transaction (99 rows each) and retries one that lost the race for it', async () => {
    const pk = partitionKey.integration(freshTenant(), integrationId('i1'));
    const rows = Array.from({ length: 150 }, (_, k) => ({ rowKey: `r${String(k).padStart(3, '0')}`, data: { name: 'x', n: k } }));
    let calls = 0;
    // A counter of the rows: the first attempt finds it changed under it (another writer) and is retried.
    const companion = async (keys: string[]): Promise<TransactionAction> => {
      calls++;
      const row = await table.get(pk, 'total');
      if (calls === 1) await table.upsert(pk, 'total', { name: 'total', n: 1000 });
      const entity = { partitionKey: pk, rowKey: 'total', name: 'total', n: (row?.data.n ?? 0) + keys.length };
      return row ? ['update', entity, 'Replace', { etag: row.etag }] : ['create', entity];
    };
    expect(await table.upsertManyWithCompanion(pk, rows, 'Merge', companion)).toBe(2);
    expect(calls).toBe(3);
    expect((await table.get(pk, 'total'))?.data.n).toBe(1150);
    expect(await collect(table.all(pk))).toHaveLength(151);
  });

  it('upsertManyWithCompanion: a transaction that cannot write its companion writes none of its rows', async () => {
    const pk = partitionKey.integration(freshTenant(), integrationId('i1'));
    await table.create(pk, 'total', { name: 'total', n: 0 });
    const rows = Array.from({ length: 5 }, (_, k) => ({ rowKey: `r${k}`, data: { name: 'x', n: k } }));
    const stale = async (): Promise<TransactionAction> => ['update', { partitionKey: pk, rowKey: 'total', name: 'total', n: 5 }, 'Replace', { etag: 'W/"datetime\'2000-01-01T00%3A00%3A00.0000000Z\'"' }];
    await expect(table.upsertManyWithCompanion(pk, rows, 'Merge', stale, 2)).rejects.toBeInstanceOf(PreconditionFailedError);
    expect((await collect(table.all(pk))).map((r) => r.rowKey)).toEqual(['total']);
  });
});

describe('TenantTable keys from external ids', () => {
  const NASTY = [
    'AAMkAGI2TG93AAA=/+AAA==',
    'a/b',
    'a#b',
    'a?b',
    'a\\b',
    'x%2Fy',
    '19:meeting_Nj@thread.v2',
    'ctl\u0001\u001f\u007f\u0085',
    'ünïcødé 😀',
    "it's",
  ];

  it('rows keyed by escaped nasty ids round-trip through create, get, all, page and upsertMany', async () => {
    const pk = partitionKey.records(freshTenant(), integrationId('i1'), 'mail/messages#1');
    for (const [n, id] of NASTY.entries()) await table.create(pk, rowKey(id), { name: id, n });
    for (const [n, id] of NASTY.entries()) expect((await table.get(pk, rowKey(id)))?.data).toEqual({ name: id, n });

    const listed = await collect(table.all(pk));
    expect(listed.map((r) => unescapeKeyPart(r.rowKey)).sort()).toEqual([...NASTY].sort());
    for (const r of listed) expect(r.data.name).toBe(unescapeKeyPart(r.rowKey));

    const page = await table.page(pk, { pageSize: 100 });
    expect(page.rows).toHaveLength(NASTY.length);

    expect(await table.upsertMany(pk, NASTY.map((id) => ({ rowKey: rowKey(id), data: { n: -1 } })))).toBe(1);
    for (const id of NASTY) expect((await table.get(pk, rowKey(id)))?.data.n).toBe(-1);

    await table.deleteMany(pk, NASTY.map((id) => rowKey(id)));
    expect(await collect(table.all(pk))).toHaveLength(0);
  });

  it.each(['a/b', 'a#b', 'a?b', 'a\\b', 'a\u0001b'])('the same id unescaped (%j) is refused by the emulator', async (raw) => {
    const pk = partitionKey.tenant(freshTenant());
    const err: unknown = await table.create(pk, raw, { name: raw, n: 0 }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(RestError);
    expect([400, 500]).toContain((err as RestError).statusCode);
  });
});

describe('TenantTable reads', () => {
  it('page() with continuation tokens returns every row of the partition exactly once', async () => {
    const t = freshTenant();
    const pk = partitionKey.integration(t, integrationId('i1'));
    const expected = Array.from({ length: 23 }, (_, k) => `r${String(k).padStart(2, '0')}`);
    await table.upsertMany(pk, expected.map((rk, n) => ({ rowKey: rk, data: { name: rk, n } })));
    // a neighbour partition that must not leak into the pages
    await table.upsertMany(partitionKey.integration(t, integrationId('i2')), [{ rowKey: 'r00', data: { name: 'other', n: 0 } }]);

    const seen: string[] = [];
    let token: string | undefined;
    let pages = 0;
    do {
      const page = await table.page(pk, { pageSize: 5, ...(token ? { continuationToken: token } : {}) });
      pages++;
      expect(page.rows.length).toBeLessThanOrEqual(5);
      for (const r of page.rows) {
        expect(r.partitionKey).toBe(pk);
        seen.push(r.rowKey);
      }
      token = page.continuationToken;
      expect(pages).toBeLessThan(20);
    } while (token);

    expect(pages).toBeGreaterThanOrEqual(5);
    expect(seen).toHaveLength(23);
    expect(new Set(seen).size).toBe(23);
    expect([...seen].sort()).toEqual(expected);
  });

  it('page() applies the extra filter within the partition', async () => {
    const { odata } = await import('@azure/data-tables');
    const pk = partitionKey.integration(freshTenant(), integrationId('i1'));
    await table.upsertMany(pk, Array.from({ length: 12 }, (_, k) => ({ rowKey: `r${String(k).padStart(2, '0')}`, data: { name: 'x', n: k } })));
    const seen: number[] = [];
    let token: string | undefined;
    do {
      const page = await table.page(pk, { filter: odata`n ge ${6}`, pageSize: 4, ...(token ? { continuationToken: token } : {}) });
      seen.push(...page.rows.map((r) => r.data.n));
      token = page.continuationToken;
    } while (token);
    expect(seen.sort((a, b) => a - b)).toEqual([6, 7, 8, 9, 10, 11]);
  });

  it('page() of an empty partition is empty with no token', async () => {
    const page = await table.page(partitionKey.tenant(freshTenant()));
    expect(page.rows).toEqual([]);
    expect(page.continuationToken).toBeUndefined();
  });

  it("range(tenantPartitionRange('t1')) returns t1:i1 and t1:i2 rows but not t10:i1, t2:i1, t1.x:i1, t1_:i1 or the bare t1 partition", async () => {
    const rangeTable = new TenantTable<TestRow>(clients.table(TABLES.syncState));
    const write = (t: string, i: string | undefined, rk: string) =>
      rangeTable.create(i ? partitionKey.integration(tenantId(t), integrationId(i)) : partitionKey.tenant(tenantId(t)), rk, { name: `${t}/${i ?? '-'}`, n: 0 });
    await write('t1', 'i1', 'a');
    await write('t1', 'i1', 'b');
    await write('t1', 'i2', 'a');
    await write('t1', 'zz', 'a');
    await write('t10', 'i1', 'a');
    await write('t2', 'i1', 'a');
    await write('t1.x', 'i1', 'a');
    await write('t1_', 'i1', 'a');
    await write('t1-a', 'i1', 'a');
    await write('T1', 'i1', 'a');
    await write('t1', undefined, 'a');
    // a records partition of t1 is also inside the range: it is t1's
    await rangeTable.create(partitionKey.records(tenantId('t1'), integrationId('i1'), 'contacts'), 'a', { name: 'records', n: 0 });

    const got = keysOf(await collect(rangeTable.range(tenantPartitionRange(tenantId('t1')))));
    expect(got).toEqual(['t1:i1:contacts|a', 't1:i1|a', 't1:i1|b', 't1:i2|a', 't1:zz|a'].sort());

    // 't10:' < 't1:' because '0' (0x30) < ':' (0x3A): t10 is below the range, not inside it
    expect('t10:i1' < tenantPartitionRange(tenantId('t1')).from).toBe(true);
    const t10 = keysOf(await collect(rangeTable.range(tenantPartitionRange(tenantId('t10')))));
    expect(t10).toEqual(['t10:i1|a']);
  });
});

describe('TenantTable tenant isolation', () => {
  it("rows written for tenant A are never returned through tenant B's keys", async () => {
    const a = tenantId('acme');
    // b shares a's prefix and a's integration ids and row keys
    const tenantsB = [tenantId('acme2'), tenantId('acm'), tenantId('Acme'), tenantId('acme.corp')];
    const i = integrationId('i1');
    const pksA: PartitionKey[] = [partitionKey.tenant(a), partitionKey.integration(a, i), partitionKey.records(a, i, 'contacts')];
    for (const pk of pksA) await table.upsertMany(pk, [{ rowKey: 'shared', data: { name: 'A', n: 1 } }, { rowKey: 'r2', data: { name: 'A', n: 2 } }]);

    for (const b of tenantsB) {
      const pksB: PartitionKey[] = [partitionKey.tenant(b), partitionKey.integration(b, i), partitionKey.records(b, i, 'contacts')];
      for (const pk of pksB) {
        expect(await table.get(pk, 'shared')).toBeUndefined();
        expect(await collect(table.all(pk))).toEqual([]);
        expect((await table.page(pk)).rows).toEqual([]);
      }
      expect(await collect(table.range(tenantPartitionRange(b)))).toEqual([]);
    }

    // writes through B's keys do not touch A's rows
    const b = tenantsB[0] ?? tenantId('acme2');
    await table.upsert(partitionKey.integration(b, i), 'shared', { name: 'B', n: 99 });
    await table.deleteMany(partitionKey.integration(b, i), ['r2']);
    await table.delete(partitionKey.tenant(b), 'shared');
    for (const pk of pksA) {
      expect((await table.get(pk, 'shared'))?.data).toEqual({ name: 'A', n: 1 });
      expect((await table.get(pk, 'r2'))?.data).toEqual({ name: 'A', n: 2 });
    }
    // and A's range sees only A's rows
    const aRange = await collect(table.range(tenantPartitionRange(a)));
    expect(aRange).toHaveLength(4);
    for (const r of aRange) expect(r.data.name).toBe('A');
  });
});
