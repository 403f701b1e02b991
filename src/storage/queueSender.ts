import { z } from 'zod';
import type { StorageClients } from './clients';
import { QUEUE_MESSAGE_ENCODING, type QueueName } from './names';
import { tenantIdSchema } from './keys';

/**
 * The service limit: 64 KiB of message text as sent (Azurite answers 413 above it). Our text is base64 of
 * the UTF-8 JSON (host.json messageEncoding), so the JSON may take at most 48 KiB of UTF-8 *bytes*;
 * a JavaScript string's `.length` counts UTF-16 units and is no measure of either.
 */
export const MAX_QUEUE_MESSAGE_BYTES = 64 * 1024;
const MAX_ENCODED_BYTES = MAX_QUEUE_MESSAGE_BYTES;

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

declare const encodedBrand: unique symbol;

/** A message whose tenant was checked, encoded once, with the bytes it takes on the wire. Made by `QueueSender.encode` only. */
export interface EncodedMessage {
  readonly text: string;
  readonly bytes: number;
  readonly [encodedBrand]: true;
}

export function fitsQueueMessage(encoded: EncodedMessage): boolean {
  return encoded.bytes <= MAX_ENCODED_BYTES;
}

export class QueueSender {
  constructor(private readonly clients: StorageClients) {}

  /** Validates the tenant and encodes as `send` would; lets a caller decide by size before sending. */
  encode(message: TenantMessage): EncodedMessage {
    tenantMessageSchema.parse(message);
    const text = encodeQueueMessage(message);
    return { text, bytes: Buffer.byteLength(text, 'utf8') } as EncodedMessage;
  }

  async send(queue: QueueName, message: TenantMessage, opts: { visibilityTimeoutSeconds?: number; ttlSeconds?: number } = {}): Promise<string> {
    return this.sendEncoded(queue, this.encode(message), opts);
  }

  /** Sends what `encode` made (so a caller that measured first does not encode twice). */
  async sendEncoded(queue: QueueName, encoded: EncodedMessage, opts: { visibilityTimeoutSeconds?: number; ttlSeconds?: number } = {}): Promise<string> {
    const { text, bytes } = encoded;
    if (bytes > MAX_ENCODED_BYTES) throw new MessageTooLargeError(queue, bytes);
    const res = await this.clients.queue(queue).sendMessage(text, {
      ...(opts.visibilityTimeoutSeconds !== undefined ? { visibilityTimeout: opts.visibilityTimeoutSeconds } : {}),
      ...(opts.ttlSeconds !== undefined ? { messageTimeToLive: opts.ttlSeconds } : {}),
    });
    return res.messageId;
  }
}
