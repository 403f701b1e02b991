import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startAzurite, type AzuriteInstance } from '../../runner/azurite';
import { ALL_QUEUES } from '../../src/storage/names';
import { startFakeGraph, type FakeGraph } from '../fakes/graph';
import { startFakeHubSpot, type FakeHubSpot } from '../fakes/hubspot';
import { startFakeTeams, type FakeTeams } from '../fakes/teams';
import { TestBrowser } from './browser';
import { TEST_JWT_SECRET } from './jwt';
import { registerSecret } from './secretScan';
import { apiClient, freePort, localAppEnv, ROOT, startRunner, type RunningHost } from './runner';
import { snapshotStorage, waitForQueuesIdle, type StorageSnapshot } from './storageSnapshot';

/**
 * One deployment with every connector configured against the fakes, and tenant A holding real
 * resources of each kind: a HubSpot private-app integration (synced), a Microsoft 365 integration
 * connected as a browser does it (start page and cookie, OpenID Connect sign-in, admin consent) with a
 * watched mailbox (a live Graph subscription with its clientState) and a group, Teams channels, a sent
 * notification and an SLA warning card with a live snooze link. Tenant B has nothing. Timers are disabled
 * (`AzureWebJobs.<name>.Disabled`), so between requests nothing but the requests changes storage; queue
 * workers keep running, so an effect a request queues still shows.
 */
export interface SecurityWorld {
  azurite: AzuriteInstance;
  hubspot: FakeHubSpot;
  graph: FakeGraph;
  teams: FakeTeams;
  host: RunningHost;
  secretDir: string;
  publicBase: string;
  api: ReturnType<typeof apiClient>;
  A: TenantResources;
  B: { tenant: string };
  snapshot(): Promise<StorageSnapshot>;
  /** Waits until the worker queues are empty (what a request queued has been handled). */
  settle(): Promise<void>;
  stop(): Promise<void>;
}

export interface TenantResources {
  tenant: string;
  hubId: number;
  hubspotIntegration: string;
  hubspotToken: string;
  entraTenant: string;
  graphIntegration: string;
  mailbox: string;
  channel: string;
  ticketId: string;
  /** A group of A's Entra tenant (with the support user in it). */
  groupId: string;
  /** The id of a live snooze link of A's (an SLA warning card's). */
  linkId: string;
  /** A's values for every parameter or body property that names one of its resources. */
  values: Record<string, string>;
}

export const GRAPH_APP = { clientId: 'security-graph-app', clientSecret: `security-graph-secret-${randomBytes(8).toString('hex')}` };

/** Queues that workers consume: empty means settled. `engine-events` is the engine's, nobody reads it here. */
const WORKER_QUEUES = ALL_QUEUES.filter((q) => q !== 'engine-events');

/** Timer-triggered functions, from what the Functions host would load (`npm run functions`). */
export function timerFunctions(): string[] {
  const out = execFileSync(process.execPath, [path.join(ROOT, 'dist', 'runner', 'inspect.js')], { encoding: 'utf8' });
  const parsed = JSON.parse(out) as { functions: Array<{ name: string; bindings: Record<string, { type: string }> }> };
  return parsed.functions.filter((f) => Object.values(f.bindings).some((b) => b.type === 'timerTrigger')).map((f) => f.name);
}

export async function startSecurityWorld(): Promise<SecurityWorld> {
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'itil-security-'));
  const secretDir = path.join(tmp, 'secrets');
  const azurite = await startAzurite();
  const [hubspot, graph, teams] = await Promise.all([startFakeHubSpot(), startFakeGraph(GRAPH_APP), startFakeTeams()]);
  const home = graph.addTenant();
  graph.consent(home);
  const caFile = path.join(tmp, 'fake-graph-ca.pem');
  writeFileSync(caFile, graph.ca);
  const port = await freePort();
  const publicBase = `http://127.0.0.1:${port}`;
  const disabled = Object.fromEntries(timerFunctions().map((name) => [`AzureWebJobs.${name}.Disabled`, 'true']));
  const host = await startRunner({
    port,
    env: {
      ...localAppEnv({ storage: azurite.connectionString, secretKey: randomBytes(32).toString('base64'), secretDir, jwtSecret: TEST_JWT_SECRET, publicBaseUrl: publicBase }),
      HUBSPOT_CLIENT_ID: hubspot.clientId,
      HUBSPOT_CLIENT_SECRET: hubspot.clientSecret,
      HUBSPOT_REDIRECT_URI: `${publicBase}/api/hubspot/oauth/callback`,
      HUBSPOT_API_BASE_URL: hubspot.url,
      MSGRAPH_CLIENT_ID: GRAPH_APP.clientId,
      MSGRAPH_CLIENT_SECRET: GRAPH_APP.clientSecret,
      MSGRAPH_TENANT_ID: home,
      GRAPH_BASE_URL: graph.url,
      MSGRAPH_AUTHORITY_HOST: graph.url,
      NODE_EXTRA_CA_CERTS: caFile,
      // The host's body cap as deployed (infra/app/functionapp.bicep): the host buffers a body before the
      // app sees it (HTTP streams off), so this is what stops a body that never ends.
      FUNCTIONS_REQUEST_BODY_SIZE_LIMIT: '2097152',
      WEBSITE_INSTANCE_ID: undefined,
      WEBSITE_SITE_NAME: undefined,
      CONTAINER_APP_NAME: undefined,
      ...disabled,
    },
  });
  const api = apiClient(() => host);
  const settle = () => waitForQueuesIdle(azurite.connectionString, WORKER_QUEUES, 60_000);

  try {
    const A = await setUpTenant(api, { hubspot, graph, teams }, 'tenant-a', 'support@a.example');
    await settle();
    return {
      azurite,
      hubspot,
      graph,
      teams,
      host,
      secretDir,
      publicBase,
      api,
      A,
      B: { tenant: 'tenant-b' },
      snapshot: () => snapshotStorage({ connectionString: azurite.connectionString, secretDir }),
      settle,
      stop: async () => {
        await host.stop();
        await Promise.all([hubspot.close(), graph.stop(), teams.stop()]);
        await azurite.stop();
        rmSync(tmp, { recursive: true, force: true });
      },
    };
  } catch (err) {
    await host.stop();
    await Promise.all([hubspot.close(), graph.stop(), teams.stop()]);
    await azurite.stop();
    throw Object.assign(err as Error, { message: `${(err as Error).message}\n${host.output().slice(-4000)}` });
  }
}

async function expectStatus(res: Response, status: number, what: string): Promise<Record<string, unknown>> {
  const text = await res.text();
  if (res.status !== status) throw new Error(`${what}: expected ${status}, got ${res.status}: ${text.slice(0, 500)}`);
  return text && /json/.test(res.headers.get('content-type') ?? '') ? (JSON.parse(text) as Record<string, unknown>) : {};
}

async function poll<T>(what: string, fn: () => Promise<T | undefined>, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

async function setUpTenant(api: ReturnType<typeof apiClient>, fakes: { hubspot: FakeHubSpot; graph: FakeGraph; teams: FakeTeams }, tenant: string, mailbox: string): Promise<TenantResources> {
  const { hubspot, graph, teams } = fakes;
  // HubSpot: a private-app integration, checked against the fake, and its first full sync.
  const hubId = hubspot.addPortal({ hubDomain: `${tenant}.hubspot.com` }).hubId;
  hubspot.setPipelines(hubId, [{ id: '0', label: 'Support', stages: [{ id: '1', label: 'New' }] }]);
  hubspot.seed(hubId, 'tickets', 3);
  const hubspotToken = hubspot.createPrivateAppToken(hubId);
  const created = await expectStatus(await api(`hubspot/integrations/${tenant}`, { tenant, method: 'POST', json: { access_token: hubspotToken } }), 201, 'HubSpot private-app integration');
  const hubspotIntegration = String(created.integration_id);
  await poll('the first HubSpot sync', async () => {
    const s = (await (await api(`hubspot/sync/${tenant}/${hubspotIntegration}`, { tenant })).json()) as { sync: { state: string } | null };
    return s.sync?.state === 'completed' ? true : undefined;
  });

  // Microsoft 365: admin consent through the fake authority, then a watched mailbox (live subscription).
  const entraTenant = graph.addTenant();
  const supportUser = graph.addUser(entraTenant, { mail: mailbox, displayName: `${tenant} support` });
  const group = graph.addGroup(entraTenant, 'Service desk', [supportUser.id]);
  const auth = await expectStatus(await api(`msgraph/authorize/${tenant}`, { tenant }), 200, 'Graph authorize');
  const graphIntegration = String(auth.integration_id);
  graph.consent(entraTenant);
  // The admin's browser: our start page (binding cookie) → Microsoft sign-in (the support admin is signed in at
  // the fake) → callback with the code → admin consent for the signed-in tenant → callback: connected.
  graph.signIn(entraTenant, mailbox);
  const hops = await new TestBrowser(graph.ca).follow(String(auth.authorize_url));
  const done = hops[hops.length - 1];
  if (hops.length !== 5 || done?.status !== 200 || !done.text.includes('Microsoft 365 connected')) {
    throw new Error(`Graph consent through the browser: ${hops.map((h) => `${h.status} ${h.url.split('?')[0]}`).join(' → ')}: ${done?.text.slice(0, 500)}`);
  }
  graph.signOut();
  await expectStatus(await api(`msgraph/mailboxes/${tenant}/${graphIntegration}`, { tenant, method: 'POST', json: { address: mailbox } }), 201, 'Graph mailbox');

  // Teams: channels, a notification that was posted, and an SLA warning card with its snooze link
  // (`/api/teams/snooze/{tenant}/{link id}`; never used here).
  const channel = 'critical';
  const slaHook = `${tenant}-sla-world`;
  await expectStatus(
    await api(`teams/channels/${tenant}`, { tenant, method: 'PUT', json: { channels: [{ name: channel, webhook_url: teams.url(`${tenant}-critical`) }, { name: 'sla-breaches', webhook_url: teams.url(slaHook) }], settings: { gather_seconds: 0 } } }),
    200,
    'Teams channels',
  );
  const ticketId = `${tenant.toUpperCase()}-1`;
  await expectStatus(
    await api(`teams/notify/${tenant}`, { tenant, method: 'POST', json: { kind: 'critical_ticket', ticket: { id: ticketId, title: 'Mail down', priority: 'P1', status: 'New', url: `https://itil.example.com/tickets/${ticketId}` } } }),
    202,
    'Teams notification',
  );
  await poll('the Teams card', async () => (teams.accepted(`${tenant}-critical`).length > 0 ? true : undefined));
  const slaTicket = `${tenant.toUpperCase()}-2`;
  await expectStatus(
    await api(`teams/notify/${tenant}`, { tenant, method: 'POST', json: { kind: 'sla_warning', ticket: { id: slaTicket, title: 'Printer', priority: 'P2', status: 'Open', url: `https://itil.example.com/tickets/${slaTicket}` }, time_remaining_minutes: 20 } }),
    202,
    'Teams SLA warning',
  );
  const snoozeLink = await poll('the SLA warning card', async () => {
    const actions = (teams.accepted(slaHook)[0]?.card?.actions ?? []) as Array<{ type: string; url?: string }>;
    return actions.find((a) => a.type === 'Action.OpenUrl' && /\/snooze\//.test(a.url ?? ''))?.url;
  });
  const linkId = new URL(snoozeLink).pathname.split('/').pop() as string;
  registerSecret(snoozeLink, 'snooze link');
  registerSecret(linkId, 'snooze link id');

  return {
    tenant,
    hubId,
    hubspotIntegration,
    hubspotToken,
    entraTenant,
    graphIntegration,
    mailbox,
    channel,
    ticketId,
    groupId: group.id,
    linkId,
    values: { tenant_id: tenant, address: mailbox, name: channel, ticket_id: ticketId, id: ticketId, group_id: group.id, link_id: linkId },
  };
}
