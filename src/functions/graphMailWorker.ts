import { app } from '@azure/functions';
import { getGraphServices, graphWorkItemSchema, processWorkItem } from '../connectors/msgraph';
import { queueHandler } from '../platform/workers';
import { QUEUES } from '../storage';

/** Mail → ticket events, lifecycle handling and per-mailbox maintenance, from `graph-notifications`. */
app.storageQueue('graphMailWorker', {
  queueName: QUEUES.graphNotifications,
  connection: 'AzureWebJobsStorage',
  handler: queueHandler({ queue: QUEUES.graphNotifications, schema: graphWorkItemSchema }, async ({ message, log, queueMessageId }) => {
    // The queue message owns the mail claims it takes, so its own redelivery after a crash resumes them.
    const outcome = await processWorkItem(getGraphServices(), message, log.child({ mailbox: message.mailbox, work: message.kind }), { owner: queueMessageId });
    log.info('graph work done', { ...outcome });
  }),
});
