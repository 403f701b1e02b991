import { z } from 'zod';
import { ConflictError, PreconditionFailedError } from '../../../platform/errors';
import { partitionKey, TABLES, TenantTable, type IntegrationId, type PartitionKey, type StorageClients, type TenantId } from '../../../storage';
import { SYNC_OBJECT_TYPES, SYNC_TYPES, syncObjectTypeSchema, type SyncObjectType } from './messages';

/**
 * SyncState rows of one integration (PartitionKey `partitionKey.integration(t, i)`):
 *   `run`        the current or last sync: who owns it, its job-wide figures, its SyncEvents row
 *   `<type>`     the checkpoint of one object type: full-sync cursor, incremental window, watermark, and
 *                this sync's pages, records and changes of that type
 *   `count.<type>` the record counters as they were kept before they moved into the Records partitions
 *                (records.ts reads them until a type's counters first move there)
 * The types' chains run side by side. Each type row has one writer (its chain), so a page's counters ride
 * in its checkpoint's row and the run's pages, records and changes are the sum over the type rows, read
 * with the run: two chains never overwrite each other's counts, and a page is counted exactly when its
 * checkpoint is stored (a retry re-reads only uncounted pages). The run row's other figures (calls, waits,
 * active time) belong to the job as a whole and are written by one write at a time (see the engine).
 * SyncEvents rows (same PartitionKey, RowKey inverted start time) are the history, one per sync.
 */

type Cell = string | number | boolean | Date | null | undefined;
type Stored = Record<string, Cell>;

export const RUN_STATUSES = ['queued', 'running', 'completed', 'failed', 'skipped'] as const;
export type RunStatus = (typeof RUN_STATUSES)[number];
const ACTIVE: readonly RunStatus[] = ['queued', 'running'];

const num = z.number().default(0);
const optNum = z.number().optional().nullable().transform((v) => v ?? undefined);
const optStr = z.string().optional().nullable().transform((v) => (v ? v : undefined));

export const runRowSchema = z.object({
  syncId: z.string(),
  syncType: z.enum(SYNC_TYPES),
  status: z.enum(RUN_STATUSES),
  trigger: optStr,
  objectTypes: z.string().default(JSON.stringify(SYNC_OBJECT_TYPES)),
  queuedAt: z.number(),
  updatedAt: z.number(),
  startedAt: optNum,
  finishedAt: optNum,
  invocations: num,
  lastInvocation: num,
  currentType: optStr,
  pages: num,
  records: num,
  changes: num,
  calls: num,
  searchCalls: num,
  rateLimitWaits: num,
  rateLimitWaitedMs: num,
  retries: num,
  activeMs: num,
  estimatedTotal: optNum,
  error: optStr,
  eventRowKey: optStr,
});
export type RunRow = z.infer<typeof runRowSchema>;

export function runObjectTypes(run: RunRow): SyncObjectType[] {
  try {
    const parsed = z.array(syncObjectTypeSchema).safeParse(JSON.parse(run.objectTypes));
    return parsed.success && parsed.data.length > 0 ? parsed.data : [...SYNC_OBJECT_TYPES];
  } catch {
    return [...SYNC_OBJECT_TYPES];
  }
}

/** A run counts as active while queued or running and touched within `staleAfterMs` (else it died). */
export function isActiveRun(run: RunRow | undefined, now: number, staleAfterMs: number): boolean {
  return run !== undefined && ACTIVE.includes(run.status) && now - run.updatedAt < staleAfterMs;
}

export const typeStateSchema = z.object({
  // Full sync of this type (list API), owned by `fullSyncId`.
  fullSyncId: optStr,
  fullPhase: z.enum(['live', 'archived', 'done']).optional().nullable().transform((v) => v ?? undefined),
  fullAfter: optStr,
  fullSeen: num,
  /** Live objects seen per counter key, JSON; becomes the counters when the full sync completes. */
  fullCounts: z.string().default('{}'),
  fullStartedAtMs: optNum,
  /** No record of this type was held when the full sync began: store without lookups or per-record events. */
  fullInitial: z.boolean().default(false),
  // Incremental sync of this type (search API), owned by `incSyncId`.
  incSyncId: optStr,
  incPhase: z.enum(['search', 'archived', 'done']).optional().nullable().transform((v) => v ?? undefined),
  incGte: optNum,
  incLte: optNum,
  incAfter: num,
  /** Set while many objects share one timestamp: page through them by id instead. */
  incTieTs: optNum,
  incTieAfterId: optStr,
  incMaxSeenMs: optNum,
  incArchivedAfter: optStr,
  incSweepArchived: z.boolean().default(false),
  /** Set when an incremental found no watermark and ran the list-based full path for this type. */
  incDelegatedFull: z.boolean().default(false),
  // Across syncs.
  watermarkMs: optNum,
  lastFullCompletedAtMs: optNum,
  lastIncrementalCompletedAtMs: optNum,
  lastArchivedSweepMs: optNum,
  // This type's share of the run's progress, for the sync `progressSyncId` only (see the header).
  progressSyncId: optStr,
  progressPages: num,
  progressRecords: num,
  progressChanges: num,
});
export type TypeState = z.infer<typeof typeStateSchema>;

export const syncEventRowSchema = z.object({
  syncId: z.string(),
  syncType: z.enum(SYNC_TYPES),
  trigger: optStr,
  status: z.enum(RUN_STATUSES),
  objectTypes: z.string().default('[]'),
  startedAt: z.number(),
  endedAt: optNum,
  pages: num,
  records: num,
  changes: num,
  calls: num,
  rateLimitWaits: num,
  rateLimitWaitedMs: num,
  invocations: num,
  error: optStr,
});
export type SyncEventRow = z.infer<typeof syncEventRowSchema>;

export interface PageProgress {
  pages: number;
  records: number;
  changes: number;
}

/** `st` with `d` added to its share of sync `syncId`'s progress (a share of an older sync starts again at 0). */
export function addProgress(st: TypeState, syncId: string, d: PageProgress): TypeState {
  const mine = st.progressSyncId === syncId;
  return {
    ...st,
    progressSyncId: syncId,
    progressPages: (mine ? st.progressPages : 0) + d.pages,
    progressRecords: (mine ? st.progressRecords : 0) + d.records,
    progressChanges: (mine ? st.progressChanges : 0) + d.changes,
  };
}

/**
 * The run's pages, records and changes: the sum of its types' shares. A run no type row has a share of
 * yet (just claimed, or written before the shares existed) keeps the figures its own row holds.
 */
function withTypeProgress(run: RunRow, types: readonly TypeState[]): RunRow {
  const shares = types.filter((st) => st.progressSyncId === run.syncId);
  if (shares.length === 0) return run;
  const sum = (f: (st: TypeState) => number) => shares.reduce((a, st) => a + f(st), 0);
  return { ...run, pages: sum((st) => st.progressPages), records: sum((st) => st.progressRecords), changes: sum((st) => st.progressChanges) };
}

const RUN_KEY = 'run';
/** Largest inverted timestamp: later syncs sort first in the partition. */
const MAX_TS = 9_999_999_999_999;

export function eventRowKey(startedAt: number, syncId: string): string {
  return `${String(MAX_TS - startedAt).padStart(13, '0')}-${syncId}`;
}

function clean(data: Record<string, unknown>): Stored {
  const out: Stored = {};
  for (const [k, v] of Object.entries(data)) {
    if (v === undefined) continue;
    out[k] = v as Cell;
  }
  return out;
}

export class SyncStateStore {
  private readonly state: TenantTable<Stored>;
  private readonly events: TenantTable<Stored>;

  constructor(storage: StorageClients) {
    this.state = new TenantTable<Stored>(storage.table(TABLES.syncState));
    this.events = new TenantTable<Stored>(storage.table(TABLES.syncEvents));
  }

  pk(t: TenantId, i: IntegrationId): PartitionKey {
    return partitionKey.integration(t, i);
  }

  /** The run row (its `etag` for `claimRun`), with pages, records and changes summed over its types. */
  async getRun(t: TenantId, i: IntegrationId): Promise<{ run: RunRow; etag: string } | undefined> {
    const [row, types] = await Promise.all([this.state.get(this.pk(t, i), RUN_KEY), Promise.all(SYNC_OBJECT_TYPES.map((type) => this.getType(t, i, type)))]);
    if (!row) return undefined;
    const parsed = runRowSchema.safeParse(row.data);
    return parsed.success ? { run: withTypeProgress(parsed.data, types), etag: row.etag } : undefined;
  }

  /**
   * Makes `run` the integration's current sync, only if the row is still what the caller read (`etag`),
   * or absent (`etag` undefined). Losing the race returns false: someone else started a sync.
   */
  async claimRun(t: TenantId, i: IntegrationId, run: RunRow, etag: string | undefined): Promise<boolean> {
    try {
      if (etag === undefined) await this.state.create(this.pk(t, i), RUN_KEY, clean(run));
      else await this.state.update(this.pk(t, i), RUN_KEY, clean(run), etag, 'Replace');
      return true;
    } catch (err) {
      if (err instanceof ConflictError || err instanceof PreconditionFailedError) return false;
      throw err;
    }
  }

  async putRun(t: TenantId, i: IntegrationId, run: RunRow): Promise<void> {
    await this.state.upsert(this.pk(t, i), RUN_KEY, clean(run), 'Replace');
  }

  async getType(t: TenantId, i: IntegrationId, type: SyncObjectType): Promise<TypeState> {
    const row = await this.state.get(this.pk(t, i), type);
    const parsed = typeStateSchema.safeParse(row?.data ?? {});
    return parsed.success ? parsed.data : typeStateSchema.parse({});
  }

  /**
   * The checkpoint of one type (with its share of the progress), and the run row when given, written
   * together (one entity-group transaction). `run` is read here, before the first await: the row written
   * is the run as it is at the call.
   */
  async checkpoint(t: TenantId, i: IntegrationId, type: SyncObjectType, state: TypeState, run?: RunRow): Promise<void> {
    await this.state.upsertMany(this.pk(t, i), [{ rowKey: type, data: clean(state) }, ...(run ? [{ rowKey: RUN_KEY, data: clean(run) }] : [])], 'Replace');
  }

  async putEvent(t: TenantId, i: IntegrationId, rowKey: string, row: SyncEventRow): Promise<void> {
    await this.events.upsert(this.pk(t, i), rowKey, clean(row), 'Replace');
  }

  /** The newest `limit` sync events (RowKeys are inverted timestamps, so the first rows are the latest). */
  async recentEvents(t: TenantId, i: IntegrationId, limit: number): Promise<Array<SyncEventRow & { rowKey: string }>> {
    const page = await this.events.page(this.pk(t, i), { pageSize: limit });
    const out: Array<SyncEventRow & { rowKey: string }> = [];
    for (const r of page.rows) {
      const parsed = syncEventRowSchema.safeParse(r.data);
      if (parsed.success) out.push({ ...parsed.data, rowKey: r.rowKey });
    }
    return out.slice(0, limit);
  }
}
