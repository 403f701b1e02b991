import type { Client } from '@microsoft/microsoft-graph-client';
import type { Logger } from '../../platform/logging';
import { stableEventId } from '../../platform/events';
import { faultPoint } from '../../platform/faultPoints';
import { QUEUES, type IntegrationId, type TenantId } from '../../storage';
import { InvalidGrantError } from '../base';
import { MsGraphConnector } from './connector';
import { isNotFound } from './errors';
import { classifyMessage, commentFromEmail, createTicketFromEmail, getMessage, messageKey, requesterOf, ticketCommentSchema, ticketCreateRequestSchema } from './mail';
import { ensureSubscription, syncMailbox, type ActiveGraphIntegration } from './mailboxes';
import type { GraphServices } from './services';
import type { GraphMessage } from './messages';
import type { Mailbox } from './store';
import type { GraphWorkItem, GraphWorkItemInput } from './workItems';

export const CONNECTOR = 'msgraph';
export const CREATE_EVENT = 'ticket.create_requested';
export const COMMENT_EVENT = 'ticket.comment_added';
/** Processed-table sources: by Message-ID (one event per mail) and by immutable id (skip a re-fetch). */
export const MAIL_SOURCE = 'msgraph-mail';
const SEEN_SOURCE = 'msgraph-mail-id';
/**
 * A mail's claim (by Message-ID) is provisional until its event is on the queue: a worker that dies in
 * between leaves it pending, and a later delivery takes it over once it is this old. The work under the
 * claim is a few storage calls (seconds). Taking over a claim whose holder is merely slow costs one more
 * copy of the same CloudEvent (same id, which the engine drops); and 30 s lets a copy that met the
 * pending claim (the queue retries it every 10 s, five times) take over before its attempts run out.
 */
export const MAIL_CLAIM_STALE_MS = 30_000;

/** Thrown for a mail another delivery is still handling: the queue brings the message back later. */
export class MailInProgressError extends Error {
  constructor() {
    super('another delivery of this mail is being handled and has not published yet; retry later');
    this.name = 'MailInProgressError';
  }
}

export function mailClaimId(integration: IntegrationId, key: string): string {
  return `${integration}:${key}`;
}

export type WorkOutcome =
  | { outcome: 'created' | 'commented'; eventId: string }
  | { outcome: 'duplicate' | 'ignored' | 'dropped'; reason: string }
  | { outcome: 'maintained'; subscription: 'kept' | 'renewed' | 'created'; queued: number }
  | { outcome: 'lifecycle'; event: string; queued: number }
  | { outcome: 'messages'; results: Record<string, number> };

export function ticketRefFor(tenant: TenantId, integration: IntegrationId, firstMessageKey: string): string {
  return stableEventId(CONNECTOR, tenant, CREATE_EVENT, integration, firstMessageKey);
}

interface Context {
  integration: ActiveGraphIntegration;
  mailbox: Mailbox;
  client: Client;
}

/**
 * Loads what every work item needs and checks it still applies: the integration is active, the mailbox
 * is still watched under this tenant and integration, and the tenant still grants the app a token
 * (a revoked consent marks the integration `needs_reauth` and drops the work).
 */
async function context(gs: GraphServices, item: GraphWorkItem, log: Logger): Promise<Context | { drop: string }> {
  const integration = await gs.services.integrations.get(item.tenantId, item.integrationId);
  if (!integration || integration.type !== 'msgraph') return { drop: 'no such integration' };
  if (integration.status !== 'active' || !integration.externalAccountId) return { drop: `integration is ${integration.status}` };
  const mailbox = await gs.mailboxes.get(item.tenantId, item.integrationId, item.mailbox);
  if (!mailbox) return { drop: 'mailbox not watched' };
  const factory = gs.requireFactory();
  const connector = new MsGraphConnector(factory, integration.externalAccountId, { tenant: item.tenantId, integration: item.integrationId });
  try {
    await connector.authenticate();
  } catch (err) {
    if (err instanceof InvalidGrantError) {
      await gs.services.integrations
        .update(item.tenantId, item.integrationId, { status: 'needs_reauth', lastError: 'the Microsoft 365 tenant no longer grants the app access; consent again', lastRefreshFailure: new Date().toISOString() }, integration.etag)
        .catch(() => undefined);
      log.warn('msgraph integration needs re-consent', { upstreamCode: err.upstreamCode });
      return { drop: 'consent revoked' };
    }
    throw err;
  }
  return { integration: integration as ActiveGraphIntegration, mailbox, client: connector.client() };
}

export interface WorkOptions {
  /** Who takes the mail claims: the queue message carrying the work item (see `claimProvisional`). */
  owner?: string | undefined;
}

export async function processWorkItem(gs: GraphServices, item: GraphWorkItem, log: Logger, opts: WorkOptions = {}): Promise<WorkOutcome> {
  const ctx = await context(gs, item, log);
  if ('drop' in ctx) {
    log.warn('graph work dropped', { kind: item.kind, reason: ctx.drop });
    return { outcome: 'dropped', reason: ctx.drop };
  }
  switch (item.kind) {
    case 'message':
      return processMessage(gs, ctx, item, log, opts);
    case 'maintain': {
      const { action } = await ensureSubscription(gs, ctx.client, ctx.mailbox, log);
      const { queued } = await syncMailbox(gs, ctx.client, ctx.mailbox, log);
      return { outcome: 'maintained', subscription: action, queued };
    }
    case 'lifecycle':
      return processLifecycle(gs, ctx, item, log);
    case 'messages': {
      // Each as its own `message` (idempotent per message id), so a retry after a failure part-way
      // re-finds the handled ones as duplicates.
      const results: Record<string, number> = {};
      for (const messageId of item.messageIds) {
        const { messageIds: _ids, kind: _kind, ...rest } = item;
        const one = await processMessage(gs, ctx, { ...rest, kind: 'message', messageId }, log, opts);
        results[one.outcome] = (results[one.outcome] ?? 0) + 1;
      }
      return { outcome: 'messages', results };
    }
  }
}

async function processLifecycle(gs: GraphServices, ctx: Context, item: Extract<GraphWorkItem, { kind: 'lifecycle' }>, log: Logger): Promise<WorkOutcome> {
  const sub = await gs.subscriptionsRepo.get(item.tenantId, item.subscriptionId);
  log.info('graph lifecycle event', { event: item.event, subscriptionId: item.subscriptionId, known: sub !== undefined });
  if (item.event === 'reauthorizationRequired') {
    let done = false;
    if (sub) {
      try {
        await gs.subscriptions.reauthorize(ctx.client, sub);
        done = true;
      } catch (err) {
        if (!isNotFound(err)) throw err;
        await gs.subscriptions.forget(sub);
      }
    }
    // A renewal also reauthorizes; a subscription that is gone is recreated.
    if (!done) await ensureSubscription(gs, ctx.client, (await gs.mailboxes.get(item.tenantId, item.integrationId, item.mailbox)) ?? ctx.mailbox, log);
  } else if (item.event === 'subscriptionRemoved') {
    if (sub) await gs.subscriptions.forget(sub);
    await ensureSubscription(gs, ctx.client, (await gs.mailboxes.get(item.tenantId, item.integrationId, item.mailbox)) ?? ctx.mailbox, log);
  }
  // Every lifecycle event may have cost notifications: catch up with delta.
  const { queued } = await syncMailbox(gs, ctx.client, (await gs.mailboxes.get(item.tenantId, item.integrationId, item.mailbox)) ?? ctx.mailbox, log);
  return { outcome: 'lifecycle', event: item.event, queued };
}

async function processMessage(gs: GraphServices, ctx: Context, item: Extract<GraphWorkItem, { kind: 'message' }>, log: Logger, opts: WorkOptions): Promise<WorkOutcome> {
  const { processed } = gs.services;
  const tenant = item.tenantId;
  const integration = item.integrationId;
  const seenKey = `${integration}:${item.messageId}`;
  if (await processed.seen(SEEN_SOURCE, tenant, seenKey)) {
    log.info('graph mail skipped', { reason: 'duplicate', via: item.via });
    return { outcome: 'duplicate', reason: 'message id already processed' };
  }
  let message;
  try {
    message = await getMessage(ctx.client, ctx.mailbox.address, item.messageId);
  } catch (err) {
    if (isNotFound(err)) {
      log.info('graph mail skipped', { reason: 'message no longer exists', via: item.via });
      return { outcome: 'dropped', reason: 'message no longer exists' };
    }
    throw err;
  }
  const key = messageKey(message);
  const claimId = mailClaimId(integration, key);
  // Owned by the queue message: its redelivery after a crash takes the claim over at once, however the
  // host's timeouts are set; any other copy waits for it to go stale.
  const claim = await processed.claimProvisional(MAIL_SOURCE, tenant, claimId, { staleAfterMs: MAIL_CLAIM_STALE_MS, ...(opts.owner ? { owner: opts.owner } : {}) });
  if (claim === 'pending') {
    // Its event may not be on the queue yet (the holder may have died): never a duplicate until confirmed.
    log.info('graph mail deferred: another delivery holds its claim', { via: item.via });
    throw new MailInProgressError();
  }
  let outcome: WorkOutcome;
  if (claim === 'done') {
    log.info('graph mail skipped', { reason: 'duplicate', via: item.via });
    outcome = { outcome: 'duplicate', reason: 'Message-ID already processed' };
  } else {
    faultPoint('graph.mail.claim');
    try {
      outcome = await publishMail(gs, ctx, item, message, key, log);
    } catch (err) {
      // Give the claim back so the queue's retry can do the work.
      await processed.release(MAIL_SOURCE, tenant, claimId).catch(() => undefined);
      throw err;
    }
    // The event is on the queue (or the mail needs none): only now is it done for every later delivery.
    // Never released from here on: a failed confirmation leaves the claim pending under this queue
    // message, whose retry takes it over and publishes the same event id again.
    await processed.confirm(MAIL_SOURCE, tenant, [claimId]);
    faultPoint('graph.mail.confirm');
  }
  // Saves the next delivery of this immutable id the read from Graph.
  await processed.claim(SEEN_SOURCE, tenant, seenKey);
  faultPoint('graph.mail.seen');
  return outcome;
}

/** Under the mail's claim: its conversation row, then its event (or nothing, for mail that is no ticket). */
async function publishMail(gs: GraphServices, ctx: Context, item: Extract<GraphWorkItem, { kind: 'message' }>, message: GraphMessage, key: string, log: Logger): Promise<WorkOutcome> {
  const tenant = item.tenantId;
  const integration = item.integrationId;
  const own = new Set((await gs.mailboxes.list(tenant, integration)).map((m) => m.address));
  const kind = classifyMessage(message, own);
  if (kind.kind === 'ignore') {
    log.info('graph mail ignored', { reason: kind.reason, via: item.via });
    return { outcome: 'ignored', reason: kind.reason };
  }

  const conversationId = message.conversationId;
  const ticketRef = ticketRefFor(tenant, integration, key);
  const now = new Date().toISOString();
  const started = await gs.conversations.tryCreate(tenant, conversationId, {
    integrationId: integration,
    mailbox: ctx.mailbox.address,
    ticketRef,
    firstMessageKey: key,
    ...requesterOf(message),
    subject: (message.subject ?? '').slice(0, 1024),
    lastMessageId: message.id,
    lastMessageAt: message.receivedDateTime ?? now,
    createdAt: now,
  });
  faultPoint('graph.mail.conversation');
  const conversation = started ? undefined : await gs.conversations.get(tenant, conversationId);
  // The creator's own redelivery (a retry after a failed publish) still asks for the ticket.
  const isNew = started || conversation === undefined || conversation.firstMessageKey === key;

  let eventId: string;
  if (isNew) {
    const data = createTicketFromEmail(message, ctx.mailbox.address);
    const ev = await gs.services.events.publish({ tenantId: tenant, integrationId: integration, name: CREATE_EVENT, connector: CONNECTOR, subject: `conversations/${conversationId}`, idParts: [integration, key], data, dataSchema: ticketCreateRequestSchema });
    eventId = ev.id;
  } else {
    // Before the publish, so that nothing but the confirmation stands between the event and the
    // claim's end (a crash there is the one that sends the event twice).
    await gs.conversations.touch(tenant, conversationId, { lastMessageId: message.id, lastMessageAt: message.receivedDateTime ?? now });
    faultPoint('graph.mail.touch');
    const data = commentFromEmail(message, ctx.mailbox.address, { ticketRef: conversation.ticketRef, ticketId: conversation.ticketId });
    const ev = await gs.services.events.publish({ tenantId: tenant, integrationId: integration, name: COMMENT_EVENT, connector: CONNECTOR, subject: `conversations/${conversationId}`, idParts: [integration, key], data, dataSchema: ticketCommentSchema });
    eventId = ev.id;
  }
  faultPoint('graph.mail.publish');
  log.info('graph mail published', { event: isNew ? CREATE_EVENT : COMMENT_EVENT, eventId, via: item.via });
  return { outcome: isNew ? 'created' : 'commented', eventId };
}

/** The timer's fan-out: one `maintain` job per watched mailbox of every tenant. */
export async function queueMaintenance(gs: GraphServices, log: Logger): Promise<number> {
  let n = 0;
  for await (const m of gs.mailboxes.allTenants()) {
    const job: GraphWorkItemInput = { kind: 'maintain', tenantId: m.tenantId, integrationId: m.integrationId, mailbox: m.address };
    await gs.services.queues.send(QUEUES.graphNotifications, job);
    n++;
  }
  log.info('graph maintenance queued', { mailboxes: n });
  return n;
}
