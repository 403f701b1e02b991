import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import { z } from 'zod';

/** HubSpot sends at most 100 events per request, a few hundred bytes each; anything far larger is not HubSpot. */
export const MAX_WEBHOOK_BODY_BYTES = 256 * 1024;
export const MAX_EVENTS_PER_REQUEST = 100;
/** "Reject the request if the timestamp is older than 5 minutes" (milliseconds, as HubSpot's samples). */
export const MAX_TIMESTAMP_AGE_MS = 5 * 60_000;

export type SignatureVersion = 'v1' | 'v2' | 'v3';

export type SignatureCheck =
  | { ok: true; version: SignatureVersion }
  | { ok: false; reason: 'missing' | 'malformed' | 'stale' | 'mismatch' | 'legacy-refused' };

export interface SignatureInput {
  method: string;
  /** The URL the request arrived at; only its path and query are used. */
  requestUrl: string;
  /** `PUBLIC_BASE_URL`: HubSpot signs the URL it was configured with, not the one behind Azure's front end. */
  publicBaseUrl: string;
  /** The body exactly as received. */
  body: Buffer;
  header(name: string): string | null | undefined;
  clientSecret: string;
  acceptLegacy: boolean;
  now: number;
}

const DECODED: Readonly<Record<string, string>> = {
  '%3A': ':', '%2F': '/', '%3F': '?', '%40': '@', '%21': '!', '%24': '$', '%27': "'", '%28': '(', '%29': ')', '%2A': '*', '%2C': ',', '%3B': ';',
};

/**
 * The URI as HubSpot signs it: the public origin plus the path and query received, with exactly the
 * percent-encodings HubSpot's validating-requests page lists decoded (and no others).
 */
export function signedUri(publicBaseUrl: string, requestUrl: string): string {
  const u = new URL(requestUrl);
  const uri = `${publicBaseUrl.replace(/\/+$/, '')}${u.pathname}${u.search}`;
  return uri.replace(/%(3A|2F|3F|40|21|24|27|28|29|2A|2C|3B)/gi, (m) => DECODED[m.toUpperCase()] ?? m);
}

/**
 * Verifies a delivery. v3 (HMAC-SHA256 over method + URI + body + timestamp, keyed with the app's
 * client secret, base64) is required when present; the timestamp must be within 5 minutes either way.
 * v1/v2 (plain SHA-256, hex, no timestamp) are accepted only when `acceptLegacy` and no v3 header came:
 * they cannot expire, so a captured request could be replayed for ever. Comparisons are constant-time
 * over equal-length digests, and the HMAC runs over the raw bytes, never a re-serialised body.
 */
export function verifyHubSpotSignature(input: SignatureInput): SignatureCheck {
  const v3 = input.header('x-hubspot-signature-v3');
  if (v3) {
    const ts = input.header('x-hubspot-request-timestamp') ?? '';
    if (!/^\d{10,16}$/.test(ts)) return { ok: false, reason: 'malformed' };
    const timestamp = Number(ts);
    if (Math.abs(input.now - timestamp) > MAX_TIMESTAMP_AGE_MS) return { ok: false, reason: 'stale' };
    const expected = createHmac('sha256', input.clientSecret)
      .update(Buffer.from(`${input.method.toUpperCase()}${signedUri(input.publicBaseUrl, input.requestUrl)}`, 'utf8'))
      .update(input.body)
      .update(Buffer.from(ts, 'utf8'))
      .digest();
    if (!/^[A-Za-z0-9+/]+={0,2}$/.test(v3.trim())) return { ok: false, reason: 'malformed' };
    return safeEqual(Buffer.from(v3.trim(), 'base64'), expected) ? { ok: true, version: 'v3' } : { ok: false, reason: 'mismatch' };
  }
  const legacy = input.header('x-hubspot-signature');
  if (!legacy) return { ok: false, reason: 'missing' };
  if (!input.acceptLegacy) return { ok: false, reason: 'legacy-refused' };
  const version = (input.header('x-hubspot-signature-version') ?? 'v1').toLowerCase();
  if (!/^[0-9a-fA-F]{64}$/.test(legacy.trim())) return { ok: false, reason: 'malformed' };
  const hash = createHash('sha256').update(Buffer.from(input.clientSecret, 'utf8'));
  if (version === 'v2') hash.update(Buffer.from(`${input.method.toUpperCase()}${signedUri(input.publicBaseUrl, input.requestUrl)}`, 'utf8'));
  else if (version !== 'v1') return { ok: false, reason: 'malformed' };
  hash.update(input.body);
  return safeEqual(Buffer.from(legacy.trim(), 'hex'), hash.digest()) ? { ok: true, version: version as 'v1' | 'v2' } : { ok: false, reason: 'mismatch' };
}

function safeEqual(a: Buffer, b: Buffer): boolean {
  // timingSafeEqual throws on different lengths; a wrong length is simply a wrong signature.
  return a.length === b.length && timingSafeEqual(a, b);
}

const id = z.union([z.number().int().nonnegative(), z.string().regex(/^\d{1,20}$/)]).transform(String);

/**
 * One event as HubSpot sends it. The type key is `subscriptionType` in HubSpot's current examples and
 * `eventType` in its older table; both are accepted. Unknown fields are kept (HubSpot adds fields).
 */
export const webhookEventSchema = z
  .looseObject({
    eventId: id,
    subscriptionId: id.optional(),
    portalId: id,
    appId: id.optional(),
    occurredAt: z.number().int().nonnegative(),
    subscriptionType: z.string().max(100).optional(),
    eventType: z.string().max(100).optional(),
    attemptNumber: z.number().int().nonnegative().optional(),
    objectId: id,
    propertyName: z.string().max(500).optional(),
    propertyValue: z.string().optional(),
    changeSource: z.string().max(100).optional(),
    changeFlag: z.string().max(100).optional(),
    sourceId: z.string().max(500).optional(),
    primaryObjectId: id.optional(),
    mergedObjectIds: z.array(id).max(1000).optional(),
    newObjectId: id.optional(),
    associationType: z.string().max(200).optional(),
    fromObjectId: id.optional(),
    toObjectId: id.optional(),
    associationRemoved: z.boolean().optional(),
  })
  .refine((e) => e.subscriptionType !== undefined || e.eventType !== undefined, { message: 'subscriptionType (or eventType) is required' });
export type WebhookEvent = z.infer<typeof webhookEventSchema>;

export const webhookBatchSchema = z.array(webhookEventSchema).min(1).max(MAX_EVENTS_PER_REQUEST);
