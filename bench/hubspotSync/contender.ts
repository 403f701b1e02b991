import { Client, DEFAULT_LIMITER_OPTIONS } from '@hubspot/api-client';
import { z } from 'zod';
import { DEFAULT_MIN_MARGIN_MS, DistributedBudget, type BudgetRow } from '../../src/connectors/hubspot/budget';
import { createHubSpotCaller } from '../../src/connectors/hubspot/client';
import { HubSpotRateGate, ratePolicy } from '../../src/connectors/hubspot/rateLimit';
import type { HubSpotCaller } from '../../src/connectors/hubspot/caller';
import {
  HubSpotRecordStore,
  OBJECT_SPECS,
  SyncEngine,
  hubSpotObjectSchema,
  requestSync,
  syncMessageSchema,
  toHubSpotObject,
  type ApplyResult,
} from '../../src/connectors/hubspot';
import { EngineEventPublisher } from '../../src/platform/events';
import { consoleSink, Logger } from '../../src/platform/logging';
import { EventDataBlobs, IntegrationsRepository, Leases, QueueSender, StorageClients, TABLES, TenantTable, integrationId, tenantId, type LeaseRow } from '../../src/storage';
import { serve } from './ipc';
import { MemoryTableStorage } from './memoryTables';

/**
 * One contender of the benchmark, in a process of its own so that its RSS is its own: `engine` (our
 * sync engine with the production caller: per-portal limiter, storage budget, retry, timeout) or
 * `baseline` (the SDK's `getAll` with the SDK's own limiter and retry, then the same store).
 */

const setupSchema = z.object({
  kind: z.enum(['engine', 'baseline']),
  storage: z.enum(['azurite', 'memory']),
  fakeUrl: z.string(),
  hubId: z.number(),
  token: z.string(),
  connectionString: z.string(),
  perWindow: z.number(),
  windowMs: z.number(),
  objectTypes: z.array(z.enum(['tickets', 'contacts', 'companies'])).min(1),
});
type Setup = z.infer<typeof setupSchema>;

let setup: Setup | undefined;
let storage: StorageClients | undefined;
let caller: HubSpotCaller | undefined;
let client: Client | undefined;
const t = tenantId('bench');
const log = new Logger(consoleSink, { functionName: 'bench' }, process.env.BENCH_LOG_LEVEL === 'info' ? 'info' : 'warn');

/** The store, timing its writes: how much of the run the storage took. */
class TimedRecordStore extends HubSpotRecordStore {
  commitMs = 0;
  commits = 0;
  override async commit(...args: Parameters<HubSpotRecordStore['commit']>): Promise<ApplyResult> {
    const t0 = performance.now();
    try {
      return await super.commit(...args);
    } finally {
      this.commitMs += performance.now() - t0;
      this.commits++;
    }
  }
}

const gc = (): void => (globalThis as { gc?: () => void }).gc?.();

/** Samples RSS while `fn` runs; growth is measured against the RSS right before it. */
async function measured<T>(fn: () => Promise<T>): Promise<{ value: T; ms: number; rssStartMb: number; rssPeakGrowthMb: number; heapPeakGrowthMb: number; externalPeakGrowthMb: number }> {
  gc();
  const start = process.memoryUsage();
  let peakRss = start.rss;
  let peakHeap = start.heapUsed;
  let peakExternal = start.external;
  // BENCH_MEMORY_TRACE=1: where the growth is, twice a second (V8 heap, external buffers, the rest).
  const trace = process.env.BENCH_MEMORY_TRACE === '1';
  let lastTrace = 0;
  const timer = setInterval(() => {
    const m = process.memoryUsage();
    if (m.rss > peakRss) peakRss = m.rss;
    if (m.heapUsed > peakHeap) peakHeap = m.heapUsed;
    if (m.external > peakExternal) peakExternal = m.external;
    if (trace && performance.now() - lastTrace >= 500) {
      lastTrace = performance.now();
      const d = (a: number, b: number) => (Math.round(((a - b) / 1024 / 1024) * 10) / 10).toFixed(1);
      process.stderr.write(`  memory +MB: rss ${d(m.rss, start.rss)}, heap total ${d(m.heapTotal, start.heapTotal)}, heap used ${d(m.heapUsed, start.heapUsed)}, external ${d(m.external, start.external)}\n`);
    }
  }, 10);
  const t0 = performance.now();
  try {
    const value = await fn();
    const ms = performance.now() - t0;
    const m = process.memoryUsage();
    peakRss = Math.max(peakRss, m.rss);
    peakHeap = Math.max(peakHeap, m.heapUsed);
    peakExternal = Math.max(peakExternal, m.external);
    const mb = (b: number) => Math.round((b / 1024 / 1024) * 10) / 10;
    return { value, ms, rssStartMb: mb(start.rss), rssPeakGrowthMb: mb(peakRss - start.rss), heapPeakGrowthMb: mb(peakHeap - start.heapUsed), externalPeakGrowthMb: mb(peakExternal - start.external) };
  } finally {
    clearInterval(timer);
  }
}

/** When each standard call left the gate (epoch ms), to set against when the fake counted it. */
const grants: number[] = [];

class GrantLoggingGate extends HubSpotRateGate {
  override async acquire(...args: Parameters<HubSpotRateGate['acquire']>): Promise<number> {
    const waited = await super.acquire(...args);
    if (args[1] === 'standard') grants.push(performance.timeOrigin + performance.now());
    return waited;
  }
}

serve({
  async prepare(args) {
    setup = setupSchema.parse(args);
    const cfg = { kind: 'connectionString' as const, connectionString: setup.connectionString };
    storage = setup.storage === 'memory' ? new MemoryTableStorage(cfg) : new StorageClients(cfg);
    await storage.ensureAll();
    const s = setup;
    if (s.kind === 'engine') {
      // Everything about the window is scaled to the bench's window at HubSpot's ratio, the latency/skew
      // margin included (50 ms at HubSpot's 10 s window).
      const budget = new DistributedBudget(new TenantTable<BudgetRow>(storage.table(TABLES.rateBudgets)), {
        minMarginMs: (DEFAULT_MIN_MARGIN_MS * s.windowMs) / 10_000,
      });
      caller = createHubSpotCaller({
        tenantId: t,
        integrationId: integrationId('engine'),
        portalId: String(s.hubId),
        auth: { kind: 'private_app', accessToken: async () => s.token, unauthorized: async () => false },
        gate: new GrantLoggingGate(budget),
        policy: ratePolicy('private_app', { windowMs: s.windowMs, publicAppLimit: s.perWindow, privateAppLimit: s.perWindow, searchLimit: 5 }),
        apiBaseUrl: s.fakeUrl,
        priority: 'background',
        log,
      });
      await caller.call('standard', 'warm-up', (c) => c.crm.pipelines.pipelinesApi.getAll('tickets'));
    } else {
      // The SDK's own limiter preset, scaled to the benchmark's window like the fake's limit.
      const scale = s.windowMs / 10_000;
      client = new Client({
        accessToken: s.token,
        basePath: s.fakeUrl,
        numberOfApiCallRetries: 6,
        limiterOptions: { minTime: DEFAULT_LIMITER_OPTIONS.minTime * scale, maxConcurrent: DEFAULT_LIMITER_OPTIONS.maxConcurrent },
      });
      await client.crm.pipelines.pipelinesApi.getAll('tickets');
    }
    return {};
  },

  async run(args) {
    if (!setup || !storage) throw new Error('not prepared');
    const st = storage;
    const syncType = z.object({ syncType: z.enum(['full', 'incremental']).default('full') }).parse(args ?? {}).syncType;
    if (setup.kind === 'engine') {
      const c = caller as HubSpotCaller;
      const i = integrationId('engine');
      const integrations = new IntegrationsRepository(new TenantTable(st.table(TABLES.integrations)));
      // The incremental runs on the integration (and the store) the full sync left.
      if (!(await integrations.get(t, i))) await integrations.create(t, { integrationId: i, type: 'hubspot', status: 'active', externalAccountId: String(setup.hubId) });
      const queues = new QueueSender(st);
      const store = new TimedRecordStore(st);
      const engine = new SyncEngine(
        {
          storage: st,
          queues,
          leases: new Leases(new TenantTable<LeaseRow>(st.table(TABLES.leases))),
          integrations,
          events: new EngineEventPublisher(queues, new EventDataBlobs(st)),
          log,
          callerFor: async () => c,
          records: store,
        },
        { budgetMs: 9 * 60_000 },
      );
      const started = await requestSync({ storage: st, queues }, t, i, { syncType, trigger: 'api', objectTypes: setup.objectTypes });
      if (!started.started) throw new Error('sync not started');
      const q = st.queue('hubspot-sync');
      const got = (await q.receiveMessages({ numberOfMessages: 1, visibilityTimeout: 600 })).receivedMessageItems[0];
      if (!got) throw new Error('no sync message');
      const msg = syncMessageSchema.parse(JSON.parse(Buffer.from(got.messageText, 'base64').toString('utf8')));
      const callsBefore = c.stats();
      grants.length = 0;
      const m = await measured(() => engine.runJob(msg, { dequeueCount: 1 }));
      await q.deleteMessage(got.messageId, got.popReceipt);
      const out = m.value;
      if (out.outcome !== 'completed') throw new Error(`sync ended ${out.outcome}`);
      const after = c.stats();
      let records = 0;
      for (const type of setup.objectTypes) records += Object.values(await store.counts(t, i, type)).reduce((a, b) => a + b, 0);
      return {
        // A full sync's figure is what the store holds at the end; an incremental's is what it read.
        records: syncType === 'full' ? records : out.run.records,
        changes: out.run.changes,
        ms: m.ms,
        fetchMs: null,
        rssStartMb: m.rssStartMb,
        rssPeakGrowthMb: m.rssPeakGrowthMb,
        heapPeakGrowthMb: m.heapPeakGrowthMb,
        externalPeakGrowthMb: m.externalPeakGrowthMb,
        callerCalls: after.calls - callsBefore.calls,
        rateLimitWaits: after.rateLimitWaits - callsBefore.rateLimitWaits,
        status429: after.status429 - callsBefore.status429,
        invocations: out.run.invocations,
        storeMs: store.commitMs,
        storeWrites: store.commits,
        grants,
      };
    }
    const c = client as Client;
    const i = integrationId('baseline');
    const records = new TimedRecordStore(st);
    const types = setup.objectTypes;
    let fetchMs = 0;
    const m = await measured(async () => {
      let n = 0;
      // One type after the other, as a getAll user would.
      for (const type of types) {
        const spec = OBJECT_SPECS[type];
        const t0 = performance.now();
        const all = await c.crm[type].getAll(100, undefined, [...spec.properties], undefined, spec.associations.length > 0 ? [...spec.associations] : undefined);
        fetchMs += performance.now() - t0;
        // The same store as the engine, written after the fetch (getAll hands over everything at once).
        for (let k = 0; k < all.length; k += 100) {
          const objects = all.slice(k, k + 100).map((o) => toHubSpotObject(type, hubSpotObjectSchema.parse(o)));
          await records.apply(t, i, type, objects, { assumeNew: true });
        }
        n += all.length;
      }
      return n;
    });
    return {
      records: m.value,
      changes: null,
      ms: m.ms,
      fetchMs,
      rssStartMb: m.rssStartMb,
      rssPeakGrowthMb: m.rssPeakGrowthMb,
      heapPeakGrowthMb: m.heapPeakGrowthMb,
      externalPeakGrowthMb: m.externalPeakGrowthMb,
      callerCalls: null,
      rateLimitWaits: null,
      status429: null,
      invocations: 1,
      storeMs: records.commitMs,
      storeWrites: records.commits,
      grants: null,
    };
  },

  async stop() {
    setImmediate(() => process.exit(0));
    return {};
  },
});
