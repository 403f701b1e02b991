import { randomBytes, randomUUID } from 'node:crypto';
import http from 'node:http';
import { mkdtempSync, rmSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import {
  acceptNotifications,
  clientStateHash,
  createGraphServices,
  EntraLinkCache,
  graphDeliveryMessageSchema,
  MAX_NOTIFICATION_ITEMS,
  routeNotifications,
  type GraphDeliveryMessage,
  type GraphServices,
  type GraphWorkItemInput,
} from '../../../../src/connectors/msgraph';
import { parseConfig } from '../../../../src/config';
import { Logger } from '../../../../src/platform/logging';
import { createServices } from '../../../../src/platform/services';
import { integrationId, QUEUES, tenantId, type IntegrationId, type QueueName } from '../../../../src/storage';
import { useAzurite } from '../../../helpers/azurite';
import { TEST_JWT_SECRET } from '../../../helpers/jwt';

interface LogLine {
  level: string;
  msg: string;
  fields: Record<string, unknown>;
}

/**
 * The anonymous Graph notification endpoint (issue 11, finding 3): the intake reads nothing per item
 * and writes one message per delivery; the router checks subscriptions with bounded, de-duplicated
 * reads. Against Azurite; the intake's table endpoint is a trap that counts every request it gets.
 */
describe('Graph notification intake and router', () => {
  let azurite: Awaited<ReturnType<typeof useAzurite>>;
  let trap: http.Server;
  let trapped = 0;
  let secretDir: string;
  let gs: GraphServices;
  /** The same app, but its Table endpoint is the trap: any table read or write is counted (and fails). */
  let noTables: GraphServices;
  const A = tenantId('tenant-na');
  const B = tenantId('tenant-nb');
  const entraA = randomUUID();
  const entraB = randomUUID();
  let intA: IntegrationId;
  let intB: IntegrationId;
  const subA = randomUUID();
  const subB = randomUUID();
  const stateA = randomBytes(24).toString('base64url');
  const stateB = randomBytes(24).toString('base64url');
  let lines: LogLine[] = [];
  const log = new Logger(
    {
      debug: () => undefined,
      info: (m: string) => void lines.push(JSON.parse(m.slice(m.indexOf('{'))) as LogLine),
      warn: (m: string) => void lines.push(JSON.parse(m.slice(m.indexOf('{'))) as LogLine),
      error: (m: string) => void lines.push(JSON.parse(m.slice(m.indexOf('{'))) as LogLine),
    },
    {},
    'info',
  );

  const configFor = (connectionString: string) =>
    parseConfig({
      AzureWebJobsStorage: connectionString,
      LOCAL_SECRET_KEY: randomBytes(32).toString('base64'),
      LOCAL_SECRET_DIR: secretDir,
      API_JWT_SECRET: TEST_JWT_SECRET,
      PUBLIC_BASE_URL: 'http://127.0.0.1:9',
      MSGRAPH_CLIENT_ID: 'notifications-app',
      MSGRAPH_CLIENT_SECRET: 'notifications-app-secret-0123456789',
    });

  beforeAll(async () => {
    azurite = await useAzurite();
    trap = http.createServer((req, res) => {
      trapped++;
      req.resume();
      res.writeHead(403, { 'content-type': 'application/json' }).end('{"odata.error":{"code":"AuthorizationFailure","message":{"value":"trap"}}}');
    });
    await new Promise<void>((r) => trap.listen(0, '127.0.0.1', () => r()));
    secretDir = mkdtempSync(path.join(os.tmpdir(), 'graph-notifications-'));
    gs = createGraphServices(createServices(configFor(azurite.connectionString)));
    const trapConnection = azurite.connectionString.replace(/TableEndpoint=[^;]+/, `TableEndpoint=http://127.0.0.1:${(trap.address() as AddressInfo).port}/devstoreaccount1`);
    noTables = createGraphServices(createServices(configFor(trapConnection)));
    await gs.services.storage.ensureAll();
    for (const [t, i, entra, sub, state] of [
      [A, 'int-na', entraA, subA, stateA],
      [B, 'int-nb', entraB, subB, stateB],
    ] as const) {
      const created = await gs.services.integrations.create(t, { type: 'msgraph', status: 'active', externalAccountId: entra, integrationId: integrationId(i) });
      await gs.accountIndex.link(entra, t, created.integrationId);
      await gs.subscriptionsRepo.put(t, sub, {
        integrationId: created.integrationId,
        mailbox: `support@${i}.example`,
        entraTenantId: entra,
        resource: "users/x/mailFolders('inbox')/messages",
        expiresAt: new Date(Date.now() + 3_600_000).toISOString(),
        clientStateHash: clientStateHash(state),
        clientStateSecret: 'unused-here',
        createdAt: new Date().toISOString(),
      });
      if (t === A) intA = created.integrationId;
      else intB = created.integrationId;
    }
  });

  afterAll(async () => {
    await new Promise<void>((r) => trap?.close(() => r()));
    await azurite?.stop();
    rmSync(secretDir, { recursive: true, force: true });
  });

  beforeEach(async () => {
    lines = [];
    trapped = 0;
    await gs.services.storage.queue(QUEUES.graphWebhooks).clearMessages();
    await gs.services.storage.queue(QUEUES.graphNotifications).clearMessages();
  });

  async function drain<T>(queue: QueueName): Promise<T[]> {
    const q = gs.services.storage.queue(queue);
    const out: T[] = [];
    for (;;) {
      const res = await q.receiveMessages({ numberOfMessages: 32 });
      if (res.receivedMessageItems.length === 0) return out;
      for (const m of res.receivedMessageItems) {
        out.push(JSON.parse(Buffer.from(m.messageText, 'base64').toString('utf8')) as T);
        await q.deleteMessage(m.messageId, m.popReceipt);
      }
    }
  }
  const deliveries = async () => (await drain<unknown>(QUEUES.graphWebhooks)).map((m) => graphDeliveryMessageSchema.parse(m));
  const item = (over: Record<string, unknown> = {}) => ({ subscriptionId: subA, clientState: stateA, tenantId: entraA, changeType: 'created', resource: 'Users/x/Messages/m', resourceData: { id: `m-${randomUUID()}` }, ...over });

  it('the intake reads no table, whatever the items claim, and writes the delivery as one message', async () => {
    // 1,000 items naming 1,000 Entra tenants and subscriptions nobody has: the old intake looked each up.
    const value = Array.from({ length: MAX_NOTIFICATION_ITEMS }, () => item({ subscriptionId: randomUUID(), tenantId: randomUUID() }));
    const res = await acceptNotifications(noTables, JSON.stringify({ value }), 'change', log);
    expect(res).toMatchObject({ status: 202, queued: MAX_NOTIFICATION_ITEMS, dropped: 0 });
    expect(trapped).toBe(0);
    const queued = await deliveries();
    expect(queued.length).toBe(res.messages);
    expect(queued.flatMap((m) => m.items)).toHaveLength(MAX_NOTIFICATION_ITEMS);
    // Each message fits the queue: measured in the encoded bytes sent.
    expect(queued.every((m) => Buffer.from(JSON.stringify(m)).toString('base64').length <= 64 * 1024)).toBe(true);
  });

  it('a delivery of 100 ordinary notifications is exactly one queue message', async () => {
    const res = await acceptNotifications(noTables, JSON.stringify({ value: Array.from({ length: 100 }, () => item()) }), 'change', log);
    expect(res).toMatchObject({ status: 202, queued: 100, messages: 1 });
    expect(trapped).toBe(0);
  });

  it('what cannot be ours is answered 202 with nothing written; a non-Graph body is a 400; more than 1,000 items is a 400', async () => {
    const junk = [{ nonsense: true }, item({ tenantId: 'not-a-guid' }), item({ clientState: null }), item({ changeType: 'updated' }), item({ resourceData: null })];
    const value = Array.from({ length: 200 }, (_, i) => junk[i % junk.length]);
    expect(await acceptNotifications(noTables, JSON.stringify({ value }), 'change', log)).toEqual({ status: 202, queued: 0, dropped: 200, messages: 0 });
    expect(await acceptNotifications(noTables, JSON.stringify({ value: [item({ lifecycleEvent: 'somethingElse' })] }), 'lifecycle', log)).toMatchObject({ status: 202, queued: 0 });
    expect((await acceptNotifications(noTables, '{"value": [', 'change', log)).status).toBe(400);
    expect((await acceptNotifications(noTables, JSON.stringify({ value: Array.from({ length: MAX_NOTIFICATION_ITEMS + 1 }, () => item()) }), 'change', log)).status).toBe(400);
    expect(trapped).toBe(0);
    expect(await deliveries()).toEqual([]);
    // 200 dropped items, a bounded number of log lines (the rest are counts in one line).
    expect(lines.filter((l) => l.msg === 'graph notification dropped').length).toBeLessThanOrEqual(20);
  });

  it('no clientState leaves the intake: the message carries its hash', async () => {
    await acceptNotifications(noTables, JSON.stringify({ value: [item()] }), 'change', log);
    const raw = JSON.stringify(await deliveries());
    expect(raw).not.toContain(stateA);
    expect(raw).toContain(clientStateHash(stateA));
  });

  it('the router queues the genuine items only, and reads each tenant and subscription once per delivery', async () => {
    const good = Array.from({ length: 50 }, () => item());
    const forged = Array.from({ length: 50 }, () => item({ clientState: `${stateA}x` }));
    const unknownSub = Array.from({ length: 50 }, () => item({ subscriptionId: randomUUID() }));
    const strangers = Array.from({ length: 50 }, () => item({ tenantId: randomUUID() }));
    await acceptNotifications(gs, JSON.stringify({ value: [...good, ...forged, ...unknownSub, ...strangers] }), 'change', log);
    // 200 items of ~330 bytes are more than one message holds: a few parts, each routed on its own.
    const parts = await deliveries();
    expect(parts.length).toBeGreaterThan(1);
    const cache = new EntraLinkCache();
    const total = { items: 0, queued: 0, dropped: 0, reads: 0, messages: 0 };
    for (const p of parts) {
      const r = await routeNotifications(gs, p, log, cache);
      for (const k of Object.keys(total) as Array<keyof typeof total>) total[k] += r[k];
    }
    expect(total).toMatchObject({ items: 200, queued: 50, dropped: 150 });
    // One read per distinct Entra tenant (51: A and 50 strangers; cached across parts), one per distinct
    // subscription of A's per part (subA, and the 50 unknown ones): about 100 reads for 200 items, where
    // the old intake made two or three per item.
    const subsPerPart = parts.map((p) => new Set(p.items.filter((i) => i.entraTenantId === entraA).map((i) => i.subscriptionId)).size);
    expect(subsPerPart.reduce((a, b) => a + b, 0)).toBeLessThanOrEqual(50 + parts.length);
    expect(total.reads).toBe(51 + subsPerPart.reduce((a, b) => a + b, 0));
    const work = await drain<GraphWorkItemInput>(QUEUES.graphNotifications);
    // Grouped by mailbox: one work message per part holding good items, not one per mail.
    expect(work.length).toBe(total.messages);
    expect(work.length).toBeLessThanOrEqual(parts.length);
    expect(work.flatMap((w) => (w.kind === 'messages' ? w.messageIds : w.kind === 'message' ? [w.messageId] : [])).sort()).toEqual(good.map((g) => g.resourceData.id).sort());
    expect(work.every((w) => w.tenantId === A && w.integrationId === intA)).toBe(true);
    // 150 dropped, at most ten lines per message about them.
    expect(lines.filter((l) => l.msg === 'graph notification dropped').length).toBeLessThanOrEqual(10 * parts.length);
  });

  it("tenant scoping: A's clientState does not open B's subscription, and B's items become B's work only", async () => {
    await acceptNotifications(gs, JSON.stringify({ value: [item({ subscriptionId: subB, tenantId: entraB }), item({ subscriptionId: subB, tenantId: entraB, clientState: stateB }), item({ subscriptionId: subB, tenantId: entraA, clientState: stateB })] }), 'change', log);
    const [delivery] = (await deliveries()) as [GraphDeliveryMessage];
    expect(await routeNotifications(gs, delivery, log, new EntraLinkCache())).toMatchObject({ queued: 1, dropped: 2 });
    const work = await drain<GraphWorkItemInput>(QUEUES.graphNotifications);
    expect(work.map((w) => `${w.tenantId}/${w.integrationId}`)).toEqual([`${B}/${intB}`]);
  });

  it('lifecycle deliveries become lifecycle work items after the same check', async () => {
    await acceptNotifications(gs, JSON.stringify({ value: [item({ lifecycleEvent: 'reauthorizationRequired' }), item({ lifecycleEvent: 'missed', clientState: 'guess' })] }), 'lifecycle', log);
    const [delivery] = (await deliveries()) as [GraphDeliveryMessage];
    expect(await routeNotifications(gs, delivery, log, new EntraLinkCache())).toMatchObject({ queued: 1, dropped: 1 });
    expect(await drain<GraphWorkItemInput>(QUEUES.graphNotifications)).toEqual([{ kind: 'lifecycle', tenantId: A, integrationId: intA, mailbox: 'support@int-na.example', subscriptionId: subA, event: 'reauthorizationRequired' }]);
  });
});
