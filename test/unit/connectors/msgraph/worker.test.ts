import { randomBytes } from 'node:crypto';
import http from 'node:http';
import { mkdtempSync, rmSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { HttpRequest } from '@azure/functions';
import {
  acceptNotifications,
  createGraphServices,
  EntraLinkCache,
  graphDeliveryMessageSchema,
  routeNotifications,
  processWorkItem,
  validationResponse,
  watchMailbox,
  type GraphServices,
  type GraphWorkItemInput,
  graphWorkItemSchema,
  MAIL_CLAIM_STALE_MS,
  MAIL_SOURCE,
  MailInProgressError,
  mailClaimId,
  ticketRefFor,
} from '../../../../src/connectors/msgraph';
import { parseConfig } from '../../../../src/config';
import { Logger } from '../../../../src/platform/logging';
import { createServices } from '../../../../src/platform/services';
import { integrationId, ProcessedStore, TABLES, TenantTable, tenantId, type IntegrationId, type ProcessedRow } from '../../../../src/storage';
import { startFakeGraph, type FakeGraph } from '../../../fakes/graph';
import { useAzurite } from '../../../helpers/azurite';
import { TEST_JWT_SECRET } from '../../../helpers/jwt';

const APP = { clientId: 'worker-app', clientSecret: 'worker-app-secret-0123456789' };
const silent = new Logger({ debug() {}, info() {}, warn() {}, error() {} }, {}, 'error');

/**
 * The Graph worker and subscription logic in process, against real Azurite and the HTTPS fake Graph.
 * A small HTTP server stands in for the app's webhook and answers Graph's validation POST with the
 * app's own `validationResponse`.
 */
describe('Graph subscriptions and mail worker (Azurite + fake Graph)', () => {
  let azurite: Awaited<ReturnType<typeof useAzurite>>;
  let fake: FakeGraph;
  let hook: http.Server;
  let secretDir: string;
  let gs: GraphServices;
  let entra: string;
  const tenant = tenantId('tenant-w');
  let integration: IntegrationId;
  const support = 'support@w.example';

  beforeAll(async () => {
    azurite = await useAzurite();
    fake = await startFakeGraph({ ...APP, maxSubscriptionMinutes: 4230 });
    entra = fake.addTenant();
    fake.consent(entra);
    fake.addUser(entra, { mail: support });
    hook = http.createServer((req, res) => {
      const request = new HttpRequest({ method: req.method ?? 'POST', url: `http://127.0.0.1${req.url}`, headers: {} });
      const answer = validationResponse(request);
      res.writeHead(answer?.status ?? 202, (answer?.headers as Record<string, string> | undefined) ?? {});
      res.end(typeof answer?.body === 'string' ? answer.body : '');
    });
    await new Promise<void>((r) => hook.listen(0, '127.0.0.1', () => r()));
    secretDir = mkdtempSync(path.join(os.tmpdir(), 'graph-worker-'));
    const config = parseConfig({
      AzureWebJobsStorage: azurite.connectionString,
      LOCAL_SECRET_KEY: randomBytes(32).toString('base64'),
      LOCAL_SECRET_DIR: secretDir,
      API_JWT_SECRET: TEST_JWT_SECRET,
      PUBLIC_BASE_URL: `http://127.0.0.1:${(hook.address() as AddressInfo).port}`,
      MSGRAPH_CLIENT_ID: APP.clientId,
      MSGRAPH_CLIENT_SECRET: APP.clientSecret,
      GRAPH_BASE_URL: fake.url,
      MSGRAPH_AUTHORITY_HOST: fake.url,
      // More than the fake accepts: the connector must fall back to the documented 4230.
      MSGRAPH_SUBSCRIPTION_LIFETIME_MINUTES: '10080',
    });
    gs = createGraphServices(createServices(config), { tls: { ca: fake.ca } });
    const created = await gs.services.integrations.create(tenant, { type: 'msgraph', status: 'active', externalAccountId: entra, integrationId: integrationId('int-w') });
    integration = created.integrationId;
    await gs.accountIndex.link(entra, tenant, integration);
  });

  afterAll(async () => {
    await fake?.stop();
    await new Promise<void>((r) => hook?.close(() => r()));
    await azurite?.stop();
    rmSync(secretDir, { recursive: true, force: true });
  });

  const drainNotificationsQueue = async (): Promise<GraphWorkItemInput[]> => {
    const q = gs.services.storage.queue('graph-notifications');
    const out: GraphWorkItemInput[] = [];
    for (;;) {
      const res = await q.receiveMessages({ numberOfMessages: 32 });
      if (res.receivedMessageItems.length === 0) return out;
      for (const m of res.receivedMessageItems) {
        out.push(JSON.parse(Buffer.from(m.messageText, 'base64').toString('utf8')) as GraphWorkItemInput);
        await q.deleteMessage(m.messageId, m.popReceipt);
      }
    }
  };
  const run = (item: GraphWorkItemInput) => processWorkItem(gs, graphWorkItemSchema.parse(item), silent);

  it('creates the subscription after a validation handshake, falling back to 4230 minutes when Graph refuses 10080', async () => {
    const { mailbox, created } = await watchMailbox(gs, tenant, integration, support, silent);
    expect(created).toBe(true);
    const subs = fake.subscriptions();
    expect(subs).toHaveLength(1);
    const minutes = (Date.parse(subs[0]?.expirationDateTime as string) - Date.now()) / 60_000;
    expect(minutes).toBeGreaterThan(4200);
    expect(minutes).toBeLessThanOrEqual(4230);
    expect(gs.subscriptions.lifetimeMinutes).toBeLessThan(4230);
    expect(fake.requests.filter((r) => r.method === 'POST' && r.path === '/v1.0/subscriptions').map((r) => r.status)).toEqual([400, 201]);
    expect(fake.deliveries.filter((d) => d.kind === 'validation').every((d) => d.ok)).toBe(true);
    expect(mailbox.subscriptionId).toBe(subs[0]?.id);
    // The clientState is in the secret store; the table has its hash only.
    const row = await gs.subscriptionsRepo.get(tenant, subs[0]?.id as string);
    expect(await gs.services.secrets.get(row?.clientStateSecret as string)).toBe(subs[0]?.clientState);
    await drainNotificationsQueue();
  });

  it('verifies clientState per item: a batch with one good and one forged item queues only the good one', async () => {
    const sub = fake.subscriptions()[0] as ReturnType<FakeGraph['subscriptions']>[number];
    const good = { subscriptionId: sub.id, clientState: sub.clientState, tenantId: entra, changeType: 'created', resourceData: { id: 'm-1' } };
    const forged = { ...good, clientState: `${sub.clientState}x`, resourceData: { id: 'm-2' } };
    // The intake drops the nonsense on sight and queues the rest as one delivery; the router checks clientStates.
    const res = await acceptNotifications(gs, JSON.stringify({ value: [good, forged, { nonsense: true }] }), 'change', silent);
    expect(res).toEqual({ status: 202, queued: 2, dropped: 1, messages: 1 });
    const q = gs.services.storage.queue('graph-webhooks');
    const [delivery] = (await q.receiveMessages({ numberOfMessages: 32 })).receivedMessageItems;
    await q.deleteMessage(delivery?.messageId as string, delivery?.popReceipt as string);
    const routed = await routeNotifications(gs, graphDeliveryMessageSchema.parse(JSON.parse(Buffer.from(delivery?.messageText as string, 'base64').toString('utf8'))), silent, new EntraLinkCache());
    expect(routed).toMatchObject({ queued: 1, dropped: 1 });
    expect(await drainNotificationsQueue()).toEqual([{ kind: 'message', tenantId: tenant, integrationId: integration, mailbox: support, messageId: 'm-1', via: 'notification', subscriptionId: sub.id }]);
  });

  it('a message whose event could not be published is retried as the same create_requested, not as a comment', async () => {
    const { message } = await fake.deliverMail(entra, support, { from: 'x@customer.example', subject: 'Disk full', text: 'disk' }, { notify: false });
    const item: GraphWorkItemInput = { kind: 'message', tenantId: tenant, integrationId: integration, mailbox: support, messageId: message.immutableId, via: 'notification' };
    const events = gs.services.storage.queue('engine-events');
    await events.delete();
    await expect(run(item)).rejects.toThrow();
    await events.create();
    const retried = await run(item);
    expect(retried).toMatchObject({ outcome: 'created' });
    expect(await run(item)).toMatchObject({ outcome: 'duplicate' });
    const got = await events.receiveMessages({ numberOfMessages: 32 });
    expect(got.receivedMessageItems).toHaveLength(1);
    const ev = JSON.parse(Buffer.from(got.receivedMessageItems[0]?.messageText as string, 'base64').toString('utf8')) as { type: string; id: string };
    expect(ev.type).toBe('com.itil-next.connectors.ticket.create_requested.v1');
    expect('eventId' in retried && retried.eventId).toBe(ev.id);
  });

  it('a worker that died between its claim and the publish: a redelivery waits while the claim is young, then publishes the event once', async () => {
    const { message } = await fake.deliverMail(entra, support, { from: 'z@customer.example', subject: 'Printer', text: 'jammed' }, { notify: false });
    const item: GraphWorkItemInput = { kind: 'message', tenantId: tenant, integrationId: integration, mailbox: support, messageId: message.immutableId, via: 'notification' };
    const key = message.internetMessageId as string;
    const table = new TenantTable<ProcessedRow>(gs.services.storage.table(TABLES.processed));
    // What a killed worker leaves behind: the mail's claim, still provisional, and nothing on the queue.
    const killedAt = (ago: number) => new ProcessedStore(table, () => Date.now() - ago);
    expect(await killedAt(0).claimProvisional(MAIL_SOURCE, tenant, mailClaimId(integration, key), { staleAfterMs: MAIL_CLAIM_STALE_MS })).toBe('claimed');
    const events = gs.services.storage.queue('engine-events');
    await events.clearMessages();

    // A redelivery while the claim is young may meet a live holder: it fails, so the queue brings it back.
    await expect(run(item)).rejects.toBeInstanceOf(MailInProgressError);
    await expect(run({ ...item, via: 'delta' })).rejects.toBeInstanceOf(MailInProgressError);
    expect((await events.peekMessages({ numberOfMessages: 32 })).peekedMessageItems).toHaveLength(0);

    // Later (the claim now older than the staleness): the redelivery takes the claim over and publishes.
    await killedAt(0).release(MAIL_SOURCE, tenant, mailClaimId(integration, key));
    await killedAt(MAIL_CLAIM_STALE_MS + 1000).claimProvisional(MAIL_SOURCE, tenant, mailClaimId(integration, key), { staleAfterMs: MAIL_CLAIM_STALE_MS });
    const out = await run(item);
    expect(out).toMatchObject({ outcome: 'created', eventId: ticketRefFor(tenant, integration, key) });
    // Every later delivery, by notification or by the delta backstop, is a duplicate now.
    expect(await run(item)).toMatchObject({ outcome: 'duplicate' });
    expect(await run({ ...item, via: 'delta' })).toMatchObject({ outcome: 'duplicate' });
    const got = (await events.receiveMessages({ numberOfMessages: 32 })).receivedMessageItems.map((m) => JSON.parse(Buffer.from(m.messageText, 'base64').toString('utf8')) as { id: string; type: string });
    expect(got.map((e) => [e.type, e.id])).toEqual([['com.itil-next.connectors.ticket.create_requested.v1', ticketRefFor(tenant, integration, key)]]);
  });

  it('the same mail reaching two watched mailboxes yields one event', async () => {
    const second = 'desk@w.example';
    fake.addUser(entra, { mail: second });
    await watchMailbox(gs, tenant, integration, second, silent);
    await drainNotificationsQueue();
    const a = await fake.deliverMail(entra, support, { from: 'y@customer.example', to: [support, second], subject: 'Both', text: 'both' }, { notify: false });
    const b = await fake.deliverMail(entra, second, { from: 'y@customer.example', to: [support, second], subject: 'Both', text: 'both' }, { notify: false });
    // One SMTP message, two mailbox copies: same Message-ID.
    b.message.internetMessageId = a.message.internetMessageId;
    const r1 = await run({ kind: 'message', tenantId: tenant, integrationId: integration, mailbox: support, messageId: a.message.immutableId, via: 'delta' });
    const r2 = await run({ kind: 'message', tenantId: tenant, integrationId: integration, mailbox: second, messageId: b.message.immutableId, via: 'delta' });
    expect([r1.outcome, r2.outcome]).toEqual(['created', 'duplicate']);
  });

  it('a `messages` work item (the router groups a delivery by mailbox) handles each mail once, also when redelivered', async () => {
    const mails = await Promise.all([1, 2, 3].map((n) => fake.deliverMail(entra, support, { from: `g${n}@customer.example`, subject: `Grouped ${n}`, text: 'grouped' }, { notify: false })));
    const item: GraphWorkItemInput = { kind: 'messages', tenantId: tenant, integrationId: integration, mailbox: support, via: 'notification', messageIds: mails.map((m) => m.message.immutableId) };
    expect(await run(item)).toEqual({ outcome: 'messages', results: { created: 3 } });
    expect(await run(item)).toEqual({ outcome: 'messages', results: { duplicate: 3 } });
  });

  it('maintenance renews a subscription close to expiry and recreates one Graph lost', async () => {
    const mailbox = await gs.mailboxes.get(tenant, integration, support);
    const sub = await gs.subscriptionsRepo.get(tenant, mailbox?.subscriptionId as string);
    await gs.subscriptionsRepo.setExpiry(tenant, sub?.subscriptionId as string, new Date(Date.now() + 3600_000).toISOString());
    fake.clearRequests();
    expect(await run({ kind: 'maintain', tenantId: tenant, integrationId: integration, mailbox: support })).toMatchObject({ outcome: 'maintained', subscription: 'renewed' });
    expect(fake.requests.some((r) => r.method === 'PATCH' && r.path === `/v1.0/subscriptions/${sub?.subscriptionId}` && r.status === 200)).toBe(true);
    expect(await run({ kind: 'maintain', tenantId: tenant, integrationId: integration, mailbox: support })).toMatchObject({ subscription: 'kept' });

    // Graph lost it (expired while we were down): recreated with a new clientState, the old one forgotten.
    const lost = fake.subscriptions().find((s) => s.id === sub?.subscriptionId);
    await fake.lifecycle(lost?.id as string, 'subscriptionRemoved').catch(() => undefined);
    expect(await run({ kind: 'maintain', tenantId: tenant, integrationId: integration, mailbox: support })).toMatchObject({ subscription: 'created' });
    expect(await gs.subscriptionsRepo.get(tenant, sub?.subscriptionId as string)).toBeUndefined();
    expect(await gs.services.secrets.get(sub?.clientStateSecret as string)).toBeUndefined();
  });

  it('a tenant that withdrew consent: the integration needs re-consent and the work is dropped', async () => {
    fake.revokeConsent(entra);
    const fresh = createGraphServices(gs.services, { tls: { ca: fake.ca } }); // no cached token
    const out = await processWorkItem(fresh, graphWorkItemSchema.parse({ kind: 'maintain', tenantId: tenant, integrationId: integration, mailbox: support }), silent);
    expect(out).toEqual({ outcome: 'dropped', reason: 'consent revoked' });
    expect((await gs.services.integrations.get(tenant, integration))?.status).toBe('needs_reauth');
    fake.consent(entra);
  });

  it("work items of another tenant never touch this tenant's mailbox", async () => {
    const other = tenantId('tenant-other');
    const out = await run({ kind: 'message', tenantId: other, integrationId: integration, mailbox: support, messageId: 'whatever', via: 'notification' });
    expect(out).toEqual({ outcome: 'dropped', reason: 'no such integration' });
  });
});
