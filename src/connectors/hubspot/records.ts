import { odata, type TransactionAction } from '@azure/data-tables';
import { z } from 'zod';
import { ConflictError, PreconditionFailedError } from '../../platform/errors';
import {
  escapeKeyPart,
  partitionKey,
  TABLES,
  TenantTable,
  unescapeKeyPart,
  type IntegrationId,
  type PartitionKey,
  type StorageClients,
  type TenantId,
} from '../../storage';
import type { HubSpotObject, PipelineLabels } from './sync/hubspotApi';
import type { SyncObjectType } from './sync/messages';

const COUNTER_WRITE_ATTEMPTS = 30;

/**
 * The synced store: one Records row per HubSpot object (PartitionKey `partitionKey.records(t, i, type)`,
 * RowKey the escaped HubSpot id), with its synced properties, associations, ticket pipeline and stage
 * labels, and `lastPushedVersion` for echo suppression. Rows of deleted (archived) objects stay as
 * tombstones so a late event cannot bring them back and history is kept. Per-type counters live in
 * the same partition (RowKey `~counts`), so `total_count` is one point read, and a counter moves in the
 * same entity-group transaction as the rows that move it: no crash can store a row and lose its count.
 */

/** Table Storage holds at most 64 KiB per string property (UTF-16: 32 K characters); keep headroom. */
const CHUNK_CHARS = 30_000;
const MAX_PROPS_CHUNKS = 12;
const MAX_ASSOC_CHUNKS = 4;
/** Point reads in flight per lookup. */
const LOOKUP_CONCURRENCY = 16;

export interface RecordRow extends Record<string, string | number | boolean | Date | null | undefined> {
  hubspotId: string;
  /** `props`, `props1`, … hold the properties' JSON split into chunks; `propsChunks` says how many count. */
  props?: string;
  propsChunks?: number;
  /** Property names whose values were shortened to fit a row (very long ticket bodies). */
  truncated?: string;
  assoc?: string;
  assocChunks?: number;
  lastModifiedMs?: number;
  /**
   * `lastModifiedMs` zero-padded: Table Storage stores large JS numbers as doubles, and comparing them to
   * integer literals is type-sensitive; a fixed-width string compares the same everywhere.
   */
  modifiedKey?: string;
  /** The HubSpot version of the row: its last-modified time as a string. */
  version?: string;
  createdAt?: string;
  archived?: boolean;
  archivedAtMs?: number;
  syncedAt?: number;
  syncId?: string;
  // Filterable columns (tickets): ids as HubSpot has them, priority upper-cased.
  stage?: string;
  priority?: string;
  pipeline?: string;
  stageLabel?: string;
  stageState?: string;
  pipelineLabel?: string;
  /**
   * The version of our own last write to HubSpot (two-way). A webhook or sync that finds exactly this
   * version is the echo of our write and produces no engine event. Written only by `setLastPushedVersion`.
   */
  lastPushedVersion?: string;
}

/** What a stored row says, parsed. */
export interface StoredRecord {
  id: string;
  objectType: SyncObjectType;
  properties: Record<string, string | null>;
  associations: Partial<Record<SyncObjectType, string[]>>;
  lastModifiedMs: number;
  version: string;
  createdAt?: string;
  archived: boolean;
  archivedAtMs?: number;
  syncedAt?: number;
  pipelineLabel?: string;
  stageLabel?: string;
  stageState?: string;
  truncated?: string[];
  lastPushedVersion?: string;
}

/** The little a change check needs of an existing row. */
export interface RecordVersion {
  version: string;
  lastModifiedMs: number;
  archived: boolean;
  lastPushedVersion?: string;
  countKey: string;
}

export type ChangeKind = 'created' | 'updated' | 'deleted';

export interface RecordChange {
  id: string;
  kind: ChangeKind;
  /** Our own write coming back: stored, but not announced to the engine. */
  echo: boolean;
  object: HubSpotObject;
}

/** What storing a batch would do: the rows to write, the changes, how the counters move. */
export interface RecordPlan {
  /** `countDelta` of a row: how it moves the counters (absent: not at all). */
  rows: Array<{ rowKey: string; data: Partial<RecordRow>; countDelta?: Record<string, number> }>;
  changes: RecordChange[];
  stale: number;
  unchanged: number;
  countDelta: Record<string, number>;
}

/** Result of applying a batch of objects: what changed and how the counters move. */
export interface ApplyResult {
  written: number;
  changes: RecordChange[];
  /** Older than what we hold (a webhook got there first): not written. */
  stale: number;
  unchanged: number;
  countDelta: Record<string, number>;
}

export function recordVersion(lastModifiedMs: number): string {
  return String(lastModifiedMs);
}

/** Counter key of a live object: tickets count per stage and priority, so those filters stay O(1). */
export function countKeyOf(type: SyncObjectType, props: Record<string, string | null | undefined>): string {
  if (type !== 'tickets') return '';
  return `${props['hs_pipeline_stage'] ?? ''}|${(props['hs_ticket_priority'] ?? '').toUpperCase()}`;
}

/**
 * RowKey of a type's counters in its Records partition. Escaped HubSpot ids are digits, so it names no
 * record, and the row has no `archived` column, so no ticket query (they all filter on it) returns it.
 */
export const RECORD_COUNTS_ROW_KEY = '~counts';

const countRowSchema = z.object({ byKey: z.string().default('{}') });
const countMapSchema = z.record(z.string(), z.number().int());

type CountRow = { byKey: string } & Record<string, string | number | boolean | Date | null | undefined>;

export interface TicketQuery {
  limit: number;
  after?: string;
  stage?: string;
  priority?: string;
  modifiedSinceMs?: number;
}

export interface TicketPage {
  tickets: StoredRecord[];
  nextAfter?: string;
  totalCount: number;
  /** False when `total_count` came from a scan that stopped at its cap. */
  totalExact: boolean;
}

/** Counting by scan (only with `modified_since`) stops here: the answer is then a lower bound. */
export const COUNT_SCAN_CAP = 10_000;

export class HubSpotRecordStore {
  private readonly records: TenantTable<RecordRow>;
  private readonly countRows: TenantTable<CountRow>;
  /** Where the counters were kept before they moved into the Records partitions (SyncState `count.<type>`). */
  private readonly legacyCountRows: TenantTable<CountRow>;

  constructor(storage: StorageClients) {
    this.records = new TenantTable<RecordRow>(storage.table(TABLES.records));
    this.countRows = new TenantTable<CountRow>(storage.table(TABLES.records));
    this.legacyCountRows = new TenantTable<CountRow>(storage.table(TABLES.syncState));
  }

  private pk(t: TenantId, i: IntegrationId, type: SyncObjectType): PartitionKey {
    return partitionKey.records(t, i, type);
  }

  async get(t: TenantId, i: IntegrationId, type: SyncObjectType, id: string): Promise<StoredRecord | undefined> {
    const row = await this.records.get(this.pk(t, i, type), escapeKeyPart(id));
    return row ? parseRow(type, row.rowKey, row.data) : undefined;
  }

  /**
   * Versions of the given ids that we hold (missing ids are absent from the map). Point reads, in
   * parallel: a filter of ORed RowKeys is a partition scan in Table Storage (and a table scan in
   * Azurite), while a point read costs the same however large the partition grows.
   */
  async versions(t: TenantId, i: IntegrationId, type: SyncObjectType, ids: string[]): Promise<Map<string, RecordVersion>> {
    const pk = this.pk(t, i, type);
    const unique = [...new Set(ids)];
    const out = new Map<string, RecordVersion>();
    let next = 0;
    const worker = async () => {
      while (next < unique.length) {
        const id = unique[next++] as string;
        const row = await this.records.get(pk, escapeKeyPart(id));
        if (!row) continue;
        const d = row.data;
        out.set(id, {
          version: d.version ?? '',
          lastModifiedMs: d.lastModifiedMs ?? 0,
          archived: d.archived === true,
          ...(d.lastPushedVersion ? { lastPushedVersion: d.lastPushedVersion } : {}),
          countKey: type === 'tickets' ? `${d.stage ?? ''}|${d.priority ?? ''}` : '',
        });
      }
    };
    await Promise.all(Array.from({ length: Math.min(LOOKUP_CONCURRENCY, unique.length) }, worker));
    return out;
  }

  /**
   * Works out what storing live objects would change, without writing: the caller announces the changes
   * first, then `commit`s (announce-then-store means a crash re-finds the change instead of losing it).
   * With `assumeNew` (an initial load into an empty store) nothing is looked up. An object older than the
   * stored row is skipped: a webhook may have written a newer version after the page was read.
   */
  async plan(
    t: TenantId,
    i: IntegrationId,
    type: SyncObjectType,
    objects: HubSpotObject[],
    opts: { labels?: PipelineLabels; syncId?: string; assumeNew?: boolean; now?: number; known?: ReadonlyMap<string, RecordVersion> } = {},
  ): Promise<RecordPlan> {
    const existing = opts.assumeNew ? new Map<string, RecordVersion>() : await this.versions(t, i, type, objects.map((o) => o.id));
    if (opts.known) overlayVersions(existing, opts.known);
    const plan: RecordPlan = { rows: [], changes: [], stale: 0, unchanged: 0, countDelta: {} };
    const now = opts.now ?? Date.now();
    const bump = (row: RecordPlan['rows'][number], key: string, d: number) => {
      plan.countDelta[key] = (plan.countDelta[key] ?? 0) + d;
      row.countDelta = { ...row.countDelta, [key]: (row.countDelta?.[key] ?? 0) + d };
    };
    for (const o of objects) {
      const found = existing.get(o.id);
      // A row with no version is only a `lastPushedVersion` stub (our write, not yet synced back).
      const prev = found && found.version !== '' ? found : undefined;
      const version = recordVersion(o.lastModifiedMs);
      if (prev && !prev.archived && o.lastModifiedMs < prev.lastModifiedMs) {
        plan.stale++;
        continue;
      }
      const row: RecordPlan['rows'][number] = { rowKey: escapeKeyPart(o.id), data: toRow(type, o, { ...opts, now }) };
      plan.rows.push(row);
      const newKey = countKeyOf(type, o.properties);
      if (!prev || prev.archived) {
        plan.changes.push({ id: o.id, kind: 'created', echo: found?.lastPushedVersion === version, object: o });
        bump(row, newKey, 1);
      } else {
        if (prev.version !== version) plan.changes.push({ id: o.id, kind: 'updated', echo: prev.lastPushedVersion === version, object: o });
        else plan.unchanged++;
        if (prev.countKey !== newKey) {
          bump(row, prev.countKey, -1);
          bump(row, newKey, 1);
        }
      }
    }
    return plan;
  }

  /**
   * Works out the tombstones for objects HubSpot lists as archived. Only objects we hold live are touched,
   * and only when the archive is not older than the version we hold (an object restored and changed
   * since stays live). Deletion is never inferred from absence: a failed or partial run cannot delete.
   */
  async planArchive(t: TenantId, i: IntegrationId, type: SyncObjectType, objects: HubSpotObject[], opts: { syncId?: string; now?: number } = {}): Promise<RecordPlan> {
    const existing = await this.versions(t, i, type, objects.map((o) => o.id));
    const plan: RecordPlan = { rows: [], changes: [], stale: 0, unchanged: 0, countDelta: {} };
    const now = opts.now ?? Date.now();
    for (const o of objects) {
      const prev = existing.get(o.id);
      if (!prev || prev.archived || prev.version === '') {
        plan.unchanged++;
        continue;
      }
      const archivedAt = o.archivedAtMs ?? o.lastModifiedMs;
      if (archivedAt < prev.lastModifiedMs) {
        plan.stale++;
        continue;
      }
      plan.rows.push({
        rowKey: escapeKeyPart(o.id),
        data: { archived: true, archivedAtMs: archivedAt, syncedAt: now, ...(opts.syncId ? { syncId: opts.syncId } : {}) },
        countDelta: { [prev.countKey]: -1 },
      });
      plan.changes.push({ id: o.id, kind: 'deleted', echo: false, object: o });
      plan.countDelta[prev.countKey] = (plan.countDelta[prev.countKey] ?? 0) - 1;
    }
    return plan;
  }

  /**
   * Writes a plan (Merge: columns the sync does not own, like `lastPushedVersion`, are kept). With
   * `counts`, the counters move by the plan's delta in the same transactions as the rows that move them:
   * a retry after a crash finds the rows stored and unchanged, so a count lost between the two writes
   * (the change stored, the count never moved) cannot happen. Without, the counters are left alone (a full
   * sync replaces them once it has seen every object).
   */
  async commit(t: TenantId, i: IntegrationId, type: SyncObjectType, plan: RecordPlan, opts: { counts?: boolean } = {}): Promise<ApplyResult> {
    const pk = this.pk(t, i, type);
    const countDelta = Object.fromEntries(Object.entries(plan.countDelta).filter(([, v]) => v !== 0));
    // Per row, not in sum: two rows that cancel out may still land in different transactions.
    if (opts.counts && plan.rows.some((r) => Object.values(r.countDelta ?? {}).some((v) => v !== 0))) {
      const deltaOf = new Map(plan.rows.map((r) => [r.rowKey, r.countDelta]));
      await this.records.upsertManyWithCompanion(pk, plan.rows, 'Merge', async (rowKeys) => {
        const delta: Record<string, number> = {};
        for (const rk of rowKeys) for (const [k, v] of Object.entries(deltaOf.get(rk) ?? {})) delta[k] = (delta[k] ?? 0) + v;
        return this.counterWrite(t, i, type, delta);
      });
    } else {
      await this.records.upsertMany(pk, plan.rows, 'Merge');
    }
    return { written: plan.rows.length, changes: plan.changes, stale: plan.stale, unchanged: plan.unchanged, countDelta };
  }

  /** `plan` then `commit`, for writers that announce nothing (or announce afterwards). */
  async apply(
    t: TenantId,
    i: IntegrationId,
    type: SyncObjectType,
    objects: HubSpotObject[],
    opts: { labels?: PipelineLabels; syncId?: string; assumeNew?: boolean; now?: number } = {},
  ): Promise<ApplyResult> {
    return this.commit(t, i, type, await this.plan(t, i, type, objects, opts));
  }

  /** Records the version our own write produced, so its webhook or sync echo is recognised. */
  async setLastPushedVersion(t: TenantId, i: IntegrationId, type: SyncObjectType, id: string, version: string): Promise<void> {
    await this.records.upsert(this.pk(t, i, type), escapeKeyPart(id), { hubspotId: id, lastPushedVersion: version }, 'Merge');
  }

  /** True when `version` is exactly what we last pushed for this object. */
  async isEcho(t: TenantId, i: IntegrationId, type: SyncObjectType, id: string, version: string): Promise<boolean> {
    const v = (await this.versions(t, i, type, [id])).get(id);
    return v?.lastPushedVersion === version;
  }

  // ---- counters ------------------------------------------------------------------------------------

  async counts(t: TenantId, i: IntegrationId, type: SyncObjectType): Promise<Record<string, number>> {
    const row = await this.countRows.get(this.pk(t, i, type), RECORD_COUNTS_ROW_KEY);
    return row ? parseCounts(row.data) : this.legacyCounts(t, i, type);
  }

  /** Replaces the counters (a completed full sync knows every live object). */
  async setCounts(t: TenantId, i: IntegrationId, type: SyncObjectType, byKey: Record<string, number>): Promise<void> {
    await this.countRows.upsert(this.pk(t, i, type), RECORD_COUNTS_ROW_KEY, { byKey: JSON.stringify(dropZero(byKey)) }, 'Replace');
  }

  /**
   * Moves the counters by `delta` alone, conditional on the row's ETag so concurrent writers do not lose
   * updates. Writers of records move them with `commit(…, { counts: true })` instead, in the rows' own
   * transactions.
   */
  async adjustCounts(t: TenantId, i: IntegrationId, type: SyncObjectType, delta: Record<string, number>): Promise<void> {
    if (Object.values(delta).every((v) => v === 0)) return;
    const pk = this.pk(t, i, type);
    for (let attempt = 0; attempt < COUNTER_WRITE_ATTEMPTS; attempt++) {
      // Jittered backoff after a lost race, so a crowd of writers spreads out instead of colliding again.
      if (attempt > 0) await new Promise((r) => setTimeout(r, Math.random() * Math.min(200, 5 * 2 ** attempt)));
      const { etag, data } = await this.movedCounts(t, i, type, delta);
      try {
        if (etag !== undefined) await this.countRows.update(pk, RECORD_COUNTS_ROW_KEY, data, etag, 'Replace');
        else await this.countRows.create(pk, RECORD_COUNTS_ROW_KEY, data);
        return;
      } catch (err) {
        if (err instanceof PreconditionFailedError || err instanceof ConflictError) continue;
        throw err;
      }
    }
    throw new PreconditionFailedError(`record counters kept changing; gave up after ${COUNTER_WRITE_ATTEMPTS} attempts`);
  }

  /** The counters' write for a transaction of rows that move them by `delta` (none when they do not). */
  private async counterWrite(t: TenantId, i: IntegrationId, type: SyncObjectType, delta: Record<string, number>): Promise<TransactionAction | undefined> {
    if (Object.values(delta).every((v) => v === 0)) return undefined;
    const { etag, data } = await this.movedCounts(t, i, type, delta);
    const entity = { ...data, partitionKey: this.pk(t, i, type), rowKey: RECORD_COUNTS_ROW_KEY };
    return etag !== undefined ? ['update', entity, 'Replace', { etag }] : ['create', entity];
  }

  /** The counters as they are now moved by `delta`, and the ETag they were read with (none: no row yet). */
  private async movedCounts(t: TenantId, i: IntegrationId, type: SyncObjectType, delta: Record<string, number>): Promise<{ etag: string | undefined; data: CountRow }> {
    const row = await this.countRows.get(this.pk(t, i, type), RECORD_COUNTS_ROW_KEY);
    const next = row ? parseCounts(row.data) : await this.legacyCounts(t, i, type);
    for (const [k, v] of Object.entries(delta)) next[k] = Math.max(0, (next[k] ?? 0) + v);
    return { etag: row?.etag, data: { byKey: JSON.stringify(dropZero(next)) } };
  }

  /** The counters as SyncState held them before they moved into the Records partition: the new row starts from them. */
  private async legacyCounts(t: TenantId, i: IntegrationId, type: SyncObjectType): Promise<Record<string, number>> {
    const row = await this.legacyCountRows.get(partitionKey.integration(t, i), legacyCountRowKey(type));
    return row ? parseCounts(row.data) : {};
  }

  // ---- reading tickets (the tickets endpoint) -------------------------------------------------------

  /**
   * A page of live tickets in id (RowKey) order. `after` is the last RowKey of the previous page, so paging
   * is stable while the sync writes. `total_count` comes from the counters unless `modifiedSinceMs` is set.
   */
  async listTickets(t: TenantId, i: IntegrationId, q: TicketQuery): Promise<TicketPage> {
    const pk = this.pk(t, i, 'tickets');
    const base = ticketFilter(q);
    const filter = q.after ? `${base} and ${odata`RowKey gt ${q.after}`}` : base;
    const rows: Array<{ rowKey: string; data: RecordRow }> = [];
    let token: string | undefined;
    // One row beyond the page says whether there is a next one. A filtered query may come back short
    // with a continuation; keep reading until the page is full or the partition ends.
    do {
      const page = await this.records.page(pk, { filter, pageSize: q.limit + 1 - rows.length, ...(token ? { continuationToken: token } : {}) });
      rows.push(...page.rows);
      token = page.continuationToken;
    } while (token && rows.length <= q.limit);
    const more = rows.length > q.limit;
    const tickets = rows.slice(0, q.limit).map((r) => parseRow('tickets', r.rowKey, r.data));
    const last = tickets[tickets.length - 1];
    const { total, exact } = await this.countTickets(t, i, q, base);
    return { tickets, ...(more && last ? { nextAfter: escapeKeyPart(last.id) } : {}), totalCount: total, totalExact: exact };
  }

  private async countTickets(t: TenantId, i: IntegrationId, q: TicketQuery, filter: string): Promise<{ total: number; exact: boolean }> {
    if (q.modifiedSinceMs === undefined) {
      const byKey = await this.counts(t, i, 'tickets');
      let total = 0;
      for (const [key, n] of Object.entries(byKey)) {
        const [stage, priority] = splitCountKey(key);
        if (q.stage !== undefined && stage !== q.stage) continue;
        if (q.priority !== undefined && priority !== q.priority.toUpperCase()) continue;
        total += n;
      }
      return { total, exact: true };
    }
    let total = 0;
    let token: string | undefined;
    do {
      const page = await this.records.page(this.pk(t, i, 'tickets'), { filter, pageSize: 1000, select: ['RowKey'], ...(token ? { continuationToken: token } : {}) });
      total += page.rows.length;
      token = page.continuationToken;
    } while (token && total < COUNT_SCAN_CAP);
    return token ? { total, exact: false } : { total, exact: true };
  }
}

/**
 * Lays versions the caller has planned but may not have stored yet (a sync page still being committed)
 * over what storage returned: the newer of the two by last-modified wins, and `lastPushedVersion` stays
 * storage's (only the two-way writer sets it).
 */
function overlayVersions(existing: Map<string, RecordVersion>, known: ReadonlyMap<string, RecordVersion>): void {
  for (const [id, k] of known) {
    const found = existing.get(id);
    if (found && found.version !== '' && !found.archived && found.lastModifiedMs > k.lastModifiedMs) continue;
    const pushed = found ? found.lastPushedVersion : k.lastPushedVersion;
    const { lastPushedVersion: _ignored, ...rest } = k;
    existing.set(id, { ...rest, ...(pushed !== undefined ? { lastPushedVersion: pushed } : {}) });
  }
}

/** The version a planned row will leave in storage, as `versions` would read it back. */
export function plannedVersion(type: SyncObjectType, data: Partial<RecordRow>): RecordVersion | undefined {
  if (data.version === undefined || data.hubspotId === undefined) return undefined;
  return {
    version: data.version,
    lastModifiedMs: data.lastModifiedMs ?? 0,
    archived: data.archived === true,
    countKey: type === 'tickets' ? `${data.stage ?? ''}|${data.priority ?? ''}` : '',
  };
}

function ticketFilter(q: TicketQuery): string {
  const parts = [odata`archived eq ${false}`];
  if (q.stage !== undefined) parts.push(odata`stage eq ${q.stage}`);
  if (q.priority !== undefined) parts.push(odata`priority eq ${q.priority.toUpperCase()}`);
  if (q.modifiedSinceMs !== undefined) parts.push(odata`modifiedKey ge ${modifiedKey(q.modifiedSinceMs)}`);
  return parts.join(' and ');
}

function modifiedKey(ms: number): string {
  return String(Math.max(0, Math.trunc(ms))).padStart(15, '0');
}

function legacyCountRowKey(type: SyncObjectType): string {
  return `count.${type}`;
}

function splitCountKey(key: string): [string, string] {
  const at = key.lastIndexOf('|');
  return at < 0 ? [key, ''] : [key.slice(0, at), key.slice(at + 1)];
}

function parseCounts(data: unknown): Record<string, number> {
  const row = countRowSchema.safeParse(data ?? {});
  if (!row.success) return {};
  try {
    const map = countMapSchema.safeParse(JSON.parse(row.data.byKey));
    return map.success ? map.data : {};
  } catch {
    return {};
  }
}

function dropZero(m: Record<string, number>): Record<string, number> {
  return Object.fromEntries(Object.entries(m).filter(([, v]) => v > 0));
}

function toRow(type: SyncObjectType, o: HubSpotObject, opts: { labels?: PipelineLabels; syncId?: string; now: number }): Partial<RecordRow> {
  const { json, truncated } = fitProperties(o.properties);
  const props = chunk(json, 'props', MAX_PROPS_CHUNKS);
  const row: Partial<RecordRow> = {
    hubspotId: o.id,
    ...props.columns,
    propsChunks: props.count,
    truncated: truncated.join(','),
    lastModifiedMs: o.lastModifiedMs,
    modifiedKey: modifiedKey(o.lastModifiedMs),
    version: recordVersion(o.lastModifiedMs),
    archived: false,
    syncedAt: opts.now,
    ...(o.createdAt ? { createdAt: o.createdAt } : {}),
    ...(opts.syncId ? { syncId: opts.syncId } : {}),
  };
  if (o.associations) {
    const a = chunk(JSON.stringify(o.associations), 'assoc', MAX_ASSOC_CHUNKS);
    Object.assign(row, a.columns, { assocChunks: a.count });
  }
  if (type === 'tickets') {
    const p = o.properties;
    const stage = p['hs_pipeline_stage'] ?? '';
    const pipeline = p['hs_pipeline'] ?? '';
    const stageInfo = opts.labels?.stage(pipeline, stage);
    Object.assign(row, {
      stage,
      pipeline,
      priority: (p['hs_ticket_priority'] ?? '').toUpperCase(),
      pipelineLabel: opts.labels?.pipeline(pipeline || undefined) ?? '',
      stageLabel: stageInfo?.label ?? '',
      stageState: stageInfo?.state ?? '',
    });
  }
  return row;
}

/** Shortens the longest values until the JSON fits the row; names what was cut. */
function fitProperties(props: Record<string, string | null>): { json: string; truncated: string[] } {
  let json = JSON.stringify(props);
  const budget = CHUNK_CHARS * MAX_PROPS_CHUNKS;
  if (json.length <= budget) return { json, truncated: [] };
  const copy = { ...props };
  const truncated: string[] = [];
  while (json.length > budget) {
    const [longest] = Object.entries(copy).sort((a, b) => (b[1]?.length ?? 0) - (a[1]?.length ?? 0));
    if (!longest || !longest[1]) break;
    const over = json.length - budget;
    copy[longest[0]] = longest[1].slice(0, Math.max(0, longest[1].length - over - 64));
    if (!truncated.includes(longest[0])) truncated.push(longest[0]);
    json = JSON.stringify(copy);
  }
  return { json, truncated };
}

function chunk(text: string, name: string, max: number): { columns: Record<string, string>; count: number } {
  const columns: Record<string, string> = {};
  let count = 0;
  for (let at = 0; at < text.length || count === 0; at += CHUNK_CHARS) {
    if (count === max) break;
    columns[count === 0 ? name : `${name}${count}`] = text.slice(at, at + CHUNK_CHARS);
    count++;
  }
  return { columns, count };
}

function unchunk(data: Record<string, unknown>, name: string, count: number | undefined): string | undefined {
  const n = count ?? 1;
  let out = '';
  for (let k = 0; k < n; k++) {
    const part = data[k === 0 ? name : `${name}${k}`];
    if (typeof part !== 'string') return k === 0 ? undefined : out;
    out += part;
  }
  return out;
}

const propsSchema = z.record(z.string(), z.string().nullable());
const assocSchema = z.record(z.string(), z.array(z.string()));

function parseJson<T>(text: string | undefined, schema: z.ZodType<T>, fallback: T): T {
  if (!text) return fallback;
  try {
    const r = schema.safeParse(JSON.parse(text));
    return r.success ? r.data : fallback;
  } catch {
    return fallback;
  }
}

function parseRow(type: SyncObjectType, rk: string, d: RecordRow): StoredRecord {
  const data = d as Record<string, unknown>;
  const rec: StoredRecord = {
    id: d.hubspotId ?? unescapeKeyPart(rk),
    objectType: type,
    properties: parseJson(unchunk(data, 'props', d.propsChunks), propsSchema, {}),
    associations: parseJson(unchunk(data, 'assoc', d.assocChunks), assocSchema, {}) as Partial<Record<SyncObjectType, string[]>>,
    lastModifiedMs: d.lastModifiedMs ?? 0,
    version: d.version ?? '',
    archived: d.archived === true,
  };
  if (d.createdAt) rec.createdAt = d.createdAt;
  if (d.archivedAtMs !== undefined && d.archivedAtMs !== null) rec.archivedAtMs = d.archivedAtMs;
  if (d.syncedAt !== undefined && d.syncedAt !== null) rec.syncedAt = d.syncedAt;
  if (d.pipelineLabel) rec.pipelineLabel = d.pipelineLabel;
  if (d.stageLabel) rec.stageLabel = d.stageLabel;
  if (d.stageState) rec.stageState = d.stageState;
  if (d.truncated) rec.truncated = d.truncated.split(',');
  if (d.lastPushedVersion) rec.lastPushedVersion = d.lastPushedVersion;
  return rec;
}
