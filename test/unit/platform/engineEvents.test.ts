import { AccountSASPermissions, AccountSASResourceTypes, AccountSASServices, generateAccountSASQueryParameters, StorageSharedKeyCredential } from '@azure/storage-blob';
import fc from 'fast-check';
import { AZURITE_ACCOUNT, AZURITE_KEY } from '../../../runner/azurite';
import { z } from 'zod';
import { EngineEventPublisher, type PublishInput } from '../../../src/platform/events';
import { InvalidKeyError } from '../../../src/platform/errors';
import {
  BLOB_CONTAINERS,
  EventDataBlobs,
  MAX_QUEUE_MESSAGE_BYTES,
  QueueSender,
  StorageClients,
  eventDataBlobName,
  eventDataDigest,
  tenantId,
  type TenantId,
} from '../../../src/storage';
import { useAzurite } from '../../helpers/azurite';
import { receiveEngineEvents } from '../../helpers/engineEvents';

// These events are the publisher's test material, not a connector's: asyncapi.json does not describe them.
const SYNTHETIC = { contract: false };

/**
 * The engine-events publisher decides inline vs claim check by the size of the message as sent: base64
 * of the UTF-8 JSON, at most 64 KiB. Against Azurite, so "fits" is also what the service accepts.
 */
describe('EngineEventPublisher: inline or claim check, by encoded bytes', () => {
  let az: Awaited<ReturnType<typeof useAzurite>>;
  let publisher: EngineEventPublisher;
  let blobs: EventDataBlobs;
  const T = tenantId('tenant-a');
  const dataSchema = z.object({ text: z.string() });
  const at = new Date('2026-12-01T10:00:00.000Z');

  beforeAll(async () => {
    az = await useAzurite();
    blobs = new EventDataBlobs(az.clients);
    publisher = new EngineEventPublisher(new QueueSender(az.clients), blobs);
  });
  afterAll(async () => az?.stop());
  beforeEach(async () => {
    await az.clients.queue('engine-events').clearMessages();
  });

  const input = (text: string, over: Partial<PublishInput<{ text: string }>> = {}): PublishInput<{ text: string }> => ({
    tenantId: T,
    integrationId: 'int-1',
    name: 'ticket.updated',
    connector: 'hubspot',
    subject: 'tickets/1',
    idParts: ['int-1', 'tickets', '1', text.length],
    data: { text },
    dataSchema,
    time: at,
    ...over,
  });

  /** UTF-8 bytes of the event's JSON; base64 makes 4 of every 3 (rounded up). */
  const jsonBytes = (i: PublishInput<{ text: string }>) => Buffer.byteLength(JSON.stringify(publisher.build(i)), 'utf8');

  /**
   * A text that makes the event's JSON exactly `target` UTF-8 bytes, using `unit` (1, 2, 3 or 4 bytes in
   * UTF-8) as far as it goes and ASCII for the rest. The id depends on the text length, which changes
   * nothing in the JSON size (the id is fixed-length hex).
   */
  function textFor(target: number, unit: string): string {
    const unitBytes = Buffer.byteLength(unit, 'utf8');
    const empty = jsonBytes(input(''));
    const room = target - empty;
    const n = Math.floor(room / unitBytes);
    const text = unit.repeat(n) + 'x'.repeat(room - n * unitBytes);
    expect(jsonBytes(input(text))).toBe(target);
    return text;
  }

  async function blobNames(prefix: string): Promise<string[]> {
    const names: string[] = [];
    for await (const b of az.clients.container(BLOB_CONTAINERS.engineEventData).listBlobsFlat({ prefix })) names.push(b.name);
    return names;
  }

  // 48 KiB of JSON is 65,536 base64 characters: exactly the limit. One byte more is 65,540.
  const LIMIT_JSON = (MAX_QUEUE_MESSAGE_BYTES / 4) * 3;

  it.each([
    ['ASCII', 'x'],
    ['2-byte (é)', 'é'],
    ['3-byte CJK (界)', '界'],
    ['4-byte emoji (😀, two UTF-16 units)', '😀'],
  ])('%s: a message of exactly 64 KiB encoded goes inline (and the queue takes it); one JSON byte more goes by claim check', async (_label, unit) => {
    const fits = textFor(LIMIT_JSON, unit);
    const sent = await publisher.publish(input(fits));
    expect(sent.dataref).toBeUndefined();

    const over = textFor(LIMIT_JSON + 1, unit);
    const referenced = await publisher.publish(input(over));
    expect(referenced.dataref).toEqual(expect.any(String));

    const got = await receiveEngineEvents(az.clients, SYNTHETIC);
    expect(got).toHaveLength(2);
    const [inline, byRef] = got;
    expect(inline?.wire.dataref).toBeUndefined();
    expect(inline?.data).toEqual({ text: fits });
    expect(byRef?.wire.dataref).toBe(referenced.dataref);
    expect('data' in (byRef?.wire ?? {})).toBe(false);
    expect(byRef?.wire).toMatchObject({ id: referenced.id, tenantid: T, integrationid: 'int-1', type: 'com.itil-next.connectors.ticket.updated.v1', subject: 'tickets/1', datacontenttype: 'application/json' });
    expect(byRef?.dataBytes.equals(Buffer.from(JSON.stringify({ text: over }), 'utf8'))).toBe(true);
  });

  it('counts bytes, not UTF-16 units: 17,000 CJK characters are 17 k by .length but 68 KiB on the queue, and go by claim check', async () => {
    const text = '工单内容'.repeat(4_250);
    expect(JSON.stringify(publisher.build(input(text))).length).toBeLessThan(LIMIT_JSON);
    const sent = await publisher.publish(input(text));
    expect(sent.dataref).toBeDefined();
    const [got] = await receiveEngineEvents(az.clients, SYNTHETIC);
    expect((got?.data as { text: string }).text).toBe(text);
  });

  it('counts the base64 inflation: 60 KB of JSON is under 64 KiB raw but not once encoded', async () => {
    const text = textFor(60_000, 'x');
    expect(jsonBytes(input(text))).toBeLessThan(MAX_QUEUE_MESSAGE_BYTES);
    expect((await publisher.publish(input(text))).dataref).toBeDefined();
    await receiveEngineEvents(az.clients, SYNTHETIC);
  });

  it('JSON escaping counts: control characters take 6 bytes each as JSON', async () => {
    const text = '\u0001'.repeat(9_000); // 9,000 characters, 54,000 bytes of JSON
    expect((await publisher.publish(input(text))).dataref).toBeDefined();
    const [got] = await receiveEngineEvents(az.clients, SYNTHETIC);
    expect((got?.data as { text: string }).text).toBe(text);
  });

  it('re-sending an event writes the same blob name with the same bytes; different data under one id gets its own blob', async () => {
    const text = '界'.repeat(30_000);
    const first = await publisher.publish(input(text));
    const again = await publisher.publish(input(text, { time: new Date(at.getTime() + 60_000) }));
    expect(again.id).toBe(first.id);
    expect(again.dataref).toBe(first.dataref);
    const prefix = `${T}/int-1/${first.id}-`;
    expect(await blobNames(prefix)).toHaveLength(1);

    // Same id (the idParts), other data: a webhook's and a sweep's copy of one HubSpot version differ.
    const other = await publisher.publish(input(text, { data: { text: `${text}!` } }));
    expect(other.id).toBe(first.id);
    expect(other.dataref).not.toBe(first.dataref);
    expect(await blobNames(prefix)).toHaveLength(2);
    const got = await receiveEngineEvents(az.clients, SYNTHETIC);
    expect(got.map((e) => (e.data as { text: string }).text)).toEqual([text, text, `${text}!`]);
  });

  it('names the blob <tenant>/<integration>/<event id>-<digest of the data>.json; without an integration, <tenant>/_/…', async () => {
    const text = 'x'.repeat(70_000);
    const sent = await publisher.publish(input(text));
    const digest = eventDataDigest(JSON.stringify({ text }));
    expect(sent.dataref?.endsWith(`/${BLOB_CONTAINERS.engineEventData}/${T}/int-1/${sent.id}-${digest}.json`)).toBe(true);
    const tenantWide = await publisher.publish(input(text, { integrationId: undefined }));
    expect(tenantWide.dataref).toContain(`/${T}/_/${tenantWide.id}-`);
    await receiveEngineEvents(az.clients, SYNTHETIC);
  });

  it('a dataref never carries a SAS token, even when the app connects with a SAS connection string', async () => {
    const sas = generateAccountSASQueryParameters(
      {
        expiresOn: new Date(Date.now() + 3_600_000),
        permissions: AccountSASPermissions.parse('rwdlacup'),
        resourceTypes: AccountSASResourceTypes.parse('sco').toString(),
        services: AccountSASServices.parse('bq').toString(),
      },
      new StorageSharedKeyCredential(AZURITE_ACCOUNT, AZURITE_KEY),
    ).toString();
    const endpoint = (name: string) => new RegExp(`${name}=([^;]+)`).exec(az.connectionString)?.[1] as string;
    const sasClients = new StorageClients({ kind: 'connectionString', connectionString: `BlobEndpoint=${endpoint('BlobEndpoint')};QueueEndpoint=${endpoint('QueueEndpoint')};SharedAccessSignature=${sas}` });
    expect(sasClients.container(BLOB_CONTAINERS.engineEventData).url).toContain('sig=');
    const sasBlobs = new EventDataBlobs(sasClients);
    const sent = await new EngineEventPublisher(new QueueSender(sasClients), sasBlobs).publish(input('界'.repeat(20_000)));
    expect(sent.dataref).toBeDefined();
    expect(sent.dataref).not.toMatch(/[?&](sig|sv|se)=/);
    expect(new URL(sent.dataref as string).search).toBe('');
    const [got] = await receiveEngineEvents(az.clients, SYNTHETIC);
    expect(got?.wire.dataref).toBe(sent.dataref);
    expect((got?.data as { text: string }).text).toBe('界'.repeat(20_000));
    // The app's own reader still finds it through the SAS client.
    expect(JSON.parse((await sasBlobs.read(T, sent.dataref as string)).toString('utf8'))).toEqual({ text: '界'.repeat(20_000) });
  });

  it('writes the blob before the message: when the blob cannot be written, nothing is sent', async () => {
    const container = az.clients.container(BLOB_CONTAINERS.engineEventData);
    await container.delete();
    try {
      await expect(publisher.publish(input('y'.repeat(70_000)))).rejects.toThrow();
      // A small event still goes inline meanwhile.
      await publisher.publish(input('small'));
      const got = await receiveEngineEvents(az.clients, SYNTHETIC);
      expect(got.map((e) => e.data)).toEqual([{ text: 'small' }]);
    } finally {
      // Azurite deletes containers at once; create it again for the other tests.
      for (let i = 0; i < 50; i++) {
        try {
          await container.create();
          break;
        } catch (err) {
          if ((err as { statusCode?: number }).statusCode !== 409) throw err;
          await new Promise((r) => setTimeout(r, 100));
        }
      }
    }
  });
});

describe('event data blobs are tenant-scoped', () => {
  const A = 'contoso';
  const eventId = '0123456789abcdef0123456789abcdef';
  const digest = 'fedcba9876543210fedcba9876543210';

  it.each([
    ['a slash in the tenant id', 'evil/contoso', 'int-1'],
    ['a dot-dot tenant id', '..', 'int-1'],
    ['a dot tenant id', '.', 'int-1'],
    ['a tenant id that climbs out', '../contoso', 'int-1'],
    ['an encoded slash', 'evil%2Fcontoso', 'int-1'],
    ['a backslash', 'evil\\contoso', 'int-1'],
    ['an empty tenant id', '', 'int-1'],
    ['an integration id with a slash', 'evil', '../contoso/int-1'],
    ['a dot-dot integration id', 'evil', '..'],
    ['the no-integration marker as an integration id', 'evil', '_'],
  ])('refuses %s', (_label, t, i) => {
    expect(() => eventDataBlobName(t, i, eventId, digest)).toThrow(InvalidKeyError);
  });

  it('refuses an event id or digest that is not lowercase hex', () => {
    expect(() => eventDataBlobName(A, 'int-1', '../../x', digest)).toThrow(InvalidKeyError);
    expect(() => eventDataBlobName(A, 'int-1', eventId, 'x/y')).toThrow(InvalidKeyError);
  });

  it("no other tenant's ids make a name under A's prefix (property test over every id the pattern allows)", () => {
    const idChar = fc.constantFrom(...'abcAZ09._-/\\%'.split(''));
    const anyId = fc.string({ unit: idChar, minLength: 0, maxLength: 12 });
    fc.assert(
      fc.property(anyId, fc.option(anyId, { nil: undefined }), (t, i) => {
        let name: string;
        try {
          name = eventDataBlobName(t, i, eventId, digest);
        } catch (err) {
          if (err instanceof InvalidKeyError) return true;
          throw err;
        }
        // A valid name has exactly three segments and starts with its own tenant.
        expect(name.split('/')).toHaveLength(3);
        expect(name.startsWith(`${t}/`)).toBe(true);
        if (t !== A) expect(name.startsWith(`${A}/`)).toBe(false);
        return true;
      }),
      { numRuns: 2000 },
    );
    // And a tenant whose id merely starts with A's gets a prefix of its own.
    expect(eventDataBlobName(`${A}x`, 'int-1', eventId, digest).startsWith(`${A}/`)).toBe(false);
  });

  describe('reading by dataref', () => {
    let az: Awaited<ReturnType<typeof useAzurite>>;
    let blobs: EventDataBlobs;
    let publisher: EngineEventPublisher;
    const TA = tenantId('tenant-a');
    const TB = tenantId('tenant-b');

    beforeAll(async () => {
      az = await useAzurite();
      blobs = new EventDataBlobs(az.clients);
      publisher = new EngineEventPublisher(new QueueSender(az.clients), blobs);
    });
    afterAll(async () => az?.stop());

    async function publishBig(t: TenantId): Promise<string> {
      const ev = await publisher.publish({ tenantId: t, integrationId: 'int-1', name: 'ticket.updated', connector: 'hubspot', idParts: ['1'], data: { text: '界'.repeat(30_000) }, dataSchema: z.object({ text: z.string() }) });
      return ev.dataref as string;
    }

    it("the owner reads its data; tenant B cannot read A's dataref, nor reach it by a crafted one", async () => {
      const ref = await publishBig(TA);
      expect(JSON.parse((await blobs.read(TA, ref)).toString('utf8'))).toEqual({ text: '界'.repeat(30_000) });
      await expect(blobs.read(TB, ref)).rejects.toThrow(InvalidKeyError);
      const base = ref.slice(0, ref.indexOf(`/${TA}/`));
      const name = ref.slice(base.length + 1);
      for (const crafted of [
        `${base}/${TB}/../${name}`,
        `${base}/${TB}%2F..%2F${name}`,
        `${base}/${TB}/${name}`,
        ref.replace(`/${BLOB_CONTAINERS.engineEventData}/`, '/other-container/'),
        `https://evil.example/${name}`,
      ]) {
        await expect(blobs.read(TB, crafted)).rejects.toThrow(InvalidKeyError);
      }
    });

    it('a blob changed after it was written does not pass as the event data', async () => {
      const ref = await publishBig(TA);
      const name = ref.slice(ref.indexOf(`/${TA}/`) + 1);
      const body = Buffer.from('{"text":"tampered"}');
      await az.clients.container(BLOB_CONTAINERS.engineEventData).getBlockBlobClient(name).upload(body, body.length);
      await expect(blobs.read(TA, ref)).rejects.toThrow(/digest/);
    });
  });
});
