import { app } from '@azure/functions';
import { getGraphServices, graphDeliveryMessageSchema, routeNotifications } from '../connectors/msgraph';
import { webhookStage } from '../platform/limiter';
import { queueHandler } from '../platform/workers';
import { QUEUES } from '../storage';

/**
 * Graph notification deliveries from `graph-webhooks` → verified work items on `graph-notifications`
 * (subscription and clientState checked here, not before the 202). A failure is thrown: the runtime
 * retries, then moves the message to `graph-webhooks-poison`.
 */
app.storageQueue('graphNotificationRouter', {
  queueName: QUEUES.graphWebhooks,
  connection: 'AzureWebJobsStorage',
  handler: queueHandler({ queue: QUEUES.graphWebhooks, schema: graphDeliveryMessageSchema }, async ({ message, log }) => {
    const result = await webhookStage(() => routeNotifications(getGraphServices(), message, log));
    log.info('graph notification delivery routed', { kind: message.kind, part: message.part, ...result });
  }),
});
