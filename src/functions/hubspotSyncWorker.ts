import { app } from '@azure/functions';
import { getHubSpotServices } from '../connectors/hubspot/services';
import { SyncEngine, syncLeaseTtlMs, syncMessageSchema } from '../connectors/hubspot';
import { queueHandler } from '../platform/workers';
import { QUEUES } from '../storage';

/** HubSpot calls still in flight are abandoned this long after the budget, before functionTimeout (10 min). */
const CALL_GRACE_MS = 60_000;

app.storageQueue('hubspotSyncWorker', {
  queueName: QUEUES.hubspotSync,
  connection: 'AzureWebJobsStorage',
  handler: queueHandler({ queue: QUEUES.hubspotSync, schema: syncMessageSchema }, async ({ message, services, log, dequeueCount }) => {
    const hs = getHubSpotServices();
    const budgetMs = services.config.hubspot.syncTimeBudgetMs;
    const signal = AbortSignal.timeout(budgetMs + CALL_GRACE_MS);
    const engine = new SyncEngine(
      {
        storage: services.storage,
        queues: services.queues,
        leases: services.leases,
        integrations: services.integrations,
        events: services.events,
        log,
        callerFor: async (integration) => hs.callerFor(integration, { priority: 'background', signal, log }),
      },
      { budgetMs, leaseTtlMs: syncLeaseTtlMs(services.config.functionTimeoutMs) },
    );
    const outcome = await engine.runJob(message, { dequeueCount });
    log.info('sync job finished', { outcome: outcome.outcome, syncId: outcome.syncId, ...('reason' in outcome ? { reason: outcome.reason } : {}) });
  }),
});
