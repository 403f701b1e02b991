import { escapeKeyPart, integrationId, partitionKey, tenantId, type PartitionKey } from '../../../src/storage/keys';
import { LeaseLostError, Leases, type Lease, type LeaseRow } from '../../../src/storage/lease';
import { TABLES } from '../../../src/storage/names';
import { TenantTable } from '../../../src/storage/tenantTable';
import { useAzurite } from '../../helpers/azurite';

const TTL = 30_000;

let azurite: Awaited<ReturnType<typeof useAzurite>>;
let table: TenantTable<LeaseRow>;
// A clock the tests move by hand; epoch milliseconds, well above 2^31 like Date.now().
let clock = 1_760_000_000_000;
let leases: Leases;

let counter = 0;
const freshPk = (): PartitionKey => partitionKey.integration(tenantId(`lt${++counter}`), integrationId('i1'));

beforeAll(async () => {
  azurite = await useAzurite();
  table = new TenantTable<LeaseRow>(azurite.clients.table(TABLES.leases));
  leases = new Leases(table, () => clock);
});

afterAll(async () => {
  await azurite?.stop();
});

describe('Leases.tryAcquire', () => {
  it('of 10 concurrent owners of a free lease, exactly one gets it', async () => {
    const pk = freshPk();
    const owners = Array.from({ length: 10 }, (_, k) => `owner-${k}`);
    const results = await Promise.all(owners.map((o) => leases.tryAcquire(pk, 'sync', TTL, o)));
    const winners = results.filter((r): r is Lease => r !== undefined);
    expect(winners).toHaveLength(1);
    const winner = winners[0] as Lease;
    expect(owners).toContain(winner.owner);

    const row = await table.get(pk, 'sync');
    expect(row?.data.owner).toBe(winner.owner);
    expect(row?.etag).toBe(winner.etag);
    expect(row?.data.expiresAt).toBe(clock + TTL);
  });

  it('of 10 concurrent owners taking over an expired lease, exactly one gets it', async () => {
    const pk = freshPk();
    const old = await leases.tryAcquire(pk, 'sync', TTL, 'old-owner');
    expect(old).toBeDefined();
    clock += TTL + 1;
    const results = await Promise.all(Array.from({ length: 10 }, (_, k) => leases.tryAcquire(pk, 'sync', TTL, `new-${k}`)));
    const winners = results.filter((r): r is Lease => r !== undefined);
    expect(winners).toHaveLength(1);
    expect((await table.get(pk, 'sync'))?.data.owner).toBe(winners[0]?.owner);
  });

  it('refuses an unexpired lease held by someone else and allows a takeover once it expires', async () => {
    const pk = freshPk();
    const start = clock;
    const a = await leases.tryAcquire(pk, 'job', TTL, 'A');
    expect(a?.owner).toBe('A');
    expect(a?.expiresAt).toBe(start + TTL);

    clock = start + TTL - 1;
    expect(await leases.tryAcquire(pk, 'job', TTL, 'B')).toBeUndefined();
    expect((await table.get(pk, 'job'))?.data.owner).toBe('A');

    clock = start + TTL + 1;
    const b = await leases.tryAcquire(pk, 'job', TTL, 'B');
    expect(b?.owner).toBe('B');
    expect(b?.expiresAt).toBe(clock + TTL);
    const row = await table.get(pk, 'job');
    expect(row?.data).toEqual({ owner: 'B', expiresAt: clock + TTL, acquiredAt: clock });
  });

  it('keeps leases of different names and partitions apart', async () => {
    const pk1 = freshPk();
    const pk2 = freshPk();
    expect(await leases.tryAcquire(pk1, 'x', TTL, 'A')).toBeDefined();
    expect(await leases.tryAcquire(pk1, 'y', TTL, 'B')).toBeDefined();
    expect(await leases.tryAcquire(pk2, 'x', TTL, 'B')).toBeDefined();
    expect(await leases.tryAcquire(pk1, 'x', TTL, 'B')).toBeUndefined();
  });

  it('works for names that need escaping', async () => {
    const pk = freshPk();
    const name = 'mail/inbox#1?x';
    const a = await leases.tryAcquire(pk, name, TTL, 'A');
    expect(a?.name).toBe(name);
    expect((await table.get(pk, escapeKeyPart(name)))?.data.owner).toBe('A');
    expect(await leases.tryAcquire(pk, name, TTL, 'B')).toBeUndefined();
  });
});

describe('Leases.renew', () => {
  it('by the holder extends the lease, so others still cannot take it after the original expiry', async () => {
    const pk = freshPk();
    const start = clock;
    const a = await leases.tryAcquire(pk, 'job', TTL, 'A');
    expect(a).toBeDefined();

    clock = start + TTL - 1000;
    const renewed = await leases.renew(a as Lease, TTL);
    expect(renewed.expiresAt).toBe(clock + TTL);
    expect(renewed.etag).not.toBe(a?.etag);
    expect(renewed.owner).toBe('A');

    clock = start + TTL + 1000; // past the first expiry, before the renewed one
    expect(await leases.tryAcquire(pk, 'job', TTL, 'B')).toBeUndefined();

    // renewing again with the latest lease works; with the outdated one it does not
    const again = await leases.renew(renewed, TTL);
    expect(again.expiresAt).toBe(clock + TTL);
    await expect(leases.renew(a as Lease, TTL)).rejects.toBeInstanceOf(LeaseLostError);
  });

  it('after another owner took the expired lease over is LeaseLostError, and the new owner keeps it', async () => {
    const pk = freshPk();
    const a = await leases.tryAcquire(pk, 'job', TTL, 'A');
    clock += TTL + 1;
    const b = await leases.tryAcquire(pk, 'job', TTL, 'B');
    expect(b).toBeDefined();

    await expect(leases.renew(a as Lease, TTL)).rejects.toBeInstanceOf(LeaseLostError);
    expect((await table.get(pk, 'job'))?.data.owner).toBe('B');
    await expect(leases.renew(b as Lease, TTL)).resolves.toMatchObject({ owner: 'B' });
  });

  it('after the lease row is gone is LeaseLostError', async () => {
    const pk = freshPk();
    const a = (await leases.tryAcquire(pk, 'job', TTL, 'A')) as Lease;
    await leases.release(a);
    await expect(leases.renew(a, TTL)).rejects.toBeInstanceOf(LeaseLostError);
  });
});

describe('Leases.release', () => {
  it('lets another owner acquire at once, without waiting for expiry', async () => {
    const pk = freshPk();
    const a = (await leases.tryAcquire(pk, 'job', TTL, 'A')) as Lease;
    expect(await leases.tryAcquire(pk, 'job', TTL, 'B')).toBeUndefined();
    await leases.release(a);
    expect(await table.get(pk, 'job')).toBeUndefined();
    const b = await leases.tryAcquire(pk, 'job', TTL, 'B');
    expect(b?.owner).toBe('B');
  });

  it('with a lease already taken over leaves the new holder alone', async () => {
    const pk = freshPk();
    const a = (await leases.tryAcquire(pk, 'job', TTL, 'A')) as Lease;
    clock += TTL + 1;
    const b = (await leases.tryAcquire(pk, 'job', TTL, 'B')) as Lease;
    await expect(leases.release(a)).resolves.toBeUndefined();
    const row = await table.get(pk, 'job');
    expect(row?.data.owner).toBe('B');
    expect(row?.etag).toBe(b.etag);
  });
});

describe('Leases.withLease', () => {
  it('runs fn under the lease and releases it afterwards', async () => {
    const pk = freshPk();
    const seen: Array<{ owner: string; heldBy: string | undefined }> = [];
    const result = await leases.withLease(pk, 'job', TTL, async (lease) => {
      const row = await table.get(pk, 'job');
      seen.push({ owner: lease.owner, heldBy: row?.data.owner });
      return 42;
    });
    expect(result).toEqual({ value: 42 });
    expect(seen).toHaveLength(1);
    expect(seen[0]?.heldBy).toBe(seen[0]?.owner);
    expect(await table.get(pk, 'job')).toBeUndefined();
    expect(await leases.tryAcquire(pk, 'job', TTL, 'next')).toBeDefined();
  });

  it('does not run fn while someone else holds the lease', async () => {
    const pk = freshPk();
    const held = (await leases.tryAcquire(pk, 'job', TTL, 'holder')) as Lease;
    const fn = jest.fn(async () => 'ran');
    expect(await leases.withLease(pk, 'job', TTL, fn)).toBeUndefined();
    expect(fn).not.toHaveBeenCalled();
    // and it did not disturb the holder
    const row = await table.get(pk, 'job');
    expect(row?.data.owner).toBe('holder');
    expect(row?.etag).toBe(held.etag);
  });

  it('releases the lease even when fn throws, and rethrows', async () => {
    const pk = freshPk();
    const boom = new Error('boom');
    await expect(
      leases.withLease(pk, 'job', TTL, async () => {
        expect(await table.get(pk, 'job')).toBeDefined();
        throw boom;
      }),
    ).rejects.toBe(boom);
    expect(await table.get(pk, 'job')).toBeUndefined();
    expect(await leases.tryAcquire(pk, 'job', TTL, 'next')).toBeDefined();
  });

  it('lets only one of several concurrent callers run', async () => {
    const pk = freshPk();
    let running = 0;
    let maxRunning = 0;
    let runs = 0;
    const results = await Promise.all(
      Array.from({ length: 8 }, () =>
        leases.withLease(pk, 'job', TTL, async () => {
          running++;
          runs++;
          maxRunning = Math.max(maxRunning, running);
          await new Promise((r) => setTimeout(r, 50));
          running--;
          return 'done';
        }),
      ),
    );
    // once released, a late caller may legitimately take it again; but never two at a time
    expect(maxRunning).toBe(1);
    expect(runs).toBeGreaterThanOrEqual(1);
    expect(results.filter((r) => r !== undefined)).toHaveLength(runs);
  });
});
