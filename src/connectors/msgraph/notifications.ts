import { z } from 'zod';
import type { Logger } from '../../platform/logging';
import { QUEUES } from '../../storage';
import { ENTRA_TENANT_ID } from './client';
import type { GraphServices } from './services';
import type { Subscription } from './store';
import { LIFECYCLE_EVENTS, type GraphWorkItemInput } from './workItems';

/** Graph batches notifications; a sane delivery is far below this. */
export const MAX_NOTIFICATION_BYTES = 1024 * 1024;
/** Validation tokens are short opaque strings; anything longer is not Graph. */
export const MAX_VALIDATION_TOKEN_LENGTH = 1024;

const itemSchema = z
  .object({
    subscriptionId: z.string().min(1).max(128),
    clientState: z.string().max(256).nullish(),
    tenantId: z.string().max(64).nullish(),
    changeType: z.string().max(64).nullish(),
    resource: z.string().max(2048).nullish(),
    resourceData: z.object({ id: z.string().min(1).max(1024) }).loose().nullish(),
    lifecycleEvent: z.string().max(64).nullish(),
  })
  .loose();

const payloadSchema = z.object({ value: z.array(z.unknown()).max(1000) }).loose();

export type NotificationKind = 'change' | 'lifecycle';

export interface AcceptResult {
  /** 400 for a body that is not a Graph delivery; otherwise 202 (also when every item was dropped). */
  status: 202 | 400;
  queued: number;
  dropped: number;
}

/**
 * Finds the subscription a notification names, in the tenants linked to the Entra tenant it claims,
 * and checks its clientState against the stored hash in constant time. Unknown subscription, wrong
 * tenant or wrong clientState all look the same from outside: dropped, logged, never processed.
 */
async function verifiedSubscription(gs: GraphServices, item: z.infer<typeof itemSchema>): Promise<{ sub?: Subscription; reason?: string }> {
  const entra = (item.tenantId ?? '').toLowerCase();
  if (!ENTRA_TENANT_ID.test(entra)) return { reason: 'no Entra tenant id' };
  const links = await gs.accountIndex.lookup(entra);
  for (const link of links) {
    const sub = await gs.subscriptionsRepo.get(link.tenantId, item.subscriptionId);
    if (!sub || sub.integrationId !== link.integrationId || sub.entraTenantId.toLowerCase() !== entra) continue;
    const ok = await gs.subscriptions.verify(link.tenantId, item.subscriptionId, item.clientState);
    return ok ? { sub: ok } : { reason: 'clientState mismatch' };
  }
  return { reason: 'unknown subscription' };
}

/**
 * Accepts a change or lifecycle delivery: every verified item becomes a work item on
 * `graph-notifications`; the HTTP answer (202) goes back as soon as they are queued, well inside
 * Graph's 3 s. A queue failure propagates (→ 5xx) so that Graph redelivers.
 */
export async function acceptNotifications(gs: GraphServices, raw: string, kind: NotificationKind, log: Logger): Promise<AcceptResult> {
  let json: unknown;
  try {
    json = JSON.parse(raw);
  } catch {
    log.warn('graph notification rejected: malformed JSON', { kind, bytes: raw.length });
    return { status: 400, queued: 0, dropped: 0 };
  }
  const payload = payloadSchema.safeParse(json);
  if (!payload.success) {
    log.warn('graph notification rejected: not a Graph delivery', { kind });
    return { status: 400, queued: 0, dropped: 0 };
  }
  const results = await Promise.all(
    payload.data.value.map(async (rawItem, index): Promise<GraphWorkItemInput | undefined> => {
      const parsed = itemSchema.safeParse(rawItem);
      if (!parsed.success) {
        log.warn('graph notification dropped', { kind, index, reason: 'malformed item' });
        return undefined;
      }
      const item = parsed.data;
      const { sub, reason } = await verifiedSubscription(gs, item);
      if (!sub) {
        // The ids are opaque and safe to log; the clientState never is.
        log.warn('graph notification dropped', { kind, index, reason, subscriptionId: item.subscriptionId });
        return undefined;
      }
      const ids = { tenantId: sub.tenantId, integrationId: sub.integrationId, mailbox: sub.mailbox };
      if (kind === 'lifecycle') {
        const event = LIFECYCLE_EVENTS.find((e) => e === item.lifecycleEvent);
        if (!event) {
          log.warn('graph lifecycle notification dropped', { index, reason: 'unknown lifecycle event', tenantId: sub.tenantId, subscriptionId: sub.subscriptionId });
          return undefined;
        }
        return { kind: 'lifecycle', ...ids, subscriptionId: sub.subscriptionId, event };
      }
      const messageId = item.resourceData?.id;
      if (!messageId || (item.changeType && !item.changeType.includes('created'))) {
        log.info('graph notification ignored', { index, reason: 'not a created message', tenantId: sub.tenantId, changeType: item.changeType });
        return undefined;
      }
      return { kind: 'message', ...ids, messageId, via: 'notification', subscriptionId: sub.subscriptionId };
    }),
  );
  const items = results.filter((r): r is GraphWorkItemInput => r !== undefined);
  await Promise.all(items.map((i) => gs.services.queues.send(QUEUES.graphNotifications, i)));
  for (const i of items) log.info('graph notification queued', { kind, tenantId: i.tenantId, integrationId: i.integrationId, work: i.kind });
  return { status: 202, queued: items.length, dropped: payload.data.value.length - items.length };
}
