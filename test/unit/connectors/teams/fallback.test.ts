import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import { acceptNotification, ChannelStore, deliverCard, NoChannelError, NotificationLog, SnoozeLinks, TeamsState, WebhookRateLimiter, WebhookSender, type Notification } from '../../../../src/connectors/teams';
import type { ChannelRow } from '../../../../src/connectors/teams/channelStore';
import type { DeliverDeps } from '../../../../src/connectors/teams/deliver';
import type { StateRow } from '../../../../src/connectors/teams/floodControl';
import type { NotificationRow } from '../../../../src/connectors/teams/notificationLog';
import type { NotifyDeps } from '../../../../src/connectors/teams/notify';
import { Logger } from '../../../../src/platform/logging';
import { LocalSecretStore } from '../../../../src/secrets/localSecretStore';
import { IntegrationsRepository, ProcessedStore, QueueSender, TABLES, TenantTable, tenantId, type ProcessedRow, type TenantId } from '../../../../src/storage';
import { startFakeTeams, type FakeTeams } from '../../../fakes/teams';
import { useAzurite } from '../../../helpers/azurite';

/**
 * Issue 11 finding 6: the deployment-wide fallback webhook is one channel shared by tenants. A tenant's
 * cards go there only if it opted in, and each tenant has its own quota on it.
 */
let az: Awaited<ReturnType<typeof useAzurite>>;
let fake: FakeTeams;
let dir: string;
const log = new Logger({ debug: () => undefined, info: () => undefined, warn: () => undefined, error: () => undefined });

beforeAll(async () => {
  az = await useAzurite();
  fake = await startFakeTeams();
  dir = mkdtempSync(`${os.tmpdir()}/itil-teams-fallback-`);
  await az.clients.queue('teams-cards').createIfNotExists();
  await az.clients.queue('teams-cards-poison').createIfNotExists();
});
afterAll(async () => {
  await fake.stop();
  await az.stop();
  rmSync(dir, { recursive: true, force: true });
});
beforeEach(() => fake.reset());

function deps(sender: WebhookSender): DeliverDeps & NotifyDeps {
  const secrets = new LocalSecretStore({ key: Buffer.alloc(32, 9), directory: dir });
  const processed = new ProcessedStore(new TenantTable<ProcessedRow>(az.clients.table(TABLES.processed)));
  const state = new TeamsState(new TenantTable<StateRow>(az.clients.table(TABLES.teamsState)));
  return {
    channels: new ChannelStore(new TenantTable<ChannelRow>(az.clients.table(TABLES.teamsChannels)), secrets, new IntegrationsRepository(new TenantTable(az.clients.table(TABLES.integrations)))),
    log: new NotificationLog(new TenantTable<NotificationRow>(az.clients.table(TABLES.teamsNotifications))),
    state,
    snooze: new SnoozeLinks(state, 'https://connectors.example.com'),
    functionTimeoutMs: 600_000,
    sender,
    processed,
    queues: new QueueSender(az.clients),
    storage: az.clients,
    fallbackUrl: fake.url('shared-fallback'),
    fallbackAvailable: true,
    allowLoopback: true,
  };
}

const ticket = (id: string) => ({ id, title: `Confidential ${id}`, priority: 'P1', status: 'Open', url: `https://itil.example.com/t/${id}` });
const breach = (id: string): Notification => ({ kind: 'sla_breach', ticket: ticket(id) });
const rows = async (table: (typeof TABLES)[keyof typeof TABLES], tenant: TenantId) => {
  const out: unknown[] = [];
  for await (const e of az.clients.table(table).listEntities({ queryOptions: { filter: `PartitionKey eq '${tenant}'` } })) out.push(e);
  return out;
};

describe('the deployment fallback webhook', () => {
  it("tenant B's tickets never reach it unless B opted in; an opt-out after queueing stops the card", async () => {
    const d = deps(new WebhookSender({ limiter: new WebhookRateLimiter() }));
    const A = tenantId('tenant-fb-a');
    const B = tenantId('tenant-fb-b');
    await d.state.saveSettings(A, { useFallback: true });

    // B has no channel and did not opt in: 422, nothing recorded, nothing queued, nothing posted.
    await expect(acceptNotification(d, B, breach('B-1'), { correlationId: 'c', log })).rejects.toBeInstanceOf(NoChannelError);
    expect(await rows(TABLES.teamsNotifications, B)).toEqual([]);

    const a = await acceptNotification(d, A, breach('A-1'), { correlationId: 'c', log });
    expect(a).toMatchObject({ status: 'queued', channel: 'fallback' });
    expect(await deliverCard(d, { tenantId: A, notificationId: a.notificationId }, { log, dequeueCount: 1 })).toBe('sent');

    // B opts in, a card is queued, B opts out before it is sent: it must not be posted.
    await d.state.saveSettings(B, { useFallback: true });
    const b = await acceptNotification(d, B, { kind: 'sla_warning', ticket: ticket('B-2'), time_remaining_minutes: 10 }, { correlationId: 'c', log });
    expect(b.status).toBe('queued');
    await d.state.saveSettings(B, { useFallback: false });
    expect(await deliverCard(d, { tenantId: B, notificationId: b.notificationId }, { log, dequeueCount: 1 })).toBe('poisoned');
    expect(await d.log.get(B, b.notificationId)).toMatchObject({ status: 'failed', reason: 'the tenant does not use the fallback webhook' });

    const texts = JSON.stringify(fake.accepted('shared-fallback').map((p) => p.card));
    expect(fake.accepted('shared-fallback').map((p) => p.notificationId)).toEqual([a.notificationId]);
    expect(texts).not.toContain('B-1');
    expect(texts).not.toContain('B-2');
  });

  it("no snooze link on a card in the shared channel (anyone there could snooze another tenant's ticket)", async () => {
    const d = deps(new WebhookSender({ limiter: new WebhookRateLimiter() }));
    const A = tenantId('tenant-fb-snooze');
    await d.state.saveSettings(A, { useFallback: true, gatherSeconds: 0 });
    const a = await acceptNotification(d, A, { kind: 'sla_warning', ticket: ticket('S-1'), time_remaining_minutes: 10 }, { correlationId: 'c', log });
    expect(await deliverCard(d, { tenantId: A, notificationId: a.notificationId }, { log, dequeueCount: 1 })).toBe('sent');
    expect(JSON.stringify(fake.accepted('shared-fallback')[0]?.card)).not.toContain('/api/teams/snooze');
  });

  it("one tenant's flood does not block another's card: each tenant has its own quota on the shared webhook", async () => {
    // Small windows so the test is about the shape, not Teams' numbers: the webhook takes 4 a minute,
    // a tenant 2 of them.
    const sender = new WebhookSender({
      limiter: new WebhookRateLimiter([{ limit: 4, intervalMs: 60_000 }]),
      quotaLimiter: new WebhookRateLimiter([{ limit: 2, intervalMs: 60_000 }]),
      maxLimiterWaitMs: 300,
    });
    const d = deps(sender);
    const flood = tenantId('tenant-fb-flood');
    const quiet = tenantId('tenant-fb-quiet');
    await d.state.saveSettings(flood, { useFallback: true });
    await d.state.saveSettings(quiet, { useFallback: true });

    const outcomes: string[] = [];
    for (let i = 0; i < 6; i++) {
      const n = await acceptNotification(d, flood, breach(`F-${i}`), { correlationId: 'c', log });
      outcomes.push(await deliverCard(d, { tenantId: flood, notificationId: n.notificationId }, { log, dequeueCount: 1 }));
    }
    expect(outcomes).toEqual(['sent', 'sent', 'deferred', 'deferred', 'deferred', 'deferred']);

    const q = await acceptNotification(d, quiet, breach('Q-1'), { correlationId: 'c', log });
    expect(await deliverCard(d, { tenantId: quiet, notificationId: q.notificationId }, { log, dequeueCount: 1 })).toBe('sent');
    expect(fake.accepted('shared-fallback').map((p) => p.notificationId)).toContain(q.notificationId);
  });
});
