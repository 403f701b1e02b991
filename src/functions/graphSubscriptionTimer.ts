import { app } from '@azure/functions';
import { getGraphServices, queueMaintenance } from '../connectors/msgraph';
import { timerHandler } from '../platform/workers';

/**
 * Every 30 minutes: one maintenance job per watched mailbox (renew or recreate its subscription, run
 * the inbox delta as the backstop for lost notifications). The jobs run on the graph-notifications
 * worker, so one slow tenant does not hold up the others.
 */
app.timer('graphSubscriptionTimer', {
  schedule: '0 */30 * * * *',
  runOnStartup: false,
  handler: timerHandler(async ({ log }) => {
    await queueMaintenance(getGraphServices(), log);
  }),
});
