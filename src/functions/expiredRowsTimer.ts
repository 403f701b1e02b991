import { app } from '@azure/functions';
import { getTeamsServices } from '../connectors/teams';
import { timerHandler } from '../platform/workers';

/**
 * Deletes expired idempotency and claim rows (see `ExpiryIndex`): hourly, reading only the index
 * entries of hours that have passed. A run stops after `MAX_ENTRIES` entries; the next one continues.
 */
const MAX_ENTRIES = 20_000;

app.timer('expiredRowsTimer', {
  schedule: '0 41 * * * *',
  runOnStartup: false,
  handler: timerHandler(async ({ services, log }) => {
    // Row kinds register with the index where their stores are made: make every such store first.
    getTeamsServices(services);
    const result = await services.expiry.sweep({ maxEntries: MAX_ENTRIES });
    if (result.entriesKept > 0) log.warn('expiry entries of an unknown row kind were kept', { entriesKept: result.entriesKept });
    log.info('expired rows deleted', { ...result });
  }),
});
