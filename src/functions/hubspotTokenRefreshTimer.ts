import { app } from '@azure/functions';
import { getHubSpotServices, refreshIdleTokens } from '../connectors/hubspot';
import { timerHandler } from '../platform/workers';

/** Daily: integrations whose refresh token has not been used for a day refresh now (see refreshIdleTokens). */
app.timer('hubspotTokenRefreshTimer', {
  schedule: '0 17 3 * * *',
  handler: timerHandler(async ({ log }) => {
    const result = await refreshIdleTokens(getHubSpotServices(), log);
    log.info('idle HubSpot tokens refreshed', { ...result });
  }),
});
