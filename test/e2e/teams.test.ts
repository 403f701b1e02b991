import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import os from 'node:os';
import { startAzurite, type AzuriteInstance } from '../../runner/azurite';
import { StorageClients, TABLES } from '../../src/storage';
import { startFakeTeams, officialSchemaAvailable, cardTexts, type FakeTeams, type ReceivedPost } from '../fakes/teams';
import { apiClient, queueLength, startRunner, type RunningHost, localAppEnv } from '../helpers/runner';
import { TEST_JWT_SECRET, tenantToken } from '../helpers/jwt';

/**
 * Teams notifications end to end: the real app in the local runner, real Azurite, and a fake Teams
 * speaking the webhook protocol (envelope, card schema, size, limits). The engine's calls go through
 * the HTTP API; cards arrive through the `teams-cards` queue and the sender function.
 */
describe('Teams notifications end to end', () => {
  let azurite: AzuriteInstance;
  let fake: FakeTeams;
  let host: RunningHost;
  let secretDir: string;
  const localKey = randomBytes(32).toString('base64');
  const PUBLIC_BASE_URL = 'https://connectors.example.com';
  const sigs: string[] = [];
  const tokens: string[] = [];

  beforeAll(async () => {
    secretDir = mkdtempSync(`${os.tmpdir()}/itil-teams-e2e-`);
    azurite = await startAzurite();
    fake = await startFakeTeams();
    const fallback = fake.url('fallback');
    sigs.push(new URL(fallback).searchParams.get('sig') as string);
    host = await startRunner({
      env: {
        ...localAppEnv({ storage: azurite.connectionString, secretKey: localKey, secretDir: secretDir, jwtSecret: TEST_JWT_SECRET, publicBaseUrl: PUBLIC_BASE_URL }),
        TEAMS_WEBHOOK_URL: fallback,
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

  const api = apiClient(() => host, { onToken: (t) => tokens.push(t) });

  const webhook = (channel: string, kind: 'workflows' | 'incoming-webhook' = 'workflows') => {
    const url = fake.url(channel, kind);
    const sig = new URL(url).searchParams.get('sig');
    if (sig) sigs.push(sig);
    return url;
  };

  const putChannels = async (tenant: string, body: unknown) => {
    const res = await api(`teams/channels/${tenant}`, { method: 'PUT', tenant, json: body });
    expect(res.status).toBe(200);
    return res.json() as Promise<{ channels: Array<Record<string, unknown>> }>;
  };

  const notify = async (tenant: string, body: unknown) => {
    const res = await api(`teams/notify/${tenant}`, { method: 'POST', tenant, json: body });
    return { status: res.status, body: (await res.json()) as Record<string, unknown> };
  };

  const waitFor = async <T>(what: string, fn: () => T | undefined | Promise<T | undefined>, timeoutMs = 30_000): Promise<T> => {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const v = await fn();
      if (v !== undefined) return v;
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  };
  const cardFor = (id: string) => waitFor(`card ${id}`, () => fake.accepted().find((p) => p.notificationId === id));
  const facts = (p: ReceivedPost) => {
    const set = (p.card?.body as Array<{ type: string; facts?: Array<{ title: string; value: string }> }>).find((e) => e.type === 'FactSet');
    return Object.fromEntries((set?.facts ?? []).map((f) => [f.title, f.value]));
  };
  const actions = (p: ReceivedPost) => (p.card?.actions as Array<{ type: string; title: string; url: string }>).map((a) => ({ type: a.type, title: a.title, url: a.url }));

  const ticket = (id: string, extra: Record<string, unknown> = {}) => ({
    id,
    title: `Mail server down (${id})`,
    priority: 'P1',
    status: 'In progress',
    url: `https://itil.example.com/tickets/${id}`,
    assignee: { name: 'Ada Lovelace', email: 'ada@example.com' },
    ...extra,
  });

  describe('validation', () => {
    it('invalid notification bodies → 400 problem JSON, and nothing is queued or recorded', async () => {
      await putChannels('tenant-v', { channels: [{ name: 'critical', webhook_url: webhook('v-critical') }] });
      const bad: unknown[] = [
        { kind: 'fyi', ticket: ticket('V-1') },
        { kind: 'sla_warning', ticket: ticket('V-1') },
        { kind: 'assignment', ticket: ticket('V-1', { assignee: undefined }) },
        { kind: 'critical_ticket', ticket: ticket('V-1', { url: 'javascript:alert(1)' }) },
        { kind: 'critical_ticket', ticket: { id: 'V-1' } },
        { kind: 'critical_ticket', ticket: ticket('V-1'), extra: true },
      ];
      for (const body of bad) {
        const res = await notify('tenant-v', body);
        expect(res.status).toBe(400);
        expect(res.body).toMatchObject({ status: 400, title: 'Request is invalid' });
      }
      const notJson = await api('teams/notify/tenant-v', { method: 'POST', tenant: 'tenant-v', body: '{not json', headers: { 'content-type': 'application/json' } });
      expect(notJson.status).toBe(400);
      expect(await queueLength(azurite.connectionString, 'teams-cards')).toBe(0);
      const log = await (await api('teams/notifications/tenant-v', { tenant: 'tenant-v' })).json();
      expect(log.notifications).toEqual([]);
    });

    it('a webhook URL that is not a Teams URL → 400, the configuration is unchanged and the URL is not echoed', async () => {
      const res = await api('teams/channels/tenant-v', {
        method: 'PUT',
        tenant: 'tenant-v',
        json: { channels: [{ name: 'escalations', webhook_url: webhook('v-esc') }, { name: 'critical', webhook_url: 'https://evil.example.com/hook?sig=EVILSIG' }] },
      });
      expect(res.status).toBe(400);
      const text = await res.text();
      expect(text).toMatch(/invalid-webhook-url/);
      expect(text).not.toContain('EVILSIG');
      const get = await (await api('teams/channels/tenant-v', { tenant: 'tenant-v' })).json();
      expect(get.channels.map((c: { name: string }) => c.name)).toEqual(['critical']);
    });
  });

  describe('channels', () => {
    it('PUT stores channels; GET lists them with their kind and never returns a URL', async () => {
      const body = await putChannels('tenant-a', {
        channels: [
          { name: 'critical', webhook_url: webhook('a-critical') },
          { name: 'escalations', webhook_url: webhook('a-escalations') },
          { name: 'sla-breaches', webhook_url: webhook('a-sla', 'incoming-webhook'), kind: 'incoming-webhook' },
          { name: 'team-network-ops', webhook_url: webhook('a-netops') },
        ],
        settings: { gather_seconds: 0 },
      });
      expect(body.channels.map((c) => [c.name, c.kind])).toEqual([
        ['critical', 'workflows'],
        ['escalations', 'workflows'],
        ['sla-breaches', 'incoming-webhook'],
        ['team-network-ops', 'workflows'],
      ]);
      const res = await api('teams/channels/tenant-a', { tenant: 'tenant-a' });
      expect(res.status).toBe(200);
      const text = await res.text();
      expect(text).not.toContain(fake.baseUrl);
      for (const s of sigs) expect(text).not.toContain(s);
      expect(JSON.parse(text)).toMatchObject({ tenant_id: 'tenant-a', settings: { flood_window_minutes: 30, gather_seconds: 0 }, fallback: { available: true, in_use: false } });
      // The tenant's Teams integration is listed with the others.
      const integrations = await (await api('integrations/tenant-a', { tenant: 'tenant-a' })).json();
      expect(integrations.integrations).toEqual([expect.objectContaining({ integration_id: 'teams', type: 'teams', status: 'active' })]);
    });

    it('the URLs are in the secret store, encrypted, not in Table Storage', async () => {
      const clients = new StorageClients({ kind: 'connectionString', connectionString: azurite.connectionString });
      const rows = [];
      for await (const e of clients.table(TABLES.teamsChannels).listEntities()) rows.push(e);
      expect(rows.length).toBeGreaterThanOrEqual(4);
      const dump = JSON.stringify(rows);
      expect(dump).not.toContain(fake.baseUrl);
      expect(readdirSync(secretDir).length).toBeGreaterThanOrEqual(5);
    });
  });

  describe('routing and cards', () => {
    it('a critical ticket → a card in the critical channel with the ticket facts and an Open Ticket button', async () => {
      const res = await notify('tenant-a', { kind: 'critical_ticket', ticket: ticket('INC-1') });
      expect(res.status).toBe(202);
      expect(res.body).toEqual({ notification_id: expect.stringMatching(/^n-\d{13}-[0-9a-f]{12}$/), status: 'queued', channel: 'critical' });
      const post = await cardFor(res.body.notification_id as string);
      expect(post.channel).toBe('a-critical');
      expect(post.schemaChecked).toBe(officialSchemaAvailable());
      expect(facts(post)).toMatchObject({ Ticket: 'INC-1', Priority: 'P1', Status: 'In progress', Assignee: 'Ada Lovelace' });
      expect(cardTexts(post.card)).toEqual(expect.arrayContaining(['Critical ticket', 'Mail server down (INC-1)']));
      expect(actions(post)).toEqual([{ type: 'Action.OpenUrl', title: 'Open Ticket', url: 'https://itil.example.com/tickets/INC-1' }]);
      const log = await (await api('teams/notifications/tenant-a?ticket_id=INC-1', { tenant: 'tenant-a' })).json();
      expect(log.notifications).toEqual([
        expect.objectContaining({ notification_id: res.body.notification_id, kind: 'critical_ticket', ticket_id: 'INC-1', channel: 'critical', status: 'sent', count: 1, attempts: 1 }),
      ]);
      const channels = await (await api('teams/channels/tenant-a', { tenant: 'tenant-a' })).json();
      expect(channels.channels.find((c: { name: string }) => c.name === 'critical')).toMatchObject({ accepted_last_post: true, failing: false });
    });

    it('each kind goes to its channel; a ticket whose team has a channel goes there', async () => {
      const esc = await notify('tenant-a', { kind: 'escalation', ticket: ticket('INC-2'), reason: 'Customer called <twice>' });
      const breach = await notify('tenant-a', { kind: 'sla_breach', ticket: ticket('INC-3') });
      const team = await notify('tenant-a', { kind: 'sla_breach', ticket: ticket('INC-4', { team: 'Network Ops' }) });
      expect([esc.body.channel, breach.body.channel, team.body.channel]).toEqual(['escalations', 'sla-breaches', 'team-network-ops']);
      expect((await cardFor(esc.body.notification_id as string)).channel).toBe('a-escalations');
      // A tag-like `<twice>` is kept visible but can no longer be read as markup (see `plain` in cards.ts).
      expect(cardTexts((await cardFor(esc.body.notification_id as string)).card)).toContain('Reason: Customer called < twice>');
      const legacy = await cardFor(breach.body.notification_id as string);
      expect([legacy.channel, legacy.kind, legacy.status]).toEqual(['a-sla', 'incoming-webhook', 200]);
      expect((await cardFor(team.body.notification_id as string)).channel).toBe('a-netops');
    });

    it('an assignment @mentions the assignee', async () => {
      const res = await notify('tenant-a', {
        kind: 'assignment',
        ticket: ticket('INC-5', { team: 'network ops', assignee: { name: 'Grace Hopper', aad_object_id: '5c1f4a6e-9b52-4f0a-8c44-7d1e2f3a4b5c' } }),
      });
      expect(res.body.channel).toBe('team-network-ops');
      const post = await cardFor(res.body.notification_id as string);
      expect(post.card?.msteams).toEqual({ width: 'Full', entities: [{ type: 'mention', text: '<at>Grace Hopper</at>', mentioned: { id: '5c1f4a6e-9b52-4f0a-8c44-7d1e2f3a4b5c', name: 'Grace Hopper' } }] });
      expect(cardTexts(post.card).some((t) => t.includes('<at>Grace Hopper</at>'))).toBe(true);
      // The same assignment again is a repeat; a reassignment is news.
      const repeat = await notify('tenant-a', {
        kind: 'assignment',
        ticket: ticket('INC-5', { team: 'network ops', assignee: { name: 'Grace Hopper', aad_object_id: '5c1f4a6e-9b52-4f0a-8c44-7d1e2f3a4b5c' } }),
      });
      expect(repeat.body).toMatchObject({ status: 'collapsed', collapsed_into: res.body.notification_id });
      const reassigned = await notify('tenant-a', { kind: 'assignment', ticket: ticket('INC-5', { team: 'network ops', assignee: { name: 'Alan Turing', email: 'alan@example.com' } }) });
      expect(reassigned.body.status).toBe('queued');
      const second = await cardFor(reassigned.body.notification_id as string);
      expect((second.card?.msteams as { entities: Array<{ mentioned: { id: string } }> }).entities[0]?.mentioned.id).toBe('alan@example.com');
    });

    it('a notification no configured channel serves → 422, nothing queued', async () => {
      // tenant-v has only a critical channel: SLA warnings have nowhere to go (and no fallback, as it has channels).
      const res = await notify('tenant-v', { kind: 'sla_warning', ticket: ticket('V-2'), time_remaining_minutes: 5 });
      expect(res.status).toBe(422);
      expect(res.body).toMatchObject({ status: 422, detail: expect.stringContaining('sla-breaches') });
      const log = await (await api('teams/notifications/tenant-v', { tenant: 'tenant-v' })).json();
      expect(log.notifications).toEqual([]);
    });

    it('a tenant with no channels gets the deployment fallback webhook only once it opted in', async () => {
      const before = await notify('tenant-nochannels', { kind: 'sla_breach', ticket: ticket('F-0') });
      expect(before.status).toBe(422);
      expect((await (await api('teams/channels/tenant-nochannels', { tenant: 'tenant-nochannels' })).json()).fallback).toMatchObject({ available: true, opted_in: false, in_use: false });
      await putChannels('tenant-nochannels', { settings: { use_fallback: true } });
      const res = await notify('tenant-nochannels', { kind: 'sla_breach', ticket: ticket('F-1') });
      expect(res.body).toMatchObject({ status: 'queued', channel: 'fallback' });
      expect((await cardFor(res.body.notification_id as string)).channel).toBe('fallback');
      const get = await (await api('teams/channels/tenant-nochannels', { tenant: 'tenant-nochannels' })).json();
      expect(get).toMatchObject({ channels: [], fallback: { available: true, opted_in: true, in_use: true, last_post_outcome: 'ok' }, settings: { use_fallback: true } });
      expect(fake.accepted('fallback').some((p) => JSON.stringify(p.card).includes('F-0'))).toBe(false);
    });

    it('a very long ticket is truncated to fit, never refused', async () => {
      const res = await notify('tenant-a', { kind: 'escalation', ticket: ticket('INC-6', { title: '長'.repeat(4000) }), reason: '理'.repeat(8000) });
      const post = await cardFor(res.body.notification_id as string);
      expect(post.bytes).toBeLessThanOrEqual(28 * 1024);
      const log = await (await api('teams/notifications/tenant-a?ticket_id=INC-6', { tenant: 'tenant-a' })).json();
      expect(log.notifications[0]).toMatchObject({ status: 'sent', truncated: true });
    });
  });

  describe('snooze', () => {
    const snoozeLinkOf = (p: ReceivedPost) => actions(p).find((a) => a.title === 'Snooze 30 min')?.url as string;
    const follow = (link: string) => {
      const u = new URL(link);
      return fetch(`${host.url}${u.pathname}${u.search}`);
    };
    // What the confirm page's form sends: a POST to the same URL, no body.
    const post = (link: string, headers: Record<string, string>) => {
      const u = new URL(link);
      return fetch(`${host.url}${u.pathname}`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers }, body: '' });
    };

    beforeAll(async () => {
      await putChannels('tenant-s', { channels: [{ name: 'sla-breaches', webhook_url: webhook('s-sla') }], settings: { gather_seconds: 0 } });
    });

    it('the link opens a confirm page (a GET snoozes nothing); its button works once, suppresses the next warning, and never an SLA breach', async () => {
      const first = await notify('tenant-s', { kind: 'sla_warning', ticket: ticket('S-1'), time_remaining_minutes: 25 });
      const card = await cardFor(first.body.notification_id as string);
      expect(cardTexts(card.card)).toContain('SLA warning: 25 min left');
      const link = snoozeLinkOf(card);
      // No token in the query: the tenant and a short random id in the path.
      expect(link).toMatch(/^https:\/\/connectors\.example\.com\/api\/teams\/snooze\/tenant-s\/[A-Za-z0-9_-]{22}$/);
      tokens.push(link.split('/').pop() as string);

      // What a link previewer or mail scanner does: GET, twice. Nothing is snoozed.
      for (let i = 0; i < 2; i++) {
        const page = await follow(link);
        expect(page.status).toBe(200);
        expect(page.headers.get('content-type')).toBe('text/html; charset=utf-8');
        expect(page.headers.get('referrer-policy')).toBe('no-referrer');
        expect(page.headers.get('content-security-policy')).toContain("form-action 'self'");
        const html = await page.text();
        expect(html).toMatch(/<form method="post">/);
        expect(html).toMatch(/Snooze SLA warnings for ticket S-1 for 30 minutes\?/);
      }
      const stillWarned = await notify('tenant-s', { kind: 'sla_warning', ticket: ticket('S-1'), time_remaining_minutes: 20 });
      expect(stillWarned.body.status).not.toBe('suppressed');

      // A cross-site form post (a browser says so) is refused and snoozes nothing.
      const forgedPost = await post(link, { 'sec-fetch-site': 'cross-site' });
      expect(forgedPost.status).toBe(403);

      const ok = await post(link, { 'sec-fetch-site': 'same-origin', origin: 'https://connectors.example.com' });
      expect(ok.status).toBe(200);
      expect(ok.headers.get('content-type')).toBe('text/html; charset=utf-8');
      expect(await ok.text()).toMatch(/SLA warnings for ticket S-1 are snoozed for 30 minutes/);

      const again = await post(link, {});
      expect(again.status).toBe(410);
      expect(await again.text()).toMatch(/already been used/);

      const next = await notify('tenant-s', { kind: 'sla_warning', ticket: ticket('S-1'), time_remaining_minutes: 10 });
      expect(next.status).toBe(202);
      expect(next.body).toMatchObject({ status: 'suppressed', reason: 'snoozed', snoozed_until: expect.any(String) });

      const breach = await notify('tenant-s', { kind: 'sla_breach', ticket: ticket('S-1') });
      expect(breach.body.status).toBe('queued');
      await cardFor(breach.body.notification_id as string);
      // The suppressed warning never reached the channel.
      expect(fake.accepted('s-sla').filter((p) => p.notificationId === next.body.notification_id)).toEqual([]);
      // Another ticket is not snoozed.
      const other = await notify('tenant-s', { kind: 'sla_warning', ticket: ticket('S-2'), time_remaining_minutes: 25 });
      expect(other.body.status).toBe('queued');
      await cardFor(other.body.notification_id as string);
      // The link id never reached the app's log.
      expect(host.output()).not.toContain(link.split('/').pop() as string);
    });

    it("unknown, malformed and other tenants' link ids are refused with a page, and snooze nothing", async () => {
      const other = await notify('tenant-s', { kind: 'sla_warning', ticket: ticket('S-3'), time_remaining_minutes: 25 });
      const link = snoozeLinkOf(await cardFor(other.body.notification_id as string));
      const id = link.split('/').pop() as string;
      tokens.push(id);
      const unknown = await fetch(`${host.url}/api/teams/snooze/tenant-s/${'A'.repeat(22)}`);
      expect(unknown.status).toBe(404);
      expect(await unknown.text()).toMatch(/not valid/);
      expect((await fetch(`${host.url}/api/teams/snooze/tenant-s/short`)).status).toBe(400);
      // Tenant B's path with tenant A's id: not found there.
      expect((await fetch(`${host.url}/api/teams/snooze/tenant-b/${id}`, { method: 'POST' })).status).toBe(404);
      // The old query-token form is gone.
      expect((await fetch(`${host.url}/api/teams/snooze?token=x`)).status).toBe(404);
      const warn = await notify('tenant-s', { kind: 'sla_warning', ticket: ticket('S-3'), time_remaining_minutes: 5 });
      expect(warn.body.status).not.toBe('suppressed');
    });
  });

  describe('flood control', () => {
    it('20 warnings for one ticket within a minute → one card that counts them', async () => {
      await putChannels('tenant-f', { channels: [{ name: 'sla-breaches', webhook_url: webhook('f-sla') }], settings: { gather_seconds: 8, flood_window_minutes: 30 } });
      const results = await Promise.all(
        Array.from({ length: 20 }, (_, i) => notify('tenant-f', { kind: 'sla_warning', ticket: ticket('FL-1'), time_remaining_minutes: 30 - i })),
      );
      expect(results.every((r) => r.status === 202)).toBe(true);
      const queued = results.filter((r) => r.body.status === 'queued');
      expect(queued).toHaveLength(1);
      const first = queued[0]?.body.notification_id as string;
      expect(results.filter((r) => r.body.status === 'collapsed').every((r) => r.body.collapsed_into === first)).toBe(true);
      const post = await cardFor(first);
      expect(cardTexts(post.card)).toContain('Repeated 20 times within 30 min');
      // More in the same window are counted, not posted.
      const late = await notify('tenant-f', { kind: 'sla_warning', ticket: ticket('FL-1'), time_remaining_minutes: 3 });
      expect(late.body).toMatchObject({ status: 'collapsed', collapsed_into: first, count: 21 });
      await new Promise((r) => setTimeout(r, 3_000));
      expect(fake.accepted('f-sla')).toHaveLength(1);
      const log = await (await api('teams/notifications/tenant-f?ticket_id=FL-1', { tenant: 'tenant-f' })).json();
      expect(log.notifications.filter((n: { status: string }) => n.status === 'sent')).toEqual([expect.objectContaining({ notification_id: first, count: 20 })]);
      expect(log.notifications.filter((n: { status: string }) => n.status === 'collapsed')).toHaveLength(20);
    });

    it('SLA breaches are never collapsed', async () => {
      const a = await notify('tenant-f', { kind: 'sla_breach', ticket: ticket('FL-2') });
      const b = await notify('tenant-f', { kind: 'sla_breach', ticket: ticket('FL-2') });
      expect([a.body.status, b.body.status]).toEqual(['queued', 'queued']);
      await cardFor(a.body.notification_id as string);
      await cardFor(b.body.notification_id as string);
    });
  });

  describe('tenant isolation', () => {
    it("tenant B can neither read, change, notify on nor delete tenant A's channels", async () => {
      const tokenB = await tenantToken('tenant-b');
      const asB = (path: string, init: RequestInit = {}) =>
        fetch(`${host.url}/api/${path}`, { ...init, headers: { 'x-functions-key': host.functionKey, authorization: `Bearer ${tokenB}`, 'content-type': 'application/json' } });
      expect((await asB('teams/channels/tenant-a')).status).toBe(403);
      expect((await asB('teams/notifications/tenant-a')).status).toBe(403);
      expect((await asB('teams/channels/tenant-a?name=critical', { method: 'DELETE' })).status).toBe(403);
      expect((await asB('teams/channels/tenant-a', { method: 'PUT', body: JSON.stringify({ channels: [{ name: 'critical', webhook_url: fake.url('b-hijack') }] }) })).status).toBe(403);
      expect((await asB('teams/notify/tenant-a', { method: 'POST', body: JSON.stringify({ kind: 'critical_ticket', ticket: ticket('B-1') }) })).status).toBe(403);
      // B's own view is empty and A's channels still post where A said.
      const own = await (await asB('teams/channels/tenant-b')).json();
      expect(own.channels).toEqual([]);
      expect((await (await asB('teams/notifications/tenant-b')).json()).notifications).toEqual([]);
      const res = await notify('tenant-a', { kind: 'critical_ticket', ticket: ticket('INC-7') });
      expect((await cardFor(res.body.notification_id as string)).channel).toBe('a-critical');
      expect(fake.posts('b-hijack')).toEqual([]);
    });

    it('the same ticket id in two tenants is flood-controlled and snoozed separately', async () => {
      await putChannels('tenant-b', { channels: [{ name: 'critical', webhook_url: webhook('b-critical') }], settings: { gather_seconds: 0 } });
      const a = await notify('tenant-a', { kind: 'critical_ticket', ticket: ticket('SHARED-1') });
      const b = await notify('tenant-b', { kind: 'critical_ticket', ticket: ticket('SHARED-1') });
      expect([a.body.status, b.body.status]).toEqual(['queued', 'queued']);
      expect((await cardFor(b.body.notification_id as string)).channel).toBe('b-critical');
      expect((await cardFor(a.body.notification_id as string)).channel).toBe('a-critical');
    });
  });

  describe('removing channels', () => {
    it('DELETE ?name= removes one channel and its secret; notifications for it then find no channel', async () => {
      const before = readdirSync(secretDir).length;
      const res = await api('teams/channels/tenant-a?name=escalations', { method: 'DELETE', tenant: 'tenant-a' });
      expect(res.status).toBe(204);
      expect(readdirSync(secretDir).length).toBe(before - 1);
      const again = await api('teams/channels/tenant-a?name=escalations', { method: 'DELETE', tenant: 'tenant-a' });
      expect(again.status).toBe(404);
      // Escalations fall back to the critical channel.
      expect((await notify('tenant-a', { kind: 'escalation', ticket: ticket('INC-8') })).body.channel).toBe('critical');
      const all = await api('teams/channels/tenant-v', { method: 'DELETE', tenant: 'tenant-v' });
      expect(all.status).toBe(204);
      const integrations = await (await api('integrations/tenant-v', { tenant: 'tenant-v' })).json();
      expect(integrations.integrations[0]).toMatchObject({ type: 'teams', status: 'disconnected' });
    });
  });

  it('health shows the Teams connector, and no log line holds a webhook URL, a signature or a token', async () => {
    const health = await (await api('health', { key: null })).json();
    expect(health.checks.connectors.teams).toBe('up');
    await new Promise((r) => setTimeout(r, 300));
    const out = host.output();
    expect(out).toContain('card sent');
    expect(out).not.toContain(fake.baseUrl);
    expect(out).not.toContain('/workflows/');
    for (const s of sigs) expect(out).not.toContain(s);
    for (const t of tokens) expect(out).not.toContain(t);
  });
});
