import { z } from 'zod';
import { AppError, NotFoundError } from '../../platform/errors';
import { faultPoint } from '../../platform/faultPoints';
import type { Logger } from '../../platform/logging';
import type { IntegrationId, TenantId } from '../../storage';
import { staleClaimMs } from '../base';
import { toAppError } from './errors';
import { NoRecipientError, replyToThread, ThreadNotFoundError } from './mail';
import { requireActiveIntegration } from './mailboxes';
import type { GraphServices } from './services';

export const MAX_REPLY_RECIPIENTS = 20;

export const replyRequestSchema = z.strictObject({
  conversation_id: z.string().min(1).max(1024),
  /** HTML of the reply. */
  body_html: z.string().min(1).max(200_000),
  /** One of the integration's watched mailboxes; default: the mailbox the conversation came in on. */
  from_address: z.string().email().max(320).optional(),
  /**
   * Who gets the reply; default: the ticket's requester (who sent the conversation's first message),
   * never simply whoever wrote last in the thread.
   */
  to: z.array(z.string().email().max(320)).min(1).max(MAX_REPLY_RECIPIENTS).optional(),
  /** The engine's ticket id, remembered on the conversation for later comments. */
  ticket_id: z.string().min(1).max(256).optional(),
});
export type ReplyRequest = z.infer<typeof replyRequestSchema>;

export type ReplyOutcome =
  | { status: 'sent'; from: string; repliedToMessageId: string; repliedToInternetMessageId: string | undefined }
  | { status: 'duplicate' };

const REPLY_SOURCE = 'msgraph-reply';

/** A retry of a reply whose first call has not finished, or died less than `staleClaimMs` ago. */
export class ReplyInProgressError extends AppError {
  constructor(retryAfterSeconds: number) {
    super({
      status: 409,
      code: 'reply-in-progress',
      title: 'This reply is still being sent',
      detail: 'An earlier call with this Idempotency-Key has not finished; retry it later with the same key.',
      headers: { 'Retry-After': String(retryAfterSeconds) },
    });
  }
}

/**
 * The engine's reply to a ticket conversation, sent from the tenant's support mailbox. Only a watched
 * mailbox of this integration may be the sender: the app's Mail.Send reaches every mailbox of the
 * organisation, and the engine must not be able to write as anyone else.
 *
 * An `Idempotency-Key` makes a retried call a no-op instead of a second mail. Its claim is provisional
 * until the mail is sent: a retry while it is pending gets `ReplyInProgressError` (409), and once the
 * claim is stale (the first call died) the retry takes it over and sends. Graph's reply takes no
 * idempotency key, so a call that died after Graph accepted the mail but before the claim was confirmed
 * is sent once more by that takeover: at most one extra mail per such crash, never a lost one.
 */
export async function replyFromEngine(gs: GraphServices, tenant: TenantId, integrationId: IntegrationId, req: ReplyRequest, idempotencyKey: string | undefined, log: Logger): Promise<ReplyOutcome> {
  const integration = await requireActiveIntegration(gs, tenant, integrationId);
  const conversation = await gs.conversations.get(tenant, req.conversation_id);
  if (conversation && conversation.integrationId !== integrationId) throw new NotFoundError('No such conversation for this integration.');
  const watched = (await gs.mailboxes.list(tenant, integrationId)).map((m) => m.address);
  const from = req.from_address?.toLowerCase() ?? conversation?.mailbox ?? (watched.length === 1 ? watched[0] : undefined);
  if (!from) throw new AppError({ status: 422, code: 'from-address-required', title: 'Sender mailbox needed', detail: 'Name from_address: the integration watches several mailboxes and the conversation is not known.' });
  if (!watched.includes(from)) throw new AppError({ status: 422, code: 'from-address-not-watched', title: 'Sender mailbox not allowed', detail: "from_address must be one of the integration's watched support mailboxes." });

  const { processed } = gs.services;
  const claimId = idempotencyKey ? `${integrationId}:${idempotencyKey}` : undefined;
  if (claimId) {
    const staleAfterMs = staleClaimMs(gs.services.config.functionTimeoutMs);
    const held = await processed.claimProvisional(REPLY_SOURCE, tenant, claimId, { staleAfterMs });
    if (held === 'done') {
      log.info('graph reply skipped', { reason: 'idempotency key already used' });
      return { status: 'duplicate' };
    }
    if (held === 'pending') {
      // Never "duplicate" while unconfirmed: the holder may have died before Graph had the mail.
      log.info('graph reply deferred: an earlier call with this idempotency key has not finished');
      throw new ReplyInProgressError(Math.min(60, Math.max(1, Math.ceil(staleAfterMs / 10_000))));
    }
    faultPoint('graph.reply.claim');
  }
  let res: Awaited<ReturnType<typeof replyToThread>>;
  try {
    // Before the send: after it, only the confirmation should stand between Graph's accepting the mail
    // and the claim's end, since a crash in that gap is the one that sends the reply twice.
    if (req.ticket_id && conversation) {
      await gs.conversations.touch(tenant, req.conversation_id, { ticketId: req.ticket_id });
      faultPoint('graph.reply.ticket');
    }
    res = await replyToThread(gs.client(integration.externalAccountId), {
      conversationId: req.conversation_id,
      body: req.body_html,
      fromAddress: from,
      to: req.to ?? (conversation?.requester ? [conversation.requester] : undefined),
      firstMessageKey: conversation?.firstMessageKey,
    });
  } catch (err) {
    if (claimId) await processed.release(REPLY_SOURCE, tenant, claimId).catch(() => undefined);
    if (err instanceof ThreadNotFoundError) throw new NotFoundError('The conversation has no message in this mailbox.');
    if (err instanceof NoRecipientError) throw new AppError({ status: 422, code: 'reply-recipient-unknown', title: 'No one to reply to', detail: 'The conversation names no requester; give the recipients in to.' });
    throw toAppError(err, 'sending the reply');
  }
  faultPoint('graph.reply.sent');
  if (claimId) {
    try {
      await processed.confirm(REPLY_SOURCE, tenant, [claimId]);
      faultPoint('graph.reply.confirm');
    } catch (err) {
      // The mail is out: say so. The claim stays pending, so only a retry after it is stale sends again.
      log.warn('graph reply sent but its idempotency key could not be confirmed', { error: err });
    }
  }
  log.info('graph reply sent', { from, repliedTo: res.repliedToMessageId, recipients: res.to.length });
  return { status: 'sent', from, repliedToMessageId: res.repliedToMessageId, repliedToInternetMessageId: res.repliedToInternetMessageId };
}
