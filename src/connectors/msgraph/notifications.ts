import { randomUUID } from 'node:crypto';
import { z } from 'zod';
import type { Logger } from '../../platform/logging';
import { QUEUES, splitIntoMessages } from '../../storage';
import { ENTRA_TENANT_ID } from './client';
import type { GraphServices } from './services';
import { clientStateHash } from './subscriptions';
import { LIFECYCLE_EVENTS } from './workItems';
import { faultPoint } from '../../platform/faultPoints';

/** Graph batches notifications; a sane delivery is far below this. */
export const MAX_NOTIFICATION_BYTES = 1024 * 1024;
/** Validation tokens are short opaque strings; anything longer is not Graph. */
export const MAX_VALIDATION_TOKEN_LENGTH = 1024;
/**
 * Items per delivery. Microsoft documents no maximum ("if there are many queued notifications,
 * Microsoft Graph sends them in a single request"), so this is our bound, not Graph's; refusing a real
 * batch would lose its notifications, hence generous. What keeps a large batch cheap is that the
 * intake reads nothing per item.
 */
export const MAX_NOTIFICATION_ITEMS = 1000;

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

const payloadSchema = z.object({ value: z.array(z.unknown()).max(MAX_NOTIFICATION_ITEMS) }).loose();

export type NotificationKind = 'change' | 'lifecycle';

/**
 * One item as queued at intake: only what the router needs. The clientState travels as its SHA-256
 * (what the Subscriptions table stores), never itself: queue messages carry no secrets.
 */
export const graphDeliveryItemSchema = z.object({
  subscriptionId: z.string().min(1).max(128),
  entraTenantId: z.string().regex(ENTRA_TENANT_ID),
  clientStateHash: z.string().regex(/^[0-9a-f]{64}$/),
  messageId: z.string().min(1).max(1024).optional(),
  lifecycleEvent: z.enum(LIFECYCLE_EVENTS).optional(),
});
export type GraphDeliveryItem = z.infer<typeof graphDeliveryItemSchema>;

/**
 * A message on `graph-webhooks`: (part of) one notification delivery, before its subscriptions are
 * checked. Scoped by the Entra tenants its items claim, not by a tenant of ours: only the router
 * resolves them (AccountIndex + Subscriptions) and what it writes onwards names its tenant.
 */
export const graphDeliveryMessageSchema = z.object({
  source: z.literal('msgraph'),
  kind: z.enum(['change', 'lifecycle']),
  deliveryId: z.string().min(1).max(128),
  part: z.number().int().nonnegative(),
  receivedAt: z.number().int().nonnegative(),
  items: z.array(graphDeliveryItemSchema).min(1).max(MAX_NOTIFICATION_ITEMS),
});
export type GraphDeliveryMessage = z.infer<typeof graphDeliveryMessageSchema>;

export interface AcceptResult {
  /** 400 for a body that is not a Graph delivery; otherwise 202 (also when every item was dropped). */
  status: 202 | 400;
  /** Items written to `graph-webhooks`. */
  queued: number;
  /** Items that cannot be ours, dropped without a read. */
  dropped: number;
  messages: number;
}

/** At most this many items are logged one by one per delivery; the rest only in the counts. */
const ITEM_LOGS = 10;

/**
 * Accepts a change or lifecycle delivery with no per-item storage work: the body is checked for shape,
 * items that cannot be ours are dropped on sight (no Entra tenant id, no clientState, not a created
 * message, an unknown lifecycle event), and the rest is written to `graph-webhooks` as one message (a
 * few past 64 KiB), after which 202 goes back, well inside Graph's 3 s. Subscriptions and clientStates
 * are checked by the router (`routeNotifications`). A queue failure propagates (→ 5xx) so that Graph
 * redelivers.
 */
export async function acceptNotifications(gs: GraphServices, raw: string, kind: NotificationKind, log: Logger): Promise<AcceptResult> {
  let json: unknown;
  try {
    json = JSON.parse(raw);
  } catch {
    log.warn('graph notification rejected: malformed JSON', { kind, bytes: raw.length });
    return { status: 400, queued: 0, dropped: 0, messages: 0 };
  }
  const payload = payloadSchema.safeParse(json);
  if (!payload.success) {
    log.warn('graph notification rejected: not a Graph delivery', { kind });
    return { status: 400, queued: 0, dropped: 0, messages: 0 };
  }
  const items: GraphDeliveryItem[] = [];
  const reasons = new Map<string, number>();
  payload.data.value.forEach((rawItem, index) => {
    const outcome = slim(rawItem, kind);
    if ('item' in outcome) return void items.push(outcome.item);
    reasons.set(outcome.reason, (reasons.get(outcome.reason) ?? 0) + 1);
    if (index < ITEM_LOGS) log.warn('graph notification dropped', { kind, index, reason: outcome.reason, ...(outcome.subscriptionId ? { subscriptionId: outcome.subscriptionId } : {}) });
  });
  const deliveryId = randomUUID();
  const receivedAt = Date.now();
  const parts = splitIntoMessages(QUEUES.graphWebhooks, items, (part, index): GraphDeliveryMessage => ({ source: 'msgraph', kind, deliveryId, part: index, receivedAt, items: part }));
  await Promise.all(parts.map((m) => gs.services.queues.sendIntake(QUEUES.graphWebhooks, m)));
  faultPoint('graph.intake.queued');
  const dropped = payload.data.value.length - items.length;
  log.info('graph notification delivery accepted', { kind, deliveryId, items: payload.data.value.length, queued: items.length, dropped, messages: parts.length, ...(dropped > 0 ? { reasons: Object.fromEntries(reasons) } : {}) });
  return { status: 202, queued: items.length, dropped, messages: parts.length };
}

/** An item as queued, or why it cannot be ours. Pure: no storage, no secrets kept. */
function slim(rawItem: unknown, kind: NotificationKind): { item: GraphDeliveryItem } | { reason: string; subscriptionId?: string } {
  const parsed = itemSchema.safeParse(rawItem);
  if (!parsed.success) return { reason: 'malformed item' };
  const item = parsed.data;
  const ids = { subscriptionId: item.subscriptionId };
  const entra = (item.tenantId ?? '').toLowerCase();
  if (!ENTRA_TENANT_ID.test(entra)) return { reason: 'no Entra tenant id', ...ids };
  // Every subscription of ours has a clientState; none at all cannot match (as a wrong one cannot).
  if (typeof item.clientState !== 'string' || item.clientState.length === 0) return { reason: 'clientState mismatch', ...ids };
  const base = { subscriptionId: item.subscriptionId, entraTenantId: entra, clientStateHash: clientStateHash(item.clientState) };
  if (kind === 'lifecycle') {
    const event = LIFECYCLE_EVENTS.find((e) => e === item.lifecycleEvent);
    if (!event) return { reason: 'unknown lifecycle event', ...ids };
    return { item: { ...base, lifecycleEvent: event } };
  }
  const messageId = item.resourceData?.id;
  if (!messageId || (item.changeType && !item.changeType.includes('created'))) return { reason: 'not a created message', ...ids };
  return { item: { ...base, messageId } };
}
