import fc from 'fast-check';
import { commentFromEmail, createTicketFromEmail, graphMessageSchema, MAX_TEXT_BYTES, type GraphMessage } from '../../../../src/connectors/msgraph';
import { cleanSubject, htmlToPlainText, MAX_BODY_INPUT_CHARS, MAX_PLAIN_TEXT_CHARS, MAX_SUBJECT_CHARS, stripQuotedReply } from '../../../../src/connectors/msgraph/mailText';

/**
 * Finding 2 of issue 11: mail text a stranger wrote must be processed in linear time. The attack strings
 * below made the old quote stripping backtrack for seconds (×24 blocks) to forever (×10,000); these tests
 * assert on the results, and a return to super-linear code shows up as a test that never finishes.
 */

const message = (over: Partial<GraphMessage>): GraphMessage =>
  graphMessageSchema.parse({
    id: 'AAkALgAAAAAAHYQDEapmEc2byACqAC-EWg0A+/imm=',
    conversationId: 'AAQkAGI2+/conv==',
    internetMessageId: '<abc123@customer.example>',
    subject: 'RE: Printer',
    from: { emailAddress: { address: 'ann@customer.example' } },
    receivedDateTime: '2025-03-01T10:00:00Z',
    ...over,
  });

const attack = (blocks: number, tail = 'x') => 'Thanks' + '\n---\n'.repeat(blocks) + tail;

describe('stripQuotedReply on hostile bodies', () => {
  it("the review's 127-byte body comes back whole (no quote marker in it, and it does not end in a rule)", () => {
    const body = attack(24);
    expect(Buffer.byteLength(body)).toBe(127);
    expect(stripQuotedReply(body)).toBe(body);
  });

  it('×10,000 blocks: the same answer, and the rules above the end go when nothing follows them', () => {
    expect(stripQuotedReply(attack(10_000))).toBe(attack(10_000));
    expect(stripQuotedReply(attack(10_000, ''))).toBe('Thanks');
    expect(stripQuotedReply(attack(10_000, '> quoted\n> more'))).toBe('Thanks');
  });

  it('a long run of ">" lines that does not reach the end is not a quote block (each line was checked against all below it)', () => {
    const text = 'Hi\n' + '> q\n'.repeat(15_000) + 'my answer';
    expect(text.length).toBeLessThan(MAX_PLAIN_TEXT_CHARS);
    expect(stripQuotedReply(text)).toBe(text);
    expect(stripQuotedReply(text + '\n> tail')).toBe(text);
  });

  it('text past the bound is not looked at: the answer is the bounded text, cut at the marker inside it', () => {
    const huge = 'Answer\nOn Mon, 1 Jan 2025 Ann wrote:\n' + 'x'.repeat(5 * MAX_PLAIN_TEXT_CHARS);
    expect(stripQuotedReply(huge)).toBe('Answer');
    const allText = 'y'.repeat(3 * MAX_PLAIN_TEXT_CHARS);
    expect(stripQuotedReply(allText)).toHaveLength(MAX_PLAIN_TEXT_CHARS);
  });

  it('the bound never leaves half a surrogate pair', () => {
    const text = 'a'.repeat(MAX_PLAIN_TEXT_CHARS - 1) + '😀'.repeat(10);
    const out = stripQuotedReply(text);
    expect(out.length).toBe(MAX_PLAIN_TEXT_CHARS - 1);
    expect(Buffer.from(out, 'utf8').toString('utf8')).toBe(out);
  });

  it('end to end: a comment made of the attack carries the text, cut to MAX_TEXT_BYTES', () => {
    const comment = commentFromEmail(message({ body: { contentType: 'text', content: attack(10_000) } }), 'support@contoso.example', { ticketRef: 'ref' });
    expect(comment.truncated).toBe(true);
    expect(Buffer.byteLength(comment.body)).toBeLessThanOrEqual(MAX_TEXT_BYTES);
    expect(comment.body.startsWith('Thanks\n---\n\n---')).toBe(true);
    const html = commentFromEmail(message({ body: { contentType: 'html', content: `<p>Thanks</p>${'<hr><p>-</p>'.repeat(20_000)}<p>x</p>` } }), 'support@contoso.example', { ticketRef: 'ref' });
    expect(html.body.startsWith('Thanks')).toBe(true);
    expect(Buffer.byteLength(html.body)).toBeLessThanOrEqual(MAX_TEXT_BYTES);
  });
});

describe('bounded inputs', () => {
  it('HTML is cut before it is parsed, and deep nesting is dropped instead of overflowing the stack', () => {
    const big = '<p>start</p>' + '<p>filler</p>'.repeat(MAX_BODY_INPUT_CHARS / 13 + 10) + '<p>AFTER-THE-BOUND</p>';
    expect(big.length).toBeGreaterThan(MAX_BODY_INPUT_CHARS);
    const text = htmlToPlainText(big);
    expect(text.startsWith('start')).toBe(true);
    expect(text).not.toContain('AFTER-THE-BOUND');
    expect(text.length).toBeLessThanOrEqual(MAX_PLAIN_TEXT_CHARS);
    const deep = '<div>'.repeat(100_000) + 'deep' + '</div>'.repeat(100_000);
    expect(() => htmlToPlainText('<p>top</p>' + deep)).not.toThrow();
    expect(htmlToPlainText('<p>top</p>' + deep)).toContain('top');
  });

  it('subjects are cut to RFC 5322 line length before the prefixes are removed', () => {
    const subject = 'RE: '.repeat(50_000) + 'Printer';
    // 998 code units = 249 × 'RE: ' + 'RE': what is left after the prefixes is the cut-off 'RE'.
    expect(cleanSubject(subject)).toBe('RE');
    expect(cleanSubject('RE: '.repeat(100) + 'Printer')).toBe('Printer');
    const ticket = createTicketFromEmail(message({ subject: 'RE: ' + 'Printer '.repeat(20_000), body: { contentType: 'text', content: 'x' } }), 'support@contoso.example');
    expect(ticket.originalSubject).toHaveLength(MAX_SUBJECT_CHARS);
    expect(ticket.subject).toBe(ticket.originalSubject.slice('RE: '.length).trim());
  });
});

// -----------------------------------------------------------------------------------------------
// The rewrite gives the old answers: the implementations it replaced, run on inputs small enough for
// their backtracking, must agree with the new ones on every generated case.
// -----------------------------------------------------------------------------------------------

const OLD_PREFIX = /^\s*(?:(?:re|fw|fwd|aw|wg|sv|vs|antw|doorst|tr|rif|rv|res|enc)\s*(?:\[\d+\]|\(\d+\))?\s*[:：]\s*)+/i;
function oldCleanSubject(subject: string): string {
  return subject.replace(/\s+/g, ' ').trim().replace(OLD_PREFIX, '').trim();
}

const OLD_QUOTE_STARTS = [/^-{2,}\s*original message\s*-{2,}/i, /^_{10,}\s*$/, /^from:\s.+$/i, /^von:\s.+$/i, /^on .{4,200} wrote:\s*$/i, /^am .{4,200} schrieb .{0,200}:\s*$/i, /^le .{4,200} a écrit\s*:\s*$/i];
function oldStripQuotedReply(text: string): string {
  const lines = text.split('\n');
  let cut = lines.length;
  for (let i = 0; i < lines.length; i++) {
    const line = (lines[i] as string).trim();
    if (OLD_QUOTE_STARTS.some((re) => re.test(line))) {
      cut = i;
      break;
    }
    if (line.startsWith('>') && lines.slice(i).every((l) => l.trim() === '' || l.trim().startsWith('>'))) {
      cut = i;
      break;
    }
  }
  const kept = lines
    .slice(0, cut)
    .join('\n')
    .replace(/(\n\s*[-_]{3,}\s*)+$/, '')
    .trim();
  return kept.length > 0 ? kept : text.trim();
}

const pieces = (list: string[], maxLength: number) => fc.array(fc.constantFrom(...list), { maxLength }).map((a) => a.join(''));

describe('same answers as before on ordinary sizes', () => {
  it('cleanSubject', () => {
    const subject = pieces(['RE', 're', 'Fw', 'FWD', 'AW', 'SV', 'antw', 'enc', ':', '：', ' ', '  ', '\t', '[2]', '(3)', '[', ']', 'x', 'Printer', 'RE:', '\n'], 14);
    fc.assert(fc.property(subject, (s) => cleanSubject(s) === oldCleanSubject(s)), { numRuns: 3000 });
  });

  it('stripQuotedReply', () => {
    const body = pieces(
      ['\n', ' ', 'Thanks', '---', '___', '-_-', '__________', '> q', '>', 'From: Ann', 'from:x', 'Von: Bob', 'On Mon, 1 Jan Ann wrote:', 'Am Mo. schrieb Bob:', 'Le lundi Ann a écrit :', '-----Original Message-----', 'x', '\r', '\u00a0'],
      10,
    );
    fc.assert(fc.property(body, (t) => stripQuotedReply(t) === oldStripQuotedReply(t)), { numRuns: 5000 });
  });
});
