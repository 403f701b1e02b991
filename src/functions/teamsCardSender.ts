import { app } from '@azure/functions';
import { cardMessageSchema, deliverCard, getTeamsServices } from '../connectors/teams';
import { queueHandler } from '../platform/workers';
import { QUEUES } from '../storage';

app.storageQueue('teamsCardSender', {
  queueName: QUEUES.teamsCards,
  connection: 'AzureWebJobsStorage',
  handler: queueHandler({ queue: QUEUES.teamsCards, schema: cardMessageSchema }, async ({ message, services, log, dequeueCount }) => {
    await deliverCard(getTeamsServices(services).deliverDeps(), message, { log, dequeueCount });
  }),
});
