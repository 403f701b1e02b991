import { createHash } from 'node:crypto';
import { z } from 'zod';
import type { Logger } from '../../platform/logging';
import { encodeQueueMessage, integrationIdSchema, QUEUES, tenantIdSchema, type ProcessedStore, type QueueSender } from '../../storage';
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

const PROCESSED_SOURCE = 'hubspot-webhook';
const CLAIM_CONCURRENCY = 32;
// Queue messages hold 64 KiB of base64 text; keep a margin below it.
const MAX_MESSAGE_CHARS = 60_000;

/**
 * Routes one verified delivery: every event goes to every integration connected to its portal (two
 * tenants may share a portal), minus events that integration has already been sent, as one or a few
 * queue messages per integration. De-duplication is a conditional insert per (integration, event) in
 * the Processed table, so a replayed delivery queues nothing. If queueing fails, the claims of that
 * message are given back and the error surfaces, so HubSpot's retry finds them unclaimed.
 */
export async function fanOut(deps: FanOutDeps, events: WebhookEvent[], deliveryId: string): Promise<FanOutResult> {
  const result: FanOutResult = { received: events.length, queued: 0, duplicates: 0, skipped: 0, unrouted: 0, messages: 0 };
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
      const fresh = await claimFresh(deps.processed, link, list);
      result.duplicates += list.length - fresh.length;
      for (const chunk of chunks(link, portalId, deliveryId, fresh)) {
        try {
          await deps.queues.send(QUEUES.hubspotEvents, chunk);
        } catch (err) {
          await Promise.all(chunk.events.map((e) => deps.processed.release(PROCESSED_SOURCE, link.tenantId, `${link.integrationId}:${e.key}`).catch(() => undefined)));
          throw err;
        }
        result.messages++;
        result.queued += chunk.events.length;
      }
    }
  }
  return result;
}

async function claimFresh(processed: ProcessedStore, link: PortalLink, list: QueuedEvent[]): Promise<QueuedEvent[]> {
  const fresh: boolean[] = new Array<boolean>(list.length).fill(false);
  // The same event twice in one delivery counts once.
  const seen = new Set<string>();
  let next = 0;
  const worker = async () => {
    while (next < list.length) {
      const i = next++;
      const e = list[i] as QueuedEvent;
      if (seen.has(e.key)) continue;
      seen.add(e.key);
      fresh[i] = await processed.claim(PROCESSED_SOURCE, link.tenantId, `${link.integrationId}:${e.key}`, e.eventId);
    }
  };
  await Promise.all(Array.from({ length: Math.min(CLAIM_CONCURRENCY, list.length) }, worker));
  return list.filter((_, i) => fresh[i]);
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
