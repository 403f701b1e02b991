import { app } from '@azure/functions';
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
    const result = await services.expiry.sweep({ maxEntries: MAX_ENTRIES });
    log.info('expired rows deleted', { ...result });
  }),
});
