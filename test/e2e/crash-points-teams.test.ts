import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import os from 'node:os';
import path from 'node:path';
import { startAzurite, type AzuriteInstance } from '../../runner/azurite';
import { startFakeTeams, type FakeTeams } from '../fakes/teams';
import { crashEnv, faultLog, SHORT_TIMEOUT_ENV, waitForCrash } from '../helpers/crash';
import { apiClient, queueLength, startRunner, localAppEnv, ROOT, type RunningHost } from '../helpers/runner';
import { TEST_JWT_SECRET } from '../helpers/jwt';

/**
 * Issue 12, crash points of the Teams sender (`teamsCardSender` → `deliverCard`): the runner is SIGKILLed
 * right after each durable step, restarted, and the queue brings the message back (the function timeout
 * is 15 s here, so a message held by the dead process is visible again 15 s after it was taken).
 *
 * A case may crash more than once: `points` are taken in turn, one runner per point, then a runner
 * without faults finishes the work.
 *
 * What each case must end with: the card shown once in its channel, the notification `sent` — except
 * after `teams.card.posted`, where Teams already showed the card and we could not record it: Teams webhooks
 * take no idempotency key, so the takeover posts it once more, flagged as a possible repeat (README).
 */
interface Case {
  points: string[];
  /** Cards the channel shows in the end. */
  shown: 1 | 2;
  /** The notification says a repeat is possible (the last post followed an open attempt). */
  possibleRepeat: boolean;
}

const CASES: Case[] = [
  { points: ['teams.card.claimed'], shown: 1, possibleRepeat: false },
  { points: ['teams.card.attempt-opened'], shown: 1, possibleRepeat: true },
  { points: ['teams.card.posted'], shown: 2, possibleRepeat: true },
  { points: ['teams.card.recorded'], shown: 1, possibleRepeat: false },
  { points: ['teams.card.outcome-recorded'], shown: 1, possibleRepeat: false },
  { points: ['teams.card.confirmed'], shown: 1, possibleRepeat: false },
  // The copy that found the dead holder's claim put itself back for later, and died before it was completed:
  // two copies on the queue, one card.
  { points: ['teams.card.claimed', 'teams.card.wait-requeued'], shown: 1, possibleRepeat: false },
];

describe('Teams sender: SIGKILL after every durable step, restart, redelivery', () => {
  let azurite: AzuriteInstance;
  let fake: FakeTeams;
  let host: RunningHost | undefined;
  let dir: string;
  const secretKey = randomBytes(32).toString('base64');

  beforeAll(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'itil-crash-teams-'));
    azurite = await startAzurite();
    fake = await startFakeTeams();
  });
  afterAll(async () => {
    await host?.stop();
    await fake?.stop();
    await azurite?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  const baseEnv = () => ({
    ...localAppEnv({ storage: azurite.connectionString, secretKey, secretDir: path.join(dir, 'secrets'), jwtSecret: TEST_JWT_SECRET, publicBaseUrl: 'http://localhost:7071' }),
    TEAMS_WEBHOOK_URL: undefined,
    WEBSITE_INSTANCE_ID: undefined,
    WEBSITE_SITE_NAME: undefined,
    CONTAINER_APP_NAME: undefined,
  });
  const api = apiClient(() => host as RunningHost);
  const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));
  const notification = async (tenant: string, id: string) => {
    const res = await api(`teams/notifications/${tenant}?limit=10`, { tenant });
    const { notifications } = (await res.json()) as { notifications: Array<{ notification_id: string; status: string; possible_repeat: boolean; attempts: number }> };
    return notifications.find((n) => n.notification_id === id);
  };

  it.each(CASES.map((c) => [c.points.join(' → '), c] as const))('killed after %s', async (_name, c) => {
    const tag = c.points.join('-').replace(/[^a-z-]/g, '');
    const tenant = `tenant-crash-${tag}`.slice(0, 60);
    const channel = `crash-${tag}`;
    const log = path.join(dir, `${tag}.faults`);

    host = await startRunner({ env: { ...baseEnv(), ...crashEnv(c.points[0] as string, log) } });
    expect((await api(`teams/channels/${tenant}`, { method: 'PUT', tenant, json: { channels: [{ name: 'sla-breaches', webhook_url: fake.url(channel) }], settings: { gather_seconds: 0 } } })).status).toBe(200);
    const res = await api(`teams/notify/${tenant}`, { method: 'POST', tenant, json: { kind: 'sla_breach', ticket: { id: `T-${tag}`.slice(0, 60), title: 'Crash', priority: 'P1', status: 'Open', url: 'https://itil.example.com/t/1' } } });
    expect(res.status).toBe(202);
    const { notification_id: id } = (await res.json()) as { notification_id: string };
    await waitForCrash(host, log, c.points[0] as string);

    for (const point of c.points.slice(1)) {
      host = await startRunner({ env: { ...baseEnv(), ...crashEnv(point, path.join(dir, `${tag}-${point}.faults`)) } });
      await waitForCrash(host, path.join(dir, `${tag}-${point}.faults`), point, 90_000);
    }

    host = await startRunner({ env: { ...baseEnv(), ...SHORT_TIMEOUT_ENV } });
    const deadline = Date.now() + 120_000;
    // Done when the card is recorded sent and no copy of its message is left (the one the dead process held
    // comes back once its 15 s are up, and must change nothing). Cases run one after another, so the queue
    // holds only this case's copies.
    while (Date.now() < deadline && ((await notification(tenant, id))?.status !== 'sent' || fake.accepted(channel).length < c.shown || (await queueLength(azurite.connectionString, 'teams-cards')) > 0)) await pause(500);
    expect(await queueLength(azurite.connectionString, 'teams-cards')).toBe(0);
    expect(await queueLength(azurite.connectionString, 'teams-cards-poison')).toBe(0);

    expect(fake.accepted(channel).map((p) => p.notificationId)).toEqual(Array.from({ length: c.shown }, () => id));
    expect(await notification(tenant, id)).toMatchObject({ status: 'sent', possible_repeat: c.possibleRepeat });
    // A card posted after an open attempt says it may be a repeat; a card posted on a first attempt never does.
    const flagged = fake.accepted(channel).map((p) => JSON.stringify(p.card).includes('Possible repeat'));
    expect(flagged).toEqual(c.shown === 2 ? [false, true] : [c.possibleRepeat]);
    await host.stop();
    host = undefined;
  }, 300_000);

  /**
   * The intake (`teamsNotify` → `acceptNotification`): killed while answering, so the engine sees no answer
   * and sends the notification again (the same body; it has no idempotency key to send). An SLA warning is
   * flood-controlled: its retry must end as one card, never as a count on a card that will not come. An SLA
   * breach is not: after `teams.notify.recorded` its retry is a second notification, and a second card.
   */
  const NOTIFY_CASES: Array<{ point: string; kind: 'sla_warning' | 'sla_breach'; shown: 1 | 2; key?: true }> = [
    { point: 'teams.notify.admitted', kind: 'sla_warning', shown: 1 },
    { point: 'teams.notify.queued', kind: 'sla_warning', shown: 1 },
    { point: 'teams.notify.recorded', kind: 'sla_warning', shown: 1 },
    { point: 'teams.notify.recorded', kind: 'sla_breach', shown: 2 },
    // With the same Idempotency-Key on the retry, every step is exactly once, breaches too.
    { point: 'teams.notify.admitted', kind: 'sla_warning', shown: 1, key: true },
    { point: 'teams.notify.queued', kind: 'sla_breach', shown: 1, key: true },
    { point: 'teams.notify.recorded', kind: 'sla_breach', shown: 1, key: true },
  ];

  it.each(NOTIFY_CASES.map((c) => [`${c.kind} killed after ${c.point}${c.key ? ' (Idempotency-Key)' : ''}`, c] as const))('intake: %s, the engine sends it again', async (_name, c) => {
    const tag = `${c.kind}-${c.point}${c.key ? '-key' : ''}`.replace(/[^a-z-]/g, '').replace('teamsnotify', '');
    const headers: Record<string, string> = c.key ? { 'idempotency-key': `engine-${tag}` } : {};
    const tenant = `tenant-intake-${tag}`.slice(0, 60);
    const channel = `intake-${tag}`;
    const log = path.join(dir, `${tag}.faults`);
    const body = { kind: c.kind, ticket: { id: `T-${tag}`.slice(0, 60), title: 'Crash', priority: 'P1', status: 'Open', url: 'https://itil.example.com/t/3' }, ...(c.kind === 'sla_warning' ? { time_remaining_minutes: 15 } : {}) };
    const channels = { channels: [{ name: 'sla-breaches', webhook_url: fake.url(channel) }], settings: { gather_seconds: 0 } };

    host = await startRunner({ env: { ...baseEnv(), ...crashEnv(c.point, log) } });
    expect((await api(`teams/channels/${tenant}`, { method: 'PUT', tenant, json: channels })).status).toBe(200);
    // The kill cuts the answer off: the engine gets a connection error, not a status.
    await expect(api(`teams/notify/${tenant}`, { method: 'POST', tenant, json: body, headers })).rejects.toThrow();
    await waitForCrash(host, log, c.point);

    host = await startRunner({ env: { ...baseEnv(), ...SHORT_TIMEOUT_ENV } });
    const retry = await api(`teams/notify/${tenant}`, { method: 'POST', tenant, json: body, headers });
    expect(retry.status).toBe(202);
    const answer = (await retry.json()) as { notification_id: string; status: string; collapsed_into?: string };
    const deadline = Date.now() + 90_000;
    while (Date.now() < deadline && fake.accepted(channel).length < c.shown) await pause(500);
    // Whatever else is still on the queue for it (the dead request's message) must not add a card.
    await pause(5_000);
    const shown = fake.accepted(channel).map((p) => p.notificationId);
    expect(shown).toHaveLength(c.shown);
    // The retry's notification is on a card: its own, or the one it was counted on (which was recorded).
    expect(shown).toContain(answer.status === 'collapsed' ? answer.collapsed_into : answer.notification_id);
    if (c.key) {
      // A third try under the key answers what was decided, and queues nothing more.
      const again = await api(`teams/notify/${tenant}`, { method: 'POST', tenant, json: body, headers });
      expect(again.status).toBe(202);
      expect(await again.json()).toMatchObject({ notification_id: answer.notification_id, status: answer.status });
      await pause(3_000);
      expect(fake.accepted(channel)).toHaveLength(c.shown);
    }
    await host.stop();
    host = undefined;
  }, 300_000);

  it('every crash point of the sender has a case above', async () => {
    const log = path.join(dir, 'all.faults');
    host = await startRunner({ env: { ...baseEnv(), ...SHORT_TIMEOUT_ENV, RUNNER_FAULT_LOG: log } });
    const tenant = 'tenant-crash-census';
    expect((await api(`teams/channels/${tenant}`, { method: 'PUT', tenant, json: { channels: [{ name: 'sla-breaches', webhook_url: fake.url('census') }], settings: { gather_seconds: 0 } } })).status).toBe(200);
    const res = await api(`teams/notify/${tenant}`, { method: 'POST', tenant, json: { kind: 'sla_breach', ticket: { id: 'T-census', title: 'Census', priority: 'P1', status: 'Open', url: 'https://itil.example.com/t/2' } } });
    expect(res.status).toBe(202);
    const deadline = Date.now() + 60_000;
    while (Date.now() < deadline && !faultLog(log).includes('teams.card.confirmed')) await pause(250);
    const passed = new Set(faultLog(log).filter((p) => p.startsWith('teams.')));
    const covered = new Set([...CASES.flatMap((c) => c.points), ...NOTIFY_CASES.map((c) => c.point)]);
    // The normal path passes every point but the wait's; the cases cover each point passed and the wait's.
    expect([...passed].filter((p) => !covered.has(p))).toEqual([]);
    expect([...passed].sort()).toEqual([...covered].filter((p) => p !== 'teams.card.wait-requeued').sort());
    // And every point written in the sender's code, on any path.
    const dirTeams = path.join(ROOT, 'src', 'connectors', 'teams');
    const inSource = readdirSync(dirTeams)
      .filter((f) => f.endsWith('.ts'))
      .flatMap((f) => [...readFileSync(path.join(dirTeams, f), 'utf8').matchAll(/faultPoint\('([\w.-]+)'\)/g)].map((m) => m[1] as string));
    expect(inSource.sort()).toEqual([...covered].sort());
  }, 120_000);
});
