import { createHash } from 'node:crypto';
import { InvalidKeyError } from '../platform/errors';
import type { StorageClients } from './clients';
import { tenantIdSchema, integrationIdSchema, type TenantId } from './keys';
import { BLOB_CONTAINERS } from './names';

/**
 * The claim check for engine events: the `data` of an event too large for a queue message is kept as a
 * blob in `engine-event-data`, and the event carries its URL in `dataref` (CloudEvents dataref extension).
 *
 * Names are `<tenantId>/<integrationId>/<eventId>-<digest>.json` (`_` stands for "no integration", which
 * no integration id can be, since ids start with a letter or digit). Every part is checked against the
 * id patterns before it becomes a path, so no id can carry a `/` or be `.`/`..` and reach into another
 * tenant's prefix; the `/` after the tenant id keeps `ab` from being a prefix of `abc`.
 *
 * The event id is derived from the change and `digest` from the data's bytes, so re-sending an event
 * rewrites the same blob with the same bytes (idempotent), while two sends that share an id but not their
 * data (a webhook's and a sweep's copy of one HubSpot version differ in `source`) never overwrite each
 * other: each message's `dataref` names exactly its own data, as the dataref extension requires.
 */
const NO_INTEGRATION = '_';
const EVENT_ID_PATTERN = /^[0-9a-f]{16,64}$/;
const FILE_PATTERN = /^([0-9a-f]{16,64})-([0-9a-f]{32})\.json$/;

/** What `read` buffers at most; our largest records are far below it. */
const MAX_READ_BYTES = 64 * 1024 * 1024;

/** First 128 bits of the SHA-256 of the data's UTF-8 bytes, as hex. */
export function eventDataDigest(json: string | Buffer): string {
  return createHash('sha256').update(typeof json === 'string' ? Buffer.from(json, 'utf8') : json).digest('hex').slice(0, 32);
}

export function eventDataBlobName(tenant: string, integration: string | undefined, eventId: string, digest: string): string {
  const t = tenantIdSchema.safeParse(tenant);
  if (!t.success) throw new InvalidKeyError('event data blob: tenant id is not a valid id');
  let i = NO_INTEGRATION;
  if (integration !== undefined) {
    const parsed = integrationIdSchema.safeParse(integration);
    if (!parsed.success) throw new InvalidKeyError('event data blob: integration id is not a valid id');
    i = parsed.data;
  }
  if (!EVENT_ID_PATTERN.test(eventId)) throw new InvalidKeyError('event data blob: event id must be lowercase hex');
  if (!/^[0-9a-f]{32}$/.test(digest)) throw new InvalidKeyError('event data blob: digest must be 32 lowercase hex digits');
  return `${t.data}/${i}/${eventId}-${digest}.json`;
}

/** The prefix every one of a tenant's event-data blobs starts with. */
export function eventDataTenantPrefix(tenant: TenantId): string {
  return `${tenantIdSchema.parse(tenant)}/`;
}

export class EventDataBlobs {
  constructor(private readonly clients: StorageClients) {}

  /**
   * Writes the data and resolves once the service has committed it (a Put Blob answers 201 only after
   * the write is durable), returning the blob's URL for `dataref`. The URL carries no SAS or key: a
   * reader needs its own access (the engine's identity, Storage Blob Data Reader on the container).
   */
  async put(name: string, json: string, meta: { tenantId: TenantId; eventId: string }): Promise<string> {
    const body = Buffer.from(json, 'utf8');
    const blob = this.clients.container(BLOB_CONTAINERS.engineEventData).getBlockBlobClient(name);
    await blob.upload(body, body.length, {
      blobHTTPHeaders: { blobContentType: 'application/json; charset=utf-8' },
      metadata: { tenantid: meta.tenantId, eventid: meta.eventId },
    });
    // A SAS connection string puts its token in every client URL; the event must not carry it.
    const url = new URL(blob.url);
    url.search = '';
    return url.toString();
  }

  /**
   * Reads the data a `dataref` names, for a reader acting for `tenant`: a reference outside this account's
   * container or outside the tenant's prefix is refused rather than followed.
   */
  async read(tenant: TenantId, dataref: string): Promise<Buffer> {
    const container = this.clients.container(BLOB_CONTAINERS.engineEventData);
    const containerUrl = new URL(container.url);
    containerUrl.search = '';
    const base = `${containerUrl.toString().replace(/\/+$/, '')}/`;
    if (!URL.canParse(dataref) || !dataref.startsWith(base)) throw new InvalidKeyError('dataref does not name an event data blob of this account');
    let name: string;
    try {
      name = decodeURIComponent(new URL(dataref).pathname.slice(new URL(base).pathname.length));
    } catch {
      throw new InvalidKeyError('dataref is not a well-formed URL');
    }
    const [t, i, file, ...rest] = name.split('/');
    const parts = FILE_PATTERN.exec(file ?? '');
    if (rest.length > 0 || t === undefined || i === undefined || !parts) throw new InvalidKeyError('dataref does not name an event data blob');
    const expected = eventDataBlobName(t, i === NO_INTEGRATION ? undefined : i, parts[1] as string, parts[2] as string);
    if (expected !== name || !name.startsWith(eventDataTenantPrefix(tenant))) throw new InvalidKeyError("dataref is not this tenant's event data");
    const blob = container.getBlockBlobClient(name);
    const size = (await blob.getProperties()).contentLength ?? 0;
    if (size > MAX_READ_BYTES) throw new InvalidKeyError(`event data blob is ${size} bytes; more than ${MAX_READ_BYTES} is not read`);
    const bytes = size === 0 ? Buffer.alloc(0) : await blob.downloadToBuffer(0, size);
    // The name commits to the content: a blob changed after it was written is not passed off as the event's data.
    if (eventDataDigest(bytes) !== parts[2]) throw new InvalidKeyError('event data blob does not match the digest in its name');
    return bytes;
  }
}
