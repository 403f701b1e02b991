import { AssociationSpecAssociationCategoryEnum, FilterOperatorEnum } from '@hubspot/api-client/lib/codegen/crm/tickets';
import { startFakeHubSpot, type FakeHubSpot, type FakePortal } from '../../fakes/hubspot';
import { apiError, connect, sdk } from './hubspotHelpers';

/** The real @hubspot/api-client v14 against the fake's CRM v3 / v4 endpoints. */

describe('fake HubSpot CRM through the real SDK', () => {
  let fake: FakeHubSpot;
  let a: FakePortal;
  let b: FakePortal;
  let tokenA: string;
  let tokenB: string;
  let ticketIds: string[];

  beforeAll(async () => {
    // Limits far away: this file checks data semantics; limits have their own tests.
    fake = await startFakeHubSpot({ rateLimit: { perTenSeconds: 1_000_000, searchPerSecond: 1_000_000 } });
    a = fake.addPortal();
    b = fake.addPortal();
    tokenA = (await connect(fake, a.hubId)).access_token;
    tokenB = (await connect(fake, b.hubId)).access_token;
    ticketIds = fake.seed(a.hubId, 'tickets', 250);
    fake.seed(b.hubId, 'tickets', 3);
  });

  afterAll(async () => {
    await fake.close();
  });

  it('lists tickets page by page with after, in id order, with requested properties', async () => {
    const client = sdk(fake, tokenA);
    const seen: string[] = [];
    let after: string | undefined;
    let pages = 0;
    do {
      const page = await client.crm.tickets.basicApi.getPage(100, after, ['subject', 'hs_pipeline_stage', 'not_a_property']);
      pages++;
      for (const r of page.results) {
        seen.push(r.id);
        expect(r.properties.subject).toMatch(/^Ticket \d+$/);
        expect(r.properties.hs_pipeline_stage).toBe('1');
        expect(r.properties.not_a_property).toBeNull();
        expect(r.properties.hs_object_id).toBe(r.id);
        expect(r.createdAt).toBeInstanceOf(Date);
        expect(r.updatedAt.getTime()).toBe(Date.parse(r.properties.hs_lastmodifieddate as string));
      }
      after = page.paging?.next?.after;
    } while (after);
    expect(pages).toBe(3);
    expect(seen).toEqual(ticketIds);
  });

  it('caps list pages at 100 and defaults to 10', async () => {
    const client = sdk(fake, tokenA);
    expect((await client.crm.tickets.basicApi.getPage(500)).results).toHaveLength(100);
    expect((await client.crm.tickets.basicApi.getPage()).results).toHaveLength(10);
  });

  it("serves the SDK's own getAll helper", async () => {
    const all = await sdk(fake, tokenA).crm.tickets.getAll(100, undefined, ['subject']);
    expect(all.map((t) => t.id)).toEqual(ticketIds);
  });

  it('reads one ticket, and answers 404 with a HubSpot error body for a missing one', async () => {
    const client = sdk(fake, tokenA);
    const t = await client.crm.tickets.basicApi.getById(ticketIds[5] as string, ['subject', 'hs_ticket_priority']);
    expect(t.properties.subject).toBe('Ticket 5');
    expect(['LOW', 'MEDIUM', 'HIGH']).toContain(t.properties.hs_ticket_priority);
    const err = await apiError(client.crm.tickets.basicApi.getById('999999999'));
    expect(err.code).toBe(404);
    expect(err.body).toMatchObject({ status: 'error', category: 'OBJECT_NOT_FOUND' });
    expect(typeof err.body.correlationId).toBe('string');
  });

  it('batch-reads up to 100 ids and reports missing ones in a 207', async () => {
    const client = sdk(fake, tokenA);
    const res = await client.crm.tickets.batchApi.read({ inputs: [{ id: ticketIds[0] as string }, { id: ticketIds[1] as string }, { id: '999999999' }], properties: ['subject'], propertiesWithHistory: [] });
    expect(res.results.map((r) => r.id).sort()).toEqual([ticketIds[0], ticketIds[1]].sort());
    expect(res.status).toBe('COMPLETE');
    const withErrors = res as typeof res & { numErrors?: number; errors?: Array<{ category: string; context: Record<string, string[]> }> };
    expect(withErrors.numErrors).toBe(1);
    expect(withErrors.errors?.[0]?.context.ids).toEqual(['999999999']);

    const tooMany = Array.from({ length: 101 }, (_, i) => ({ id: ticketIds[i] as string }));
    const err = await apiError(client.crm.tickets.batchApi.read({ inputs: tooMany, properties: [], propertiesWithHistory: [] }));
    expect(err.code).toBe(400);
    expect(err.body.category).toBe('VALIDATION_ERROR');
  });

  it('searches on last-modified ascending with filters, total and after paging', async () => {
    const client = sdk(fake, tokenA);
    const since = Date.now();
    const changed = ticketIds.slice(100, 130);
    for (const id of changed) fake.upsertObject(a.hubId, 'tickets', id, { hs_ticket_priority: 'HIGH' });
    const got: string[] = [];
    const stamps: number[] = [];
    let after: string | undefined;
    let total = -1;
    do {
      const page = await client.crm.tickets.searchApi.doSearch({
        filterGroups: [{ filters: [{ propertyName: 'hs_lastmodifieddate', operator: FilterOperatorEnum.Gte, value: String(since) }] }],
        sorts: ['hs_lastmodifieddate'],
        properties: ['hs_ticket_priority'],
        limit: 10,
        after,
      });
      total = page.total;
      for (const r of page.results) {
        got.push(r.id);
        stamps.push(Date.parse(r.properties.hs_lastmodifieddate as string));
        expect(r.properties.hs_ticket_priority).toBe('HIGH');
      }
      after = page.paging?.next?.after;
    } while (after);
    expect(total).toBe(30);
    expect(got.sort()).toEqual([...changed].sort());
    expect(stamps).toEqual([...stamps].sort((x, y) => x - y));

    // ISO values, other operators, a descending sort in the object form, OR across groups.
    const iso = new Date(since).toISOString();
    const desc = await client.crm.tickets.searchApi.doSearch({
      filterGroups: [
        { filters: [{ propertyName: 'hs_lastmodifieddate', operator: FilterOperatorEnum.Gte, value: iso }, { propertyName: 'hs_object_id', operator: FilterOperatorEnum.In, values: changed.slice(0, 3) }] },
        { filters: [{ propertyName: 'hs_object_id', operator: FilterOperatorEnum.Eq, value: ticketIds[0] as string }] },
      ],
      sorts: [{ propertyName: 'hs_object_id', direction: 'DESCENDING' } as unknown as string],
      limit: 200,
    });
    expect(desc.total).toBe(4);
    expect(desc.results.map((r) => r.id)).toEqual([...changed.slice(0, 3), ticketIds[0] as string].sort((x, y) => Number(y) - Number(x)));
    expect(desc.paging).toBeUndefined();

    const err = await apiError(client.crm.tickets.searchApi.doSearch({ limit: 201 }));
    expect(err.code).toBe(400);
  });

  it('refuses to page a search past 10,000 results with a 400, as HubSpot does', async () => {
    const big = fake.addPortal();
    const token = (await connect(fake, big.hubId)).access_token;
    fake.seed(big.hubId, 'tickets', 10_050);
    const client = sdk(fake, token);
    const search = (after: string | undefined, limit: number) =>
      client.crm.tickets.searchApi.doSearch({
        filterGroups: [{ filters: [{ propertyName: 'hs_lastmodifieddate', operator: FilterOperatorEnum.Gte, value: '0' }] }],
        sorts: ['hs_lastmodifieddate'],
        limit,
        after,
      });
    let after: string | undefined;
    let seen = 0;
    let failure: Awaited<ReturnType<typeof apiError>> | undefined;
    for (;;) {
      try {
        const page = await search(after, 200);
        expect(page.total).toBe(10_050);
        seen += page.results.length;
        after = page.paging?.next?.after;
        if (!after) break;
      } catch (e) {
        failure = await apiError(Promise.reject(e));
        break;
      }
    }
    expect(seen).toBe(10_000);
    expect(after).toBe('10000');
    expect(failure?.code).toBe(400);
    expect(failure?.body).toMatchObject({ status: 'error', category: 'VALIDATION_ERROR' });
    expect((await apiError(search('9900', 200))).code).toBe(400);
    expect((await search('9900', 100)).results).toHaveLength(100);
  });

  it('searches contacts on lastmodifieddate (not hs_lastmodifieddate)', async () => {
    const client = sdk(fake, tokenA);
    fake.seed(a.hubId, 'contacts', 5);
    const since = Date.now();
    const id = fake.upsertObject(a.hubId, 'contacts', undefined, { email: 'late@example.com', firstname: 'Late' });
    const byRightProp = await client.crm.contacts.searchApi.doSearch({ filterGroups: [{ filters: [{ propertyName: 'lastmodifieddate', operator: FilterOperatorEnum.Gte, value: String(since) }] }], limit: 10 });
    expect(byRightProp.results.map((r) => r.id)).toEqual([id]);
    expect(byRightProp.results[0]?.properties.lastmodifieddate).toBeDefined();
    const byWrongProp = await client.crm.contacts.searchApi.doSearch({ filterGroups: [{ filters: [{ propertyName: 'hs_lastmodifieddate', operator: FilterOperatorEnum.Gte, value: String(since) }] }], limit: 10 });
    expect(byWrongProp.total).toBe(0);
  });

  it('hides fresh writes from search for the index lag', async () => {
    const client = sdk(fake, tokenA);
    fake.setIndexLag(60_000);
    try {
      const id = fake.upsertObject(a.hubId, 'tickets', undefined, { subject: 'lagging' });
      const q = { filterGroups: [{ filters: [{ propertyName: 'hs_object_id', operator: FilterOperatorEnum.Eq, value: id }] }] };
      expect((await client.crm.tickets.searchApi.doSearch(q)).total).toBe(0);
      expect((await client.crm.tickets.basicApi.getById(id, ['subject'])).properties.subject).toBe('lagging');
      fake.setIndexLag(0);
      expect((await client.crm.tickets.searchApi.doSearch(q)).total).toBe(1);
    } finally {
      fake.setIndexLag(0);
    }
  });

  it('returns associations on list and serves v4 default PUT and batch read', async () => {
    const client = sdk(fake, tokenA);
    const [contact] = fake.seed(a.hubId, 'contacts', 1);
    const [company] = fake.seed(a.hubId, 'companies', 1);
    const [t1, t2, t3] = ticketIds as [string, string, string];
    fake.associate(a.hubId, 'tickets', t1, 'contacts', contact as string);

    const page = await client.crm.tickets.basicApi.getPage(2, undefined, ['subject'], undefined, ['contacts', 'companies']);
    const first = page.results.find((r) => r.id === t1);
    expect(first?.associations?.contacts?.results).toEqual([{ id: contact, type: 'ticket_to_contact' }]);
    expect(first?.associations?.companies).toBeUndefined();
    expect(page.results.find((r) => r.id === t2)?.associations).toBeUndefined();

    const put = await client.crm.associations.v4.basicApi.createDefault('tickets', t2, 'companies', company as string);
    expect(put.results.map((r) => r.associationSpec.associationTypeId).sort((x, y) => x - y)).toEqual([339, 340]);
    expect(fake.associations(a.hubId, 'companies', company as string, 'tickets')).toEqual([t2]);

    const batch = await client.crm.associations.v4.batchApi.getPage('tickets', 'companies', { inputs: [{ id: t2 }, { id: t3 }] });
    expect(batch.results).toHaveLength(1);
    expect(batch.results[0]?.to.map((x) => [String(x.toObjectId), x.associationTypes.map((y) => y.typeId)])).toEqual([[company, [339]]]);
    const withErrors = batch as typeof batch & { numErrors?: number };
    expect(withErrors.numErrors).toBe(1);
    // The SDK renames the wire's `from` to `_from`.
    expect((batch.results[0] as unknown as { _from: { id: string } })._from.id).toBe(t2);
  });

  it('creates tickets with HUBSPOT_DEFINED associations and requires a pipeline stage', async () => {
    const client = sdk(fake, tokenA);
    const [contact] = fake.seed(a.hubId, 'contacts', 1);
    const [company] = fake.seed(a.hubId, 'companies', 1);
    const created = await client.crm.tickets.basicApi.create({
      properties: { subject: 'From the engine', hs_pipeline: '0', hs_pipeline_stage: '1', hs_ticket_priority: 'HIGH' },
      associations: [
        { to: { id: contact as string }, types: [{ associationCategory: AssociationSpecAssociationCategoryEnum.HubspotDefined, associationTypeId: 16 }] },
        { to: { id: company as string }, types: [{ associationCategory: AssociationSpecAssociationCategoryEnum.HubspotDefined, associationTypeId: 26 }] },
      ],
    });
    expect(created.properties.subject).toBe('From the engine');
    expect(fake.associations(a.hubId, 'tickets', created.id, 'contacts')).toEqual([contact]);
    expect(fake.associations(a.hubId, 'tickets', created.id, 'companies')).toEqual([company]);
    const err = await apiError(client.crm.tickets.basicApi.create({ properties: { subject: 'no stage' }, associations: [] }));
    expect(err.code).toBe(400);
  });

  it('batch-upserts contacts by email and companies by domain, saying which are new', async () => {
    const client = sdk(fake, tokenA);
    const before = fake.count(a.hubId, 'contacts');
    const first = await client.crm.contacts.batchApi.upsert({ inputs: [{ id: 'Upsert@Example.com', idProperty: 'email', properties: { firstname: 'Ada' } }] });
    // The SDK renames the wire's `new` to `_new`.
    const r1 = first.results[0] as unknown as { id: string; _new: boolean };
    expect(r1._new).toBe(true);
    const second = await client.crm.contacts.batchApi.upsert({ inputs: [{ id: 'upsert@example.com', idProperty: 'email', properties: { lastname: 'Lovelace' } }] });
    const r2 = second.results[0] as unknown as { id: string; _new: boolean };
    expect(r2).toMatchObject({ id: r1.id, _new: false });
    expect(fake.count(a.hubId, 'contacts')).toBe(before + 1);
    expect(fake.getObject(a.hubId, 'contacts', r1.id)?.properties).toMatchObject({ firstname: 'Ada', lastname: 'Lovelace' });

    const co = await client.crm.companies.batchApi.upsert({ inputs: [{ id: 'acme.example', idProperty: 'domain', properties: { name: 'Acme' } }] });
    expect((co.results[0] as unknown as { _new: boolean })._new).toBe(true);
    const bad = await apiError(client.crm.tickets.batchApi.upsert({ inputs: [{ id: 'x', idProperty: 'subject', properties: {} }] }));
    expect(bad.code).toBe(400);
  });

  it('hides archived objects except with archived=true', async () => {
    const client = sdk(fake, tokenA);
    const id = fake.upsertObject(a.hubId, 'tickets', undefined, { subject: 'to archive' });
    fake.archiveObject(a.hubId, 'tickets', id);
    expect((await apiError(client.crm.tickets.basicApi.getById(id))).code).toBe(404);
    const archived = await client.crm.tickets.basicApi.getById(id, ['subject'], undefined, undefined, true);
    expect(archived.archived).toBe(true);
    expect(archived.archivedAt).toBeInstanceOf(Date);
    const listed = await client.crm.tickets.getAll(100, undefined, undefined, undefined, undefined, true);
    expect(listed.map((t) => t.id)).toEqual([id]);
    const search = await client.crm.tickets.searchApi.doSearch({ filterGroups: [{ filters: [{ propertyName: 'hs_object_id', operator: FilterOperatorEnum.Eq, value: id }] }] });
    expect(search.total).toBe(0);
  });

  it('merges: the merged id resolves to the primary and leaves lists', async () => {
    const client = sdk(fake, tokenA);
    const [p, m] = fake.seed(a.hubId, 'contacts', 2) as [string, string];
    fake.mergeObjects(a.hubId, 'contacts', p, m);
    const read = await client.crm.contacts.basicApi.getById(m, ['hs_merged_object_ids']);
    expect(read.id).toBe(p);
    expect(read.properties.hs_merged_object_ids).toBe(m);
    const all = await client.crm.contacts.getAll(100);
    expect(all.map((c) => c.id)).toContain(p);
    expect(all.map((c) => c.id)).not.toContain(m);
  });

  it('serves ticket pipelines with stage labels', async () => {
    const res = await sdk(fake, tokenA).crm.pipelines.pipelinesApi.getAll('tickets');
    expect(res.results[0]?.stages.map((s) => [s.id, s.label, s.metadata?.ticketState])).toEqual([
      ['1', 'New', 'OPEN'],
      ['2', 'Waiting on contact', 'OPEN'],
      ['3', 'Waiting on us', 'OPEN'],
      ['4', 'Closed', 'CLOSED'],
    ]);
  });

  it("keeps portals apart: portal B's token neither reads nor changes portal A's tickets", async () => {
    const clientB = sdk(fake, tokenB);
    const listB = await clientB.crm.tickets.getAll(100);
    expect(listB).toHaveLength(3);
    expect(listB.map((t) => t.id).some((id) => ticketIds.includes(id))).toBe(false);
    const target = ticketIds[7] as string;
    expect((await apiError(clientB.crm.tickets.basicApi.getById(target))).code).toBe(404);
    expect((await apiError(clientB.crm.tickets.basicApi.update(target, { properties: { subject: 'hijacked' } }))).code).toBe(404);
    expect(fake.getObject(a.hubId, 'tickets', target)?.properties.subject).toBe('Ticket 7');
  });

  it('answers 403 MISSING_SCOPES for an object type the token was not granted', async () => {
    const limited = fake.addPortal({ scopes: ['oauth', 'tickets'] });
    const token = (await connect(fake, limited.hubId)).access_token;
    const err = await apiError(sdk(fake, token).crm.contacts.basicApi.getPage(10));
    expect(err.code).toBe(403);
    expect(err.body.category).toBe('MISSING_SCOPES');
    expect((await sdk(fake, token).crm.tickets.basicApi.getPage(1)).results).toEqual([]);
  });
});
