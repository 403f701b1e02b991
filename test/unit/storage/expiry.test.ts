import { randomBytes } from 'node:crypto';
import { TableClient } from '@azure/data-tables';
import type { PipelinePolicy } from '@azure/core-rest-pipeline';
import { WEBHOOK_CLAIM_SOURCE, WEBHOOK_CLAIM_STALE_MS } from '../../../src/connectors/hubspot/events';
import { OAUTH_STATE_TTL_SECONDS } from '../../../src/connectors/hubspot/connect';
import { PROCESSED_SOURCE } from '../../../src/connectors/teams/deliver';
import { SNOOZE_LINK_TTL_SECONDS } from '../../../src/connectors/teams/snooze';
import { TeamsState, type StateRow } from '../../../src/connectors/teams/floodControl';
import { NotificationLog, type NotificationRow } from '../../../src/connectors/teams/notificationLog';
import { ExpiryIndex, type ExpiryRow } from '../../../src/storage/expiry';
import { escapeKeyPart, partitionKey, tenantId } from '../../../src/storage/keys';
import { processedRetentionMs, ProcessedStore, PROCESSED_RETENTION_MS, type ProcessedRow } from '../../../src/storage/repositories/processed';
import { TenantTable } from '../../../src/storage/tenantTable';
import { useAzurite } from '../../helpers/azurite';

const HOUR = 3600_000;
const DAY = 24 * HOUR;
const T0 = Date.UTC(2026, 0, 10, 8, 30);

/** Counts the entities the service returned to this client: list pages by their `value`, point reads as one. */
function countingPolicy(counter: { entities: number }): PipelinePolicy {
  return {
    name: 'count-entities-read',
    async sendRequest(request, next) {
      const response = await next(request);
      if (request.method === 'GET' && response.status === 200 && response.bodyAsText) {
        const body = JSON.parse(response.bodyAsText) as { value?: unknown[]; PartitionKey?: string };
        if (Array.isArray(body.value)) counter.entities += body.value.length;
        else if (body.PartitionKey !== undefined) counter.entities += 1;
      }
      return response;
    },
  };
}

let azurite: Awaited<ReturnType<typeof useAzurite>>;

beforeAll(async () => {
  azurite = await useAzurite();
});
afterAll(async () => {
  await azurite?.stop();
});

/** A fresh Processed table and Expiry index of its own (no other test's rows), with read counters and a settable clock. */
async function world() {
  const suffix = randomBytes(4).toString('hex');
  const reads = { processed: { entities: 0 }, expiry: { entities: 0 } };
  const client = (name: string, counter: { entities: number }) =>
    TableClient.fromConnectionString(azurite.connectionString, name, { allowInsecureConnection: true, additionalPolicies: [{ policy: countingPolicy(counter), position: 'perCall' }] });
  const processedClient = client(`Processed${suffix}`, reads.processed);
  const expiryClient = client(`Expiry${suffix}`, reads.expiry);
  await processedClient.createTable();
  await expiryClient.createTable();
  let clock = T0;
  const now = () => clock;
  const index = new ExpiryIndex(new TenantTable<ExpiryRow>(expiryClient), now);
  const processedTable = new TenantTable<ProcessedRow>(processedClient);
  const store = new ProcessedStore(processedTable, now, index);
  const exists = async (source: string, tenant: string, id: string) => (await processedTable.get(partitionKey.processed(source, tenantId(tenant)), escapeKeyPart(id))) !== undefined;
  const count = async (source: string, tenant: string) => {
    let n = 0;
    for await (const _ of processedTable.all(partitionKey.processed(source, tenantId(tenant)))) n++;
    return n;
  };
  const resetReads = () => {
    reads.processed.entities = 0;
    reads.expiry.entities = 0;
  };
  const teamsClient = client(`TeamsState${suffix}`, reads.processed);
  const logClient = client(`TeamsNotifications${suffix}`, reads.processed);
  await teamsClient.createTable();
  await logClient.createTable();
  const teamsTable = new TenantTable<StateRow>(teamsClient);
  const logTable = new TenantTable<NotificationRow>(logClient);
  const teams = new TeamsState(teamsTable, now, index);
  const log = new NotificationLog(logTable, index);
  return { store, index, reads, resetReads, exists, count, setClock: (t: number) => (clock = t), expiryClient, teams, teamsTable, log, logTable };
}

const A = tenantId('tenant-a');
const B = tenantId('tenant-b');

describe('expired claims are deleted through the expiry index', () => {
  it('deletes old rows, keeps young ones, touches another tenant only by its own expiry, and never reads the live rows', async () => {
    const w = await world();
    // Old: tenant A's and B's webhook claims at T0 (retained 3 days); B's card claims at T0 (8 days).
    for (let i = 0; i < 3; i++) await w.store.claimProvisional(WEBHOOK_CLAIM_SOURCE, A, `old-${i}`, { staleAfterMs: WEBHOOK_CLAIM_STALE_MS });
    await w.store.claim(WEBHOOK_CLAIM_SOURCE, B, 'old-b');
    await w.store.claim(PROCESSED_SOURCE, B, 'card-1');
    await w.store.claim(PROCESSED_SOURCE, B, 'card-2');
    // Young: 150 of tenant A's, two days later.
    w.setClock(T0 + 2 * DAY);
    for (let i = 0; i < 150; i++) await w.store.claim(WEBHOOK_CLAIM_SOURCE, A, `young-${i}`);

    // Just past the webhook retention (and its hour).
    w.setClock(T0 + 3 * DAY + 2 * HOUR);
    w.resetReads();
    const first = await w.index.sweep();
    expect(first).toMatchObject({ entriesRead: 4, rowsRead: 4, rowsDeleted: 4, entriesDeleted: 4, complete: true });
    // Only the expired hour's entries and the rows they name were read: none of the 150 live claims,
    // none of B's card claims (their hour has not come).
    expect(w.reads.expiry.entities).toBe(4);
    expect(w.reads.processed.entities).toBe(4);
    for (let i = 0; i < 3; i++) expect(await w.exists(WEBHOOK_CLAIM_SOURCE, A, `old-${i}`)).toBe(false);
    expect(await w.exists(WEBHOOK_CLAIM_SOURCE, B, 'old-b')).toBe(false);
    expect(await w.count(WEBHOOK_CLAIM_SOURCE, A)).toBe(150);
    expect(await w.count(PROCESSED_SOURCE, B)).toBe(2);

    // A second run finds nothing to read.
    w.resetReads();
    expect(await w.index.sweep()).toMatchObject({ entriesRead: 0, rowsDeleted: 0 });
    expect(w.reads.processed.entities + w.reads.expiry.entities).toBe(0);

    // B's card claims go at their own expiry (8 days), and A's young claims at theirs.
    w.setClock(T0 + 8 * DAY + 2 * HOUR);
    const later = await w.index.sweep();
    expect(later).toMatchObject({ rowsDeleted: 152, complete: true });
    expect(await w.count(PROCESSED_SOURCE, B)).toBe(0);
    expect(await w.count(WEBHOOK_CLAIM_SOURCE, A)).toBe(0);
    const left = [];
    for await (const e of w.expiryClient.listEntities()) left.push(e);
    expect(left).toEqual([]);
  }, 120_000);

  it('deletes more than one transaction of rows of one partition (batches of at most 100)', async () => {
    const w = await world();
    for (let i = 0; i < 250; i++) await w.store.claim('msgraph-mail', A, `m-${i}`);
    w.setClock(T0 + 14 * DAY + 2 * HOUR);
    expect(await w.index.sweep()).toMatchObject({ entriesRead: 250, rowsDeleted: 250, entriesDeleted: 250, complete: true });
    expect(await w.count('msgraph-mail', A)).toBe(0);
  }, 120_000);

  it('stops at its budget and the next run carries on', async () => {
    const w = await world();
    for (let i = 0; i < 30; i++) await w.store.claim('teams-card', A, `c-${i}`);
    w.setClock(T0 + 9 * DAY);
    expect(await w.index.sweep({ maxEntries: 20 })).toMatchObject({ entriesRead: 20, rowsDeleted: 20, complete: false });
    expect(await w.count('teams-card', A)).toBe(10);
    expect(await w.index.sweep({ maxEntries: 20 })).toMatchObject({ entriesRead: 10, rowsDeleted: 10, complete: true });
    expect(await w.count('teams-card', A)).toBe(0);
  }, 60_000);

  it('a claim released and taken again later lives its full retention from the second claim', async () => {
    const w = await world();
    await w.store.claim(WEBHOOK_CLAIM_SOURCE, A, 'again');
    await w.store.release(WEBHOOK_CLAIM_SOURCE, A, 'again');
    w.setClock(T0 + 2 * DAY);
    expect(await w.store.claim(WEBHOOK_CLAIM_SOURCE, A, 'again')).toBe(true);
    w.setClock(T0 + 3 * DAY + 2 * HOUR);
    expect(await w.index.sweep()).toMatchObject({ entriesRead: 1, rowsRead: 1, rowsDeleted: 0 });
    expect(await w.exists(WEBHOOK_CLAIM_SOURCE, A, 'again')).toBe(true);
    // Still a duplicate within its retention.
    expect(await w.store.claim(WEBHOOK_CLAIM_SOURCE, A, 'again')).toBe(false);
    w.setClock(T0 + 5 * DAY + 2 * HOUR);
    expect(await w.index.sweep()).toMatchObject({ rowsDeleted: 1 });
    expect(await w.exists(WEBHOOK_CLAIM_SOURCE, A, 'again')).toBe(false);
  }, 60_000);

  it('a process that does not know a row kind keeps its entries for one that does', async () => {
    const w = await world();
    await w.store.claim(WEBHOOK_CLAIM_SOURCE, A, 'k-1');
    w.setClock(T0 + 4 * DAY);
    const unaware = new ExpiryIndex(new TenantTable<ExpiryRow>(w.expiryClient), () => T0 + 4 * DAY);
    expect(await unaware.sweep()).toMatchObject({ entriesRead: 1, entriesKept: 1, entriesDeleted: 0, rowsDeleted: 0 });
    expect(await w.exists(WEBHOOK_CLAIM_SOURCE, A, 'k-1')).toBe(true);
    expect(await w.index.sweep()).toMatchObject({ entriesRead: 1, entriesKept: 0, rowsDeleted: 1, entriesDeleted: 1 });
    expect(await w.exists(WEBHOOK_CLAIM_SOURCE, A, 'k-1')).toBe(false);
  }, 60_000);

  it('claims taken many at once (the webhook fan-out) expire like single ones, entered with one write', async () => {
    const w = await world();
    const ids = Array.from({ length: 100 }, (_, i) => ({ id: `batch-${i}` }));
    const claimed = await w.store.claimMany(WEBHOOK_CLAIM_SOURCE, A, ids, { staleAfterMs: WEBHOOK_CLAIM_STALE_MS, owner: 'delivery-1' });
    expect([...claimed.values()].every((c) => c === 'claimed')).toBe(true);
    expect(await w.count(WEBHOOK_CLAIM_SOURCE, A)).toBe(100);
    w.setClock(T0 + 2 * DAY);
    expect(await w.index.sweep()).toMatchObject({ rowsDeleted: 0 });
    w.setClock(T0 + 3 * DAY + 2 * HOUR);
    expect(await w.index.sweep()).toMatchObject({ rowsDeleted: 100, complete: true });
    expect(await w.count(WEBHOOK_CLAIM_SOURCE, A)).toBe(0);
  }, 120_000);
  it('a repeated claim (a redelivery, a replayed single-use token) writes nothing, not even its index entry', async () => {
    const w = await world();
    const stale = { staleAfterMs: 10 * HOUR };
    const entries = async () => {
      const out: Array<{ pk: string; rk: string; etag: string }> = [];
      for await (const e of w.expiryClient.listEntities()) out.push({ pk: e.partitionKey as string, rk: e.rowKey as string, etag: e.etag });
      return out;
    };
    expect(await w.store.claim('token-hubspot-oauth', A, 'jti-1')).toBe(true);
    expect(await w.store.claimProvisional(WEBHOOK_CLAIM_SOURCE, A, 'event-1', stale)).toBe('claimed');
    expect(await w.store.claimProvisional(WEBHOOK_CLAIM_SOURCE, A, 'event-2', stale)).toBe('claimed');
    await w.store.confirm(WEBHOOK_CLAIM_SOURCE, A, ['event-2']);
    const before = await entries();
    expect(before).toHaveLength(3);
    // Repeats within the same hour and hours later (an entry of a later hour would be a new row).
    for (const t of [T0 + 60_000, T0 + 5 * HOUR]) {
      w.setClock(t);
      expect(await w.store.claim('token-hubspot-oauth', A, 'jti-1')).toBe(false);
      expect(await w.store.claimProvisional(WEBHOOK_CLAIM_SOURCE, A, 'event-2', stale)).toBe('done');
    }
    w.setClock(T0 + 60_000);
    expect(await w.store.claimProvisional(WEBHOOK_CLAIM_SOURCE, A, 'event-1', stale)).toBe('pending');
    expect(await entries()).toEqual(before);
    // A takeover of a stale pending claim is a new claim: entered again, under its own later hour.
    w.setClock(T0 + 12 * HOUR);
    expect(await w.store.claimProvisional(WEBHOOK_CLAIM_SOURCE, A, 'event-1', stale)).toBe('claimed');
    expect(await entries()).toHaveLength(4);
  }, 60_000);

  it('a claim is entered in the index before the row is written (a crash between leaves no row that never expires)', async () => {
    const w = await world();
    // The index is unwritable: the claim fails before any Processed row exists.
    await w.expiryClient.deleteTable();
    await expect(w.store.claim(WEBHOOK_CLAIM_SOURCE, A, 'orphan')).rejects.toThrow();
    expect(await w.exists(WEBHOOK_CLAIM_SOURCE, A, 'orphan')).toBe(false);
  }, 60_000);
});

describe('Teams flood, snooze and notification-log rows expire the same way', () => {
  const row = (createdAt: number): NotificationRow => ({ kind: 'sla_warning', ticketId: 'T-1', channel: 'default', status: 'sent', createdAt: new Date(createdAt).toISOString(), payload: '{}' });

  it('each goes at its own retention, a reopened flood window lives on, and live rows are not read', async () => {
    const w = await world();
    const pk = partitionKey.tenant(A);
    await w.teams.admit(A, 'sla_warning', 'X', 'n-1', 10 * 60_000);
    await w.teams.admit(A, 'sla_warning', 'Z', 'n-2', 10 * 60_000);
    await w.teams.snooze(A, 'X', T0 + HOUR);
    await w.log.create(A, 'n-1', row(T0));
    // Z's window is opened again 1.5 days later: its row is young again.
    w.setClock(T0 + 1.5 * DAY);
    expect(await w.teams.admit(A, 'sla_warning', 'Z', 'n-3', 10 * 60_000)).toMatchObject({ decision: 'new' });
    // A live window of another ticket, and 50 live log rows.
    w.setClock(T0 + 1.9 * DAY);
    await w.teams.admit(A, 'sla_warning', 'Y', 'n-4', 10 * 60_000);
    for (let i = 0; i < 50; i++) await w.log.create(A, `n-live-${i}`, row(T0 + 1.9 * DAY));

    w.setClock(T0 + 2 * DAY + 2 * HOUR);
    w.resetReads();
    const result = await w.index.sweep();
    // X's flood row and snooze row go; Z's first entry finds it reopened; nothing else is read.
    expect(result).toMatchObject({ rowsRead: 3, rowsDeleted: 2 });
    expect(w.reads.processed.entities).toBe(3);
    expect(await w.teamsTable.get(pk, 'flood:sla_warning:X')).toBeUndefined();
    expect(await w.teamsTable.get(pk, 'snooze:X')).toBeUndefined();
    expect(await w.teamsTable.get(pk, 'flood:sla_warning:Z')).toBeDefined();
    expect(await w.teamsTable.get(pk, 'flood:sla_warning:Y')).toBeDefined();
    expect(await w.logTable.get(pk, 'n-1')).toBeDefined();

    // The log keeps a notification 30 days; by then every flood row is gone too.
    w.setClock(T0 + 32 * DAY);
    await w.index.sweep();
    expect(await w.logTable.get(pk, 'n-1')).toBeUndefined();
    expect(await w.logTable.get(pk, 'n-live-0')).toBeUndefined();
    expect(await w.teamsTable.get(pk, 'flood:sla_warning:Z')).toBeUndefined();
    expect(await w.teamsTable.get(pk, 'flood:sla_warning:Y')).toBeUndefined();
  }, 120_000);
});

describe('Teams snooze-link rows expire a day after their link', () => {
  it('a used or unused link row goes once its link has been expired a day; a live link stays', async () => {
    const w = await world();
    const pk = partitionKey.tenant(A);
    await w.teams.createSnoozeLink(A, 'link-used', { ticketId: 'T-1', notificationId: 'n-1', minutes: 30, expiresAt: T0 + DAY });
    await w.teams.createSnoozeLink(A, 'link-unused', { ticketId: 'T-2', notificationId: 'n-2', minutes: 30, expiresAt: T0 + DAY });
    const used = await w.teams.snoozeLink(A, 'link-used');
    expect(await w.teams.useSnoozeLink(A, 'link-used', used?.etag as string)).toBe(true);
    w.setClock(T0 + 1.5 * DAY);
    await w.teams.createSnoozeLink(A, 'link-live', { ticketId: 'T-3', notificationId: 'n-3', minutes: 30, expiresAt: T0 + 2.5 * DAY });

    // Expired but not yet a day past: kept.
    w.setClock(T0 + 1.9 * DAY);
    expect(await w.index.sweep()).toMatchObject({ rowsDeleted: 0 });
    w.setClock(T0 + 2 * DAY + 2 * HOUR);
    expect(await w.index.sweep()).toMatchObject({ rowsDeleted: 2 });
    expect(await w.teamsTable.get(pk, 'snoozelink:link-used')).toBeUndefined();
    expect(await w.teamsTable.get(pk, 'snoozelink:link-unused')).toBeUndefined();
    expect(await w.teamsTable.get(pk, 'snoozelink:link-live')).toBeDefined();
  }, 120_000);
});

describe('retention per row kind', () => {
  it('outlasts every redelivery window and every single-use token lifetime', () => {
    // HubSpot retries a webhook for up to 24 h.
    expect(processedRetentionMs(WEBHOOK_CLAIM_SOURCE)).toBeGreaterThan(DAY);
    // Graph redelivers for 4 h; our queues keep a message up to 7 days.
    for (const s of ['msgraph-mail', 'msgraph-mail-id', 'msgraph-reply', PROCESSED_SOURCE]) expect(processedRetentionMs(s)).toBeGreaterThan(7 * DAY);
    // Single-use tokens stay claimed while they are valid.
    expect(processedRetentionMs('token-hubspot-oauth')).toBeGreaterThan(OAUTH_STATE_TTL_SECONDS * 1000);
    expect(processedRetentionMs('token-snooze')).toBeGreaterThan(SNOOZE_LINK_TTL_SECONDS * 1000);
    // The table names the sources the code uses.
    expect(Object.keys(PROCESSED_RETENTION_MS)).toEqual(expect.arrayContaining([WEBHOOK_CLAIM_SOURCE, PROCESSED_SOURCE]));
  });
});
