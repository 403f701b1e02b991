import { app } from '@azure/functions';
import { getGraphServices, receiveNotificationRequest } from '../connectors/msgraph';
import { httpHandler } from '../platform/http';

/**
 * Graph change notifications: the validation handshake (echo the decoded `validationToken` as
 * text/plain), then deliveries: each verified item is queued and 202 goes back at once.
 */
app.http('graphNotifications', {
  methods: ['POST'],
  route: 'webhooks/graph',
  authLevel: 'anonymous',
  handler: httpHandler({ auth: 'anonymous' }, ({ request, log }) => receiveNotificationRequest(getGraphServices(), request, 'change', log)),
});
