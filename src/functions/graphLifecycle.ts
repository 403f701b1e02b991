import { app } from '@azure/functions';
import { getGraphServices, receiveNotificationRequest } from '../connectors/msgraph';
import { httpHandler } from '../platform/http';

/**
 * Graph lifecycle notifications (reauthorizationRequired, subscriptionRemoved, missed): the same
 * validation handshake, then each verified event is queued for the worker and 202 goes back at once.
 */
app.http('graphLifecycle', {
  methods: ['POST'],
  route: 'webhooks/graph/lifecycle',
  authLevel: 'anonymous',
  handler: httpHandler({ auth: 'anonymous' }, ({ request, log }) => receiveNotificationRequest(getGraphServices(), request, 'lifecycle', log)),
});
