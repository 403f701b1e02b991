import type { QueueClient } from '@azure/storage-queue';
import { ZodError } from 'zod';
import { QUEUES, type QueueName } from '../../../src/storage/names';
import { encodeQueueMessage, MessageTooLargeError, QueueSender, type TenantMessage } from '../../../src/storage/queueSender';
import { useAzurite } from '../../helpers/azurite';

let azurite: Awaited<ReturnType<typeof useAzurite>>;
let sender: QueueSender;

const q = (name: QueueName): QueueClient => azurite.clients.queue(name);

async function depth(name: QueueName): Promise<number> {
  const props = await q(name).getProperties();
  return props.approximateMessagesCount ?? -1;
}

async function receiveAll(name: QueueName): Promise<Array<{ text: string; messageId: string }>> {
  const res = await q(name).receiveMessages({ numberOfMessages: 32, visibilityTimeout: 60 });
  return res.receivedMessageItems.map((m) => ({ text: m.messageText, messageId: m.messageId }));
}

const decode = (text: string): unknown => JSON.parse(Buffer.from(text, 'base64').toString('utf8'));

beforeAll(async () => {
  azurite = await useAzurite();
  sender = new QueueSender(azurite.clients);
});

afterAll(async () => {
  await azurite?.stop();
});

beforeEach(async () => {
  await Promise.all(Object.values(QUEUES).map((name) => q(name).clearMessages()));
});

describe('QueueSender.send', () => {
  it('enqueues base64-encoded JSON that decodes to the message', async () => {
    const message = { tenantId: 'contoso', integrationId: 'i-1', kind: 'sync', note: 'ünïcødé ✓ "quoted" +/=' };
    const id = await sender.send(QUEUES.hubspotSync, message);
    expect(id).toEqual(expect.any(String));

    const got = await receiveAll(QUEUES.hubspotSync);
    expect(got).toHaveLength(1);
    const [item] = got;
    expect(item?.messageId).toBe(id);
    // strictly base64 text, which the Functions queue trigger decodes (host.json messageEncoding)
    expect(item?.text).toMatch(/^[A-Za-z0-9+/]+={0,2}$/);
    expect(item?.text).toBe(encodeQueueMessage(message));
    expect(decode(item?.text ?? '')).toEqual(message);
  });

  it('sends to the named queue only', async () => {
    await sender.send(QUEUES.teamsCards, { tenantId: 't1' });
    expect(await depth(QUEUES.teamsCards)).toBe(1);
    expect(await depth(QUEUES.hubspotSync)).toBe(0);
    expect(await depth(QUEUES.engineEvents)).toBe(0);
  });

  it.each<[string, unknown]>([
    ['no tenantId', { integrationId: 'i1' }],
    ['empty tenantId', { tenantId: '' }],
    ['tenantId with a separator', { tenantId: 'a:b' }],
    ['tenantId with a slash', { tenantId: 'a/b' }],
    ['tenantId with a leading dash', { tenantId: '-a' }],
    ['numeric tenantId', { tenantId: 42 }],
    ['null message', null],
  ])('rejects a message with %s and enqueues nothing', async (_label, message) => {
    await expect(sender.send(QUEUES.engineEvents, message as TenantMessage)).rejects.toBeInstanceOf(ZodError);
    expect(await depth(QUEUES.engineEvents)).toBe(0);
  });

  it('rejects a message over 64 KiB once encoded with MessageTooLargeError and enqueues nothing', async () => {
    // 48 KiB of JSON is exactly 64 KiB of base64; just over that is too big
    const overhead = JSON.stringify({ tenantId: 't1', blob: '' }).length;
    const big = { tenantId: 't1', blob: 'x'.repeat(48 * 1024 - overhead + 1) };
    expect(encodeQueueMessage(big).length).toBeGreaterThan(64 * 1024);
    await expect(sender.send(QUEUES.hubspotEvents, big)).rejects.toBeInstanceOf(MessageTooLargeError);
    expect(await depth(QUEUES.hubspotEvents)).toBe(0);
  });

  it('accepts a message of exactly 64 KiB encoded', async () => {
    const overhead = JSON.stringify({ tenantId: 't1', blob: '' }).length;
    const max = { tenantId: 't1', blob: 'x'.repeat(48 * 1024 - overhead) };
    expect(encodeQueueMessage(max).length).toBe(64 * 1024);
    await sender.send(QUEUES.hubspotEvents, max);
    const got = await receiveAll(QUEUES.hubspotEvents);
    expect(got).toHaveLength(1);
    expect(decode(got[0]?.text ?? '')).toEqual(max);
  });

  it('visibilityTimeoutSeconds delays the message', async () => {
    await sender.send(QUEUES.graphNotifications, { tenantId: 't1', n: 1 }, { visibilityTimeoutSeconds: 2 });
    // it is in the queue, but nobody can see it yet
    expect(await depth(QUEUES.graphNotifications)).toBe(1);
    expect(await receiveAll(QUEUES.graphNotifications)).toHaveLength(0);
    expect((await q(QUEUES.graphNotifications).peekMessages()).peekedMessageItems).toHaveLength(0);

    await new Promise((r) => setTimeout(r, 2500));
    const got = await receiveAll(QUEUES.graphNotifications);
    expect(got).toHaveLength(1);
    expect(decode(got[0]?.text ?? '')).toEqual({ tenantId: 't1', n: 1 });
  });

  it('without a visibility timeout the message is visible at once', async () => {
    await sender.send(QUEUES.graphNotifications, { tenantId: 't1', n: 2 });
    expect(await receiveAll(QUEUES.graphNotifications)).toHaveLength(1);
  });

  it('ttlSeconds sets the expiry', async () => {
    await sender.send(QUEUES.engineEvents, { tenantId: 't1' }, { ttlSeconds: 3600 });
    const peeked = await q(QUEUES.engineEvents).peekMessages();
    const item = peeked.peekedMessageItems[0];
    expect(item).toBeDefined();
    const lifetime = (item?.expiresOn.getTime() ?? 0) - (item?.insertedOn.getTime() ?? 0);
    expect(lifetime).toBeGreaterThanOrEqual(3599_000);
    expect(lifetime).toBeLessThanOrEqual(3601_000);
  });
});
