import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { TableServiceClient, TableClient } from '@azure/data-tables';
import { QueueServiceClient } from '@azure/storage-queue';
import { BlobServiceClient } from '@azure/storage-blob';

/**
 * Everything the app keeps, as one comparable value: every entity of every table (with its ETag, so a
 * rewrite of the same values is a change too), every queue (its count and the messages a peek shows),
 * every blob (name, ETag, MD5) and every secret (for the local secret store, each file's SHA-256: a
 * rewrite gets a new IV, so even the same value written again shows). Two snapshots that compare equal
 * mean a request changed nothing the app owns.
 */
export interface StorageSnapshot {
  tables: Record<string, Array<Record<string, unknown>>>;
  queues: Record<string, { count: number; peeked: string[] }>;
  blobs: Record<string, Array<{ name: string; etag?: string; md5?: string }>>;
  secrets: Record<string, string>;
}

export interface SnapshotSource {
  connectionString: string;
  /** The local secret store's folder (the runner's `LOCAL_SECRET_DIR`). */
  secretDir?: string;
  /** Or any other secret listing (the fake Key Vault): name → version or value hash. */
  secretList?: () => Promise<Record<string, string>> | Record<string, string>;
}

export async function snapshotStorage(src: SnapshotSource): Promise<StorageSnapshot> {
  const [tables, queues, blobs, secrets] = await Promise.all([snapshotTables(src.connectionString), snapshotQueues(src.connectionString), snapshotBlobs(src.connectionString), snapshotSecrets(src)]);
  return { tables, queues, blobs, secrets };
}

async function snapshotTables(cs: string): Promise<StorageSnapshot['tables']> {
  const service = TableServiceClient.fromConnectionString(cs, { allowInsecureConnection: true });
  const out: StorageSnapshot['tables'] = {};
  const names: string[] = [];
  for await (const t of service.listTables()) if (t.name) names.push(t.name);
  await Promise.all(
    names.sort().map(async (name) => {
      const client = TableClient.fromConnectionString(cs, name, { allowInsecureConnection: true });
      const rows: Array<Record<string, unknown>> = [];
      for await (const e of client.listEntities()) rows.push({ ...e });
      rows.sort((a, b) => `${String(a.partitionKey)}\u0000${String(a.rowKey)}`.localeCompare(`${String(b.partitionKey)}\u0000${String(b.rowKey)}`));
      out[name] = rows;
    }),
  );
  return sortKeys(out);
}

async function snapshotQueues(cs: string): Promise<StorageSnapshot['queues']> {
  const service = QueueServiceClient.fromConnectionString(cs);
  const out: StorageSnapshot['queues'] = {};
  const names: string[] = [];
  for await (const q of service.listQueues()) names.push(q.name);
  await Promise.all(
    names.map(async (name) => {
      const q = service.getQueueClient(name);
      // Peek shows at most 32 messages (the service's limit); the count includes invisible ones.
      const [props, peek] = await Promise.all([q.getProperties(), q.peekMessages({ numberOfMessages: 32 })]);
      out[name] = { count: props.approximateMessagesCount ?? 0, peeked: peek.peekedMessageItems.map((m) => `${m.messageId}:${m.messageText}`) };
    }),
  );
  return sortKeys(out);
}

async function snapshotBlobs(cs: string): Promise<StorageSnapshot['blobs']> {
  const service = BlobServiceClient.fromConnectionString(cs);
  const out: StorageSnapshot['blobs'] = {};
  for await (const c of service.listContainers()) {
    const rows: StorageSnapshot['blobs'][string] = [];
    for await (const b of service.getContainerClient(c.name).listBlobsFlat()) {
      rows.push({ name: b.name, etag: b.properties.etag, md5: b.properties.contentMD5 ? Buffer.from(b.properties.contentMD5).toString('base64') : undefined });
    }
    out[c.name] = rows.sort((a, b) => a.name.localeCompare(b.name));
  }
  return sortKeys(out);
}

async function snapshotSecrets(src: SnapshotSource): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  if (src.secretDir && existsSync(src.secretDir)) {
    const walk = (dir: string) => {
      for (const f of readdirSync(dir).sort()) {
        const full = path.join(dir, f);
        if (statSync(full).isDirectory()) walk(full);
        else out[path.relative(src.secretDir as string, full)] = createHash('sha256').update(readFileSync(full)).digest('hex');
      }
    };
    walk(src.secretDir);
  }
  if (src.secretList) Object.assign(out, await src.secretList());
  return sortKeys(out);
}

function sortKeys<T>(o: Record<string, T>): Record<string, T> {
  return Object.fromEntries(Object.entries(o).sort(([a], [b]) => a.localeCompare(b)));
}

/** What differs between two snapshots, one line per change (empty: none), for a readable failure. */
export function diffSnapshots(before: StorageSnapshot, after: StorageSnapshot): string[] {
  const out: string[] = [];
  const keyOf = (e: Record<string, unknown>) => `${String(e.partitionKey)} / ${String(e.rowKey)}`;
  for (const name of new Set([...Object.keys(before.tables), ...Object.keys(after.tables)])) {
    const b = new Map((before.tables[name] ?? []).map((e) => [keyOf(e), JSON.stringify(e)]));
    const a = new Map((after.tables[name] ?? []).map((e) => [keyOf(e), JSON.stringify(e)]));
    if (!(name in before.tables)) out.push(`table ${name} created`);
    for (const [k, v] of a) if (!b.has(k)) out.push(`table ${name}: added ${k}`);
    else if (b.get(k) !== v) out.push(`table ${name}: changed ${k}`);
    for (const k of b.keys()) if (!a.has(k)) out.push(`table ${name}: removed ${k}`);
  }
  for (const name of new Set([...Object.keys(before.queues), ...Object.keys(after.queues)])) {
    const b = before.queues[name];
    const a = after.queues[name];
    if (!b) out.push(`queue ${name} created (${a?.count ?? 0} messages)`);
    else if (!a) out.push(`queue ${name} deleted`);
    else if (a.count !== b.count || JSON.stringify(a.peeked) !== JSON.stringify(b.peeked)) out.push(`queue ${name}: ${b.count} → ${a.count} messages`);
  }
  for (const name of new Set([...Object.keys(before.blobs), ...Object.keys(after.blobs)])) {
    if (JSON.stringify(before.blobs[name]) !== JSON.stringify(after.blobs[name])) out.push(`blob container ${name} changed`);
  }
  for (const name of new Set([...Object.keys(before.secrets), ...Object.keys(after.secrets)])) {
    if (before.secrets[name] !== after.secrets[name]) out.push(`secret ${name} ${!(name in before.secrets) ? 'added' : !(name in after.secrets) ? 'removed' : 'changed'}`);
  }
  return out;
}

/** Waits (bounded) until the worker queues are empty, so a snapshot is not taken mid-flight. */
export async function waitForQueuesIdle(cs: string, queues: readonly string[], timeoutMs = 30_000): Promise<void> {
  const service = QueueServiceClient.fromConnectionString(cs);
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const counts = await Promise.all(
      queues.map(async (q) => {
        const c = service.getQueueClient(q);
        return (await c.exists()) ? ((await c.getProperties()).approximateMessagesCount ?? 0) : 0;
      }),
    );
    if (counts.every((c) => c === 0)) return;
    if (Date.now() > deadline) throw new Error(`queues not idle after ${timeoutMs} ms: ${queues.map((q, i) => `${q}=${counts[i]}`).join(', ')}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}
