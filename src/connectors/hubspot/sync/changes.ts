import { z } from 'zod';
import type { EngineEventPublisher } from '../../../platform/events';
import type { IntegrationId, TenantId } from '../../../storage';
import type { PipelineLabels } from './hubspotApi';
import type { RecordChange } from '../records';
import { SYNC_OBJECT_TYPES, SYNC_TYPES, type SyncObjectType } from './messages';
import { OBJECT_SPECS } from './objects';

/**
 * Changes the sync finds reach the engine as CloudEvents on `engine-events`: `ticket.created`,
 * `ticket.updated`, `ticket.deleted` (and `contact.*`, `company.*`). The id hashes the object id and its
 * HubSpot version, so the same change seen twice (a retried page, a webhook and then the sweep) has one id.
 */
export const hubspotObjectChangedSchema = z.object({
  integrationId: z.string(),
  portalId: z.string(),
  objectType: z.enum(SYNC_OBJECT_TYPES),
  objectId: z.string(),
  change: z.enum(['created', 'updated', 'deleted']),
  /** HubSpot's last-modified (or archive) time of this version. */
  lastModified: z.string(),
  source: z.enum(['sync', 'webhook']),
  syncId: z.string().optional(),
  properties: z.record(z.string(), z.string().nullable()).optional(),
  associations: z.record(z.string(), z.array(z.string())).optional(),
  pipelineLabel: z.string().optional(),
  stageLabel: z.string().optional(),
});
export type HubSpotObjectChanged = z.infer<typeof hubspotObjectChangedSchema>;

export const hubspotSyncCompletedSchema = z.object({
  integrationId: z.string(),
  portalId: z.string(),
  syncId: z.string(),
  syncType: z.enum(SYNC_TYPES),
  status: z.enum(['completed', 'failed']),
  objectTypes: z.array(z.enum(SYNC_OBJECT_TYPES)),
  pages: z.number().int(),
  records: z.number().int(),
  changes: z.number().int(),
  error: z.string().optional(),
});
export type HubSpotSyncCompleted = z.infer<typeof hubspotSyncCompletedSchema>;

const PUBLISH_CONCURRENCY = 16;

export function changeEventData(
  ctx: { integrationId: IntegrationId; portalId: string; syncId?: string; source: 'sync' | 'webhook'; labels?: PipelineLabels },
  type: SyncObjectType,
  change: RecordChange,
): HubSpotObjectChanged {
  const o = change.object;
  const at = change.kind === 'deleted' ? (o.archivedAtMs ?? o.lastModifiedMs) : o.lastModifiedMs;
  const data: HubSpotObjectChanged = {
    integrationId: ctx.integrationId,
    portalId: ctx.portalId,
    objectType: type,
    objectId: o.id,
    change: change.kind,
    lastModified: new Date(at).toISOString(),
    source: ctx.source,
    ...(ctx.syncId ? { syncId: ctx.syncId } : {}),
  };
  if (change.kind !== 'deleted') {
    data.properties = o.properties;
    if (o.associations) data.associations = o.associations as Record<string, string[]>;
    if (type === 'tickets' && ctx.labels) {
      const pl = ctx.labels.pipeline(o.properties['hs_pipeline']);
      const st = ctx.labels.stage(o.properties['hs_pipeline'], o.properties['hs_pipeline_stage']);
      if (pl) data.pipelineLabel = pl;
      if (st) data.stageLabel = st.label;
    }
  }
  // Every property and association goes out whatever its size: the publisher measures the message in
  // the bytes it will be sent as and moves data that does not fit into a blob (dataref).
  return data;
}

/** Publishes the non-echo changes of one page; returns how many went out. */
export async function publishChanges(
  events: EngineEventPublisher,
  ctx: { tenantId: TenantId; integrationId: IntegrationId; portalId: string; syncId?: string; source: 'sync' | 'webhook'; labels?: PipelineLabels },
  type: SyncObjectType,
  changes: RecordChange[],
): Promise<number> {
  const todo = changes.filter((c) => !c.echo);
  const spec = OBJECT_SPECS[type];
  let next = 0;
  const worker = async () => {
    while (next < todo.length) {
      const change = todo[next++] as RecordChange;
      const data = changeEventData(ctx, type, change);
      await events.publish({
        tenantId: ctx.tenantId,
        integrationId: ctx.integrationId,
        name: `${spec.eventName}.${change.kind}`,
        connector: 'hubspot',
        subject: `${type}/${change.id}`,
        idParts: [ctx.integrationId, type, change.id, data.lastModified],
        data,
        dataSchema: hubspotObjectChangedSchema,
      });
    }
  };
  await Promise.all(Array.from({ length: Math.min(PUBLISH_CONCURRENCY, todo.length) }, worker));
  return todo.length;
}
