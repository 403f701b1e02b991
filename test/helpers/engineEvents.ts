import { readFileSync } from 'node:fs';
import path from 'node:path';
import { BlobClient, StorageSharedKeyCredential } from '@azure/storage-blob';
import Ajv2020, { type ValidateFunction } from 'ajv/dist/2020';
import addFormats from 'ajv-formats';
import { AZURITE_ACCOUNT, AZURITE_KEY } from '../../runner/azurite';
import { cloudEventSchema, type WireCloudEvent } from '../../src/platform/events';
import type { StorageClients } from '../../src/storage';

type JsonObject = Record<string, unknown>;

interface AsyncApiDoc {
  components: { schemas: { CloudEvent: JsonObject }; messages: Record<string, { name: string; payload: { allOf: [unknown, JsonObject] } }> };
}

let validators: Map<string, ValidateFunction> | undefined;

/** One validator per event type, from the committed asyncapi.json (the contract the engine team reads). */
function contract(): Map<string, ValidateFunction> {
  if (validators) return validators;
  const doc = JSON.parse(readFileSync(path.resolve(__dirname, '..', '..', 'asyncapi.json'), 'utf8')) as AsyncApiDoc;
  const ajv = new Ajv2020({ strict: false, allErrors: true });
  addFormats(ajv);
  validators = new Map();
  for (const message of Object.values(doc.components.messages)) {
    // The payload's first part is a $ref to the shared envelope; inline it so each schema stands alone.
    validators.set(message.name, ajv.compile({ allOf: [doc.components.schemas.CloudEvent, message.payload.allOf[1]] }));
  }
  return validators;
}

/**
 * Throws unless `event` (a parsed `engine-events` message) is one of the types asyncapi.json lists and matches
 * its schema. For a claim-checked event, pass the `data` read from its `dataref`: it is checked as the event's
 * data too. The suites call it on every event they read, so the document cannot drift from what is sent.
 */
export function assertEngineEvent(event: unknown, resolvedData?: unknown): void {
  const type = (event as { type?: unknown } | null)?.type;
  const validate = typeof type === 'string' ? contract().get(type) : undefined;
  if (!validate) throw new Error(`engine event of type ${String(type)} is not in asyncapi.json`);
  if (!validate(event)) throw new Error(`engine event ${type} does not match asyncapi.json: ${JSON.stringify(validate.errors?.slice(0, 5))}`);
  const { dataref, ...rest } = event as { dataref?: unknown };
  if (dataref !== undefined) {
    if (resolvedData === undefined) throw new Error(`engine event ${type} has a dataref; pass the data read from it`);
    if (!validate({ ...rest, data: resolvedData })) throw new Error(`data behind the dataref of ${type} does not match asyncapi.json: ${JSON.stringify(validate.errors?.slice(0, 5))}`);
  }
}

/**
 * `assertEngineEvent` for a message read off `engine-events` by any suite: a `dataref` is followed (with
 * Azurite's well-known account key, as the engine would with its own identity) so the data behind it is
 * checked too.
 */
export async function checkEngineEventMessage(event: unknown): Promise<void> {
  const dataref = (event as { dataref?: unknown } | null)?.dataref;
  if (typeof dataref !== 'string') return assertEngineEvent(event);
  const body = await new BlobClient(dataref, new StorageSharedKeyCredential(AZURITE_ACCOUNT, AZURITE_KEY)).downloadToBuffer();
  assertEngineEvent(event, JSON.parse(body.toString('utf8')));
}

export interface ReceivedEvent {
  /** The message as it was on the queue (attributes, and `data` or `dataref`). */
  wire: WireCloudEvent;
  /** The event's data, inline or read from `dataref`, as the raw UTF-8 JSON bytes. */
  dataBytes: Buffer;
  data: unknown;
}

/**
 * What the engine does with `engine-events`: decodes each message (base64 → UTF-8 JSON), and for a
 * message with `dataref` downloads that URL with its own storage credential (here Azurite's account key).
 * It reads the URL as given, not through our code, so a wrong URL or container fails here. Every event is
 * checked against asyncapi.json unless `contract: false` (the publisher's own tests send synthetic events).
 */
export async function receiveEngineEvents(clients: StorageClients, opts: { contract?: boolean } = {}): Promise<ReceivedEvent[]> {
  const q = clients.queue('engine-events');
  const out: ReceivedEvent[] = [];
  const credential = new StorageSharedKeyCredential(AZURITE_ACCOUNT, AZURITE_KEY);
  for (;;) {
    const res = await q.receiveMessages({ numberOfMessages: 32, visibilityTimeout: 60 });
    if (res.receivedMessageItems.length === 0) return out;
    for (const m of res.receivedMessageItems) {
      const wire = cloudEventSchema.parse(JSON.parse(Buffer.from(m.messageText, 'base64').toString('utf8'))) as WireCloudEvent;
      let dataBytes: Buffer;
      if (wire.dataref !== undefined) {
        if ('data' in wire) throw new Error(`event ${wire.id} has both data and dataref`);
        dataBytes = await new BlobClient(wire.dataref, credential).downloadToBuffer();
      } else {
        dataBytes = Buffer.from(JSON.stringify(wire.data), 'utf8');
      }
      const data: unknown = JSON.parse(dataBytes.toString('utf8'));
      if (opts.contract !== false) assertEngineEvent(wire, data);
      out.push({ wire, dataBytes, data });
      await q.deleteMessage(m.messageId, m.popReceipt);
    }
  }
}
