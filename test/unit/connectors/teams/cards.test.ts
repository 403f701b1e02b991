import {
  assignmentCard,
  buildEnvelope,
  criticalTicketCard,
  escalationCard,
  slaBreachCard,
  slaWarningCard,
  toEnvelope,
  type AdaptiveCard,
  type Notification,
} from '../../../../src/connectors/teams';
import { cardTexts, checkEnvelope, MAX_WEBHOOK_BYTES, officialSchemaAvailable, parserErrors, schemaErrors, schemaCandidates } from '../../../fakes/teams';

const ticket = {
  id: 'INC-1042',
  title: 'Mail server down for the Leeds office',
  priority: 'P1',
  status: 'In progress',
  url: 'https://itil.example.com/tickets/INC-1042',
  assignee: { name: 'Ada Lovelace', email: 'ada@example.com' },
  due: '2030-05-01T14:30:00Z',
};
const ctx = { notificationId: 'n-8000000000000-abcdefabcdef', count: 1, windowMinutes: 30, createdAt: new Date('2030-05-01T14:00:00Z') };
const snoozeUrl = 'https://connectors.example.com/api/teams/snooze/tenant-a/AAAAAAAAAAAAAAAAAAAAAA';

const schemaIt = officialSchemaAvailable() ? it : it.skip;
if (!officialSchemaAvailable()) {
  console.warn(`Official Adaptive Card 1.5 schema not found (looked at ${schemaCandidates().join(', ')}); schema checks are SKIPPED.`);
}

function actions(card: AdaptiveCard) {
  return (card.actions ?? []).map((a) => ({ type: a.type, title: a.title, url: a.url }));
}
function facts(card: AdaptiveCard): Record<string, string> {
  const set = card.body.find((e) => e.type === 'FactSet');
  return Object.fromEntries(set && set.type === 'FactSet' ? set.facts.map((f) => [f.title, f.value]) : []);
}

const cards: Array<[string, AdaptiveCard]> = [
  ['sla_warning', slaWarningCard(ticket, 25, { ...ctx, snoozeUrl })],
  ['sla_breach', slaBreachCard(ticket, ctx)],
  ['escalation', escalationCard(ticket, 'Customer called twice', ctx)],
  ['critical_ticket', criticalTicketCard(ticket, ctx)],
  ['assignment', assignmentCard(ticket, ctx)],
];

describe.each(cards)('%s card', (_kind, card) => {
  schemaIt('is valid against the official Adaptive Card 1.5 schema (msteams stripped)', () => {
    expect(schemaErrors(card)).toEqual([]);
  });

  it('parses with the official adaptivecards parser without events', () => {
    expect(parserErrors(card)).toEqual([]);
  });

  it('passes every check the fake Teams webhook applies, in the message envelope', () => {
    const check = checkEnvelope(toEnvelope(card));
    expect(check.errors).toEqual([]);
    expect(JSON.stringify(toEnvelope(card)).length).toBeLessThan(MAX_WEBHOOK_BYTES);
  });

  it('is version 1.5, carries the ticket facts and an Open Ticket button, and nothing Teams webhooks reject', () => {
    expect(card).toMatchObject({ type: 'AdaptiveCard', version: '1.5' });
    expect(facts(card)).toMatchObject({ Ticket: 'INC-1042', Priority: 'P1', Status: 'In progress', Due: '2030-05-01 14:30 UTC' });
    expect(facts(card).Assignee).toMatch(/Ada Lovelace/);
    expect(cardTexts(card)).toContain('Mail server down for the Leeds office');
    expect(actions(card)[0]).toEqual({ type: 'Action.OpenUrl', title: 'Open Ticket', url: ticket.url });
    expect(JSON.stringify(card)).not.toContain('Action.Submit');
    expect(card.body[0]).toMatchObject({ type: 'Container', id: `notification-${ctx.notificationId}` });
  });
});

describe('kind-specific content', () => {
  it('an SLA warning says how long is left and has Snooze 30 min as an OpenUrl to the snooze link', () => {
    const card = slaWarningCard({ ...ticket, due: undefined }, 25, { ...ctx, snoozeUrl });
    expect(cardTexts(card)).toContain('SLA warning: 25 min left');
    expect(actions(card)).toEqual([
      { type: 'Action.OpenUrl', title: 'Open Ticket', url: ticket.url },
      { type: 'Action.OpenUrl', title: 'Snooze 30 min', url: snoozeUrl },
    ]);
    // Without a due date on the ticket, it is the notification time plus the time remaining.
    expect(facts(card).Due).toBe('2030-05-01 14:25 UTC');
    expect(cardTexts(slaWarningCard(ticket, -90, ctx))).toContain('SLA warning: overdue by 1 h 30 min');
  });

  it('only SLA warnings can be snoozed', () => {
    for (const [kind, card] of cards) {
      const titles = actions(card).map((a) => a.title);
      expect(titles.includes('Snooze 30 min')).toBe(kind === 'sla_warning');
    }
  });

  it('an assignment @mentions the assignee in the msteams.entities form, by Entra object id when given, else by UPN', () => {
    const byEmail = assignmentCard(ticket, ctx);
    expect(byEmail.msteams?.entities).toEqual([{ type: 'mention', text: '<at>Ada Lovelace</at>', mentioned: { id: 'ada@example.com', name: 'Ada Lovelace' } }]);
    expect(cardTexts(byEmail).some((t) => t.includes('<at>Ada Lovelace</at>'))).toBe(true);
    const oid = '5c1f4a6e-9b52-4f0a-8c44-7d1e2f3a4b5c';
    const byOid = assignmentCard({ ...ticket, assignee: { name: 'Ada Lovelace', aad_object_id: oid, email: 'ada@example.com' } }, ctx);
    expect(byOid.msteams?.entities?.[0]?.mentioned.id).toBe(oid);
  });

  it('other kinds show the assignee without pinging them', () => {
    for (const card of [slaBreachCard(ticket, ctx), criticalTicketCard(ticket, ctx), escalationCard(ticket, undefined, ctx)]) {
      expect(card.msteams?.entities).toBeUndefined();
      expect(JSON.stringify(card)).not.toContain('<at>');
    }
  });

  it('an escalation shows its reason', () => {
    expect(cardTexts(escalationCard(ticket, 'Customer called twice', ctx))).toContain('Reason: Customer called twice');
  });

  it('a collapsed burst shows its count', () => {
    expect(cardTexts(slaWarningCard(ticket, 25, { ...ctx, count: 20 }))).toContain('Repeated 20 times within 30 min');
    expect(cardTexts(slaWarningCard(ticket, 25, ctx)).some((t) => t.startsWith('Repeated'))).toBe(false);
  });

  it('ticket text cannot inject a link or a mention', () => {
    const card = criticalTicketCard({ ...ticket, title: 'Click [here](https://evil.example) <at>CEO</at> now' }, ctx);
    const text = JSON.stringify(card);
    expect(text).not.toContain('](https://evil.example)');
    expect(text).not.toContain('<at>');
  });
});

describe('the 28 KB limit', () => {
  const long = (n: number, ch: string) => ch.repeat(n);

  it('truncates long text instead of failing, and the card stays valid', () => {
    const n: Notification = {
      kind: 'escalation',
      ticket: { ...ticket, title: long(4000, '日'), assignee: { name: long(256, 'é'), email: 'ada@example.com' } },
      reason: long(8000, '語'),
    };
    const { envelope, bytes, truncated } = buildEnvelope(n, ctx);
    expect(truncated).toBe(true);
    expect(bytes).toBe(Buffer.byteLength(JSON.stringify(envelope)));
    expect(bytes).toBeLessThanOrEqual(26 * 1024);
    const check = checkEnvelope(envelope);
    expect(check.errors).toEqual([]);
    const title = cardTexts(envelope.attachments[0]?.content).find((t) => t.startsWith('日'));
    expect(title?.endsWith('…')).toBe(true);
  });

  it('fits a tighter budget by cutting further, and never cuts inside a surrogate pair', () => {
    const n: Notification = { kind: 'critical_ticket', ticket: { ...ticket, title: long(4000, '😀') } };
    const { envelope, bytes } = buildEnvelope(n, ctx, 4_000);
    expect(bytes).toBeLessThanOrEqual(4_000);
    const json = JSON.stringify(envelope);
    expect(json).not.toMatch(/[\ud800-\udbff](?![\udc00-\udfff])/);
    expect(checkEnvelope(envelope).errors).toEqual([]);
  });

  it('a short card is not marked truncated', () => {
    expect(buildEnvelope({ kind: 'critical_ticket', ticket }, ctx).truncated).toBe(false);
  });
});

describe('the checks can fail', () => {
  it('the schema and the fake reject what Teams would not take', () => {
    const bad = JSON.parse(JSON.stringify(criticalTicketCard(ticket, ctx))) as Record<string, unknown> & { actions: Array<Record<string, unknown>> };
    bad.version = '1.6';
    bad.actions.push({ type: 'Action.Submit', title: 'Ack' });
    (bad.actions[0] as Record<string, unknown>).url = undefined;
    const errors = checkEnvelope({ type: 'message', attachments: [{ contentType: 'application/vnd.microsoft.card.adaptive', content: bad }] }).errors;
    expect(errors).toEqual(expect.arrayContaining(['card version must be 1.0 to 1.5', 'Action.Submit is not supported in webhook cards']));
    expect(checkEnvelope({ type: 'note', attachments: [] }).errors).toEqual(expect.arrayContaining(['type must be "message"']));
    const mention = assignmentCard(ticket, ctx);
    mention.msteams = { entities: [{ type: 'mention', text: '<at>Someone Else</at>', mentioned: { id: 'x@example.com', name: 'Someone Else' } }] };
    expect(checkEnvelope(toEnvelope(mention)).errors).toEqual(['mention <at>Someone Else</at> does not appear in the card']);
  });

  schemaIt('the official schema rejects a missing url and unknown root properties', () => {
    const bad = JSON.parse(JSON.stringify(criticalTicketCard(ticket, ctx))) as Record<string, unknown> & { actions: Array<Record<string, unknown>> };
    delete bad.actions[0]?.url;
    bad.colour = 'red';
    const errors = schemaErrors(bad) ?? [];
    expect(errors.join('\n')).toMatch(/must have required property 'url'/);
    expect(errors.join('\n')).toMatch(/must NOT have additional properties/);
  });

  it('the parser reports unknown elements', () => {
    expect(parserErrors({ type: 'AdaptiveCard', version: '1.5', body: [{ type: 'Marquee', text: 'x' }] }).join()).toMatch(/Unknown element type/);
  });
});
