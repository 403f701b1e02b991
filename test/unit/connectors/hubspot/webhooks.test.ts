import { createHash, createHmac } from 'node:crypto';
import { signedUri, verifyHubSpotSignature, webhookBatchSchema, type SignatureInput } from '../../../../src/connectors/hubspot/webhooks';
import { startFakeHubSpot, signatureUri, type FakeHubSpot } from '../../../fakes/hubspot';

/**
 * Signature verification with real HMACs (nothing mocked): signatures come from the fake HubSpot's
 * own signer (an independent implementation of HubSpot's documented algorithm) or are computed here.
 */
describe('HubSpot webhook signatures', () => {
  const SECRET = 'client-secret-0123456789abcdef';
  const PUBLIC = 'https://connectors.example.com';
  const URL_RECEIVED = 'http://internal-host:7071/api/webhooks/hubspot';
  const NOW = 1_800_000_000_000;
  const body = JSON.stringify([{ eventId: 1, subscriptionId: 2, portalId: 62515, appId: 3, occurredAt: NOW - 1000, subscriptionType: 'ticket.propertyChange', attemptNumber: 0, objectId: 77, propertyName: 'subject', propertyValue: 'é ünïcode', changeSource: 'CRM_UI' }]);
  let fake: FakeHubSpot;

  beforeAll(async () => {
    fake = await startFakeHubSpot({ clientSecret: SECRET });
  });
  afterAll(async () => fake?.close());

  const v3 = (b: string | Buffer, ts: number, uri = `${PUBLIC}/api/webhooks/hubspot`, secret = SECRET) =>
    createHmac('sha256', secret).update(`POST${uri}`).update(b).update(String(ts)).digest('base64');

  function input(over: Partial<SignatureInput> & { headers?: Record<string, string> } = {}): SignatureInput {
    const headers = over.headers ?? { 'x-hubspot-signature-v3': v3(body, NOW - 1000), 'x-hubspot-request-timestamp': String(NOW - 1000) };
    return {
      method: 'POST',
      requestUrl: URL_RECEIVED,
      publicBaseUrl: PUBLIC,
      body: Buffer.from(body),
      header: (n) => headers[n.toLowerCase()],
      clientSecret: SECRET,
      acceptLegacy: false,
      now: NOW,
      ...over,
    };
  }

  it('accepts a v3 signature made by the fake HubSpot over the public URL, whatever host the request reached', () => {
    const ts = NOW - 2000;
    const sig = fake.signV3('POST', `${PUBLIC}/api/webhooks/hubspot`, body, ts);
    expect(verifyHubSpotSignature(input({ headers: { 'x-hubspot-signature-v3': sig, 'x-hubspot-request-timestamp': String(ts) } }))).toEqual({ ok: true, version: 'v3' });
  });

  it('signs over the raw bytes: non-ASCII content verifies byte for byte', () => {
    expect(Buffer.byteLength(body)).toBeGreaterThan(body.length);
    expect(verifyHubSpotSignature(input())).toEqual({ ok: true, version: 'v3' });
  });

  it('rejects a forged signature (another secret)', () => {
    const forged = v3(body, NOW - 1000, `${PUBLIC}/api/webhooks/hubspot`, 'not-the-secret');
    expect(verifyHubSpotSignature(input({ headers: { 'x-hubspot-signature-v3': forged, 'x-hubspot-request-timestamp': String(NOW - 1000) } }))).toEqual({ ok: false, reason: 'mismatch' });
  });

  it('rejects a tampered, a truncated and an extended body', () => {
    const tampered = Buffer.from(body.replace('"objectId":77', '"objectId":78'));
    expect(verifyHubSpotSignature(input({ body: tampered }))).toEqual({ ok: false, reason: 'mismatch' });
    expect(verifyHubSpotSignature(input({ body: Buffer.from(body).subarray(0, body.length - 5) }))).toEqual({ ok: false, reason: 'mismatch' });
    expect(verifyHubSpotSignature(input({ body: Buffer.concat([Buffer.from(body), Buffer.from(' ')]) }))).toEqual({ ok: false, reason: 'mismatch' });
  });

  it('rejects a timestamp older than 5 minutes, or more than 5 minutes ahead, even with a valid signature', () => {
    const old = NOW - 5 * 60_000 - 1;
    expect(verifyHubSpotSignature(input({ headers: { 'x-hubspot-signature-v3': v3(body, old), 'x-hubspot-request-timestamp': String(old) } }))).toEqual({ ok: false, reason: 'stale' });
    const ahead = NOW + 5 * 60_000 + 1;
    expect(verifyHubSpotSignature(input({ headers: { 'x-hubspot-signature-v3': v3(body, ahead), 'x-hubspot-request-timestamp': String(ahead) } }))).toEqual({ ok: false, reason: 'stale' });
    const edge = NOW - 5 * 60_000;
    expect(verifyHubSpotSignature(input({ headers: { 'x-hubspot-signature-v3': v3(body, edge), 'x-hubspot-request-timestamp': String(edge) } }))).toEqual({ ok: true, version: 'v3' });
  });

  it('binds the signature to the timestamp header: a fresh timestamp on an old signature fails', () => {
    const sig = v3(body, NOW - 10 * 60_000);
    expect(verifyHubSpotSignature(input({ headers: { 'x-hubspot-signature-v3': sig, 'x-hubspot-request-timestamp': String(NOW) } }))).toEqual({ ok: false, reason: 'mismatch' });
  });

  it('binds the signature to the URL: a signature for another path or query fails', () => {
    const sig = v3(body, NOW, `${PUBLIC}/api/webhooks/other`);
    expect(verifyHubSpotSignature(input({ headers: { 'x-hubspot-signature-v3': sig, 'x-hubspot-request-timestamp': String(NOW) } }))).toEqual({ ok: false, reason: 'mismatch' });
    const withQuery = v3(body, NOW, `${PUBLIC}/api/webhooks/hubspot?x=1`);
    expect(verifyHubSpotSignature(input({ requestUrl: `${URL_RECEIVED}?x=2`, headers: { 'x-hubspot-signature-v3': withQuery, 'x-hubspot-request-timestamp': String(NOW) } }))).toEqual({ ok: false, reason: 'mismatch' });
    expect(verifyHubSpotSignature(input({ requestUrl: `${URL_RECEIVED}?x=1`, headers: { 'x-hubspot-signature-v3': withQuery, 'x-hubspot-request-timestamp': String(NOW) } }))).toEqual({ ok: true, version: 'v3' });
  });

  it('decodes exactly the percent-encodings HubSpot lists, as the fake does', () => {
    const received = 'http://h/api/webhooks/hubspot?from=a%3Ab%2Fc%40d%20e&x=%2a';
    expect(signedUri(PUBLIC, received)).toBe(`${PUBLIC}/api/webhooks/hubspot?from=a:b/c@d%20e&x=*`);
    expect(signedUri(PUBLIC, received)).toBe(signatureUri(`${PUBLIC}/api/webhooks/hubspot?from=a%3Ab%2Fc%40d%20e&x=%2a`));
  });

  it('rejects missing, malformed and wrongly sized signatures without throwing', () => {
    expect(verifyHubSpotSignature(input({ headers: {} }))).toEqual({ ok: false, reason: 'missing' });
    expect(verifyHubSpotSignature(input({ headers: { 'x-hubspot-signature-v3': v3(body, NOW) } }))).toEqual({ ok: false, reason: 'malformed' });
    expect(verifyHubSpotSignature(input({ headers: { 'x-hubspot-signature-v3': 'not base64!', 'x-hubspot-request-timestamp': String(NOW) } }))).toEqual({ ok: false, reason: 'malformed' });
    expect(verifyHubSpotSignature(input({ headers: { 'x-hubspot-signature-v3': 'AAAA', 'x-hubspot-request-timestamp': String(NOW) } }))).toEqual({ ok: false, reason: 'mismatch' });
  });

  it('v1/v2 are refused unless configured; v3 present is never downgraded to v1', () => {
    const v1 = createHash('sha256').update(SECRET + body).digest('hex');
    const legacy = { 'x-hubspot-signature': v1, 'x-hubspot-signature-version': 'v1' };
    expect(verifyHubSpotSignature(input({ headers: legacy }))).toEqual({ ok: false, reason: 'legacy-refused' });
    expect(verifyHubSpotSignature(input({ headers: legacy, acceptLegacy: true }))).toEqual({ ok: true, version: 'v1' });
    const v2 = createHash('sha256').update(`${SECRET}POST${PUBLIC}/api/webhooks/hubspot${body}`).digest('hex');
    expect(verifyHubSpotSignature(input({ headers: { 'x-hubspot-signature': v2, 'x-hubspot-signature-version': 'v2' }, acceptLegacy: true }))).toEqual({ ok: true, version: 'v2' });
    expect(verifyHubSpotSignature(input({ headers: { 'x-hubspot-signature': v1, 'x-hubspot-signature-version': 'v2' }, acceptLegacy: true }))).toEqual({ ok: false, reason: 'mismatch' });
    // A valid v1 next to a wrong v3: the v3 decides.
    expect(verifyHubSpotSignature(input({ headers: { ...legacy, 'x-hubspot-signature-v3': v3(body, NOW, PUBLIC), 'x-hubspot-request-timestamp': String(NOW) }, acceptLegacy: true }))).toEqual({ ok: false, reason: 'mismatch' });
  });

  it('the event batch schema takes HubSpot events (either type key) and refuses more than 100', () => {
    const e = { eventId: 1, portalId: 1, occurredAt: 1, objectId: 5 };
    expect(webhookBatchSchema.safeParse([{ ...e, subscriptionType: 'ticket.creation' }]).success).toBe(true);
    expect(webhookBatchSchema.safeParse([{ ...e, eventType: 'contact.deletion' }]).success).toBe(true);
    expect(webhookBatchSchema.safeParse([e]).success).toBe(false);
    expect(webhookBatchSchema.safeParse([]).success).toBe(false);
    expect(webhookBatchSchema.safeParse(Array.from({ length: 101 }, (_, i) => ({ ...e, eventId: i, subscriptionType: 'ticket.creation' }))).success).toBe(false);
  });
});
