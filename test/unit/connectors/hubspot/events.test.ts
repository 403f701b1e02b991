import {
  connectPrivateApp,
  createTicket,
  fanOut,
  hubspotEventsMessageSchema,
  processEventsMessage,
  upsertCompanies,
  upsertContacts,
  WEBHOOK_CLAIM_STALE_MS,
  webhookBatchSchema,
  type HubSpotEventsMessage,
} from '../../../../src/connectors/hubspot';
import { cloudEventSchema } from '../../../../src/platform/events';
import { ProcessedStore, QUEUES, TABLES, TenantTable, tenantId, type IntegrationId, type ProcessedRow, type QueueSender, type TenantId } from '../../../../src/storage';
import { hubspotWorld, type HubSpotWorld } from './helpers';

interface Ev {
  type: string;
  id: string;
  tenantid: string;
  integrationid?: string;
  subject?: string;
  data: Record<string, unknown>;
}

/**
 * Webhook fan-out and the event worker against the fake HubSpot and Azurite: events reach every
 * integration of the portal once, the worker reads changed objects in batches and publishes
 * CloudEvents in order, and our own writes come back as echoes that are not announced.
 */
describe('HubSpot webhook events', () => {
  let w: HubSpotWorld;
  const A = tenantId('tenant-a');
  const B = tenantId('tenant-b');
  const C = tenantId('tenant-c');
  let hubId: number;
  let a: IntegrationId;
  let b: IntegrationId;
  let c: IntegrationId;

  beforeAll(async () => {
    w = await hubspotWorld();
    hubId = w.fake.addPortal().hubId;
    w.fake.setPipelines(hubId, [{ id: '0', label: 'Support', stages: [{ id: '1', label: 'New' }, { id: '2', label: 'Waiting' }] }]);
    // Tenants A and B connect the same portal; C connects another one.
    a = (await connectPrivateApp(w.hs, A, w.fake.createPrivateAppToken(hubId), w.log)).integrationId;
    b = (await connectPrivateApp(w.hs, B, w.fake.createPrivateAppToken(hubId), w.log)).integrationId;
    c = (await connectPrivateApp(w.hs, C, w.fake.createPrivateAppToken(w.fake.addPortal().hubId), w.log)).integrationId;
    await w.drain(QUEUES.hubspotSync);
  });
  afterAll(async () => w?.stop());
  beforeEach(async () => {
    await w.drain(QUEUES.hubspotEvents);
    await w.drain(QUEUES.engineEvents);
  });

  const deps = () => ({ accountIndex: w.hs.accountIndex, processed: w.base.processed, queues: w.base.queues, log: w.log });
  const batch = (events: Array<Record<string, unknown>>) => webhookBatchSchema.parse(events);
  const messages = async () => (await w.drain(QUEUES.hubspotEvents)).map((m) => hubspotEventsMessageSchema.parse(m));
  const engineEvents = async () => (await w.drain(QUEUES.engineEvents)).map((e) => cloudEventSchema.parse(e) as unknown as Ev);

  async function work(tenant: TenantId, integration: IntegrationId, message: HubSpotEventsMessage) {
    const row = await w.base.integrations.get(tenant, integration);
    if (!row) throw new Error('no integration');
    const caller = w.hs.callerFor(row, { priority: 'interactive' });
    return { result: await processEventsMessage({ records: w.hs.records, events: w.base.events, log: w.log, labelsCache: new Map() }, row, caller, message), caller };
  }

  it('fans a delivery out to every integration of the portal, and only those; a replay queues nothing', async () => {
    const [t1] = w.fake.seed(hubId, 'tickets', 1) as [string];
    const events = batch([w.fake.webhookEvent(hubId, { subscriptionType: 'ticket.propertyChange', objectId: t1, propertyName: 'subject', propertyValue: 'x' })]);
    const first = await fanOut(deps(), events, 'd1');
    expect(first).toMatchObject({ received: 1, queued: 2, duplicates: 0, messages: 2 });
    const queued = await messages();
    expect(queued.map((m) => `${m.tenantId}/${m.integrationId}`).sort()).toEqual([`${A}/${a}`, `${B}/${b}`].sort());
    expect(queued.every((m) => m.events.length === 1 && m.portalId === String(hubId))).toBe(true);

    // HubSpot retries the same delivery (next attemptNumber): nothing is queued again.
    const replay = batch(events.map((e) => ({ ...e, attemptNumber: 1 })));
    expect(await fanOut(deps(), replay, 'd2')).toMatchObject({ queued: 0, duplicates: 2, messages: 0 });
    expect(await messages()).toEqual([]);
  });

  it('a handler that dies between claiming and queueing loses nothing: the retry is asked to come back, then takes the claims over', async () => {
    const [t1] = w.fake.seed(hubId, 'tickets', 1) as [string];
    const events = batch([w.fake.webhookEvent(hubId, { subscriptionType: 'ticket.propertyChange', objectId: t1, propertyName: 'subject', propertyValue: 'y' })]);
    let clock = Date.now();
    const table = new TenantTable<ProcessedRow>(w.base.storage.table(TABLES.processed));
    // The process dies after claiming: its queue write never lands and it gives nothing back.
    class DiesBeforeRelease extends ProcessedStore {
      override async release(): Promise<void> {
        throw new Error('process died');
      }
    }
    const dead = { send: async () => Promise.reject(new Error('process died')) } as unknown as QueueSender;
    await expect(fanOut({ ...deps(), processed: new DiesBeforeRelease(table, () => clock), queues: dead }, events, 'd-crash')).rejects.toThrow('process died');
    expect(await messages()).toEqual([]);

    const processed = new ProcessedStore(table, () => clock);
    const retry = batch(events.map((e) => ({ ...e, attemptNumber: 1 })));
    // HubSpot retries within the minute. The dead handler got as far as claiming for the first of the two
    // integrations: that claim may still be someone's work, so it is neither queued nor called a duplicate
    // (the delivery is not acknowledged); the other integration, never claimed, is queued now.
    expect(await fanOut({ ...deps(), processed }, retry, 'd-retry-1')).toMatchObject({ queued: 1, duplicates: 0, inProgress: 1 });
    const first = (await messages()).map((m) => m.integrationId);
    expect(first).toHaveLength(1);
    // A later retry finds the claim stale and queues the event for the integration it held.
    clock += WEBHOOK_CLAIM_STALE_MS + 1_000;
    expect(await fanOut({ ...deps(), processed }, retry, 'd-retry-2')).toMatchObject({ queued: 1, duplicates: 1, inProgress: 0 });
    const second = (await messages()).map((m) => m.integrationId);
    expect([...first, ...second].sort()).toEqual([a, b].sort());
    // Queued means confirmed: any further replay, however late, is a duplicate.
    clock += 10 * WEBHOOK_CLAIM_STALE_MS;
    expect(await fanOut({ ...deps(), processed }, retry, 'd-retry-3')).toMatchObject({ queued: 0, duplicates: 2, inProgress: 0 });
    expect(await messages()).toEqual([]);
  });

  it('drops events of portals nobody connected, types we do not sync and imports', async () => {
    const other = w.fake.addPortal().hubId;
    const events = batch([
      w.fake.webhookEvent(other, { subscriptionType: 'ticket.creation', objectId: 1 }),
      w.fake.webhookEvent(hubId, { subscriptionType: 'deal.creation', objectId: 2 }),
      w.fake.webhookEvent(hubId, { subscriptionType: 'contact.creation', objectId: 3, changeSource: 'IMPORT' }),
    ]);
    expect(await fanOut(deps(), events, 'd3')).toMatchObject({ received: 3, queued: 0, unrouted: 1, skipped: 2 });
    expect(await messages()).toEqual([]);
  });

  it('the worker reads changed tickets in one batch call and publishes creations before changes, with labels', async () => {
    const [changed] = w.fake.seed(hubId, 'tickets', 1) as [string];
    // Held already (a first delivery announced its creation).
    await fanOut(deps(), batch([w.fake.webhookEvent(hubId, { subscriptionType: 'ticket.creation', objectId: changed })]), 'd4');
    await work(A, a, (await messages()).find((m) => m.tenantId === A) as HubSpotEventsMessage);
    expect((await engineEvents()).map((e) => e.type)).toEqual(['com.itil-next.connectors.ticket.created.v1']);

    const [n1, n2] = w.fake.seed(hubId, 'tickets', 2) as [string, string];
    w.fake.upsertObject(hubId, 'tickets', changed, { subject: 'Printer on fire', hs_ticket_priority: 'HIGH', hs_pipeline_stage: '2' });
    w.fake.resetStats();
    const t0 = Date.now();
    // The change arrives first in the delivery; the creations are still announced before it.
    const events = batch([
      w.fake.webhookEvent(hubId, { subscriptionType: 'ticket.propertyChange', objectId: changed, propertyName: 'subject', occurredAt: t0 - 30 }),
      w.fake.webhookEvent(hubId, { subscriptionType: 'ticket.creation', objectId: n1, occurredAt: t0 - 20 }),
      w.fake.webhookEvent(hubId, { subscriptionType: 'ticket.creation', objectId: n2, occurredAt: t0 - 10 }),
      w.fake.webhookEvent(hubId, { subscriptionType: 'ticket.propertyChange', objectId: n1, propertyName: 'hs_pipeline_stage', occurredAt: t0 }),
    ]);
    await fanOut(deps(), events, 'd5');
    const mine = (await messages()).find((m) => m.tenantId === A) as HubSpotEventsMessage;
    const { result } = await work(A, a, mine);
    expect(result).toMatchObject({ objects: 3, created: 2, updated: 1 });
    expect(w.fake.stats().byRoute['POST /crm/v3/objects/tickets/batch/read']).toBe(1);
    const out = await engineEvents();
    expect(out.map((e) => e.type)).toEqual([
      'com.itil-next.connectors.ticket.created.v1',
      'com.itil-next.connectors.ticket.created.v1',
      'com.itil-next.connectors.ticket.updated.v1',
    ]);
    for (const e of out) {
      expect(e).toMatchObject({ tenantid: A, integrationid: a });
      expect(e.data).toMatchObject({ portalId: String(hubId), objectType: 'tickets', source: 'webhook', pipelineLabel: 'Support' });
    }
    const upd = out[2] as Ev;
    expect(upd.subject).toBe(`tickets/${changed}`);
    expect(upd.data).toMatchObject({ stageLabel: 'Waiting' });
    expect((upd.data.properties as Record<string, string>).subject).toBe('Printer on fire');
    expect((await w.hs.records.get(A, a, 'tickets', changed))?.properties.subject).toBe('Printer on fire');
    // Tenant B's store is its own: B has not processed its messages, so it holds none of this.
    expect(await w.hs.records.get(B, b, 'tickets', changed)).toBeUndefined();

    // The same message again (a queue redelivery) announces nothing new: those versions are stored.
    await work(A, a, mine);
    expect(await engineEvents()).toEqual([]);
  });

  it('deletions and merges: ticket.deleted for a deleted ticket, contact.merged for a merge', async () => {
    const [t] = w.fake.seed(hubId, 'tickets', 1) as [string];
    const [c1, c2] = w.fake.seed(hubId, 'contacts', 2) as [string, string];
    // Held first (a creation), then deleted and merged.
    await fanOut(deps(), batch([w.fake.webhookEvent(hubId, { subscriptionType: 'ticket.creation', objectId: t }), w.fake.webhookEvent(hubId, { subscriptionType: 'contact.creation', objectId: c1 }), w.fake.webhookEvent(hubId, { subscriptionType: 'contact.creation', objectId: c2 })]), 'd6');
    await work(A, a, (await messages()).find((m) => m.tenantId === A) as HubSpotEventsMessage);
    await engineEvents();

    w.fake.archiveObject(hubId, 'tickets', t);
    w.fake.mergeObjects(hubId, 'contacts', c1, c2);
    await fanOut(
      deps(),
      batch([
        w.fake.webhookEvent(hubId, { subscriptionType: 'ticket.deletion', objectId: t }),
        w.fake.webhookEvent(hubId, { subscriptionType: 'contact.merge', objectId: c1, mergedObjectIds: [Number(c2)] }),
      ]),
      'd7',
    );
    const { result } = await work(A, a, (await messages()).find((m) => m.tenantId === A) as HubSpotEventsMessage);
    expect(result).toMatchObject({ deleted: 1, merged: 1 });
    const out = await engineEvents();
    const types = out.map((e) => e.type);
    expect(types).toContain('com.itil-next.connectors.ticket.deleted.v1');
    expect(types).toContain('com.itil-next.connectors.contact.merged.v1');
    expect(types.indexOf('com.itil-next.connectors.ticket.deleted.v1')).toBeLessThan(types.indexOf('com.itil-next.connectors.contact.merged.v1'));
    const merged = out.find((e) => e.type.endsWith('contact.merged.v1'));
    expect(merged?.data).toMatchObject({ primaryObjectId: c1, mergedObjectIds: [c2] });
    expect((await w.hs.records.get(A, a, 'tickets', t))?.archived).toBe(true);
    expect((await w.hs.records.get(A, a, 'contacts', c2))?.archived).toBe(true);
  });

  it('our own writes come back as echoes and are not announced; a later change by someone else is', async () => {
    const row = await w.base.integrations.get(A, a);
    if (!row) throw new Error('no integration');
    const caller = w.hs.callerFor(row, { priority: 'interactive' });
    const pushDeps = { caller, records: w.hs.records, tenantId: A, integrationId: a };
    const pushed = await upsertContacts(pushDeps, [{ email: 'echo@example.com', properties: { firstname: 'Echo' } }]);
    expect(pushed.results).toEqual([{ key: 'echo@example.com', id: expect.stringMatching(/^\d+$/), created: true }]);
    const id = pushed.results[0]?.id as string;
    expect(w.fake.getObject(hubId, 'contacts', id)?.properties.firstname).toBe('Echo');

    await fanOut(deps(), batch([w.fake.webhookEvent(hubId, { subscriptionType: 'contact.creation', objectId: id, changeSource: 'INTEGRATION' }), w.fake.webhookEvent(hubId, { subscriptionType: 'contact.propertyChange', objectId: id, propertyName: 'firstname', changeSource: 'INTEGRATION' })]), 'd8');
    const { result } = await work(A, a, (await messages()).find((m) => m.tenantId === A) as HubSpotEventsMessage);
    expect(result.echoes).toBe(1);
    expect(await engineEvents()).toEqual([]);

    // Someone edits it in HubSpot afterwards: that one is announced.
    w.fake.upsertObject(hubId, 'contacts', id, { firstname: 'Human' });
    await fanOut(deps(), batch([w.fake.webhookEvent(hubId, { subscriptionType: 'contact.propertyChange', objectId: id, propertyName: 'firstname' })]), 'd9');
    await work(A, a, (await messages()).find((m) => m.tenantId === A) as HubSpotEventsMessage);
    const out = await engineEvents();
    expect(out.map((e) => e.type)).toEqual(['com.itil-next.connectors.contact.updated.v1']);
  });

  it('companies upsert by domain; tickets are created with their v4 contact and company associations', async () => {
    const row = await w.base.integrations.get(C, c);
    if (!row?.externalAccountId) throw new Error('no integration');
    const portal = Number(row.externalAccountId);
    const caller = w.hs.callerFor(row, { priority: 'interactive' });
    const d = { caller, records: w.hs.records, tenantId: C, integrationId: c };
    const first = await upsertCompanies(d, [{ domain: 'acme.example', properties: { name: 'Acme' } }, { domain: 'globex.example', properties: { name: 'Globex' } }]);
    expect(first.results.map((r) => r.created)).toEqual([true, true]);
    const again = await upsertCompanies(d, [{ domain: 'acme.example', properties: { name: 'Acme Corp' } }]);
    expect(again.results).toEqual([{ key: 'acme.example', id: first.results[0]?.id, created: false }]);
    expect(w.fake.getObject(portal, 'companies', first.results[0]?.id as string)?.properties.name).toBe('Acme Corp');

    const contact = await upsertContacts(d, [{ email: 'jane@acme.example', properties: {} }]);
    const ticket = await createTicket(d, {
      properties: { subject: 'Cannot log in', hs_pipeline: '0', hs_pipeline_stage: '1', hs_ticket_priority: 'HIGH' },
      contactIds: [contact.results[0]?.id as string],
      companyIds: [first.results[0]?.id as string, first.results[1]?.id as string],
    });
    expect(w.fake.associations(portal, 'tickets', ticket.id, 'contacts')).toEqual([contact.results[0]?.id]);
    expect(w.fake.associations(portal, 'tickets', ticket.id, 'companies').sort()).toEqual([first.results[0]?.id, first.results[1]?.id].sort());
    expect((await w.hs.records.get(C, c, 'tickets', ticket.id))?.lastPushedVersion).toMatch(/^\d+$/);
  });

  it('a full delivery of 100 changed contacts is read with one batch call', async () => {
    const ids = w.fake.seed(hubId, 'contacts', 100);
    w.fake.resetStats();
    await fanOut(deps(), batch(ids.map((id) => w.fake.webhookEvent(hubId, { subscriptionType: 'contact.propertyChange', objectId: id, propertyName: 'firstname' }))), 'd10');
    const mine = (await messages()).filter((m) => m.tenantId === A);
    expect(mine).toHaveLength(1);
    const { result } = await work(A, a, mine[0] as HubSpotEventsMessage);
    expect(result.objects).toBe(100);
    expect(w.fake.stats().byRoute['POST /crm/v3/objects/contacts/batch/read']).toBe(1);
  });
});
