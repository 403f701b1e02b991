import { createHash } from 'node:crypto';
import { z } from 'zod';
import type { EventDataBlobs, QueueSender } from '../../storage';
import type { EventDefinition } from './catalog';
import { eventDataBlobName, eventDataDigest, fitsQueueMessage, QUEUES, type TenantId } from '../../storage';

/**
 * Events to the engine: CloudEvents 1.0 in JSON form on the `engine-events` queue. `id` is derived from
 * the underlying change, so a redelivered webhook yields the same id and the engine de-duplicates.
 *
 * An event that does not fit a queue message as sent (base64 of its UTF-8 JSON, 64 KiB) goes by claim
 * check: its `data` is written to a blob first and the message carries `dataref` (the blob's URL, the
 * CloudEvents dataref extension) and no `data`. The spec requires data and dataref to hold the same
 * information, so no partial summary is sent inline; routing needs only the attributes (type, subject,
 * tenantid, integrationid), which stay on the message.
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
  /** Where `data` is when it is not inline (CloudEvents dataref extension): a blob URL. */
  dataref: z.url().optional(),
  data: z.unknown().optional(),
}).refine((e) => (e.dataref === undefined) === ('data' in e), { message: 'an event carries either data or dataref', path: ['dataref'] });
export type CloudEvent<T = unknown> = Omit<z.infer<typeof cloudEventSchema>, 'data'> & { data: T };
/** What goes on the queue: the event itself, or its attributes with `dataref` in place of `data`. */
export type WireCloudEvent = Omit<CloudEvent, 'data'> & { data?: unknown };

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
  readonly #catalog: ReadonlyMap<string, EventDefinition> | undefined;

  /**
   * With a `catalog` (the deployment's: every connector's event catalog), only the events it declares can be
   * sent, and their data must pass the catalog's schema: what `asyncapi.json` promises the engine is all it
   * can get. Without one (the publisher's own tests), any well-formed event goes.
   */
  constructor(
    private readonly queues: QueueSender,
    private readonly blobs: EventDataBlobs,
    catalog?: readonly EventDefinition[],
  ) {
    this.#catalog = catalog ? new Map(catalog.map((d) => [`${d.name}.v${d.version}`, d])) : undefined;
  }

  build<T>(input: PublishInput<T>): CloudEvent<T> {
    const def = this.#catalog?.get(`${input.name}.v${input.version ?? 1}`);
    if (this.#catalog) {
      if (!def) throw new Error(`event ${input.name}.v${input.version ?? 1} is not in the event catalog (src/connectors/*/eventCatalog.ts)`);
      if (def.connector !== input.connector) throw new Error(`event ${input.name} belongs to connector ${def.connector}, not ${input.connector}`);
      if (def.schema !== input.dataSchema) def.schema.parse(input.data);
    }
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

  /**
   * Sends the event inline when its encoded message fits, else by claim check. The blob is written (and
   * durable) before the message is sent; a crash between the two leaves a blob no message names, which
   * the container's lifecycle rule deletes. The returned event carries `dataref` when one was used.
   */
  async publish<T>(input: PublishInput<T>): Promise<CloudEvent<T>> {
    const event = this.build(input);
    const inline = this.queues.encode(event);
    if (fitsQueueMessage(inline)) {
      await this.queues.sendEncoded(QUEUES.engineEvents, inline);
      return event;
    }
    const { data, ...attributes } = event;
    const json = JSON.stringify(data);
    const name = eventDataBlobName(event.tenantid, event.integrationid, event.id, eventDataDigest(json));
    const dataref = await this.blobs.put(name, json, { tenantId: input.tenantId, eventId: event.id });
    const reference: WireCloudEvent = { ...attributes, dataref };
    cloudEventSchema.parse(reference);
    await this.queues.send(QUEUES.engineEvents, reference);
    return { ...event, dataref };
  }
}
