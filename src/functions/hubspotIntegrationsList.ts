import { app } from '@azure/functions';
import { z } from 'zod';
import { authKindOf } from '../connectors/hubspot';
import { httpHandler, json } from '../platform/http';
import { tenantIdSchema } from '../storage';

/** The tenant's HubSpot integrations, disconnected ones included (history is kept). */
app.http('hubspotIntegrationsList', {
  methods: ['GET'],
  route: 'hubspot/integrations/{tenant_id}',
  authLevel: 'function',
  handler: httpHandler({ auth: 'tenant', summary: "The tenant's HubSpot integrations, disconnected ones included", params: z.object({ tenant_id: tenantIdSchema }) }, async ({ params, services }) => {
    const items = await services.integrations.list(params.tenant_id, { type: 'hubspot' });
    return json(200, {
      success: true,
      tenant_id: params.tenant_id,
      integrations: items.map((i) => ({
        integration_id: i.integrationId,
        status: i.status,
        auth_type: authKindOf(i),
        hub_id: i.externalAccountId ?? null,
        hub_domain: i.externalAccountName ?? null,
        scopes: i.scopes ? i.scopes.split(' ').filter(Boolean) : [],
        created_at: i.createdAt,
        updated_at: i.updatedAt,
        last_sync_at: i.lastSyncAt ?? null,
        last_error: i.lastError || null,
      })),
    });
  }),
});
