import type { HubSpotCaller } from '../../../../src/connectors/hubspot/caller';
import { HubSpotRecordStore, requestSync, SyncEngine, syncLeaseTtlMs, syncStatus, SyncStateStore, type SyncMessage } from '../../../../src/connectors/hubspot';
import { partitionKey, type StorageClients } from '../../../../src/storage';
import { startFakeHubSpot, type FakeHubSpot } from '../../../fakes/hubspot';
import { useAzurite } from '../../../helpers/azurite';
import { gatedStorage } from '../../../helpers/storageGate';
import { captureLog, drainQueue, drainSyncQueue, kit, testCaller, type Kit } from './syncKit';

/**
 * The sync engine in process against real Azurite and the fake HubSpot (real SDK, real wire format).
 * Each test uses its own tenant and portal, so they do not see each other's rows.
 */
describe('HubSpot sync engine', () => {
  let az: Awaited<ReturnType<typeof useAzurite>>;
  let clients: StorageClients;
  let fake: FakeHubSpot;
  let k: Kit;
  const { log, lines } = captureLog();
  let n = 0;

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

  afterEach(async () => {
    // A fault a test left unused must not meet the next test's requests.
    fake.clearFaults();
    await drainQueue(clients, 'engine-events');
    await drainQueue(clients, 'hubspot-sync');
  });

  /** A fresh tenant connected to a fresh portal with two ticket pipelines. */
  async function setup(opts: { status?: 'active' | 'needs_reauth' } = {}) {
    n++;
    const portal = fake.addPortal();
    fake.setPipelines(portal.hubId, [
      { id: '0', label: 'Support', stages: [{ id: '1', label: 'New', ticketState: 'OPEN' }, { id: '4', label: 'Closed', ticketState: 'CLOSED' }] },
      { id: 'p2', label: 'Escalations', stages: [{ id: 'e1', label: 'Triage', ticketState: 'OPEN' }] },
    ]);
    const { t, i } = await k.connect(`tenant-${n}`, `int-${n}`, portal.hubId, opts.status);
    const caller = testCaller(fake, portal.hubId, t, i);
    return { hubId: portal.hubId, t, i, caller };
  }

  async function fullSync(s: Awaited<ReturnType<typeof setup>>, opts: Parameters<Kit['engine']>[1] = {}, objectTypes?: Array<'tickets' | 'contacts' | 'companies'>) {
    const r = await requestSync(deps(), s.t, s.i, { syncType: 'full', trigger: 'api', ...(objectTypes ? { objectTypes } : {}) });
    if (!r.started) throw new Error('not started');
    const engine = k.engine(s.caller, opts);
    const drained = await drainSyncQueue(clients, engine);
    return { syncId: r.syncId, ...drained, engine };
  }

  async function incremental(s: Awaited<ReturnType<typeof setup>>, opts: Parameters<Kit['engine']>[1] = {}) {
    const r = await requestSync(deps(), s.t, s.i, { syncType: 'incremental', trigger: 'timer' });
    if (!r.started) throw new Error('not started');
    return { syncId: r.syncId, ...(await drainSyncQueue(clients, k.engine(s.caller, opts))) };
  }

  const deps = () => ({ storage: clients, queues: k.queues });
  const records = () => new HubSpotRecordStore(clients);
  const state = () => new SyncStateStore(clients);

  it('full sync stores every ticket, contact and company with properties, associations and stage labels, one list call per 100', async () => {
    const s = await setup();
    const tickets = fake.seed(s.hubId, 'tickets', 1050, (i): Record<string, string> => (i === 7 ? { hs_pipeline: 'p2', hs_pipeline_stage: 'e1', hs_ticket_priority: 'HIGH' } : {}));
    const contacts = fake.seed(s.hubId, 'contacts', 3);
    const companies = fake.seed(s.hubId, 'companies', 2);
    fake.associate(s.hubId, 'tickets', tickets[0] as string, 'contacts', contacts[1] as string);
    fake.associate(s.hubId, 'tickets', tickets[0] as string, 'companies', companies[0] as string);
    fake.associate(s.hubId, 'contacts', contacts[2] as string, 'companies', companies[1] as string);
    fake.resetStats();

    const run = await fullSync(s);
    expect(run.outcomes).toEqual(['completed']);

    const stats = fake.stats();
    // 11 live pages of tickets, 1 each of contacts and companies, 1 archived page each, 1 pipelines call, 1 count per type.
    expect(stats.byRoute['GET /crm/v3/objects/tickets']).toBe(11 + 1);
    expect(stats.byRoute['GET /crm/v3/objects/contacts']).toBe(1 + 1);
    expect(stats.byRoute['GET /crm/v3/objects/companies']).toBe(1 + 1);
    expect(stats.requests).toBe(12 + 2 + 2 + 1 + 3);

    const store = records();
    const t0 = await store.get(s.t, s.i, 'tickets', tickets[0] as string);
    expect(t0).toMatchObject({ id: tickets[0], archived: false, stageLabel: 'New', pipelineLabel: 'Support', stageState: 'OPEN' });
    expect(t0?.properties).toMatchObject({ subject: 'Ticket 0', hs_pipeline_stage: '1', hs_ticket_priority: 'LOW' });
    expect(t0?.associations).toEqual({ contacts: [contacts[1]], companies: [companies[0]] });
    const t7 = await store.get(s.t, s.i, 'tickets', tickets[7] as string);
    expect(t7).toMatchObject({ stageLabel: 'Triage', pipelineLabel: 'Escalations' });
    expect((await store.get(s.t, s.i, 'tickets', tickets[1] as string))?.associations).toEqual({ contacts: [], companies: [] });
    expect((await store.get(s.t, s.i, 'contacts', contacts[2] as string))?.associations).toEqual({ companies: [companies[1]] });
    expect((await store.get(s.t, s.i, 'companies', companies[1] as string))?.properties['domain']).toMatch(/example\.com$/);

    const page = await store.listTickets(s.t, s.i, { limit: 10 });
    expect(page.totalCount).toBe(1050);
    expect(page.tickets).toHaveLength(10);

    const st = await syncStatus(clients, s.t, s.i, { events: 5 });
    expect(st.sync).toMatchObject({ sync_id: run.syncId, state: 'completed', pages: 11 + 1 + 1 + 3, records: 1055, estimated_total: 1055, eta_seconds: 0, error: null });
    expect(st.objects['tickets']).toMatchObject({ record_count: 1050 });
    expect(st.events).toHaveLength(1);
    expect(st.events[0]).toMatchObject({ sync_id: run.syncId, sync_type: 'full', status: 'completed', records: 1055, error: null });
    expect(st.events[0]?.ended_at).not.toBeNull();

    // An initial load announces itself once, not per record.
    const events = (await drainQueue(clients, 'engine-events')) as Array<{ type: string; data: Record<string, unknown> }>;
    expect(events.map((e) => e.type)).toEqual(['com.itil-next.connectors.sync.completed.v1']);
    expect(events[0]?.data).toMatchObject({ syncId: run.syncId, status: 'completed', records: 1055 });
    const integration = await k.integrations.get(s.t, s.i);
    expect(integration?.lastSyncAt).toBeDefined();
  });

  it('the object types are read side by side, one chain each, within the same budget', async () => {
    const s = await setup();
    fake.seed(s.hubId, 'tickets', 500);
    fake.seed(s.hubId, 'contacts', 500);
    fake.seed(s.hubId, 'companies', 500);
    // A slower HubSpot, so that a chain waiting for its page is visible to the others.
    fake.injectFault({ match: /^GET \/crm\/v3\/objects\//, delayMs: 25, times: 1_000 });
    fake.resetStats();
    const run = await fullSync(s);
    expect(run.outcomes).toEqual(['completed']);
    const stats = fake.stats();
    // Read one after another, at most two requests would overlap (a page and the pipelines lookup).
    expect(stats.maxInFlight).toBeGreaterThanOrEqual(3);
    for (const type of ['tickets', 'contacts', 'companies']) expect(stats.byRoute[`GET /crm/v3/objects/${type}`]).toBe(5 + 1);
    expect(stats.rateLimited).toBe(0);
    const st = await syncStatus(clients, s.t, s.i, { events: 1 });
    expect(st.sync).toMatchObject({ state: 'completed', records: 1500, current_object_type: null });
  });

  it('a type that fails stops the others at their next page; the retry resumes every type from its checkpoint', async () => {
    const s = await setup();
    const tickets = fake.seed(s.hubId, 'tickets', 800);
    const contacts = fake.seed(s.hubId, 'contacts', 800);
    const companies = fake.seed(s.hubId, 'companies', 800);
    // The order is set by holding requests, not by timing: tickets' and companies' third pages wait at
    // HubSpot until contacts' second page has failed past every retry, and that page's first attempt
    // waits until both third pages have been asked for.
    let contactsFailed!: () => void;
    const failed = new Promise<void>((r) => (contactsFailed = r));
    const asked = (['tickets', 'companies'] as const).map((type) => {
      const ids = type === 'tickets' ? tickets : companies;
      return new Promise<void>((onMatch) => fake.injectFault({ match: new RegExp(`GET /crm/v3/objects/${type}\\?.*after=${ids[200]}(&|$)`), onMatch, until: failed }));
    });
    const contactsPage2 = new RegExp(`GET /crm/v3/objects/contacts\\?.*after=${contacts[100]}(&|$)`);
    fake.injectFault({ match: contactsPage2, status: 503, until: Promise.all(asked) });
    fake.injectFault({ match: contactsPage2, status: 503, times: 2 });
    // The caller gives up on its third attempt; that is when the failure reaches the engine.
    const caller: HubSpotCaller = {
      tenantId: s.caller.tenantId,
      integrationId: s.caller.integrationId,
      portalId: s.caller.portalId,
      stats: () => s.caller.stats(),
      async call(kind, operation, fn, opts) {
        try {
          return await s.caller.call(kind, operation, fn, opts);
        } catch (err) {
          if (operation === 'contacts.list') contactsFailed();
          throw err;
        }
      },
    };
    fake.resetStats();
    const r = await requestSync(deps(), s.t, s.i, { syncType: 'full', trigger: 'api' });
    if (!r.started) throw new Error('not started');
    await drainQueue(clients, 'hubspot-sync');
    const msg = { tenantId: s.t, integrationId: s.i, syncId: r.syncId, syncType: 'full' as const, objectTypes: ['tickets' as const, 'contacts' as const, 'companies' as const] };
    const engine = k.engine(caller);
    await expect(engine.runJob(msg, { dequeueCount: 1 })).rejects.toMatchObject({ code: 503 });
    // The other chains stopped at the page they were reading (of 8 live pages and 1 archived page each).
    const first = fake.stats().byRoute;
    expect(first['GET /crm/v3/objects/tickets']).toBe(3);
    expect(first['GET /crm/v3/objects/companies']).toBe(3);
    const seen = await Promise.all((['tickets', 'contacts', 'companies'] as const).map(async (t) => (await state().getType(s.t, s.i, t)).fullSeen ?? 0));
    expect(seen).toEqual([300, 100, 300]);
    expect((await state().getRun(s.t, s.i))?.run).toMatchObject({ status: 'running', records: 700 });

    fake.resetStats();
    expect((await engine.runJob(msg, { dequeueCount: 2 })).outcome).toBe('completed');
    const second = fake.stats().byRoute;
    // Each type went on from its checkpoint: 8 live pages and 1 archived page in all, none read twice.
    const lists = (t: string) => (first[`GET /crm/v3/objects/${t}`] ?? 0) + (second[`GET /crm/v3/objects/${t}`] ?? 0);
    expect(lists('tickets')).toBe(9);
    expect(lists('companies')).toBe(9);
    // Contacts: the failed page was asked 3 times (not counted as read) and read once on the retry.
    expect(lists('contacts')).toBe(9 + 3);
    const st = await syncStatus(clients, s.t, s.i, { events: 1 });
    expect(st.sync).toMatchObject({ state: 'completed', records: 2400 });
  });

  it("the run's pages and records are exact when two chains' checkpoints land out of order and the job fails", async () => {
    // Two chains' checkpoints are made to land in the opposite order to the one they were written in:
    // tickets' first page is held on the wire until contacts has stored its last. Then tickets fails.
    const s = await setup();
    const ticketIds = fake.seed(s.hubId, 'tickets', 200);
    fake.seed(s.hubId, 'contacts', 200);
    const gated = gatedStorage(az.connectionString);
    const checkpointOf = (type: string, field: RegExp) => (text: string) => text.startsWith('POST') && text.includes(`"RowKey":"${type}"`) && field.test(text) && text.includes(`"PartitionKey":"${partitionKey.integration(s.t, s.i)}"`);
    const contactsDone = gated.answered(checkpointOf('contacts', /"fullPhase":"done"/));
    // Tickets' second page fails, but only once contacts is done (a failure stops the other chains).
    const ticketsPage2 = new RegExp(`GET /crm/v3/objects/tickets\\?.*after=${ticketIds[100]}(&|$)`);
    fake.injectFault({ match: ticketsPage2, status: 503, until: contactsDone });
    fake.injectFault({ match: ticketsPage2, status: 503, times: 2 });
    const ticketsHeld = gated.gate(checkpointOf('tickets', /"fullSeen":100[,}]/), contactsDone);
    // Contacts' first page waits until tickets' first page is written, so tickets' write comes first.
    gated.gate(checkpointOf('contacts', /"fullSeen":100[,}]/), ticketsHeld.held);
    const gk = kit(gated.clients, log);
    const r = await requestSync({ storage: gated.clients, queues: gk.queues }, s.t, s.i, { syncType: 'full', trigger: 'api', objectTypes: ['tickets', 'contacts'] });
    if (!r.started) throw new Error('not started');
    await drainQueue(clients, 'hubspot-sync');
    const msg = { tenantId: s.t, integrationId: s.i, syncId: r.syncId, syncType: 'full' as const, objectTypes: ['tickets' as const, 'contacts' as const] };
    const engine = gk.engine(s.caller);
    await expect(engine.runJob(msg, { dequeueCount: 1 })).rejects.toMatchObject({ code: 503 });

    // Stored: tickets' first live page, contacts' two live pages and its (empty) archived page.
    const [tickets, contacts] = await Promise.all([state().getType(s.t, s.i, 'tickets'), state().getType(s.t, s.i, 'contacts')]);
    expect([tickets.fullSeen, contacts.fullSeen, contacts.fullPhase]).toEqual([100, 200, 'done']);
    expect((await state().getRun(s.t, s.i))?.run).toMatchObject({ status: 'running', pages: 1 + 3, records: 300 });

    // The retry reads tickets' second page and archived page only, and the run counts every page once.
    expect((await engine.runJob(msg, { dequeueCount: 2 })).outcome).toBe('completed');
    const st = await syncStatus(clients, s.t, s.i, { events: 1 });
    expect(st.sync).toMatchObject({ state: 'completed', pages: 3 + 3, records: 400 });
    expect(st.events[0]).toMatchObject({ pages: 6, records: 400 });
  });

  it('a later full sync announces only what changed, tombstones archived objects, and keeps the counters right', async () => {
    const s = await setup();
    const ids = fake.seed(s.hubId, 'tickets', 250);
    await fullSync(s, {}, ['tickets']);
    await drainQueue(clients, 'engine-events');

    fake.upsertObject(s.hubId, 'tickets', ids[3] as string, { subject: 'changed', hs_ticket_priority: 'HIGH' });
    const created = fake.upsertObject(s.hubId, 'tickets', undefined, { subject: 'brand new', hs_pipeline: '0' });
    fake.archiveObject(s.hubId, 'tickets', ids[5] as string);
    await fullSync(s, {}, ['tickets']);

    const events = (await drainQueue(clients, 'engine-events')) as Array<{ id: string; type: string; subject: string; data: { objectId: string; change: string; properties?: Record<string, string> } }>;
    const byType = events.filter((e) => !e.type.includes('sync.completed')).map((e) => [e.type, e.data.objectId]).sort();
    expect(byType).toEqual(
      [
        ['com.itil-next.connectors.ticket.created.v1', created],
        ['com.itil-next.connectors.ticket.deleted.v1', ids[5]],
        ['com.itil-next.connectors.ticket.updated.v1', ids[3]],
      ].sort(),
    );
    expect(events.find((e) => e.data.objectId === ids[3])?.data.properties?.['subject']).toBe('changed');

    const store = records();
    expect(await store.get(s.t, s.i, 'tickets', ids[5] as string)).toMatchObject({ archived: true });
    const page = await store.listTickets(s.t, s.i, { limit: 100 });
    expect(page.totalCount).toBe(250);
    expect(page.tickets.map((x) => x.id)).not.toContain(ids[5]);
    // Seeded priorities cycle LOW, MEDIUM, HIGH: 83 HIGH, minus the archived one, plus the one changed to HIGH.
    expect((await store.listTickets(s.t, s.i, { limit: 1, priority: 'high' })).totalCount).toBe(83);
  });

  it('incremental sync finds changes by last-modified, announces each once with a stable id, and a rerun finds nothing new', async () => {
    const s = await setup();
    const ids = fake.seed(s.hubId, 'tickets', 300);
    await fullSync(s, {}, ['tickets']);
    // The first incremental re-reads the full sync's margin; that is dedupe, not news.
    await incremental(s);
    await drainQueue(clients, 'engine-events');

    for (const id of ids.slice(0, 30)) fake.upsertObject(s.hubId, 'tickets', id, { hs_pipeline_stage: '4' });
    fake.resetStats();
    const r1 = await incremental(s);
    expect(r1.outcomes).toEqual(['completed']);
    const e1 = (await drainQueue(clients, 'engine-events')) as Array<{ id: string; type: string; data: { objectId: string; change: string; stageLabel?: string } }>;
    const changes = e1.filter((e) => e.type.endsWith('ticket.updated.v1'));
    expect(changes.map((e) => e.data.objectId).sort()).toEqual(ids.slice(0, 30).sort());
    expect(changes[0]?.data.stageLabel).toBe('Closed');
    expect(new Set(changes.map((e) => e.id)).size).toBe(30);
    expect(fake.stats().byRoute['POST /crm/v3/objects/tickets/search']).toBeGreaterThanOrEqual(1);
    expect((await records().listTickets(s.t, s.i, { limit: 1, stage: '4' })).totalCount).toBe(30);

    // Nothing changed: the lookback re-reads the last changes, which are recognised by version.
    const r2 = await incremental(s);
    expect(r2.outcomes).toEqual(['completed']);
    const e2 = (await drainQueue(clients, 'engine-events')) as Array<{ type: string }>;
    expect(e2.filter((e) => !e.type.includes('sync.completed'))).toEqual([]);
  });

  it("an incremental page is looked up and announced while the page before it is still being written, and every change is announced once", async () => {
    const s = await setup();
    const ids = fake.seed(s.hubId, 'tickets', 50);
    await fullSync(s, {}, ['tickets']);
    await incremental(s);
    await drainQueue(clients, 'engine-events');

    // 400 changes on distinct timestamps ahead of the clock, searched 100 a page with a cap of 200: the
    // window restarts every second page and re-reads its boundary object, which the page before it may
    // not have stored yet.
    const base = Date.now() + 1000;
    const created: string[] = [];
    for (let x = 0; x < 350; x++) created.push(fake.upsertObject(s.hubId, 'tickets', undefined, { subject: `new ${x}`, hs_lastmodifieddate: String(base + x) }));
    for (const [x, id] of ids.entries()) fake.upsertObject(s.hubId, 'tickets', id, { subject: `upd ${x}`, hs_lastmodifieddate: String(base + 350 + x) });

    // The store notes when each page's lookup starts and its write ends; the first write waits (bounded)
    // for the second lookup to start, which only a pipelined engine does.
    const order: string[] = [];
    let secondPlanStarted: () => void = () => undefined;
    const secondPlan = new Promise<void>((resolve) => (secondPlanStarted = resolve));
    let plans = 0;
    let commits = 0;
    class ObservedStore extends HubSpotRecordStore {
      override async plan(...args: Parameters<HubSpotRecordStore['plan']>) {
        if (args[2] !== 'tickets') return super.plan(...args);
        const n = ++plans;
        order.push(`plan ${n}`);
        if (n === 2) secondPlanStarted();
        return super.plan(...args);
      }
      override async commit(...args: Parameters<HubSpotRecordStore['commit']>) {
        if (args[2] !== 'tickets') return super.commit(...args);
        const n = ++commits;
        if (n === 1) await Promise.race([secondPlan, new Promise((r) => setTimeout(r, 5000))]);
        const out = await super.commit(...args);
        order.push(`commit ${n} done`);
        return out;
      }
    }
    const engine = new SyncEngine(
      { storage: clients, queues: k.queues, leases: k.leases, integrations: k.integrations, events: k.events, log, callerFor: async () => s.caller, records: new ObservedStore(clients) },
      { lookbackMs: 0, searchLimit: 100, searchCap: 200, now: () => Date.now() + 10_000 },
    );
    const r = await requestSync(deps(), s.t, s.i, { syncType: 'incremental', trigger: 'timer', objectTypes: ['tickets'] });
    if (!r.started) throw new Error('not started');
    expect((await drainSyncQueue(clients, engine)).outcomes).toEqual(['completed']);

    expect(order.indexOf('plan 2')).toBeGreaterThanOrEqual(0);
    expect(order.indexOf('plan 2')).toBeLessThan(order.indexOf('commit 1 done'));
    const events = (await drainQueue(clients, 'engine-events')) as Array<{ id: string; type: string; data: { objectId: string } }>;
    const changes = events.filter((e) => !e.type.includes('sync.completed'));
    expect(changes.filter((e) => e.type.endsWith('ticket.created.v1')).map((e) => e.data.objectId).sort()).toEqual([...created].sort());
    expect(changes.filter((e) => e.type.endsWith('ticket.updated.v1')).map((e) => e.data.objectId).sort()).toEqual([...ids].sort());
    expect(new Set(changes.map((e) => e.id)).size).toBe(400);
    expect((await records().listTickets(s.t, s.i, { limit: 1 })).totalCount).toBe(400);
  });

  it('incremental sync pages past the search cap by restarting the window at the last timestamp seen', async () => {
    const capFake = await startFakeHubSpot({ searchResultCap: 500, rateLimit: { perTenSeconds: 100_000, searchPerSecond: 10_000 } });
    try {
      const portal = capFake.addPortal();
      n++;
      const { t, i } = await k.connect(`tenant-${n}`, `int-${n}`, portal.hubId);
      const s = { hubId: portal.hubId, t, i, caller: testCaller(capFake, portal.hubId, t, i) };
      const ids = capFake.seed(portal.hubId, 'tickets', 100);
      await fullSync(s, {}, ['tickets']);
      await incremental(s);
      await drainQueue(clients, 'engine-events');

      // 1,300 changes, spread over distinct timestamps: 1,200 new tickets and 100 updates.
      // Timestamps ahead of the clock, so the engine's clock is moved past them (the window ends at its start).
      const base = Date.now() + 1000;
      const created: string[] = [];
      for (let x = 0; x < 1200; x++) created.push(capFake.upsertObject(portal.hubId, 'tickets', undefined, { subject: `new ${x}`, hs_lastmodifieddate: String(base + x) }));
      for (const [x, id] of ids.entries()) capFake.upsertObject(portal.hubId, 'tickets', id, { subject: `upd ${x}`, hs_lastmodifieddate: String(base + 1200 + x) });
      capFake.resetStats();
      const r = await incremental(s, { lookbackMs: 0, searchCap: 500, now: () => Date.now() + 10_000 });
      expect(r.outcomes).toEqual(['completed']);
      const st = capFake.stats();
      // One query can page through at most 500 of the 1,300 results (a 400 beyond that would have failed
      // the run): the windows restarted at least twice, with no answer refused.
      expect(st.byRoute['POST /crm/v3/objects/tickets/search']).toBeGreaterThanOrEqual(7);
      expect(st.rateLimited).toBe(0);
      const events = (await drainQueue(clients, 'engine-events')) as Array<{ type: string; data: { objectId: string } }>;
      const created1 = events.filter((e) => e.type.endsWith('ticket.created.v1')).map((e) => e.data.objectId);
      const updated1 = events.filter((e) => e.type.endsWith('ticket.updated.v1')).map((e) => e.data.objectId);
      expect(created1.sort()).toEqual([...created].sort());
      expect(updated1.sort()).toEqual([...ids].sort());
      expect((await records().listTickets(t, i, { limit: 1 })).totalCount).toBe(1300);
    } finally {
      await capFake.close();
    }
  });

  it('a window whose results all share one timestamp is paged by object id instead of looping', async () => {
    const capFake = await startFakeHubSpot({ searchResultCap: 400, rateLimit: { perTenSeconds: 100_000, searchPerSecond: 10_000 } });
    try {
      const portal = capFake.addPortal();
      n++;
      const { t, i } = await k.connect(`tenant-${n}`, `int-${n}`, portal.hubId);
      const s = { hubId: portal.hubId, t, i, caller: testCaller(capFake, portal.hubId, t, i) };
      capFake.seed(portal.hubId, 'tickets', 10);
      await fullSync(s, {}, ['tickets']);
      await incremental(s);
      await drainQueue(clients, 'engine-events');
      const same = String(Date.now() + 5000);
      const bulk: string[] = [];
      for (let x = 0; x < 1000; x++) bulk.push(capFake.upsertObject(portal.hubId, 'tickets', undefined, { subject: `import ${x}`, hs_lastmodifieddate: same }));
      const later = capFake.upsertObject(portal.hubId, 'tickets', undefined, { subject: 'after the import', hs_lastmodifieddate: String(Number(same) + 1) });
      // The window's upper bound is the run's start; these sit in the future, so move the clock.
      const r = await incremental(s, { lookbackMs: 0, searchCap: 400, now: () => Date.now() + 10_000 });
      expect(r.outcomes).toEqual(['completed']);
      const events = (await drainQueue(clients, 'engine-events')) as Array<{ type: string; data: { objectId: string } }>;
      const got = events.filter((e) => e.type.endsWith('ticket.created.v1')).map((e) => e.data.objectId);
      expect(got.sort()).toEqual([...bulk, later].sort());
    } finally {
      await capFake.close();
    }
  });

  it('resumes after a failure from the last checkpoint without re-reading stored pages, and deletes nothing on the way', async () => {
    const s = await setup();
    const ids = fake.seed(s.hubId, 'tickets', 800);
    await fullSync(s, {}, ['tickets']);
    fake.archiveObject(s.hubId, 'tickets', ids[799] as string);
    fake.resetStats();
    const r = await requestSync(deps(), s.t, s.i, { syncType: 'full', trigger: 'api', objectTypes: ['tickets'] });
    if (!r.started) throw new Error('not started');
    const msg = { tenantId: s.t, integrationId: s.i, syncId: r.syncId, syncType: 'full' as const, objectTypes: ['tickets' as const] };
    await drainQueue(clients, 'hubspot-sync');
    // Page 4 of the live list (it starts after the 300th ticket) fails past every retry.
    fake.injectFault({ match: new RegExp(`GET /crm/v3/objects/tickets\\?.*after=${ids[300]}(&|$)`), status: 503, times: 3 });
    const engine = k.engine(s.caller);
    await expect(engine.runJob(msg, { dequeueCount: 1 })).rejects.toMatchObject({ code: 503 });
    const mid = await state().getType(s.t, s.i, 'tickets');
    expect(mid).toMatchObject({ fullSyncId: r.syncId, fullPhase: 'live', fullSeen: 300 });
    expect((await state().getRun(s.t, s.i))?.run).toMatchObject({ status: 'running', pages: 3 });
    // Nothing was tombstoned by the failed run: deletions come only from the archived list.
    expect((await records().listTickets(s.t, s.i, { limit: 1 })).totalCount).toBe(800);
    const before = fake.stats().byRoute['GET /crm/v3/objects/tickets'] ?? 0;

    const out = await engine.runJob(msg, { dequeueCount: 2 });
    expect(out.outcome).toBe('completed');
    // Resumed at page 4: pages 4..8 and one archived page, nothing before page 4 again.
    expect((fake.stats().byRoute['GET /crm/v3/objects/tickets'] ?? 0) - before).toBe(5 + 1);
    expect((await records().listTickets(s.t, s.i, { limit: 1 })).totalCount).toBe(799);
    expect(await records().get(s.t, s.i, 'tickets', ids[799] as string)).toMatchObject({ archived: true });
  });

  it('the last failed attempt marks the sync failed in the run and the history', async () => {
    const s = await setup();
    fake.seed(s.hubId, 'tickets', 50);
    const r = await requestSync(deps(), s.t, s.i, { syncType: 'full', trigger: 'api', objectTypes: ['tickets'] });
    if (!r.started) throw new Error('not started');
    await drainQueue(clients, 'hubspot-sync');
    fake.injectFault({ match: /GET \/crm\/v3\/objects\/tickets\?/, status: 500, times: 3 });
    const engine = k.engine(s.caller);
    await expect(engine.runJob({ tenantId: s.t, integrationId: s.i, syncId: r.syncId, syncType: 'full', objectTypes: ['tickets'] }, { dequeueCount: 5 })).rejects.toBeDefined();
    const st = await syncStatus(clients, s.t, s.i, { events: 3 });
    expect(st.sync).toMatchObject({ state: 'failed' });
    expect(st.sync?.error).toMatch(/500/);
    expect(st.events[0]).toMatchObject({ status: 'failed' });
    // Failed is not running: a new sync may start.
    expect((await requestSync(deps(), s.t, s.i, { syncType: 'full', trigger: 'api' })).started).toBe(true);
  });

  it('a tiny time budget makes each job stop after a page and re-queue itself; the sync finishes across invocations', async () => {
    const s = await setup();
    fake.seed(s.hubId, 'tickets', 450);
    fake.resetStats();
    const run = await fullSync(s, { budgetMs: 0 }, ['tickets']);
    // 5 live pages and 1 archived page, one per invocation (the count call rides with the first).
    expect(run.outcomes).toEqual(['continued', 'continued', 'continued', 'continued', 'continued', 'completed']);
    expect(fake.stats().byRoute['GET /crm/v3/objects/tickets']).toBe(6);
    const st = await syncStatus(clients, s.t, s.i, { events: 5 });
    expect(st.sync).toMatchObject({ state: 'completed', invocations: 6, records: 450 });
    expect(st.events).toHaveLength(1);
    expect((await records().listTickets(s.t, s.i, { limit: 1 })).totalCount).toBe(450);
  });

  it('reports progress while a sync is under way: pages, records, rate-limit waits, calls and an ETA', async () => {
    const s = await setup();
    fake.seed(s.hubId, 'tickets', 450);
    fake.resetStats();
    // One rate-limited answer on the first page: the run must count the wait.
    fake.injectFault({ match: /\/crm\/v3\/objects\/tickets/, status: 429, body: { status: 'error', message: 'You have reached your ten_secondly_rolling limit.', category: 'RATE_LIMITS', policyName: 'TEN_SECONDLY_ROLLING' }, times: 1 });
    const r = await requestSync(deps(), s.t, s.i, { syncType: 'full', trigger: 'api', objectTypes: ['tickets'] });
    expect(r.started).toBe(true);
    const before = await syncStatus(clients, s.t, s.i, { events: 1 });
    expect(before.sync).toMatchObject({ state: 'queued', pages: 0, records: 0 });

    // One invocation only, with no time budget: it stops after its first page and re-queues itself.
    const q = clients.queue('hubspot-sync');
    const msg = (await q.receiveMessages({ numberOfMessages: 1, visibilityTimeout: 60 })).receivedMessageItems[0];
    if (!msg) throw new Error('no sync job queued');
    const out = await k.engine(s.caller, { budgetMs: 0 }).runJob(JSON.parse(Buffer.from(msg.messageText, 'base64').toString('utf8')) as SyncMessage, { dequeueCount: 1 });
    await q.deleteMessage(msg.messageId, msg.popReceipt);
    expect(out.outcome).toBe('continued');

    const mid = (await syncStatus(clients, s.t, s.i, { events: 1 })).sync;
    expect(mid).toMatchObject({ state: 'running', invocations: 1, pages: 1, records: 100, rate_limit_waits: 1, estimated_total: 450, current_object_type: 'tickets' });
    expect(mid?.hubspot_calls).toBeGreaterThanOrEqual(2);
    expect(mid?.records_per_second).toBeGreaterThan(0);
    expect(mid?.eta_seconds).toBeGreaterThan(0);

    await drainSyncQueue(clients, k.engine(s.caller));
    expect((await syncStatus(clients, s.t, s.i, { events: 1 })).sync).toMatchObject({ state: 'completed', records: 450, eta_seconds: 0, rate_limit_waits: 1 });
  });

  it('an integration that needs re-authorisation is not synced', async () => {
    const s = await setup({ status: 'needs_reauth' });
    fake.seed(s.hubId, 'tickets', 10);
    fake.resetStats();
    const run = await fullSync(s);
    expect(run.outcomes).toEqual(['skipped']);
    expect(fake.stats().requests).toBe(0);
    const st = await syncStatus(clients, s.t, s.i, { events: 3 });
    expect(st.sync).toMatchObject({ state: 'skipped', error: 'integration is needs_reauth' });
    expect(st.events[0]).toMatchObject({ status: 'skipped' });
  });

  it('a sync is not started twice, even by requests racing each other', async () => {
    const s = await setup();
    const results = await Promise.all(Array.from({ length: 5 }, () => requestSync(deps(), s.t, s.i, { syncType: 'full', trigger: 'api' })));
    expect(results.filter((r) => r.started)).toHaveLength(1);
    const winner = results.find((r) => r.started)?.syncId;
    for (const r of results.filter((x) => !x.started)) expect(r.syncId).toBe(winner);
    expect((await drainQueue(clients, 'hubspot-sync')).length).toBe(1);
  });

  it("a timer's sync still waiting out its stagger yields to an API request; its late job is dropped, a connect job is adopted", async () => {
    const s = await setup();
    fake.seed(s.hubId, 'tickets', 5);
    const timer = await requestSync(deps(), s.t, s.i, { syncType: 'incremental', trigger: 'timer', delaySeconds: 1 });
    expect(timer.started).toBe(true);
    // Another timer tick does not start a second one.
    expect((await requestSync(deps(), s.t, s.i, { syncType: 'incremental', trigger: 'timer' })).started).toBe(false);
    const api = await requestSync(deps(), s.t, s.i, { syncType: 'full', trigger: 'api', objectTypes: ['tickets'] });
    expect(api.started).toBe(true);
    await new Promise((r) => setTimeout(r, 1200));
    const run = await drainSyncQueue(clients, k.engine(s.caller));
    expect(run.outcomes.sort()).toEqual(['completed', 'dropped']);
    expect((await state().getRun(s.t, s.i))?.run).toMatchObject({ syncId: api.started ? api.syncId : '', status: 'completed' });

    // The OAuth callback queues a first sync without claiming the run: the worker adopts it.
    const connect = await k.engine(s.caller).runJob({ tenantId: s.t, integrationId: s.i, syncId: 'connect-sync-0001', syncType: 'full', objectTypes: ['tickets'], trigger: 'connect' });
    expect(connect.outcome).toBe('completed');
    expect((await state().getRun(s.t, s.i))?.run).toMatchObject({ syncId: 'connect-sync-0001', trigger: 'connect', status: 'completed' });
  });

  it('a job for an integration whose lease is held elsewhere does not run alongside it', async () => {
    const s = await setup();
    fake.seed(s.hubId, 'tickets', 20);
    const r = await requestSync(deps(), s.t, s.i, { syncType: 'full', trigger: 'api', objectTypes: ['tickets'] });
    if (!r.started) throw new Error('not started');
    await drainQueue(clients, 'hubspot-sync');
    const held = await k.leases.tryAcquire(partitionKey.integration(s.t, s.i), 'hubspot-sync', 60_000);
    expect(held).toBeDefined();
    fake.resetStats();
    const out = await k.engine(s.caller, { leaseTtlMs: 4000 }).runJob({ tenantId: s.t, integrationId: s.i, syncId: r.syncId, syncType: 'full' });
    expect(out.outcome).toBe('deferred');
    expect(fake.stats().requests).toBe(0);
    // A duplicate of a step that has already started (the lease holder's own message) is dropped instead.
    const current = await state().getRun(s.t, s.i);
    if (!current) throw new Error('no run');
    await state().putRun(s.t, s.i, { ...current.run, lastInvocation: 1 });
    const dup = await k.engine(s.caller).runJob({ tenantId: s.t, integrationId: s.i, syncId: r.syncId, syncType: 'full' });
    expect(dup).toMatchObject({ outcome: 'dropped' });
    // A redelivered copy may belong to a run that died holding the lease: it comes back after the lease's TTL.
    const redelivered = await k.engine(s.caller, { leaseTtlMs: 1000 }).runJob({ tenantId: s.t, integrationId: s.i, syncId: r.syncId, syncType: 'full' }, { dequeueCount: 2 });
    expect(redelivered).toMatchObject({ outcome: 'deferred', reason: 'lease busy after a redelivery' });
    if (held) await k.leases.release(held);
    // The deferred jobs come back (after 1 s and 6 s) and now run: one completes the sync, the other finds it done.
    await new Promise((resolve) => setTimeout(resolve, 6500));
    const after = await drainSyncQueue(clients, k.engine(s.caller));
    expect(after.outcomes.sort()).toEqual(['completed', 'dropped']);
  });

  it('our own write coming back is stored but not announced (echo suppression through lastPushedVersion)', async () => {
    const s = await setup();
    const ids = fake.seed(s.hubId, 'tickets', 5);
    await fullSync(s, {}, ['tickets']);
    await incremental(s);
    await drainQueue(clients, 'engine-events');
    // The two-way code wrote ids[0] and recorded the version HubSpot gave back.
    fake.upsertObject(s.hubId, 'tickets', ids[0] as string, { subject: 'from the engine' });
    const version = String(Date.parse(fake.getObject(s.hubId, 'tickets', ids[0] as string)?.properties['hs_lastmodifieddate'] as string));
    await records().setLastPushedVersion(s.t, s.i, 'tickets', ids[0] as string, version);
    fake.upsertObject(s.hubId, 'tickets', ids[1] as string, { subject: 'from a HubSpot user' });
    await incremental(s);
    const events = (await drainQueue(clients, 'engine-events')) as Array<{ type: string; data: { objectId: string } }>;
    expect(events.filter((e) => e.type.includes('ticket.')).map((e) => e.data.objectId)).toEqual([ids[1]]);
    expect((await records().get(s.t, s.i, 'tickets', ids[0] as string))?.properties['subject']).toBe('from the engine');
  });

  it("one tenant's sync and store are invisible to another tenant using the same integration id", async () => {
    const a = await setup();
    fake.seed(a.hubId, 'tickets', 30);
    await fullSync(a, {}, ['tickets']);
    const portalB = fake.addPortal();
    const { t: tb } = await k.connect(`tenant-b-${n}`, a.i, portalB.hubId);
    expect((await records().listTickets(tb, a.i, { limit: 100 })).tickets).toEqual([]);
    expect((await records().listTickets(tb, a.i, { limit: 100 })).totalCount).toBe(0);
    const st = await syncStatus(clients, tb, a.i, { events: 5 });
    expect(st.sync).toBeNull();
    expect(st.events).toEqual([]);
    expect(lines.join('\n')).not.toMatch(/pat-na1-|Bearer /);
  });
});

describe('sync lease length', () => {
  it('is two minutes under the 10-minute function timeout, and never more than half a shorter one', () => {
    expect(syncLeaseTtlMs(10 * 60_000)).toBe(2 * 60_000);
    expect(syncLeaseTtlMs(3 * 60_000)).toBe(90_000);
    expect(syncLeaseTtlMs(15_000)).toBe(7_500);
  });
});
