import { createHash } from 'node:crypto';
import { z } from 'zod';
import { integrationIdSchema, tenantIdSchema } from '../../storage';
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

/** Where webhook event claims live in the Processed table, and the id of one (per integration and event). */
export const WEBHOOK_CLAIM_SOURCE = 'hubspot-webhook';
export const webhookClaimId = (integrationId: string, eventKey: string): string => `${integrationId}:${eventKey}`;
/**
 * An unconfirmed claim older than this belongs to a fan-out that died between claiming and queueing
 * (claiming, queueing and confirming take well under a second); another delivery's fan-out may take it
 * over then. The same delivery's retry takes its own claims over at once.
 */
export const WEBHOOK_CLAIM_STALE_MS = 60_000;
