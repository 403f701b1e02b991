import { readFileSync } from 'node:fs';
import path from 'node:path';
import {
  channelNameSchema,
  MAX_DEQUEUE_COUNT,
  notificationSchema,
  parseWebhookUrl,
  putChannelsSchema,
  route,
  teamChannelName,
  type Channel,
  type Notification,
} from '../../../../src/connectors/teams';

const ticket = { id: 'INC-1', title: 'Printer on fire', priority: 'P2', status: 'New', url: 'https://itil.example.com/t/1' };

describe('webhook URLs', () => {
  const ok = (u: string, allowLoopback = false) => parseWebhookUrl(u, { allowLoopback });

  it('accepts Workflows / Power Automate and legacy incoming webhook hosts, and tells which kind', () => {
    expect(ok('https://prod-12.westeurope.logic.azure.com:443/workflows/abc/triggers/manual/paths/invoke?api-version=2016-06-01&sig=x').kind).toBe('workflows');
    expect(ok('https://default1234.56.environment.api.powerplatform.com/powerautomate/automations/direct/workflows/abc/triggers/manual/paths/invoke?sig=x').kind).toBe('workflows');
    expect(ok('https://contoso.webhook.office.com/webhookb2/abc@def/IncomingWebhook/123/456').kind).toBe('incoming-webhook');
  });

  it.each([
    ['http://prod-12.westeurope.logic.azure.com/workflows/abc', /https/],
    ['https://evil.example.com/workflows/abc', /must be a Teams Workflows/],
    ['https://logic.azure.com.evil.example/workflows', /must be a Teams Workflows/],
    ['https://webhook.office.com/webhookb2/x', /must be a Teams Workflows/],
    ['https://user:pw@contoso.webhook.office.com/webhookb2/x', /credentials/],
    ['https://prod-1.logic.azure.com:8443/workflows/abc', /standard https port/],
    ['not a url', /not a valid URL/],
  ])('refuses %s', (url, message) => {
    expect(() => ok(url)).toThrow(message);
  });

  it('accepts loopback only when allowed, and the error never repeats the URL', () => {
    const url = 'http://127.0.0.1:9999/workflows/ops?sig=SECRETSIG';
    expect(() => ok(url)).toThrow(/TEAMS_ALLOW_LOOPBACK_WEBHOOKS is off/);
    try {
      ok(url);
    } catch (err) {
      expect(String(err)).not.toContain('SECRETSIG');
    }
    expect(ok(url, true)).toMatchObject({ kind: 'workflows', loopback: true });
    expect(parseWebhookUrl('http://localhost:1/webhookb2/x', { allowLoopback: true, kind: 'incoming-webhook' }).kind).toBe('incoming-webhook');
  });

  it('refuses a kind that contradicts the host', () => {
    expect(() => parseWebhookUrl('https://contoso.webhook.office.com/webhookb2/x', { allowLoopback: false, kind: 'workflows' })).toThrow(/incoming-webhook URL, not workflows/);
  });
});

describe('notification bodies', () => {
  const valid: Notification[] = [
    { kind: 'sla_warning', ticket, time_remaining_minutes: 25 },
    { kind: 'sla_breach', ticket },
    { kind: 'escalation', ticket, reason: 'VIP' },
    { kind: 'critical_ticket', ticket: { ...ticket, team: 'Network Ops', due: '2030-01-01T10:00:00+01:00' } },
    { kind: 'assignment', ticket: { ...ticket, assignee: { name: 'Ada', aad_object_id: '5c1f4a6e-9b52-4f0a-8c44-7d1e2f3a4b5c' } } },
  ];
  it.each(valid.map((v) => [v.kind, v]))('accepts a %s', (_k, body) => {
    expect(notificationSchema.safeParse(body).success).toBe(true);
  });

  it.each([
    ['an unknown kind', { kind: 'fyi', ticket }],
    ['an SLA warning without time remaining', { kind: 'sla_warning', ticket }],
    ['an assignment without assignee', { kind: 'assignment', ticket }],
    ['an assignee nobody can be mentioned by', { kind: 'assignment', ticket: { ...ticket, assignee: { name: 'Ada' } } }],
    ['an unknown field', { kind: 'sla_breach', ticket, extra: 1 }],
    ['a ticket without url', { kind: 'sla_breach', ticket: { ...ticket, url: undefined } }],
    ['a javascript: url', { kind: 'sla_breach', ticket: { ...ticket, url: 'javascript:alert(1)' } }],
    ['a title over 4000 characters', { kind: 'sla_breach', ticket: { ...ticket, title: 'x'.repeat(4001) } }],
    ['a due date without offset', { kind: 'sla_breach', ticket: { ...ticket, due: '2030-01-01T10:00:00' } }],
    ['a non-number time remaining', { kind: 'sla_warning', ticket, time_remaining_minutes: '25' }],
  ])('refuses %s', (_what, body) => {
    expect(notificationSchema.safeParse(body).success).toBe(false);
  });
});

describe('channel names and routing', () => {
  it('normalises team names to channel names', () => {
    expect(teamChannelName('Network Ops')).toBe('team-network-ops');
    expect(teamChannelName('  Service Desk – EMEA!! ')).toBe('team-service-desk-emea');
    expect(teamChannelName('Café Crème')).toBe('team-cafe-creme');
    expect(teamChannelName('!!!')).toBeUndefined();
    const long = teamChannelName('x'.repeat(300)) as string;
    expect(channelNameSchema.safeParse(long).success).toBe(true);
  });

  it('accepts the fixed channels and team-<name> only', () => {
    for (const ok of ['critical', 'escalations', 'sla-breaches', 'team-network-ops']) expect(channelNameSchema.safeParse(ok).success).toBe(true);
    for (const bad of ['Critical', 'general', 'team-', 'team-Net', 'team-a_b', 'team--x-']) expect(channelNameSchema.safeParse(bad).success).toBe(false);
  });

  it('PUT bodies need unique names and something to change', () => {
    expect(putChannelsSchema.safeParse({ channels: [] }).success).toBe(false);
    expect(putChannelsSchema.safeParse({ channels: [{ name: 'critical', webhook_url: 'x' }, { name: 'critical', webhook_url: 'y' }] }).success).toBe(false);
    expect(putChannelsSchema.safeParse({ settings: { flood_window_minutes: 10 } }).success).toBe(true);
    expect(putChannelsSchema.safeParse({ settings: { flood_window_minutes: 0 } }).success).toBe(false);
  });

  const ch = (name: string): Channel => ({ name, secretName: `s-${name}`, kind: 'workflows', createdAt: '', updatedAt: '', failing: false, consecutiveFailures: 0 });
  const all = ['critical', 'escalations', 'sla-breaches', 'team-network-ops'].map(ch);
  const to = (n: Notification, channels: Channel[], fallback = false) => {
    const r = route(n, channels, fallback);
    return r === undefined ? undefined : r.to === 'fallback' ? 'fallback' : r.channel.name;
  };

  it('sends each kind to its channel, and a ticket with a team to the team channel when it exists', () => {
    expect(to({ kind: 'critical_ticket', ticket }, all)).toBe('critical');
    expect(to({ kind: 'escalation', ticket }, all)).toBe('escalations');
    expect(to({ kind: 'sla_breach', ticket }, all)).toBe('sla-breaches');
    expect(to({ kind: 'sla_warning', ticket, time_remaining_minutes: 5 }, all)).toBe('sla-breaches');
    expect(to({ kind: 'sla_breach', ticket: { ...ticket, team: 'Network Ops' } }, all)).toBe('team-network-ops');
    expect(to({ kind: 'sla_breach', ticket: { ...ticket, team: 'Payroll' } }, all)).toBe('sla-breaches');
  });

  it('falls back along the kind’s preferences, and to the deployment webhook only for tenants with no channel', () => {
    expect(to({ kind: 'escalation', ticket }, [ch('critical')])).toBe('critical');
    expect(to({ kind: 'sla_warning', ticket, time_remaining_minutes: 5 }, [ch('critical')], true)).toBeUndefined();
    expect(to({ kind: 'assignment', ticket: { ...ticket, assignee: { name: 'A', email: 'a@example.com' } } }, all)).toBeUndefined();
    expect(to({ kind: 'critical_ticket', ticket }, [], true)).toBe('fallback');
    expect(to({ kind: 'critical_ticket', ticket }, [], false)).toBeUndefined();
  });
});

it('the sender treats the same attempt as the last one as host.json does', () => {
  const host = JSON.parse(readFileSync(path.resolve(__dirname, '../../../../host.json'), 'utf8')) as { extensions: { queues: { maxDequeueCount: number } } };
  expect(MAX_DEQUEUE_COUNT).toBe(host.extensions.queues.maxDequeueCount);
});
