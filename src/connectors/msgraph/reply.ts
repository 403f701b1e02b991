import { z } from 'zod';
import { AppError, NotFoundError } from '../../platform/errors';
import type { Logger } from '../../platform/logging';
import type { IntegrationId, TenantId } from '../../storage';
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

/**
 * The engine's reply to a ticket conversation, sent from the tenant's support mailbox. Only a watched
 * mailbox of this integration may be the sender: the app's Mail.Send reaches every mailbox of the
 * organisation, and the engine must not be able to write as anyone else. An `Idempotency-Key` makes a
 * retried call a no-op instead of a second mail.
 */
export async function replyFromEngine(gs: GraphServices, tenant: TenantId, integrationId: IntegrationId, req: ReplyRequest, idempotencyKey: string | undefined, log: Logger): Promise<ReplyOutcome> {
  const integration = await requireActiveIntegration(gs, tenant, integrationId);
  const conversation = await gs.conversations.get(tenant, req.conversation_id);
  if (conversation && conversation.integrationId !== integrationId) throw new NotFoundError('No such conversation for this integration.');
  const watched = (await gs.mailboxes.list(tenant, integrationId)).map((m) => m.address);
  const from = req.from_address?.toLowerCase() ?? conversation?.mailbox ?? (watched.length === 1 ? watched[0] : undefined);
  if (!from) throw new AppError({ status: 422, code: 'from-address-required', title: 'Sender mailbox needed', detail: 'Name from_address: the integration watches several mailboxes and the conversation is not known.' });
  if (!watched.includes(from)) throw new AppError({ status: 422, code: 'from-address-not-watched', title: 'Sender mailbox not allowed', detail: "from_address must be one of the integration's watched support mailboxes." });

  const claimId = idempotencyKey ? `${integrationId}:${idempotencyKey}` : undefined;
  if (claimId && !(await gs.services.processed.claim(REPLY_SOURCE, tenant, claimId))) {
    log.info('graph reply skipped', { reason: 'idempotency key already used' });
    return { status: 'duplicate' };
  }
  try {
    const res = await replyToThread(gs.client(integration.externalAccountId), {
      conversationId: req.conversation_id,
      body: req.body_html,
      fromAddress: from,
      to: req.to ?? (conversation?.requester ? [conversation.requester] : undefined),
      firstMessageKey: conversation?.firstMessageKey,
    });
    if (req.ticket_id && conversation) await gs.conversations.touch(tenant, req.conversation_id, { ticketId: req.ticket_id });
    log.info('graph reply sent', { from, repliedTo: res.repliedToMessageId, recipients: res.to.length });
    return { status: 'sent', from, repliedToMessageId: res.repliedToMessageId, repliedToInternetMessageId: res.repliedToInternetMessageId };
  } catch (err) {
    if (claimId) await gs.services.processed.release(REPLY_SOURCE, tenant, claimId).catch(() => undefined);
    if (err instanceof ThreadNotFoundError) throw new NotFoundError('The conversation has no message in this mailbox.');
    if (err instanceof NoRecipientError) throw new AppError({ status: 422, code: 'reply-recipient-unknown', title: 'No one to reply to', detail: 'The conversation names no requester; give the recipients in to.' });
    throw toAppError(err, 'sending the reply');
  }
}
