import { ensureError } from '../../platform/errors';
import { faultPoint } from '../../platform/faultPoints';
import type { Logger } from '../../platform/logging';
import type { TenantId } from '../../storage/keys';
import type { ProcessedStore } from '../../storage/repositories/processed';
import { QUEUES } from '../../storage/names';
import { encodeQueueMessage, type QueueSender } from '../../storage/queueSender';
import type { StorageClients } from '../../storage/clients';
import { RetryAfterTooLongError, staleClaimMs } from '../base';
import { buildEnvelope } from './cards';
import type { ChannelStore, PostOutcome } from './channelStore';
import type { TeamsState } from './floodControl';
import { FALLBACK_CHANNEL, notificationCreatedAt, type NotificationLog, type NotificationRecord } from './notificationLog';
import type { CardMessage } from './schemas';
import { RateLimitWaitError, WebhookPostError, type PostTarget, type WebhookSender } from './sender';
import type { SnoozeLinks } from './snooze';
import { parseWebhookUrl } from './webhookUrl';

/** host.json `extensions.queues.maxDequeueCount`; a unit test keeps the two equal. */
export const MAX_DEQUEUE_COUNT = 5;
export const PROCESSED_SOURCE = 'teams-card';
/** Rate-limit key of the deployment's fallback webhook (shared by every tenant that uses it). */
export const FALLBACK_LIMIT_KEY = 'app-teams-fallback';
/** Each tenant's own quota on the fallback webhook, so one tenant's volume cannot use up everyone's. */
export const fallbackQuotaKey = (tenant: TenantId): string => `app-teams-fallback:${tenant}`;
/** A message put back for later this many times (rate limits) is treated as failed. */
export const MAX_DEFERRALS = 20;

export interface DeliverDeps {
  channels: ChannelStore;
  log: NotificationLog;
  state: TeamsState;
  snooze: SnoozeLinks;
  sender: WebhookSender;
  processed: ProcessedStore;
  queues: QueueSender;
  storage: StorageClients;
  fallbackUrl: string | undefined;
  allowLoopback: boolean;
  /** The function timeout (config `functionTimeoutMs`): a claim goes stale a tenth after it. */
  functionTimeoutMs: number;
  now?: () => number;
}

export interface DeliverContext {
  log: Logger;
  dequeueCount: number;
}

export type DeliverOutcome = 'sent' | 'duplicate' | 'missing' | 'suppressed' | 'deferred' | 'poisoned' | 'waiting';

/** A card whose notification is still not recorded this long after its id was made will never be. */
export const MISSING_RECORD_GRACE_MS = 2 * 60_000;

/** Delays of a message that found another attempt's claim on its notification: 5 s, doubling, at most 2 min. */
const WAIT_BASE_SECONDS = 5;
const WAIT_MAX_SECONDS = 120;
/** Far more than the waits until a claim goes stale (11 min at these delays is about 10). */
export const MAX_CLAIM_WAITS = 30;

/**
 * Turns one `teams-cards` message into one card in one channel:
 * - a provisional claim in `Processed` stops two copies of the message from posting at the same time;
 *   it is given back when the post fails (so the runtime's retry can post) and confirmed once the
 *   notification says `sent`;
 * - a copy that finds the claim held while the notification is still `queued` cannot tell a live holder
 *   from a dead one, so it is never completed as a duplicate: it is put back on the queue, delayed, and
 *   comes back until the holder has finished (then it is a duplicate) or its claim is stale (then it
 *   takes over and posts);
 * - retryable failures are thrown (the runtime retries, then moves the message to `teams-cards-poison`);
 *   before the last attempt fails, the reason is written to the notification and the channel is marked
 *   failing; a refusal that retrying cannot fix (4xx) goes to the poison queue at once;
 * - a wait for the rate limiter longer than the invocation may take puts the message back, delayed.
 *
 * A crash after Teams accepted the post but before `sent` was written cannot be told apart from a crash
 * before the post: Teams webhooks take no idempotency key and cannot be asked what they showed. The
 * notification then still says `queued` with an attempt open (`attemptOpen`), and the copy that takes
 * the stale claim over posts again, with a "possible repeat" line on the card: one repeat per such crash,
 * flagged, rather than a card that may never have been shown.
 */
export async function deliverCard(deps: DeliverDeps, msg: CardMessage, ctx: DeliverContext): Promise<DeliverOutcome> {
  const now = deps.now ?? Date.now;
  const log = ctx.log.child({ notificationId: msg.notificationId });

  const claimed = await claim(deps, msg, log);
  if (claimed !== 'claimed') return claimed;
  faultPoint('teams.card.claimed');
  let outcome: DeliverOutcome;
  try {
    outcome = await deliverClaimed(deps, msg, ctx.dequeueCount, log, now);
  } catch (err) {
    await release(deps, msg, log);
    throw err;
  }
  // Not delivered: give the claim back, so a later copy (a deferred message, or one an operator moves
  // back from the poison queue) can post.
  if (outcome === 'deferred' || outcome === 'poisoned') await release(deps, msg, log);
  else {
    await deps.processed.confirm(PROCESSED_SOURCE, msg.tenantId, [msg.notificationId]).catch((e: unknown) => log.warn('could not confirm the claim', { error: ensureError(e) }));
    faultPoint('teams.card.confirmed');
  }
  return outcome;
}

async function deliverClaimed(deps: DeliverDeps, msg: CardMessage, dequeueCount: number, log: Logger, now: () => number): Promise<DeliverOutcome> {
  const tenant = msg.tenantId;
  const id = msg.notificationId;
  const record = await deps.log.get(tenant, id);
  if (!record) {
    // The record is written right after the message: it may be on its way. Past the grace, its request died
    // between the two, was answered with an error, and the engine sent the notification again.
    const age = now() - notificationCreatedAt(id);
    if (age < MISSING_RECORD_GRACE_MS) {
      const delaySeconds = Math.min(30, Math.max(2, Math.ceil(age / 1000)));
      await deps.queues.send(QUEUES.teamsCards, { ...msg, claimWaits: (msg.claimWaits ?? 0) + 1 }, { visibilityTimeoutSeconds: delaySeconds });
      log.info('notification not recorded yet; card retried later', { delaySeconds });
      return 'deferred';
    }
    log.warn('notification record not found; nothing to send');
    return 'missing';
  }
  if (record.status === 'sent') return 'duplicate';

  const n = record.notification;
  if (n.kind === 'sla_warning') {
    const until = await deps.state.snoozedUntil(tenant, n.ticket.id);
    if (until !== undefined) {
      await deps.log.update(tenant, id, { status: 'suppressed', reason: `snoozed until ${new Date(until).toISOString()}` });
      if (record.floodKey) await deps.state.closeWindow(tenant, record.floodKey, id);
      log.info('card suppressed: ticket snoozed');
      return 'suppressed';
    }
  }

  const target = await resolveTarget(deps, tenant, record);
  if (typeof target === 'string') {
    await fail(deps, tenant, record, target, { final: true, log });
    await toPoison(deps, msg);
    return 'poisoned';
  }

  // The card stands for the whole window so far, and shows its latest facts.
  const settings = await deps.state.settings(tenant);
  const window = record.floodKey ? await deps.state.window(tenant, record.floodKey, id) : undefined;
  const latest = window && window.latestNotificationId !== id ? await deps.log.get(tenant, window.latestNotificationId) : undefined;
  const facts = latest?.notification.kind === n.kind ? latest.notification : n;
  const count = window?.count ?? 1;
  // No snooze link in the shared fallback channel: anyone there could snooze another tenant's ticket.
  const snoozeUrl = facts.kind === 'sla_warning' && record.channel !== FALLBACK_CHANNEL ? await deps.snooze.link(tenant, facts.ticket.id, id) : undefined;
  // An earlier attempt started posting and never said how it ended: Teams may already show its card.
  const possibleRepeat = record.attemptOpen === true;
  const { envelope, bytes, truncated } = buildEnvelope(facts, {
    possibleRepeat,
    notificationId: id,
    count,
    windowMinutes: settings.floodWindowMinutes,
    createdAt: new Date(record.createdAt),
    snoozeUrl,
  });

  const attemptsBefore = record.attempts ?? 0;
  await deps.log.update(tenant, id, { lastAttemptAt: new Date(now()).toISOString(), attemptOpen: true });
  faultPoint('teams.card.attempt-opened');
  try {
    const result = await deps.sender.post(target, envelope, {
      onRetry: (attempt, delayMs, reason) => log.info('retrying Teams post', { attempt, delayMs: Math.round(delayMs), reason }),
      onSlotWait: (attempt) => log.info('Teams post waiting for a rate-limit slot', { attempt, channel: record.channel }),
      onSlowSlot: (attempt, waitedMs) => log.info('Teams post waited for a rate-limit slot', { attempt, waitedMs }),
      onAttempt: (attempt) => log.info('posting card', { attempt, channel: record.channel, count }),
    });
    faultPoint('teams.card.posted');
    const at = new Date(now());
    await deps.log.update(tenant, id, { status: 'sent', sentAt: at.toISOString(), count, truncated, attempts: attemptsBefore + result.attempts, reason: '', attemptOpen: false, ...(possibleRepeat ? { possibleRepeat } : {}) });
    faultPoint('teams.card.recorded');
    await recordOutcome(deps, tenant, record, { ok: true, at });
    faultPoint('teams.card.outcome-recorded');
    log.info('card sent', { channel: record.channel, count, bytes, truncated, attempts: result.attempts, status: result.status, ...(possibleRepeat ? { possibleRepeat } : {}) });
    return 'sent';
  } catch (err) {
    const waitTooLong = err instanceof RateLimitWaitError || err instanceof RetryAfterTooLongError;
    if (waitTooLong) {
      const deferrals = (msg.deferrals ?? 0) + 1;
      if (deferrals <= MAX_DEFERRALS) {
        const delaySeconds = err instanceof RetryAfterTooLongError ? Math.ceil(err.retryAfterMs / 1000) : 60;
        await deps.queues.send(QUEUES.teamsCards, { ...msg, deferrals }, { visibilityTimeoutSeconds: Math.min(Math.max(delaySeconds, 1), 7200) });
        log.warn('card deferred by rate limits', { deferrals, delaySeconds });
        return 'deferred';
      }
    }
    const reason = describe(err);
    const permanent = (err instanceof WebhookPostError && !err.retryable) || waitTooLong;
    const final = permanent || dequeueCount >= MAX_DEQUEUE_COUNT;
    await deps.log.update(tenant, id, { attempts: attemptsBefore + attemptsOf(err), attemptOpen: false });
    await fail(deps, tenant, record, reason, { final, log });
    if (permanent) {
      await toPoison(deps, msg);
      return 'poisoned';
    }
    throw new Error(`Teams post failed: ${reason}`);
  }
}

async function release(deps: DeliverDeps, msg: CardMessage, log: Logger): Promise<void> {
  await deps.processed.release(PROCESSED_SOURCE, msg.tenantId, msg.notificationId).catch((e: unknown) => log.warn('could not release the claim', { error: ensureError(e) }));
}

/**
 * `claimed`: this invocation may post. Otherwise what became of the message: a duplicate of a finished
 * notification, or put back for later (`waiting`) because another attempt holds an unconfirmed claim.
 */
async function claim(deps: DeliverDeps, msg: CardMessage, log: Logger): Promise<'claimed' | 'duplicate' | 'waiting'> {
  const held = await deps.processed.claimProvisional(PROCESSED_SOURCE, msg.tenantId, msg.notificationId, { staleAfterMs: staleClaimMs(deps.functionTimeoutMs) });
  if (held === 'claimed') return 'claimed';
  const record = await deps.log.get(msg.tenantId, msg.notificationId);
  if (record?.status !== 'queued') {
    log.info('duplicate card delivery skipped');
    return 'duplicate';
  }
  if (held === 'done' && isStale(record, staleClaimMs(deps.functionTimeoutMs), deps.now ?? Date.now)) {
    // A plain claim written before claims were provisional, on a card that never went out: its holder died.
    await deps.processed.release(PROCESSED_SOURCE, msg.tenantId, msg.notificationId);
    if ((await deps.processed.claimProvisional(PROCESSED_SOURCE, msg.tenantId, msg.notificationId, { staleAfterMs: staleClaimMs(deps.functionTimeoutMs) })) === 'claimed') return 'claimed';
  }
  // Still queued: the holder may be at work, or dead with its post unconfirmed. Come back later; the
  // copy on the queue is durable before this one is completed (a failed send throws: this one returns).
  const waits = (msg.claimWaits ?? 0) + 1;
  if (waits > MAX_CLAIM_WAITS) {
    await deps.log.update(msg.tenantId, msg.notificationId, { reason: 'another delivery attempt held the card for too long' });
    await toPoison(deps, msg);
    log.error('card delivery held by another attempt for too long; moved to poison', { waits });
    return 'waiting';
  }
  const delaySeconds = Math.min(WAIT_MAX_SECONDS, WAIT_BASE_SECONDS * 2 ** (waits - 1));
  await deps.queues.send(QUEUES.teamsCards, { ...msg, claimWaits: waits }, { visibilityTimeoutSeconds: delaySeconds });
  faultPoint('teams.card.wait-requeued');
  log.info('card held by another delivery attempt; retrying later', { waits, delaySeconds });
  return 'waiting';
}

function isStale(record: NotificationRecord, staleMs: number, now: () => number): boolean {
  const last = Date.parse(record.lastAttemptAt ?? record.createdAt);
  return !Number.isNaN(last) && now() - last >= staleMs;
}

/** Where to post, or why there is nowhere to post (a reason: nothing a retry can fix). */
async function resolveTarget(deps: DeliverDeps, tenant: TenantId, record: NotificationRecord): Promise<PostTarget | string> {
  if (record.channel === FALLBACK_CHANNEL) {
    if (!deps.fallbackUrl) return 'the fallback webhook is no longer configured';
    // Opted out (or never in) since the card was queued: its content must not reach the shared channel.
    if (!(await deps.state.settings(tenant)).useFallback) return 'the tenant does not use the fallback webhook';
    try {
      const t = parseWebhookUrl(deps.fallbackUrl, { allowLoopback: deps.allowLoopback });
      return { key: FALLBACK_LIMIT_KEY, quotaKey: fallbackQuotaKey(tenant), url: t.url, kind: t.kind };
    } catch {
      return 'the fallback webhook URL is not an accepted Teams webhook URL';
    }
  }
  const channel = await deps.channels.get(tenant, record.channel);
  if (!channel) return `channel ${record.channel} was removed`;
  const url = await deps.channels.webhookUrl(channel);
  if (!url) return `channel ${record.channel} has no webhook URL stored`;
  return { key: channel.secretName, url, kind: channel.kind };
}

/**
 * Writes down a failed attempt: on the notification always, and on the channel. A final failure (the
 * message is about to be poisoned) marks the notification failed, the channel failing (which turns the
 * tenant's Teams integration to `error`), and closes the flood window the card would have stood for.
 */
async function fail(deps: DeliverDeps, tenant: TenantId, record: NotificationRecord, reason: string, opts: { final: boolean; log: Logger }): Promise<void> {
  const at = new Date((deps.now ?? Date.now)());
  await deps.log.update(tenant, record.id, { reason, ...(opts.final ? { status: 'failed' as const } : {}) });
  await recordOutcome(deps, tenant, record, { ok: false, at, reason, failing: opts.final });
  if (opts.final && record.floodKey) await deps.state.closeWindow(tenant, record.floodKey, record.id);
  if (opts.final) opts.log.error('card could not be delivered', { channel: record.channel, reason });
  else opts.log.warn('card delivery failed; the runtime will retry', { channel: record.channel, reason });
}

async function recordOutcome(deps: DeliverDeps, tenant: TenantId, record: NotificationRecord, outcome: PostOutcome): Promise<void> {
  if (record.channel === FALLBACK_CHANNEL) {
    await deps.state.recordFallbackOutcome(tenant, outcome.ok ? { ok: true, at: outcome.at } : { ok: false, at: outcome.at, reason: outcome.reason });
    return;
  }
  await deps.channels.recordOutcome(tenant, record.channel, outcome);
}

/** As the runtime would after the last attempt: the original message, unchanged, on `teams-cards-poison`. */
async function toPoison(deps: DeliverDeps, msg: CardMessage): Promise<void> {
  const poison = deps.storage.queue(`${QUEUES.teamsCards}-poison`);
  await poison.createIfNotExists();
  await poison.sendMessage(encodeQueueMessage(msg));
}

function describe(err: unknown): string {
  if (err instanceof WebhookPostError) return err.message;
  if (err instanceof RateLimitWaitError) return `rate limited for longer than allowed (${MAX_DEFERRALS} deferrals)`;
  if (err instanceof RetryAfterTooLongError) return `Teams asked to wait ${Math.ceil(err.retryAfterMs / 1000)} s, ${MAX_DEFERRALS} times`;
  return 'unexpected error while posting';
}

function attemptsOf(err: unknown): number {
  if (err instanceof RetryAfterTooLongError || err instanceof WebhookPostError) return err.attempts;
  return 1;
}
