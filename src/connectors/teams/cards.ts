import type { AdaptiveCard, CardAction, CardElement, Colors, ContainerStyle, Fact, Mention, MessageEnvelope } from './cardTypes';
import type { Notification, Ticket } from './schemas';

/**
 * One Adaptive Card builder per notification kind. Cards are version 1.5 (the newest Teams renders),
 * use only `Action.OpenUrl` (webhook-posted cards cannot carry `Action.Submit`, and `Action.Execute`
 * needs a bot), and are fitted under Teams' 28 KB webhook limit by truncating long text, never by
 * failing: a truncated card in the channel beats a perfect one that was refused.
 */

/** Teams refuses webhook payloads over 28 KB; keep headroom for what the transport adds. */
export const MAX_PAYLOAD_BYTES = 28 * 1024;
export const PAYLOAD_BUDGET_BYTES = 26 * 1024;

export const SNOOZE_MINUTES = 30;

export interface CardContext {
  notificationId: string;
  /** How many notifications of the same ticket and kind this card stands for (flood control). */
  count: number;
  windowMinutes: number;
  /** When the notification was accepted; SLA warnings count the due time from it. */
  createdAt: Date;
  /** Signed link that snoozes this ticket's SLA warnings (SLA warning cards only). */
  snoozeUrl?: string | undefined;
  /** An earlier attempt may already have shown this card (it was interrupted before its outcome was known). */
  possibleRepeat?: boolean | undefined;
}

/** The line a card carries when it may repeat one already in the channel. */
export const POSSIBLE_REPEAT_TEXT = 'Possible repeat: an interrupted delivery may already have posted this card.';

interface TextLimits {
  title: number;
  reason: number;
}

const INITIAL_LIMITS: TextLimits = { title: 500, reason: 4000 };

export function slaWarningCard(ticket: Ticket, timeRemainingMinutes: number, ctx: CardContext, limits: TextLimits = INITIAL_LIMITS): AdaptiveCard {
  const due = ticket.due ?? new Date(ctx.createdAt.getTime() + timeRemainingMinutes * 60_000).toISOString();
  const headline = timeRemainingMinutes >= 0 ? `SLA warning: ${duration(timeRemainingMinutes)} left` : `SLA warning: overdue by ${duration(-timeRemainingMinutes)}`;
  const actions: CardAction[] = [openTicket(ticket)];
  if (ctx.snoozeUrl) actions.push({ type: 'Action.OpenUrl', title: `Snooze ${SNOOZE_MINUTES} min`, url: ctx.snoozeUrl });
  return card({ headline, style: 'warning', color: 'warning', ticket, due, ctx, limits, actions });
}

export function slaBreachCard(ticket: Ticket, ctx: CardContext, limits: TextLimits = INITIAL_LIMITS): AdaptiveCard {
  return card({ headline: 'SLA breached', style: 'attention', color: 'attention', ticket, due: ticket.due, ctx, limits, actions: [openTicket(ticket)] });
}

export function escalationCard(ticket: Ticket, reason: string | undefined, ctx: CardContext, limits: TextLimits = INITIAL_LIMITS): AdaptiveCard {
  const extra: CardElement[] = reason ? [{ type: 'TextBlock', text: `Reason: ${truncate(plain(reason), limits.reason)}`, wrap: true }] : [];
  return card({ headline: 'Ticket escalated', style: 'emphasis', color: 'accent', ticket, due: ticket.due, ctx, limits, actions: [openTicket(ticket)], extra });
}

export function criticalTicketCard(ticket: Ticket, ctx: CardContext, limits: TextLimits = INITIAL_LIMITS): AdaptiveCard {
  return card({ headline: 'Critical ticket', style: 'attention', color: 'attention', ticket, due: ticket.due, ctx, limits, actions: [openTicket(ticket)] });
}

/** The one kind that @mentions: the assignee should notice, the channel sees who has it. */
export function assignmentCard(ticket: Ticket, ctx: CardContext, limits: TextLimits = INITIAL_LIMITS): AdaptiveCard {
  const assignee = ticket.assignee;
  if (!assignee) throw new Error('an assignment card needs an assignee');
  const name = mentionName(assignee.name);
  const tag = `<at>${name}</at>`;
  const mention: Mention = { type: 'mention', text: tag, mentioned: { id: (assignee.aad_object_id ?? assignee.email) as string, name } };
  return card({
    headline: `Ticket assigned to ${tag}`,
    fallbackHeadline: `Ticket assigned to ${name}`,
    style: 'emphasis',
    color: 'accent',
    ticket,
    due: ticket.due,
    ctx,
    limits,
    actions: [openTicket(ticket)],
    assigneeFact: tag,
    mentions: [mention],
  });
}

export function buildCard(n: Notification, ctx: CardContext, limits: TextLimits = INITIAL_LIMITS): AdaptiveCard {
  switch (n.kind) {
    case 'sla_warning':
      return slaWarningCard(n.ticket, n.time_remaining_minutes, ctx, limits);
    case 'sla_breach':
      return slaBreachCard(n.ticket, ctx, limits);
    case 'escalation':
      return escalationCard(n.ticket, n.reason, ctx, limits);
    case 'critical_ticket':
      return criticalTicketCard(n.ticket, ctx, limits);
    case 'assignment':
      return assignmentCard(n.ticket, ctx, limits);
  }
}

export function toEnvelope(content: AdaptiveCard): MessageEnvelope {
  return { type: 'message', attachments: [{ contentType: 'application/vnd.microsoft.card.adaptive', contentUrl: null, content }] };
}

export function payloadBytes(envelope: MessageEnvelope): number {
  return Buffer.byteLength(JSON.stringify(envelope), 'utf8');
}

/**
 * The envelope for a notification, under `budgetBytes`: long texts are halved until it fits, and if even
 * that fails (a budget below any sane card) the card keeps only its headline, facts cut short and buttons.
 */
export function buildEnvelope(n: Notification, ctx: CardContext, budgetBytes: number = PAYLOAD_BUDGET_BYTES): { envelope: MessageEnvelope; bytes: number; truncated: boolean } {
  let limits = { ...INITIAL_LIMITS };
  for (let round = 0; round < 12; round++) {
    const envelope = toEnvelope(buildCard(n, ctx, limits));
    const bytes = payloadBytes(envelope);
    if (bytes <= budgetBytes) return { envelope, bytes, truncated: round > 0 || isTruncated(n, limits) };
    limits = { title: Math.max(20, Math.floor(limits.title / 2)), reason: Math.max(20, Math.floor(limits.reason / 2)) };
  }
  const envelope = toEnvelope(buildCard(n, ctx, { title: 20, reason: 0 }));
  return { envelope, bytes: payloadBytes(envelope), truncated: true };
}

function isTruncated(n: Notification, limits: TextLimits): boolean {
  if ([...n.ticket.title].length > limits.title) return true;
  return n.kind === 'escalation' && n.reason !== undefined && [...n.reason].length > limits.reason;
}

interface CardSpec {
  headline: string;
  fallbackHeadline?: string;
  style: ContainerStyle;
  color: Colors;
  ticket: Ticket;
  due: string | undefined;
  ctx: CardContext;
  limits: TextLimits;
  actions: CardAction[];
  extra?: CardElement[];
  assigneeFact?: string;
  mentions?: Mention[];
}

function card(spec: CardSpec): AdaptiveCard {
  const { ticket, ctx, limits } = spec;
  const title = truncate(plain(ticket.title), limits.title);
  const facts: Fact[] = [
    { title: 'Ticket', value: truncate(plain(ticket.id), 128) },
    { title: 'Priority', value: truncate(plain(ticket.priority), 64) },
    { title: 'Status', value: truncate(plain(ticket.status), 64) },
  ];
  const assignee = spec.assigneeFact ?? (ticket.assignee ? truncate(plain(ticket.assignee.name), 128) : undefined);
  if (assignee) facts.push({ title: 'Assignee', value: assignee });
  if (spec.due) facts.push({ title: 'Due', value: formatTime(spec.due) });
  if (ticket.team) facts.push({ title: 'Team', value: truncate(plain(ticket.team), 128) });

  const body: CardElement[] = [
    {
      type: 'Container',
      id: `notification-${ctx.notificationId}`,
      style: spec.style,
      bleed: true,
      items: [{ type: 'TextBlock', text: spec.headline, weight: 'bolder', size: 'medium', color: spec.color, wrap: true }],
    },
    { type: 'TextBlock', text: title, weight: 'bolder', wrap: true },
    { type: 'FactSet', facts },
    ...(spec.extra ?? []),
  ];
  if (ctx.count > 1) {
    body.push({ type: 'TextBlock', text: `Repeated ${ctx.count} times within ${ctx.windowMinutes} min`, isSubtle: true, size: 'small', wrap: true });
  }
  if (ctx.possibleRepeat) body.push({ type: 'TextBlock', text: POSSIBLE_REPEAT_TEXT, isSubtle: true, size: 'small', wrap: true });
  return {
    $schema: 'http://adaptivecards.io/schemas/adaptive-card.json',
    type: 'AdaptiveCard',
    version: '1.5',
    fallbackText: truncate(`${spec.fallbackHeadline ?? spec.headline}: ${plain(ticket.id)} ${title}`, 200),
    body,
    actions: spec.actions,
    msteams: { width: 'Full', ...(spec.mentions ? { entities: spec.mentions } : {}) },
  };
}

function openTicket(ticket: Ticket): CardAction {
  return { type: 'Action.OpenUrl', title: 'Open Ticket', url: ticket.url };
}

// -----------------------------------------------------------------------------------------------
// Ticket text in a card
//
// Teams renders Markdown in TextBlock text and in FactSet titles and values (HTML is not supported in
// Adaptive Cards); the documented subset is **bold**, _italic_, "- " and "1. " lists and links
// written `[text](url)` (learn.microsoft.com/adaptive-cards/authoring-cards/text-features;
// msteams-docs task-modules-and-cards/cards/cards-format.md). A mention is `<at>Name</at>` in the text
// matching an entity of `msteams.entities`. What is defused, and why:
// - `[text](url)`: the one construct whose visible text can hide where it goes (a "Reset MFA" button
//   to a phishing page). `](` becomes `] (`, which no Markdown reads as a link. Reference links
//   (`[text][id]` plus a line `[id]: url`) are not in the documented subset; `][` and `]:` are broken
//   the same way in case a client implements more CommonMark than it documents.
// - `<` before a letter, `/`, `!` or `?` gets a space after it: no `<at>`/`</at>` (a mention, or text
//   that looks like one), no tag, no CommonMark autolink `<https://…>`.
// - Bare URLs stay as they are: Teams may make them clickable, but then the text shown is the target
//   itself, as in the mail the customer sent; defanging every URL-like word (and every domain a client
//   might linkify) would make ticket titles unreadable without closing a hidden-target hole.
// Before escaping, the text is normalised, so that nothing invisible sits inside a pattern while it is
// escaped and vanishes afterwards (escaping first, then stripping, made `[x]\u0001(url)` a live link,
// and removing `<at>` in one pass left the `<at>` of `<a<at>t>`): line breaks become `\n`,
// control characters but tab and `\n`, format characters (zero-width, bidi embeddings, overrides and
// isolates, soft hyphen, BOM), other default-ignorable code points (variation selectors, fillers) and
// lone surrogates are removed, and NFKC folds look-alikes (fullwidth `［］（）＜`) into the ASCII that
// Markdown reads. Then escaping runs last, so its guarantees hold for the output, and the whole is
// repeated until nothing changes: `plain(plain(x)) === plain(x)` (property-tested in plainText.test.ts).
// -----------------------------------------------------------------------------------------------

const LINE_BREAKS = /\r\n|[\r\u0085\u2028\u2029]/g;
const INVISIBLE = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f]|\p{Cf}|\p{Default_Ignorable_Code_Point}|\p{Cs}/gu;
const LINK_PARTS = /\]([(\[:])/g;
const TAG_START = /<([A-Za-z/!?])/g;
const MAX_NORMALISE_ROUNDS = 4;

function normalise(text: string): string {
  const visible = text.replace(LINE_BREAKS, '\n').replace(INVISIBLE, '');
  return visible.normalize('NFKC').replace(LINE_BREAKS, '\n').replace(INVISIBLE, '');
}

function escapeMarkup(text: string): string {
  return text.replace(LINK_PARTS, '] $1').replace(TAG_START, '< $1');
}

/**
 * Ticket text (mail subjects, names, reasons: written by customers) as plain card text that cannot act
 * as a link or a mention; see above. Linear in the input (bounded by the notification schema).
 */
export function plain(text: string): string {
  let out = escapeMarkup(normalise(text));
  for (let round = 1; round < MAX_NORMALISE_ROUNDS; round++) {
    const again = escapeMarkup(normalise(out));
    if (again === out) break;
    out = again;
  }
  return out;
}

/** The `<at>` text must match the entity exactly, so keep it free of markup and of reasonable length. */
function mentionName(name: string): string {
  // `plain` again after removing `<>`: the removal can join `]` and `(` (`[x]<(url)` → `[x](url)`).
  const cleaned = plain(plain(name).replace(/[<>]/g, '')).trim();
  return truncate(cleaned === '' ? 'assignee' : cleaned, 100);
}

/** Cuts at a code point boundary (never half a surrogate pair) and marks the cut. */
export function truncate(text: string, maxChars: number): string {
  const chars = [...text];
  if (chars.length <= maxChars) return text;
  if (maxChars <= 1) return '…';
  return chars.slice(0, maxChars - 1).join('') + '…';
}

function duration(minutes: number): string {
  const m = Math.round(minutes);
  if (m < 60) return `${m} min`;
  const h = Math.floor(m / 60);
  const rest = m % 60;
  if (h < 48) return rest ? `${h} h ${rest} min` : `${h} h`;
  const d = Math.floor(h / 24);
  const hr = h % 24;
  return hr ? `${d} d ${hr} h` : `${d} d`;
}

function formatTime(iso: string): string {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return truncate(plain(iso), 64);
  return `${d.toISOString().slice(0, 16).replace('T', ' ')} UTC`;
}
