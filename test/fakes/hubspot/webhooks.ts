import { createHash, createHmac } from 'node:crypto';
import type { WebhookEventInput } from './types';

/** Webhook deliveries as HubSpot makes them: a JSON array of ≤ 100 events, signed v1 and v3. */

export const MAX_EVENTS_PER_REQUEST = 100;

const DECODED: Record<string, string> = {
  '%3A': ':', '%2F': '/', '%3F': '?', '%40': '@', '%21': '!', '%24': '$', '%27': "'", '%28': '(', '%29': ')', '%2A': '*', '%2C': ',', '%3B': ';',
};

/** The URI as HubSpot signs it: only these percent-encodings decoded (HubSpot's validating-requests page). */
export function signatureUri(url: string): string {
  return url.replace(/%(3A|2F|3F|40|21|24|27|28|29|2A|2C|3B)/gi, (m) => DECODED[m.toUpperCase()] ?? m);
}

export function signV3(clientSecret: string, method: string, uri: string, body: string, timestamp: number): string {
  return createHmac('sha256', clientSecret).update(`${method}${uri}${body}${timestamp}`, 'utf8').digest('base64');
}

/** v1 (`X-HubSpot-Signature`), still sent alongside v3: hex SHA-256 of secret + body. */
export function signV1(clientSecret: string, body: string): string {
  return createHash('sha256').update(`${clientSecret}${body}`, 'utf8').digest('hex');
}

export interface EventContext {
  hubId: number;
  appId: number;
  userId: number;
  nextEventId: () => number;
  subscriptionIdFor: (subscriptionType: string) => number;
}

export function buildEvent(ctx: EventContext, e: WebhookEventInput): Record<string, unknown> {
  const objectId = Number(e.objectId);
  const changeSource = e.changeSource ?? 'CRM_UI';
  const event: Record<string, unknown> = {
    eventId: e.eventId ?? ctx.nextEventId(),
    subscriptionId: ctx.subscriptionIdFor(e.subscriptionType),
    portalId: ctx.hubId,
    appId: ctx.appId,
    occurredAt: e.occurredAt ?? Date.now(),
    subscriptionType: e.subscriptionType,
    attemptNumber: e.attemptNumber ?? 0,
    objectId,
    changeSource,
    sourceId: e.sourceId ?? (changeSource === 'INTEGRATION' ? String(ctx.appId) : `userId:${ctx.userId}`),
  };
  if (e.subscriptionType.endsWith('.propertyChange')) {
    event.propertyName = e.propertyName ?? '';
    event.propertyValue = e.propertyValue ?? '';
  } else if (e.propertyName !== undefined) {
    event.propertyName = e.propertyName;
    if (e.propertyValue !== undefined) event.propertyValue = e.propertyValue;
  }
  if (e.subscriptionType.endsWith('.creation')) event.changeFlag = 'NEW';
  if (e.subscriptionType.endsWith('.deletion')) event.changeFlag = 'DELETED';
  if (e.subscriptionType.endsWith('.merge')) {
    event.primaryObjectId = objectId;
    event.mergedObjectIds = e.mergedObjectIds ?? [];
    event.newObjectId = objectId;
    event.numberOfPropertiesMoved = 0;
  }
  return { ...event, ...(e.extra ?? {}) };
}

export interface SendOptions {
  timestamp?: number;
  tamper?: boolean;
  uriForSignature?: string;
}

/** POSTs one batch to `targetUrl`, signed over the exact body it sends (unless `tamper`). */
export async function deliver(clientSecret: string, targetUrl: string, events: Array<Record<string, unknown>>, opts: SendOptions = {}): Promise<Response> {
  if (events.length > MAX_EVENTS_PER_REQUEST) {
    throw new RangeError(`HubSpot sends at most ${MAX_EVENTS_PER_REQUEST} events per request; split the batch`);
  }
  const body = JSON.stringify(events);
  const timestamp = opts.timestamp ?? Date.now();
  const uri = opts.uriForSignature ?? signatureUri(targetUrl);
  const signature = signV3(clientSecret, 'POST', uri, body, timestamp);
  const sent = opts.tamper ? tamperWith(events, body) : body;
  return fetch(targetUrl, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      'user-agent': 'HubSpot Connect 2.0 (http://dev.hubspot.com/)',
      'x-hubspot-signature': signV1(clientSecret, body),
      'x-hubspot-signature-version': 'v1',
      'x-hubspot-signature-v3': signature,
      'x-hubspot-request-timestamp': String(timestamp),
    },
    body: sent,
  });
}

/** A body that differs from the signed one in one value, still valid JSON of the same shape. */
function tamperWith(events: Array<Record<string, unknown>>, body: string): string {
  const first = events[0];
  if (!first) return `${body} `;
  const copy = events.map((e, i) => (i === 0 ? { ...e, objectId: Number(first.objectId ?? 0) + 1 } : e));
  return JSON.stringify(copy);
}
