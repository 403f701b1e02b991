import { ZodError } from 'zod';
import { ConflictError, NotFoundError, PreconditionFailedError } from '../../../src/platform/errors';
import { integrationId, partitionKey, tenantId } from '../../../src/storage/keys';
import { TABLES } from '../../../src/storage/names';
import { IntegrationsRepository, type Integration } from '../../../src/storage/repositories/integrations';
import { TenantTable, type RowData } from '../../../src/storage/tenantTable';
import { useAzurite } from '../../helpers/azurite';

let azurite: Awaited<ReturnType<typeof useAzurite>>;
let raw: TenantTable<RowData>;
let repo: IntegrationsRepository;

let counter = 0;
const freshTenant = (prefix = 'it') => tenantId(`${prefix}${++counter}`);
const ids = (list: Integration[]) => list.map((i) => i.integrationId).sort();

beforeAll(async () => {
  azurite = await useAzurite();
  raw = new TenantTable<RowData>(azurite.clients.table(TABLES.integrations));
  repo = new IntegrationsRepository(new TenantTable(azurite.clients.table(TABLES.integrations)));
});

afterAll(async () => {
  await azurite?.stop();
});

describe('IntegrationsRepository', () => {
  it('create stores the row under (tenant, integrationId) and get reads it back', async () => {
    const t = freshTenant();
    const before = Date.now();
    const created = await repo.create(t, { type: 'hubspot', status: 'pending', externalAccountId: '12345', scopes: 'crm.objects.contacts.read' });
    expect(created.tenantId).toBe(t);
    expect(created.integrationId).toMatch(/^[0-9a-f-]{36}$/);
    expect(created.etag).toMatch(/^W\/"/);
    expect(created.createdAt).toBe(created.updatedAt);
    expect(Date.parse(created.createdAt)).toBeGreaterThanOrEqual(before - 1000);

    const got = await repo.get(t, created.integrationId);
    expect(got).toEqual(created);

    // stored where the key scheme says: PartitionKey = tenant, RowKey = integration id
    const row = await raw.get(partitionKey.tenant(t), created.integrationId);
    expect(row?.data).toMatchObject({ type: 'hubspot', status: 'pending', externalAccountId: '12345' });
  });

  it('create with an explicit id uses it, and a second create with the same id is ConflictError', async () => {
    const t = freshTenant();
    const id = integrationId('hubspot-main');
    const created = await repo.create(t, { type: 'hubspot', status: 'active', integrationId: id });
    expect(created.integrationId).toBe(id);
    expect((await repo.get(t, id))?.status).toBe('active');
    // the id is the key, not a stored property
    expect((await raw.get(partitionKey.tenant(t), id))?.data).not.toHaveProperty('integrationId');
    await expect(repo.create(t, { type: 'msgraph', status: 'pending', integrationId: id })).rejects.toBeInstanceOf(ConflictError);
    expect((await repo.get(t, id))?.type).toBe('hubspot');
  });

  it('create validates the row', async () => {
    const t = freshTenant();
    const bad = { type: 'salesforce', status: 'pending' } as unknown as Parameters<IntegrationsRepository['create']>[1];
    await expect(repo.create(t, bad)).rejects.toBeInstanceOf(ZodError);
    expect(await repo.list(t)).toEqual([]);
  });

  it('get of a missing integration is undefined', async () => {
    expect(await repo.get(freshTenant(), integrationId('nope'))).toBeUndefined();
  });

  it('update with the current ETag merges the patch and bumps updatedAt; a stale ETag is PreconditionFailedError', async () => {
    const t = freshTenant();
    const created = await repo.create(t, { type: 'msgraph', status: 'pending', externalAccountName: 'Contoso' });
    await new Promise((r) => setTimeout(r, 5));

    const etag2 = await repo.update(t, created.integrationId, { status: 'active', lastSyncAt: '2025-01-01T00:00:00.000Z', refreshAttempts: 0 }, created.etag);
    expect(etag2).not.toBe(created.etag);
    const after = await repo.get(t, created.integrationId);
    expect(after).toMatchObject({
      type: 'msgraph',
      status: 'active',
      externalAccountName: 'Contoso',
      lastSyncAt: '2025-01-01T00:00:00.000Z',
      refreshAttempts: 0,
      createdAt: created.createdAt,
      etag: etag2,
    });
    expect((after?.updatedAt ?? '') > created.updatedAt).toBe(true);

    await expect(repo.update(t, created.integrationId, { status: 'error' }, created.etag)).rejects.toBeInstanceOf(PreconditionFailedError);
    expect((await repo.get(t, created.integrationId))?.status).toBe('active');

    await repo.update(t, created.integrationId, { status: 'needs_reauth', lastError: 'token expired' }, etag2);
    expect(await repo.get(t, created.integrationId)).toMatchObject({ status: 'needs_reauth', lastError: 'token expired' });
  });

  it('update of an integration that does not exist is NotFoundError', async () => {
    const t = freshTenant();
    const created = await repo.create(t, { type: 'teams', status: 'active' });
    await expect(repo.update(t, integrationId('other'), { status: 'error' }, created.etag)).rejects.toBeInstanceOf(NotFoundError);
  });

  it("list(tenantB) never returns tenant A's rows, and get/update through B cannot reach them", async () => {
    const a = freshTenant('acme');
    const bs = [freshTenant('acme'), tenantId(`${a}0`), tenantId(`${a}.x`), tenantId(a.toUpperCase())];
    const shared = integrationId('shared-id');
    const a1 = await repo.create(a, { type: 'hubspot', status: 'active', integrationId: shared });
    const a2 = await repo.create(a, { type: 'teams', status: 'active' });
    const b1 = await repo.create(bs[0] ?? a, { type: 'msgraph', status: 'pending' });

    expect(ids(await repo.list(a))).toEqual(ids([a1, a2]));
    expect(ids(await repo.list(bs[0] ?? a))).toEqual([b1.integrationId]);
    for (const b of bs) {
      const listed = await repo.list(b);
      for (const i of listed) expect(i.tenantId).toBe(b);
      expect(listed.map((i) => i.integrationId)).not.toContain(a1.integrationId);
      expect(listed.map((i) => i.integrationId)).not.toContain(a2.integrationId);
      expect(await repo.get(b, shared)).toBeUndefined();
      expect(await repo.get(b, a2.integrationId)).toBeUndefined();
      // even with A's ETag, an update through B's partition cannot touch A's row
      await expect(repo.update(b, shared, { status: 'disconnected' }, a1.etag)).rejects.toBeInstanceOf(NotFoundError);
    }
    expect((await repo.get(a, shared))?.status).toBe('active');
  });

  it('list filters by type and skips rows that are not valid integrations', async () => {
    const t = freshTenant();
    const h1 = await repo.create(t, { type: 'hubspot', status: 'active' });
    const h2 = await repo.create(t, { type: 'hubspot', status: 'error' });
    const g = await repo.create(t, { type: 'msgraph', status: 'active' });
    // a foreign row in the same partition (e.g. written by a future version) is ignored, not fatal
    await raw.create(partitionKey.tenant(t), 'garbage', { type: 'unknown', status: 'weird' });

    expect(ids(await repo.list(t))).toEqual(ids([h1, h2, g]));
    expect(ids(await repo.list(t, { type: 'hubspot' }))).toEqual(ids([h1, h2]));
    expect(ids(await repo.list(t, { type: 'msgraph' }))).toEqual([g.integrationId]);
    expect(await repo.list(t, { type: 'jira' })).toEqual([]);
    expect(await repo.list(t, {})).toHaveLength(3);

    const listed = await repo.list(t, { type: 'msgraph' });
    expect(listed[0]).toEqual(await repo.get(t, g.integrationId));
  });

  it('list of a tenant with no integrations is empty', async () => {
    expect(await repo.list(freshTenant())).toEqual([]);
  });
});
