import { app } from '@azure/functions';
import { z } from 'zod';
import { acceptNotification, getTeamsServices, notificationSchema } from '../connectors/teams';
import { httpHandler, idempotencyKeyOf, json } from '../platform/http';
import { tenantIdSchema } from '../storage';

app.http('teamsNotify', {
  methods: ['POST'],
  route: 'teams/notify/{tenant_id}',
  authLevel: 'function',
  handler: httpHandler(
    {
      auth: 'tenant',
      summary: 'Route a notification to its Teams channel as an Adaptive Card (queued; 202 with a notification id; an optional Idempotency-Key makes a retry answer the first request\'s result)',
      params: z.object({ tenant_id: tenantIdSchema }),
      body: notificationSchema,
      maxBodyBytes: 64 * 1024,
    },
    async ({ params, body, request, services, log, correlationId }) => {
      const teams = getTeamsServices(services);
      const result = await acceptNotification(teams.notifyDeps(), params.tenant_id, body, { correlationId, log, idempotencyKey: idempotencyKeyOf(request.headers) });
      log.info('teams notification accepted', { kind: body.kind, notificationId: result.notificationId, channel: result.channel, status: result.status });
      return json(202, {
        notification_id: result.notificationId,
        status: result.status,
        channel: result.channel,
        ...(result.status === 'collapsed' ? { collapsed_into: result.collapsedInto, count: result.count } : {}),
        ...(result.status === 'suppressed' ? { reason: result.reason, snoozed_until: result.snoozedUntil } : {}),
      });
    },
  ),
});
