import { randomBytes } from 'node:crypto';
import { appendFileSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startAzurite, type AzuriteInstance } from '../../runner/azurite';
import { StorageClients } from '../../src/storage/clients';
import { escapeKeyPart, partitionKey, tenantId } from '../../src/storage/keys';
import { TABLES, type TableName } from '../../src/storage/names';
import { TenantTable } from '../../src/storage/tenantTable';
import { startFakeGraph, type FakeGraph, type FakeMessage } from '../fakes/graph';
import { TestBrowser } from '../helpers/browser';
import { crashEnv, faultLog, SHORT_TIMEOUT_ENV, waitForCrash } from '../helpers/crash';
import { TEST_JWT_SECRET } from '../helpers/jwt';
import { apiClient, fakeGraphAppEnv, freePort, localAppEnv, nextMessage, queueLength, ROOT, startRunner, type RunningHost } from '../helpers/runner';

/**
 * Crash points of the Graph workers (#12): the notification router (`graph-webhooks` → per-mailbox work),
 * the mail worker (`graph-notifications` → ticket events) and the engine's reply (HTTP). Each case SIGKILLs
 * a runner right after one durable step (`faultPoint(...)` in src/connectors/msgraph), starts a normal one
 * on the same storage, port and secrets, lets the queue (or, for the reply, the engine's retry with the
 * same Idempotency-Key) bring the input back, and then checks the input is reflected exactly once: one
 * CloudEvent id per mail on `engine-events`, its Processed claim confirmed, its Conversations row, and the
 * number of mails the fake Graph actually sent. A repeat (same event id, or a second mail) is allowed only
 * where a case says `oncemore: 1`, the steps CRASH_GRAPH.md documents as "at most once more".
 */

const APP = { clientId: 'crash-graph-app', clientSecret: 'crash-graph-secret-3b9e7d1c5a' };
const TENANT = 'tenant-crash';
const SUPPORT = 'support@crash.example';
const CUSTOMER = 'cora@customer.example';

interface CloudEventJson {
  id: string;
  type: string;
  data: Record<string, unknown>;
}

type Input = 'mail' | 'comment' | 'reply';

interface Case {
  point: string;
  input: Input;
  /** Copies of the same CloudEvent id (mail) or sent mails (reply) allowed beyond the first. */
  oncemore: 0 | 1;
  /** The kill cuts Graph's POST off before it is answered: Graph posts the notification again. */
  graphRetries?: true;
}

/** One row per crash point placed in src; the coverage test below fails when a point has no row. */
const CASES: Case[] = [
  { point: 'graph.intake.queued', input: 'mail', oncemore: 0, graphRetries: true },
  { point: 'graph.router.queued', input: 'mail', oncemore: 0 },
  { point: 'graph.mail.claim', input: 'mail', oncemore: 0 },
  { point: 'graph.mail.conversation', input: 'mail', oncemore: 0 },
  { point: 'graph.mail.touch', input: 'comment', oncemore: 0 },
  { point: 'graph.mail.publish', input: 'mail', oncemore: 1 },
  { point: 'graph.mail.confirm', input: 'mail', oncemore: 0 },
  { point: 'graph.mail.seen', input: 'mail', oncemore: 0 },
  { point: 'graph.reply.claim', input: 'reply', oncemore: 0 },
  { point: 'graph.reply.ticket', input: 'reply', oncemore: 0 },
  { point: 'graph.reply.sent', input: 'reply', oncemore: 1 },
  { point: 'graph.reply.confirm', input: 'reply', oncemore: 0 },
];

/** CRASH_GRAPH_REPORT=<file>: one JSON line per case with what it counted, for CRASH_GRAPH.md. */
function report(line: Record<string, unknown>): void {
  if (process.env.CRASH_GRAPH_REPORT) appendFileSync(process.env.CRASH_GRAPH_REPORT, JSON.stringify(line) + '\n');
}

async function waitFor<T>(what: string, probe: () => T | undefined | false | Promise<T | undefined | false>, timeoutMs = 90_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

/** The graph.* crash points named in src (a literal `faultPoint('graph.…')`), for the static half of the coverage check. */
function pointsInSource(): Set<string> {
  const out = new Set<string>();
  const walk = (dir: string) => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      const p = path.join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.name.endsWith('.ts')) for (const m of readFileSync(p, 'utf8').matchAll(/faultPoint\('(graph\.[a-z.-]+)'\)/g)) out.add(m[1] as string);
    }
  };
  walk(path.join(ROOT, 'src'));
  return out;
}

describe('Graph workers survive a SIGKILL after every durable step', () => {
  let azurite: AzuriteInstance;
  let fake: FakeGraph;
  let tmp: string;
  let port: number;
  let baseEnv: Record<string, string | undefined>;
  let host: RunningHost | undefined;
  let entra: string;
  let integration = '';
  /** The conversation the reply cases answer (its ticket came in during setup). */
  let thread: FakeMessage;
  let clients: StorageClients;

  const cs = () => azurite.connectionString;
  const api = apiClient(() => host as RunningHost, { tenant: TENANT });
  const table = (name: TableName) => new TenantTable<Record<string, string | number | boolean>>(clients.table(name));
  const tenant = tenantId(TENANT);

  const runner = async (extra: Record<string, string>): Promise<RunningHost> => startRunner({ port, env: { ...baseEnv, ...extra } });

  /** Everything on engine-events now (each read is checked against asyncapi.json by nextMessage). */
  async function drainEvents(): Promise<CloudEventJson[]> {
    const out: CloudEventJson[] = [];
    for (;;) {
      try {
        out.push(JSON.parse(await nextMessage(cs(), 'engine-events', 1_500)) as CloudEventJson);
      } catch (err) {
        if (/no message on engine-events/.test((err as Error).message)) return out;
        throw err;
      }
    }
  }

  /** Both Graph queues empty, in flow order: a routed delivery is on graph-notifications before it leaves graph-webhooks. */
  const settled = async () => (await queueLength(cs(), 'graph-webhooks')) === 0 && (await queueLength(cs(), 'graph-notifications')) === 0;

  const poisoned = async () => (await queueLength(cs(), 'graph-webhooks-poison')) + (await queueLength(cs(), 'graph-notifications-poison'));

  async function deliver(subject: string, over: { conversationId?: string; inReplyTo?: string; receivedAt?: Date } = {}): Promise<FakeMessage> {
    const { message } = await fake.deliverMail(entra, SUPPORT, { from: CUSTOMER, subject, text: `${subject}: body`, ...over });
    return message;
  }

  async function connect(): Promise<string> {
    const res = await api(`msgraph/authorize/${TENANT}`);
    expect(res.status).toBe(200);
    const started = (await res.json()) as { authorize_url: string; integration_id: string };
    fake.signIn(entra, SUPPORT);
    const hops = await new TestBrowser(fake.ca).follow(started.authorize_url);
    expect(hops.at(-1)?.text).toContain('Microsoft 365 connected');
    return started.integration_id;
  }

  const postReply = (key: string, body: Record<string, unknown>) => api(`msgraph/reply/${TENANT}/${integration}`, { method: 'POST', json: body, headers: { 'idempotency-key': key } });

  beforeAll(async () => {
    tmp = mkdtempSync(path.join(os.tmpdir(), 'itil-crash-graph-'));
    azurite = await startAzurite();
    clients = new StorageClients({ kind: 'connectionString', connectionString: azurite.connectionString });
    fake = await startFakeGraph(APP);
    const home = fake.addTenant();
    fake.consent(home);
    entra = fake.addTenant();
    fake.addUser(entra, { mail: SUPPORT, displayName: 'Crash Support' });
    const caFile = path.join(tmp, 'fake-graph-ca.pem');
    writeFileSync(caFile, fake.ca);
    // One port for every runner of the file: the subscription's notification URL is PUBLIC_BASE_URL.
    port = await freePort();
    baseEnv = {
      ...localAppEnv({ storage: azurite.connectionString, secretKey: randomBytes(32).toString('base64'), secretDir: path.join(tmp, 'secrets'), jwtSecret: TEST_JWT_SECRET, publicBaseUrl: `http://127.0.0.1:${port}` }),
      ...fakeGraphAppEnv({ app: APP, homeTenant: home, fakeUrl: fake.url, caFile }),
    };
    host = await runner({ ...SHORT_TIMEOUT_ENV });
    integration = await connect();
    const watch = await api(`msgraph/mailboxes/${TENANT}/${integration}`, { method: 'POST', json: { address: SUPPORT } });
    expect(watch.status).toBe(201);
    thread = await deliver('Setup: the thread the engine replies to');
    await waitFor('the setup ticket event', async () => (await queueLength(cs(), 'engine-events')) > 0 || undefined);
    expect(await drainEvents()).toHaveLength(1);
    await host.stop();
    host = undefined;
  }, 180_000);

  afterAll(async () => {
    if (process.env.CRASH_GRAPH_DUMP) writeFileSync(process.env.CRASH_GRAPH_DUMP, host?.output() ?? '');
    await host?.stop();
    await fake?.stop();
    await azurite?.stop();
    rmSync(tmp, { recursive: true, force: true });
  });

  it('every graph.* crash point placed in src has a case, and a normal pass goes through each of them', async () => {
    const log = path.join(tmp, 'fault-pass.log');
    host = await runner({ ...SHORT_TIMEOUT_ENV, RUNNER_FAULT_LOG: log });
    try {
      const first = await deliver('Coverage: a new ticket');
      await waitFor('the ticket event', async () => (await settled()) && (await queueLength(cs(), 'engine-events')) >= 1);
      await deliver('RE: Coverage: a new ticket', { conversationId: first.conversationId, inReplyTo: first.internetMessageId, receivedAt: new Date(Date.parse(first.receivedDateTime) + 60_000) });
      await waitFor('the comment event', async () => (await settled()) && (await queueLength(cs(), 'engine-events')) >= 2);
      const reply = await postReply(`coverage-${randomBytes(4).toString('hex')}`, { conversation_id: thread.conversationId, body_html: '<p>Coverage reply</p>', ticket_id: 'T-COVERAGE' });
      expect(reply.status).toBe(202);
      expect(await drainEvents()).toHaveLength(2);
    } finally {
      await host.stop();
      host = undefined;
    }
    const table = new Set(CASES.map((c) => c.point));
    expect([...pointsInSource()].sort()).toEqual([...table].sort());
    expect([...new Set(faultLog(log))].filter((p) => p.startsWith('graph.')).sort()).toEqual([...table].sort());
  }, 120_000);

  it.each(CASES.filter((c) => c.input !== 'reply'))('mail: SIGKILL after $point, restart, redelivery: one event id for the mail, $oncemore extra copies at most', async ({ point, input, oncemore, graphRetries }) => {
    const log = path.join(tmp, `fault-${point}.log`);
    const tag = `${point} ${randomBytes(3).toString('hex')}`;
    const poisonBefore = await poisoned();
    host = await runner(crashEnv(point, log));
    const crashed = host;
    let opener: FakeMessage | undefined;
    let mail: FakeMessage;
    if (input === 'comment') {
      // The conversation's ticket first (a comment needs one); the kill waits for the comment.
      opener = await deliver(`Crash ${tag}`);
      await waitFor('the opening ticket event', async () => (await settled()) && (await queueLength(cs(), 'engine-events')) >= 1);
      mail = await deliver(`RE: Crash ${tag}`, { conversationId: opener.conversationId, inReplyTo: opener.internetMessageId, receivedAt: new Date(Date.parse(opener.receivedDateTime) + 60_000) });
    } else {
      mail = await deliver(`Crash ${tag}`);
    }
    await waitForCrash(crashed, log, point);
    host = await runner({ ...SHORT_TIMEOUT_ENV });
    try {
      // Graph saw no answer to its POST, so it delivers the same notification again (the queued copy is also
      // there: two deliveries of one notification, one event).
      if (graphRetries) await fake.notifyAgain(mail);
      await waitFor('the Graph queues to drain after the restart', settled, 120_000);
      const events = await drainEvents();

      const byId = new Map<string, CloudEventJson[]>();
      for (const e of events) byId.set(e.id, [...(byId.get(e.id) ?? []), e]);
      for (const list of byId.values()) expect(list.length).toBeLessThanOrEqual(1 + oncemore);
      const ofMail = (m: FakeMessage) => events.filter((e) => e.data.internetMessageId === m.internetMessageId);
      // Nothing on the queue but this case's mails: no late copy of an earlier case, nothing unrelated.
      expect(events.every((e) => e.data.internetMessageId === mail.internetMessageId || e.data.internetMessageId === opener?.internetMessageId)).toBe(true);
      const copies = ofMail(mail);
      expect(new Set(copies.map((e) => e.id)).size).toBe(1);
      expect(copies.length).toBeGreaterThanOrEqual(1);
      expect(copies.length).toBeLessThanOrEqual(1 + oncemore);
      report({ point, events: events.length, copiesOfTheMail: copies.length, distinctIds: byId.size });
      const ev = copies[0] as CloudEventJson;
      expect(ev.type).toBe(input === 'comment' ? 'com.itil-next.connectors.ticket.comment_added.v1' : 'com.itil-next.connectors.ticket.create_requested.v1');
      if (opener) expect(ofMail(opener)).toHaveLength(1);
      // Nothing given up on: a redelivery that fails until it is poisoned would lose the mail until the delta backstop.
      expect(await poisoned()).toBe(poisonBefore);

      // Processed: the Message-ID claim is confirmed (not left pending), and the immutable id is seen.
      const claim = await table(TABLES.processed).get(partitionKey.processed('msgraph-mail', tenant), escapeKeyPart(`${integration}:${mail.internetMessageId}`));
      expect(claim?.data.pending).toBe(false);
      expect(await table(TABLES.processed).get(partitionKey.processed('msgraph-mail-id', tenant), escapeKeyPart(`${integration}:${mail.immutableId}`))).toBeDefined();
      // Conversations: one row for the thread, started by its first mail, whose ticketRef is that mail's event.
      const conv = await table(TABLES.conversations).get(partitionKey.tenant(tenant), escapeKeyPart(mail.conversationId));
      expect(conv?.data.firstMessageKey).toBe((opener ?? mail).internetMessageId);
      if (opener) {
        expect(ev.data.ticketRef).toBe(conv?.data.ticketRef);
        expect(conv?.data.lastMessageId).toBe(mail.immutableId);
      } else {
        expect(conv?.data.ticketRef).toBe(ev.id);
      }
    } finally {
      await host.stop();
      host = undefined;
    }
  }, 180_000);

  it.each(CASES.filter((c) => c.input === 'reply'))("reply: SIGKILL after $point, restart, the engine retries with the same Idempotency-Key: the reply goes out, $oncemore extra mails at most", async ({ point, oncemore }) => {
    const log = path.join(tmp, `fault-${point}.log`);
    const key = `crash-${point}-${randomBytes(3).toString('hex')}`;
    const ticketId = `T-${randomBytes(3).toString('hex')}`;
    const body = { conversation_id: thread.conversationId, body_html: `<p>Reply for ${key}</p>`, ticket_id: ticketId };
    const sentOf = () => fake.messages(entra, SUPPORT, 'sentitems').filter((m) => m.body.content === body.body_html);
    host = await runner(crashEnv(point, log));
    const crashed = host;
    // The runner dies while it answers: the engine sees a dropped connection.
    await postReply(key, body).then(
      (r) => r.status,
      () => 'connection lost',
    );
    await waitForCrash(crashed, log, point);
    host = await runner({ ...SHORT_TIMEOUT_ENV });
    try {
      // The engine retries the same call until it gets an answer that is not "still in progress".
      let inProgress = 0;
      const final = await waitFor(
        'an answer to the retried reply',
        async () => {
          const r = await postReply(key, body);
          if (r.status === 409) {
            expect(((await r.json()) as { type?: string }).type).toMatch(/reply-in-progress$/);
            inProgress++;
            // As the engine would: come back when the answer says.
            await new Promise((w) => setTimeout(w, Number(r.headers.get('retry-after') ?? '1') * 1000));
            return undefined;
          }
          return { status: r.status, body: (await r.json()) as Record<string, unknown> };
        },
        90_000,
      );
      expect([200, 202]).toContain(final.status);
      expect(sentOf().length).toBeGreaterThanOrEqual(1);
      expect(sentOf().length).toBeLessThanOrEqual(1 + oncemore);
      expect(sentOf()[0]?.toRecipients.map((r) => r.emailAddress.address)).toEqual([CUSTOMER]);
      // Once answered, a further retry is a duplicate and sends nothing.
      const again = await postReply(key, body);
      expect(again.status).toBe(200);
      expect(await again.json()).toEqual({ status: 'duplicate' });
      const sent = sentOf().length;
      expect(sent).toBeLessThanOrEqual(1 + oncemore);
      report({ point, inProgressAnswers: inProgress, answer: final.status, mailsSent: sent });
      const claim = await table(TABLES.processed).get(partitionKey.processed('msgraph-reply', tenant), escapeKeyPart(`${integration}:${key}`));
      expect(claim).toBeDefined();
      expect(claim?.data.pending ?? false).toBe(false);
      const conv = await table(TABLES.conversations).get(partitionKey.tenant(tenant), escapeKeyPart(thread.conversationId));
      expect(conv?.data.ticketId).toBe(ticketId);
      expect(await drainEvents()).toEqual([]);
    } finally {
      await host.stop();
      host = undefined;
    }
  }, 180_000);
});
