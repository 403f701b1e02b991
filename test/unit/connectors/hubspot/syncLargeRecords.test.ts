import { HubSpotRecordStore, requestSync, SyncStateStore, type HubSpotObjectChanged } from '../../../../src/connectors/hubspot';
import { deliveryMessages, fanOut, processEventsMessage, hubspotEventsMessageSchema, webhookBatchSchema, connectPrivateApp } from '../../../../src/connectors/hubspot';
import { QUEUES, tenantId, type StorageClients } from '../../../../src/storage';
import { startFakeHubSpot, type FakeHubSpot } from '../../../fakes/hubspot';
import { useAzurite } from '../../../helpers/azurite';
import { receiveEngineEvents, type ReceivedEvent } from '../../../helpers/engineEvents';
import { hubspotWorld, type HubSpotWorld } from './helpers';
import { captureLog, drainQueue, drainSyncQueue, kit, testCaller, type Kit } from './syncKit';

/**
 * Records whose JSON is small in UTF-16 units but large in UTF-8 bytes (CJK, emoji) used to throw
 * MessageTooLargeError on every retry of the page, so the sync never finished and its watermark never
 * moved. Now such a change goes by claim check, and the engine, reading `engine-events` and following
 * `dataref` into Azurite, gets every byte of the record HubSpot holds.
 */

// ~17,000 CJK characters: 17 k by String.length (under the old 36,000-character check) but 51 KB of
// UTF-8, 68 KB once base64-encoded on the queue. And a few bigger ones, up to HubSpot's 65,536-character
// property limit, with 4-byte characters and text that JSON escaping inflates.
const BIG: Record<string, string> = {
  cjk17k: '客户报告打印机无法连接网络请尽快处理'.repeat(944) + '谢谢', // 17,002 characters
  cjk40k: '服务台工单'.repeat(8_000),
  cjk65k: '故障'.repeat(32_000) + '🙂'.repeat(700),
  emoji: '🚨🔥'.repeat(12_000),
  escaped: '"引号"\\\n\t\u0001'.repeat(6_000),
};

function expectWhole(e: ReceivedEvent | undefined, source: Record<string, string>): void {
  expect(e).toBeDefined();
  const data = e?.data as HubSpotObjectChanged;
  for (const [k, v] of Object.entries(source)) {
    const got = data.properties?.[k];
    // Byte for byte, not just "similar": the engine must get exactly what HubSpot holds.
    expect(Buffer.from(got ?? '', 'utf8').equals(Buffer.from(v, 'utf8'))).toBe(true);
  }
  expect((data as Record<string, unknown>).propertiesOmitted).toBeUndefined();
}

describe('HubSpot sync with large multi-byte records', () => {
  let az: Awaited<ReturnType<typeof useAzurite>>;
  let clients: StorageClients;
  let fake: FakeHubSpot;
  let k: Kit;
  const { log } = captureLog();

  beforeAll(async () => {
    az = await useAzurite();
    clients = az.clients;
    fake = await startFakeHubSpot({ rateLimit: { perTenSeconds: 100_000, searchPerSecond: 10_000 } });
    k = kit(clients, log);
  });
  afterAll(async () => {
    await fake?.close();
    await az?.stop();
  });

  it('a full and then an incremental sync complete, the watermark advances, and every byte reaches the engine', async () => {
    const portal = fake.addPortal();
    fake.setPipelines(portal.hubId, [{ id: '0', label: 'Support', stages: [{ id: '1', label: 'New', ticketState: 'OPEN' }] }]);
    const { t, i } = await k.connect('tenant-big', 'int-big', portal.hubId);
    const caller = testCaller(fake, portal.hubId, t, i);
    const names = Object.keys(BIG);
    const ids = fake.seed(portal.hubId, 'tickets', 30, (n): Record<string, string> => (n < names.length ? { content: BIG[names[n] as string] as string, subject: `大件 ${n}` } : {}));
    expect(Buffer.byteLength(JSON.stringify(BIG.cjk17k), 'utf8')).toBeGreaterThan(48 * 1024);
    expect(JSON.stringify(BIG.cjk17k).length).toBeLessThan(36_000);

    // The initial load stores every record and announces only itself (sync.completed).
    const full = await requestSync({ storage: clients, queues: k.queues }, t, i, { syncType: 'full', trigger: 'api', objectTypes: ['tickets'] });
    if (!full.started) throw new Error('not started');
    expect((await drainSyncQueue(clients, k.engine(caller))).outcomes).toEqual(['completed']);
    const afterFull = await new SyncStateStore(clients).getType(t, i, 'tickets');
    expect(afterFull.watermarkMs).toEqual(expect.any(Number));
    // The records themselves are stored too (the record store splits or shortens what a row cannot hold).
    expect((await new HubSpotRecordStore(clients).get(t, i, 'tickets', ids[0] as string))?.properties['content']).toBe(BIG.cjk17k);
    await receiveEngineEvents(clients);

    // HubSpot changes the big ones and gains new big ones: the incremental announces each change.
    await new Promise((r) => setTimeout(r, 5));
    const grown = Object.fromEntries(names.map((name) => [name, `${BIG[name]}更新`]));
    for (const [n, name] of names.entries()) fake.upsertObject(portal.hubId, 'tickets', ids[n] as string, { content: grown[name] as string });
    const added = names.map((name) => fake.upsertObject(portal.hubId, 'tickets', undefined, { subject: `新 ${name}`, content: BIG[name] as string, hs_pipeline: '0', hs_pipeline_stage: '1' }));
    const small = fake.upsertObject(portal.hubId, 'tickets', ids[29] as string, { subject: 'small change' });
    const inc = await requestSync({ storage: clients, queues: k.queues }, t, i, { syncType: 'incremental', trigger: 'timer' });
    if (!inc.started) throw new Error('not started');
    expect((await drainSyncQueue(clients, k.engine(caller))).outcomes).toEqual(['completed']);
    const afterInc = await new SyncStateStore(clients).getType(t, i, 'tickets');
    expect(afterInc.watermarkMs).toBeGreaterThan(afterFull.watermarkMs as number);

    const events = await receiveEngineEvents(clients);
    const of = (type: string, id: string) => events.find((e) => e.wire.type.endsWith(`.ticket.${type}.v1`) && (e.data as HubSpotObjectChanged).objectId === id);
    for (const [n, name] of names.entries()) {
      const updated = of('updated', ids[n] as string);
      expect(updated?.wire.dataref).toMatch(new RegExp(`/engine-event-data/tenant-big/int-big/${updated?.wire.id}-[0-9a-f]{32}\\.json$`));
      expectWhole(updated, { content: grown[name] as string, subject: `大件 ${n}` });
      // The source of truth is HubSpot's copy, read back from the fake.
      expectWhole(updated, { content: fake.getObject(portal.hubId, 'tickets', ids[n] as string)?.properties['content'] as string });
      const created = of('created', added[n] as string);
      expect(created?.wire.dataref).toBeDefined();
      expectWhole(created, { content: BIG[name] as string, subject: `新 ${name}` });
    }
    // A small change stays inline.
    const inline = of('updated', small);
    expect(inline?.wire.dataref).toBeUndefined();
    expect((inline?.data as HubSpotObjectChanged).properties?.['subject']).toBe('small change');
    expect(events.filter((e) => e.wire.type.endsWith('.sync.completed.v1'))).toHaveLength(1);
    await drainQueue(clients, 'hubspot-sync');
  });
});

describe('HubSpot webhook-driven changes with large multi-byte records', () => {
  let w: HubSpotWorld;
  afterAll(async () => w?.stop());

  it('the event worker publishes the whole record by claim check through the app services', async () => {
    w = await hubspotWorld();
    const hubId = w.fake.addPortal().hubId;
    w.fake.setPipelines(hubId, [{ id: '0', label: 'Support', stages: [{ id: '1', label: 'New' }] }]);
    const T = tenantId('tenant-webhook');
    const integration = (await connectPrivateApp(w.hs, T, w.fake.createPrivateAppToken(hubId), w.log)).integrationId;
    await w.drain(QUEUES.hubspotSync);
    await w.drain(QUEUES.engineEvents);

    const [id] = w.fake.seed(hubId, 'tickets', 1, () => ({ content: BIG.cjk17k as string })) as [string];
    // What the intake makes of HubSpot's delivery, handed to the fan-out worker.
    const delivery = deliveryMessages(webhookBatchSchema.parse([w.fake.webhookEvent(hubId, { subscriptionType: 'ticket.creation', objectId: Number(id) })]), 'delivery-big', Date.now());
    for (const part of delivery.parts) await fanOut({ accountIndex: w.hs.accountIndex, processed: w.base.processed, queues: w.base.queues, log: w.log }, part);
    const [message] = (await w.drain(QUEUES.hubspotEvents)).map((m) => hubspotEventsMessageSchema.parse(m));
    if (!message) throw new Error('no hubspot-events message');
    const row = await w.base.integrations.get(T, integration);
    if (!row) throw new Error('no integration');
    await processEventsMessage({ records: w.hs.records, events: w.base.events, processed: w.base.processed, log: w.log, labelsCache: new Map() }, row, w.hs.callerFor(row, { priority: 'interactive' }), message);

    const events = (await receiveEngineEvents(w.base.storage)).filter((e) => e.wire.type.endsWith('.ticket.created.v1'));
    expect(events).toHaveLength(1);
    expect(events[0]?.wire.dataref).toContain(`/engine-event-data/tenant-webhook/${integration}/`);
    expect((events[0]?.data as HubSpotObjectChanged).source).toBe('webhook');
    expectWhole(events[0], { content: BIG.cjk17k as string });
  });
});
