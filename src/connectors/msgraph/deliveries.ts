import { timingSafeEqual } from 'node:crypto';
import { faultPoint } from '../../platform/faultPoints';
import { limiter } from '../../platform/limiter';
import type { Logger } from '../../platform/logging';
import { QUEUES, splitIntoMessages } from '../../storage';
import type { GraphDeliveryItem, GraphDeliveryMessage } from './notifications';
import type { GraphServices } from './services';
import type { AccountLink, EntraLinkCache, Subscription } from './store';
import { MAX_MESSAGES_PER_ITEM, type GraphWorkItemInput } from './workItems';

/** Table reads (AccountIndex, Subscriptions) and queue writes in flight per delivery. */
export const ROUTE_CONCURRENCY = 8;
const ITEM_LOGS = 10;

export interface RouteResult {
  items: number;
  queued: number;
  dropped: number;
  /** Table reads this delivery cost (AccountIndex partitions + subscription rows). */
  reads: number;
  /** Queue messages written to `graph-notifications`. */
  messages: number;
}


/**
 * The `graph-webhooks` router: checks each queued item against our subscriptions and turns the genuine
 * ones into `graph-notifications` work items, as the intake used to do before answering. Reads are
 * bounded: one AccountIndex read per distinct Entra tenant (cached per instance), one Subscriptions read
 * per distinct (tenant, subscription) of the delivery, at most `ROUTE_CONCURRENCY` at a time.
 * The AccountIndex cache is forgotten for an Entra tenant when this instance links or unlinks it; another
 * instance's link is seen within `LINKS_TTL_MS`, and a notification dropped meanwhile is recovered by the
 * delta backstop. Unknown subscription, wrong tenant or wrong clientState all end the same: dropped, counted, logged
 * (the first few), never processed. A redelivered message queues the same work items again, which the
 * mail worker absorbs (it claims per message id).
 */
export async function routeNotifications(gs: GraphServices, message: GraphDeliveryMessage, log: Logger, cache: EntraLinkCache = gs.accountIndex.cache): Promise<RouteResult> {
  const result: RouteResult = { items: message.items.length, queued: 0, dropped: 0, reads: 0, messages: 0 };
  const subs = new Map<string, Promise<Subscription | undefined>>();
  const limit = limiter(ROUTE_CONCURRENCY);

  const linksOf = (entra: string) => {
    const { links, miss } = cache.get(entra, () => limit(() => gs.accountIndex.lookup(entra)));
    if (miss) result.reads++;
    return links;
  };
  const subscription = (link: AccountLink, subscriptionId: string) => {
    const key = `${link.tenantId}\u0000${subscriptionId}`;
    let p = subs.get(key);
    if (!p) {
      result.reads++;
      p = limit(() => gs.subscriptionsRepo.get(link.tenantId, subscriptionId));
      subs.set(key, p);
    }
    return p;
  };

  const verified = async (item: GraphDeliveryItem): Promise<{ sub?: Subscription; reason?: string }> => {
    for (const link of await linksOf(item.entraTenantId)) {
      const sub = await subscription(link, item.subscriptionId);
      if (!sub || sub.integrationId !== link.integrationId || sub.entraTenantId.toLowerCase() !== item.entraTenantId) continue;
      return hashesMatch(item.clientStateHash, sub.clientStateHash) ? { sub } : { reason: 'clientState mismatch' };
    }
    return { reason: 'unknown subscription' };
  };

  let logged = 0;
  const work = await Promise.all(
    message.items.map(async (item, index): Promise<GraphWorkItemInput | undefined> => {
      const { sub, reason } = await verified(item);
      if (!sub) {
        // The ids are opaque and safe to log; the clientState (and its hash) never is.
        if (logged++ < ITEM_LOGS) log.warn('graph notification dropped', { kind: message.kind, index, reason, subscriptionId: item.subscriptionId });
        return undefined;
      }
      const ids = { tenantId: sub.tenantId, integrationId: sub.integrationId, mailbox: sub.mailbox };
      if (message.kind === 'lifecycle') {
        if (!item.lifecycleEvent) return undefined;
        return { kind: 'lifecycle', ...ids, subscriptionId: sub.subscriptionId, event: item.lifecycleEvent };
      }
      if (!item.messageId) return undefined;
      return { kind: 'message', ...ids, messageId: item.messageId, via: 'notification', subscriptionId: sub.subscriptionId };
    }),
  );
  const verifiedItems = work.filter((w): w is GraphWorkItemInput => w !== undefined);
  result.dropped = message.items.length - verifiedItems.length;
  const out = groupByMailbox(verifiedItems);
  await Promise.all(out.map((i) => limit(() => gs.services.queues.send(QUEUES.graphNotifications, i))));
  faultPoint('graph.router.queued');
  result.queued = verifiedItems.length;
  result.messages = out.length;
  for (const i of out.slice(0, ITEM_LOGS)) log.info('graph notification queued', { kind: message.kind, tenantId: i.tenantId, integrationId: i.integrationId, work: i.kind, ...(i.kind === 'messages' ? { messages: i.messageIds.length } : {}) });
  return result;
}

/** Both are SHA-256 hex digests; compared in constant time. */
function hashesMatch(a: string, b: string): boolean {
  const x = Buffer.from(a, 'hex');
  const y = Buffer.from(b, 'hex');
  return x.length === 32 && x.length === y.length && timingSafeEqual(x, y);
}

/**
 * New mails of the same mailbox (and subscription) become one `messages` work item of up to 100 ids,
 * split further by the encoded bytes a queue message holds; a lone mail stays a `message`. A delivery
 * of 100 notifications for one mailbox is then one queue write, not 100.
 */
function groupByMailbox(items: GraphWorkItemInput[]): GraphWorkItemInput[] {
  const out: GraphWorkItemInput[] = [];
  const groups = new Map<string, Extract<GraphWorkItemInput, { kind: 'message' }>[]>();
  for (const i of items) {
    if (i.kind !== 'message') {
      out.push(i);
      continue;
    }
    const key = [i.tenantId, i.integrationId, i.mailbox, i.subscriptionId ?? ''].join('\u0000');
    groups.set(key, [...(groups.get(key) ?? []), i]);
  }
  for (const group of groups.values()) {
    const first = group[0] as Extract<GraphWorkItemInput, { kind: 'message' }>;
    if (group.length === 1) {
      out.push(first);
      continue;
    }
    const ids = [...new Set(group.map((g) => g.messageId))];
    for (let k = 0; k < ids.length; k += MAX_MESSAGES_PER_ITEM) {
      const chunk = ids.slice(k, k + MAX_MESSAGES_PER_ITEM);
      const make = (part: string[]): GraphWorkItemInput => ({ kind: 'messages', tenantId: first.tenantId, integrationId: first.integrationId, mailbox: first.mailbox, via: 'notification', ...(first.subscriptionId ? { subscriptionId: first.subscriptionId } : {}), messageIds: part });
      out.push(...splitIntoMessages(QUEUES.graphNotifications, chunk, make));
    }
  }
  return out;
}
