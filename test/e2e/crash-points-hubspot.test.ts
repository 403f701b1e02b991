import { mkdtempSync, rmSync } from 'node:fs';
import { randomBytes, randomUUID } from 'node:crypto';
import os from 'node:os';
import path from 'node:path';
import { startAzurite, type AzuriteInstance } from '../../runner/azurite';
import {
  AccountIndex,
  countKeyOf,
  eventKey,
  HubSpotRecordStore,
  parseTime,
  PRIVATE_APP_TOKEN_PURPOSE,
  SyncStateStore,
  WEBHOOK_CLAIM_SOURCE,
  WEBHOOK_CLAIM_STALE_MS,
  webhookClaimId,
  webhookEventSchema,
  type HubSpotObject,
} from '../../src/connectors/hubspot';
import type { AccountIndexRow } from '../../src/connectors/hubspot/accountIndex';
import { typeStateSchema } from '../../src/connectors/hubspot/sync/state';
import { EVENT_TYPE_PREFIX } from '../../src/platform/events';
import { LocalSecretStore, tenantSecretName } from '../../src/secrets';
import {
  IntegrationsRepository,
  partitionKey,
  ProcessedStore,
  QUEUES,
  StorageClients,
  TABLES,
  TenantTable,
  integrationId,
  tenantId,
  type IntegrationId,
  type LeaseRow,
  type ProcessedRow,
  type TenantId,
} from '../../src/storage';
import { startFakeHubSpot, type FakeHubSpot } from '../fakes/hubspot';
import { crashEnv, faultLog, SHORT_TIMEOUT_ENV, waitForCrash } from '../helpers/crash';
import { receiveEngineEvents, type ReceivedEvent } from '../helpers/engineEvents';
import { TEST_JWT_SECRET } from '../helpers/jwt';
import { localAppEnv, queueLength, startRunner, type RunningHost } from '../helpers/runner';

/**
 * Crash points of the three HubSpot workers (#12): for each durable step of the webhook fan-out, the
 * event worker and the sync job, a runner is started that SIGKILLs itself right after that step
 * (`faultPoint` in src, `RUNNER_FAULT_KILL_AT`), the input is given to it, and once it is dead a normal
 * runner on the same storage and secrets lets the queue redeliver. Each case ends with every input
 * reflected exactly once on `engine-events` (one CloudEvent id per change, each id once) and in the
 * tables, or with an id at most twice where the step is one the README names as "at most once more".
 *
 * One Azurite and one fake HubSpot serve the whole file; each case gets its own portal, tenant and
 * integration, and every queue is cleared between cases, so no case sees another's messages.
 */

const PUBLIC_BASE_URL = 'http://localhost:7071';
const WEBHOOK_PATH = '/api/webhooks/hubspot';
/**
 * The crashing runner holds its messages for this long (it dequeues them for a function timeout). Shorter
 * than the helper's 15 s so 25 cases stay within minutes; still far above what one pass here takes.
 */
const CRASH_FUNCTION_TIMEOUT = '00:00:05';
/** The sync stops taking pages after this long and re-queues itself; a delayed page makes it do so. */
const SYNC_BUDGET_SECONDS = '1';
const PAGE_DELAY_MS = 1_500;
const ALL_QUEUES = [QUEUES.hubspotWebhooks, QUEUES.hubspotEvents, QUEUES.hubspotSync, QUEUES.engineEvents] as const;
const PIPELINES = [{ id: '0', label: 'Support', stages: [{ id: '1', label: 'New', ticketState: 'OPEN' as const }, { id: '4', label: 'Closed', ticketState: 'CLOSED' as const }] }];

type InputKind = 'delivery' | 'held-delivery' | 'sync';

interface World {
  t: TenantId;
  i: IntegrationId;
  hub: number;
}

/** What one input should leave behind, and how to give it to a runner. */
interface Input {
  world: World;
  /** `<event type without prefix and version> <subject>` of every engine event the input must produce once. */
  expected: string[];
  /** The queues that must be empty (visible or not) before the work counts as done. */
  queues: readonly string[];
  trigger(host: RunningHost): Promise<void>;
  /** True once the tables say the work is finished (the events are checked separately). */
  finished(): Promise<boolean>;
  /** The table state the input must end in; returns a note for the summary. */
  verify(): Promise<string | void>;
}

type Outcome = 'once' | 'at-most-once-more';

interface Case {
  worker: 'fan-out' | 'event worker' | 'sync job';
  /** `<point>` or `<point>#<n>` (the n-th pass). */
  point: string;
  input: InputKind;
  outcome: Outcome;
  /** For `at-most-once-more`: the events the killed step may have published once already. */
  repeatable?: (key: string) => boolean;
}

const isChange = (kinds: string[]) => (key: string) => kinds.some((k) => key.startsWith(`ticket.${k} `));

/**
 * The durable steps, in the order each worker takes them. The delivery input: two new tickets, a changed
 * one, a deleted one and a merge, in one signed delivery. The sync input: a full re-sync of 250 tickets
 * (3 pages) of which 100 are held at an older version and one more was deleted in HubSpot, with page 2
 * slow enough that the job continues in a second invocation.
 */
const CASES: Case[] = [
  { worker: 'fan-out', point: 'hubspot.fanout.claim', input: 'delivery', outcome: 'once' },
  // The message is queued twice; one after the other the second copy announces nothing, side by side both may.
  { worker: 'fan-out', point: 'hubspot.fanout.queue', input: 'delivery', outcome: 'at-most-once-more', repeatable: isChange(['created', 'updated', 'deleted', 'merged']) },
  { worker: 'fan-out', point: 'hubspot.fanout.confirm', input: 'delivery', outcome: 'once' },
  { worker: 'fan-out', point: 'hubspot.fanout.defer', input: 'held-delivery', outcome: 'once' },
  { worker: 'event worker', point: 'hubspot.events.publish', input: 'delivery', outcome: 'at-most-once-more', repeatable: isChange(['created', 'updated']) },
  { worker: 'event worker', point: 'hubspot.events.write', input: 'delivery', outcome: 'once' },
  { worker: 'event worker', point: 'hubspot.events.publish-deleted', input: 'delivery', outcome: 'at-most-once-more', repeatable: isChange(['deleted']) },
  { worker: 'event worker', point: 'hubspot.events.write-deleted', input: 'delivery', outcome: 'once' },
  { worker: 'event worker', point: 'hubspot.events.publish-merged', input: 'delivery', outcome: 'at-most-once-more', repeatable: isChange(['merged']) },
  { worker: 'event worker', point: 'hubspot.events.confirm-merged', input: 'delivery', outcome: 'once' },
  { worker: 'event worker', point: 'hubspot.events.write-merged', input: 'delivery', outcome: 'once' },
  { worker: 'sync job', point: 'hubspot.sync.claim', input: 'sync', outcome: 'once' },
  { worker: 'sync job', point: 'hubspot.sync.lease', input: 'sync', outcome: 'once' },
  { worker: 'sync job', point: 'hubspot.sync.start', input: 'sync', outcome: 'once' },
  { worker: 'sync job', point: 'hubspot.sync.checkpoint#1', input: 'sync', outcome: 'once' },
  { worker: 'sync job', point: 'hubspot.sync.publish#1', input: 'sync', outcome: 'at-most-once-more', repeatable: isChange(['updated']) },
  { worker: 'sync job', point: 'hubspot.sync.write#1', input: 'sync', outcome: 'once' },
  { worker: 'sync job', point: 'hubspot.sync.checkpoint#2', input: 'sync', outcome: 'once' },
  { worker: 'sync job', point: 'hubspot.sync.pause', input: 'sync', outcome: 'once' },
  { worker: 'sync job', point: 'hubspot.sync.release', input: 'sync', outcome: 'once' },
  { worker: 'sync job', point: 'hubspot.sync.continue', input: 'sync', outcome: 'once' },
  { worker: 'sync job', point: 'hubspot.sync.count', input: 'sync', outcome: 'once' },
  { worker: 'sync job', point: 'hubspot.sync.last-sync-at', input: 'sync', outcome: 'once' },
  { worker: 'sync job', point: 'hubspot.sync.completed', input: 'sync', outcome: 'at-most-once-more', repeatable: (k) => k.startsWith('sync.completed ') },
  { worker: 'sync job', point: 'hubspot.sync.finish', input: 'sync', outcome: 'once' },
];

const bare = (point: string) => point.split('#')[0] as string;
const nth = (point: string) => Number(point.split('#')[1] ?? '1');

describe('crash points: HubSpot workers', () => {
  let azurite: AzuriteInstance;
  let fake: FakeHubSpot;
  let clients: StorageClients;
  let secretDir: string;
  let logDir: string;
  let secrets: LocalSecretStore;
  let repo: IntegrationsRepository;
  let accountIndex: AccountIndex;
  let records: HubSpotRecordStore;
  let syncState: SyncStateStore;
  let processed: ProcessedStore;
  let leases: TenantTable<LeaseRow>;
  let baseEnv: Record<string, string | undefined>;
  let worlds = 0;
  const hosts = new Set<RunningHost>();
  const localKey = randomBytes(32);
  const summary: string[] = [];

  beforeAll(async () => {
    secretDir = mkdtempSync(`${os.tmpdir()}/itil-secrets-`);
    logDir = mkdtempSync(`${os.tmpdir()}/itil-faults-`);
    azurite = await startAzurite();
    fake = await startFakeHubSpot();
    clients = new StorageClients({ kind: 'connectionString', connectionString: azurite.connectionString });
    await clients.ensureAll();
    secrets = new LocalSecretStore({ key: localKey, directory: secretDir });
    repo = new IntegrationsRepository(new TenantTable(clients.table(TABLES.integrations)));
    accountIndex = new AccountIndex(new TenantTable<AccountIndexRow>(clients.table(TABLES.accountIndex)), 0);
    records = new HubSpotRecordStore(clients);
    syncState = new SyncStateStore(clients);
    processed = new ProcessedStore(new TenantTable<ProcessedRow>(clients.table(TABLES.processed)));
    leases = new TenantTable<LeaseRow>(clients.table(TABLES.leases));
    baseEnv = {
      ...localAppEnv({ storage: azurite.connectionString, secretKey: localKey.toString('base64'), secretDir, jwtSecret: TEST_JWT_SECRET, publicBaseUrl: PUBLIC_BASE_URL }),
      HUBSPOT_CLIENT_ID: fake.clientId,
      HUBSPOT_CLIENT_SECRET: fake.clientSecret,
      HUBSPOT_REDIRECT_URI: `${PUBLIC_BASE_URL}/api/hubspot/oauth/callback`,
      HUBSPOT_API_BASE_URL: fake.url,
      HUBSPOT_SYNC_TIME_BUDGET_SECONDS: SYNC_BUDGET_SECONDS,
      // Only the inputs a case gives may run: no timer starts a sync of its own.
      'AzureWebJobs.hubspotSyncTimer.Disabled': 'true',
      'AzureWebJobs.hubspotTokenRefreshTimer.Disabled': 'true',
    };
  }, 120_000);

  afterAll(async () => {
    for (const h of hosts) await h.kill();
    await fake?.close();
    await azurite?.stop();
    rmSync(secretDir, { recursive: true, force: true });
    rmSync(logDir, { recursive: true, force: true });
    if (summary.length > 0) console.log(`crash points (HubSpot):\n${summary.join('\n')}`);
  });

  async function runner(env: Record<string, string>): Promise<RunningHost> {
    const host = await startRunner({ env: { ...baseEnv, ...env } });
    hosts.add(host);
    void host.exited.then(() => hosts.delete(host));
    return host;
  }

  async function clearQueues(): Promise<void> {
    for (const q of ALL_QUEUES) {
      await clients.queue(q).clearMessages();
      const poison = clients.queue(`${q}-poison`);
      if (await poison.exists()) await poison.clearMessages();
    }
  }

  async function newWorld(): Promise<World> {
    worlds++;
    const hub = fake.addPortal({ hubDomain: `crash-${worlds}.hubspot.com` }).hubId;
    fake.setPipelines(hub, PIPELINES);
    const t = tenantId(`crash-${worlds}`);
    const i = integrationId(`hubspot-crash-${worlds}`);
    // A private-app integration as the integrations API leaves it: a row naming its secret, its portal indexed.
    const secretName = tenantSecretName(t, i, PRIVATE_APP_TOKEN_PURPOSE);
    await secrets.set(secretName, fake.createPrivateAppToken(hub));
    await repo.create(t, { integrationId: i, type: 'hubspot', status: 'active', externalAccountId: String(hub), secretName });
    await accountIndex.link(String(hub), t, i);
    return { t, i, hub };
  }

  /** A ticket as the fake holds it now, as the sync would store it (optionally as an older version). */
  function asSynced(w: World, id: string, olderByMs = 0): HubSpotObject {
    const o = fake.getObject(w.hub, 'tickets', id);
    if (!o) throw new Error(`no ticket ${id}`);
    const lastModifiedMs = (parseTime(o.properties['hs_lastmodifieddate']) ?? 0) - olderByMs;
    return { id, properties: { ...o.properties, hs_lastmodifieddate: String(lastModifiedMs) }, lastModifiedMs, archived: false };
  }

  /** What an earlier sync left: these tickets stored and counted. */
  async function storeAsSynced(w: World, objects: HubSpotObject[]): Promise<void> {
    const applied = await records.apply(w.t, w.i, 'tickets', objects);
    await records.adjustCounts(w.t, w.i, 'tickets', applied.countDelta);
  }

  /** The counters the live tickets in HubSpot call for. */
  function liveCounts(w: World, ids: string[]): Record<string, number> {
    const out: Record<string, number> = {};
    for (const id of ids) {
      const o = fake.getObject(w.hub, 'tickets', id);
      if (!o || o.archived) continue;
      const k = countKeyOf('tickets', o.properties);
      out[k] = (out[k] ?? 0) + 1;
    }
    return out;
  }

  /** Every stored ticket row is HubSpot's current version, live or a tombstone as HubSpot says. */
  async function expectRecords(w: World, live: string[], archived: string[]): Promise<void> {
    for (const id of live) {
      const row = await records.get(w.t, w.i, 'tickets', id);
      expect({ id, archived: row?.archived, version: row?.version }).toEqual({ id, archived: false, version: String(asSynced(w, id).lastModifiedMs) });
    }
    for (const id of archived) expect({ id, archived: (await records.get(w.t, w.i, 'tickets', id))?.archived }).toEqual({ id, archived: true });
  }

  async function expectClaimsConfirmed(w: World, n: number): Promise<void> {
    const rows: ProcessedRow[] = [];
    for await (const r of new TenantTable<ProcessedRow>(clients.table(TABLES.processed)).all(partitionKey.processed(WEBHOOK_CLAIM_SOURCE, w.t))) rows.push(r.data);
    expect(rows.filter((r) => r.owner !== 'a-dead-delivery' || r.pending !== true)).toHaveLength(n);
    expect(rows.filter((r) => r.pending === true)).toEqual([]);
  }

  async function deliveryInput(): Promise<Input> {
    const w = await newWorld();
    const [a, b, c, d, e, f] = fake.seed(w.hub, 'tickets', 6) as [string, string, string, string, string, string];
    await storeAsSynced(w, [c, d, e, f].map((id) => asSynced(w, id)));
    fake.upsertObject(w.hub, 'tickets', c, { subject: 'Printer on fire' });
    fake.archiveObject(w.hub, 'tickets', d);
    fake.mergeObjects(w.hub, 'tickets', e, f);
    const events = [
      fake.webhookEvent(w.hub, { subscriptionType: 'ticket.creation', objectId: a }),
      fake.webhookEvent(w.hub, { subscriptionType: 'ticket.creation', objectId: b }),
      fake.webhookEvent(w.hub, { subscriptionType: 'ticket.propertyChange', objectId: c, propertyName: 'subject', propertyValue: 'Printer on fire' }),
      fake.webhookEvent(w.hub, { subscriptionType: 'ticket.deletion', objectId: d }),
      fake.webhookEvent(w.hub, { subscriptionType: 'ticket.merge', objectId: e, mergedObjectIds: [Number(f)] }),
    ];
    return {
      world: w,
      expected: [`ticket.created tickets/${a}`, `ticket.created tickets/${b}`, `ticket.updated tickets/${c}`, `ticket.deleted tickets/${d}`, `ticket.updated tickets/${e}`, `ticket.merged tickets/${e}`],
      queues: [QUEUES.hubspotWebhooks, QUEUES.hubspotEvents],
      trigger: async (host) => {
        const res = await fake.sendWebhook(`${host.url}${WEBHOOK_PATH}`, events, { uriForSignature: `${PUBLIC_BASE_URL}${WEBHOOK_PATH}` });
        expect(res.status).toBe(204);
      },
      finished: async () => true,
      verify: async () => {
        await expectRecords(w, [a, b, c, e], [d, f]);
        expect(await records.counts(w.t, w.i, 'tickets')).toEqual(liveCounts(w, [a, b, c, e]));
        await expectClaimsConfirmed(w, events.length);
      },
    };
  }

  /** One new ticket whose event another delivery (dead, its claim young) holds unconfirmed. */
  async function heldDeliveryInput(): Promise<Input> {
    const w = await newWorld();
    const [h] = fake.seed(w.hub, 'tickets', 1) as [string];
    const event = fake.webhookEvent(w.hub, { subscriptionType: 'ticket.creation', objectId: h });
    const held = await processed.claimMany(WEBHOOK_CLAIM_SOURCE, w.t, [{ id: webhookClaimId(w.i, eventKey(webhookEventSchema.parse(event))) }], { staleAfterMs: WEBHOOK_CLAIM_STALE_MS, owner: 'a-dead-delivery' });
    expect([...held.values()]).toEqual(['claimed']);
    return {
      world: w,
      expected: [`ticket.created tickets/${h}`],
      queues: [QUEUES.hubspotWebhooks, QUEUES.hubspotEvents],
      trigger: async (host) => {
        const res = await fake.sendWebhook(`${host.url}${WEBHOOK_PATH}`, [event], { uriForSignature: `${PUBLIC_BASE_URL}${WEBHOOK_PATH}` });
        expect(res.status).toBe(204);
      },
      finished: async () => true,
      verify: async () => {
        await expectRecords(w, [h], []);
        expect(await records.counts(w.t, w.i, 'tickets')).toEqual(liveCounts(w, [h]));
        await expectClaimsConfirmed(w, 1);
      },
    };
  }

  async function syncInput(): Promise<Input> {
    const w = await newWorld();
    const ids = fake.seed(w.hub, 'tickets', 251);
    const live = ids.slice(0, 250);
    const gone = ids[250] as string;
    // An earlier sync (an hour ago) stored the first 100 and the last at versions HubSpot has moved past.
    await storeAsSynced(w, [...ids.slice(0, 100), gone].map((id) => asSynced(w, id, 60_000)));
    fake.archiveObject(w.hub, 'tickets', gone);
    const before = Date.now() - 3600_000;
    await syncState.checkpoint(w.t, w.i, 'tickets', typeStateSchema.parse({ lastFullCompletedAtMs: before, watermarkMs: before, lastArchivedSweepMs: before }));
    const syncId = randomUUID();
    return {
      world: w,
      expected: [...live.slice(0, 100).map((id) => `ticket.updated tickets/${id}`), ...live.slice(100).map((id) => `ticket.created tickets/${id}`), `ticket.deleted tickets/${gone}`, `sync.completed integrations/${w.i}`],
      queues: [QUEUES.hubspotSync],
      trigger: async () => {
        fake.clearFaults();
        // Page 2 (the first with a cursor) takes longer than the budget: the job re-queues itself after it.
        fake.injectFault({ match: /^GET \/crm\/v3\/objects\/tickets\?(?!.*archived=true).*\bafter=/, delayMs: PAGE_DELAY_MS, times: 1 });
        // As the OAuth connect queues the first sync: a job whose run row the worker claims itself.
        const job = { tenantId: w.t, integrationId: w.i, syncId, syncType: 'full', objectTypes: ['tickets'], trigger: 'connect' };
        await clients.queue(QUEUES.hubspotSync).sendMessage(Buffer.from(JSON.stringify(job), 'utf8').toString('base64'));
      },
      finished: async () => (await syncState.getRun(w.t, w.i))?.run.status === 'completed',
      verify: async () => {
        const run = (await syncState.getRun(w.t, w.i))?.run;
        expect(run).toMatchObject({ syncId, status: 'completed', records: 251 });
        const history = await syncState.recentEvents(w.t, w.i, 5);
        expect(history.map((h) => [h.syncId, h.status, h.records])).toEqual([[syncId, 'completed', 251]]);
        const st = await syncState.getType(w.t, w.i, 'tickets');
        expect(st).toMatchObject({ fullSyncId: syncId, fullPhase: 'done', progressRecords: 251 });
        expect(st.lastFullCompletedAtMs).toBeGreaterThan(before);
        expect(st.watermarkMs).toBeGreaterThan(before);
        await expectRecords(w, live, [gone]);
        expect(await records.counts(w.t, w.i, 'tickets')).toEqual(liveCounts(w, live));
        expect((await repo.get(w.t, w.i))?.lastSyncAt).toEqual(expect.any(String));
        // Not wedged: the lease was let go (or, held by the runner that died, has run out), nothing is left to run.
        const lease = await leases.get(partitionKey.integration(w.t, w.i), 'hubspot-sync');
        expect(lease === undefined || lease.data.expiresAt <= Date.now()).toBe(true);
        // Not asserted: a page stored but not checkpointed before the crash is re-read with nothing new in it.
        return `run changes ${run?.changes}, invocations ${run?.invocations}`;
      },
    };
  }

  const inputs: Record<InputKind, () => Promise<Input>> = { delivery: deliveryInput, 'held-delivery': heldDeliveryInput, sync: syncInput };

  const shortType = (type: string) => type.slice(EVENT_TYPE_PREFIX.length).replace(/\.v\d+$/, '');
  const keyOf = (e: ReceivedEvent) => `${shortType(e.wire.type)} ${e.wire.subject ?? ''}`;

  /**
   * Drains `engine-events` (the input's events kept, checked against asyncapi.json) until the input's
   * events are all there, its queues are empty (invisible messages count: a redelivery still due) and the
   * tables say done; then once more: a message leaves its queue only after what it publishes is out, so
   * that last drain has everything.
   */
  async function settle(input: Input, host: RunningHost, timeoutMs: number): Promise<ReceivedEvent[]> {
    const got: ReceivedEvent[] = [];
    const drain = async () => {
      for (const e of await receiveEngineEvents(clients)) if (e.wire.integrationid === input.world.i) got.push(e);
    };
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      await drain();
      const seen = new Set(got.map(keyOf));
      const lengths = await Promise.all(input.queues.map((q) => queueLength(azurite.connectionString, q)));
      if (input.expected.every((k) => seen.has(k)) && lengths.every((n) => n === 0) && (await input.finished())) break;
      if (Date.now() > deadline) {
        const missing = input.expected.filter((k) => !seen.has(k));
        throw new Error(`work not done within ${timeoutMs} ms: ${missing.length} events missing (${missing.slice(0, 5).join(', ')}), queues ${input.queues.map((q, k) => `${q}=${lengths[k]}`).join(' ')}\n${host.output().slice(-4000)}`);
      }
      await new Promise((r) => setTimeout(r, 250));
    }
    await drain();
    return got;
  }

  /** Each expected change has one CloudEvent id and nothing else came; returns the ids seen twice. */
  function expectEvents(input: Input, got: ReceivedEvent[], c: Pick<Case, 'outcome' | 'repeatable'>): string[] {
    const idsByKey = new Map<string, Set<string>>();
    const timesById = new Map<string, number>();
    for (const e of got) {
      const k = keyOf(e);
      idsByKey.set(k, (idsByKey.get(k) ?? new Set()).add(e.wire.id));
      timesById.set(e.wire.id, (timesById.get(e.wire.id) ?? 0) + 1);
    }
    expect([...idsByKey.keys()].sort()).toEqual([...input.expected].sort());
    expect([...idsByKey].filter(([, ids]) => ids.size !== 1).map(([k]) => k)).toEqual([]);
    const keyById = new Map(got.map((e) => [e.wire.id, keyOf(e)]));
    const repeated = [...timesById].filter(([, n]) => n > 1).map(([id, n]) => ({ key: keyById.get(id) as string, n }));
    if (c.outcome === 'once') expect(repeated).toEqual([]);
    else {
      // At most once more, and only events the killed step had already published.
      expect(repeated.filter((r) => r.n > 2 || !c.repeatable?.(r.key))).toEqual([]);
    }
    return repeated.map((r) => r.key);
  }

  async function expectNothingPoisoned(): Promise<void> {
    for (const q of ALL_QUEUES) expect({ queue: `${q}-poison`, n: await queueLength(azurite.connectionString, `${q}-poison`) }).toEqual({ queue: `${q}-poison`, n: 0 });
  }

  it('a pass without a crash reflects every input once and passes every point a case kills at, as often as the case needs', async () => {
    await clearQueues();
    const log = path.join(logDir, 'normal-pass.log');
    const host = await runner({ ...SHORT_TIMEOUT_ENV, RUNNER_FAULT_LOG: log });
    try {
      // One after the other: each waits for its queues to drain, and the held delivery's stays full.
      for (const make of [deliveryInput, syncInput]) {
        const input = await make();
        await input.trigger(host);
        expectEvents(input, await settle(input, host, 90_000), { outcome: 'once' });
        await input.verify();
      }
      // The held delivery is only deferred here (its claim goes stale in a minute): the point is what counts.
      await (await heldDeliveryInput()).trigger(host);
      const deadline = Date.now() + 30_000;
      while (!faultLog(log).includes('hubspot.fanout.defer') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 300));
    } finally {
      await host.stop();
    }
    const passed = faultLog(log);
    const placed = new Set(passed.filter((l) => !l.startsWith('KILL ')));
    const covered = new Set(CASES.map((c) => bare(c.point)));
    // A point placed in src without a case here (or a case for a point that is gone) fails.
    expect([...placed].sort()).toEqual([...covered].sort());
    for (const c of CASES) expect({ point: c.point, passes: Math.min(passed.filter((l) => l === bare(c.point)).length, nth(c.point)) }).toEqual({ point: c.point, passes: nth(c.point) });
    await clearQueues();
  }, 240_000);

  it.each(CASES)('$worker killed after $point ($input): every input reflected $outcome', async (c) => {
    const started = Date.now();
    await clearQueues();
    const input = await inputs[c.input]();
    const log = path.join(logDir, `${c.point.replace(/[^\w.-]/g, '_')}.log`);
    const crashing = await runner({ ...crashEnv(c.point, log), AzureFunctionsJobHost__functionTimeout: CRASH_FUNCTION_TIMEOUT });
    await input.trigger(crashing);
    await waitForCrash(crashing, log, bare(c.point));
    const crashedAt = Date.now();
    const host = await runner({ ...SHORT_TIMEOUT_ENV });
    let repeated: string[] = [];
    let note: string | void = undefined;
    try {
      const got = await settle(input, host, c.input === 'held-delivery' ? 150_000 : 90_000);
      repeated = expectEvents(input, got, c);
      note = await input.verify();
      await expectNothingPoisoned();
    } finally {
      await host.stop();
      summary.push(`${c.point.padEnd(34)} ${String(Math.round((Date.now() - started) / 1000)).padStart(4)} s (recovered ${Math.round((Date.now() - crashedAt) / 1000)} s)  repeated: ${repeated.length === 0 ? 'none' : `${repeated.length} (${repeated.slice(0, 3).join(', ')}${repeated.length > 3 ? ', …' : ''})`}${note ? `  ${note}` : ''}`);
    }
  }, 240_000);
});
