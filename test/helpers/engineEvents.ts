import { BlobClient, StorageSharedKeyCredential } from '@azure/storage-blob';
import { AZURITE_ACCOUNT, AZURITE_KEY } from '../../runner/azurite';
import { cloudEventSchema, type WireCloudEvent } from '../../src/platform/events';
import type { StorageClients } from '../../src/storage';

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
 * It reads the URL as given, not through our code, so a wrong URL or container fails here.
 */
export async function receiveEngineEvents(clients: StorageClients): Promise<ReceivedEvent[]> {
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
      out.push({ wire, dataBytes, data: JSON.parse(dataBytes.toString('utf8')) });
      await q.deleteMessage(m.messageId, m.popReceipt);
    }
  }
}
