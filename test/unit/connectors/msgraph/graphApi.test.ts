import { GraphError } from '@microsoft/microsoft-graph-client';
import {
  createEvent,
  findUserByEmail,
  getConversationThread,
  getFreeBusy,
  getMessage,
  GraphClientFactory,
  inboxDelta,
  listGroupMembers,
  replyToThread,
} from '../../../../src/connectors/msgraph';
import { startFakeGraph, type FakeGraph } from '../../../fakes/graph';

const APP = { clientId: 'app-client-id', clientSecret: 'app-secret-0123456789abcdef' };

/** The real Graph client and @azure/identity against the HTTPS fake; the fake's CA is trusted by these clients only. */
describe('Graph calls through the real SDK against the fake', () => {
  let fake: FakeGraph;
  let factory: GraphClientFactory;
  let tenant: string;
  const support = 'support@contoso.example';

  beforeAll(async () => {
    fake = await startFakeGraph({ ...APP, messagePageSize: 3, messagePageCap: 3 });
    tenant = fake.addTenant();
    fake.consent(tenant);
    fake.addUser(tenant, { mail: support, displayName: 'Support' });
    factory = new GraphClientFactory({ ...APP, baseUrl: fake.url, authorityHost: fake.url, tls: { ca: fake.ca } });
  });
  afterAll(async () => fake.stop());
  beforeEach(() => fake.clearRequests());

  it('gets a client-credential token for the customer tenant and sends Prefer: IdType="ImmutableId" on every Graph call', async () => {
    const { message } = await fake.deliverMail(tenant, support, { from: 'ann@customer.example', subject: 'Hello', text: 'hi' }, { notify: false });
    const got = await getMessage(factory.client(tenant), support, message.immutableId);
    expect(got.id).toBe(message.immutableId);
    expect(got.id).not.toBe(message.restId);
    // internetMessageHeaders come back because they were selected
    expect(got.internetMessageHeaders?.some((h) => h.name === 'Message-ID')).toBe(true);
    const graphCalls = fake.requests.filter((r) => r.path.startsWith('/v1.0/'));
    expect(graphCalls.length).toBeGreaterThan(0);
    for (const r of graphCalls) {
      expect(r.prefer).toMatch(/IdType="ImmutableId"/);
      expect(r.tenantId).toBe(tenant);
    }
  });

  it('a tenant that has not consented gets no token, and no Graph call is made', async () => {
    const other = fake.addTenant();
    await expect(factory.token(other)).rejects.toThrow();
    expect(fake.requests.some((r) => r.path.startsWith('/v1.0/'))).toBe(false);
    expect(fake.requests.find((r) => r.tokenRequest)?.tokenRequest).toMatchObject({ tenant: other, clientId: APP.clientId, grantType: 'client_credentials', scope: 'https://graph.microsoft.com/.default' });
  });

  describe('threads', () => {
    let conversationId: string;
    let last: string;

    beforeAll(async () => {
      const t0 = Date.parse('2025-03-01T09:00:00Z');
      const first = await fake.deliverMail(tenant, support, { from: 'ann@customer.example', subject: 'Printer', html: '<p>one</p>', receivedAt: new Date(t0) }, { notify: false });
      conversationId = first.message.conversationId;
      let prev = first.message.internetMessageId;
      for (let i = 1; i <= 6; i++) {
        const m = await fake.deliverMail(tenant, support, { from: 'ann@customer.example', subject: 'RE: Printer', html: `<p>${i}</p>`, conversationId, inReplyTo: prev, receivedAt: new Date(t0 + i * 60_000) }, { notify: false });
        prev = m.message.internetMessageId;
        last = m.message.immutableId;
      }
      await fake.deliverMail(tenant, support, { from: 'bob@customer.example', subject: 'Other', text: 'unrelated' }, { notify: false });
    });

    it('Graph refuses $orderby with a conversationId filter (InefficientFilter), as Outlook does', async () => {
      const client = factory.client(tenant);
      const call = client.api(`/users/${support}/messages`).filter(`conversationId eq '${encodeURIComponent(conversationId)}'`).orderby('receivedDateTime').get();
      await expect(call).rejects.toMatchObject({ statusCode: 400, code: 'InefficientFilter' });
    });

    it('getConversationThread pages through the thread (ids with + / =) and sorts it oldest first', async () => {
      const thread = await getConversationThread(factory.client(tenant), support, conversationId);
      expect(thread).toHaveLength(7);
      expect(thread.every((m) => m.conversationId === conversationId)).toBe(true);
      const times = thread.map((m) => m.receivedDateTime as string);
      expect([...times].sort()).toEqual(times);
      expect(thread.at(-1)?.id).toBe(last);
      // pages of 3 → the SDK followed at least two nextLinks
      expect(fake.requests.filter((r) => r.path.endsWith('/messages')).length).toBeGreaterThanOrEqual(3);
    });

    it('replyToThread replies on the latest customer message from the support mailbox; the reply joins the conversation', async () => {
      const res = await replyToThread(factory.client(tenant), { conversationId, body: '<p>We are on it.</p>', fromAddress: support });
      expect(res.repliedToMessageId).toBe(last);
      const sent = fake.messages(tenant, support, 'sentitems').filter((m) => m.conversationId === conversationId);
      expect(sent).toHaveLength(1);
      const reply = sent[0];
      expect(reply?.body.content).toBe('<p>We are on it.</p>');
      expect(reply?.subject).toBe('RE: Printer');
      expect(reply?.toRecipients[0]?.emailAddress.address).toBe('ann@customer.example');
      const inReplyTo = reply?.internetMessageHeaders.find((h) => h.name === 'In-Reply-To')?.value;
      expect(inReplyTo).toBe(res.repliedToInternetMessageId);

      // The next reply still answers the customer, not our own reply in Sent Items.
      const again = await replyToThread(factory.client(tenant), { conversationId, body: '<p>Update.</p>', fromAddress: support });
      expect(again.repliedToMessageId).toBe(last);
    });

    it("replyToThread goes to the requester, not to an outsider who wrote last (found by the first message's key, else the earliest inbound mail)", async () => {
      const t0 = Date.parse('2025-04-01T09:00:00Z');
      const start = await fake.deliverMail(tenant, support, { from: 'carol@customer.example', subject: 'VPN', html: '<p>VPN down</p>', receivedAt: new Date(t0) }, { notify: false });
      const conv = start.message.conversationId;
      const follow = await fake.deliverMail(tenant, support, { from: 'carol@customer.example', subject: 'RE: VPN', html: '<p>still</p>', conversationId: conv, inReplyTo: start.message.internetMessageId, receivedAt: new Date(t0 + 60_000) }, { notify: false });
      await fake.deliverMail(tenant, support, { from: 'mallory@outsider.example', subject: 'RE: VPN', html: '<p>me too</p>', conversationId: conv, inReplyTo: follow.message.internetMessageId, receivedAt: new Date(t0 + 120_000) }, { notify: false });
      const toOf = (id: string) => fake.messages(tenant, support, 'sentitems').filter((m) => m.conversationId === conv && m.body.content === id).map((m) => m.toRecipients.map((r) => r.emailAddress.address));

      const byKey = await replyToThread(factory.client(tenant), { conversationId: conv, body: 'by-key', fromAddress: support, firstMessageKey: start.message.internetMessageId });
      expect(byKey).toMatchObject({ repliedToMessageId: follow.message.immutableId, to: ['carol@customer.example'] });
      expect(toOf('by-key')).toEqual([['carol@customer.example']]);

      const earliest = await replyToThread(factory.client(tenant), { conversationId: conv, body: 'earliest', fromAddress: support });
      expect(earliest.to).toEqual(['carol@customer.example']);
      expect(toOf('earliest')).toEqual([['carol@customer.example']]);

      const named = await replyToThread(factory.client(tenant), { conversationId: conv, body: 'named', fromAddress: support, to: ['Dave@Customer.example', 'dave@customer.example'] });
      expect(toOf('named')).toEqual([['dave@customer.example']]);
      expect(named.repliedToMessageId).toBe(fake.messages(tenant, support, 'inbox').filter((m) => m.conversationId === conv).at(-1)?.immutableId);
    });

    it('replyToThread on a thread with only our own mail and no one named refuses instead of writing to itself', async () => {
      const own = await fake.deliverMail(tenant, support, { from: support, subject: 'Notice', text: 'maintenance tonight' }, { notify: false });
      const before = fake.messages(tenant, support, 'sentitems').length;
      await expect(replyToThread(factory.client(tenant), { conversationId: own.message.conversationId, body: 'x', fromAddress: support })).rejects.toThrow(/no requester/);
      expect(fake.messages(tenant, support, 'sentitems')).toHaveLength(before);
    });

    it('replyToThread on an unknown conversation fails without sending', async () => {
      const before = fake.messages(tenant, support, 'sentitems').length;
      await expect(replyToThread(factory.client(tenant), { conversationId: 'nope+/=', body: '<p>x</p>', fromAddress: support })).rejects.toThrow(/no message/);
      expect(fake.messages(tenant, support, 'sentitems')).toHaveLength(before);
    });
  });

  describe('inbox delta', () => {
    const mailbox = 'helpdesk@contoso.example';
    let userId: string;
    beforeAll(() => {
      userId = fake.addUser(tenant, { mail: mailbox }).id;
    });

    it('first run from a point in time, then only new mail; pages followed; an expired link restarts from the window', async () => {
      const client = factory.client(tenant);
      const old = await fake.deliverMail(tenant, mailbox, { from: 'x@customer.example', subject: 'old', text: 'old', receivedAt: new Date(Date.now() - 3600_000) }, { notify: false });
      const since = new Date(Date.now() - 60_000);
      const fresh = [];
      for (let i = 0; i < 4; i++) fresh.push((await fake.deliverMail(tenant, mailbox, { from: 'x@customer.example', subject: `n${i}`, text: 'n' }, { notify: false })).message);

      const first = await inboxDelta(client, { userId, link: undefined, since });
      expect(first.complete).toBe(true);
      expect(first.messageIds.sort()).toEqual(fresh.map((m) => m.immutableId).sort());
      expect(first.messageIds).not.toContain(old.message.immutableId);
      expect(first.link).toContain('$deltatoken=');

      const none = await inboxDelta(client, { userId, link: first.link, since });
      expect(none.messageIds).toEqual([]);

      const later = await fake.deliverMail(tenant, mailbox, { from: 'x@customer.example', subject: 'later', text: 'l' }, { notify: false });
      const next = await inboxDelta(client, { userId, link: none.link, since });
      expect(next).toMatchObject({ messageIds: [later.message.immutableId], restarted: false });

      fake.expireDeltaTokens();
      const restarted = await inboxDelta(client, { userId, link: next.link, since });
      expect(restarted.restarted).toBe(true);
      expect(restarted.messageIds.sort()).toEqual([...fresh.map((m) => m.immutableId), later.message.immutableId].sort());
      expect(fake.requests.some((r) => r.status === 410)).toBe(true);
    });
  });

  describe('users and groups', () => {
    it('finds a user by mail address, and by UPN when mail is not set on the filter', async () => {
      const client = factory.client(tenant);
      expect(await findUserByEmail(client, 'SUPPORT@contoso.example')).toMatchObject({ mail: support });
      expect(await findUserByEmail(client, 'nobody@contoso.example')).toBeUndefined();
    });

    it('lists transitive group members across pages (more than 999), users only by default', async () => {
      const users = Array.from({ length: 1100 }, (_, i) => fake.addUser(tenant, { mail: `agent${i}@contoso.example` }));
      const inner = fake.addGroup(tenant, 'Tier 2', users.slice(600).map((u) => u.id));
      const outer = fake.addGroup(tenant, 'Service desk', [...users.slice(0, 600).map((u) => u.id), inner.id]);
      const client = factory.client(tenant);
      const all = await listGroupMembers(client, outer.id);
      expect(all).toHaveLength(1100);
      expect(new Set(all.map((m) => m.id)).size).toBe(1100);
      expect(all.every((m) => m.kind === 'user')).toBe(true);
      const direct = await listGroupMembers(client, outer.id, { transitive: false, usersOnly: false });
      expect(direct).toHaveLength(601);
      expect(direct.filter((m) => m.kind === 'group').map((m) => m.id)).toEqual([inner.id]);
      expect(fake.requests.filter((r) => r.path.endsWith('/transitiveMembers')).length).toBe(2);
    });
  });

  describe('calendar', () => {
    it('creates an event on a user calendar and on a shared calendar, and reads free/busy app-only', async () => {
      const client = factory.client(tenant);
      const agent = fake.addUser(tenant, { mail: 'agent.cal@contoso.example' });
      const created = await createEvent(client, {
        mailbox: agent.mail,
        event: { subject: 'On-site visit T-42', start: { dateTime: '2025-03-03T10:00:00', timeZone: 'UTC' }, end: { dateTime: '2025-03-03T11:00:00', timeZone: 'UTC' }, attendees: [{ address: 'ann@customer.example' }] },
      });
      expect(created.id).toBeTruthy();
      const shared = fake.addCalendar(tenant, support, 'Field service');
      await createEvent(client, { mailbox: support, calendarId: shared, event: { subject: 'Shared', start: { dateTime: '2025-03-03T12:00:00', timeZone: 'UTC' }, end: { dateTime: '2025-03-03T13:00:00', timeZone: 'UTC' } } });
      expect(fake.events(tenant, agent.mail)).toHaveLength(1);
      expect(fake.events(tenant, support).map((e) => e.calendarId)).toEqual([shared]);

      const fb = await getFreeBusy(client, { requester: support, addresses: [agent.mail, 'ghost@contoso.example'], start: new Date('2025-03-03T09:00:00Z'), end: new Date('2025-03-03T12:00:00Z'), intervalMinutes: 60 });
      expect(fb[0]).toMatchObject({ address: agent.mail, availabilityView: '020' });
      expect(fb[0]?.busy).toHaveLength(1);
      expect(fb[1]?.error).toBeTruthy();
      const scheduleCall = fake.requests.find((r) => r.path.endsWith('/calendar/getSchedule'));
      expect(scheduleCall?.prefer).toMatch(/outlook\.timezone="UTC"/);
      expect(scheduleCall?.prefer).toMatch(/IdType="ImmutableId"/);
    });
  });

  it('Graph errors surface as GraphError with status and code', async () => {
    await expect(getMessage(factory.client(tenant), support, 'does-not-exist')).rejects.toBeInstanceOf(GraphError);
    await expect(getMessage(factory.client(tenant), support, 'does-not-exist')).rejects.toMatchObject({ statusCode: 404, code: 'ErrorItemNotFound' });
  });
});
