import { z } from 'zod';
import { faultPoint } from '../../platform/faultPoints';
import type { Logger } from '../../platform/logging';
import type { EngineEventPublisher } from '../../platform/events';
import type { Integration, ProcessedStore } from '../../storage';
import type { HubSpotCaller } from './caller';
import { WEBHOOK_CLAIM_STALE_MS, type HubSpotEventsMessage, type HubSpotObjectType, type QueuedEvent } from './events';
import type { HubSpotRecordStore, RecordPlan } from './records';
import { publishChanges } from './sync/changes';
import { hubSpotObjectSchema, readAssociations, ticketPipelines, toHubSpotObject, type HubSpotObject, type PipelineLabels } from './sync/hubspotApi';
import { OBJECT_SPECS } from './sync/objects';

/** Where merge announcements are claimed in the Processed table (one per CloudEvent id). */
export const MERGE_CLAIM_SOURCE = 'hubspot-merge';

/** Batch read takes at most 100 ids (HubSpot's batch limit). */
export const BATCH_READ_LIMIT = 100;
const LABELS_TTL_MS = 5 * 60_000;

/** What the events of one object in one message amount to. */
interface Coalesced {
  objectType: HubSpotObjectType;
  objectId: string;
  created: boolean;
  /** Deleted after its last creation/restore/change in this batch. */
  deleted: boolean;
  deletedAt: number;
  associationsChanged: boolean;
  lastAt: number;
  merges: QueuedEvent[];
}

export interface EventWorkerDeps {
  records: HubSpotRecordStore;
  events: EngineEventPublisher;
  /** Claims of merge announcements (`MERGE_CLAIM_SOURCE`). */
  processed: ProcessedStore;
  log: Logger;
  /** Ticket pipeline labels per integration, kept a few minutes. */
  labelsCache?: Map<string, { at: number; labels: PipelineLabels }>;
}

export interface EventWorkerResult {
  objects: number;
  reads: number;
  created: number;
  updated: number;
  deleted: number;
  merged: number;
  echoes: number;
}

/** `contact.merged` and friends: which objects became which. */
export const hubspotObjectMergedSchema = z.object({
  integrationId: z.string(),
  portalId: z.string(),
  objectType: z.enum(['tickets', 'contacts', 'companies']),
  primaryObjectId: z.string(),
  mergedObjectIds: z.array(z.string()),
  newObjectId: z.string().optional(),
  occurredAt: z.string(),
  source: z.literal('webhook'),
});
export type HubSpotObjectMerged = z.infer<typeof hubspotObjectMergedSchema>;

/** Coalesces per object, in time order: the last word on existence wins, everything else accumulates. */
export function coalesce(events: QueuedEvent[]): Coalesced[] {
  const byObject = new Map<string, Coalesced>();
  const sorted = [...events].sort((a, b) => a.occurredAt - b.occurredAt);
  for (const e of sorted) {
    const k = `${e.objectType}:${e.objectId}`;
    let c = byObject.get(k);
    if (!c) {
      c = { objectType: e.objectType, objectId: e.objectId, created: false, deleted: false, deletedAt: 0, associationsChanged: false, lastAt: e.occurredAt, merges: [] };
      byObject.set(k, c);
    }
    c.lastAt = Math.max(c.lastAt, e.occurredAt);
    switch (e.action) {
      case 'creation':
      case 'restore':
        c.created = true;
        c.deleted = false;
        break;
      case 'deletion':
      case 'privacyDeletion':
        c.deleted = true;
        c.deletedAt = e.occurredAt;
        break;
      case 'associationChange':
        c.associationsChanged = true;
        break;
      case 'merge':
        c.merges.push(e);
        break;
      case 'propertyChange':
        break;
    }
  }
  return [...byObject.values()];
}

/**
 * One `hubspot-events` message: the integration's objects are read once each (batch read, ≤ 100 ids
 * per call), written to the record store and announced to the engine: creations first, then changes,
 * then deletions and merges. The record store compares each object's version with what we last wrote
 * to HubSpot (`lastPushedVersion`), so the webhook echo of our own write is stored but not announced,
 * and with what it holds, so an older read never overwrites a newer row. Every step is idempotent: a
 * redelivered message republishes the same CloudEvent ids.
 */
export async function processEventsMessage(deps: EventWorkerDeps, integration: Integration, caller: HubSpotCaller, message: HubSpotEventsMessage): Promise<EventWorkerResult> {
  const t = integration.tenantId;
  const i = integration.integrationId;
  const portalId = message.portalId;
  const result: EventWorkerResult = { objects: 0, reads: 0, created: 0, updated: 0, deleted: 0, merged: 0, echoes: 0 };
  const objects = coalesce(message.events);
  result.objects = objects.length;
  const ctx = { tenantId: t, integrationId: i, portalId, source: 'webhook' as const };

  const deletions: Array<{ type: HubSpotObjectType; plan: RecordPlan }> = [];
  const merges: Coalesced[] = objects.filter((o) => o.merges.length > 0);

  for (const type of ['tickets', 'contacts', 'companies'] as const) {
    const ofType = objects.filter((o) => o.objectType === type);
    if (ofType.length === 0) continue;
    const live = ofType.filter((o) => !o.deleted);
    const read = await readObjects(caller, type, live.map((o) => o.objectId));
    result.reads += read.calls;

    // Objects gone by the time we read them (deleted right after the event) are deletions too.
    const gone = live.filter((o) => !read.objects.has(o.objectId));
    const toDelete = [...ofType.filter((o) => o.deleted), ...gone];

    const found = [...read.objects.values()];
    if (found.length > 0) {
      const needAssoc = OBJECT_SPECS[type].associations.length > 0 && live.some((o) => o.created || o.associationsChanged);
      if (needAssoc) {
        for (const to of OBJECT_SPECS[type].associations) {
          const ids = found.map((o) => o.id);
          for (let k = 0; k < ids.length; k += BATCH_READ_LIMIT) {
            const assoc = await readAssociations(caller, type, to, ids.slice(k, k + BATCH_READ_LIMIT));
            result.reads++;
            for (const o of found) {
              const list = assoc.get(o.id);
              if (list) o.associations = { ...(o.associations ?? {}), [to]: list };
            }
          }
        }
      }
      const labels = type === 'tickets' ? await labelsFor(deps, integration, caller) : undefined;
      // Announce, then store (as the sync does): a crash in between re-finds the change on redelivery.
      const plan = await deps.records.plan(t, i, type, found, labels ? { labels } : {});
      result.echoes += plan.changes.filter((c) => c.echo).length;
      const created = plan.changes.filter((c) => c.kind === 'created');
      const updated = plan.changes.filter((c) => c.kind === 'updated');
      result.created += await publishChanges(deps.events, { ...ctx, ...(labels ? { labels } : {}) }, type, created);
      result.updated += await publishChanges(deps.events, { ...ctx, ...(labels ? { labels } : {}) }, type, updated);
      faultPoint('hubspot.events.publish');
      await deps.records.commit(t, i, type, plan, { counts: true });
      faultPoint('hubspot.events.write');
    }

    if (toDelete.length > 0) {
      const tombstones: HubSpotObject[] = toDelete.map((o) => ({
        id: o.objectId,
        properties: {},
        lastModifiedMs: o.deletedAt || o.lastAt,
        archived: true,
        archivedAtMs: o.deletedAt || o.lastAt,
      }));
      deletions.push({ type, plan: await deps.records.planArchive(t, i, type, tombstones) });
    }
  }

  for (const d of deletions) {
    result.deleted += await publishChanges(deps.events, ctx, d.type, d.plan.changes);
    faultPoint('hubspot.events.publish-deleted');
    await deps.records.commit(t, i, d.type, d.plan, { counts: true });
    faultPoint('hubspot.events.write-deleted');
  }

  for (const m of merges) {
    for (const e of m.merges) {
      const mergedIds = e.mergedObjectIds ?? [];
      const data: HubSpotObjectMerged = {
        integrationId: i,
        portalId,
        objectType: m.objectType,
        primaryObjectId: m.objectId,
        mergedObjectIds: mergedIds,
        ...(e.newObjectId ? { newObjectId: e.newObjectId } : {}),
        occurredAt: new Date(e.occurredAt).toISOString(),
        source: 'webhook',
      };
      const announcement = {
        tenantId: t,
        integrationId: i,
        name: `${OBJECT_SPECS[m.objectType].eventName}.merged`,
        connector: 'hubspot',
        subject: `${m.objectType}/${m.objectId}`,
        idParts: [i, m.objectType, m.objectId, 'merge', ...mergedIds, e.occurredAt],
        data,
        dataSchema: hubspotObjectMergedSchema,
      };
      // Nothing in the store tells an announced merge from one still to announce (the merged-away rows
      // may never have been held), so the announcement is claimed by its event id: a redelivered message,
      // or the copy a fan-out retried after queueing, finds it done. Held by another delivery: that one
      // (or its retry) announces it.
      const eventId = deps.events.build(announcement).id;
      const claim = (await deps.processed.claimMany(MERGE_CLAIM_SOURCE, t, [{ id: eventId }], { staleAfterMs: WEBHOOK_CLAIM_STALE_MS, owner: message.deliveryId })).get(eventId);
      if (claim === 'claimed') {
        await deps.events.publish(announcement);
        result.merged++;
        faultPoint('hubspot.events.publish-merged');
        await deps.processed.confirm(MERGE_CLAIM_SOURCE, t, [eventId]);
        faultPoint('hubspot.events.confirm-merged');
      }
      // The merged-away records live on in the primary; their rows become tombstones (no separate event).
      const away = mergedIds.filter((id) => id !== m.objectId);
      if (away.length > 0) {
        const tomb = away.map((id): HubSpotObject => ({ id, properties: {}, lastModifiedMs: e.occurredAt, archived: true, archivedAtMs: e.occurredAt }));
        await deps.records.commit(t, i, m.objectType, await deps.records.planArchive(t, i, m.objectType, tomb), { counts: true });
        faultPoint('hubspot.events.write-merged');
      }
    }
  }
  return result;
}

/** Batch read in chunks of 100 with the sync's properties; missing ids are simply absent. */
async function readObjects(caller: HubSpotCaller, type: HubSpotObjectType, ids: string[]): Promise<{ objects: Map<string, HubSpotObject>; calls: number }> {
  const objects = new Map<string, HubSpotObject>();
  const unique = [...new Set(ids)];
  let calls = 0;
  const spec = OBJECT_SPECS[type];
  const body = (chunk: string[]) => ({ inputs: chunk.map((id) => ({ id })), properties: [...spec.properties], propertiesWithHistory: [] as string[] });
  for (let k = 0; k < unique.length; k += BATCH_READ_LIMIT) {
    const chunk = unique.slice(k, k + BATCH_READ_LIMIT);
    const raw: unknown = await caller.call('standard', `${type}.batch-read`, (client) => {
      switch (type) {
        case 'tickets':
          return client.crm.tickets.batchApi.read(body(chunk));
        case 'contacts':
          return client.crm.contacts.batchApi.read(body(chunk));
        case 'companies':
          return client.crm.companies.batchApi.read(body(chunk));
      }
    });
    calls++;
    const parsed = batchReadSchema.parse(raw);
    for (const r of parsed.results) {
      const o = toHubSpotObject(type, r);
      objects.set(o.id, o);
    }
  }
  return { objects, calls };
}

const batchReadSchema = z.object({ results: z.array(hubSpotObjectSchema) });

async function labelsFor(deps: EventWorkerDeps, integration: Integration, caller: HubSpotCaller): Promise<PipelineLabels> {
  const key = `${integration.tenantId}:${integration.integrationId}`;
  const cached = deps.labelsCache?.get(key);
  if (cached && Date.now() - cached.at < LABELS_TTL_MS) return cached.labels;
  const labels = await ticketPipelines(caller);
  deps.labelsCache?.set(key, { at: Date.now(), labels });
  return labels;
}
