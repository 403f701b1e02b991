import { mkdtempSync, rmSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import os from 'node:os';
import { startAzurite, type AzuriteInstance } from '../../runner/azurite';
import { startFakeTeams, type FakeTeams } from '../fakes/teams';
import { apiClient, startRunner, type ApiCallInit, type RunningHost, localAppEnv } from '../helpers/runner';
import { TEST_JWT_SECRET } from '../helpers/jwt';
import { maxInWindow } from '../helpers/windows';

/** The webhook limit the runners are given: small, so that the load exceeds it within seconds. */
const WINDOW = { limit: 4, intervalMs: 2_000 };

/**
 * Scale-out: three runner processes (three Functions instances) on one Azurite and one fake Teams, all
 * taking cards off the same queue for the same webhook. Teams counts what arrives at the webhook, so
 * the check is on the fake's arrival times: in no window more than the limit, every card once.
 */
describe('Teams webhook limit across three instances', () => {
  let azurite: AzuriteInstance;
  let fake: FakeTeams;
  let hosts: RunningHost[] = [];
  let secretDir: string;

  beforeAll(async () => {
    secretDir = mkdtempSync(`${os.tmpdir()}/itil-teams-scaleout-`);
    azurite = await startAzurite();
    fake = await startFakeTeams();
    // One deployment: the same storage, secret store and settings for every instance.
    const env = {
      ...localAppEnv({ storage: azurite.connectionString, secretKey: randomBytes(32).toString('base64'), secretDir, jwtSecret: TEST_JWT_SECRET, publicBaseUrl: 'http://localhost:7071' }),
      TEAMS_WEBHOOK_RATE_WINDOWS: `${WINDOW.limit}/${WINDOW.intervalMs}`,
      TEAMS_WEBHOOK_URL: undefined,
      WEBSITE_INSTANCE_ID: undefined,
      WEBSITE_SITE_NAME: undefined,
      CONTAINER_APP_NAME: undefined,
    };
    hosts = await Promise.all([0, 1, 2].map(() => startRunner({ env })));
  }, 120_000);

  afterAll(async () => {
    await Promise.all(hosts.map((h) => h.stop()));
    await fake?.stop();
    await azurite?.stop();
    rmSync(secretDir, { recursive: true, force: true });
  });

  const clients = [0, 1, 2].map((i) => apiClient(() => hosts[i] as RunningHost));
  const api = (i: number, path: string, tenant: string, init: ApiCallInit = {}) => (clients[i % 3] as ReturnType<typeof apiClient>)(path, { ...init, tenant });
  const waitFor = async <T>(what: string, fn: () => T | undefined | Promise<T | undefined>, timeoutMs: number): Promise<T> => {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const v = await fn();
      if (v !== undefined) return v;
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 250));
    }
  };

  it(
    '24 cards for one webhook through 3 instances: at most the limit in any window at Teams, each card exactly once, none lost',
    async () => {
      const tenant = 'tenant-scale';
      const put = await api(0, `teams/channels/${tenant}`, tenant, { method: 'PUT', json: { channels: [{ name: 'critical', webhook_url: fake.url('scale-critical') }], settings: { gather_seconds: 0 } } });
      expect(put.status).toBe(200);

      // Spread over the instances, as a load balancer would: every instance both accepts and delivers.
      const ids = await Promise.all(
        Array.from({ length: 24 }, async (_, n) => {
          const res = await api(n, `teams/notify/${tenant}`, tenant, {
            method: 'POST',
            json: { kind: 'critical_ticket', ticket: { id: `SCALE-${n}`, title: `Ticket ${n}`, priority: 'P1', status: 'Open', url: `https://itil.example.com/t/${n}` } },
          });
          expect(res.status).toBe(202);
          return ((await res.json()) as { notification_id: string }).notification_id;
        }),
      );
      expect(new Set(ids).size).toBe(24);

      await waitFor('24 accepted cards', () => (fake.accepted('scale-critical').length >= 24 ? true : undefined), 120_000);
      // Every notification is recorded as sent before anything is counted, so a stray duplicate would have arrived.
      await waitFor(
        'every notification sent',
        async () => {
          const res = await api(0, `teams/notifications/${tenant}?limit=100`, tenant);
          const { notifications } = (await res.json()) as { notifications: Array<{ status: string }> };
          return notifications.length === 24 && notifications.every((x) => x.status === 'sent') ? true : undefined;
        },
        60_000,
      );

      const accepted = fake.accepted('scale-critical');
      const byId = new Map<string, number>();
      for (const p of accepted) byId.set(p.notificationId as string, (byId.get(p.notificationId as string) ?? 0) + 1);
      expect([...byId.keys()].sort()).toEqual([...ids].sort());
      expect([...byId.values()].every((c) => c === 1)).toBe(true);
      // Teams counts every request that reaches it, accepted or not.
      const arrivals = fake.posts('scale-critical').map((p) => p.at);
      if (process.env.SCALEOUT_DEBUG) console.log(JSON.stringify(fake.posts('scale-critical').map((p) => [p.at - (arrivals[0] as number), p.status, p.notificationId])));
      expect(maxInWindow(arrivals, WINDOW.intervalMs)).toBeLessThanOrEqual(WINDOW.limit);
      expect(fake.violations('scale-critical')).toBe(0);
      // The work really was shared: more than one instance posted cards.
      const posting = hosts.filter((h) => h.output().includes('card sent'));
      expect(posting.length).toBeGreaterThan(1);
    },
    240_000,
  );
});
