import { mkdtempSync, rmSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import os from 'node:os';
import { startAzurite, type AzuriteInstance } from '../../runner/azurite';
import { startFakeTeams, type FakeTeams } from '../fakes/teams';
import { apiClient, nextMessage, queueLength, sendRaw, startRunner, type ApiCallInit, type RunningHost, localAppEnv } from '../helpers/runner';
import { TEST_JWT_SECRET } from '../helpers/jwt';

/**
 * Delivery under load and failure, end to end through the local runner: Teams' rate limits, injected
 * 429s (status and legacy in-body), at-least-once queue delivery, and webhooks that never recover.
 */
describe('Teams card delivery end to end', () => {
  let azurite: AzuriteInstance;
  let fake: FakeTeams;
  let host: RunningHost;
  let secretDir: string;

  beforeAll(async () => {
    secretDir = mkdtempSync(`${os.tmpdir()}/itil-teams-delivery-`);
    azurite = await startAzurite();
    fake = await startFakeTeams();
    host = await startRunner({
      env: {
        ...localAppEnv({ storage: azurite.connectionString, secretKey: randomBytes(32).toString('base64'), secretDir: secretDir, jwtSecret: TEST_JWT_SECRET, publicBaseUrl: 'http://localhost:7071' }),
        TEAMS_WEBHOOK_URL: undefined,
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
    rmSync(secretDir, { recursive: true, force: true });
  });

  const call = apiClient(() => host);
  const api = (path: string, tenant: string, init: ApiCallInit = {}) => call(path, { ...init, tenant });
  const putChannels = async (tenant: string, body: unknown) => expect((await api(`teams/channels/${tenant}`, tenant, { method: 'PUT', json: body })).status).toBe(200);
  const notify = async (tenant: string, body: unknown) => {
    const res = await api(`teams/notify/${tenant}`, tenant, { method: 'POST', json: body });
    expect(res.status).toBe(202);
    return (await res.json()) as { notification_id: string; status: string; channel: string };
  };
  const notifications = async (tenant: string) =>
    ((await (await api(`teams/notifications/${tenant}?limit=500`, tenant)).json()) as { notifications: Array<Record<string, unknown>> }).notifications;
  const waitFor = async <T>(what: string, fn: () => T | undefined | Promise<T | undefined>, timeoutMs: number): Promise<T> => {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const v = await fn();
      if (v !== undefined) return v;
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 250));
    }
  };
  const ticket = (id: string) => ({ id, title: `Ticket ${id}`, priority: 'P2', status: 'Open', url: `https://itil.example.com/t/${id}` });

  it(
    '200 notifications across 3 channels with injected 429s → all delivered, none twice, rate limit never exceeded',
    async () => {
      await putChannels('tenant-load', {
        channels: [
          { name: 'critical', webhook_url: fake.url('load-critical') },
          { name: 'escalations', webhook_url: fake.url('load-escalations', 'incoming-webhook'), kind: 'incoming-webhook' },
          { name: 'sla-breaches', webhook_url: fake.url('load-sla') },
        ],
        settings: { gather_seconds: 0 },
      });
      fake.failEvery('load-critical', 7, '429');
      fake.failEvery('load-escalations', 5, '429-body');
      fake.failEvery('load-sla', 9, '429');
      fake.inject('load-sla', '503');

      const kinds = ['critical_ticket', 'escalation', 'sla_breach'] as const;
      const ids: string[] = [];
      for (let batch = 0; batch < 20; batch++) {
        const results = await Promise.all(
          Array.from({ length: 10 }, (_, i) => {
            const n = batch * 10 + i;
            return notify('tenant-load', { kind: kinds[n % 3], ticket: ticket(`LOAD-${n}`) });
          }),
        );
        for (const r of results) {
          expect(r.status).toBe('queued');
          ids.push(r.notification_id);
        }
      }
      expect(new Set(ids).size).toBe(200);

      await waitFor('200 accepted cards', () => (fake.accepted().length >= 200 ? true : undefined), 240_000);
      // Let any stray duplicate arrive before counting.
      await new Promise((r) => setTimeout(r, 3_000));
      const accepted = fake.accepted();
      const byId = new Map<string, number>();
      for (const p of accepted) byId.set(p.notificationId as string, (byId.get(p.notificationId as string) ?? 0) + 1);
      expect(accepted).toHaveLength(200);
      expect([...byId.keys()].sort()).toEqual([...ids].sort());
      expect([...byId.values()].every((c) => c === 1)).toBe(true);
      expect(fake.accepted('load-critical')).toHaveLength(67);
      expect(fake.accepted('load-escalations')).toHaveLength(67);
      expect(fake.accepted('load-sla')).toHaveLength(66);
      const injected = fake.posts().filter((p) => p.outcome === 'injected');
      expect(injected.length).toBeGreaterThanOrEqual(25);
      expect(injected.some((p) => p.status === 200)).toBe(true); // a 429 in a 200 body was among them
      expect(fake.violations()).toBe(0);
      const log = await notifications('tenant-load');
      expect(log).toHaveLength(200);
      expect(log.every((n) => n.status === 'sent')).toBe(true);
      expect(log.some((n) => (n.attempts as number) > 1)).toBe(true);
    },
    300_000,
  );

  it('the same queue message delivered three times posts one card', async () => {
    await putChannels('tenant-dup', { channels: [{ name: 'critical', webhook_url: fake.url('dup-critical') }], settings: { gather_seconds: 3 } });
    const res = await notify('tenant-dup', { kind: 'critical_ticket', ticket: ticket('DUP-1') });
    const copy = Buffer.from(JSON.stringify({ tenantId: 'tenant-dup', notificationId: res.notification_id })).toString('base64');
    await sendRaw(azurite.connectionString, 'teams-cards', copy);
    await sendRaw(azurite.connectionString, 'teams-cards', copy);
    await waitFor('the card', () => fake.accepted('dup-critical')[0], 30_000);
    // The original (delayed 3 s by gather) arrives after the copies; wait it out.
    await new Promise((r) => setTimeout(r, 8_000));
    expect(fake.accepted('dup-critical').map((p) => p.notificationId)).toEqual([res.notification_id]);
    expect(host.output()).toContain('duplicate card delivery skipped');
    await waitFor('an empty queue', async () => ((await queueLength(azurite.connectionString, 'teams-cards')) === 0 ? true : undefined), 20_000);
  }, 60_000);

  it('a webhook that refuses the card (404) → poison at once, reason recorded, channel failing', async () => {
    await putChannels('tenant-gone', { channels: [{ name: 'critical', webhook_url: fake.url('gone-critical') }], settings: { gather_seconds: 0 } });
    fake.failAlways('gone-critical', '404');
    const res = await notify('tenant-gone', { kind: 'critical_ticket', ticket: ticket('GONE-1') });
    const poisoned = JSON.parse(await nextMessage(azurite.connectionString, 'teams-cards-poison', 30_000));
    expect(poisoned).toEqual({ tenantId: 'tenant-gone', notificationId: res.notification_id, correlationId: expect.any(String) });
    expect(fake.posts('gone-critical')).toHaveLength(1);
    const [n] = await notifications('tenant-gone');
    expect(n).toMatchObject({ status: 'failed', reason: 'Teams webhook refused the card (404)' });
    const channels = await (await api('teams/channels/tenant-gone', 'tenant-gone')).json();
    expect(channels.channels[0]).toMatchObject({ name: 'critical', failing: true, accepted_last_post: false, last_error: 'Teams webhook refused the card (404)' });
    // Replacing the URL clears the flag (and the deployment's health with it).
    fake.failAlways('gone-critical', undefined);
    await putChannels('tenant-gone', { channels: [{ name: 'critical', webhook_url: fake.url('gone-critical') }] });
    expect((await (await api('teams/channels/tenant-gone', 'tenant-gone')).json()).channels[0]).toMatchObject({ failing: false });
  }, 60_000);

  it(
    'a permanently failing webhook (500) → retried by the runtime, then poison with the reason; the integration shows the channel failing',
    async () => {
      await putChannels('tenant-broken', { channels: [{ name: 'critical', webhook_url: fake.url('broken-critical') }], settings: { gather_seconds: 0 } });
      fake.failAlways('broken-critical', '500');
      const health = async () => ((await (await fetch(`${host.url}/api/health`)).json()) as { checks: { connectors: Record<string, string> } }).checks.connectors.teams;
      expect(await health()).toBe('up');
      const res = await notify('tenant-broken', { kind: 'critical_ticket', ticket: ticket('BROKEN-1') });
      const poisoned = JSON.parse(await nextMessage(azurite.connectionString, 'teams-cards-poison', 150_000));
      expect(poisoned).toMatchObject({ tenantId: 'tenant-broken', notificationId: res.notification_id });
      // Five deliveries by the runtime (host.json maxDequeueCount), each with its own in-handler retries.
      expect(fake.posts('broken-critical').length).toBe(15);
      const [n] = await notifications('tenant-broken');
      expect(n).toMatchObject({ status: 'failed', reason: 'Teams webhook answered 500', attempts: 15 });
      const channels = await (await api('teams/channels/tenant-broken', 'tenant-broken')).json();
      expect(channels.channels[0]).toMatchObject({ failing: true, accepted_last_post: false, last_error: 'Teams webhook answered 500' });
      const integrations = await (await api('integrations/tenant-broken', 'tenant-broken')).json();
      expect(integrations.integrations).toEqual([
        expect.objectContaining({ type: 'teams', status: 'error', last_error: 'channel critical failing: Teams webhook answered 500' }),
      ]);
      expect(await health()).toBe('down');

      // A new webhook URL clears the failing flag; the next card goes through.
      fake.failAlways('broken-critical', undefined);
      await putChannels('tenant-broken', { channels: [{ name: 'critical', webhook_url: fake.url('broken-critical') }] });
      const again = await notify('tenant-broken', { kind: 'critical_ticket', ticket: ticket('BROKEN-2') });
      await waitFor('the card', () => fake.accepted('broken-critical').find((p) => p.notificationId === again.notification_id), 30_000);
      const after = await (await api('integrations/tenant-broken', 'tenant-broken')).json();
      expect(after.integrations[0]).toMatchObject({ status: 'active' });
      // Other tenants' channels were never marked.
      const load = await (await api('teams/channels/tenant-load', 'tenant-load')).json();
      expect(load.channels.every((c: { failing: boolean }) => !c.failing)).toBe(true);
    },
    200_000,
  );

  it('logs never hold a webhook URL', () => {
    const out = host.output();
    expect(out).toContain('card sent');
    expect(out).not.toContain(fake.baseUrl);
    expect(out).not.toMatch(/sig=[0-9a-f]{32}/);
  });
});
