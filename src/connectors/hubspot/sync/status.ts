import type { IntegrationId, StorageClients, TenantId } from '../../../storage';
import { HubSpotRecordStore } from '../records';
import { DEFAULT_SYNC_OPTIONS } from './engine';
import { SYNC_OBJECT_TYPES, type SyncObjectType } from './messages';
import { isActiveRun, runObjectTypes, SyncStateStore, type RunRow, type SyncEventRow } from './state';

const iso = (ms: number | undefined) => (ms === undefined ? null : new Date(ms).toISOString());

export interface SyncProgressView {
  sync_id: string;
  sync_type: RunRow['syncType'];
  /** queued, running, completed, failed, skipped; `stalled` when a queued or running sync stopped moving. */
  state: RunRow['status'] | 'stalled';
  trigger: string | null;
  object_types: SyncObjectType[];
  current_object_type: string | null;
  queued_at: string | null;
  started_at: string | null;
  updated_at: string | null;
  finished_at: string | null;
  invocations: number;
  pages: number;
  records: number;
  changes: number;
  hubspot_calls: number;
  search_calls: number;
  rate_limit_waits: number;
  rate_limit_waited_ms: number;
  retries: number;
  estimated_total: number | null;
  records_per_second: number | null;
  eta_seconds: number | null;
  error: string | null;
}

export function progressView(run: RunRow, now: number, staleAfterMs = DEFAULT_SYNC_OPTIONS.staleAfterMs): SyncProgressView {
  const active = run.status === 'queued' || run.status === 'running';
  const rate = run.activeMs > 0 && run.records > 0 ? run.records / (run.activeMs / 1000) : undefined;
  const remaining = run.estimatedTotal !== undefined ? Math.max(0, run.estimatedTotal - run.records) : undefined;
  return {
    sync_id: run.syncId,
    sync_type: run.syncType,
    state: active && !isActiveRun(run, now, staleAfterMs) ? 'stalled' : run.status,
    trigger: run.trigger ?? null,
    object_types: runObjectTypes(run),
    current_object_type: active ? (run.currentType ?? null) : null,
    queued_at: iso(run.queuedAt),
    started_at: iso(run.startedAt),
    updated_at: iso(run.updatedAt),
    finished_at: iso(run.finishedAt),
    invocations: run.invocations,
    pages: run.pages,
    records: run.records,
    changes: run.changes,
    hubspot_calls: run.calls,
    search_calls: run.searchCalls,
    rate_limit_waits: run.rateLimitWaits,
    rate_limit_waited_ms: Math.round(run.rateLimitWaitedMs),
    retries: run.retries,
    estimated_total: run.estimatedTotal ?? null,
    records_per_second: rate === undefined ? null : Math.round(rate * 10) / 10,
    // An estimate from the objects HubSpot counted at the start and the pace so far; 0 once finished.
    eta_seconds: !active ? 0 : rate !== undefined && remaining !== undefined ? Math.ceil(remaining / rate) : null,
    error: run.error ?? null,
  };
}

export function eventView(e: SyncEventRow & { rowKey: string }) {
  return {
    sync_id: e.syncId,
    sync_type: e.syncType,
    trigger: e.trigger ?? null,
    status: e.status,
    started_at: iso(e.startedAt),
    ended_at: iso(e.endedAt),
    duration_ms: e.endedAt !== undefined ? e.endedAt - e.startedAt : null,
    pages: e.pages,
    records: e.records,
    changes: e.changes,
    hubspot_calls: e.calls,
    rate_limit_waits: e.rateLimitWaits,
    rate_limit_waited_ms: Math.round(e.rateLimitWaitedMs),
    invocations: e.invocations,
    error: e.error ?? null,
  };
}

/** What `GET /api/hubspot/sync/{tenant}/{integration}` answers: the current sync, per-type state, history. */
export async function syncStatus(storage: StorageClients, t: TenantId, i: IntegrationId, opts: { events: number; now?: number }) {
  const state = new SyncStateStore(storage);
  const records = new HubSpotRecordStore(storage);
  const now = opts.now ?? Date.now();
  const [current, events, types] = await Promise.all([
    state.getRun(t, i),
    state.recentEvents(t, i, opts.events),
    Promise.all(
      SYNC_OBJECT_TYPES.map(async (type) => {
        const [st, counts] = await Promise.all([state.getType(t, i, type), records.counts(t, i, type)]);
        return [
          type,
          {
            record_count: Object.values(counts).reduce((a, b) => a + b, 0),
            watermark: iso(st.watermarkMs),
            last_full_sync_at: iso(st.lastFullCompletedAtMs),
            last_incremental_sync_at: iso(st.lastIncrementalCompletedAtMs),
            last_archived_sweep_at: iso(st.lastArchivedSweepMs),
          },
        ] as const;
      }),
    ),
  ]);
  return {
    sync: current ? progressView(current.run, now) : null,
    objects: Object.fromEntries(types),
    events: events.map(eventView),
  };
}
