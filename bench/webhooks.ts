import { randomBytes, randomUUID } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startAzurite, type AzuriteInstance } from '../runner/azurite';
import { clientStateHash, createGraphServices } from '../src/connectors/msgraph';
import { parseConfig } from '../src/config';
import { createServices } from '../src/platform/services';
import { integrationId, QUEUES, StorageClients, tenantId, type QueueName } from '../src/storage';
import { startFakeHubSpot, type FakeHubSpot } from '../test/fakes/hubspot';
import { TEST_JWT_SECRET } from '../test/helpers/jwt';
import { apiClient, localAppEnv, startRunner, type RunningHost } from '../test/helpers/runner';

/**
 * `npm run bench:webhooks`: webhook acknowledgement under load, against the local runner on in-memory
 * Azurite. HubSpot: closed-loop clients (1, 10, 50 at once), each POSTing signed v3 deliveries of 100
 * events and sending the next as soon as the answer comes; every 10th delivery is a redelivery of an
 * earlier one (HubSpot's retry, next attemptNumber). Graph: the same with 100 notifications per request,
 * for a subscription of ours (clientState checked by the router).
 *
 * Measured: time to the 2xx (p50/p99/max), deliveries/s, and then, with the load off and the queues
 * drained (bounded by BENCH_DRAIN_SECONDS), what reached the next queue: events queued per integration
 * (HubSpot `hubspot-events`) or work items (Graph `graph-notifications`), duplicates (an event queued
 * twice for one integration), lost (answered 2xx, but neither queued onwards nor still waiting on the
 * intake queue). The stages after those queues (the HubSpot event worker, the mail worker, the sync) are
 * disabled so that their messages stay countable; they are not part of the acknowledgement path.
 *
 * Queues and tables run in two Azurite processes (see main). BENCH_WEBHOOK_SECONDS (60) is the run at 50 at once; BENCH_WEBHOOK_SHORT_SECONDS (30) the runs at 1 and
 * 10; BENCH_WEBHOOK_CONCURRENCY (1,10,50); BENCH_WEBHOOK_TARGETS (hubspot,graph).
 */

const LONG_S = Number(process.env.BENCH_WEBHOOK_SECONDS ?? 60);
const SHORT_S = Number(process.env.BENCH_WEBHOOK_SHORT_SECONDS ?? 30);
const LEVELS = (process.env.BENCH_WEBHOOK_CONCURRENCY ?? '1,10,50').split(',').map(Number).filter((n) => n > 0);
const TARGETS = (process.env.BENCH_WEBHOOK_TARGETS ?? 'hubspot,graph').split(',');
const DRAIN_S = Number(process.env.BENCH_DRAIN_SECONDS ?? 120);
const EVENTS_PER_DELIVERY = 100;
const REPLAY_EVERY = 10;
/** Graph gives up after 3 s and HubSpot after 5 s; a request still open at 30 s counts as an error. */
const REQUEST_TIMEOUT_MS = 30_000;
/** The runner finishes what it holds before it exits, so no message is left invisible (in flight) behind it. */
const STOP_GRACE_MS = 180_000;
const GOAL_P99_MS = 250;
const ROOT = path.resolve(__dirname, '..', '..');
const PUBLIC_BASE_URL = 'http://localhost:7071';
/** Everything downstream of the acknowledgement stages stays off. */
const DISABLED = ['hubspotEventWorker', 'hubspotSyncWorker', 'hubspotSyncTimer', 'hubspotTokenRefreshTimer', 'graphMailWorker', 'graphSubscriptionTimer', 'teamsCardSender'];

interface Delivery {
  /** The ids that identify its items downstream (HubSpot eventId, Graph messageId). */
  ids: string[];
  send(): Promise<Response>;
}

interface Row {
  target: 'hubspot' | 'graph';
  concurrency: number;
  seconds: number;
  deliveries: number;
  redeliveries: number;
  non2xx: number;
  errors: number;
  deliveriesPerSecond: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  over5s: number;
  /** Distinct items answered 2xx. */
  accepted: number;
  /** Items found on the next queue (HubSpot: per integration; one integration here). */
  queued: number;
  duplicates: number;
  /** Still on the intake queue when the drain bound ran out (durable, not lost). */
  pending: number;
  lost: number;
  drainSeconds: number;
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] as number;
}

/** Closed loop: `concurrency` clients, each sending the next delivery when the previous is answered. */
async function load(concurrency: number, seconds: number, next: (replay: boolean) => Delivery, answered: (d: Delivery) => void) {
  const latencies: number[] = [];
  let non2xx = 0;
  let errors = 0;
  let count = 0;
  let redeliveries = 0;
  const until = Date.now() + seconds * 1000;
  const started = Date.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (Date.now() < until) {
        const replay = ++count % REPLAY_EVERY === 0;
        const d = next(replay);
        if (replay) redeliveries++;
        const t0 = performance.now();
        try {
          const res = await Promise.race([d.send(), new Promise<never>((_, reject) => setTimeout(() => reject(new Error('timeout')), REQUEST_TIMEOUT_MS).unref())]);
          await res.arrayBuffer();
          latencies.push(performance.now() - t0);
          if (res.status >= 200 && res.status < 300) answered(d);
          else non2xx++;
        } catch {
          errors++;
          latencies.push(performance.now() - t0);
        }
      }
    }),
  );
  const elapsed = (Date.now() - started) / 1000;
  latencies.sort((a, b) => a - b);
  return { latencies, non2xx, errors, deliveries: latencies.length, redeliveries, elapsed };
}

/**
 * Every message of a queue, read and deleted (the runner is stopped by then), including invisible ones
 * (parts the fan-out deferred), for which it waits until they come back, up to 90 s.
 */
async function drainAll(clients: StorageClients, queue: QueueName): Promise<unknown[]> {
  const q = clients.queue(queue);
  const out: unknown[] = [];
  const deadline = Date.now() + 90_000;
  for (;;) {
    const res = await q.receiveMessages({ numberOfMessages: 32, visibilityTimeout: 600 });
    if (res.receivedMessageItems.length === 0) {
      const left = (await q.getProperties()).approximateMessagesCount ?? 0;
      // What is left is what we hold invisible ourselves (read above) or deferred parts to wait for.
      if (left <= 0 || Date.now() > deadline) return out;
      await new Promise((r) => setTimeout(r, 1000));
      continue;
    }
    await Promise.all(
      res.receivedMessageItems.map(async (m) => {
        out.push(JSON.parse(Buffer.from(m.messageText, 'base64').toString('utf8')));
        await q.deleteMessage(m.messageId, m.popReceipt);
      }),
    );
  }
}

/** Waits until the intake queue is empty, visible or not (deferred parts count), within `DRAIN_S`. */
async function waitDrained(clients: StorageClients, queue: QueueName): Promise<number> {
  const started = Date.now();
  while (Date.now() - started < DRAIN_S * 1000) {
    const n = (await clients.queue(queue).getProperties()).approximateMessagesCount ?? 0;
    if (n === 0) break;
    await new Promise((r) => setTimeout(r, 1000));
  }
  return (Date.now() - started) / 1000;
}

async function clear(clients: StorageClients, queues: QueueName[]): Promise<void> {
  await Promise.all(queues.map((q) => clients.queue(q).clearMessages()));
}

interface Setup {
  azurite: AzuriteInstance;
  clients: StorageClients;
  env: Record<string, string | undefined>;
  secretDir: string;
}

async function hubspotRuns(setup: Setup, fake: FakeHubSpot, rows: Row[]): Promise<void> {
  const hubId = fake.addPortal().hubId;
  let host: RunningHost = await startRunner({ env: setup.env });
  const api = apiClient(() => host, { tenant: 'bench-tenant' });
  const connected = await api('hubspot/integrations/bench-tenant', { method: 'POST', body: JSON.stringify({ access_token: fake.createPrivateAppToken(hubId) }) });
  if (connected.status !== 201) throw new Error(`could not connect the bench integration: ${connected.status} ${await connected.text()}`);
  let objectId = 1;
  for (const concurrency of LEVELS) {
    const seconds = concurrency >= 50 ? LONG_S : SHORT_S;
    const target = `${host.url}/api/webhooks/hubspot`;
    await clear(setup.clients, [QUEUES.hubspotWebhooks, QUEUES.hubspotEvents]);
    const sent: Array<Array<Record<string, unknown>>> = [];
    const accepted = new Set<string>();
    const next = (replay: boolean): Delivery => {
      const earlier = replay && sent.length > 0 ? sent[Math.floor(Math.random() * sent.length)] : undefined;
      const events: Array<Record<string, unknown>> = earlier
        ? earlier.map((e): Record<string, unknown> => ({ ...e, attemptNumber: Number(e.attemptNumber ?? 0) + 1 }))
        : Array.from({ length: EVENTS_PER_DELIVERY }, () => fake.webhookEvent(hubId, { subscriptionType: 'ticket.propertyChange', objectId: objectId++, propertyName: 'subject' }));
      if (!earlier) sent.push(events);
      return { ids: events.map((e) => String(e.eventId)), send: () => fake.sendWebhook(target, events, { uriForSignature: `${PUBLIC_BASE_URL}/api/webhooks/hubspot` }) };
    };
    process.stdout.write(`hubspot: ${concurrency} at once for ${seconds} s … `);
    const r = await load(concurrency, seconds, next, (d) => d.ids.forEach((id) => accepted.add(id)));
    const drainSeconds = await waitDrained(setup.clients, QUEUES.hubspotWebhooks);
    await host.stop(STOP_GRACE_MS);
    const pendingIds = new Set((await drainAll(setup.clients, QUEUES.hubspotWebhooks)).flatMap((m) => (m as { events: Array<{ eventId: string }> }).events.map((e) => e.eventId)));
    const queuedList = (await drainAll(setup.clients, QUEUES.hubspotEvents)).flatMap((m) => (m as { integrationId: string; events: Array<{ eventId: string }> }).events.map((e) => `${(m as { integrationId: string }).integrationId}/${e.eventId}`));
    const queued = new Set(queuedList);
    const queuedIds = new Set([...queued].map((k) => k.slice(k.indexOf('/') + 1)));
    const lost = [...accepted].filter((id) => !queuedIds.has(id) && !pendingIds.has(id)).length;
    rows.push(row('hubspot', concurrency, r, accepted.size, queued.size, queuedList.length - queued.size, pendingIds.size, lost, drainSeconds));
    console.log(`p99 ${rows.at(-1)?.p99Ms} ms, ${rows.at(-1)?.deliveriesPerSecond}/s, lost ${lost}`);
    host = await startRunner({ env: setup.env });
  }
  await host.stop();
}

async function graphRuns(setup: Setup, rows: Row[]): Promise<void> {
  // A subscription of ours, as watching a mailbox leaves it: Integrations, AccountIndex, Subscriptions.
  const config = parseConfig({ ...(setup.env as Record<string, string>), LOCAL_SECRET_DIR: setup.secretDir });
  const gs = createGraphServices(createServices(config));
  const entra = randomUUID();
  const subscriptionId = randomUUID();
  const clientState = randomBytes(24).toString('base64url');
  const t = tenantId('bench-graph-tenant');
  const created = await gs.services.integrations.create(t, { type: 'msgraph', status: 'active', externalAccountId: entra, integrationId: integrationId('bench-graph') });
  await gs.accountIndex.link(entra, t, created.integrationId);
  await gs.subscriptionsRepo.put(t, subscriptionId, {
    integrationId: created.integrationId,
    mailbox: 'support@bench.example',
    entraTenantId: entra,
    resource: "users/support@bench.example/mailFolders('inbox')/messages",
    expiresAt: new Date(Date.now() + 24 * 3_600_000).toISOString(),
    clientStateHash: clientStateHash(clientState),
    clientStateSecret: 'bench-unused',
    createdAt: new Date().toISOString(),
  });
  let host: RunningHost = await startRunner({ env: setup.env });
  let message = 0;
  for (const concurrency of LEVELS) {
    const seconds = concurrency >= 50 ? LONG_S : SHORT_S;
    await clear(setup.clients, [QUEUES.graphWebhooks, QUEUES.graphNotifications]);
    const target = `${host.url}/api/webhooks/graph`;
    const sent: string[][] = [];
    const accepted = new Set<string>();
    const next = (replay: boolean): Delivery => {
      const earlier = replay && sent.length > 0 ? sent[Math.floor(Math.random() * sent.length)] : undefined;
      const ids = earlier ?? Array.from({ length: EVENTS_PER_DELIVERY }, () => `AAMk-bench-${++message}`);
      if (!earlier) sent.push(ids);
      const body = JSON.stringify({
        value: ids.map((id) => ({
          subscriptionId,
          subscriptionExpirationDateTime: new Date(Date.now() + 3_600_000).toISOString(),
          clientState,
          changeType: 'created',
          resource: `Users/${entra}/Messages/${id}`,
          tenantId: entra,
          resourceData: { '@odata.type': '#Microsoft.Graph.Message', '@odata.id': `Users/${entra}/Messages/${id}`, '@odata.etag': 'W/"1"', id },
        })),
      });
      return { ids, send: () => fetch(target, { method: 'POST', headers: { 'content-type': 'application/json' }, body, signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) }) };
    };
    process.stdout.write(`graph: ${concurrency} at once for ${seconds} s … `);
    const r = await load(concurrency, seconds, next, (d) => d.ids.forEach((id) => accepted.add(id)));
    const drainSeconds = await waitDrained(setup.clients, QUEUES.graphWebhooks);
    await host.stop(STOP_GRACE_MS);
    const pendingIds = new Set((await drainAll(setup.clients, QUEUES.graphWebhooks)).flatMap((m) => (m as { items: Array<{ messageId?: string }> }).items.map((i) => i.messageId ?? '')));
    const work = (await drainAll(setup.clients, QUEUES.graphNotifications)).flatMap((m) => (m as { messageIds?: string[] }).messageIds ?? [(m as { messageId: string }).messageId]);
    const queued = new Set(work);
    const lost = [...accepted].filter((id) => !queued.has(id) && !pendingIds.has(id)).length;
    // Redelivered notifications are queued again by design (the mail worker claims per message id),
    // so "duplicates" here are work items beyond one per message id, expected ≈ the redelivered share.
    rows.push(row('graph', concurrency, r, accepted.size, queued.size, work.length - queued.size, pendingIds.size, lost, drainSeconds));
    console.log(`p99 ${rows.at(-1)?.p99Ms} ms, ${rows.at(-1)?.deliveriesPerSecond}/s, lost ${lost}`);
    host = await startRunner({ env: setup.env });
  }
  await host.stop();
}

function row(target: 'hubspot' | 'graph', concurrency: number, r: Awaited<ReturnType<typeof load>>, accepted: number, queued: number, duplicates: number, pending: number, lost: number, drainSeconds: number): Row {
  const round = (n: number) => Math.round(n * 10) / 10;
  return {
    target,
    concurrency,
    seconds: round(r.elapsed),
    deliveries: r.deliveries,
    redeliveries: r.redeliveries,
    non2xx: r.non2xx,
    errors: r.errors,
    deliveriesPerSecond: round(r.deliveries / r.elapsed),
    p50Ms: round(percentile(r.latencies, 50)),
    p99Ms: round(percentile(r.latencies, 99)),
    maxMs: round(r.latencies.at(-1) ?? 0),
    over5s: r.latencies.filter((l) => l > 5000).length,
    accepted,
    queued,
    duplicates,
    pending,
    lost,
    drainSeconds: round(drainSeconds),
  };
}

async function main(): Promise<void> {
  const started = new Date();
  // Queues and tables in separate Azurite processes, as they are separate services in Azure: in one
  // process, Azurite's table store (LokiJS, a scan of the partition per write) holds up every queue write
  // behind it, which no storage account does.
  const azurite = await startAzurite();
  const tables = await startAzurite();
  const connectionString = azurite.connectionString.replace(/TableEndpoint=[^;]+/, `TableEndpoint=http://127.0.0.1:${tables.ports.table}/devstoreaccount1`);
  const fake = await startFakeHubSpot();
  const secretDir = mkdtempSync(path.join(os.tmpdir(), 'bench-webhooks-'));
  const clients = new StorageClients({ kind: 'connectionString', connectionString });
  const env: Record<string, string | undefined> = {
    ...localAppEnv({ storage: connectionString, secretKey: randomBytes(32).toString('base64'), secretDir, jwtSecret: TEST_JWT_SECRET, publicBaseUrl: PUBLIC_BASE_URL }),
    HUBSPOT_CLIENT_ID: fake.clientId,
    HUBSPOT_CLIENT_SECRET: fake.clientSecret,
    HUBSPOT_REDIRECT_URI: `${PUBLIC_BASE_URL}/api/hubspot/oauth/callback`,
    HUBSPOT_API_BASE_URL: fake.url,
    MSGRAPH_CLIENT_ID: 'bench-graph-app',
    MSGRAPH_CLIENT_SECRET: 'bench-graph-app-secret-0123456789',
    LOG_LEVEL: 'warn',
    ...Object.fromEntries(DISABLED.map((f) => [`AzureWebJobs.${f}.Disabled`, 'true'])),
  };
  const rows: Row[] = [];
  try {
    await clients.ensureAll();
    if (TARGETS.includes('hubspot')) await hubspotRuns({ azurite, clients, env, secretDir }, fake, rows);
    if (TARGETS.includes('graph')) await graphRuns({ azurite, clients, env, secretDir }, rows);
  } finally {
    await fake.close();
    await azurite.stop();
    await tables.stop();
    rmSync(secretDir, { recursive: true, force: true });
  }
  console.log('');
  console.table(
    rows.map((r) => ({
      target: r.target,
      'at once': r.concurrency,
      's': r.seconds,
      'deliveries': r.deliveries,
      '/s': r.deliveriesPerSecond,
      'p50 ms': r.p50Ms,
      'p99 ms': r.p99Ms,
      'max ms': r.maxMs,
      'non-2xx': r.non2xx + r.errors,
      'items accepted': r.accepted,
      'queued on': r.queued,
      'dup': r.duplicates,
      'pending': r.pending,
      'lost': r.lost,
      'drain s': r.drainSeconds,
    })),
  );
  const full = rows.filter((r) => r.concurrency >= 50);
  for (const r of full) console.log(`${r.target} at ${r.concurrency}: p99 ${r.p99Ms} ms (goal < ${GOAL_P99_MS}) ${r.p99Ms < GOAL_P99_MS ? 'met' : 'NOT met'}; lost ${r.lost}`);
  const dir = path.join(ROOT, 'bench', 'results');
  mkdirSync(dir, { recursive: true });
  const file = path.join(dir, `webhooks-${started.toISOString().replace(/[:.]/g, '-')}.json`);
  writeFileSync(file, JSON.stringify({ started: started.toISOString(), machine: { cpus: os.cpus().length, node: process.version }, settings: { LONG_S, SHORT_S, LEVELS, EVENTS_PER_DELIVERY, REPLAY_EVERY, DRAIN_S }, goalP99Ms: GOAL_P99_MS, results: rows }, null, 2) + '\n');
  console.log(`results: ${path.relative(ROOT, file)}`);
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
