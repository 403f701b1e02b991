import { createHash } from 'node:crypto';
import {
  integrationRowSchema,
  QUEUES,
  TABLES,
  TenantTable,
  type Integration,
  type IntegrationId,
  type QueueSender,
  type StorageClients,
  type TenantId,
} from '../../../storage';
import { newRun, newSyncId, DEFAULT_SYNC_OPTIONS } from './engine';
import { syncMessageSchema, type SyncMessage, type SyncObjectType, type SyncType } from './messages';
import { isActiveRun, SyncStateStore, type RunRow } from './state';

export type SyncRequestResult = { started: true; syncId: string } | { started: false; reason: 'already-running'; syncId: string; status: RunRow['status'] };

/**
 * Starts a sync for one integration: claims the integration's `run` row (conditionally, so two requests
 * racing start one sync) and queues the first job. A sync already queued or running is not started
 * twice; one whose row has not moved for `staleAfterMs` is taken to have died and is replaced, and a
 * timer's sync not yet started yields to an explicit request.
 */
export async function requestSync(
  deps: { storage: StorageClients; queues: QueueSender },
  t: TenantId,
  i: IntegrationId,
  req: { syncType: SyncType; objectTypes?: SyncObjectType[]; trigger: NonNullable<SyncMessage['trigger']>; delaySeconds?: number },
  opts: { now?: () => number; staleAfterMs?: number } = {},
): Promise<SyncRequestResult> {
  const state = new SyncStateStore(deps.storage);
  const now = (opts.now ?? Date.now)();
  const staleAfterMs = opts.staleAfterMs ?? DEFAULT_SYNC_OPTIONS.staleAfterMs;
  for (let attempt = 0; attempt < 3; attempt++) {
    const current = await state.getRun(t, i);
    if (current && isActiveRun(current.run, now, staleAfterMs) && !yields(current.run, req.trigger)) {
      return { started: false, reason: 'already-running', syncId: current.run.syncId, status: current.run.status };
    }
    const syncId = newSyncId();
    const run = newRun({ syncId, syncType: req.syncType, ...(req.objectTypes ? { objectTypes: req.objectTypes } : {}), trigger: req.trigger }, now);
    if (!(await state.claimRun(t, i, run, current?.etag))) continue; // lost a race; look again
    const message = syncMessageSchema.parse({
      tenantId: t,
      integrationId: i,
      syncId,
      syncType: req.syncType,
      ...(req.objectTypes ? { objectTypes: req.objectTypes } : {}),
      trigger: req.trigger,
    });
    try {
      await deps.queues.send(QUEUES.hubspotSync, message, req.delaySeconds ? { visibilityTimeoutSeconds: req.delaySeconds } : {});
    } catch (err) {
      // Not queued means not running: free the slot for the next request.
      await state.putRun(t, i, { ...run, status: 'failed', finishedAt: now, error: 'could not queue the sync job' }).catch(() => undefined);
      throw err;
    }
    return { started: true, syncId };
  }
  const current = await state.getRun(t, i);
  return { started: false, reason: 'already-running', syncId: current?.run.syncId ?? '', status: current?.run.status ?? 'queued' };
}

/**
 * A timer's sync that is still waiting out its stagger delay gives way to an explicit request (API,
 * connect): the requester should not wait minutes behind a routine sweep. Its message, once due, finds
 * another sync owning the integration and is dropped.
 */
function yields(run: RunRow, trigger: NonNullable<SyncMessage['trigger']>): boolean {
  return run.status === 'queued' && run.trigger === 'timer' && trigger !== 'timer';
}

/**
 * Every active HubSpot integration of every tenant, for the timer. This is the one deliberately
 * cross-tenant read of the sync: it starts from no tenant and yields rows that carry their tenant and
 * integration ids, which everything after uses.
 */
export async function* activeHubSpotIntegrations(storage: StorageClients): AsyncGenerator<Pick<Integration, 'tenantId' | 'integrationId' | 'externalAccountId'>> {
  const table = new TenantTable<Record<string, string | number | boolean | Date | null | undefined>>(storage.table(TABLES.integrations));
  // Tenant ids start with a letter or digit ('0'..'z'), so this range is the whole table.
  for await (const row of table.range({ from: '0', to: '{' }, "type eq 'hubspot' and status eq 'active'")) {
    const parsed = integrationRowSchema.safeParse(row.data);
    if (!parsed.success || parsed.data.type !== 'hubspot' || parsed.data.status !== 'active') continue;
    yield {
      tenantId: row.partitionKey as string as TenantId,
      integrationId: row.rowKey as IntegrationId,
      ...(parsed.data.externalAccountId ? { externalAccountId: parsed.data.externalAccountId } : {}),
    };
  }
}

/**
 * A stable offset inside the timer period for one integration, so 5-minute runs of many tenants spread
 * over the period instead of all hitting storage and HubSpot at the same second.
 */
export function staggerSeconds(t: TenantId, i: IntegrationId, periodSeconds: number): number {
  const h = createHash('sha256').update(`${t}:${i}`).digest();
  return h.readUInt32BE(0) % Math.max(1, periodSeconds);
}
