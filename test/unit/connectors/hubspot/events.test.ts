import {
  connectPrivateApp,
  createTicket,
  DEFER_SECONDS,
  deliveryMessages,
  fanOut,
  hubspotDeliveryMessageSchema,
  hubspotEventsMessageSchema,
  processEventsMessage,
  upsertCompanies,
  upsertContacts,
  WEBHOOK_CLAIM_SOURCE,
  WEBHOOK_CLAIM_STALE_MS,
  webhookBatchSchema,
  type FanOutDeps,
  type FanOutResult,
  type HubSpotDeliveryMessage,
  type HubSpotEventsMessage,
  type WebhookEvent,
} from '../../../../src/connectors/hubspot';
import { cloudEventSchema } from '../../../../src/platform/events';
import { escapeKeyPart, partitionKey, ProcessedStore, QUEUES, TABLES, TenantTable, tenantId, type IntegrationId, type ProcessedRow, type QueueSender, type TenantId } from '../../../../src/storage';
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
    await w.base.storage.queue(QUEUES.hubspotWebhooks).clearMessages();
    await w.drain(QUEUES.engineEvents);
  });

  const deps = (): FanOutDeps => ({ accountIndex: w.hs.accountIndex, processed: w.base.processed, queues: w.base.queues, log: w.log });
  /** What HubSpot's delivery becomes: the intake's messages, each handled by the fan-out worker. */
  async function route(events: WebhookEvent[], deliveryId: string): Promise<FanOutResult> {
    const total: FanOutResult = { received: 0, queued: 0, duplicates: 0, deferred: 0, unrouted: 0, messages: 0 };
    for (const part of deliveryMessages(events, deliveryId, Date.now()).parts) {
      const r = await fanOut(deps(), part);
      for (const k of Object.keys(total) as Array<keyof FanOutResult>) total[k] += r[k];
    }
    return total;
  }
  const batch = (events: Array<Record<string, unknown>>) => webhookBatchSchema.parse(events);
  const messages = async () => (await w.drain(QUEUES.hubspotEvents)).map((m) => hubspotEventsMessageSchema.parse(m));
  const engineEvents = async () => (await w.drain(QUEUES.engineEvents)).map((e) => cloudEventSchema.parse(e) as unknown as Ev);

  async function work(tenant: TenantId, integration: IntegrationId, message: HubSpotEventsMessage) {
    const row = await w.base.integrations.get(tenant, integration);
    if (!row) throw new Error('no integration');
    const caller = w.hs.callerFor(row, { priority: 'interactive' });
    return { result: await processEventsMessage({ records: w.hs.records, events: w.base.events, processed: w.base.processed, log: w.log, labelsCache: new Map() }, row, caller, message), caller };
  }

  it('fans a delivery out to every integration of the portal, and only those; a replay queues nothing', async () => {
    const [t1] = w.fake.seed(hubId, 'tickets', 1) as [string];
    const events = batch([w.fake.webhookEvent(hubId, { subscriptionType: 'ticket.propertyChange', objectId: t1, propertyName: 'subject', propertyValue: 'x' })]);
    const first = await route(events, 'd1');
    expect(first).toMatchObject({ received: 1, queued: 2, duplicates: 0, messages: 2 });
    const queued = await messages();
    expect(queued.map((m) => `${m.tenantId}/${m.integrationId}`).sort()).toEqual([`${A}/${a}`, `${B}/${b}`].sort());
    expect(queued.every((m) => m.events.length === 1 && m.portalId === String(hubId))).toBe(true);

    // HubSpot retries the same delivery (next attemptNumber): nothing is queued again.
    const replay = batch(events.map((e) => ({ ...e, attemptNumber: 1 })));
    expect(await route(replay, 'd2')).toMatchObject({ queued: 0, duplicates: 2, messages: 0 });
    expect(await messages()).toEqual([]);
  });

  it('the same event in two different deliveries reaches each integration once, the new ones with it', async () => {
    const [t1, t2] = w.fake.seed(hubId, 'tickets', 2) as [string, string];
    const e1 = w.fake.webhookEvent(hubId, { subscriptionType: 'ticket.propertyChange', objectId: t1, propertyName: 'subject' });
    const e2 = w.fake.webhookEvent(hubId, { subscriptionType: 'ticket.propertyChange', objectId: t2, propertyName: 'subject' });
    expect(await route(batch([e1]), 'd-one')).toMatchObject({ queued: 2, duplicates: 0 });
    // HubSpot batches differently on its next try: e1 again, with e2 new.
    expect(await route(batch([e2, { ...e1, attemptNumber: 1 }]), 'd-two')).toMatchObject({ queued: 2, duplicates: 2 });
    const all = await messages();
    const perIntegration = new Map<string, string[]>();
    for (const m of all) perIntegration.set(m.integrationId, [...(perIntegration.get(m.integrationId) ?? []), ...m.events.map((e) => e.objectId)]);
    expect([...perIntegration.keys()].sort()).toEqual([a, b].sort());
    for (const ids of perIntegration.values()) expect(ids.sort()).toEqual([t1, t2].sort());
  });

  it('a full delivery is claimed in one transaction per integration, and its redelivery in a few reads', async () => {
    const ids = w.fake.seed(hubId, 'tickets', 100);
    const events = batch(ids.map((id) => w.fake.webhookEvent(hubId, { subscriptionType: 'ticket.propertyChange', objectId: id, propertyName: 'subject' })));
    const { parts } = deliveryMessages(events, 'd-full', Date.now());
    expect(parts).toHaveLength(1);
    expect(await fanOut(deps(), parts[0] as HubSpotDeliveryMessage)).toMatchObject({ received: 100, queued: 200, duplicates: 0, messages: 2 });
    expect((await messages()).map((m) => m.events.length)).toEqual([100, 100]);
    // Redelivered by the queue (same message): every claim is confirmed, nothing goes out again.
    expect(await fanOut(deps(), parts[0] as HubSpotDeliveryMessage)).toMatchObject({ queued: 0, duplicates: 200, messages: 0 });
    expect(await messages()).toEqual([]);
  });

  it('a fan-out killed between claiming and queueing loses nothing: the redelivered message completes it exactly once', async () => {
    const [t1, t2] = w.fake.seed(hubId, 'tickets', 2) as [string, string];
    const events = batch([t1, t2].map((id) => w.fake.webhookEvent(hubId, { subscriptionType: 'ticket.propertyChange', objectId: id, propertyName: 'subject' })));
    const [part] = deliveryMessages(events, 'd-crash', Date.now()).parts as [HubSpotDeliveryMessage];
    const table = new TenantTable<ProcessedRow>(w.base.storage.table(TABLES.processed));
    // The process dies after claiming: its queue write never lands and it gives nothing back.
    class DiesBeforeRelease extends ProcessedStore {
      override async releaseMany(): Promise<void> {
        throw new Error('process died');
      }
    }
    const dead = { send: async () => Promise.reject(new Error('process died')) } as unknown as QueueSender;
    await expect(fanOut({ ...deps(), processed: new DiesBeforeRelease(table), queues: dead }, part)).rejects.toThrow('process died');
    expect(await messages()).toEqual([]);
    // The claims it left are pending, owned by this delivery.
    const left = await table.getMany(partitionKey.processed(WEBHOOK_CLAIM_SOURCE, A), [escapeKeyPart(`${a}:${part.events[0]?.key}`)]);
    expect([...left.values()].map((r) => [r.data.pending, r.data.owner])).toEqual([[true, 'd-crash']]);

    // The queue redelivers the same message at once (well inside the stale time): it owns the claims and
    // takes them over, so both events reach both integrations, once.
    expect(await fanOut(deps(), part)).toMatchObject({ queued: 4, duplicates: 0, deferred: 0 });
    const sent = await messages();
    expect(sent.flatMap((m) => m.events.map((e) => `${m.integrationId}/${e.objectId}`)).sort()).toEqual([`${a}/${t1}`, `${a}/${t2}`, `${b}/${t1}`, `${b}/${t2}`].sort());
    // Any further redelivery, of the message or of HubSpot's request, is a duplicate.
    expect(await fanOut(deps(), part)).toMatchObject({ queued: 0, duplicates: 4 });
    expect(await route(events, 'd-hubspot-retry')).toMatchObject({ queued: 0, duplicates: 4 });
    expect(await messages()).toEqual([]);
  });

  it('events held unconfirmed by another delivery are deferred, not dropped, and go out once that claim is stale', async () => {
    const [t1] = w.fake.seed(hubId, 'tickets', 1) as [string];
    const events = batch([w.fake.webhookEvent(hubId, { subscriptionType: 'ticket.propertyChange', objectId: t1, propertyName: 'subject' })]);
    let clock = Date.now();
    const table = new TenantTable<ProcessedRow>(w.base.storage.table(TABLES.processed));
    const dead = { send: async () => Promise.reject(new Error('process died')) } as unknown as QueueSender;
    class DiesBeforeRelease extends ProcessedStore {
      override async releaseMany(): Promise<void> {
        throw new Error('process died');
      }
    }
    const [first] = deliveryMessages(events, 'd-first', clock).parts as [HubSpotDeliveryMessage];
    await expect(fanOut({ ...deps(), processed: new DiesBeforeRelease(table, () => clock), queues: dead }, first)).rejects.toThrow('process died');

    // HubSpot's retry is another delivery: the claims may still be someone's work, so the event is put
    // back on hubspot-webhooks with a delay instead of being queued or called a duplicate.
    const processed = new ProcessedStore(table, () => clock);
    const [retry] = deliveryMessages(batch(events.map((e) => ({ ...e, attemptNumber: 1 }))), 'd-retry', clock).parts as [HubSpotDeliveryMessage];
    // (Made visible at once here, so the test can read it; in production it waits DEFER_SECONDS.)
    expect(await fanOut({ ...deps(), processed, deferSeconds: 0 }, retry)).toMatchObject({ queued: 0, duplicates: 0, deferred: 1 });
    expect(await messages()).toEqual([]);
    const back = (await w.drain(QUEUES.hubspotWebhooks)).map((m) => hubspotDeliveryMessageSchema.parse(m));
    expect(back).toHaveLength(1);
    expect(back[0]).toMatchObject({ deliveryId: 'd-retry', events: [{ objectId: t1 }] });
    expect(DEFER_SECONDS * 1000).toBeGreaterThan(WEBHOOK_CLAIM_STALE_MS);

    // When it comes back the claims are stale: taken over, queued to both integrations, once.
    clock += DEFER_SECONDS * 1000;
    expect(await fanOut({ ...deps(), processed }, back[0] as HubSpotDeliveryMessage)).toMatchObject({ queued: 2, deferred: 0 });
    expect((await messages()).map((m) => m.integrationId).sort()).toEqual([a, b].sort());
    clock += 10 * WEBHOOK_CLAIM_STALE_MS;
    expect(await fanOut({ ...deps(), processed }, retry)).toMatchObject({ queued: 0, duplicates: 2 });
  });

  it('tenant scoping: claims live in each tenant\'s own partition, and another tenant\'s claim does not hide an event', async () => {
    const [t1] = w.fake.seed(hubId, 'tickets', 1) as [string];
    const [part] = deliveryMessages(batch([w.fake.webhookEvent(hubId, { subscriptionType: 'ticket.propertyChange', objectId: t1, propertyName: 'subject' })]), 'd-scope', Date.now()).parts as [HubSpotDeliveryMessage];
    const key = part.events[0]?.key as string;
    // Tenant A has seen this event already (say, through another path); B has not.
    await w.base.processed.claim(WEBHOOK_CLAIM_SOURCE, A, `${a}:${key}`);
    expect(await fanOut(deps(), part)).toMatchObject({ queued: 1, duplicates: 1 });
    expect((await messages()).map((m) => `${m.tenantId}/${m.integrationId}`)).toEqual([`${B}/${b}`]);
    const table = new TenantTable<ProcessedRow>(w.base.storage.table(TABLES.processed));
    expect((await table.getMany(partitionKey.processed(WEBHOOK_CLAIM_SOURCE, B), [escapeKeyPart(`${b}:${key}`)])).size).toBe(1);
    expect((await table.getMany(partitionKey.processed(WEBHOOK_CLAIM_SOURCE, B), [escapeKeyPart(`${a}:${key}`)])).size).toBe(0);
  });

  it('drops events of portals nobody connected, types we do not sync and imports', async () => {
    const other = w.fake.addPortal().hubId;
    const events = batch([
      w.fake.webhookEvent(other, { subscriptionType: 'ticket.creation', objectId: 1 }),
      w.fake.webhookEvent(hubId, { subscriptionType: 'deal.creation', objectId: 2 }),
      w.fake.webhookEvent(hubId, { subscriptionType: 'contact.creation', objectId: 3, changeSource: 'IMPORT' }),
    ]);
    const { parts, skipped } = deliveryMessages(events, 'd3', Date.now());
    expect(skipped).toBe(2);
    expect(await route(events, 'd3')).toMatchObject({ received: 1, queued: 0, unrouted: 1 });
    expect(parts).toHaveLength(1);
    expect(await messages()).toEqual([]);
    // Nothing of ours at all: no message is written.
    expect(deliveryMessages(batch([w.fake.webhookEvent(hubId, { subscriptionType: 'deal.creation', objectId: 2 })]), 'd3b', Date.now()).parts).toEqual([]);
  });

  it('the worker reads changed tickets in one batch call and publishes creations before changes, with labels', async () => {
    const [changed] = w.fake.seed(hubId, 'tickets', 1) as [string];
    // Held already (a first delivery announced its creation).
    await route(batch([w.fake.webhookEvent(hubId, { subscriptionType: 'ticket.creation', objectId: changed })]), 'd4');
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
    await route(events, 'd5');
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
    await route(batch([w.fake.webhookEvent(hubId, { subscriptionType: 'ticket.creation', objectId: t }), w.fake.webhookEvent(hubId, { subscriptionType: 'contact.creation', objectId: c1 }), w.fake.webhookEvent(hubId, { subscriptionType: 'contact.creation', objectId: c2 })]), 'd6');
    await work(A, a, (await messages()).find((m) => m.tenantId === A) as HubSpotEventsMessage);
    await engineEvents();

    w.fake.archiveObject(hubId, 'tickets', t);
    w.fake.mergeObjects(hubId, 'contacts', c1, c2);
    await route(
      batch([
        w.fake.webhookEvent(hubId, { subscriptionType: 'ticket.deletion', objectId: t }),
        w.fake.webhookEvent(hubId, { subscriptionType: 'contact.merge', objectId: c1, mergedObjectIds: [Number(c2)] }),
      ]),
      'd7',
    );
    const message = (await messages()).find((m) => m.tenantId === A) as HubSpotEventsMessage;
    const { result } = await work(A, a, message);
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

    // The same message again (a redelivery, or the second copy of a fan-out retried after queueing): the
    // merge was announced, so nothing is, as for the deletion, whose tombstone is already stored.
    expect((await work(A, a, message)).result).toMatchObject({ deleted: 0, merged: 0 });
    expect(await engineEvents()).toEqual([]);
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

    await route(batch([w.fake.webhookEvent(hubId, { subscriptionType: 'contact.creation', objectId: id, changeSource: 'INTEGRATION' }), w.fake.webhookEvent(hubId, { subscriptionType: 'contact.propertyChange', objectId: id, propertyName: 'firstname', changeSource: 'INTEGRATION' })]), 'd8');
    const { result } = await work(A, a, (await messages()).find((m) => m.tenantId === A) as HubSpotEventsMessage);
    expect(result.echoes).toBe(1);
    expect(await engineEvents()).toEqual([]);

    // Someone edits it in HubSpot afterwards: that one is announced.
    w.fake.upsertObject(hubId, 'contacts', id, { firstname: 'Human' });
    await route(batch([w.fake.webhookEvent(hubId, { subscriptionType: 'contact.propertyChange', objectId: id, propertyName: 'firstname' })]), 'd9');
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
    await route(batch(ids.map((id) => w.fake.webhookEvent(hubId, { subscriptionType: 'contact.propertyChange', objectId: id, propertyName: 'firstname' }))), 'd10');
    const mine = (await messages()).filter((m) => m.tenantId === A);
    expect(mine).toHaveLength(1);
    const { result } = await work(A, a, mine[0] as HubSpotEventsMessage);
    expect(result.objects).toBe(100);
    expect(w.fake.stats().byRoute['POST /crm/v3/objects/contacts/batch/read']).toBe(1);
  });
});
