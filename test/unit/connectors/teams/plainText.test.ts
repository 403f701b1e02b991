import fc from 'fast-check';
import { assignmentCard, criticalTicketCard, escalationCard } from '../../../../src/connectors/teams';
import { plain } from '../../../../src/connectors/teams/cards';
import { cardTexts } from '../../../fakes/teams';

/**
 * Issue 11, finding 5: ticket text must not become a link or a mention in a Teams card, whatever it is
 * made of. The generators build strings from the pieces such an attack is made of (link syntax, mention
 * tags, autolinks, control, zero-width, bidi and fullwidth look-alike characters, combining marks, lone
 * surrogates) as well as arbitrary Unicode.
 */

const FRAGMENTS = [
  '[', ']', '(', ')', '](', '][', ']:', '<', '>', '/', '<at>', '</at>', '<AT>', 'at', 'At', 'a', 't', ' ', '\n', '\r', '\t',
  'http://', 'https://evil.example', 'Reset MFA', 'Alice', ']<(', ']>(', '[x]<(y)',
  '\u0000', '\u0001', '\u001f', '\u007f', '\u0085', '\u009f', '\u2028', '\u2029',
  '\u200b', '\u200c', '\u200d', '\u2060', '\ufeff', '\u00ad', '\u034f', '\ufe0f', '\u3164', '\uffa0',
  '\u202a', '\u202e', '\u2066', '\u2069', '\u200e', '\u061c',
  '［', '］', '（', '）', '＜', '＞', 'ａｔ', '﹤', '\u0301', '\u0338', 'e', '\ud83d', '\ude00', '😀', '\\',
];
const hostile = fc.oneof(
  fc.array(fc.constantFrom(...FRAGMENTS), { maxLength: 40 }).map((a) => a.join('')),
  fc.string({ unit: 'binary', maxLength: 60 }),
  fc.array(fc.oneof(fc.constantFrom(...FRAGMENTS), fc.string({ unit: 'binary', maxLength: 3 })), { maxLength: 30 }).map((a) => a.join('')),
);

const LINK = /\]\(/;
const MENTION = /<\/?at/i;
const TAG_OR_AUTOLINK = /<[A-Za-z/!?]/;
const REFERENCE = /\][[:]/;
const INVISIBLE = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u2028\u2029\r]|\p{Cf}|\p{Default_Ignorable_Code_Point}|\p{Cs}/u;

describe('plain', () => {
  it("the review's two examples", () => {
    expect(plain('[Reset MFA]\u0001(https://evil)')).toBe('[Reset MFA] (https://evil)');
    const mention = plain('<a<at>t>Alice</<at>at>');
    expect(mention).not.toMatch(MENTION);
    expect(mention).toBe('< a< at>t>Alice< /< at>at>');
  });

  it('never leaves a link, a mention, a tag or autolink, a reference link, or an invisible character, and is a fixed point', () => {
    fc.assert(
      fc.property(hostile, (x) => {
        const out = plain(x);
        expect(out).not.toMatch(LINK);
        expect(out).not.toMatch(MENTION);
        expect(out).not.toMatch(TAG_OR_AUTOLINK);
        expect(out).not.toMatch(REFERENCE);
        expect(out).not.toMatch(INVISIBLE);
        expect(out.normalize('NFKC')).toBe(out);
        expect(plain(out)).toBe(out);
      }),
      { numRuns: 3000 },
    );
  });

  it('leaves ordinary text alone', () => {
    const ordinary = fc.string({ unit: fc.constantFrom(...'abcXYZ019 .,;:!?-_*#@&%+=\'"()/é€ß漢字'.split('')), maxLength: 80 });
    fc.assert(fc.property(ordinary, (x) => plain(x) === x.normalize('NFKC')), { numRuns: 2000 });
    expect(plain('[EXTERNAL] Printer (floor 3) is broken — see https://status.example/x')).toBe('[EXTERNAL] Printer (floor 3) is broken — see https://status.example/x');
    expect(plain('2 < 3 and 5 > 4')).toBe('2 < 3 and 5 > 4');
  });

  it("an assignee's name cannot become a link inside the mention either", () => {
    const card = assignmentCard({ id: 'INC-1', title: 't', priority: 'P1', status: 'open', url: 'https://itil.example.com/t/1', assignee: { name: '[Reset MFA]<(https://evil.example)', email: 'ada@example.com' } }, { notificationId: 'n-1', count: 1, windowMinutes: 30, createdAt: new Date() });
    for (const t of cardTexts(card)) expect(t).not.toMatch(LINK);
    expect(card.msteams?.entities?.[0]?.text).toBe('<at>[Reset MFA] (https://evil.example)</at>');
  });

  it('every text of every card made from hostile ticket fields is free of links, and of mentions but its own', () => {
    const base = { id: 'INC-1', title: 't', priority: 'P1', status: 'open', url: 'https://itil.example.com/t/1', assignee: { name: 'Ada', email: 'ada@example.com' } };
    const ctx = { notificationId: 'n-1', count: 1, windowMinutes: 30, createdAt: new Date('2030-05-01T14:00:00Z') };
    fc.assert(
      fc.property(hostile, hostile, hostile, (title, name, reason) => {
        const ticket = { ...base, id: `INC-${title}`, title, team: reason || 'team', assignee: { name, email: 'ada@example.com' } };
        for (const card of [criticalTicketCard(ticket, ctx), escalationCard(ticket, reason, ctx)]) {
          for (const t of [...cardTexts(card), card.fallbackText ?? '']) {
            expect(t).not.toMatch(LINK);
            expect(t).not.toMatch(MENTION);
          }
        }
        const assigned = assignmentCard(ticket, ctx);
        const tag = assigned.msteams?.entities?.[0]?.text as string;
        expect(tag).toMatch(/^<at>[^<>]+<\/at>$/);
        for (const t of cardTexts(assigned)) {
          expect(t).not.toMatch(LINK);
          expect(t.split(tag).join('')).not.toMatch(MENTION);
        }
      }),
      { numRuns: 300 },
    );
  });
});
