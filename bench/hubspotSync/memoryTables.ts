import { RestError, type TableClient } from '@azure/data-tables';
import { RECORD_COUNTS_ROW_KEY } from '../../src/connectors/hubspot/records';
import { StorageClients, TABLES, type TableName } from '../../src/storage';

/**
 * A Table Storage stand-in held in memory, for the benchmark's "engine ceiling" runs only: Azurite's
 * table store scans a whole partition for every write (LokiJS `Resultset.find`), so past a few
 * thousand rows it, not HubSpot's rate limit, sets the pace. This keeps the operations the code under
 * test uses (point reads, conditional create/update/delete, upserts, entity-group transactions, reads
 * of one partition) with their status codes, and nothing else: any other filter is refused. The
 * Records table is a sink (see `SinkTable`).
 */

type Entity = Record<string, unknown> & { partitionKey: string; rowKey: string };
interface Stored {
  entity: Entity;
  etag: string;
}

let etagSeq = 0;
const nextEtag = () => `W/"datetime'${new Date().toISOString()}-${++etagSeq}'"`;

function notFound(): RestError {
  return new RestError('The specified resource does not exist.', { statusCode: 404 });
}

class MemoryTable {
  private readonly partitions = new Map<string, Map<string, Stored>>();

  constructor(readonly tableName: string) {}

  private part(pk: string, create: boolean): Map<string, Stored> | undefined {
    let p = this.partitions.get(pk);
    if (!p && create) this.partitions.set(pk, (p = new Map()));
    return p;
  }

  private view(s: Stored): Record<string, unknown> {
    return { ...s.entity, etag: s.etag, timestamp: new Date().toISOString() };
  }

  async createTable(): Promise<void> {}

  async getEntity(pk: string, rk: string): Promise<Record<string, unknown>> {
    const s = this.part(pk, false)?.get(rk);
    if (!s) throw notFound();
    return this.view(s);
  }

  async createEntity(e: Entity): Promise<{ etag: string }> {
    const p = this.part(e.partitionKey, true) as Map<string, Stored>;
    if (p.has(e.rowKey)) throw new RestError('The specified entity already exists.', { statusCode: 409 });
    const etag = nextEtag();
    p.set(e.rowKey, { entity: { ...e }, etag });
    return { etag };
  }

  async upsertEntity(e: Entity, mode: 'Merge' | 'Replace' = 'Merge'): Promise<{ etag: string }> {
    const p = this.part(e.partitionKey, true) as Map<string, Stored>;
    const prev = p.get(e.rowKey);
    const etag = nextEtag();
    p.set(e.rowKey, { entity: mode === 'Merge' && prev ? { ...prev.entity, ...defined(e) } : { ...defined(e) }, etag });
    return { etag };
  }

  async updateEntity(e: Entity, mode: 'Merge' | 'Replace' = 'Merge', opts: { etag?: string } = {}): Promise<{ etag: string }> {
    const p = this.part(e.partitionKey, false);
    const prev = p?.get(e.rowKey);
    if (!p || !prev) throw notFound();
    if (opts.etag && opts.etag !== '*' && opts.etag !== prev.etag) throw new RestError('The update condition specified in the request was not satisfied.', { statusCode: 412 });
    const etag = nextEtag();
    p.set(e.rowKey, { entity: mode === 'Merge' ? { ...prev.entity, ...defined(e) } : { ...defined(e) }, etag });
    return { etag };
  }

  async deleteEntity(pk: string, rk: string, opts: { etag?: string } = {}): Promise<void> {
    const p = this.part(pk, false);
    const prev = p?.get(rk);
    if (!p || !prev) throw notFound();
    if (opts.etag && opts.etag !== '*' && opts.etag !== prev.etag) throw new RestError('The update condition specified in the request was not satisfied.', { statusCode: 412 });
    p.delete(rk);
  }

  async submitTransaction(actions: Array<[string, Entity, ('Merge' | 'Replace')?, { etag?: string }?]>): Promise<{ status: number }> {
    // All or none, as the service does: every condition is checked before anything is written.
    for (const [op, e, , opts] of actions) {
      const prev = this.part(e.partitionKey, false)?.get(e.rowKey);
      if (op === 'create' && prev) throw new RestError('The specified entity already exists.', { statusCode: 409 });
      if (op === 'update' && !prev) throw notFound();
      if (op === 'update' && opts?.etag && opts.etag !== '*' && opts.etag !== prev?.etag) throw new RestError('The update condition specified in the request was not satisfied.', { statusCode: 412 });
    }
    for (const [op, e, mode, opts] of actions) {
      if (op === 'upsert') await this.upsertEntity(e, mode ?? 'Merge');
      else if (op === 'create') await this.createEntity(e);
      else if (op === 'update') await this.updateEntity(e, mode ?? 'Merge', opts ?? {});
      else if (op === 'delete') await this.deleteEntity(e.partitionKey, e.rowKey);
      else throw new Error(`memory table: unsupported transaction action ${op}`);
    }
    return { status: 202 };
  }

  listEntities(opts: { queryOptions?: { filter?: string; select?: string[] } } = {}) {
    const filter = opts.queryOptions?.filter ?? '';
    const m = /^PartitionKey eq '((?:[^']|'')*)'$/.exec(filter);
    if (!m) throw new Error(`memory table: only whole-partition reads are supported, not ${filter}`);
    const pk = (m[1] as string).replace(/''/g, "'");
    const rows = [...(this.part(pk, false)?.entries() ?? [])].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([, s]) => this.view(s));
    return {
      byPage: ({ maxPageSize = 1000, continuationToken }: { maxPageSize?: number; continuationToken?: string } = {}) => {
        let at = continuationToken ? Number(continuationToken) : 0;
        return {
          [Symbol.asyncIterator]() {
            return this;
          },
          async next(): Promise<IteratorResult<Array<Record<string, unknown>> & { continuationToken?: string }>> {
            if (at >= rows.length && at > 0) return { done: true, value: undefined };
            const page = Object.assign(rows.slice(at, at + maxPageSize), {}) as Array<Record<string, unknown>> & { continuationToken?: string };
            at += maxPageSize;
            if (at < rows.length) page.continuationToken = String(at);
            return { done: false, value: page };
          },
        };
      },
      async *[Symbol.asyncIterator]() {
        yield* rows;
      },
    };
  }
}

function defined(e: Record<string, unknown>): Entity {
  return Object.fromEntries(Object.entries(e).filter(([, v]) => v !== undefined)) as Entity;
}

/**
 * The Records table as a sink: writes are accepted (and counted) but not kept, so the stored tickets do
 * not show in the contender's RSS, which is meant to measure the sync, not the store. The benchmark's
 * initial load never reads a record back (it checks the counters, the one kind of row that is kept).
 */
class SinkTable extends MemoryTable {
  rowsWritten = 0;
  override async upsertEntity(e: Entity, mode: 'Merge' | 'Replace' = 'Merge'): Promise<{ etag: string }> {
    // The counters live in the Records partitions too, and they are what the benchmark checks: kept.
    if (e.rowKey === RECORD_COUNTS_ROW_KEY) return super.upsertEntity(e, mode);
    this.rowsWritten++;
    return { etag: nextEtag() };
  }
  override async createEntity(e: Entity): Promise<{ etag: string }> {
    if (e.rowKey === RECORD_COUNTS_ROW_KEY) return super.createEntity(e);
    this.rowsWritten++;
    return { etag: nextEtag() };
  }
}

/** Storage clients whose tables live in memory; queues stay on the real (Azurite) queue service. */
export class MemoryTableStorage extends StorageClients {
  readonly #tables = new Map<string, MemoryTable>();

  override table(name: TableName): TableClient {
    let t = this.#tables.get(name);
    if (!t) this.#tables.set(name, (t = name === TABLES.records ? new SinkTable(name) : new MemoryTable(name)));
    // Structurally the subset TenantTable calls; the cast is the price of not re-implementing the SDK.
    return t as unknown as TableClient;
  }
}
