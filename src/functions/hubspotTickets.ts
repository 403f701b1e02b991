import { app } from '@azure/functions';
import { z } from 'zod';
import { getHubSpotServices } from '../connectors/hubspot/services';
import { parseTime } from '../connectors/hubspot';
import { httpHandler, json } from '../platform/http';
import { integrationIdSchema, tenantIdSchema } from '../storage';

const timeParam = z
  .string()
  .trim()
  .transform((v, ctx) => {
    const ms = parseTime(v);
    if (ms === undefined) {
      ctx.addIssue({ code: 'custom', message: 'must be an ISO 8601 date-time or epoch milliseconds' });
      return z.NEVER;
    }
    return ms;
  });

app.http('hubspotTickets', {
  methods: ['GET'],
  route: 'hubspot/tickets/{tenant_id}/{integration_id}',
  authLevel: 'function',
  handler: httpHandler(
    {
      auth: 'tenant',
      params: z.object({ tenant_id: tenantIdSchema, integration_id: integrationIdSchema }),
      query: z.strictObject({
        limit: z.coerce.number().int().min(1).max(100).default(100),
        // The `next_after` of the previous page: the last ticket's key, not an offset.
        after: z.string().min(1).max(1024).optional(),
        stage: z.string().trim().min(1).max(256).optional(),
        priority: z.string().trim().min(1).max(64).optional(),
        modified_since: timeParam.optional(),
      }),
    },
    async ({ params, query }) => {
      const t = params.tenant_id;
      const i = params.integration_id;
      const hs = getHubSpotServices();
      // Served from the synced store: no HubSpot call, whatever the integration's state.
      await hs.getIntegration(t, i);
      const page = await hs.records.listTickets(t, i, {
        limit: query.limit,
        ...(query.after ? { after: query.after } : {}),
        ...(query.stage ? { stage: query.stage } : {}),
        ...(query.priority ? { priority: query.priority } : {}),
        ...(query.modified_since !== undefined ? { modifiedSinceMs: query.modified_since } : {}),
      });
      return json(200, {
        success: true,
        tenant_id: t,
        integration_id: i,
        tickets: page.tickets.map((r) => ({
          id: r.id,
          properties: r.properties,
          associations: r.associations,
          pipeline_label: r.pipelineLabel ?? null,
          stage_label: r.stageLabel ?? null,
          stage_state: r.stageState ?? null,
          createdAt: r.createdAt ?? null,
          updatedAt: r.lastModifiedMs ? new Date(r.lastModifiedMs).toISOString() : null,
          archived: false,
          ...(r.truncated ? { truncated_properties: r.truncated } : {}),
        })),
        total_count: page.totalCount,
        ...(page.totalExact ? {} : { total_count_is_lower_bound: true }),
        next_after: page.nextAfter ?? null,
      });
    },
  ),
});
