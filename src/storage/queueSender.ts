import { z } from 'zod';
import type { StorageClients } from './clients';
import { QUEUE_MESSAGE_ENCODING, type QueueName } from './names';
import { tenantIdSchema } from './keys';

// The service limit is 64 KiB of message text; base64 inflates by 4/3, so the JSON must stay under 48 KiB.
const MAX_ENCODED_BYTES = 64 * 1024;

/**
 * Every message names its tenant; it carries ids, never secrets. CloudEvents on `engine-events` name it
 * in the `tenantid` extension attribute (CloudEvents attribute names are lowercase).
 */
export const tenantMessageSchema = z.union([z.looseObject({ tenantId: tenantIdSchema }), z.looseObject({ tenantid: tenantIdSchema })]);
export type TenantMessage = z.input<typeof tenantMessageSchema>;

export class MessageTooLargeError extends Error {
  constructor(queue: string, bytes: number) {
    super(`message for queue ${queue} is ${bytes} bytes encoded; the limit is ${MAX_ENCODED_BYTES}`);
    this.name = 'MessageTooLargeError';
  }
}

export function encodeQueueMessage(message: unknown): string {
  const json = JSON.stringify(message);
  return QUEUE_MESSAGE_ENCODING === 'base64' ? Buffer.from(json, 'utf8').toString('base64') : json;
}

export class QueueSender {
  constructor(private readonly clients: StorageClients) {}

  async send(queue: QueueName, message: TenantMessage, opts: { visibilityTimeoutSeconds?: number; ttlSeconds?: number } = {}): Promise<string> {
    tenantMessageSchema.parse(message);
    const text = encodeQueueMessage(message);
    if (text.length > MAX_ENCODED_BYTES) throw new MessageTooLargeError(queue, text.length);
    const res = await this.clients.queue(queue).sendMessage(text, {
      ...(opts.visibilityTimeoutSeconds !== undefined ? { visibilityTimeout: opts.visibilityTimeoutSeconds } : {}),
      ...(opts.ttlSeconds !== undefined ? { messageTimeToLive: opts.ttlSeconds } : {}),
    });
    return res.messageId;
  }
}
