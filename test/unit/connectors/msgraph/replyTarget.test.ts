import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createGraphServices, graphWorkItemSchema, processWorkItem, replyFromEngine, type GraphServices } from '../../../../src/connectors/msgraph';
import { staleClaimMs } from '../../../../src/connectors/base';
import { parseConfig } from '../../../../src/config';
import { Logger } from '../../../../src/platform/logging';
import { createServices } from '../../../../src/platform/services';
import { escapeKeyPart, integrationId, partitionKey, TABLES, TenantTable, tenantId, type IntegrationId, type ProcessedRow } from '../../../../src/storage';
import { startFakeGraph, type FakeGraph } from '../../../fakes/graph';
import { useAzurite } from '../../../helpers/azurite';
import { TEST_JWT_SECRET } from '../../../helpers/jwt';

const APP = { clientId: 'reply-app', clientSecret: 'reply-app-secret-0123456789' };
const silent = new Logger({ debug() {}, info() {}, warn() {}, error() {} }, {}, 'error');

/**
 * Issue 11, finding 8, at the connector level (Azurite + the HTTPS fake Graph): the engine's reply goes
 * to the ticket's requester, recorded on the conversation row when the first mail made the ticket, not
 * to whoever threaded the latest message into the conversation.
 */
describe('who an engine reply goes to', () => {
  let azurite: Awaited<ReturnType<typeof useAzurite>>;
  let fake: FakeGraph;
  let secretDir: string;
  let gs: GraphServices;
  let entra: string;
  const tenant = tenantId('tenant-r');
  let integration: IntegrationId;
  const support = 'support@r.example';
  const requester = 'ann@customer.example';
  const outsider = 'mallory@outsider.example';

  beforeAll(async () => {
    azurite = await useAzurite();
    fake = await startFakeGraph(APP);
    entra = fake.addTenant();
    fake.consent(entra);
    fake.addUser(entra, { mail: support });
    secretDir = mkdtempSync(path.join(os.tmpdir(), 'graph-reply-'));
    const config = parseConfig({
      AzureWebJobsStorage: azurite.connectionString,
      LOCAL_SECRET_KEY: randomBytes(32).toString('base64'),
      LOCAL_SECRET_DIR: secretDir,
      API_JWT_SECRET: TEST_JWT_SECRET,
      PUBLIC_BASE_URL: 'http://127.0.0.1:9',
      MSGRAPH_CLIENT_ID: APP.clientId,
      MSGRAPH_CLIENT_SECRET: APP.clientSecret,
      GRAPH_BASE_URL: fake.url,
      MSGRAPH_AUTHORITY_HOST: fake.url,
    });
    gs = createGraphServices(createServices(config), { tls: { ca: fake.ca } });
    const created = await gs.services.integrations.create(tenant, { type: 'msgraph', status: 'active', externalAccountId: entra, integrationId: integrationId('int-r') });
    integration = created.integrationId;
    await gs.accountIndex.link(entra, tenant, integration);
    const now = new Date().toISOString();
    await gs.mailboxes.upsert(tenant, integration, support, { address: support, userId: 'u', entraTenantId: entra, status: 'active', watchedSince: now, createdAt: now });
  });

  afterAll(async () => {
    await fake?.stop();
    await azurite?.stop();
    rmSync(secretDir, { recursive: true, force: true });
  });

  const processMail = (messageId: string) => processWorkItem(gs, graphWorkItemSchema.parse({ kind: 'message', tenantId: tenant, integrationId: integration, mailbox: support, messageId, via: 'delta' }), silent);
  const lastSentTo = () => fake.messages(entra, support, 'sentitems').at(-1)?.toRecipients.map((r) => r.emailAddress.address);

  it('the requester is stored with the conversation, and an outsider threading in a message does not receive the reply', async () => {
    const t0 = Date.parse('2025-05-01T09:00:00Z');
    const first = await fake.deliverMail(entra, support, { from: requester, subject: 'Laptop', text: 'It does not boot.', receivedAt: new Date(t0) }, { notify: false });
    const conversationId = first.message.conversationId;
    expect(await processMail(first.message.immutableId)).toMatchObject({ outcome: 'created' });
    expect(await gs.conversations.get(tenant, conversationId)).toMatchObject({ requester, firstMessageKey: first.message.internetMessageId });

    const intruding = await fake.deliverMail(entra, support, { from: outsider, subject: 'RE: Laptop', text: 'Send me the recovery key.', conversationId, inReplyTo: first.message.internetMessageId, receivedAt: new Date(t0 + 60_000) }, { notify: false });
    expect(await processMail(intruding.message.immutableId)).toMatchObject({ outcome: 'commented' });

    const res = await replyFromEngine(gs, tenant, integration, { conversation_id: conversationId, body_html: '<p>Here is the key.</p>' }, 'k-1', silent);
    expect(res).toMatchObject({ status: 'sent', repliedToMessageId: first.message.immutableId });
    expect(lastSentTo()).toEqual([requester]);

    // The row, not the thread, names the requester (e.g. the engine's requester was recorded there).
    await gs.conversations.touch(tenant, conversationId, { requester: 'carol@customer.example' });
    await replyFromEngine(gs, tenant, integration, { conversation_id: conversationId, body_html: '<p>x</p>' }, 'k-2', silent);
    expect(lastSentTo()).toEqual(['carol@customer.example']);

    // Addresses the engine names win over both.
    await replyFromEngine(gs, tenant, integration, { conversation_id: conversationId, body_html: '<p>y</p>', to: ['dave@customer.example'] }, 'k-3', silent);
    expect(lastSentTo()).toEqual(['dave@customer.example']);
    expect(fake.messages(entra, support, 'sentitems').flatMap((m) => m.toRecipients.map((r) => r.emailAddress.address))).not.toContain(outsider);
  });

  it("an Idempotency-Key left pending by a call that died is 'in progress' (409) until stale, then the retry sends once", async () => {
    const first = await fake.deliverMail(entra, support, { from: requester, subject: 'Monitor', text: 'Flickers.' }, { notify: false });
    expect(await processMail(first.message.immutableId)).toMatchObject({ outcome: 'created' });
    const req = { conversation_id: first.message.conversationId, body_html: '<p>Pending key</p>' };
    const sent = () => fake.messages(entra, support, 'sentitems').filter((m) => m.body.content === req.body_html).length;
    // What a call that died after claiming leaves behind.
    const claimId = `${integration}:k-died`;
    expect(await gs.services.processed.claimProvisional('msgraph-reply', tenant, claimId, { staleAfterMs: 1 })).toBe('claimed');
    await expect(replyFromEngine(gs, tenant, integration, req, 'k-died', silent)).rejects.toMatchObject({ status: 409, code: 'reply-in-progress', headers: { 'Retry-After': '60' } });
    expect(sent()).toBe(0);
    // Older than the function timeout and a tenth: its call cannot be running any more.
    const rows = new TenantTable<ProcessedRow>(azurite.clients.table(TABLES.processed));
    await rows.upsert(partitionKey.processed('msgraph-reply', tenant), escapeKeyPart(claimId), { processedAt: Date.now() - staleClaimMs(gs.services.config.functionTimeoutMs) - 1_000 });
    expect(await replyFromEngine(gs, tenant, integration, req, 'k-died', silent)).toMatchObject({ status: 'sent' });
    expect(await replyFromEngine(gs, tenant, integration, req, 'k-died', silent)).toEqual({ status: 'duplicate' });
    expect(sent()).toBe(1);
  });
});
