import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import { randomBytes } from 'node:crypto';
import { ChannelStore, SnoozeLinkError, SnoozeLinks, TeamsConnector, TeamsState, TEAMS_INTEGRATION_ID, type TeamsServices } from '../../../../src/connectors/teams';
import type { Services } from '../../../../src/platform/services';
import type { ChannelRow } from '../../../../src/connectors/teams/channelStore';
import { OPENER_GRACE_MS, type StateRow } from '../../../../src/connectors/teams/floodControl';
import { LocalSecretStore } from '../../../../src/secrets/localSecretStore';
import { IntegrationsRepository, TABLES, TenantTable, tenantId } from '../../../../src/storage';
import { useAzurite } from '../../../helpers/azurite';

let az: Awaited<ReturnType<typeof useAzurite>>;
let dir: string;
let secrets: LocalSecretStore;
beforeAll(async () => {
  az = await useAzurite();
  dir = mkdtempSync(`${os.tmpdir()}/itil-teams-`);
  secrets = new LocalSecretStore({ key: randomBytes(32), directory: dir });
});
afterAll(async () => {
  await az.stop();
  rmSync(dir, { recursive: true, force: true });
});

const A = tenantId('tenant-a');
const B = tenantId('tenant-b');
const stateTable = () => new TenantTable<StateRow>(az.clients.table(TABLES.teamsState));

describe('flood control', () => {
  it('20 concurrent notifications for one ticket and kind open one window; the others are counted on it', async () => {
    const state = new TeamsState(stateTable());
    const ids = Array.from({ length: 20 }, (_, i) => `n-${i}`);
    const results = await Promise.all(ids.map((id) => state.admit(A, 'sla_warning', 'INC-7', id, 30 * 60_000)));
    const opened = results.filter((r) => r.decision === 'new');
    expect(opened).toHaveLength(1);
    const first = ids[results.findIndex((r) => r.decision === 'new')] as string;
    const counts = results.flatMap((r) => (r.decision === 'collapsed' ? [r.count] : []));
    expect(counts.sort((a, b) => a - b)).toEqual(Array.from({ length: 19 }, (_, i) => i + 2));
    expect(results.every((r) => r.decision === 'new' || r.into === first)).toBe(true);
    const window = await state.window(A, TeamsState.floodKey('sla_warning', 'INC-7'), first);
    expect(window).toMatchObject({ notificationId: first, count: 20 });
  });

  it("a window whose opener never recorded its notification (it died before queueing its card) is taken over after the grace, not counted on", async () => {
    let now = 5_000_000;
    const state = new TeamsState(stateTable(), () => now);
    const recorded = new Set<string>();
    const openerRecorded = async (id: string) => recorded.has(id);
    expect(await state.admit(A, 'sla_warning', 'INC-DEAD', 'dead', 30 * 60_000, { openerRecorded })).toEqual({ decision: 'new', floodKey: TeamsState.floodKey('sla_warning', 'INC-DEAD') });
    // The engine's retry arrives after the grace: it opens the window in the dead opener's place.
    now += OPENER_GRACE_MS;
    expect(await state.admit(A, 'sla_warning', 'INC-DEAD', 'retry', 30 * 60_000, { openerRecorded })).toMatchObject({ decision: 'new', tookOverFrom: 'dead' });
    expect(await state.window(A, TeamsState.floodKey('sla_warning', 'INC-DEAD'), 'retry')).toMatchObject({ notificationId: 'retry', count: 1, windowStart: 5_000_000 });
    // A recorded opener is counted on, as before.
    recorded.add('retry');
    expect(await state.admit(A, 'sla_warning', 'INC-DEAD', 'third', 30 * 60_000, { openerRecorded })).toMatchObject({ decision: 'collapsed', into: 'retry', count: 2 });
  });

  it('a notification that finds the opener not yet recorded waits for it within the grace, and is counted once it is', async () => {
    const state = new TeamsState(stateTable());
    const recorded = new Set<string>();
    const openerRecorded = async (id: string) => recorded.has(id);
    expect((await state.admit(A, 'sla_warning', 'INC-SLOW', 'slow', 30 * 60_000, { openerRecorded })).decision).toBe('new');
    setTimeout(() => recorded.add('slow'), 600);
    expect(await state.admit(A, 'sla_warning', 'INC-SLOW', 'next', 30 * 60_000, { openerRecorded })).toMatchObject({ decision: 'collapsed', into: 'slow', count: 2 });
  });

  it('keys by ticket and kind, and by tenant', async () => {
    const state = new TeamsState(stateTable());
    expect((await state.admit(A, 'escalation', 'INC-8', 'e1', 60_000)).decision).toBe('new');
    expect((await state.admit(A, 'critical_ticket', 'INC-8', 'c1', 60_000)).decision).toBe('new');
    expect((await state.admit(A, 'escalation', 'INC-9', 'e2', 60_000)).decision).toBe('new');
    expect((await state.admit(B, 'escalation', 'INC-8', 'e3', 60_000)).decision).toBe('new');
    expect((await state.admit(A, 'escalation', 'INC-8', 'e4', 60_000)).decision).toBe('collapsed');
  });

  it('opens a new window once the old one has passed, and after a window was closed', async () => {
    let now = 1_000_000;
    const state = new TeamsState(stateTable(), () => now);
    expect((await state.admit(A, 'sla_warning', 'INC-10', 'w1', 30 * 60_000)).decision).toBe('new');
    now += 29 * 60_000;
    expect((await state.admit(A, 'sla_warning', 'INC-10', 'w2', 30 * 60_000)).decision).toBe('collapsed');
    now += 60_000;
    expect((await state.admit(A, 'sla_warning', 'INC-10', 'w3', 30 * 60_000)).decision).toBe('new');
    await state.closeWindow(A, TeamsState.floodKey('sla_warning', 'INC-10'), 'w1'); // not the window's owner: no effect
    expect((await state.admit(A, 'sla_warning', 'INC-10', 'w4', 30 * 60_000)).decision).toBe('collapsed');
    await state.closeWindow(A, TeamsState.floodKey('sla_warning', 'INC-10'), 'w3');
    expect((await state.admit(A, 'sla_warning', 'INC-10', 'w5', 30 * 60_000)).decision).toBe('new');
  });

  it('settings default to a 30 minute window and are per tenant', async () => {
    const state = new TeamsState(stateTable());
    expect(await state.settings(A)).toEqual({ floodWindowMinutes: 30, gatherSeconds: 5, useFallback: false });
    await state.saveSettings(A, { floodWindowMinutes: 10 });
    expect(await state.settings(A)).toEqual({ floodWindowMinutes: 10, gatherSeconds: 5, useFallback: false });
    expect((await state.settings(B)).floodWindowMinutes).toBe(30);
  });
});

describe('snooze links', () => {
  const make = (now?: () => number) => {
    const state = new TeamsState(stateTable(), now);
    return { state, links: new SnoozeLinks(state, 'https://connectors.example.com', now) };
  };
  const idOf = (link: string) => link.split('/').pop() as string;

  it('carries no token in its query: a short random id in the path, under its tenant', async () => {
    const { links } = make();
    const link = await links.link(A, 'INC-19', 'n-0');
    expect(link).toMatch(/^https:\/\/connectors\.example\.com\/api\/teams\/snooze\/tenant-a\/[A-Za-z0-9_-]{22}$/);
    expect(new URL(link).search).toBe('');
    expect(idOf(await links.link(A, 'INC-19', 'n-0'))).not.toBe(idOf(link));
  });

  it('looking at a link snoozes nothing; using it snoozes its ticket for 30 minutes in its own tenant, once', async () => {
    const { state, links } = make();
    const link = await links.link(A, 'INC-20', 'n-1');
    expect(await links.inspect(A, idOf(link))).toEqual({ ticketId: 'INC-20', minutes: 30 });
    expect(await links.inspect(A, idOf(link))).toEqual({ ticketId: 'INC-20', minutes: 30 });
    expect(await state.snoozedUntil(A, 'INC-20')).toBeUndefined();
    // Another tenant cannot use it: the id is looked up in its own partition only.
    await expect(links.redeem(B, idOf(link))).rejects.toMatchObject({ reason: 'unknown', status: 404 });
    const before = Date.now();
    const done = await links.redeem(A, idOf(link));
    expect(done).toMatchObject({ tenant: A, ticketId: 'INC-20', minutes: 30 });
    expect(done.until.getTime()).toBeGreaterThanOrEqual(before + 30 * 60_000);
    expect(await state.snoozedUntil(A, 'INC-20')).toBe(done.until.getTime());
    expect(await state.snoozedUntil(B, 'INC-20')).toBeUndefined();
    await expect(links.redeem(A, idOf(link))).rejects.toMatchObject({ reason: 'used', status: 410 });
    await expect(links.inspect(A, idOf(link))).rejects.toMatchObject({ reason: 'used' });
  });

  it('two clicks at once: one snoozes, the other is told the link was used', async () => {
    const { links } = make();
    const id = idOf(await links.link(A, 'INC-24', 'n-4'));
    const results = await Promise.allSettled([links.redeem(A, id), links.redeem(A, id)]);
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
    expect(results.find((r) => r.status === 'rejected')).toMatchObject({ reason: expect.any(SnoozeLinkError) });
  });

  it('an expired link is refused and snoozes nothing', async () => {
    let now = Date.now();
    const { state, links } = make(() => now);
    const link = await links.link(A, 'INC-21', 'n-2', 60);
    now += 61_000;
    const err = await links.redeem(A, idOf(link)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SnoozeLinkError);
    expect((err as SnoozeLinkError).reason).toBe('expired');
    expect(await state.snoozedUntil(A, 'INC-21')).toBeUndefined();
  });

  it('a snooze ends when its time is up, and a shorter one never shortens a longer one', async () => {
    let now = Date.now();
    const { state } = make(() => now);
    await state.snooze(A, 'INC-22', now + 60 * 60_000);
    expect(await state.snooze(A, 'INC-22', now + 30 * 60_000)).toBe(now + 60 * 60_000);
    now += 61 * 60_000;
    expect(await state.snoozedUntil(A, 'INC-22')).toBeUndefined();
  });
});

describe('channel store', () => {
  const make = () => {
    const integrations = new IntegrationsRepository(new TenantTable(az.clients.table(TABLES.integrations)));
    return { integrations, store: new ChannelStore(new TenantTable<ChannelRow>(az.clients.table(TABLES.teamsChannels)), secrets, integrations) };
  };
  const url = 'https://prod-1.westeurope.logic.azure.com/workflows/abc/triggers/manual/paths/invoke?sig=CHANNELSIG123';

  it('keeps the URL in the secret store only, under a per-tenant name', async () => {
    const { store } = make();
    const ch = await store.put(A, 'team-network-ops', { url, kind: 'workflows', loopback: false });
    expect(ch.secretName).toMatch(/^t-[0-9a-f]{40}-channel-[0-9a-f]{20}-[0-9a-f]{10}$/);
    expect(ChannelStore.secretName(B, 'team-network-ops', ch.secretName.slice(-10))).not.toBe(ch.secretName);
    expect(await store.webhookUrl(ch)).toBe(url);
    const rows = [];
    for await (const r of new TenantTable(az.clients.table(TABLES.teamsChannels)).all(A as never)) rows.push(r);
    expect(JSON.stringify(rows)).not.toContain('CHANNELSIG123');
    // Encrypted at rest too.
    const files = readdirSync(dir).map((f) => readFileSync(`${dir}/${f}`, 'utf8')).join('');
    expect(files).not.toContain('CHANNELSIG123');
  });

  it('mirrors channel health on the tenant’s teams integration', async () => {
    const { store, integrations } = make();
    await store.put(B, 'critical', { url, kind: 'workflows', loopback: false });
    await store.syncIntegration(B);
    expect(await integrations.get(B, TEAMS_INTEGRATION_ID)).toMatchObject({ type: 'teams', status: 'active' });
    await store.recordOutcome(B, 'critical', { ok: false, at: new Date(), reason: 'Teams webhook answered 500', failing: false });
    expect((await store.get(B, 'critical'))?.failing).toBe(false);
    await store.recordOutcome(B, 'critical', { ok: false, at: new Date(), reason: 'Teams webhook answered 500', failing: true });
    expect(await store.get(B, 'critical')).toMatchObject({ failing: true, lastPostOutcome: 'failed', consecutiveFailures: 2 });
    expect(await integrations.get(B, TEAMS_INTEGRATION_ID)).toMatchObject({ status: 'error', lastError: 'channel critical failing: Teams webhook answered 500' });
    await store.recordOutcome(B, 'critical', { ok: true, at: new Date() });
    expect(await integrations.get(B, TEAMS_INTEGRATION_ID)).toMatchObject({ status: 'active', lastError: '' });
    const ch = await store.get(B, 'critical');
    expect(await store.delete(B, 'critical')).toBe(true);
    expect(await secrets.get(ch?.secretName as string)).toBeUndefined();
    await store.syncIntegration(B);
    expect((await integrations.get(B, TEAMS_INTEGRATION_ID))?.status).toBe('disconnected');
    // An outcome for a deleted channel does not bring its row back.
    await store.recordOutcome(B, 'critical', { ok: true, at: new Date() });
    expect(await store.get(B, 'critical')).toBeUndefined();
  });

  it('the connector is healthy for a tenant while every channel accepted its last post', async () => {
    const { store } = make();
    const C = tenantId('tenant-c');
    const connector = new TeamsConnector({} as Services, { channels: store } as unknown as TeamsServices, C);
    await store.put(C, 'critical', { url, kind: 'workflows', loopback: false });
    await store.put(C, 'escalations', { url, kind: 'workflows', loopback: false });
    expect(await connector.healthCheck()).toBe(true); // nothing posted yet
    await connector.authenticate();
    await store.recordOutcome(C, 'critical', { ok: true, at: new Date() });
    await store.recordOutcome(C, 'escalations', { ok: false, at: new Date(), reason: 'Teams webhook answered 500', failing: false });
    expect(await connector.channelHealth(C)).toEqual([
      { name: 'critical', acceptedLastPost: true, failing: false },
      { name: 'escalations', acceptedLastPost: false, failing: false },
    ]);
    expect(await connector.healthCheck()).toBe(false);
    await store.recordOutcome(C, 'escalations', { ok: true, at: new Date() });
    expect(await connector.healthCheck()).toBe(true);
    await secrets.delete((await store.get(C, 'critical'))?.secretName as string);
    await expect(connector.authenticate()).rejects.toThrow('channel critical has no webhook URL stored');
  });
});
