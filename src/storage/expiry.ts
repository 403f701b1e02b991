import { createHash } from 'node:crypto';
import { expiredHours, expiryHour, partitionKey, tenantId, type PartitionKey, type TenantId } from './keys';
import type { RowData, TenantTable } from './tenantTable';

/**
 * An entry of the `Expiry` table: "the row `rk` of kind `kind` in the partition `part` names, of this
 * partition's tenant, expires at `expiresAt`". PartitionKey `<YYYYMMDDHH>:<tenant>` (the expiry hour),
 * RowKey a hash of (kind, part, rk), so scheduling the same row twice in one hour writes one entry.
 */
export interface ExpiryRow extends RowData {
  kind: string;
  part: string;
  rk: string;
  expiresAt: number;
}

/** A kind of row that expires: where it lives, and how its own data says it has expired. */
export interface ExpiringKind {
  table: TenantTable<RowData>;
  /** The row's partition, always built from the index partition's tenant. */
  partition(tenant: TenantId, part: string): PartitionKey;
  /**
   * Decided on the row as it is now: one rewritten since this entry was made (a claim taken again) lives
   * on, and the entry its rewrite scheduled removes it later.
   */
  expired(data: RowData, now: number, part: string): boolean;
}

export interface SweepResult {
  /** Index entries read: only those of hours that have passed. */
  entriesRead: number;
  /** Entries of a kind nobody registered in this process: kept for a run that knows it. */
  entriesKept: number;
  /** Rows the entries point at, read to check they are still the expired ones. */
  rowsRead: number;
  rowsDeleted: number;
  entriesDeleted: number;
  /** False when the budget ran out first; the next run carries on where this one stopped. */
  complete: boolean;
}

const BATCH = 100;

/**
 * Expiry of idempotency and claim rows without scanning them. Each expiring row is entered here when it
 * is written, under the UTC hour it expires in; a sweep reads only the partitions of hours that have
 * passed (one key-range query across tenants), checks each row it points at, and deletes rows and
 * entries in entity-group transactions of at most 100 per partition. The live rows are never read.
 *
 * Why an index rather than time-prefixed RowKeys: a claim is found by its id alone (a redelivery a day
 * later must hit the same key), so the claim's own key cannot carry the time. Why not a filter on the
 * age column: Table Storage has no secondary index, so that filter scans every row of the partition.
 */
export class ExpiryIndex {
  private readonly kinds = new Map<string, ExpiringKind>();

  constructor(
    private readonly table: TenantTable<ExpiryRow>,
    private readonly now: () => number = Date.now,
  ) {}

  register(name: string, kind: ExpiringKind): void {
    this.kinds.set(name, kind);
  }

  /**
   * Enters a row for deletion after `expiresAt`. Call it before writing the row: a crash in between
   * leaves an entry whose row does not exist (the sweep skips it), never a row that is never deleted.
   */
  async schedule(tenant: TenantId, kind: string, part: string, rk: string, expiresAt: number): Promise<void> {
    if (!this.kinds.has(kind)) throw new Error(`No expiring row kind "${kind}" is registered.`);
    const pk = partitionKey.expiry(expiryHour(expiresAt), tenant);
    await this.table.upsert(pk, entryKey(kind, part, rk), { kind, part, rk, expiresAt }, 'Replace');
  }

  /**
   * `schedule` for many rows of one kind at once, in entity-group transactions per expiry partition (rows
   * claimed together expire in the same hour, so usually one transaction): a batch claim costs one more
   * write, not one per row.
   */
  async scheduleMany(tenant: TenantId, kind: string, rows: Array<{ part: string; rk: string; expiresAt: number }>): Promise<void> {
    if (!this.kinds.has(kind)) throw new Error(`No expiring row kind "${kind}" is registered.`);
    const byPartition = new Map<string, Array<{ rowKey: string; data: ExpiryRow }>>();
    for (const r of rows) {
      const pk = partitionKey.expiry(expiryHour(r.expiresAt), tenant);
      const list = byPartition.get(pk) ?? [];
      list.push({ rowKey: entryKey(kind, r.part, r.rk), data: { kind, part: r.part, rk: r.rk, expiresAt: r.expiresAt } });
      byPartition.set(pk, list);
    }
    for (const [pk, list] of byPartition) await this.table.upsertMany(pk as PartitionKey, list, 'Replace');
  }

  /** Deletes what has expired, up to `maxEntries` index entries per run. */
  async sweep(opts: { maxEntries?: number } = {}): Promise<SweepResult> {
    const max = opts.maxEntries ?? 20_000;
    const now = this.now();
    const result: SweepResult = { entriesRead: 0, entriesKept: 0, rowsRead: 0, rowsDeleted: 0, entriesDeleted: 0, complete: true };
    let chunk: { pk: PartitionKey; entries: Array<{ rowKey: string; data: ExpiryRow }> } | undefined;
    for await (const entry of this.table.range(expiredHours(now))) {
      if (result.entriesRead >= max) {
        result.complete = false;
        break;
      }
      result.entriesRead++;
      if (chunk && (chunk.pk !== entry.partitionKey || chunk.entries.length >= BATCH)) {
        await this.#sweepChunk(chunk.pk, chunk.entries, now, result);
        chunk = undefined;
      }
      chunk ??= { pk: entry.partitionKey, entries: [] };
      chunk.entries.push({ rowKey: entry.rowKey, data: entry.data });
    }
    if (chunk) await this.#sweepChunk(chunk.pk, chunk.entries, now, result);
    return result;
  }

  /** Up to 100 entries of one index partition (one tenant, one hour). */
  async #sweepChunk(indexPk: PartitionKey, entries: Array<{ rowKey: string; data: ExpiryRow }>, now: number, result: SweepResult): Promise<void> {
    const tenant = tenantId(indexPk.slice(indexPk.indexOf(':') + 1));
    const doomed = new Map<string, { kind: ExpiringKind; pk: PartitionKey; rowKeys: string[] }>();
    // An entry whose kind is not registered here (its owner was not set up in this process) is left for
    // a run that knows it: dropping it would leave its row for good.
    const known = entries.filter((e) => this.kinds.has(e.data.kind));
    result.entriesKept += entries.length - known.length;
    await Promise.all(
      known.map(async ({ data }) => {
        const kind = this.kinds.get(data.kind) as ExpiringKind;
        const pk = kind.partition(tenant, data.part);
        const row = await kind.table.get(pk, data.rk);
        result.rowsRead++;
        if (!row || !kind.expired(row.data as RowData, now, data.part)) return;
        const key = `${data.kind}\n${pk}`;
        const group = doomed.get(key) ?? { kind, pk, rowKeys: [] };
        group.rowKeys.push(data.rk);
        doomed.set(key, group);
      }),
    );
    for (const { kind, pk, rowKeys } of doomed.values()) {
      await kind.table.deleteMany(pk, rowKeys);
      result.rowsDeleted += rowKeys.length;
    }
    // Entries go last: a crash before this line leaves them for the next run, which finds the rows gone.
    await this.table.deleteMany(
      indexPk,
      known.map((e) => e.rowKey),
    );
    result.entriesDeleted += known.length;
  }
}

function entryKey(kind: string, part: string, rk: string): string {
  return createHash('sha256').update(`${kind}\n${part}\n${rk}`).digest('hex');
}
