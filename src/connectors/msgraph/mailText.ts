import { htmlToText } from './sdk';
import type { GraphMessage } from './messages';

/**
 * Text of a mail, made safe to process: every function here takes text a stranger wrote and runs in
 * time linear in its length, by construction: input is cut to the bounds below before anything looks
 * at it, lines are scanned once (no `every` over the remaining lines, no re-slicing in a loop), and the
 * regexes have no nested quantifiers (`test/unit/connectors/msgraph/mailText.test.ts` checks every
 * regex of `src/` with `safe-regex2`). A body that took seconds here blocked the shared Graph worker
 * for every tenant.
 */

/** Description and comment bodies are cut at this many UTF-8 bytes (see `fitData` in `mail.ts`). */
export const MAX_TEXT_BYTES = 16 * 1024;

/**
 * UTF-16 code units (JavaScript string length) of a body read before conversion: an HTML body is cut
 * here before it is parsed, a plain-text body before it is split. 1 Mi is far above any human-written
 * mail and leaves room for the markup of a generous HTML one.
 */
export const MAX_BODY_INPUT_CHARS = 1024 * 1024;

/**
 * Code units of converted plain text kept for the engine and scanned for quoted history. The engine
 * gets at most `MAX_TEXT_BYTES` (16 Ki bytes, so at most 16 Ki code units), so 64 Ki loses nothing it
 * would see, even after leading blank lines or a quote that starts late are cut away.
 */
export const MAX_PLAIN_TEXT_CHARS = 64 * 1024;

/** Subjects are cut to this many code units: RFC 5322 limits a header line to 998 characters. */
export const MAX_SUBJECT_CHARS = 998;

/** Nesting depth html-to-text walks (it recurses per element): deeper content is dropped, not a stack overflow. */
const MAX_HTML_DEPTH = 200;

/** Cuts a string to `max` code units without leaving half a surrogate pair at the end. */
export function boundChars(text: string, max: number): string {
  if (text.length <= max) return text;
  const code = text.charCodeAt(max - 1);
  return text.slice(0, code >= 0xd800 && code <= 0xdbff ? max - 1 : max);
}

// Reply/forward prefixes in the languages Outlook users most often send: RE, FW, FWD, AW/WG (de),
// SV/VS (nordic), ANTW (nl), TR/RE (fr), RIF/I (it), RV/RES/ENC (es/pt), optionally numbered "RE[2]:".
// One prefix per match (sticky, from `lastIndex`), repeated by the loop in `cleanSubject`: the old
// `(?:…\s*…\s*)+` nested quantifiers; whitespace is collapsed to single spaces before this runs.
const PREFIX = /(?:re|fw|fwd|aw|wg|sv|vs|antw|doorst|tr|rif|rv|res|enc)(?: ?\[\d+\]| ?\(\d+\)|) ?[:：] ?/iy;

export function cleanSubject(subject: string | null | undefined): string {
  const s = boundChars(subject ?? '', MAX_SUBJECT_CHARS).replace(/\s+/g, ' ').trim();
  let pos = 0;
  for (;;) {
    PREFIX.lastIndex = pos;
    if (!PREFIX.test(s)) break;
    pos = PREFIX.lastIndex;
  }
  return s.slice(pos).trim();
}

export function htmlToPlainText(html: string): string {
  const text = htmlToText().convert(boundChars(html, MAX_BODY_INPUT_CHARS), {
    wordwrap: false,
    limits: { maxDepth: MAX_HTML_DEPTH },
    selectors: [
      { selector: 'img', format: 'skip' },
      { selector: 'a', options: { hideLinkHrefIfSameAsText: true, ignoreHref: false } },
      { selector: 'style', format: 'skip' },
      { selector: 'script', format: 'skip' },
    ],
  });
  return boundChars(text, MAX_PLAIN_TEXT_CHARS).replace(/\n{3,}/g, '\n\n').trim();
}

/** Plain text of a message's body, at most `MAX_PLAIN_TEXT_CHARS` code units. */
export function bodyText(message: GraphMessage): string {
  const body = message.body;
  if (!body?.content) return boundChars(message.bodyPreview ?? '', MAX_PLAIN_TEXT_CHARS).trim();
  if (/html/i.test(body.contentType)) return htmlToPlainText(body.content);
  return boundChars(body.content, MAX_PLAIN_TEXT_CHARS).replace(/\r\n/g, '\n').trim();
}

// Lines where quoted history starts in Outlook, Gmail and Apple Mail replies. Each is anchored at the
// line start and tried once per line, with quantifiers that are bounded or followed by a fixed word.
const QUOTE_STARTS = [
  /^-{2,}\s*original message\s*-{2,}/i,
  /^_{10,}\s*$/,
  /^from:\s.+$/i,
  /^von:\s.+$/i,
  /^on .{4,200} wrote:\s*$/i,
  /^am .{4,200} schrieb .{0,200}:\s*$/i,
  /^le .{4,200} a écrit\s*:\s*$/i,
];

/** A rule Outlook draws above its "From:" block (an `<hr>` rendered as dashes): 3+ of `-` and `_` only. */
function isRule(trimmed: string): boolean {
  if (trimmed.length < 3) return false;
  for (let i = 0; i < trimmed.length; i++) {
    const c = trimmed.charCodeAt(i);
    if (c !== 0x2d && c !== 0x5f) return false;
  }
  return true;
}

/**
 * The new part of a reply: everything above the first quoted-history marker, or above a `>` block
 * that runs to the end of the text, without the rules and blank lines left above the cut. Text past
 * `MAX_PLAIN_TEXT_CHARS` is not looked at. Two passes over the lines, each line trimmed once.
 */
export function stripQuotedReply(input: string): string {
  const text = boundChars(input, MAX_PLAIN_TEXT_CHARS);
  const raw = text.split('\n');
  const lines = raw.map((l) => l.trim());
  // From the end: the first line of the trailing block of blank and `>` lines.
  let quoteTail = lines.length;
  while (quoteTail > 0) {
    const l = lines[quoteTail - 1] as string;
    if (l !== '' && !l.startsWith('>')) break;
    quoteTail--;
  }
  let cut = lines.length;
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i] as string;
    if ((line.startsWith('>') && i >= quoteTail) || QUOTE_STARTS.some((re) => re.test(line))) {
      cut = i;
      break;
    }
  }
  // Rules and blank lines directly above the cut go too (never the first line: a rule needs a line break before it).
  let end = cut;
  while (end > 1 && ((lines[end - 1] as string) === '' || isRule(lines[end - 1] as string))) end--;
  const kept = raw.slice(0, end).join('\n').trim();
  // A reply that is all quote (forward without a note) keeps its text.
  return kept.length > 0 ? kept : text.trim();
}

export function truncateUtf8(text: string, maxBytes: number = MAX_TEXT_BYTES): { text: string; truncated: boolean } {
  const buf = Buffer.from(text, 'utf8');
  if (buf.length <= maxBytes) return { text, truncated: false };
  // Back off to a character boundary (continuation bytes are 10xxxxxx).
  let end = maxBytes;
  while (end > 0 && ((buf[end] as number) & 0xc0) === 0x80) end--;
  return { text: buf.subarray(0, end).toString('utf8'), truncated: true };
}
