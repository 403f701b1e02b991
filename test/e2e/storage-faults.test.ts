import { mkdtempSync, rmSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import os from 'node:os';
import path from 'node:path';
import { startAzurite, type AzuriteInstance } from '../../runner/azurite';
import { partitionKey, StorageClients, TABLES, TenantTable, integrationId, tenantId, type IntegrationId } from '../../src/storage';
import { RECORD_COUNTS_ROW_KEY } from '../../src/connectors/hubspot';
import { startFakeHubSpot, type FakeHubSpot } from '../fakes/hubspot';
import { checkEngineEventMessage } from '../helpers/engineEvents';
import { TEST_JWT_SECRET } from '../helpers/jwt';
import { apiClient, localAppEnv, startRunner, type RunningHost } from '../helpers/runner';

const PUBLIC_BASE_URL = 'http://localhost:7071';
const WEBHOOK_PATH = '/api/webhooks/hubspot';
const TENANT = 'tenant-storage';
/** Enough tickets that the sync (a lookup, an engine event and a row each) is still running when storage goes. */
const SYNC_TICKETS = 2500;
const DELIVERIES = 20;
const EVENTS_PER_DELIVERY = 50;
/** How long storage stays away: longer than the SDKs' own retries of a single call ride out. */
const OUTAGE_MS = 10_000;
/**
 * HubSpot gives up on a delivery after 5 s and sends it again later; a request that is still waiting on
 * storage is "not answered" to HubSpot. Deliveries that time out are simply sent again, like the others.
 */
const HUBSPOT_DELIVERY_TIMEOUT_MS = 5_000;

interface EngineEvent {
  id: string;
  type: string;
  subject?: string;
  data?: { syncId?: string; objectId?: string; source?: string };
}

interface HealthBody {
  status: 'healthy' | 'unhealthy';
  checks: { storage: 'up' | 'down'; secrets: string; connectors: Record<string, string> };
}

interface SyncView {
  sync_id: string;
  sync_type: string;
  state: string;
  invocations: number;
  records: number;
  changes: number;
  error: string | null;
}

interface StatusBody {
  sync: SyncView | null;
  events: Array<{ sync_id: string; status: string; records: number }>;
  objects: Record<string, { record_count: number }>;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Issue 12, "Storage faults": Azurite (on disk, so its data survives) is stopped and restarted on the same
 * ports under the real app in the local runner, once in the middle of a full sync and once in the middle
 * of a burst of webhook deliveries. Nothing is retriggered by hand: the queue pollers, the queue's
 * redelivery and the sync's checkpoints must carry on by themselves. `/api/health` must say storage is
 * down while it is, and up again after. What reaches the engine is read off `engine-events` the whole time,
 * as the engine would (tolerating the outage like any client).
 */
describe('Storage faults: Azurite stopped and restarted under load', () => {
  let azurite: AzuriteInstance;
  let storageDir: string;
  let secretDir: string;
  let fake: FakeHubSpot;
  let host: RunningHost;
  let clients: StorageClients;
  let hubId: number;
  let integration: IntegrationId;
  const localKey = randomBytes(32);
  const api = apiClient(() => host, { tenant: TENANT });
  const engine = engineEventsReader();

  beforeAll(async () => {
    storageDir = mkdtempSync(path.join(os.tmpdir(), 'itil-storage-faults-azurite-'));
    secretDir = mkdtempSync(path.join(os.tmpdir(), 'itil-secrets-'));
    azurite = await startAzurite({ location: storageDir, log: (l) => process.stdout.write(`storage-faults: ${l}\n`) });
    // Windows scaled to 1 s (HubSpot's 10 s) on both sides, so HubSpot's limit never sets the pace here.
    fake = await startFakeHubSpot({ rateLimit: { perTenSeconds: 110, searchPerSecond: 5, windowMs: 1000 } });
    clients = new StorageClients({ kind: 'connectionString', connectionString: azurite.connectionString });
    await clients.ensureAll();
    hubId = fake.addPortal({ hubDomain: 'storage-faults.hubspot.com' }).hubId;
    fake.setPipelines(hubId, [{ id: '0', label: 'Support', stages: [{ id: '1', label: 'New', ticketState: 'OPEN' }, { id: '4', label: 'Closed', ticketState: 'CLOSED' }] }]);

    host = await startRunner({
      env: {
        ...localAppEnv({ storage: azurite.connectionString, secretKey: localKey.toString('base64'), secretDir, jwtSecret: TEST_JWT_SECRET, publicBaseUrl: PUBLIC_BASE_URL }),
        HUBSPOT_CLIENT_ID: fake.clientId,
        HUBSPOT_CLIENT_SECRET: fake.clientSecret,
        HUBSPOT_REDIRECT_URI: `${PUBLIC_BASE_URL}/api/hubspot/oauth/callback`,
        HUBSPOT_API_BASE_URL: fake.url,
        HUBSPOT_RATE_WINDOW_MS: '1000',
        HUBSPOT_PRIVATE_APP_RATE_LIMIT: '100',
        // Only the syncs this file starts: the 5-minute sweep would take changes away from them.
        'AzureWebJobs.hubspotSyncTimer.Disabled': 'true',
      },
    });

    // A private-app integration of an empty portal: its first (initial) full sync finishes at once. The
    // portal is linked in AccountIndex, so webhooks signed by the app route to it.
    const res = await api(`hubspot/integrations/${TENANT}`, { method: 'POST', json: { access_token: fake.createPrivateAppToken(hubId) } });
    expect(res.status).toBe(201);
    integration = integrationId(((await res.json()) as { integration_id: string }).integration_id);
    const first = await waitFor('the initial sync', async () => {
      const s = await status();
      return s?.sync && s.sync.state === 'completed' ? s.sync : undefined;
    });
    expect(first).toMatchObject({ sync_type: 'full', records: 0 });
    engine.start(clients);
  }, 120_000);

  afterAll(async () => {
    await engine.stop();
    await host?.stop();
    await fake?.close();
    await azurite?.stop();
    rmSync(storageDir, { recursive: true, force: true });
    rmSync(secretDir, { recursive: true, force: true });
  });

  async function status(): Promise<StatusBody | undefined> {
    const res = await api(`hubspot/sync/${TENANT}/${integration}`).catch(() => undefined);
    if (res?.status !== 200) return undefined;
    return (await res.json()) as StatusBody;
  }

  async function health(): Promise<{ status: number; body: HealthBody }> {
    const res = await api('health', { anonymous: true });
    return { status: res.status, body: (await res.json()) as HealthBody };
  }

  async function waitFor<T>(what: string, fn: () => Promise<T | undefined>, timeoutMs = 150_000, everyMs = 250): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const v = await fn();
      if (v !== undefined) return v;
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}\n${host.output().slice(-4000)}`);
      await sleep(everyMs);
    }
  }

  /** Stops Azurite (gracefully: it saves its state, as a storage service keeps what it acknowledged). */
  async function stopStorage(): Promise<number> {
    const at = Date.now();
    await azurite.stop();
    return at;
  }

  /**
   * While storage is down: `/api/health` must report it (the anonymous report is cached up to 5 s per
   * instance and a probe gives up after 5 s, so it shows within about 10 s), and a management read fails
   * as problem JSON. Then, `OUTAGE_MS` after the stop, Azurite comes back on the same ports with its data.
   */
  async function rideOutage(stoppedAt: number): Promise<{ health: { status: number; body: HealthBody }; managementStatus: number; managementType: string | null }> {
    const down = await waitFor('health to report storage down', async () => {
      const h = await health();
      return h.body.checks.storage === 'down' ? h : undefined;
    }, 60_000, 500);
    const mgmt = await api(`hubspot/sync/${TENANT}/${integration}`);
    // The SDK's message (addresses, account) stays in the log.
    expect(await mgmt.text()).not.toMatch(/ECONNREFUSED|127\.0\.0\.1|devstoreaccount1/);
    const left = OUTAGE_MS - (Date.now() - stoppedAt);
    if (left > 0) await sleep(left);
    await azurite.restart();
    return { health: down, managementStatus: mgmt.status, managementType: mgmt.headers.get('content-type') };
  }

  /** For a failure: whether the missing tickets were stored, and what is still (perhaps invisibly) queued. */
  async function diagnose(ids: string[]): Promise<void> {
    if (ids.length === 0) return;
    const stored = await storedTicketIds();
    const left: Record<string, number | undefined> = {};
    for (const q of ['engine-events', 'hubspot-webhooks', 'hubspot-events', 'hubspot-sync'] as const) left[q] = (await clients.queue(q).getProperties()).approximateMessagesCount;
    process.stdout.write(`storage-faults diagnosis: missing=${JSON.stringify(ids)} storedOfMissing=${ids.filter((i) => stored.has(i)).length} left=${JSON.stringify(left)}\n`);
  }

  /** Messages that gave up (moved to a `-poison` queue), per queue: none may, an outage is not a reason. */
  async function poisoned(): Promise<Record<string, number>> {
    const out: Record<string, number> = {};
    for await (const q of clients.queueService().listQueues()) {
      if (!q.name.endsWith('-poison')) continue;
      const n = (await clients.queueService().getQueueClient(q.name).getProperties()).approximateMessagesCount ?? 0;
      if (n > 0) out[q.name] = n;
    }
    return out;
  }

  async function expectHealthyAgain(): Promise<void> {
    const back = await waitFor('health to report storage up again', async () => {
      const h = await health();
      return h.body.checks.storage === 'up' ? h : undefined;
    }, 60_000, 500);
    expect(back).toEqual({ status: 200, body: expect.objectContaining({ status: 'healthy', checks: expect.objectContaining({ storage: 'up', secrets: 'up' }) }) });
  }

  /** The tickets the synced store holds for the integration (RowKeys are the escaped HubSpot ids; ours are digits). */
  async function storedTicketIds(): Promise<Set<string>> {
    const table = new TenantTable(clients.table(TABLES.records));
    const ids = new Set<string>();
    // The partition also holds the type's counters row, which is not a record.
    for await (const row of table.all(partitionKey.records(tenantId(TENANT), integration, 'tickets'))) if (row.rowKey !== RECORD_COUNTS_ROW_KEY) ids.add(row.rowKey);
    return ids;
  }

  it('mid-sync: the full sync resumes by itself after storage comes back, and every ticket reaches the engine', async () => {
    const seeded = fake.seed(hubId, 'tickets', SYNC_TICKETS);
    // Not the initial load (that one announces only sync.completed): this full sync announces every ticket
    // it finds that the store does not hold yet, one ticket.created each.
    const started = await api(`hubspot/sync/${TENANT}/${integration}`, { method: 'POST', json: { sync_type: 'full' } });
    expect(started.status).toBe(202);
    const syncId = ((await started.json()) as { sync_id: string }).sync_id;

    // Storage goes while the sync is under way: some pages stored, most not.
    const before = await waitFor('the sync to store its first pages', async () => {
      const s = await status();
      return s?.sync?.sync_id === syncId && s.sync.records >= 200 ? s.sync : undefined;
    }, 120_000, 100);
    expect(before.state).toBe('running');
    expect(before.records).toBeLessThan(SYNC_TICKETS);

    const during = await rideOutage(await stopStorage());
    expect(during.health).toEqual({ status: 503, body: { status: 'unhealthy', checks: expect.objectContaining({ storage: 'down', secrets: 'up' }) } });
    expect(during.managementStatus).toBeGreaterThanOrEqual(500);
    expect(during.managementType).toMatch(/^application\/problem\+json/);

    // No retrigger: the queue redelivers the sync job, which resumes from its last checkpoint. (Normally
    // at once; if the failed attempt could not even release its lease, the redelivery waits the lease out,
    // 2 min, hence the long wait allowed here.)
    const done = await waitFor('the sync to complete by itself', async () => {
      const s = await status();
      return s?.sync?.sync_id === syncId && ['completed', 'failed', 'skipped'].includes(s.sync.state) ? s : undefined;
    }, 240_000, 500);
    // Either the attempt storage went away under failed (a table call gives up after ~7 s of the SDK's
    // retries) and the redelivered job finished it (invocations 2), or the call in flight was a queue send
    // (engine events), whose SDK retries span ~16 s and rode the outage out (invocations 1). Both are fine;
    // the count is printed below.
    expect(done.sync).toMatchObject({ sync_id: syncId, state: 'completed', records: SYNC_TICKETS, error: null });
    expect(done.events[0]).toMatchObject({ sync_id: syncId, status: 'completed', records: SYNC_TICKETS });
    expect(done.objects['tickets']?.record_count).toBe(SYNC_TICKETS);
    await expectHealthyAgain();

    // Every seeded ticket is in the store and reached the engine: one ticket.created id per ticket, none
    // missing. At-least-once with the same id is the contract (README, "Events to the engine": a retry yields
    // the same id and the engine de-duplicates by it), so an event may show up twice here, always under its
    // one id: a page announced before the outage and again by the retried job (announce, then store), or a
    // send whose first try storage committed without its answer arriving, which the SDK then sent again.
    expect(await storedTicketIds()).toEqual(new Set(seeded));
    await engine.waitForSubjects('ticket.created', seeded, 120_000);
    const created = engine.byType('ticket.created');
    await diagnose(missing(seeded, created));
    expect(missing(seeded, created)).toEqual([]);
    expect(idsPerSubject(created).filter(([, ids]) => ids.size !== 1)).toEqual([]);
    expect([...created.keys()].filter((s) => !seeded.includes(s.replace(/^tickets\//, '')))).toEqual([]);
    // The sync tells the engine it finished: one sync.completed for it (by id).
    await engine.waitFor((e) => e.type.endsWith('sync.completed.v1') && e.data?.syncId === syncId, 60_000);
    expect(engine.failure()).toBeUndefined();
    expect(await poisoned()).toEqual({});
    const report = engine.report('ticket.created');
    process.stdout.write(`storage-faults mid-sync: ${JSON.stringify({ invocations: done.sync?.invocations, changes: done.sync?.changes, ...report })}\n`);
  }, 300_000);

  it('mid-webhook-burst: deliveries not answered 2xx are sent again, as HubSpot does, and each event has exactly one effect', async () => {
    const tickets = fake.seed(hubId, 'tickets', DELIVERIES * EVENTS_PER_DELIVERY);
    const deliveries = Array.from({ length: DELIVERIES }, (_, d) =>
      tickets.slice(d * EVENTS_PER_DELIVERY, (d + 1) * EVENTS_PER_DELIVERY).map((id) => fake.webhookEvent(hubId, { subscriptionType: 'ticket.creation', objectId: id })),
    );
    const answers: Array<number | 'no answer'> = new Array<number | 'no answer'>(DELIVERIES).fill('no answer');
    const send = async (d: number, attempt: number) => {
      answers[d] = await deliver(deliveries[d]?.map((e) => ({ ...e, attemptNumber: attempt })) ?? []);
    };

    // The first half goes out paced, as HubSpot spreads a burst. Storage goes once the pipeline is
    // flowing (the burst's first engine event is out, so the fan-out and the event worker are at work on
    // what is behind it); what is left of the first half, and all of the second, is sent while it is down
    // (and, for the deliveries that wait longest, after it is back).
    const half = DELIVERIES / 2;
    const firstHalf = (async () => {
      for (let d = 0; d < half; d++) {
        await send(d, 0);
        await sleep(200);
      }
    })();
    await engine.waitFor((e) => e.type.endsWith('ticket.created.v1') && e.data?.source === 'webhook' && tickets.includes(e.data.objectId ?? ''), 120_000);
    const stoppedAt = await stopStorage();
    const outageDone = rideOutage(stoppedAt);
    await firstHalf;
    for (let d = half; d < DELIVERIES; d++) await send(d, 0);
    const during = await outageDone;
    expect(during.health.body.checks.storage).toBe('down');
    const firstRound = [...answers];
    expect(firstRound[0]).toBe(204);
    // A delivery that arrives while storage is down cannot be written, so it is not acknowledged: it gets
    // no 2xx (the intake waits on the queue SDK's retries; HubSpot has given up by then).
    expect(firstRound.filter((a) => a !== 204).length).toBeGreaterThan(0);

    // HubSpot's retries: every delivery not answered 2xx, again (next attemptNumber), until it is.
    for (let attempt = 1; answers.some((a) => a !== 204); attempt++) {
      if (attempt > 6) throw new Error(`deliveries still refused after ${attempt - 1} retries: ${JSON.stringify(answers)}\n${host.output().slice(-4000)}`);
      for (let d = 0; d < DELIVERIES; d++) if (answers[d] !== 204) await send(d, attempt);
      if (answers.some((a) => a !== 204)) await sleep(2_000);
    }
    await expectHealthyAgain();

    // Exactly one effect per event: the ticket in the store, and one ticket.created id for it on engine-events.
    await engine.waitForSubjects('ticket.created', tickets, 150_000);
    const created = engine.byType('ticket.created');
    await diagnose(missing(tickets, created));
    expect(missing(tickets, created)).toEqual([]);
    expect(idsPerSubject(created).filter(([s, ids]) => tickets.includes(s.replace(/^tickets\//, '')) && ids.size !== 1)).toEqual([]);
    const stored = await storedTicketIds();
    expect(tickets.filter((t) => !stored.has(t))).toEqual([]);
    // A webhook's copy says so; none of these tickets came from a sync.
    expect(tickets.filter((t) => [...(created.get(`tickets/${t}`)?.values() ?? [])].some((e) => e.data?.source !== 'webhook'))).toEqual([]);
    expect(engine.failure()).toBeUndefined();
    expect(await poisoned()).toEqual({});
    process.stdout.write(`storage-faults webhooks: ${JSON.stringify({ firstRound, ...engine.report('ticket.created', tickets) })}\n`);
  }, 300_000);

  /** One signed v3 delivery, as HubSpot sends it; the status, or 'no answer' if HubSpot would have given up. */
  async function deliver(events: Array<Record<string, unknown>>): Promise<number | 'no answer'> {
    const body = JSON.stringify(events);
    const timestamp = Date.now();
    try {
      const res = await fetch(`${host.url}${WEBHOOK_PATH}`, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          'x-hubspot-signature-v3': fake.signV3('POST', `${PUBLIC_BASE_URL}${WEBHOOK_PATH}`, body, timestamp),
          'x-hubspot-request-timestamp': String(timestamp),
        },
        body,
        signal: AbortSignal.timeout(HUBSPOT_DELIVERY_TIMEOUT_MS),
      });
      await res.arrayBuffer();
      return res.status;
    } catch {
      return 'no answer';
    }
  }
});

/** Subjects (`tickets/<id>`) of `ids` with no event at all. */
function missing(ids: string[], bySubject: Map<string, Map<string, EngineEvent>>): string[] {
  return ids.filter((id) => !bySubject.has(`tickets/${id}`));
}

function idsPerSubject(bySubject: Map<string, Map<string, EngineEvent>>): Array<[string, Set<string>]> {
  return [...bySubject.entries()].map(([s, events]) => [s, new Set(events.keys())]);
}

/**
 * Reads `engine-events` for the whole file as the engine would: receive, check against asyncapi.json,
 * delete, and keep going through the outage (a failed call is tried again). Remembers every event by id,
 * and how often each id was seen.
 */
function engineEventsReader() {
  const seen = new Map<string, { event: EngineEvent; times: number }>();
  let contractError: Error | undefined;
  let stopped = false;
  let loop: Promise<void> | undefined;
  const run = async (clients: StorageClients) => {
    const q = clients.queue('engine-events');
    while (!stopped) {
      try {
        // A short invisibility, as a consumer that may lose an answer needs: Azurite going down can commit a
        // receive whose answer never arrives, and those messages must come back soon, not in 10 minutes.
        const res = await q.receiveMessages({ numberOfMessages: 32, visibilityTimeout: 20 });
        for (const m of res.receivedMessageItems) {
          const event = JSON.parse(Buffer.from(m.messageText, 'base64').toString('utf8')) as EngineEvent;
          await checkEngineEventMessage(event);
          const entry = seen.get(event.id);
          if (entry) entry.times++;
          else seen.set(event.id, { event, times: 1 });
          await q.deleteMessage(m.messageId, m.popReceipt);
        }
        if (res.receivedMessageItems.length === 0) await sleep(250);
      } catch (err) {
        // A contract violation is a failure (reported by `failure()`); storage being away is not.
        if (err instanceof Error && /asyncapi/.test(err.message)) contractError ??= err;
        await sleep(500);
      }
    }
  };
  const byType = (suffix: string): Map<string, Map<string, EngineEvent>> => {
    const out = new Map<string, Map<string, EngineEvent>>();
    for (const { event } of seen.values()) {
      if (!event.type.endsWith(`${suffix}.v1`) || !event.subject) continue;
      const m = out.get(event.subject) ?? new Map<string, EngineEvent>();
      m.set(event.id, event);
      out.set(event.subject, m);
    }
    return out;
  };
  const waitFor = async (match: (e: EngineEvent) => boolean, timeoutMs: number) => {
    const deadline = Date.now() + timeoutMs;
    while (![...seen.values()].some((s) => match(s.event))) {
      if (Date.now() > deadline) throw new Error('no matching engine event');
      await sleep(250);
    }
  };
  return {
    start(clients: StorageClients) {
      loop = run(clients);
    },
    async stop() {
      stopped = true;
      await loop;
    },
    byType,
    waitFor,
    failure: () => contractError?.message,
    /** Until every id has an event of that type (or the time is up; the assertions then say what is missing). */
    async waitForSubjects(suffix: string, ids: string[], timeoutMs: number) {
      const deadline = Date.now() + timeoutMs;
      while (Date.now() < deadline && missing(ids, byType(suffix)).length > 0) await sleep(500);
    },
    /** Distinct ids of a type (optionally for some tickets) and copies: every message read, an id read twice counting twice. */
    report(suffix: string, ids?: string[]) {
      const wanted = ids ? new Set(ids.map((i) => `tickets/${i}`)) : undefined;
      const of = [...seen.values()].filter((s) => s.event.type.endsWith(`${suffix}.v1`) && (!wanted || wanted.has(s.event.subject ?? '')));
      return { distinctIds: of.length, copies: of.reduce((n, s) => n + s.times, 0) };
    },
  };
}
