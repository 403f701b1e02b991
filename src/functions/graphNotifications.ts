import { app } from '@azure/functions';
import { acceptNotifications, getGraphServices, readNotificationBody, validationResponse } from '../connectors/msgraph';
import { httpHandler } from '../platform/http';

/**
 * Graph change notifications: the validation handshake (echo the decoded `validationToken` as
 * text/plain), then deliveries: each verified item is queued and 202 goes back at once.
 */
app.http('graphNotifications', {
  methods: ['POST'],
  route: 'webhooks/graph',
  authLevel: 'anonymous',
  handler: httpHandler({ auth: 'anonymous' }, async ({ request, log }) => {
    const validation = validationResponse(request);
    if (validation) return validation;
    const raw = await readNotificationBody(request);
    if (raw === undefined) return { status: 413 };
    const result = await acceptNotifications(getGraphServices(), raw, 'change', log);
    return { status: result.status };
  }),
});
