import { createHash } from 'node:crypto';
import { z } from 'zod';
import type { QueueSender } from '../../storage';
import { QUEUES, type TenantId } from '../../storage';

/**
 * Events to the engine: CloudEvents 1.0 in JSON form on the `engine-events` queue. `id` is derived from
 * the underlying change, so a redelivered webhook yields the same id and the engine de-duplicates.
 */
export const EVENT_TYPE_PREFIX = 'com.itil-next.connectors.';

export const cloudEventSchema = z.object({
  specversion: z.literal('1.0'),
  id: z.string().min(1).max(256),
  source: z.string().min(1),
  type: z.string().regex(/^com\.itil-next\.connectors\.[a-z0-9_.]+\.v\d+$/),
  time: z.string().datetime(),
  subject: z.string().optional(),
  datacontenttype: z.literal('application/json'),
  /** Tenant the event belongs to (CloudEvents extension attribute). */
  tenantid: z.string().min(1),
  integrationid: z.string().optional(),
  data: z.unknown(),
});
export type CloudEvent<T = unknown> = Omit<z.infer<typeof cloudEventSchema>, 'data'> & { data: T };

/** Stable id for an event from the parts that identify the underlying change. */
export function stableEventId(...parts: Array<string | number>): string {
  return createHash('sha256').update(parts.map(String).join('\u0000')).digest('hex').slice(0, 32);
}

export interface PublishInput<T> {
  tenantId: TenantId;
  integrationId?: string;
  /** e.g. `ticket.create_requested`; becomes `com.itil-next.connectors.ticket.create_requested.v1`. */
  name: string;
  version?: number;
  /** Connector that observed the change, e.g. `hubspot` or `msgraph`. */
  connector: string;
  subject?: string;
  /** Parts of the change's identity; hashed into the event id. */
  idParts: Array<string | number>;
  data: T;
  dataSchema: z.ZodType<T>;
  time?: Date;
}

export class EngineEventPublisher {
  constructor(private readonly queues: QueueSender) {}

  build<T>(input: PublishInput<T>): CloudEvent<T> {
    const data = input.dataSchema.parse(input.data);
    const event: CloudEvent<T> = {
      specversion: '1.0',
      id: stableEventId(input.connector, input.tenantId, input.name, ...input.idParts),
      source: `/connectors/${input.connector}/tenants/${input.tenantId}`,
      type: `${EVENT_TYPE_PREFIX}${input.name}.v${input.version ?? 1}`,
      time: (input.time ?? new Date()).toISOString(),
      ...(input.subject ? { subject: input.subject } : {}),
      datacontenttype: 'application/json',
      tenantid: input.tenantId,
      ...(input.integrationId ? { integrationid: input.integrationId } : {}),
      data,
    };
    cloudEventSchema.parse(event);
    return event;
  }

  async publish<T>(input: PublishInput<T>): Promise<CloudEvent<T>> {
    const event = this.build(input);
    await this.queues.send(QUEUES.engineEvents, event);
    return event;
  }
}
