import { app } from '@azure/functions';
import { acceptNotifications, getGraphServices, readNotificationBody, validationResponse } from '../connectors/msgraph';
import { httpHandler } from '../platform/http';

/**
 * Graph lifecycle notifications (reauthorizationRequired, subscriptionRemoved, missed): the same
 * validation handshake, then each verified event is queued for the worker and 202 goes back at once.
 */
app.http('graphLifecycle', {
  methods: ['POST'],
  route: 'webhooks/graph/lifecycle',
  authLevel: 'anonymous',
  handler: httpHandler({ auth: 'anonymous' }, async ({ request, log }) => {
    const validation = validationResponse(request);
    if (validation) return validation;
    const raw = await readNotificationBody(request);
    if (raw === undefined) return { status: 413 };
    const result = await acceptNotifications(getGraphServices(), raw, 'lifecycle', log);
    return { status: result.status };
  }),
});
