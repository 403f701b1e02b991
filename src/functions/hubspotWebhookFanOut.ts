import { app } from '@azure/functions';
import { fanOut, getHubSpotServices, hubspotDeliveryMessageSchema } from '../connectors/hubspot';
import { webhookStage } from '../platform/limiter';
import { queueHandler } from '../platform/workers';
import { QUEUES } from '../storage';

/**
 * Verified HubSpot deliveries from `hubspot-webhooks` → one `hubspot-events` message per integration of
 * each portal, de-duplicated by event with batch claims. A failure is thrown: the runtime retries (this
 * delivery's own claims are taken over), then moves the message to `hubspot-webhooks-poison`.
 */
app.storageQueue('hubspotWebhookFanOut', {
  queueName: QUEUES.hubspotWebhooks,
  connection: 'AzureWebJobsStorage',
  handler: queueHandler({ queue: QUEUES.hubspotWebhooks, schema: hubspotDeliveryMessageSchema }, async ({ message, services, log }) => {
    const hs = getHubSpotServices();
    const result = await webhookStage(() => fanOut({ accountIndex: hs.accountIndex, processed: services.processed, queues: services.queues, log }, message));
    log.info('HubSpot webhook delivery fanned out', { part: message.part, ...result });
  }),
});
