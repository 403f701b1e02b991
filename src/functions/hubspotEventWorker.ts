import { app } from '@azure/functions';
import { getHubSpotServices, hubspotEventsMessageSchema, HubSpotUnauthorizedError, IntegrationUnavailableError, processEventsMessage } from '../connectors/hubspot';
import type { PipelineLabels } from '../connectors/hubspot';
import { InvalidGrantError } from '../connectors/base';
import { queueHandler } from '../platform/workers';
import { QUEUES } from '../storage';

/** Ticket pipeline labels per integration, shared by the invocations of this instance. */
const labelsCache = new Map<string, { at: number; labels: PipelineLabels }>();
/** HubSpot calls in flight are abandoned before the queue message's visibility runs out. */
const MESSAGE_BUDGET_MS = 4 * 60_000;

app.storageQueue('hubspotEventWorker', {
  queueName: QUEUES.hubspotEvents,
  connection: 'AzureWebJobsStorage',
  handler: queueHandler({ queue: QUEUES.hubspotEvents, schema: hubspotEventsMessageSchema }, async ({ message, services, log }) => {
    const hs = getHubSpotServices();
    const integration = await services.integrations.get(message.tenantId, message.integrationId);
    if (!integration || integration.type !== 'hubspot' || integration.status !== 'active' || integration.externalAccountId !== message.portalId) {
      // Disconnected, re-pointed at another portal, or waiting for re-authorisation: nothing to do.
      log.info('HubSpot events dropped: integration not active for this portal', { status: integration?.status ?? 'missing', events: message.events.length });
      return;
    }
    const caller = hs.callerFor(integration, { priority: 'interactive', log, signal: AbortSignal.timeout(MESSAGE_BUDGET_MS) });
    try {
      const result = await processEventsMessage({ records: hs.records, events: services.events, processed: services.processed, log, labelsCache }, integration, caller, message);
      log.info('HubSpot events processed', { ...result, events: message.events.length });
    } catch (err) {
      // A dead grant has already marked the integration needs_reauth; retrying cannot help.
      if (err instanceof InvalidGrantError || err instanceof HubSpotUnauthorizedError || err instanceof IntegrationUnavailableError) {
        log.warn('HubSpot events dropped: credentials gone', { code: err.code });
        return;
      }
      throw err;
    }
  }),
});
