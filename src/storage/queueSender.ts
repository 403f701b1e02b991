import { z } from 'zod';
import type { StorageClients } from './clients';
import { INTAKE_QUEUES, QUEUE_MESSAGE_ENCODING, type IntakeQueueName, type QueueName } from './names';
import { tenantIdSchema } from './keys';

/**
 * The service limit: 64 KiB of message text as sent (Azurite answers 413 above it). Our text is base64 of
 * the UTF-8 JSON (host.json messageEncoding), so the JSON may take at most 48 KiB of UTF-8 *bytes*;
 * a JavaScript string's `.length` counts UTF-16 units and is no measure of either.
 */
export const MAX_QUEUE_MESSAGE_BYTES = 64 * 1024;
export const MAX_ENCODED_BYTES = MAX_QUEUE_MESSAGE_BYTES;

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

/**
 * A message on an intake queue (`INTAKE_QUEUES`): a webhook delivery verified as coming from the
 * provider, scoped by the provider's external account(s) it names, before any tenant is resolved.
 */
export const intakeMessageSchema = z.looseObject({ source: z.enum(['hubspot', 'msgraph']), deliveryId: z.string().min(1).max(128) });
export type IntakeMessage = z.input<typeof intakeMessageSchema>;

/** Length of `encodeQueueMessage` for a JSON text of `jsonBytes` UTF-8 bytes. */
function encodedLength(jsonBytes: number): number {
  return QUEUE_MESSAGE_ENCODING === 'base64' ? 4 * Math.ceil(jsonBytes / 3) : jsonBytes;
}

/**
 * Splits `items` over as few messages `make(part)` as fit the queue's limit, measured in the bytes that
 * will be sent (the encoded text), in one pass: the JSON of an envelope with k items is the JSON of the
 * empty envelope plus each item's JSON plus k - 1 commas, so each item is serialised once. `make` must
 * put the items it is given in one array of the message and vary nothing else but the part index. Throws `MessageTooLargeError` for an item that fits no message.
 */
export function splitIntoMessages<I, M>(queue: string, items: readonly I[], make: (part: I[], index: number) => M, maxEncoded: number = MAX_ENCODED_BYTES): M[] {
  // Per part: the envelope may number its parts, and a number's width varies.
  const emptyBytes = (index: number) => Buffer.byteLength(JSON.stringify(make([], index)), 'utf8');
  const out: M[] = [];
  let current: I[] = [];
  let bytes = emptyBytes(0);
  for (const item of items) {
    const itemBytes = Buffer.byteLength(JSON.stringify(item), 'utf8');
    const withItem = bytes + itemBytes + (current.length > 0 ? 1 : 0);
    if (current.length > 0 && encodedLength(withItem) > maxEncoded) {
      out.push(make(current, out.length));
      current = [];
      bytes = emptyBytes(out.length);
    }
    const next = bytes + itemBytes + (current.length > 0 ? 1 : 0);
    if (encodedLength(next) > maxEncoded) throw new MessageTooLargeError(queue, encodedLength(next));
    current.push(item);
    bytes = next;
  }
  if (current.length > 0) out.push(make(current, out.length));
  return out;
}

export class QueueSender {
  constructor(private readonly clients: StorageClients) {}

  /** Validates the tenant and encodes as `send` would; lets a caller decide by size before sending. */
  encode(message: TenantMessage): EncodedMessage {
    tenantMessageSchema.parse(message);
    return encoded(message);
  }

  async send(queue: QueueName, message: TenantMessage, opts: { visibilityTimeoutSeconds?: number; ttlSeconds?: number } = {}): Promise<string> {
    return this.sendEncoded(queue, this.encode(message), opts);
  }

  /** A delivery on an intake queue: account-scoped, not tenant-scoped (see `INTAKE_QUEUES`). */
  async sendIntake(queue: IntakeQueueName, message: IntakeMessage, opts: { visibilityTimeoutSeconds?: number; ttlSeconds?: number } = {}): Promise<string> {
    if (!(INTAKE_QUEUES as readonly string[]).includes(queue)) throw new Error(`${queue} is not an intake queue`);
    intakeMessageSchema.parse(message);
    return this.sendEncoded(queue, encoded(message), opts);
  }

  /** Sends what `encode` made (so a caller that measured first does not encode twice). */
  async sendEncoded(queue: QueueName, message: EncodedMessage, opts: { visibilityTimeoutSeconds?: number; ttlSeconds?: number } = {}): Promise<string> {
    const { text, bytes } = message;
    if (bytes > MAX_ENCODED_BYTES) throw new MessageTooLargeError(queue, bytes);
    const res = await this.clients.queue(queue).sendMessage(text, {
      ...(opts.visibilityTimeoutSeconds !== undefined ? { visibilityTimeout: opts.visibilityTimeoutSeconds } : {}),
      ...(opts.ttlSeconds !== undefined ? { messageTimeToLive: opts.ttlSeconds } : {}),
    });
    return res.messageId;
  }
}

/** The message as it will be sent, with its size in the bytes sent. */
function encoded(message: unknown): EncodedMessage {
  const text = encodeQueueMessage(message);
  return { text, bytes: Buffer.byteLength(text, 'utf8') } as EncodedMessage;
}
