import {
  classifyMessage,
  cleanSubject,
  commentFromEmail,
  createTicketFromEmail,
  graphMessageSchema,
  htmlToPlainText,
  MAX_TEXT_BYTES,
  stripQuotedReply,
  ticketCreateRequestSchema,
  type GraphMessage,
} from '../../../../src/connectors/msgraph';
import { encodeQueueMessage } from '../../../../src/storage';

const msg = (over: Partial<GraphMessage> = {}): GraphMessage =>
  graphMessageSchema.parse({
    id: 'AAkALgAAAAAAHYQDEapmEc2byACqAC-EWg0A+/imm=',
    conversationId: 'AAQkAGI2+/conv==',
    internetMessageId: '<abc123@customer.example>',
    subject: 'Printer on floor 3 is broken',
    body: { contentType: 'html', content: '<p>Hello,</p><p>the printer <b>does not</b> print.</p>' },
    from: { emailAddress: { name: 'Ann Customer', address: 'Ann@Customer.example' } },
    toRecipients: [{ emailAddress: { name: 'Support', address: 'support@contoso.example' } }],
    ccRecipients: [{ emailAddress: { address: 'boss@customer.example' } }],
    receivedDateTime: '2025-03-01T10:00:00Z',
    importance: 'normal',
    internetMessageHeaders: [],
    attachments: [],
    ...over,
  });

describe('cleanSubject', () => {
  it.each([
    ['RE: Printer broken', 'Printer broken'],
    ['Re: RE: Fw: FWD: Printer broken', 'Printer broken'],
    ['AW: WG: Drucker kaputt', 'Drucker kaputt'],
    ['RE[2]: Printer', 'Printer'],
    ['SV:  VS: Skrivaren', 'Skrivaren'],
    ['Regarding the printer', 'Regarding the printer'],
    ['Re:', ''],
    ['Printer RE: broken', 'Printer RE: broken'],
    [null, ''],
  ])('%p → %p', (input, expected) => {
    expect(cleanSubject(input)).toBe(expected);
  });
});

describe('htmlToPlainText', () => {
  it('keeps text and structure, drops markup, images, styles and scripts, keeps link targets', () => {
    const html =
      '<html><head><style>p{color:red}</style><script>alert(1)</script></head><body><p>Line one &amp; more</p><ul><li>first</li><li>second</li></ul><img src="cid:logo"><p>See <a href="https://status.example/x">status page</a> or <a href="https://a.example">https://a.example</a></p></body></html>';
    const text = htmlToPlainText(html);
    expect(text).toContain('Line one & more');
    expect(text).toMatch(/\* first\n\s*\* second/);
    expect(text).toContain('status page [https://status.example/x]');
    // a link whose text is its URL is not repeated
    expect(text).not.toContain('[https://a.example]');
    expect(text).not.toMatch(/<|color:red|alert\(1\)|cid:logo/);
  });
});

describe('stripQuotedReply', () => {
  it('cuts Outlook, Gmail and ">"-quoted history, keeps a forward without a note', () => {
    expect(stripQuotedReply('Thanks, works now.\n\nFrom: Support <support@contoso.example>\nSent: Monday\n\nold text')).toBe('Thanks, works now.');
    expect(stripQuotedReply('Still broken.\n\nOn Mon, 3 Mar 2025 at 10:00, Support <s@c.example> wrote:\n> old')).toBe('Still broken.');
    expect(stripQuotedReply('ok\n-----Original Message-----\nold')).toBe('ok');
    expect(stripQuotedReply('new\n> quoted\n> more')).toBe('new');
    expect(stripQuotedReply('From: someone\nforwarded body')).toBe('From: someone\nforwarded body');
  });
});

describe('createTicketFromEmail', () => {
  it('maps subject, plain text, addresses, importance, attachments and ids into a valid TicketCreateRequest', () => {
    const t = createTicketFromEmail(
      msg({
        subject: 'RE: FW: Printer on floor 3 is broken',
        importance: 'high',
        attachments: [
          { id: 'att1', name: 'photo.jpg', contentType: 'image/jpeg', size: 12345, isInline: false },
          { id: 'att2', name: null, contentType: null, size: null, isInline: true },
        ],
      }),
      'Support@Contoso.example',
    );
    expect(ticketCreateRequestSchema.safeParse(t).success).toBe(true);
    expect(t).toMatchObject({
      source: 'email',
      mailbox: 'support@contoso.example',
      subject: 'Printer on floor 3 is broken',
      originalSubject: 'RE: FW: Printer on floor 3 is broken',
      from: { address: 'Ann@Customer.example', name: 'Ann Customer' },
      to: [{ address: 'support@contoso.example', name: 'Support' }],
      cc: [{ address: 'boss@customer.example' }],
      priority: 'high',
      importance: 'high',
      internetMessageId: '<abc123@customer.example>',
      conversationId: 'AAQkAGI2+/conv==',
      messageId: 'AAkALgAAAAAAHYQDEapmEc2byACqAC-EWg0A+/imm=',
      receivedAt: '2025-03-01T10:00:00Z',
      truncated: false,
    });
    expect(t.description).toBe('Hello,\n\nthe printer does not print.');
    expect(t.attachments).toEqual([
      { id: 'att1', name: 'photo.jpg', contentType: 'image/jpeg', size: 12345, isInline: false },
      { id: 'att2', name: 'attachment', contentType: 'application/octet-stream', size: 0, isInline: true },
    ]);
  });

  it.each([
    ['low', 'low'],
    ['normal', 'medium'],
    ['high', 'high'],
    [null, 'medium'],
  ])('importance %p → priority %p', (importance, priority) => {
    expect(createTicketFromEmail(msg({ importance }), 'support@contoso.example').priority).toBe(priority);
  });

  it('cuts a huge body at a UTF-8 boundary and says so; an empty subject gets a placeholder', () => {
    const t = createTicketFromEmail(msg({ subject: 'RE: ', body: { contentType: 'text', content: 'é'.repeat(MAX_TEXT_BYTES) } }), 'support@contoso.example');
    expect(t.truncated).toBe(true);
    expect(Buffer.byteLength(t.description, 'utf8')).toBeLessThanOrEqual(MAX_TEXT_BYTES);
    expect(t.description).not.toContain('\ufffd');
    expect(t.subject).toBe('(no subject)');
  });

  it('the largest mail still makes an event that fits a queue message (48 KiB of JSON, 64 KiB base64)', () => {
    const many = (n: number, d: string) => Array.from({ length: n }, (_, i) => ({ emailAddress: { name: `Person number ${i} with a long name`, address: `person.${i}.with.a.long.local.part@${d}` } }));
    const t = createTicketFromEmail(
      msg({
        subject: 'x'.repeat(1000),
        body: { contentType: 'text', content: '\n"\\'.repeat(60_000) },
        toRecipients: many(400, 'to.example'),
        ccRecipients: many(400, 'cc.example'),
        attachments: Array.from({ length: 300 }, (_, i) => ({ id: `AAMkAGI2TG93AAA${'x'.repeat(120)}${i}`, name: `attachment-with-a-long-file-name-${i}.pdf`, contentType: 'application/pdf', size: 1, isInline: false })),
      }),
      'support@contoso.example',
    );
    expect(t.to.length).toBeLessThanOrEqual(100);
    expect(t.attachments.length).toBeLessThanOrEqual(50);
    expect(t.truncated).toBe(true);
    expect(Buffer.byteLength(t.description, 'utf8')).toBeGreaterThan(4 * 1024);
    const envelope = { specversion: '1.0', id: 'x'.repeat(32), source: '/connectors/msgraph/tenants/t', type: 'com.itil-next.connectors.ticket.create_requested.v1', time: new Date().toISOString(), subject: `conversations/${t.conversationId}`, datacontenttype: 'application/json', tenantid: 't', integrationid: 'i'.repeat(36), data: t };
    expect(encodeQueueMessage(envelope).length).toBeLessThanOrEqual(64 * 1024);
  });

  it('a message without Message-ID is keyed by its immutable id', () => {
    expect(createTicketFromEmail(msg({ internetMessageId: null }), 'support@contoso.example').internetMessageId).toBe('graph:AAkALgAAAAAAHYQDEapmEc2byACqAC-EWg0A+/imm=');
  });

  it('a comment carries only the new text and points at the ticket request', () => {
    const c = commentFromEmail(
      msg({ subject: 'RE: Printer', body: { contentType: 'html', content: '<p>Now it jams.</p><hr><p>From: Support</p><p>old</p>' } }),
      'support@contoso.example',
      { ticketRef: 'ref-1', ticketId: 'T-42' },
    );
    expect(c).toMatchObject({ ticketRef: 'ref-1', ticketId: 'T-42', subject: 'Printer', body: 'Now it jams.', conversationId: 'AAQkAGI2+/conv==' });
  });
});

describe('classifyMessage', () => {
  const own = new Set(['support@contoso.example']);
  const headers = (h: Record<string, string>) => Object.entries(h).map(([name, value]) => ({ name, value }));

  it('a normal customer mail is a ticket', () => {
    expect(classifyMessage(msg(), own)).toEqual({ kind: 'ticket' });
    expect(classifyMessage(msg({ internetMessageHeaders: headers({ 'Auto-Submitted': 'no' }) }), own)).toEqual({ kind: 'ticket' });
  });

  it.each([
    ['Auto-Submitted: auto-replied', { internetMessageHeaders: headers({ 'Auto-Submitted': 'auto-replied' }) }],
    ['Auto-Submitted: auto-generated', { internetMessageHeaders: headers({ 'auto-submitted': 'Auto-Generated' }) }],
    ['Precedence: auto_reply', { internetMessageHeaders: headers({ Precedence: 'auto_reply' }) }],
    ['X-Autoreply', { internetMessageHeaders: headers({ 'X-Autoreply': 'yes' }) }],
    ['out-of-office subject', { subject: 'Automatic reply: Printer broken' }],
    ['German out-of-office subject', { subject: 'Abwesenheitsnotiz: Drucker' }],
  ])('auto-reply: %s', (_, over) => {
    expect(classifyMessage(msg(over as Partial<GraphMessage>), own)).toEqual({ kind: 'ignore', reason: 'auto-reply' });
  });

  it.each([
    ['Exchange NDR header', { internetMessageHeaders: headers({ 'X-MS-Exchange-Message-Is-Ndr': '' }) }],
    ['multipart/report', { internetMessageHeaders: headers({ 'Content-Type': 'multipart/report; report-type=delivery-status; boundary="x"' }) }],
    ['mailer-daemon sender', { from: { emailAddress: { address: 'MAILER-DAEMON@mx.customer.example' } } }],
    ['Exchange postmaster sender', { from: { emailAddress: { address: 'MicrosoftExchange329e71ec88ae4615bbc36ab6ce41109e@contoso.example' } } }],
    ['Undeliverable subject', { subject: 'Undeliverable: Printer broken' }],
  ])('bounce: %s', (_, over) => {
    expect(classifyMessage(msg(over as Partial<GraphMessage>), own)).toEqual({ kind: 'ignore', reason: 'bounce' });
  });

  it('our own outgoing mail (sent from a watched mailbox, any case) and drafts are ignored', () => {
    expect(classifyMessage(msg({ from: { emailAddress: { address: 'Support@Contoso.example' } } }), own)).toEqual({ kind: 'ignore', reason: 'own-message' });
    expect(classifyMessage(msg({ isDraft: true }), own)).toEqual({ kind: 'ignore', reason: 'draft' });
  });
});
