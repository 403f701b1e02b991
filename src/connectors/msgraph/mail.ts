import type { Client } from '@microsoft/microsoft-graph-client';
import { z } from 'zod';
import { collectPages } from './paging';
import { bodyText, boundChars, cleanSubject, MAX_SUBJECT_CHARS, MAX_TEXT_BYTES, stripQuotedReply, truncateUtf8 } from './mailText';
import { addressOf, graphMessageSchema, headerValue, MESSAGE_SELECT, odataString, pathSegment, THREAD_SELECT, type GraphMessage, type GraphRecipient } from './messages';

// -----------------------------------------------------------------------------------------------
// What the engine receives
// -----------------------------------------------------------------------------------------------

const emailAddressSchema = z.object({
  address: z.string().min(1),
  name: z.string().optional(),
});

const attachmentMetaSchema = z.object({
  id: z.string(),
  name: z.string(),
  contentType: z.string(),
  /** Bytes. */
  size: z.number().int().nonnegative(),
  /** Inline images of an HTML body (signatures, logos) rather than files the sender attached. */
  isInline: z.boolean(),
});

export { bodyText, cleanSubject, htmlToPlainText, MAX_TEXT_BYTES, stripQuotedReply, truncateUtf8 } from './mailText';

/**
 * Description and comment bodies are cut at `MAX_TEXT_BYTES` UTF-8 bytes, recipient and attachment
 * lists at the counts below: a queue message holds 48 KiB of JSON, and JSON escaping can double a text.
 */
export const MAX_RECIPIENTS = 100;
export const MAX_ATTACHMENTS = 50;
/** JSON bytes an event's `data` may take, leaving room for the CloudEvent envelope within 48 KiB. */
export const MAX_DATA_JSON_BYTES = 44 * 1024;

const jsonBytes = (v: unknown) => Buffer.byteLength(JSON.stringify(v), 'utf8');

/** What is always left of the text when lists have to give way. */
const MIN_TEXT_BYTES = 4 * 1024;

/**
 * Fits an event's data into `MAX_DATA_JSON_BYTES` of JSON: first the longest list (attachments or
 * recipients) is halved until the text has room, then the text is cut (escaping can make a text
 * several times longer as JSON, hence the loop). `truncated` says something was cut.
 */
function fitData<T extends { truncated: boolean }>(data: T, textKey: 'description' | 'body', listKeys: Array<'attachments' | 'to' | 'cc'>): T {
  const out: Record<string, unknown> = { ...data };
  const size = () => jsonBytes(out);
  const textOf = () => out[textKey] as string;
  if (size() <= MAX_DATA_JSON_BYTES) return data;
  out.truncated = true;
  const withoutText = () => jsonBytes({ ...out, [textKey]: '' });
  for (let guard = 0; guard < 64 && withoutText() > MAX_DATA_JSON_BYTES - MIN_TEXT_BYTES; guard++) {
    const longest = listKeys.map((k) => ({ k, n: (out[k] as unknown[]).length })).filter((e) => e.n > 0).sort((a, b) => b.n - a.n)[0];
    if (!longest) break;
    out[longest.k] = (out[longest.k] as unknown[]).slice(0, Math.floor(longest.n / 2));
  }
  for (let guard = 0; guard < 64; guard++) {
    const over = size() - MAX_DATA_JSON_BYTES;
    if (over <= 0) break;
    const bytes = Buffer.byteLength(textOf(), 'utf8');
    if (bytes === 0) break;
    // How much JSON one byte of this text costs (escaping: up to 6 for control characters).
    const ratio = Math.max(1, (jsonBytes(textOf()) - 2) / bytes);
    out[textKey] = truncateUtf8(textOf(), Math.max(0, bytes - Math.max(Math.ceil(over / ratio), 64))).text;
  }
  return out as T;
}

/**
 * `data` of `com.itil-next.connectors.ticket.create_requested.v1`: an email that starts a new
 * conversation with the support mailbox asks for a ticket.
 *
 * - `subject`: the subject without reply/forward prefixes (`RE:`, `FW:`, `AW:`… repeated);
 *   `originalSubject` as received.
 * - `description`: plain text made from the HTML body by a real converter (links kept as
 *   `text [url]`, images dropped), at most `MAX_TEXT_BYTES` (less when the whole event would
 *   not fit a queue message); `truncated` says something was cut.
 * - `from`, `to`, `cc`: addresses as the message carries them (at most `MAX_RECIPIENTS` each).
 * - `priority`: from the message's importance (high → high, low → low, otherwise medium).
 * - `attachments`: metadata only (at most `MAX_ATTACHMENTS`); content stays in the mailbox (fetch by
 *   `messageId` + attachment id).
 * - `internetMessageId` (RFC 5322 Message-ID), `conversationId`, `messageId` (Graph immutable id),
 *   `mailbox` (the watched support address that received it): what a later reply or comment refers to.
 */
export const ticketCreateRequestSchema = z.object({
  source: z.literal('email'),
  mailbox: z.string().min(1),
  subject: z.string(),
  originalSubject: z.string(),
  description: z.string(),
  truncated: z.boolean(),
  from: emailAddressSchema,
  to: z.array(emailAddressSchema),
  cc: z.array(emailAddressSchema),
  priority: z.enum(['low', 'medium', 'high']),
  importance: z.enum(['low', 'normal', 'high']),
  attachments: z.array(attachmentMetaSchema),
  internetMessageId: z.string().min(1),
  conversationId: z.string().min(1),
  messageId: z.string().min(1),
  receivedAt: z.string(),
});
export type TicketCreateRequest = z.infer<typeof ticketCreateRequestSchema>;

/**
 * `data` of `com.itil-next.connectors.ticket.comment_added.v1`: a new message in a conversation that
 * already asked for a ticket. `ticketRef` is the id of that `create_requested` event (and `ticketId`
 * the engine's ticket id once the engine named it on a reply). `body` is the new text only: the quoted
 * history below the usual reply separators is cut off.
 */
export const ticketCommentSchema = z.object({
  source: z.literal('email'),
  mailbox: z.string().min(1),
  conversationId: z.string().min(1),
  ticketRef: z.string().min(1),
  ticketId: z.string().optional(),
  subject: z.string(),
  body: z.string(),
  truncated: z.boolean(),
  from: emailAddressSchema,
  attachments: z.array(attachmentMetaSchema),
  internetMessageId: z.string().min(1),
  messageId: z.string().min(1),
  receivedAt: z.string(),
});
export type TicketComment = z.infer<typeof ticketCommentSchema>;

// -----------------------------------------------------------------------------------------------
// Text
// -----------------------------------------------------------------------------------------------

// The parsing itself (subjects, bodies, quoted history, byte cuts) is in `mailText.ts`.

export function importanceOf(message: GraphMessage): 'low' | 'normal' | 'high' {
  const i = (message.importance ?? '').toLowerCase();
  return i === 'high' || i === 'low' ? i : 'normal';
}

export function priorityOf(importance: 'low' | 'normal' | 'high'): 'low' | 'medium' | 'high' {
  return importance === 'normal' ? 'medium' : importance;
}

function recipient(r: GraphRecipient | null | undefined): { address: string; name?: string } | undefined {
  const address = r?.emailAddress.address?.trim();
  if (!address) return undefined;
  const name = r?.emailAddress.name?.trim();
  return { address, ...(name && name.toLowerCase() !== address.toLowerCase() ? { name } : {}) };
}

function recipients(list: GraphRecipient[] | null | undefined): Array<{ address: string; name?: string }> {
  return (list ?? [])
    .map(recipient)
    .filter((r): r is { address: string; name?: string } => r !== undefined)
    .slice(0, MAX_RECIPIENTS);
}

function attachmentsOf(message: GraphMessage): TicketCreateRequest['attachments'] {
  return (message.attachments ?? []).slice(0, MAX_ATTACHMENTS).map((a) => ({
    id: a.id,
    name: a.name ?? 'attachment',
    contentType: a.contentType ?? 'application/octet-stream',
    size: Math.max(0, Math.trunc(a.size ?? 0)),
    isInline: a.isInline ?? false,
  }));
}

/** The idempotency key of a message: its Message-ID (same in every mailbox), else its immutable id. */
export function messageKey(message: GraphMessage): string {
  return message.internetMessageId?.trim() || `graph:${message.id}`;
}

// -----------------------------------------------------------------------------------------------
// Mail → ticket
// -----------------------------------------------------------------------------------------------

export function createTicketFromEmail(message: GraphMessage, mailbox: string): TicketCreateRequest {
  const importance = importanceOf(message);
  const { text, truncated } = truncateUtf8(bodyText(message));
  const from = recipient(message.from) ?? recipient(message.sender) ?? { address: 'unknown' };
  const data = ticketCreateRequestSchema.parse({
    source: 'email',
    mailbox: mailbox.toLowerCase(),
    subject: cleanSubject(message.subject) || '(no subject)',
    originalSubject: boundChars(message.subject ?? '', MAX_SUBJECT_CHARS),
    description: text,
    truncated,
    from,
    to: recipients(message.toRecipients),
    cc: recipients(message.ccRecipients),
    priority: priorityOf(importance),
    importance,
    attachments: attachmentsOf(message),
    internetMessageId: messageKey(message),
    conversationId: message.conversationId,
    messageId: message.id,
    receivedAt: message.receivedDateTime ?? message.sentDateTime ?? new Date().toISOString(),
  });
  return fitData(data, 'description', ['attachments', 'to', 'cc']);
}

export function commentFromEmail(message: GraphMessage, mailbox: string, ticket: { ticketRef: string; ticketId?: string | undefined }): TicketComment {
  const { text, truncated } = truncateUtf8(stripQuotedReply(bodyText(message)));
  const data = ticketCommentSchema.parse({
    source: 'email',
    mailbox: mailbox.toLowerCase(),
    conversationId: message.conversationId,
    ticketRef: ticket.ticketRef,
    ...(ticket.ticketId ? { ticketId: ticket.ticketId } : {}),
    subject: cleanSubject(message.subject),
    body: text,
    truncated,
    from: recipient(message.from) ?? recipient(message.sender) ?? { address: 'unknown' },
    attachments: attachmentsOf(message),
    internetMessageId: messageKey(message),
    messageId: message.id,
    receivedAt: message.receivedDateTime ?? message.sentDateTime ?? new Date().toISOString(),
  });
  return fitData(data, 'body', ['attachments']);
}

// -----------------------------------------------------------------------------------------------
// What not to turn into tickets
// -----------------------------------------------------------------------------------------------

export type MailKind = { kind: 'ticket' } | { kind: 'ignore'; reason: 'auto-reply' | 'bounce' | 'own-message' | 'draft' };

const AUTO_SUBJECT = /^\s*(automatic reply|auto(matic)?[- ]?reply|autoreply|out of (the )?office|abwesenheitsnotiz|automatische antwort|réponse automatique|respuesta automática|risposta automatica|autosvar|automatisch antwoord)\b/i;
const BOUNCE_SUBJECT = /^\s*(undeliverable|undelivered mail returned to sender|delivery status notification \(failure\)|mail delivery failed|returned mail|delivery has failed|unzustellbar|non remis)\b/i;
const BOUNCE_SENDER = /^(mailer-daemon|postmaster|microsoftexchange[0-9a-f]{32})@/i;

/**
 * Auto-replies (RFC 3834 `Auto-Submitted`, Exchange's auto-reply headers, `Precedence: auto_reply`,
 * out-of-office subjects), bounces (NDR headers and senders, `multipart/report` delivery status) and
 * our own outgoing mail (sent from a watched mailbox) never become tickets: answering them would
 * loop mail between two robots.
 */
export function classifyMessage(message: GraphMessage, ownAddresses: ReadonlySet<string>): MailKind {
  if (message.isDraft) return { kind: 'ignore', reason: 'draft' };
  const sender = addressOf(message.from) ?? addressOf(message.sender);
  if (sender && ownAddresses.has(sender)) return { kind: 'ignore', reason: 'own-message' };

  const contentType = headerValue(message, 'Content-Type') ?? '';
  if (
    headerValue(message, 'X-MS-Exchange-Message-Is-Ndr') !== undefined ||
    (/multipart\/report/i.test(contentType) && /delivery-status/i.test(contentType)) ||
    (sender !== undefined && BOUNCE_SENDER.test(sender)) ||
    BOUNCE_SUBJECT.test(message.subject ?? '')
  ) {
    return { kind: 'ignore', reason: 'bounce' };
  }

  const autoSubmitted = headerValue(message, 'Auto-Submitted')?.trim().toLowerCase();
  if (autoSubmitted && autoSubmitted !== 'no') return { kind: 'ignore', reason: 'auto-reply' };
  if (/^(auto_reply|auto-reply)$/i.test(headerValue(message, 'Precedence')?.trim() ?? '')) return { kind: 'ignore', reason: 'auto-reply' };
  for (const h of ['X-Autoreply', 'X-Autorespond', 'X-Auto-Response']) {
    if (headerValue(message, h) !== undefined) return { kind: 'ignore', reason: 'auto-reply' };
  }
  if (AUTO_SUBJECT.test(message.subject ?? '')) return { kind: 'ignore', reason: 'auto-reply' };
  return { kind: 'ticket' };
}

// -----------------------------------------------------------------------------------------------
// Graph calls
// -----------------------------------------------------------------------------------------------

export async function getMessage(client: Client, mailbox: string, messageId: string): Promise<GraphMessage> {
  const raw: unknown = await client
    .api(`/users/${pathSegment(mailbox)}/messages/${pathSegment(messageId)}`)
    .select(MESSAGE_SELECT)
    .expand('attachments($select=id,name,contentType,size,isInline)')
    .get();
  return graphMessageSchema.parse(raw);
}

function timeOf(m: GraphMessage): string {
  return m.receivedDateTime ?? m.sentDateTime ?? '';
}

/**
 * Every message of a conversation in the mailbox (all folders: the customer's mails in Inbox, our
 * replies in Sent Items), oldest first. Outlook refuses `$orderby` with a `conversationId` filter
 * (`InefficientFilter`: the sort property must lead the filter), so the thread is sorted here.
 */
export async function getConversationThread(client: Client, mailbox: string, conversationId: string): Promise<GraphMessage[]> {
  const first = client
    .api(`/users/${pathSegment(mailbox)}/messages`)
    .filter(`conversationId eq ${odataString(conversationId)}`)
    .select(THREAD_SELECT)
    .top(100);
  const { items } = await collectPages(client, first, graphMessageSchema, { maxPages: 20 });
  return items
    .filter((m) => m.conversationId === conversationId && !m.isDraft)
    .sort((a, b) => (timeOf(a) < timeOf(b) ? -1 : timeOf(a) > timeOf(b) ? 1 : a.id < b.id ? -1 : 1));
}

export class ThreadNotFoundError extends Error {
  constructor() {
    super('the conversation has no message in this mailbox to reply to');
    this.name = 'ThreadNotFoundError';
  }
}

export class NoRecipientError extends Error {
  constructor() {
    super('the conversation has no requester to reply to');
    this.name = 'NoRecipientError';
  }
}

/** Who wrote a message (its author, else the mailbox that sent it), lower-case. */
function senderOf(m: GraphMessage): string | undefined {
  return addressOf(m.from) ?? addressOf(m.sender);
}

/** `{ requester }` for a conversation row started by this message (nothing when it names no sender). */
export function requesterOf(message: GraphMessage): { requester?: string } {
  const requester = senderOf(message);
  return requester ? { requester } : {};
}

export interface ReplyInput {
  conversationId: string;
  /** HTML of the reply; Graph puts it above the quoted thread. */
  body: string;
  /** The tenant's support mailbox the reply is sent from (and whose thread it answers). */
  fromAddress: string;
  /** Who gets the reply: the addresses the engine named, else the ticket's requester (lower-case). */
  to?: string[] | undefined;
  /** The conversation's first message (`messageKey`): finds the requester when `to` is not given. */
  firstMessageKey?: string | undefined;
}

/**
 * Replies in the thread, from the support mailbox, to the ticket's requester (or the addresses the
 * engine named), never to whoever wrote last: anyone can thread a message into a conversation by
 * replying to a copy of it, and must not receive the engine's answer. Graph's `reply` is made on the
 * latest message of a recipient (else the latest inbound one) so the thread reads naturally, with
 * explicit `toRecipients` so Graph does not pick the recipients from that message's From or Reply-To.
 * Without `to`, the requester is the sender of the conversation's first message (`firstMessageKey`),
 * else of its earliest inbound one. Graph builds In-Reply-To / References and keeps the conversation;
 * the sent reply lands in Sent Items. Not retried: a reply that reached Graph must not go out twice.
 */
export async function replyToThread(client: Client, input: ReplyInput): Promise<{ repliedToMessageId: string; repliedToInternetMessageId: string | undefined; to: string[] }> {
  const mailbox = input.fromAddress.toLowerCase();
  const thread = await getConversationThread(client, mailbox, input.conversationId);
  if (thread.length === 0) throw new ThreadNotFoundError();
  const inbound = thread.filter((m) => senderOf(m) !== mailbox);
  const named = (input.to ?? []).map((a) => a.trim().toLowerCase()).filter((a) => a !== '');
  const first = (input.firstMessageKey !== undefined ? inbound.find((m) => messageKey(m) === input.firstMessageKey) : undefined) ?? inbound[0];
  const requester = first ? senderOf(first) : undefined;
  const to = [...new Set(named.length > 0 ? named : requester ? [requester] : [])];
  if (to.length === 0) throw new NoRecipientError();
  const recipients = new Set(to);
  const target = [...inbound].reverse().find((m) => recipients.has(senderOf(m) ?? '')) ?? inbound.at(-1) ?? (thread.at(-1) as GraphMessage);
  await client
    .api(`/users/${pathSegment(mailbox)}/messages/${pathSegment(target.id)}/reply`)
    .post({ message: { toRecipients: to.map((address) => ({ emailAddress: { address } })), body: { contentType: 'HTML', content: input.body } } });
  return { repliedToMessageId: target.id, repliedToInternetMessageId: target.internetMessageId ?? undefined, to };
}
