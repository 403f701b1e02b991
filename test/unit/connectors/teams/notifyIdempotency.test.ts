import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import { acceptNotification, ChannelStore, NotificationLog, TeamsState, type Notification } from '../../../../src/connectors/teams';
import type { ChannelRow } from '../../../../src/connectors/teams/channelStore';
import type { StateRow } from '../../../../src/connectors/teams/floodControl';
import type { NotificationRow } from '../../../../src/connectors/teams/notificationLog';
import type { NotifyDeps } from '../../../../src/connectors/teams/notify';
import { Logger } from '../../../../src/platform/logging';
import { LocalSecretStore } from '../../../../src/secrets/localSecretStore';
import { IntegrationsRepository, QueueSender, TABLES, TenantTable, tenantId } from '../../../../src/storage';
import { useAzurite } from '../../../helpers/azurite';

/** `POST /api/teams/notify` with an Idempotency-Key: its retries are one notification, one card message. */
let az: Awaited<ReturnType<typeof useAzurite>>;
let dir: string;
const log = new Logger({ debug: () => undefined, info: () => undefined, warn: () => undefined, error: () => undefined });

beforeAll(async () => {
  az = await useAzurite();
  dir = mkdtempSync(`${os.tmpdir()}/itil-teams-idem-`);
  await az.clients.queue('teams-cards').createIfNotExists();
});
afterAll(async () => {
  await az.stop();
  rmSync(dir, { recursive: true, force: true });
});
beforeEach(async () => az.clients.queue('teams-cards').clearMessages());

function deps(): NotifyDeps {
  const secrets = new LocalSecretStore({ key: Buffer.alloc(32, 3), directory: dir });
  return {
    channels: new ChannelStore(new TenantTable<ChannelRow>(az.clients.table(TABLES.teamsChannels)), secrets, new IntegrationsRepository(new TenantTable(az.clients.table(TABLES.integrations)))),
    log: new NotificationLog(new TenantTable<NotificationRow>(az.clients.table(TABLES.teamsNotifications))),
    state: new TeamsState(new TenantTable<StateRow>(az.clients.table(TABLES.teamsState))),
    queues: new QueueSender(az.clients),
    fallbackAvailable: true,
  };
}
const ticket = (id: string) => ({ id, title: `T ${id}`, priority: 'P1', status: 'Open', url: `https://itil.example.com/t/${id}` });
const messages = async () => (await az.clients.queue('teams-cards').peekMessages({ numberOfMessages: 32 })).peekedMessageItems.length;

describe('teams notify with an Idempotency-Key', () => {
  it('a retried breach is the same notification and queues nothing more; another key is another notification', async () => {
    const d = deps();
    const T = tenantId('tenant-idem-a');
    await d.state.saveSettings(T, { useFallback: true, gatherSeconds: 0 });
    const n: Notification = { kind: 'sla_breach', ticket: ticket('B-1') };
    const first = await acceptNotification(d, T, n, { correlationId: 'c1', log, idempotencyKey: 'engine-1' });
    const again = await Promise.all([1, 2, 3].map(() => acceptNotification(d, T, n, { correlationId: 'c2', log, idempotencyKey: 'engine-1' })));
    expect(again.map((r) => r.notificationId)).toEqual([first.notificationId, first.notificationId, first.notificationId]);
    expect(again.every((r) => r.status === 'queued')).toBe(true);
    expect(await messages()).toBe(1);
    const other = await acceptNotification(d, T, n, { correlationId: 'c3', log, idempotencyKey: 'engine-2' });
    expect(other.notificationId).not.toBe(first.notificationId);
    expect(await messages()).toBe(2);
    // Without a key each call is its own notification (the contract before keys).
    const bare = await acceptNotification(d, T, n, { correlationId: 'c4', log });
    expect([first.notificationId, other.notificationId]).not.toContain(bare.notificationId);
  });

  it('a retried collapsed warning answers collapsed again, counted once; keys are per tenant', async () => {
    const d = deps();
    const T = tenantId('tenant-idem-b');
    const U = tenantId('tenant-idem-c');
    for (const t of [T, U]) await d.state.saveSettings(t, { useFallback: true, gatherSeconds: 0 });
    const w: Notification = { kind: 'sla_warning', ticket: ticket('W-1'), time_remaining_minutes: 10 };
    const opener = await acceptNotification(d, T, w, { correlationId: 'c', log, idempotencyKey: 'k-open' });
    const second = await acceptNotification(d, T, w, { correlationId: 'c', log, idempotencyKey: 'k-second' });
    const retry = await acceptNotification(d, T, w, { correlationId: 'c', log, idempotencyKey: 'k-second' });
    expect(second).toMatchObject({ status: 'collapsed', collapsedInto: opener.notificationId, count: 2 });
    expect(retry).toEqual(second);
    expect(await d.state.window(T, TeamsState.floodKey('sla_warning', 'W-1'), opener.notificationId)).toMatchObject({ count: 2 });
    // The same key in another tenant is that tenant's own.
    const elsewhere = await acceptNotification(d, U, w, { correlationId: 'c', log, idempotencyKey: 'k-open' });
    expect(elsewhere.notificationId).not.toBe(opener.notificationId);
    expect(elsewhere.status).toBe('queued');
  });
});
