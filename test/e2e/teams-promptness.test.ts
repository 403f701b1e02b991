import { mkdtempSync, rmSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import os from 'node:os';
import { startAzurite, type AzuriteInstance } from '../../runner/azurite';
import { startFakeTeams, type FakeTeams } from '../fakes/teams';
import { apiClient, startRunner, localAppEnv, type RunningHost } from '../helpers/runner';
import { TEST_JWT_SECRET } from '../helpers/jwt';

/**
 * Issue 12 finding 8, as the operator tried it: the app with TEAMS_WEBHOOK_URL at a webhook that answers
 * 2xx (and 429 with Retry-After: 1 twice for one ticket); one SLA warning, then 20 warnings for another
 * ticket, then one SLA breach for a third. Repeated, with the three sent in different rhythms, because the
 * report saw a card missing in some runs only. Every card must arrive, once, within a generous bound.
 */
const ROUNDS = 6;
const ARRIVES_WITHIN_MS = 40_000;

describe('Teams cards arrive promptly (fallback webhook, 429s on one ticket, a burst on another)', () => {
  let azurite: AzuriteInstance;
  let fake: FakeTeams;
  let host: RunningHost;
  let dir: string;

  beforeAll(async () => {
    dir = mkdtempSync(`${os.tmpdir()}/itil-teams-prompt-`);
    azurite = await startAzurite();
    fake = await startFakeTeams();
    host = await startRunner({
      env: {
        ...localAppEnv({ storage: azurite.connectionString, secretKey: randomBytes(32).toString('base64'), secretDir: dir, jwtSecret: TEST_JWT_SECRET, publicBaseUrl: 'http://localhost:7071' }),
        TEAMS_WEBHOOK_URL: fake.url('prompt-fallback'),
        WEBSITE_INSTANCE_ID: undefined,
        WEBSITE_SITE_NAME: undefined,
        CONTAINER_APP_NAME: undefined,
      },
    });
  });
  afterAll(async () => {
    await host?.stop();
    await fake?.stop();
    await azurite?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  const api = apiClient(() => host);
  const ticket = (id: string) => ({ id, title: `Ticket ${id}`, priority: 'P2', status: 'Open', url: `https://itil.example.com/t/${id}` });
  const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));

  it(`${ROUNDS} rounds: every card arrives once, none waits unlogged`, async () => {
    for (let round = 0; round < ROUNDS; round++) {
      // Each round its own tenant (no channels, opted in: the fallback serves it) and tickets.
      const tenant = `tenant-prompt-${round}`;
      const notify = async (body: unknown) => {
        const res = await api(`teams/notify/${tenant}`, { method: 'POST', tenant, json: body });
        expect(res.status).toBe(202);
        return (await res.json()) as { notification_id: string; status: string; channel: string };
      };
      const opt = await api(`teams/channels/${tenant}`, { method: 'PUT', tenant, json: { settings: { use_fallback: true } } });
      expect(opt.status).toBe(200);
      const [a, b, c] = ['A', 'B', 'C'].map((t) => `${t}-${round}`) as [string, string, string];
      fake.injectForTicket('prompt-fallback', c, '429', '429');

      const first = await notify({ kind: 'sla_warning', ticket: ticket(a), time_remaining_minutes: 30 });
      expect(first).toMatchObject({ status: 'queued', channel: 'fallback' });
      // Rhythms: at once; while the first card gathers; after it went out. Bursts one by one or together.
      await pause([0, 2_500, 6_000][round % 3] as number);
      const burst =
        round % 2 === 0
          ? await Promise.all(Array.from({ length: 20 }, (_, i) => notify({ kind: 'sla_warning', ticket: ticket(b), time_remaining_minutes: 30 - i })))
          : await (async () => {
              const out = [];
              for (let i = 0; i < 20; i++) out.push(await notify({ kind: 'sla_warning', ticket: ticket(b), time_remaining_minutes: 30 - i }));
              return out;
            })();
      const opened = burst.filter((r) => r.status === 'queued');
      expect(opened).toHaveLength(1);
      expect(burst.filter((r) => r.status === 'collapsed')).toHaveLength(19);
      const breach = await notify({ kind: 'sla_breach', ticket: ticket(c) });
      expect(breach.status).toBe('queued');

      const ids = [first.notification_id, (opened[0] as { notification_id: string }).notification_id, breach.notification_id];
      const deadline = Date.now() + ARRIVES_WITHIN_MS;
      while (!ids.every((id) => fake.accepted('prompt-fallback').some((p) => p.notificationId === id)) && Date.now() < deadline) await pause(200);
      const missing = ids.filter((id) => !fake.accepted('prompt-fallback').some((p) => p.notificationId === id));
      expect({ round, missing }).toEqual({ round, missing: [] });
    }
    // Once each: no card arrived twice in any round.
    const ids = fake.accepted('prompt-fallback').map((p) => p.notificationId);
    expect(ids).toHaveLength(3 * ROUNDS);
    expect(new Set(ids).size).toBe(3 * ROUNDS);
    expect(fake.violations()).toBe(0);
    // The breach's throttled posts were retried, and said so.
    expect(host.output().match(/retrying Teams post/g)?.length).toBeGreaterThanOrEqual(2 * ROUNDS);
    // Every request left with a log line of its own: three cards and two throttled retries per round.
    expect(host.output().match(/posting card/g)?.length).toBeGreaterThanOrEqual(5 * ROUNDS);
  }, ROUNDS * (ARRIVES_WITHIN_MS + 20_000));
});
