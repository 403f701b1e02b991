import { randomUUID } from 'node:crypto';
import { ensureError } from '../../../platform/errors';
import { faultPoint } from '../../../platform/faultPoints';
import type { EngineEventPublisher } from '../../../platform/events';
import { redactString, type Logger } from '../../../platform/logging';
import {
  LeaseLostError,
  partitionKey,
  QUEUES,
  type Integration,
  type IntegrationsRepository,
  type Lease,
  type Leases,
  type QueueSender,
  type StorageClients,
} from '../../../storage';
import type { HubSpotCaller, HubSpotCallStats } from '../caller';
import { HubSpotDailyLimitError } from '../errors';
import { updateIntegration } from '../integrationState';
import { HubSpotRecordStore, countKeyOf, plannedVersion, type ApplyResult, type RecordPlan, type RecordVersion } from '../records';
import { hubspotSyncCompletedSchema, publishChanges } from './changes';
import { listPage, searchPage, readAssociations, ticketPipelines, countObjects, type HubSpotObject, type ObjectPage, type PipelineLabels, type SearchFilter, type SearchPage } from './hubspotApi';
import { SYNC_OBJECT_TYPES, type SyncMessage, type SyncObjectType, type SyncType } from './messages';
import { OBJECT_SPECS } from './objects';
import { addProgress, eventRowKey, isActiveRun, runObjectTypes, SyncStateStore, type PageProgress, type RunRow, type RunStatus, type TypeState } from './state';

export const SYNC_LEASE_NAME = 'hubspot-sync';
/** Pages fetched but not yet stored, at most. */
const PIPELINE_DEPTH = 3;
const NOTHING: PageProgress = { pages: 0, records: 0, changes: 0 };

export interface SyncOptions {
  /** An invocation stops taking pages after this long and re-queues itself (functionTimeout is 10 min). */
  budgetMs: number;
  /** Lease on the integration's sync; renewed while pages flow. */
  leaseTtlMs: number;
  /** A queued or running sync not touched for this long is taken to have died. */
  staleAfterMs: number;
  /** Incremental windows start this far before the watermark: the search index lags behind writes. */
  lookbackMs: number;
  /** A full sync's watermark is its start minus this, against clock skew between us and HubSpot. */
  clockMarginMs: number;
  /** How often an incremental sync also reads the archived list (a full sync always does). */
  archivedSweepIntervalMs: number;
  searchLimit: number;
  /** HubSpot refuses to page a search beyond 10,000 results; windows restart before that. */
  searchCap: number;
  /** host.json maxDequeueCount: the last attempt marks the sync failed. */
  maxDequeueCount: number;
  now: () => number;
}

export const DEFAULT_SYNC_OPTIONS: SyncOptions = {
  budgetMs: 8 * 60_000,
  leaseTtlMs: 2 * 60_000,
  staleAfterMs: 15 * 60_000,
  lookbackMs: 2 * 60_000,
  clockMarginMs: 5 * 60_000,
  archivedSweepIntervalMs: 30 * 60_000,
  searchLimit: 200,
  searchCap: 10_000,
  maxDequeueCount: 5,
  now: Date.now,
};

/**
 * The sync lease for a host whose function timeout is `functionTimeoutMs`: the default, but never more
 * than half the timeout. An invocation cannot outlive the timeout, so a longer lease only keeps the
 * integration blocked after its holder died; at half, the queue's redelivery of a crashed job (one
 * function timeout after its dequeue) usually finds the lease already free instead of deferring. The
 * holder renews at a third of it while pages flow.
 */
export function syncLeaseTtlMs(functionTimeoutMs: number): number {
  return Math.min(DEFAULT_SYNC_OPTIONS.leaseTtlMs, Math.floor(functionTimeoutMs / 2));
}

export interface SyncDeps {
  storage: StorageClients;
  queues: QueueSender;
  leases: Leases;
  integrations: IntegrationsRepository;
  events: EngineEventPublisher;
  /** The caller for one integration (per-portal limiter, budget, retry, timeout, tokens). */
  callerFor(integration: Integration): Promise<HubSpotCaller>;
  log: Logger;
  /** The synced store; one over `storage` when absent (the benchmark passes an instrumented one). */
  records?: HubSpotRecordStore;
}

export type JobOutcome =
  | { outcome: 'completed' | 'continued' | 'skipped' | 'failed'; syncId: string; run: RunRow }
  | { outcome: 'dropped' | 'deferred'; syncId: string; reason: string };

export function newRun(init: { syncId: string; syncType: SyncType; objectTypes?: readonly SyncObjectType[]; trigger?: string }, now: number): RunRow {
  return {
    syncId: init.syncId,
    syncType: init.syncType,
    status: 'queued',
    trigger: init.trigger,
    objectTypes: JSON.stringify(init.objectTypes ?? SYNC_OBJECT_TYPES),
    queuedAt: now,
    updatedAt: now,
    startedAt: undefined,
    finishedAt: undefined,
    invocations: 0,
    lastInvocation: 0,
    currentType: undefined,
    pages: 0,
    records: 0,
    changes: 0,
    calls: 0,
    searchCalls: 0,
    rateLimitWaits: 0,
    rateLimitWaitedMs: 0,
    retries: 0,
    activeMs: 0,
    estimatedTotal: undefined,
    error: undefined,
    eventRowKey: undefined,
  };
}

export function newSyncId(): string {
  return randomUUID();
}

function dailyLimitResumeAt(err: unknown): number | undefined {
  return err instanceof HubSpotDailyLimitError ? err.retryAt : undefined;
}

/** A short, redacted description of a failure, safe for the sync history and the status endpoint. */
export function safeError(err: unknown): string {
  const e = ensureError(err);
  const first = `${e.name}: ${e.message}`.split('\n')[0] ?? e.name;
  return redactString(first).slice(0, 300);
}

/**
 * Runs sync jobs from the `hubspot-sync` queue. One job (one queue message) is one invocation: it takes
 * the integration's lease, works through the object types page by page with a checkpoint after every
 * page, and either finishes the sync or, when its time budget runs out, re-queues a continuation. All
 * state is in SyncState, so a crash costs at most the page in flight.
 */
export class SyncEngine {
  readonly options: SyncOptions;
  private readonly state: SyncStateStore;
  readonly records: HubSpotRecordStore;

  constructor(
    private readonly deps: SyncDeps,
    options: Partial<SyncOptions> = {},
  ) {
    this.options = { ...DEFAULT_SYNC_OPTIONS, ...options };
    this.state = new SyncStateStore(deps.storage);
    this.records = deps.records ?? new HubSpotRecordStore(deps.storage);
  }

  async runJob(msg: SyncMessage, ctx: { dequeueCount: number } = { dequeueCount: 1 }): Promise<JobOutcome> {
    const { tenantId: t, integrationId: i, syncId } = msg;
    const log = this.deps.log.child({ tenantId: t, integrationId: i, syncId, syncType: msg.syncType });
    const opts = this.options;
    const integration = await this.deps.integrations.get(t, i);
    if (!integration || integration.type !== 'hubspot') return this.drop(log, syncId, 'no such HubSpot integration');

    // Adopt the message's sync as current, unless another live sync owns the integration.
    let current = await this.state.getRun(t, i);
    if (!current || current.run.syncId !== syncId) {
      if (isActiveRun(current?.run, opts.now(), opts.staleAfterMs)) return this.drop(log, syncId, `sync ${current?.run.syncId} is active`);
      // requestSync claimed the run before queueing this job; another sync owns the row since, so this
      // one was superseded. Only a job queued without a claim (the OAuth connect) is adopted here.
      if (msg.trigger !== undefined && msg.trigger !== 'connect') return this.drop(log, syncId, 'superseded by another sync');
      const claimed = newRun({ syncId, syncType: msg.syncType, ...(msg.objectTypes ? { objectTypes: msg.objectTypes } : {}), ...(msg.trigger ? { trigger: msg.trigger } : {}) }, opts.now());
      if (!(await this.state.claimRun(t, i, claimed, current?.etag))) return this.drop(log, syncId, 'another sync was claimed first');
      faultPoint('hubspot.sync.claim');
      current = { run: claimed, etag: '' };
    } else if (current.run.status !== 'queued' && current.run.status !== 'running') {
      return this.drop(log, syncId, `sync already ${current.run.status}`);
    }
    let run = current.run;

    if (integration.status !== 'active') {
      run = await this.finish(t, i, run, 'skipped', `integration is ${integration.status}`);
      log.info('sync skipped: integration not active', { status: integration.status });
      return { outcome: 'skipped', syncId, run };
    }

    const invocation = msg.continuation?.invocation ?? 1;
    const lease = await this.deps.leases.tryAcquire(partitionKey.integration(t, i), SYNC_LEASE_NAME, opts.leaseTtlMs);
    if (!lease) {
      if (invocation > run.lastInvocation) {
        // The genuine next step of this sync, arriving while the previous holder lets go: try again shortly.
        await this.deps.queues.send(QUEUES.hubspotSync, msg, { visibilityTimeoutSeconds: Math.ceil(opts.leaseTtlMs / 4000) });
        return { outcome: 'deferred', syncId, reason: 'lease busy' };
      }
      if (ctx.dequeueCount > 1) {
        // Redelivered: its first run may have died holding the lease. Come back once the lease would have
        // expired; a live holder will have renewed it by then, and this copy is dropped.
        await this.deps.queues.send(QUEUES.hubspotSync, msg, { visibilityTimeoutSeconds: Math.ceil(opts.leaseTtlMs / 1000) + 5 });
        return { outcome: 'deferred', syncId, reason: 'lease busy after a redelivery' };
      }
      return this.drop(log, syncId, 'lease held by the invocation carrying this sync');
    }
    faultPoint('hubspot.sync.lease');

    const started = opts.now();
    run = {
      ...run,
      status: 'running',
      startedAt: run.startedAt ?? started,
      invocations: run.invocations + 1,
      lastInvocation: Math.max(run.lastInvocation, invocation),
      updatedAt: started,
      error: undefined,
    };
    run.eventRowKey ??= eventRowKey(run.startedAt ?? started, syncId);
    let released = false;
    let job: Job | undefined;
    // The job renews the lease (a new ETag each time): always let go of its latest copy.
    const heldLease = () => job?.lease ?? lease;
    try {
      await this.state.putRun(t, i, run);
      await this.writeEvent(t, i, run);
      faultPoint('hubspot.sync.start');
      const caller = await this.deps.callerFor(integration);
      job = new Job(this, this.deps, this.state, log, integration, caller, run, lease, started);
      const done = await job.execute();
      run = job.settle();
      if (!done) {
        run = { ...run, updatedAt: opts.now() };
        await this.state.putRun(t, i, run);
        await this.writeEvent(t, i, run);
        faultPoint('hubspot.sync.pause');
        // Let go before queueing the next step, so that step finds the lease free.
        await this.deps.leases.release(job.lease);
        released = true;
        faultPoint('hubspot.sync.release');
        await this.deps.queues.send(QUEUES.hubspotSync, { ...msg, continuation: { invocation: invocation + 1 }, trigger: 'continuation' });
        faultPoint('hubspot.sync.continue');
        log.info('sync continues in a new invocation', { invocation, pages: run.pages, records: run.records, invocationMs: opts.now() - started, stageMs: job.stageTimings() });
        return { outcome: 'continued', syncId, run };
      }
      // Announce, then store, as the pages do: the run says completed only once sync.completed is out. A
      // crash before that re-runs the job, which finds every type done and announces once more; a crash
      // after it finds the sync completed, with nothing left unsaid.
      const finishedAt = opts.now();
      await this.afterCompletion(integration, { ...run, finishedAt }, log);
      run = await this.finish(t, i, run, 'completed', undefined, finishedAt);
      faultPoint('hubspot.sync.finish');
      log.info('sync completed', { pages: run.pages, records: run.records, changes: run.changes, calls: run.calls, invocations: run.invocations, invocationMs: opts.now() - started, stageMs: job.stageTimings() });
      return { outcome: 'completed', syncId, run };
    } catch (err) {
      const error = safeError(err);
      const fresh = await this.deps.integrations.get(t, i).catch(() => undefined);
      const latest = (await this.state.getRun(t, i).catch(() => undefined))?.run;
      // Pages, records and changes as stored (a page whose checkpoint failed is read again, so it must not
      // count); the job-wide figures (calls, waits, active time) as this job made them, all chains settled.
      const base = latest && latest.syncId === syncId ? (job ? { ...job.settle(), pages: latest.pages, records: latest.records, changes: latest.changes } : latest) : run;
      if (fresh && fresh.status !== 'active') {
        // needs_reauth and friends: retrying cannot help; the sync stops here.
        run = await this.finish(t, i, base, 'failed', `integration is ${fresh.status}: ${error}`);
        log.warn('sync stopped: integration no longer active', { status: fresh.status, error: err });
        return { outcome: 'failed', syncId, run };
      }
      const resumeAt = dailyLimitResumeAt(err);
      if (resumeAt !== undefined && !released) {
        // The account's daily allowance is spent: wait it out without burning the queue's attempts.
        await this.state.putRun(t, i, { ...base, error, updatedAt: opts.now() });
        await this.writeEvent(t, i, { ...base, error });
        await this.deps.leases.release(heldLease()).catch(() => undefined);
        released = true;
        const delay = Math.min(7 * 24 * 3600, Math.max(1, Math.ceil((resumeAt - opts.now()) / 1000)));
        await this.deps.queues.send(QUEUES.hubspotSync, { ...msg, continuation: { invocation: invocation + 1 }, trigger: 'continuation' }, { visibilityTimeoutSeconds: delay });
        log.warn('sync paused: HubSpot daily limit reached', { resumeInSeconds: delay });
        return { outcome: 'continued', syncId, run: { ...base, error } };
      }
      if (err instanceof LeaseLostError) {
        log.warn('sync lease lost; another invocation carries on', { error: err });
        released = true;
        return { outcome: 'dropped', syncId, reason: 'lease lost' };
      }
      if (ctx.dequeueCount >= opts.maxDequeueCount) {
        run = await this.finish(t, i, base, 'failed', error);
        log.error('sync failed on its last attempt', { error: err, dequeueCount: ctx.dequeueCount });
      } else {
        await this.state.putRun(t, i, { ...base, error, updatedAt: opts.now() }).catch(() => undefined);
        log.warn('sync attempt failed; the queue retries from the last checkpoint', { error: err, dequeueCount: ctx.dequeueCount });
      }
      throw err;
    } finally {
      if (!released) await this.deps.leases.release(heldLease()).catch(() => undefined);
    }
  }

  private drop(log: Logger, syncId: string, reason: string): JobOutcome {
    log.info('sync job dropped', { reason });
    return { outcome: 'dropped', syncId, reason };
  }

  private async finish(t: Integration['tenantId'], i: Integration['integrationId'], run: RunRow, status: RunStatus, error?: string, now = this.options.now()): Promise<RunRow> {
    const done: RunRow = { ...run, status, finishedAt: now, updatedAt: now, error };
    done.eventRowKey ??= eventRowKey(done.startedAt ?? done.queuedAt, done.syncId);
    await this.state.putRun(t, i, done);
    await this.writeEvent(t, i, done);
    return done;
  }

  private async writeEvent(t: Integration['tenantId'], i: Integration['integrationId'], run: RunRow): Promise<void> {
    if (!run.eventRowKey) return;
    const final = run.status === 'completed' || run.status === 'failed' || run.status === 'skipped';
    await this.state.putEvent(t, i, run.eventRowKey, {
      syncId: run.syncId,
      syncType: run.syncType,
      trigger: run.trigger,
      status: run.status,
      objectTypes: run.objectTypes,
      startedAt: run.startedAt ?? run.queuedAt,
      endedAt: final ? (run.finishedAt ?? this.options.now()) : undefined,
      pages: run.pages,
      records: run.records,
      changes: run.changes,
      calls: run.calls,
      rateLimitWaits: run.rateLimitWaits,
      rateLimitWaitedMs: run.rateLimitWaitedMs,
      invocations: run.invocations,
      error: run.error,
    });
  }

  private async afterCompletion(integration: Integration, run: RunRow, log: Logger): Promise<void> {
    const { tenantId: t, integrationId: i } = integration;
    await updateIntegration(this.deps.integrations, t, i, () => ({ lastSyncAt: new Date(run.finishedAt ?? this.options.now()).toISOString() }));
    faultPoint('hubspot.sync.last-sync-at');
    // A quiet 5-minute sweep is not news; a full sync (the initial load above all) or one with changes is.
    if (run.syncType !== 'full' && run.changes === 0) return;
    try {
      await this.deps.events.publish({
        tenantId: t,
        integrationId: i,
        name: 'sync.completed',
        connector: 'hubspot',
        subject: `integrations/${i}`,
        idParts: [i, run.syncId],
        data: {
          integrationId: i,
          portalId: integration.externalAccountId ?? '',
          syncId: run.syncId,
          syncType: run.syncType,
          status: 'completed' as const,
          objectTypes: runObjectTypes(run),
          pages: run.pages,
          records: run.records,
          changes: run.changes,
        },
        dataSchema: hubspotSyncCompletedSchema,
      });
      faultPoint('hubspot.sync.completed');
    } catch (err) {
      // The data is stored and the history is about to say completed; the engine can still read it.
      log.warn('could not publish sync.completed', { error: err });
    }
  }
}

interface Cursor {
  after?: string;
}

interface SearchCursor {
  gte: number;
  after: number;
  tieTs?: number;
  tieAfterId?: string;
}

/**
 * Versions the last few pages of an incremental run planned, for the next page's plan: that page is
 * looked up while the one before it is still being written, so storage may not show it yet. Pages older
 * than `KEEP_PAGES` are stored before any later lookup starts (see `loop`), so they are let go.
 */
class PlannedVersions {
  static readonly KEEP_PAGES = 3;
  readonly map = new Map<string, RecordVersion>();
  private readonly pages: Array<Array<[string, RecordVersion]>> = [];

  constructor(private readonly type: SyncObjectType) {}

  add(plan: RecordPlan): void {
    const page: Array<[string, RecordVersion]> = [];
    for (const r of plan.rows) {
      const v = plannedVersion(this.type, r.data);
      if (!v || r.data.hubspotId === undefined) continue;
      this.map.set(r.data.hubspotId, v);
      page.push([r.data.hubspotId, v]);
    }
    this.pages.push(page);
    while (this.pages.length > PlannedVersions.KEEP_PAGES) {
      for (const [id, v] of this.pages.shift() ?? []) if (this.map.get(id) === v) this.map.delete(id);
    }
  }
}

/** One invocation's work on one sync. */
class Job {
  private readonly deadline: number;
  private pagesThisInvocation = 0;
  private labels: PipelineLabels | undefined;
  /** Set by the first chain that fails: the others stop at their next page. */
  private stopping = false;
  private renewing: Promise<void> | undefined;
  /** The checkpoint carrying the run row, while one is in flight (see `checkpoint`). */
  private runWrite: Promise<unknown> | undefined;
  private readonly estimates: Array<Promise<void>> = [];
  /** Milliseconds spent in each stage this invocation (stages overlap, so they do not sum to the run time). */
  readonly stageMs: Record<'search' | 'list' | 'associations' | 'lookup' | 'publish' | 'write' | 'checkpoint', number> = {
    search: 0,
    list: 0,
    associations: 0,
    lookup: 0,
    publish: 0,
    write: 0,
    checkpoint: 0,
  };

  stageTimings(): Record<string, number> {
    return Object.fromEntries(Object.entries(this.stageMs).map(([k, v]) => [k, Math.round(v)]));
  }

  private async timed<T>(stage: keyof Job['stageMs'], work: () => Promise<T>): Promise<T> {
    const t0 = performance.now();
    try {
      return await work();
    } finally {
      this.stageMs[stage] += performance.now() - t0;
    }
  }
  private readonly statsAtStart: HubSpotCallStats;
  private readonly runAtStart: RunRow;
  private leaseRenewedAt: number;

  constructor(
    private readonly engine: SyncEngine,
    private readonly deps: SyncDeps,
    private readonly state: SyncStateStore,
    private readonly log: Logger,
    private readonly integration: Integration,
    private readonly caller: HubSpotCaller,
    public run: RunRow,
    public lease: Lease,
    private readonly startedAt: number,
  ) {
    this.deadline = startedAt + engine.options.budgetMs;
    this.statsAtStart = { ...caller.stats() };
    this.runAtStart = { ...run };
    this.leaseRenewedAt = startedAt;
  }

  private get t() {
    return this.integration.tenantId;
  }
  private get i() {
    return this.integration.integrationId;
  }
  private get now(): number {
    return this.engine.options.now();
  }
  private get portalId(): string {
    return this.integration.externalAccountId ?? this.caller.portalId;
  }

  /**
   * True when every object type is done; false when the budget ran out first. The types run side by side:
   * each is one chain of pages (every cursor comes from the previous answer), so one chain waits a whole
   * round trip per page and, against a HubSpot slower than the window's share per call, cannot spend the
   * portal's budget alone; the limiter and the storage budget pace the chains together. The first failure
   * stops the other chains at their next page (their pages so far are stored), then surfaces.
   */
  async execute(): Promise<boolean> {
    const types = runObjectTypes(this.run);
    // The status shows the first type not finished yet (a job that stops early leaves it there).
    const unfinished = new Set<SyncObjectType>(types);
    this.run.currentType = types[0];
    const one = async (type: SyncObjectType): Promise<boolean> => {
      try {
        const st = await this.state.getType(this.t, this.i, type);
        const full = this.run.syncType === 'full' || st.watermarkMs === undefined || (st.fullSyncId === this.run.syncId && st.fullPhase !== undefined);
        const done = full ? await this.fullType(type, st) : await this.incrementalType(type, st);
        if (done) {
          unfinished.delete(type);
          this.run.currentType = types.find((t) => unfinished.has(t));
        }
        return done;
      } catch (err) {
        this.stopping = true;
        throw err;
      }
    };
    const results = await Promise.allSettled(types.map(one));
    await Promise.all(this.estimates); // they never reject; settled before the job reports its run
    const failure = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failure) throw failure.reason;
    if (results.some((r) => r.status === 'fulfilled' && !r.value)) return false;
    this.run.currentType = undefined;
    this.progress();
    return true;
  }

  private outOfTime(): boolean {
    if (this.stopping) return true;
    // Every invocation moves at least one page, so a tiny budget still finishes.
    return this.pagesThisInvocation > 0 && this.now >= this.deadline;
  }

  private async pipelines(): Promise<PipelineLabels> {
    this.labels ??= await ticketPipelines(this.caller);
    return this.labels;
  }

  /** The run with the caller's counters and the elapsed time folded in; for the job's last writes. */
  settle(): RunRow {
    this.progress();
    return this.run;
  }

  /** Folds the caller's counters and elapsed time into the run row. */
  private progress(): void {
    const s = this.caller.stats();
    const a = this.statsAtStart;
    const r0 = this.runAtStart;
    Object.assign(this.run, {
      calls: r0.calls + (s.calls - a.calls),
      searchCalls: r0.searchCalls + (s.searchCalls - a.searchCalls),
      rateLimitWaits: r0.rateLimitWaits + (s.rateLimitWaits - a.rateLimitWaits),
      rateLimitWaitedMs: r0.rateLimitWaitedMs + (s.rateLimitWaitedMs - a.rateLimitWaitedMs),
      retries: r0.retries + (s.retries - a.retries),
      activeMs: r0.activeMs + (this.now - this.startedAt),
      updatedAt: this.now,
    });
  }

  /**
   * Stores a type's checkpoint (its counters inside, see state.ts) and, when no other chain's write of
   * the run row is in flight, the run row with it. One run-row write at a time: two in flight together
   * could land in either order and leave the older figures in the row.
   */
  private async checkpoint(type: SyncObjectType, st: TypeState, counted?: PageProgress): Promise<void> {
    await this.timed('checkpoint', () => this.checkpointNow(type, st, counted));
  }

  private async checkpointNow(type: SyncObjectType, st: TypeState, counted?: PageProgress): Promise<void> {
    this.progress();
    const withRun = this.runWrite === undefined;
    const write = this.state.checkpoint(this.t, this.i, type, st, withRun ? this.run : undefined);
    if (withRun) {
      this.runWrite = write.then(
        () => (this.runWrite = undefined),
        () => (this.runWrite = undefined),
      );
    }
    await write;
    faultPoint('hubspot.sync.checkpoint');
    // The in-memory run counts a page once its checkpoint is stored, as the stored sums do.
    if (counted) {
      this.run.pages += counted.pages;
      this.run.records += counted.records;
      this.run.changes += counted.changes;
    }
    if (this.now - this.leaseRenewedAt > this.engine.options.leaseTtlMs / 3) await this.renewLease();
  }

  /** One renewal at a time: the lease's ETag changes with each, so two chains renewing at once would collide. */
  private renewLease(): Promise<void> {
    this.renewing ??= (async () => {
      try {
        this.lease = await this.deps.leases.renew(this.lease, this.engine.options.leaseTtlMs);
        this.leaseRenewedAt = this.now;
      } finally {
        this.renewing = undefined;
      }
    })();
    return this.renewing;
  }

  /**
   * Fetches ahead while earlier pages are stored: the fetch chain is sequential (each cursor comes from
   * the previous answer), so it must never wait for storage, or the rate limit goes unspent. Pages are
   * stored and checkpointed strictly in order, at most `PIPELINE_DEPTH` behind the fetches (memory stays
   * a few pages). Returns false when the budget ran out first; everything fetched by then is stored.
   */
  private async loop<C, P, S = undefined>(
    first: C,
    step: {
      fetch(c: C): Promise<P>;
      advance(c: C, p: P): { next: C; done: boolean };
      /**
       * Optional first storage stage (an incremental page's lookups and engine events), run in page order
       * and one page ahead of `process`: page N+1 prepares while page N is committed, and no earlier than
       * page N−1's `process` has finished, so whatever it reads from storage includes every page but N.
       */
      prepare?(p: P): Promise<S>;
      process(p: P, next: C, done: boolean, prepared: S | undefined): Promise<void>;
    },
  ): Promise<boolean> {
    let cursor = first;
    let chain: Promise<void> = Promise.resolve();
    let prepared: Promise<unknown> = Promise.resolve();
    /** The chain as it was before the last page joined it: every page but the last one processed. */
    let beforeLast: Promise<void> = Promise.resolve();
    let failure: { error: unknown } | undefined;
    const backlog: Array<Promise<void>> = [];
    const drain = async () => {
      await chain;
      if (failure) throw failure.error;
    };
    for (;;) {
      if (failure) break;
      if (this.outOfTime()) {
        await drain();
        return false;
      }
      let page: P;
      try {
        page = await step.fetch(cursor);
      } catch (err) {
        // The other chains stop at their next page from now, not once this chain's pages are stored.
        this.stopping = true;
        // Let the pages already fetched reach storage: the checkpoint then sits right before this one.
        await chain.catch(() => undefined);
        throw err;
      }
      const { next, done } = step.advance(cursor, page);
      this.pagesThisInvocation++;
      if (step.prepare) {
        const prepare = step.prepare;
        const ready: Promise<S> = Promise.all([prepared, beforeLast]).then(() => prepare(page));
        prepared = ready;
        beforeLast = chain;
        chain = Promise.all([chain, ready]).then(([, s]) => step.process(page, next, done, s));
      } else {
        chain = chain.then(() => step.process(page, next, done, undefined));
      }
      const mine = chain.catch((err: unknown) => {
        failure ??= { error: err };
      });
      backlog.push(mine);
      if (backlog.length > PIPELINE_DEPTH) await backlog.shift();
      if (done) break;
      cursor = next;
    }
    await drain();
    return true;
  }

  private async fullType(type: SyncObjectType, st0: TypeState): Promise<boolean> {
    let st = st0;
    if (st.fullSyncId !== this.run.syncId) {
      const counts = await this.engine.records.counts(this.t, this.i, type);
      st = {
        ...st,
        fullSyncId: this.run.syncId,
        fullPhase: 'live',
        fullAfter: undefined,
        fullSeen: 0,
        fullCounts: '{}',
        fullStartedAtMs: this.now,
        fullInitial: st.lastFullCompletedAtMs === undefined && Object.keys(counts).length === 0,
      };
      st = addProgress(st, this.run.syncId, NOTHING);
      // The count only feeds the ETA: it runs beside the first pages instead of before them.
      this.estimates.push(
        countObjects(this.caller, type).then(
          (total) => {
            this.run.estimatedTotal = (this.run.estimatedTotal ?? 0) + total;
          },
          (err: unknown) => this.log.warn('could not estimate the object count', { objectType: type, error: err }),
        ),
      );
      await this.checkpoint(type, st);
    }
    const seenCounts: Record<string, number> = JSON.parse(st.fullCounts) as Record<string, number>;
    if (st.fullPhase === 'live') {
      const finished = await this.loop<Cursor, ObjectPage>(st.fullAfter ? { after: st.fullAfter } : {}, {
        fetch: (c) => this.timed('list', () => listPage(this.caller, type, { ...c, archived: false })),
        advance: (_c, p) => (p.nextAfter ? { next: { after: p.nextAfter }, done: false } : { next: {}, done: true }),
        process: async (p, next, done) => {
          const counted = await this.applyLive(type, p.objects, { initial: st.fullInitial, adjustCounts: false });
          for (const o of p.objects) {
            const k = countKeyOf(type, o.properties);
            seenCounts[k] = (seenCounts[k] ?? 0) + 1;
          }
          st = { ...st, fullSeen: st.fullSeen + p.objects.length, fullCounts: JSON.stringify(seenCounts), fullAfter: done ? undefined : next.after, fullPhase: done ? 'archived' : 'live' };
          st = addProgress(st, this.run.syncId, counted);
          await this.checkpoint(type, st, counted);
        },
      });
      if (!finished) return false;
    }
    if (st.fullPhase === 'archived') {
      const finished = await this.loop<Cursor, ObjectPage>(st.fullAfter ? { after: st.fullAfter } : {}, {
        fetch: (c) => this.timed('list', () => listPage(this.caller, type, { ...c, archived: true })),
        advance: (_c, p) => (p.nextAfter ? { next: { after: p.nextAfter }, done: false } : { next: {}, done: true }),
        process: async (p, next, done) => {
          // The counters are rebuilt from the live objects seen, so tombstones do not move them here.
          const counted = await this.applyArchived(type, p.objects, { adjustCounts: false });
          if (done) {
            await this.engine.records.setCounts(this.t, this.i, type, seenCounts);
            faultPoint('hubspot.sync.count');
          }
          const now = this.now;
          st = done
            ? {
                ...st,
                fullAfter: undefined,
                fullPhase: 'done',
                lastFullCompletedAtMs: now,
                lastArchivedSweepMs: st.fullStartedAtMs ?? now,
                watermarkMs: Math.max(st.watermarkMs ?? 0, (st.fullStartedAtMs ?? now) - this.engine.options.clockMarginMs),
              }
            : { ...st, fullAfter: next.after };
          st = addProgress(st, this.run.syncId, counted);
          await this.checkpoint(type, st, counted);
        },
      });
      if (!finished) return false;
    }
    return true;
  }

  private async incrementalType(type: SyncObjectType, st0: TypeState): Promise<boolean> {
    const opts = this.engine.options;
    const spec = OBJECT_SPECS[type];
    let st = st0;
    if (st.incSyncId !== this.run.syncId) {
      const now = this.now;
      const watermark = st.watermarkMs ?? 0;
      st = {
        ...st,
        incSyncId: this.run.syncId,
        incPhase: 'search',
        incGte: Math.max(0, watermark - opts.lookbackMs),
        incLte: now,
        incAfter: 0,
        incTieTs: undefined,
        incTieAfterId: undefined,
        incMaxSeenMs: watermark,
        incArchivedAfter: undefined,
        incSweepArchived: st.lastArchivedSweepMs === undefined || now - st.lastArchivedSweepMs >= opts.archivedSweepIntervalMs,
      };
      st = addProgress(st, this.run.syncId, NOTHING);
      await this.checkpoint(type, st);
    }
    const lte = st.incLte ?? this.now;
    if (st.incPhase === 'search') {
      const first: SearchCursor = { gte: st.incGte ?? 0, after: st.incAfter, ...(st.incTieTs !== undefined ? { tieTs: st.incTieTs } : {}), ...(st.incTieAfterId ? { tieAfterId: st.incTieAfterId } : {}) };
      let estimated = false;
      const planned = new PlannedVersions(type);
      const finished = await this.loop<SearchCursor, SearchPage, RecordPlan>(first, {
        fetch: async (c) => {
          const lm = spec.lastModifiedProperty;
          const tie = c.tieTs !== undefined;
          const filters: SearchFilter[] = tie
            ? [{ propertyName: lm, operator: 'EQ', value: String(c.tieTs) }, ...(c.tieAfterId ? [{ propertyName: 'hs_object_id', operator: 'GT' as const, value: c.tieAfterId }] : [])]
            : [
                { propertyName: lm, operator: 'GTE', value: String(c.gte) },
                { propertyName: lm, operator: 'LTE', value: String(lte) },
              ];
          const page = await this.timed('search', () => searchPage(this.caller, type, { filters, sortBy: tie ? 'hs_object_id' : lm, limit: opts.searchLimit, ...(c.after ? { after: c.after } : {}) }));
          if (!estimated && !tie && c.after === 0 && c.gte === st.incGte) {
            this.run.estimatedTotal = (this.run.estimatedTotal ?? 0) + page.total;
            estimated = true;
          }
          await this.timed('associations', () => this.attachAssociations(type, page.objects));
          return page;
        },
        advance: (c, p) => this.nextWindow(c, p, lte),
        prepare: (p) => this.prepareLive(type, p.objects, planned),
        process: async (p, next, done, plan) => {
          const counted = plan ? await this.commitLive(type, p.objects, plan, { adjustCounts: true }) : await this.applyLive(type, p.objects, { initial: false, adjustCounts: true });
          let maxSeen = st.incMaxSeenMs ?? 0;
          for (const o of p.objects) if (o.lastModifiedMs <= lte && o.lastModifiedMs > maxSeen) maxSeen = o.lastModifiedMs;
          st = {
            ...st,
            incMaxSeenMs: maxSeen,
            incGte: next.gte,
            incAfter: next.after,
            incTieTs: next.tieTs,
            incTieAfterId: next.tieAfterId,
            incPhase: done ? (st.incSweepArchived ? 'archived' : 'done') : 'search',
          };
          if (done && !st.incSweepArchived) st = this.incrementalDone(st);
          st = addProgress(st, this.run.syncId, counted);
          await this.checkpoint(type, st, counted);
        },
      });
      if (!finished) return false;
    }
    if (st.incPhase === 'archived') {
      const sweepStarted = this.now;
      const finished = await this.loop<Cursor, ObjectPage>(st.incArchivedAfter ? { after: st.incArchivedAfter } : {}, {
        fetch: (c) => this.timed('list', () => listPage(this.caller, type, { ...c, archived: true })),
        advance: (_c, p) => (p.nextAfter ? { next: { after: p.nextAfter }, done: false } : { next: {}, done: true }),
        process: async (p, next, done) => {
          const counted = await this.applyArchived(type, p.objects, { adjustCounts: true });
          st = done ? this.incrementalDone({ ...st, incArchivedAfter: undefined, lastArchivedSweepMs: sweepStarted }) : { ...st, incArchivedAfter: next.after };
          st = addProgress(st, this.run.syncId, counted);
          await this.checkpoint(type, st, counted);
        },
      });
      if (!finished) return false;
    }
    return true;
  }

  private incrementalDone(st: TypeState): TypeState {
    return {
      ...st,
      incPhase: 'done',
      watermarkMs: Math.max(st.watermarkMs ?? 0, st.incMaxSeenMs ?? 0),
      lastIncrementalCompletedAtMs: this.now,
    };
  }

  /**
   * The next search window. Pages go by `after` offset until the next page would cross the 10,000-result
   * cap; then the window restarts at the last timestamp seen (objects at that timestamp come again and
   * are recognised by id and version). If a whole window shares one timestamp, that timestamp is paged by
   * object id instead, then the search moves past it.
   */
  private nextWindow(c: SearchCursor, p: SearchPage, lte: number): { next: SearchCursor; done: boolean } {
    const { searchLimit: limit, searchCap: cap } = this.engine.options;
    const last = p.objects[p.objects.length - 1];
    if (!p.nextAfter || !last) {
      if (c.tieTs !== undefined && c.tieTs + 1 <= lte) return { next: { gte: c.tieTs + 1, after: 0 }, done: false };
      return { next: { gte: c.gte, after: 0 }, done: true };
    }
    const nextOffset = Number(p.nextAfter);
    if (Number.isFinite(nextOffset) && nextOffset + limit <= cap) return { next: { ...c, after: nextOffset }, done: false };
    if (c.tieTs !== undefined) return { next: { gte: c.gte, after: 0, tieTs: c.tieTs, tieAfterId: last.id }, done: false };
    if (last.lastModifiedMs > c.gte) return { next: { gte: last.lastModifiedMs, after: 0 }, done: false };
    return { next: { gte: c.gte, after: 0, tieTs: c.gte }, done: false };
  }

  private async attachAssociations(type: SyncObjectType, objects: HubSpotObject[]): Promise<void> {
    const spec = OBJECT_SPECS[type];
    if (objects.length === 0 || spec.associations.length === 0) return;
    const ids = objects.map((o) => o.id);
    const maps = await Promise.all(spec.associations.map(async (to) => [to, await readAssociations(this.caller, type, to, ids)] as const));
    for (const o of objects) {
      const assoc: Partial<Record<SyncObjectType, string[]>> = {};
      for (const [to, map] of maps) assoc[to] = map.get(o.id) ?? [];
      o.associations = assoc;
    }
  }

  /**
   * The first half of storing an incremental page: look up what we hold (with what the pages before it
   * planned laid over, as they may not be stored yet), then announce the changes. Announce-then-store
   * holds: `commitLive` writes the rows only after this has published them.
   */
  private async prepareLive(type: SyncObjectType, objects: HubSpotObject[], planned: PlannedVersions): Promise<RecordPlan> {
    const labels = type === 'tickets' && objects.length > 0 ? await this.pipelines() : undefined;
    const ctx = { syncId: this.run.syncId, now: this.now, ...(labels ? { labels } : {}) };
    const plan = await this.timed('lookup', () => this.engine.records.plan(this.t, this.i, type, objects, { ...ctx, known: planned.map }));
    planned.add(plan);
    await this.timed('publish', () => publishChanges(this.deps.events, { tenantId: this.t, integrationId: this.i, portalId: this.portalId, syncId: this.run.syncId, source: 'sync', ...(labels ? { labels } : {}) }, type, plan.changes));
    faultPoint('hubspot.sync.publish');
    return plan;
  }

  private async commitLive(type: SyncObjectType, objects: HubSpotObject[], plan: RecordPlan, opts: { adjustCounts: boolean }): Promise<PageProgress> {
    const result = await this.timed('write', () => this.engine.records.commit(this.t, this.i, type, plan, { counts: opts.adjustCounts }));
    faultPoint('hubspot.sync.write');
    return { pages: 1, records: objects.length, changes: result.changes.length };
  }

  /** Stores a page of live objects; returns what it adds to the run's progress (counted with its checkpoint). */
  private async applyLive(type: SyncObjectType, objects: HubSpotObject[], opts: { initial: boolean; adjustCounts: boolean }): Promise<PageProgress> {
    const labels = type === 'tickets' && objects.length > 0 ? await this.pipelines() : undefined;
    const ctx = { syncId: this.run.syncId, now: this.now, ...(labels ? { labels } : {}) };
    let result: ApplyResult;
    if (opts.initial) {
      // An initial load announces itself once (sync.completed), not per record, and looks nothing up.
      result = await this.timed('write', () => this.engine.records.apply(this.t, this.i, type, objects, { ...ctx, assumeNew: true }));
    } else {
      const plan = await this.timed('lookup', () => this.engine.records.plan(this.t, this.i, type, objects, ctx));
      await this.timed('publish', () =>
        publishChanges(this.deps.events, { tenantId: this.t, integrationId: this.i, portalId: this.portalId, syncId: this.run.syncId, source: 'sync', ...(labels ? { labels } : {}) }, type, plan.changes),
      );
      faultPoint('hubspot.sync.publish');
      result = await this.timed('write', () => this.engine.records.commit(this.t, this.i, type, plan, { counts: opts.adjustCounts }));
    }
    faultPoint('hubspot.sync.write');
    return { pages: 1, records: objects.length, changes: result.changes.length };
  }

  private async applyArchived(type: SyncObjectType, objects: HubSpotObject[], opts: { adjustCounts: boolean }): Promise<PageProgress> {
    const plan = await this.engine.records.planArchive(this.t, this.i, type, objects, { syncId: this.run.syncId, now: this.now });
    await publishChanges(this.deps.events, { tenantId: this.t, integrationId: this.i, portalId: this.portalId, syncId: this.run.syncId, source: 'sync' }, type, plan.changes);
    faultPoint('hubspot.sync.publish');
    const result = await this.engine.records.commit(this.t, this.i, type, plan, { counts: opts.adjustCounts });
    faultPoint('hubspot.sync.write');
    return { pages: 1, records: objects.length, changes: result.changes.length };
  }
}
