import { AppError, ConflictError, ensureError } from '../../platform/errors';
import { faultPoint } from '../../platform/faultPoints';
import type { Logger } from '../../platform/logging';
import type { TenantId } from '../../storage/keys';
import { QUEUES } from '../../storage/names';
import type { QueueSender } from '../../storage/queueSender';
import type { ChannelStore } from './channelStore';
import type { TeamsState } from './floodControl';
import { FALLBACK_CHANNEL, newNotificationId, type NotificationLog, type NotificationRecord } from './notificationLog';
import { KIND_CHANNELS, route } from './routing';
import { teamChannelName, type CardMessage, type Notification } from './schemas';

export interface NotifyDeps {
  channels: ChannelStore;
  log: NotificationLog;
  state: TeamsState;
  queues: QueueSender;
  /** The deployment has a fallback webhook; a tenant's notifications use it only if it opted in. */
  fallbackAvailable: boolean;
  now?: () => number;
}

export type NotifyResult = {
  notificationId: string;
  channel: string;
} & (
  | { status: 'queued' }
  | { status: 'collapsed'; collapsedInto: string; count: number }
  | { status: 'suppressed'; reason: 'snoozed'; snoozedUntil: string }
);

export class NoChannelError extends AppError {
  constructor(n: Notification) {
    const wanted = [...(n.ticket.team ? [teamChannelName(n.ticket.team) ?? 'team-…'] : []), ...KIND_CHANNELS[n.kind]];
    super({
      status: 422,
      code: 'teams-no-channel',
      title: 'No Teams channel for this notification',
      detail: wanted.length > 0 ? `Configure one of these channels: ${wanted.join(', ')}.` : 'Configure a team channel for the ticket\'s team.',
    });
  }
}

/**
 * Accepts one notification from the engine: routes it, applies snooze and flood control, records it, and
 * queues its card. Only the first notification of a window is queued, after `gather_seconds`, so the
 * card it becomes can count the burst it stands for. SLA breaches skip both snooze and flood control:
 * they are never suppressed.
 */
export async function acceptNotification(deps: NotifyDeps, tenant: TenantId, n: Notification, opts: { correlationId: string; log: Logger; idempotencyKey?: string | undefined }): Promise<NotifyResult> {
  const now = deps.now ?? Date.now;
  const [channels, settings] = await Promise.all([deps.channels.list(tenant), deps.state.settings(tenant)]);
  const target = route(n, channels, deps.fallbackAvailable && settings.useFallback);
  if (!target) throw new NoChannelError(n);
  const channel = target.to === 'channel' ? target.channel.name : FALLBACK_CHANNEL;
  const key = opts.idempotencyKey;
  const id = key ? await deps.state.idempotentId(tenant, key, newNotificationId(now())) : newNotificationId(now());
  if (key) {
    // A retry of a request that got as far as recording its notification: answer what it decided.
    const earlier = await deps.log.get(tenant, id);
    if (earlier) return resultOf(earlier);
  }
  const base = {
    kind: n.kind,
    ticketId: n.ticket.id,
    channel,
    createdAt: new Date(now()).toISOString(),
    payload: JSON.stringify(n),
    correlationId: opts.correlationId,
  };

  if (n.kind === 'sla_warning') {
    const until = await deps.state.snoozedUntil(tenant, n.ticket.id);
    if (until !== undefined) {
      const snoozedUntil = new Date(until).toISOString();
      await createOnce(deps, tenant, id, { ...base, status: 'suppressed', reason: `snoozed until ${snoozedUntil}` });
      return { notificationId: id, channel, status: 'suppressed', reason: 'snoozed', snoozedUntil };
    }
  }

  const collapsible = n.kind !== 'sla_breach';
  const admission = collapsible
    ? await deps.state.admit(tenant, n.kind, floodSubject(n), id, settings.floodWindowMinutes * 60_000, { openerRecorded: async (opener) => (await deps.log.get(tenant, opener)) !== undefined })
    : undefined;
  faultPoint('teams.notify.admitted');

  if (admission?.decision === 'collapsed') {
    await createOnce(deps, tenant, id, { ...base, status: 'collapsed', collapsedInto: admission.into, floodKey: admission.floodKey, count: admission.count });
    return { notificationId: id, channel, status: 'collapsed', collapsedInto: admission.into, count: admission.count };
  }
  if (admission?.tookOverFrom) opts.log.warn('flood window taken over from a notification that was never recorded', { notificationId: id, deadOpener: admission.tookOverFrom });

  // The message first, then the record: a recorded notification always has its message, which is what
  // lets a later notification tell a dead window opener (no record) from a live one (`admit`). The sender
  // waits for a record that is not there yet (`deliverCard`).
  const message: CardMessage = { tenantId: tenant, notificationId: id, correlationId: opts.correlationId };
  try {
    await deps.queues.send(QUEUES.teamsCards, message, collapsible && settings.gatherSeconds > 0 ? { visibilityTimeoutSeconds: settings.gatherSeconds } : {});
  } catch (err) {
    // Without its message the card never goes out; don't leave a window that would swallow the next ones.
    opts.log.error('could not queue the card', { notificationId: id, error: ensureError(err) });
    if (admission) await deps.state.closeWindow(tenant, admission.floodKey, id);
    if (key) await deps.state.forgetIdempotencyKey(tenant, key, id);
    else await deps.log.create(tenant, id, { ...base, status: 'failed', reason: 'could not be queued' });
    throw err;
  }
  faultPoint('teams.notify.queued');
  await createOnce(deps, tenant, id, { ...base, status: 'queued', attempts: 0, ...(admission ? { floodKey: admission.floodKey } : {}) });
  faultPoint('teams.notify.recorded');
  return { notificationId: id, channel, status: 'queued' };
}

/** What repeats are counted by: the ticket, and for an assignment also who it went to (a reassignment is news). */
function floodSubject(n: Notification): string {
  if (n.kind !== 'assignment' || !n.ticket.assignee) return n.ticket.id;
  return `${n.ticket.id}:${n.ticket.assignee.aad_object_id ?? n.ticket.assignee.email ?? ''}`;
}

/** A record written once: a retry under the same Idempotency-Key that finds it written keeps the first. */
async function createOnce(deps: NotifyDeps, tenant: TenantId, id: string, row: Parameters<NotificationLog['create']>[2]): Promise<void> {
  try {
    await deps.log.create(tenant, id, row);
  } catch (err) {
    if (!(err instanceof ConflictError)) throw err;
  }
}

/** What an earlier request under the same Idempotency-Key decided, from its record. */
function resultOf(r: NotificationRecord): NotifyResult {
  if (r.status === 'collapsed' && r.collapsedInto) return { notificationId: r.id, channel: r.channel, status: 'collapsed', collapsedInto: r.collapsedInto, count: r.count ?? 2 };
  if (r.status === 'suppressed') {
    const until = /^snoozed until (.+)$/.exec(r.reason ?? '')?.[1] ?? r.createdAt;
    return { notificationId: r.id, channel: r.channel, status: 'suppressed', reason: 'snoozed', snoozedUntil: until };
  }
  return { notificationId: r.id, channel: r.channel, status: 'queued' };
}
