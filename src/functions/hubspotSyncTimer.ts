import { app } from '@azure/functions';
import { activeHubSpotIntegrations, requestSync, staggerSeconds } from '../connectors/hubspot';
import { ensureError } from '../platform/errors';
import { timerHandler } from '../platform/workers';

/** Runs start within the first 4 of the 5 minutes, so a slow one is still queued before the next tick. */
const STAGGER_SECONDS = 240;
const CONCURRENCY = 8;

app.timer('hubspotSyncTimer', {
  schedule: '0 */5 * * * *',
  runOnStartup: false,
  handler: timerHandler(async ({ services, log }) => {
    let queued = 0;
    let running = 0;
    let failed = 0;
    const pending = new Set<Promise<void>>();
    for await (const integration of activeHubSpotIntegrations(services.storage)) {
      const { tenantId: t, integrationId: i } = integration;
      const p = requestSync(services, t, i, { syncType: 'incremental', trigger: 'timer', delaySeconds: staggerSeconds(t, i, STAGGER_SECONDS) })
        .then((r) => {
          if (r.started) queued++;
          else running++;
        })
        .catch((err: unknown) => {
          // One tenant's storage hiccup must not stop the others' syncs.
          failed++;
          log.warn('could not queue an incremental sync', { tenantId: t, integrationId: i, error: ensureError(err) });
        })
        .finally(() => pending.delete(p));
      pending.add(p);
      if (pending.size >= CONCURRENCY) await Promise.race(pending);
    }
    await Promise.all(pending);
    log.info('incremental syncs queued', { queued, alreadyRunning: running, failed });
  }),
});
