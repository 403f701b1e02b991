import { createHash } from 'node:crypto';
import { z } from 'zod';
import type { Logger } from '../../platform/logging';
import { encodeQueueMessage, integrationIdSchema, QUEUES, tenantIdSchema, type ProcessedStore, type ProvisionalClaim, type QueueSender } from '../../storage';
import type { AccountIndex, PortalLink } from './accountIndex';
import type { WebhookEvent } from './webhooks';

export const HUBSPOT_OBJECT_TYPES = ['tickets', 'contacts', 'companies'] as const;
export type HubSpotObjectType = (typeof HUBSPOT_OBJECT_TYPES)[number];

export const EVENT_ACTIONS = ['creation', 'propertyChange', 'associationChange', 'restore', 'deletion', 'privacyDeletion', 'merge'] as const;
export type EventAction = (typeof EVENT_ACTIONS)[number];

const SUBJECTS: Readonly<Record<string, HubSpotObjectType>> = { ticket: 'tickets', contact: 'contacts', company: 'companies' };

/** One event as the worker needs it: what, which object, when; nothing else of HubSpot's payload. */
export const queuedEventSchema = z.object({
  /** Our de-duplication key (hash of HubSpot's identifying fields). */
  key: z.string().regex(/^[A-Za-z0-9_-]{8,64}$/),
  eventId: z.string(),
  objectType: z.enum(HUBSPOT_OBJECT_TYPES),
  action: z.enum(EVENT_ACTIONS),
  objectId: z.string().regex(/^\d{1,20}$/),
  occurredAt: z.number().int(),
  propertyName: z.string().optional(),
  changeSource: z.string().optional(),
  mergedObjectIds: z.array(z.string()).optional(),
  newObjectId: z.string().optional(),
});
export type QueuedEvent = z.infer<typeof queuedEventSchema>;

/** A message on `hubspot-events`: fresh events of one delivery for one integration. */
export const hubspotEventsMessageSchema = z.object({
  tenantId: tenantIdSchema,
  integrationId: integrationIdSchema,
  portalId: z.string().regex(/^\d{1,20}$/),
  deliveryId: z.string(),
  events: z.array(queuedEventSchema).min(1).max(100),
});
export type HubSpotEventsMessage = z.infer<typeof hubspotEventsMessageSchema>;

/**
 * HubSpot's `eventId` is "not guaranteed to be unique", so the key also takes the subscription, the
 * object and the time: a redelivery (same event, next `attemptNumber`) has the same key; two different
 * events sharing an eventId do not.
 */
export function eventKey(e: WebhookEvent): string {
  return createHash('sha256')
    .update([e.eventId, e.subscriptionId ?? '', e.subscriptionType ?? e.eventType ?? '', e.objectId, e.occurredAt, e.propertyName ?? ''].join('\u0000'))
    .digest('base64url')
    .slice(0, 32);
}

/** Our event, or why not: types we do not sync (deals, …) and imports are left to the sync sweep. */
export function normalizeEvent(e: WebhookEvent): QueuedEvent | { skip: 'unsupported-type' | 'import' } {
  const type = e.subscriptionType ?? e.eventType ?? '';
  const [subject, action] = type.split('.', 2) as [string, string | undefined];
  const objectType = SUBJECTS[subject];
  if (!objectType || !action || !(EVENT_ACTIONS as readonly string[]).includes(action)) return { skip: 'unsupported-type' };
  // Imports arrive as floods of creations; the incremental sync picks them up at its own pace.
  if ((e.changeSource ?? '').toUpperCase() === 'IMPORT') return { skip: 'import' };
  return {
    key: eventKey(e),
    eventId: e.eventId,
    objectType,
    action: action as EventAction,
    objectId: e.objectId,
    occurredAt: e.occurredAt,
    ...(e.propertyName ? { propertyName: e.propertyName } : {}),
    ...(e.changeSource ? { changeSource: e.changeSource } : {}),
    ...(e.mergedObjectIds ? { mergedObjectIds: e.mergedObjectIds } : {}),
    ...(e.newObjectId ? { newObjectId: e.newObjectId } : {}),
  };
}

export interface FanOutResult {
  received: number;
  queued: number;
  duplicates: number;
  /** Events claimed, unconfirmed, by a handler that may still be at work (the delivery should be retried). */
  inProgress: number;
  skipped: number;
  /** Events of portals no integration is connected to. */
  unrouted: number;
  messages: number;
}

export interface FanOutDeps {
  accountIndex: AccountIndex;
  processed: ProcessedStore;
  queues: QueueSender;
  log: Logger;
}

/** Where webhook event claims live in the Processed table, and the id of one (per integration and event). */
export const WEBHOOK_CLAIM_SOURCE = 'hubspot-webhook';
export const webhookClaimId = (integrationId: string, eventKey: string): string => `${integrationId}:${eventKey}`;
const CLAIM_CONCURRENCY = 32;
/**
 * An unconfirmed claim older than this belongs to a handler that died between claiming and queueing: a
 * delivery is answered within HubSpot's 5 s timeout, so a live handler is long done by then.
 */
export const WEBHOOK_CLAIM_STALE_MS = 60_000;
// Queue messages hold 64 KiB of base64 text; keep a margin below it.
const MAX_MESSAGE_CHARS = 60_000;

/**
 * Routes one verified delivery: every event goes to every integration connected to its portal (two
 * tenants may share a portal), minus events that integration has already been sent, as one or a few
 * queue messages per integration. De-duplication is a conditional insert per (integration, event) in
 * the Processed table, so a replayed delivery queues nothing. Claims are provisional until their message
 * is queued: if queueing fails, the claims of that message are given back and the error surfaces, so
 * HubSpot's retry finds them unclaimed; if the process dies in between, HubSpot's retry (it got no answer)
 * takes the stale claims over (`WEBHOOK_CLAIM_STALE_MS`). Events are never lost to a claim, only, at
 * worst, queued twice, which the worker absorbs (it reads current objects and compares versions).
 */
export async function fanOut(deps: FanOutDeps, events: WebhookEvent[], deliveryId: string): Promise<FanOutResult> {
  const result: FanOutResult = { received: events.length, queued: 0, duplicates: 0, inProgress: 0, skipped: 0, unrouted: 0, messages: 0 };
  const byPortal = new Map<string, QueuedEvent[]>();
  for (const e of events) {
    const n = normalizeEvent(e);
    if ('skip' in n) {
      result.skipped++;
      continue;
    }
    const list = byPortal.get(e.portalId) ?? [];
    list.push(n);
    byPortal.set(e.portalId, list);
  }
  for (const [portalId, list] of byPortal) {
    const links = await deps.accountIndex.integrationsOf(portalId);
    if (links.length === 0) {
      result.unrouted += list.length;
      continue;
    }
    for (const link of links) {
      const { fresh, inProgress } = await claimFresh(deps.processed, link, list);
      result.inProgress += inProgress;
      result.duplicates += list.length - fresh.length - inProgress;
      for (const chunk of chunks(link, portalId, deliveryId, fresh)) {
        try {
          await deps.queues.send(QUEUES.hubspotEvents, chunk);
        } catch (err) {
          await Promise.all(chunk.events.map((e) => deps.processed.release(WEBHOOK_CLAIM_SOURCE, link.tenantId, webhookClaimId(link.integrationId, e.key)).catch(() => undefined)));
          throw err;
        }
        result.messages++;
        result.queued += chunk.events.length;
        // Queued: the claims are final. Should this write fail, the events are queued all the same, and the
        // claims only stay provisional (a later redelivery might queue them again, which is harmless).
        await deps.processed
          .confirm(WEBHOOK_CLAIM_SOURCE, link.tenantId, chunk.events.map((e) => webhookClaimId(link.integrationId, e.key)))
          .catch((err: unknown) => deps.log.warn('could not confirm webhook event claims', { tenantId: link.tenantId, integrationId: link.integrationId, events: chunk.events.length, error: err }));
      }
    }
  }
  return result;
}

async function claimFresh(processed: ProcessedStore, link: PortalLink, list: QueuedEvent[]): Promise<{ fresh: QueuedEvent[]; inProgress: number }> {
  const outcome: Array<ProvisionalClaim | undefined> = new Array<ProvisionalClaim | undefined>(list.length).fill(undefined);
  // The same event twice in one delivery counts once.
  const seen = new Set<string>();
  let next = 0;
  const worker = async () => {
    while (next < list.length) {
      const i = next++;
      const e = list[i] as QueuedEvent;
      if (seen.has(e.key)) continue;
      seen.add(e.key);
      outcome[i] = await processed.claimProvisional(WEBHOOK_CLAIM_SOURCE, link.tenantId, webhookClaimId(link.integrationId, e.key), { staleAfterMs: WEBHOOK_CLAIM_STALE_MS, note: e.eventId });
    }
  };
  await Promise.all(Array.from({ length: Math.min(CLAIM_CONCURRENCY, list.length) }, worker));
  return { fresh: list.filter((_, i) => outcome[i] === 'claimed'), inProgress: outcome.filter((o) => o === 'pending').length };
}

function chunks(link: PortalLink, portalId: string, deliveryId: string, events: QueuedEvent[]): HubSpotEventsMessage[] {
  const out: HubSpotEventsMessage[] = [];
  let current: QueuedEvent[] = [];
  const make = (evs: QueuedEvent[]): HubSpotEventsMessage => ({ tenantId: link.tenantId, integrationId: link.integrationId, portalId, deliveryId, events: evs });
  for (const e of events) {
    const candidate = [...current, e];
    if (current.length > 0 && encodeQueueMessage(make(candidate)).length > MAX_MESSAGE_CHARS) {
      out.push(make(current));
      current = [e];
    } else {
      current = candidate;
    }
  }
  if (current.length > 0) out.push(make(current));
  return out;
}
