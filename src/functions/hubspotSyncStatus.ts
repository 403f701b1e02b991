import { app } from '@azure/functions';
import { z } from 'zod';
import { getHubSpotServices } from '../connectors/hubspot/services';
import { syncStatus } from '../connectors/hubspot';
import { httpHandler, json } from '../platform/http';
import { integrationIdSchema, tenantIdSchema } from '../storage';

app.http('hubspotSyncStatus', {
  methods: ['GET'],
  route: 'hubspot/sync/{tenant_id}/{integration_id}',
  authLevel: 'function',
  handler: httpHandler(
    {
      auth: 'tenant',
      params: z.object({ tenant_id: tenantIdSchema, integration_id: integrationIdSchema }),
      query: z.strictObject({ events: z.coerce.number().int().min(1).max(50).default(10) }),
    },
    async ({ params, query, services }) => {
      const t = params.tenant_id;
      const i = params.integration_id;
      const integration = await getHubSpotServices().getIntegration(t, i);
      const status = await syncStatus(services.storage, t, i, { events: query.events });
      return json(200, {
        success: true,
        tenant_id: t,
        integration_id: i,
        integration_status: integration.status,
        last_sync_at: integration.lastSyncAt ?? null,
        ...status,
      });
    },
  ),
});
