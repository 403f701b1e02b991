import { z } from 'zod';
import type { Logger } from '../../platform/logging';
import { UnauthorizedError, ValidationError } from '../../platform/errors';
import { QUEUES, splitIntoMessages, type QueueSender } from '../../storage';
import { normalizeEvent, queuedEventSchema } from './events';
import { verifyHubSpotSignature, webhookBatchSchema, MAX_EVENTS_PER_REQUEST, type WebhookEvent } from './webhooks';

/** One event of a delivery as queued at intake: our normalised event plus the portal it belongs to. */
export const deliveryEventSchema = queuedEventSchema.extend({ portalId: z.string().regex(/^\d{1,20}$/) });
export type DeliveryEvent = z.infer<typeof deliveryEventSchema>;

/**
 * A message on `hubspot-webhooks`: (part of) one verified delivery, as received, before fan-out. It is
 * scoped by the portals its events name, not by a tenant: only the fan-out worker resolves portals to
 * tenants (AccountIndex), and every message it writes onwards names its tenant. A delivery too large
 * for one message is split into parts; each part stands on its own (claims are per event).
 */
export const hubspotDeliveryMessageSchema = z.object({
  source: z.literal('hubspot'),
  /** The id of the HTTP invocation that received it: the owner of the claims its fan-out takes. */
  deliveryId: z.string().min(1).max(128),
  part: z.number().int().nonnegative(),
  receivedAt: z.number().int().nonnegative(),
  events: z.array(deliveryEventSchema).min(1).max(MAX_EVENTS_PER_REQUEST),
});
export type HubSpotDeliveryMessage = z.infer<typeof hubspotDeliveryMessageSchema>;

export interface IntakeResult {
  received: number;
  /** Events written to `hubspot-webhooks`. */
  accepted: number;
  /** Types we do not sync and imports (left to the sync sweep). */
  skipped: number;
  /** Queue messages written for this delivery (0 when nothing in it is ours). */
  messages: number;
}

export interface ReceivedDelivery {
  method: string;
  url: string;
  body: Buffer;
  header(name: string): string | null | undefined;
}

export interface IntakeDeps {
  queues: QueueSender;
  log: Logger;
  publicBaseUrl: string;
  clientSecret: string;
  acceptLegacy: boolean;
  now?: () => number;
}

/**
 * The whole synchronous part of a HubSpot delivery: verify the signature over the raw bytes, parse,
 * keep what we sync, and write it durably as one queue message (a few for a delivery past the 64 KiB
 * a message holds). O(1) storage work per delivery, whatever it holds: fan-out to integrations and
 * de-duplication happen in the `hubspot-webhooks` worker. The caller answers 204 only after this
 * resolves, so nothing is lost between the answer and the queue; a failed write throws (→ 5xx) and
 * HubSpot retries, which the worker's claims absorb.
 */
export async function receiveHubSpotDelivery(deps: IntakeDeps, request: ReceivedDelivery, deliveryId: string): Promise<IntakeResult> {
  const check = verifyHubSpotSignature({
    method: request.method,
    requestUrl: request.url,
    publicBaseUrl: deps.publicBaseUrl,
    body: request.body,
    header: (n) => request.header(n),
    clientSecret: deps.clientSecret,
    acceptLegacy: deps.acceptLegacy,
    now: (deps.now ?? Date.now)(),
  });
  if (!check.ok) {
    deps.log.warn('HubSpot webhook refused', { reason: check.reason, bytes: request.body.length });
    throw new UnauthorizedError('The webhook signature is missing, stale or wrong.');
  }
  let json: unknown;
  try {
    json = JSON.parse(request.body.toString('utf8'));
  } catch {
    throw new ValidationError('The body is not valid JSON.', [{ location: 'body', path: '', message: 'malformed JSON' }]);
  }
  const batch = webhookBatchSchema.safeParse(json);
  if (!batch.success) {
    throw new ValidationError('The body is not a HubSpot event batch.', batch.error.issues.slice(0, 10).map((i) => ({ location: 'body', path: i.path.join('.'), message: i.message })));
  }
  const { parts, accepted, skipped } = deliveryMessages(batch.data, deliveryId, (deps.now ?? Date.now)());
  await Promise.all(parts.map((m) => deps.queues.sendIntake(QUEUES.hubspotWebhooks, m)));
  const result: IntakeResult = { received: batch.data.length, accepted, skipped, messages: parts.length };
  deps.log.info('HubSpot webhook accepted', { signature: check.version, ...result });
  return result;
}

/**
 * The `hubspot-webhooks` messages for a parsed delivery: the events we sync, normalised (HubSpot's
 * payload minus what the worker does not need), the same event twice in one delivery once, split by
 * the encoded bytes a queue message holds (a delivery of 100 ordinary events is one message).
 */
export function deliveryMessages(batch: WebhookEvent[], deliveryId: string, receivedAt: number): { parts: HubSpotDeliveryMessage[]; accepted: number; skipped: number } {
  const events: DeliveryEvent[] = [];
  const seen = new Set<string>();
  let skipped = 0;
  for (const e of batch) {
    const n = normalizeEvent(e);
    if ('skip' in n) {
      skipped++;
      continue;
    }
    if (seen.has(`${e.portalId}:${n.key}`)) continue;
    seen.add(`${e.portalId}:${n.key}`);
    events.push({ ...n, portalId: e.portalId });
  }
  const parts = splitIntoMessages(QUEUES.hubspotWebhooks, events, (part, index): HubSpotDeliveryMessage => ({ source: 'hubspot', deliveryId, part: index, receivedAt, events: part }));
  return { parts, accepted: events.length, skipped };
}
