import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import { randomBytes } from 'node:crypto';
import { ChannelStore, deliverCard, POSSIBLE_REPEAT_TEXT, NotificationLog, SnoozeLinks, TeamsState, WebhookRateLimiter, WebhookSender, type Notification } from '../../../../src/connectors/teams';
import type { ChannelRow } from '../../../../src/connectors/teams/channelStore';
import type { DeliverDeps } from '../../../../src/connectors/teams/deliver';
import type { StateRow } from '../../../../src/connectors/teams/floodControl';
import type { NotificationRow } from '../../../../src/connectors/teams/notificationLog';
import { Logger } from '../../../../src/platform/logging';
import { LocalSecretStore } from '../../../../src/secrets/localSecretStore';
import { IntegrationsRepository, DeploymentState, ProcessedStore, QueueSender, TABLES, TenantTable, tenantId, type DeploymentRow, type ProcessedRow } from '../../../../src/storage';
import { startFakeTeams, type FakeTeams } from '../../../fakes/teams';
import { useAzurite } from '../../../helpers/azurite';

let az: Awaited<ReturnType<typeof useAzurite>>;
let fake: FakeTeams;
let dir: string;
const lines: string[] = [];
const log = new Logger({ debug: (m) => lines.push(m), info: (m) => lines.push(m), warn: (m) => lines.push(m), error: (m) => lines.push(m) });

beforeAll(async () => {
  az = await useAzurite();
  fake = await startFakeTeams();
  dir = mkdtempSync(`${os.tmpdir()}/itil-teams-deliver-`);
  await az.clients.queue('teams-cards-poison').createIfNotExists();
});
afterAll(async () => {
  await fake.stop();
  await az.stop();
  rmSync(dir, { recursive: true, force: true });
});

const T = tenantId('tenant-d');

function deps(sender: WebhookSender, now?: () => number): DeliverDeps {
  const secrets = new LocalSecretStore({ key: Buffer.alloc(32, 7), directory: dir });
  const processed = new ProcessedStore(new TenantTable<ProcessedRow>(az.clients.table(TABLES.processed)), now);
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
    fallbackUrl: undefined,
    allowLoopback: true,
    ...(now ? { now } : {}),
  };
}

async function seed(d: DeliverDeps, channel: string, n: Notification, extra: Partial<NotificationRow> = {}): Promise<string> {
  await d.channels.put(T, 'critical', { url: fake.url(channel), kind: 'workflows', loopback: true });
  const id = `n-${String(Date.now()).padStart(13, '0')}-${randomBytes(6).toString('hex')}`;
  await d.log.create(T, id, { kind: n.kind, ticketId: n.ticket.id, channel: 'critical', status: 'queued', createdAt: new Date().toISOString(), payload: JSON.stringify(n), attempts: 0, ...extra });
  return id;
}

async function drain(queue: 'teams-cards' | 'teams-cards-poison'): Promise<unknown[]> {
  const out: unknown[] = [];
  for (;;) {
    const res = await az.clients.queue(queue).receiveMessages({ numberOfMessages: 32, visibilityTimeout: 1 });
    if (res.receivedMessageItems.length === 0) return out;
    for (const m of res.receivedMessageItems) {
      out.push(JSON.parse(Buffer.from(m.messageText, 'base64').toString('utf8')));
      await az.clients.queue(queue).deleteMessage(m.messageId, m.popReceipt);
    }
  }
}

const ticket = { id: 'D-1', title: 'Disk full', priority: 'P2', status: 'Open', url: 'https://itil.example.com/t/D-1' };

beforeEach(async () => {
  fake.reset();
  await drain('teams-cards');
  await drain('teams-cards-poison');
});

describe('deliverCard', () => {
  it('puts the message back, delayed, when the rate limiter has no slot in time; the claim is given back', async () => {
    const limiter = new WebhookRateLimiter([{ limit: 1, intervalMs: 60_000 }]);
    const d = deps(new WebhookSender({ limiter, maxLimiterWaitMs: 200 }));
    const id1 = await seed(d, 'd-limit', { kind: 'critical_ticket', ticket });
    const id2 = await seed(d, 'd-limit', { kind: 'critical_ticket', ticket: { ...ticket, id: 'D-2' } });
    expect(await deliverCard(d, { tenantId: T, notificationId: id1 }, { log, dequeueCount: 1 })).toBe('sent');
    expect(await deliverCard(d, { tenantId: T, notificationId: id2 }, { log, dequeueCount: 1 })).toBe('deferred');
    expect(fake.accepted('d-limit')).toHaveLength(1);
    expect((await d.log.get(T, id2))?.status).toBe('queued');
    expect(await d.processed.seen('teams-card', T, id2)).toBe(false);
    const props = await az.clients.queue('teams-cards').getProperties();
    expect(props.approximateMessagesCount).toBe(1); // invisible for 60 s, so drain() cannot see it yet
  });

  it('a Retry-After longer than we may wait defers by that much, and too many deferrals poison the message', async () => {
    const d = deps(new WebhookSender({ limiter: new WebhookRateLimiter(), maxDelayMs: 500 }));
    const id = await seed(d, 'd-throttled', { kind: 'critical_ticket', ticket });
    fake.failAlways('d-throttled', '429');
    expect(await deliverCard(d, { tenantId: T, notificationId: id }, { log, dequeueCount: 1 })).toBe('deferred');
    await new Promise((r) => setTimeout(r, 1_200));
    expect(await drain('teams-cards')).toEqual([{ tenantId: T, notificationId: id, deferrals: 1 }]);
    expect(await deliverCard(d, { tenantId: T, notificationId: id, deferrals: 20 }, { log, dequeueCount: 1 })).toBe('poisoned');
    expect(await drain('teams-cards-poison')).toEqual([{ tenantId: T, notificationId: id, deferrals: 20 }]);
    expect(await d.log.get(T, id)).toMatchObject({ status: 'failed', reason: expect.stringMatching(/Teams asked to wait 1 s/) });
    fake.failAlways('d-throttled', undefined);
  });

  it('a failure before the last attempt is recorded but does not mark the channel failing; the last one does', async () => {
    const d = deps(new WebhookSender({ limiter: new WebhookRateLimiter(), maxAttempts: 1 }));
    const id = await seed(d, 'd-flaky', { kind: 'critical_ticket', ticket });
    fake.failAlways('d-flaky', '503');
    await expect(deliverCard(d, { tenantId: T, notificationId: id }, { log, dequeueCount: 1 })).rejects.toThrow('Teams post failed: Teams webhook answered 503');
    expect(await d.channels.get(T, 'critical')).toMatchObject({ failing: false, lastPostOutcome: 'failed' });
    expect(await d.log.get(T, id)).toMatchObject({ status: 'queued', reason: 'Teams webhook answered 503', attempts: 1 });
    expect(await d.processed.seen('teams-card', T, id)).toBe(false);
    await expect(deliverCard(d, { tenantId: T, notificationId: id }, { log, dequeueCount: 5 })).rejects.toThrow();
    expect(await d.channels.get(T, 'critical')).toMatchObject({ failing: true });
    expect(await d.log.get(T, id)).toMatchObject({ status: 'failed', attempts: 2 });
    fake.failAlways('d-flaky', undefined);
  });

  it('a warning snoozed after it was queued is not posted', async () => {
    const d = deps(new WebhookSender({ limiter: new WebhookRateLimiter() }));
    const id = await seed(d, 'd-snooze', { kind: 'sla_warning', ticket: { ...ticket, id: 'D-5' }, time_remaining_minutes: 10 });
    await d.state.snooze(T, 'D-5', Date.now() + 60_000);
    expect(await deliverCard(d, { tenantId: T, notificationId: id }, { log, dequeueCount: 1 })).toBe('suppressed');
    expect(fake.posts('d-snooze')).toEqual([]);
    expect((await d.log.get(T, id))?.status).toBe('suppressed');
  });

  it('a redelivery while an unconfirmed claim is held is put back for later, never dropped; once the claim is stale it posts, flagged as a possible repeat', async () => {
    let now = Date.now();
    const d = deps(new WebhookSender({ limiter: new WebhookRateLimiter() }), () => now);
    const id = await seed(d, 'd-crash', { kind: 'critical_ticket', ticket });
    // The invocation that died mid-post: it claimed, opened its attempt, and never wrote the outcome.
    expect(await d.processed.claimProvisional('teams-card', T, id, { staleAfterMs: 11 * 60_000 })).toBe('claimed');
    await d.log.update(T, id, { lastAttemptAt: new Date(now).toISOString(), attemptOpen: true });

    const queued = async () => (await az.clients.queue('teams-cards').getProperties()).approximateMessagesCount ?? 0;
    const before = await queued();
    expect(await deliverCard(d, { tenantId: T, notificationId: id }, { log, dequeueCount: 2 })).toBe('waiting');
    expect(fake.posts('d-crash')).toEqual([]);
    expect((await d.log.get(T, id))?.status).toBe('queued');
    // The copy that brings it back is on the queue (invisible for its delay, so only counted).
    expect(await queued()).toBe(before + 1);

    now += 12 * 60_000;
    expect(await deliverCard(d, { tenantId: T, notificationId: id, claimWaits: 1 }, { log, dequeueCount: 1 })).toBe('sent');
    expect(fake.accepted('d-crash')).toHaveLength(1);
    expect(JSON.stringify(fake.accepted('d-crash')[0]?.card)).toContain(POSSIBLE_REPEAT_TEXT);
    expect(await d.log.get(T, id)).toMatchObject({ status: 'sent', possibleRepeat: true, attemptOpen: false });
    // Confirmed: any later copy is a duplicate at once.
    expect(await deliverCard(d, { tenantId: T, notificationId: id }, { log, dequeueCount: 1 })).toBe('duplicate');
    expect(fake.accepted('d-crash')).toHaveLength(1);
  });

  it('two copies of one message at the same time: one posts, the other waits and then finds it sent; no repeat flag', async () => {
    const d = deps(new WebhookSender({ limiter: new WebhookRateLimiter() }));
    const id = await seed(d, 'd-twice', { kind: 'critical_ticket', ticket });
    const outcomes = await Promise.all([1, 2].map(() => deliverCard(d, { tenantId: T, notificationId: id }, { log, dequeueCount: 1 })));
    expect(outcomes.sort()).toEqual(['sent', 'waiting']);
    expect(await deliverCard(d, { tenantId: T, notificationId: id, claimWaits: 1 }, { log, dequeueCount: 1 })).toBe('duplicate');
    expect(fake.accepted('d-twice')).toHaveLength(1);
    expect(JSON.stringify(fake.accepted('d-twice')[0]?.card)).not.toContain(POSSIBLE_REPEAT_TEXT);
    expect(await d.log.get(T, id)).not.toHaveProperty('possibleRepeat');
  });

  it('a plain claim from before claims were provisional is taken over once stale, not dropped', async () => {
    let now = Date.now();
    const d = deps(new WebhookSender({ limiter: new WebhookRateLimiter() }), () => now);
    const id = await seed(d, 'd-legacy', { kind: 'critical_ticket', ticket }, { lastAttemptAt: new Date(now).toISOString() });
    await d.processed.claim('teams-card', T, id);
    expect(await deliverCard(d, { tenantId: T, notificationId: id }, { log, dequeueCount: 2 })).toBe('waiting');
    now += 12 * 60_000;
    expect(await deliverCard(d, { tenantId: T, notificationId: id }, { log, dequeueCount: 1 })).toBe('sent');
    expect(fake.accepted('d-legacy')).toHaveLength(1);
  });

  it('a removed channel is a failure nothing can retry: poison, with the reason', async () => {
    const d = deps(new WebhookSender({ limiter: new WebhookRateLimiter() }));
    const id = await seed(d, 'd-removed', { kind: 'critical_ticket', ticket });
    await d.channels.delete(T, 'critical');
    expect(await deliverCard(d, { tenantId: T, notificationId: id }, { log, dequeueCount: 1 })).toBe('poisoned');
    expect(await d.log.get(T, id)).toMatchObject({ status: 'failed', reason: 'channel critical was removed' });
  });

  it('never logs the webhook URL', () => {
    expect(lines.join('\n')).not.toContain(fake.baseUrl);
  });
});
