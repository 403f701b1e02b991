import { Signature } from '@hubspot/api-client';
import { createHash, createHmac } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { startFakeHubSpot, type FakeHubSpot, type FakePortal } from '../../fakes/hubspot';

/** The webhook sender: HubSpot's v3 signature over method + URI + exact body + timestamp, checked independently. */

interface Received {
  method: string;
  url: string;
  headers: http.IncomingHttpHeaders;
  body: string;
}

async function startReceiver(): Promise<{ url: string; received: Received[]; close: () => Promise<void> }> {
  const received: Received[] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      received.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, body: Buffer.concat(chunks).toString('utf8') });
      res.writeHead(204).end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    received,
    close: () => new Promise<void>((r) => {
      server.close(() => r());
      server.closeAllConnections();
    }),
  };
}

/** What a receiver computes, written from HubSpot's docs rather than from the fake's code. */
function expectedV3(secret: string, method: string, uri: string, body: string, timestamp: string): string {
  return createHmac('sha256', secret).update(method + uri + body + timestamp).digest('base64');
}

describe('fake HubSpot webhooks', () => {
  let fake: FakeHubSpot;
  let portal: FakePortal;
  let receiver: Awaited<ReturnType<typeof startReceiver>>;
  const secret = 'webhook-client-secret';

  beforeAll(async () => {
    fake = await startFakeHubSpot({ clientSecret: secret });
    portal = fake.addPortal();
    receiver = await startReceiver();
  });

  afterAll(async () => {
    await receiver.close();
    await fake.close();
  });

  beforeEach(() => {
    receiver.received.length = 0;
  });

  it('builds events with the fields HubSpot sends', () => {
    const change = fake.webhookEvent(portal.hubId, { subscriptionType: 'ticket.propertyChange', objectId: '123', propertyName: 'hs_pipeline_stage', propertyValue: '4' });
    expect(change).toMatchObject({
      subscriptionType: 'ticket.propertyChange',
      portalId: portal.hubId,
      appId: fake.appId,
      objectId: 123,
      propertyName: 'hs_pipeline_stage',
      propertyValue: '4',
      changeSource: 'CRM_UI',
      attemptNumber: 0,
    });
    expect(typeof change.eventId).toBe('number');
    expect(typeof change.subscriptionId).toBe('number');
    expect(typeof change.occurredAt).toBe('number');
    expect(String(change.sourceId)).toMatch(/^userId:\d+$/);
    const merge = fake.webhookEvent(portal.hubId, { subscriptionType: 'contact.merge', objectId: 7, mergedObjectIds: [8, 9] });
    expect(merge).toMatchObject({ primaryObjectId: 7, mergedObjectIds: [8, 9], newObjectId: 7 });
    expect(fake.webhookEvent(portal.hubId, { subscriptionType: 'ticket.creation', objectId: 1 }).changeFlag).toBe('NEW');
    expect(fake.webhookEvent(portal.hubId, { subscriptionType: 'ticket.deletion', objectId: 1 }).changeFlag).toBe('DELETED');
    expect(fake.webhookEvent(portal.hubId, { subscriptionType: 'ticket.creation', objectId: 1 }).eventId).not.toBe(change.eventId);
  });

  it('signs v3 over method, the URI, the exact raw body and the ms timestamp', async () => {
    const target = `${receiver.url}/api/webhooks/hubspot?code=abc`;
    const events = [
      fake.webhookEvent(portal.hubId, { subscriptionType: 'ticket.creation', objectId: 11 }),
      fake.webhookEvent(portal.hubId, { subscriptionType: 'ticket.propertyChange', objectId: 11, propertyName: 'subject', propertyValue: 'Ünïcode ✓' }),
    ];
    const before = Date.now();
    const res = await fake.sendWebhook(target, events);
    expect(res.status).toBe(204);
    const got = receiver.received[0] as Received;
    expect(got.method).toBe('POST');
    expect(JSON.parse(got.body)).toEqual(events);
    expect(got.headers['content-type']).toBe('application/json');
    const ts = String(got.headers['x-hubspot-request-timestamp']);
    expect(Number(ts)).toBeGreaterThanOrEqual(before);
    const sig = String(got.headers['x-hubspot-signature-v3']);
    expect(sig).toBe(expectedV3(secret, 'POST', target, got.body, ts));
    expect(sig).not.toBe(expectedV3('another-secret', 'POST', target, got.body, ts));
    expect(got.headers['x-hubspot-signature']).toBe(createHash('sha256').update(secret + got.body).digest('hex'));
    expect(got.headers['x-hubspot-signature-version']).toBe('v1');
    // The SDK's own validator agrees.
    expect(Signature.isValid({ signatureVersion: 'v3', signature: sig, clientSecret: secret, requestBody: got.body, url: target, method: 'POST', timestamp: Number(ts) })).toBe(true);
    expect(fake.signV3('POST', target, got.body, Number(ts))).toBe(sig);
  });

  it('signs the URI with the listed percent-encodings decoded, as HubSpot does', async () => {
    const target = `${receiver.url}/api/webhooks/hubspot?tenant=a%3Ab%40c%2Fd&space=x%20y`;
    await fake.sendWebhook(target, [fake.webhookEvent(portal.hubId, { subscriptionType: 'ticket.creation', objectId: 1 })], { timestamp: 1_700_000_000_000 });
    const got = receiver.received[0] as Received;
    const decoded = `${receiver.url}/api/webhooks/hubspot?tenant=a:b@c/d&space=x%20y`;
    expect(got.headers['x-hubspot-signature-v3']).toBe(expectedV3(secret, 'POST', decoded, got.body, '1700000000000'));
    expect(got.headers['x-hubspot-signature-v3']).not.toBe(expectedV3(secret, 'POST', target, got.body, '1700000000000'));
    expect(got.headers['x-hubspot-request-timestamp']).toBe('1700000000000');
  });

  it('signs a public URL different from where it delivers when told to (a proxy in front of the app)', async () => {
    const publicUrl = 'https://connectors.example.test/api/webhooks/hubspot';
    await fake.sendWebhook(`${receiver.url}/api/webhooks/hubspot`, [fake.webhookEvent(portal.hubId, { subscriptionType: 'ticket.deletion', objectId: 5 })], { uriForSignature: publicUrl });
    const got = receiver.received[0] as Received;
    expect(got.headers['x-hubspot-signature-v3']).toBe(expectedV3(secret, 'POST', publicUrl, got.body, String(got.headers['x-hubspot-request-timestamp'])));
  });

  it('tampers with the body after signing when asked, so the signature no longer verifies', async () => {
    const target = `${receiver.url}/api/webhooks/hubspot`;
    const events = [fake.webhookEvent(portal.hubId, { subscriptionType: 'ticket.propertyChange', objectId: 42, propertyName: 'subject', propertyValue: 'x' })];
    await fake.sendWebhook(target, events, { tamper: true });
    const got = receiver.received[0] as Received;
    expect(JSON.parse(got.body)[0].objectId).toBe(43);
    expect(got.headers['x-hubspot-signature-v3']).not.toBe(expectedV3(secret, 'POST', target, got.body, String(got.headers['x-hubspot-request-timestamp'])));
    expect(got.headers['x-hubspot-signature-v3']).toBe(expectedV3(secret, 'POST', target, JSON.stringify(events), String(got.headers['x-hubspot-request-timestamp'])));
  });

  it('sends at most 100 events per request', async () => {
    const events = Array.from({ length: 101 }, (_, i) => fake.webhookEvent(portal.hubId, { subscriptionType: 'ticket.creation', objectId: i + 1 }));
    await expect(fake.sendWebhook(`${receiver.url}/x`, events)).rejects.toThrow(RangeError);
    expect(receiver.received).toHaveLength(0);
    const res = await fake.sendWebhook(`${receiver.url}/x`, events.slice(0, 100));
    expect(res.status).toBe(204);
    expect(JSON.parse((receiver.received[0] as Received).body)).toHaveLength(100);
  });
});
