import { app } from '@azure/functions';
import { z } from 'zod';
import { getTeamsServices } from '../connectors/teams';
import { httpHandler, json } from '../platform/http';
import { tenantIdSchema } from '../storage';

app.http('teamsNotificationsGet', {
  methods: ['GET'],
  route: 'teams/notifications/{tenant_id}',
  authLevel: 'function',
  handler: httpHandler(
    {
      auth: 'tenant',
      summary: 'Teams notifications, newest first: kind, ticket, channel, time, outcome',
      params: z.object({ tenant_id: tenantIdSchema }),
      query: z.strictObject({
        ticket_id: z.string().min(1).max(128).optional(),
        limit: z.coerce.number().int().min(1).max(500).default(100),
      }),
    },
    async ({ params, query, services }) => {
      const records = await getTeamsServices(services).log.list(params.tenant_id, { limit: query.limit, ...(query.ticket_id ? { ticketId: query.ticket_id } : {}) });
      return json(200, {
        tenant_id: params.tenant_id,
        notifications: records.map((r) => ({
          notification_id: r.id,
          kind: r.kind,
          ticket_id: r.ticketId,
          channel: r.channel,
          status: r.status,
          created_at: r.createdAt,
          sent_at: r.sentAt ?? null,
          count: r.count ?? null,
          collapsed_into: r.collapsedInto ?? null,
          reason: r.reason || null,
          attempts: r.attempts ?? 0,
          truncated: r.truncated ?? false,
          // Posted again after an interrupted attempt that may already have shown it (the card says so too).
          possible_repeat: r.possibleRepeat ?? false,
        })),
      });
    },
  ),
});
