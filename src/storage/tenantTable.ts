import { RestError, type TableClient, type TableEntityResult, type TransactionAction, odata } from '@azure/data-tables';
import { ConflictError, NotFoundError, PreconditionFailedError } from '../platform/errors';
import type { PartitionKey } from './keys';

/** What a row holds besides its keys. Values are what Table Storage can store. */
export type RowData = Record<string, string | number | boolean | Date | null | undefined>;

export interface Row<T extends RowData> {
  partitionKey: PartitionKey;
  rowKey: string;
  etag: string;
  timestamp?: string;
  data: T;
}

export interface Page<T extends RowData> {
  rows: Row<T>[];
  continuationToken?: string;
}

const MAX_BATCH = 100;
/** "No more than 15 discrete comparisons are permitted within a $filter string" (Table service); one is the PartitionKey's. */
const FILTER_KEYS = 14;
// The service caps a transaction at 4 MiB; leave headroom for the multipart framing.
const MAX_BATCH_BYTES = 3.5 * 1024 * 1024;

/**
 * A table whose every read and write names a `PartitionKey`, which only tenant-scoped builders make.
 * Conditional writes surface as `PreconditionFailedError` (stale ETag) and `ConflictError` (exists).
 */
export class TenantTable<T extends RowData> {
  constructor(private readonly client: TableClient) {}

  get name(): string {
    return this.client.tableName;
  }

  async get(pk: PartitionKey, rk: string): Promise<Row<T> | undefined> {
    try {
      const e = await this.client.getEntity<T>(pk, rk);
      return toRow<T>(e);
    } catch (err) {
      if (err instanceof RestError && err.statusCode === 404) return undefined;
      throw err;
    }
  }

  /**
   * One page of a partition, optionally narrowed by an extra OData filter built with `odata`. `select`
   * names the only columns to return (a count or a version check need not move whole rows).
   */
  async page(pk: PartitionKey, opts: { filter?: string; pageSize?: number; continuationToken?: string; select?: string[] } = {}): Promise<Page<T>> {
    const filter = odata`PartitionKey eq ${pk}` + (opts.filter ? ` and (${opts.filter})` : '');
    const iter = this.client
      .listEntities<T>({ queryOptions: { filter, ...(opts.select ? { select: opts.select } : {}) } })
      .byPage({ maxPageSize: opts.pageSize ?? 100, ...(opts.continuationToken ? { continuationToken: opts.continuationToken } : {}) });
    const next = await iter.next();
    if (next.done || !next.value) return { rows: [] };
    const page = next.value;
    return {
      rows: page.map((e) => toRow<T>(e)),
      ...(page.continuationToken ? { continuationToken: page.continuationToken } : {}),
    };
  }

  async *all(pk: PartitionKey, filter?: string): AsyncGenerator<Row<T>> {
    const full = odata`PartitionKey eq ${pk}` + (filter ? ` and (${filter})` : '');
    for await (const e of this.client.listEntities<T>({ queryOptions: { filter: full } })) yield toRow<T>(e);
  }

  /** Every row in partitions `from` ≤ PK < `to` (see `tenantPartitionRange`). */
  async *range(bounds: { from: string; to: string }, filter?: string): AsyncGenerator<Row<T>> {
    const full = odata`PartitionKey ge ${bounds.from} and PartitionKey lt ${bounds.to}` + (filter ? ` and (${filter})` : '');
    for await (const e of this.client.listEntities<T>({ queryOptions: { filter: full } })) yield toRow<T>(e);
  }

  /** Insert only; an existing row is a `ConflictError`. Returns the new ETag. */
  async create(pk: PartitionKey, rk: string, data: T): Promise<string> {
    try {
      const res = await this.client.createEntity({ ...data, partitionKey: pk, rowKey: rk });
      return res.etag ?? '';
    } catch (err) {
      if (err instanceof RestError && err.statusCode === 409) throw new ConflictError(`${this.name} row already exists`, err);
      throw err;
    }
  }

  async upsert(pk: PartitionKey, rk: string, data: Partial<T>, mode: 'Merge' | 'Replace' = 'Merge'): Promise<string> {
    const res = await this.client.upsertEntity({ ...data, partitionKey: pk, rowKey: rk }, mode);
    return res.etag ?? '';
  }

  /** Update only if the row still has `etag`; a lost race is a `PreconditionFailedError`. */
  async update(pk: PartitionKey, rk: string, data: Partial<T>, etag: string, mode: 'Merge' | 'Replace' = 'Merge'): Promise<string> {
    try {
      const res = await this.client.updateEntity({ ...data, partitionKey: pk, rowKey: rk }, mode, { etag });
      return res.etag ?? '';
    } catch (err) {
      if (err instanceof RestError && err.statusCode === 412) throw new PreconditionFailedError(`${this.name} row changed since it was read`, err);
      if (err instanceof RestError && err.statusCode === 404) throw new NotFoundError(`${this.name} row does not exist`);
      throw err;
    }
  }

  /** Deletes; missing rows are fine. With `etag`, only if unchanged. */
  async delete(pk: PartitionKey, rk: string, etag?: string): Promise<void> {
    try {
      await this.client.deleteEntity(pk, rk, etag ? { etag } : {});
    } catch (err) {
      if (err instanceof RestError && err.statusCode === 404) return;
      if (err instanceof RestError && err.statusCode === 412) throw new PreconditionFailedError(`${this.name} row changed since it was read`, err);
      throw err;
    }
  }

  /**
   * Upserts many rows of one partition in entity-group transactions: at most 100 rows and under 4 MiB
   * each, as the service requires. Rows with the same key are collapsed (last wins): a transaction may
   * touch an entity only once.
   */
  async upsertMany(pk: PartitionKey, rows: Array<{ rowKey: string; data: Partial<T> }>, mode: 'Merge' | 'Replace' = 'Merge'): Promise<number> {
    let transactions = 0;
    for (const batch of upsertBatches(pk, rows, mode, MAX_BATCH, MAX_BATCH_BYTES)) {
      await this.client.submitTransaction(batch);
      transactions++;
    }
    return transactions;
  }

  /**
   * `upsertMany` where every transaction also writes one more row that must change together with the rows
   * in it (a counter over them), so that no crash or failure can leave the rows written and the companion
   * not, or the other way round. `companion(rowKeys)` returns that write for the rows of one transaction:
   * a `create`, or an `update` conditional on the ETag it read. When the transaction fails because the
   * companion row changed or appeared meanwhile (another writer), nothing of it was written; `companion`
   * is asked again and the transaction retried, up to `attempts` times. `undefined` writes the rows alone.
   */
  async upsertManyWithCompanion(
    pk: PartitionKey,
    rows: Array<{ rowKey: string; data: Partial<T> }>,
    mode: 'Merge' | 'Replace',
    companion: (rowKeys: string[]) => Promise<TransactionAction | undefined>,
    attempts = 30,
  ): Promise<number> {
    let transactions = 0;
    // One action and some bytes of each transaction are the companion's.
    for (const batch of upsertBatches(pk, rows, mode, MAX_BATCH - 1, MAX_BATCH_BYTES - COMPANION_BYTES)) {
      const keys = batch.map((a) => String(a[1].rowKey));
      for (let attempt = 1; ; attempt++) {
        // Jittered backoff after a lost race, so writers of the same companion spread out.
        if (attempt > 1) await new Promise((r) => setTimeout(r, Math.random() * Math.min(200, 5 * 2 ** attempt)));
        const extra = await companion(keys);
        try {
          await this.client.submitTransaction(extra ? [...batch, extra] : batch);
          break;
        } catch (err) {
          const lostRace = err instanceof RestError && (err.statusCode === 412 || err.statusCode === 409);
          if (!lostRace || !extra) throw err;
          if (attempt >= attempts) throw new PreconditionFailedError(`${this.name}: the row written with these rows kept changing; gave up after ${attempts} attempts`, err);
        }
      }
      transactions++;
    }
    return transactions;
  }

  /**
   * Inserts up to 100 new rows of one partition in ONE entity-group transaction: all or none. Any row
   * that exists already fails the whole transaction with `ConflictError`, and nothing is written.
   */
  async createAll(pk: PartitionKey, rows: Array<{ rowKey: string; data: T }>): Promise<void> {
    if (rows.length === 0) return;
    if (rows.length > MAX_BATCH || new Set(rows.map((r) => r.rowKey)).size !== rows.length) throw new Error('createAll takes at most 100 rows with distinct keys');
    try {
      await this.client.submitTransaction(rows.map((r): TransactionAction => ['create', { ...r.data, partitionKey: pk, rowKey: r.rowKey }]));
    } catch (err) {
      if (err instanceof RestError && err.statusCode === 409) throw new ConflictError(`${this.name} row already exists`, err);
      throw err;
    }
  }

  /**
   * Point reads of many rows of one partition, as few queries as the service allows: a filter may hold
   * at most 15 discrete comparisons, so one query per 14 row keys (plus the partition key), in parallel.
   * Missing rows are absent from the map.
   */
  async getMany(pk: PartitionKey, rowKeys: string[]): Promise<Map<string, Row<T>>> {
    const unique = [...new Set(rowKeys)];
    const out = new Map<string, Row<T>>();
    const groups: string[][] = [];
    for (let i = 0; i < unique.length; i += FILTER_KEYS) groups.push(unique.slice(i, i + FILTER_KEYS));
    await Promise.all(
      groups.map(async (keys) => {
        const filter = keys.map((rk) => odata`RowKey eq ${rk}`).join(' or ');
        for await (const row of this.all(pk, filter)) out.set(row.rowKey, row);
      }),
    );
    return out;
  }

  /** Deletes many rows of one partition in transactions of at most 100. */
  async deleteMany(pk: PartitionKey, rowKeys: string[]): Promise<void> {
    const unique = [...new Set(rowKeys)];
    for (let i = 0; i < unique.length; i += MAX_BATCH) {
      const chunk = unique.slice(i, i + MAX_BATCH);
      // A transaction fails whole if one entity is missing, so fall back to single deletes then.
      try {
        await this.client.submitTransaction(chunk.map((rk): TransactionAction => ['delete', { partitionKey: pk, rowKey: rk }]));
      } catch (err) {
        if (!(err instanceof RestError && err.statusCode === 404)) throw err;
        for (const rk of chunk) await this.delete(pk, rk);
      }
    }
  }
}

const ENTITY_OVERHEAD_BYTES = 256;
/** Room left in each transaction of `upsertManyWithCompanion` for its companion row (a small counter). */
const COMPANION_BYTES = 64 * 1024;

/**
 * Upserts of one partition grouped into transactions the service takes: at most `maxOps` rows and
 * `maxBytes` each. Rows with the same key are collapsed (last wins): a transaction may touch an entity
 * only once.
 */
function* upsertBatches<T extends RowData>(pk: PartitionKey, rows: Array<{ rowKey: string; data: Partial<T> }>, mode: 'Merge' | 'Replace', maxOps: number, maxBytes: number): Generator<TransactionAction[]> {
  const unique = new Map<string, Partial<T>>();
  for (const r of rows) unique.set(r.rowKey, r.data);
  let batch: TransactionAction[] = [];
  let bytes = 0;
  // Sizes start as a cheap upper bound; a batch whose bound nears the limit switches to exact sizes.
  let exact = false;
  for (const [rk, data] of unique) {
    const entity = { ...data, partitionKey: pk, rowKey: rk };
    let size = exact ? exactSize(entity) : sizeBound(entity);
    if (!exact && bytes + size > maxBytes) {
      exact = true;
      bytes = 0;
      for (const action of batch) bytes += exactSize(action[1] as Record<string, unknown>);
      size = exactSize(entity);
    }
    if (batch.length >= maxOps || bytes + size > maxBytes) {
      if (batch.length > 0) yield batch;
      batch = [];
      bytes = 0;
      exact = false;
    }
    batch.push(['upsert', entity, mode]);
    bytes += size;
  }
  if (batch.length > 0) yield batch;
}

function exactSize(entity: Record<string, unknown>): number {
  return Buffer.byteLength(JSON.stringify(entity), 'utf8') + ENTITY_OVERHEAD_BYTES;
}

/**
 * An upper bound of an entity's size in a transaction body without serialising it (which, for rows
 * that hold JSON text, costs as much as the rest of a sync's work on the row): a UTF-16 unit is at
 * most 6 bytes once JSON-escaped (`\uXXXX`), a number, boolean or date at most 32.
 */
function sizeBound(entity: Record<string, unknown>): number {
  let n = ENTITY_OVERHEAD_BYTES;
  for (const k in entity) {
    const v = entity[k];
    n += k.length + 8 + (typeof v === 'string' ? 6 * v.length + 2 : 32);
  }
  return n;
}

function toRow<T extends RowData>(e: TableEntityResult<T>): Row<T> {
  const { partitionKey, rowKey, etag, timestamp, ...rest } = e as TableEntityResult<T> & { timestamp?: string };
  const data = { ...rest } as Record<string, unknown>;
  delete data['odata.metadata'];
  return {
    partitionKey: partitionKey as PartitionKey,
    rowKey: rowKey as string,
    etag,
    ...(timestamp ? { timestamp } : {}),
    data: data as T,
  };
}
