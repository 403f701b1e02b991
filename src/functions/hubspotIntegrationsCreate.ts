import { app } from '@azure/functions';
import { z } from 'zod';
import { connectPrivateApp, getHubSpotServices, privateAppBodySchema } from '../connectors/hubspot';
import { httpHandler, json } from '../platform/http';
import { tenantIdSchema } from '../storage';

/** Connects a HubSpot private app by its access token, checked against HubSpot before it is stored. */
app.http('hubspotIntegrationsCreate', {
  methods: ['POST'],
  route: 'hubspot/integrations/{tenant_id}',
  authLevel: 'function',
  handler: httpHandler(
    { auth: 'tenant', summary: 'Connect a HubSpot private app by its access token (checked against HubSpot first)', params: z.object({ tenant_id: tenantIdSchema }), body: privateAppBodySchema, maxBodyBytes: 4096 },
    async ({ params, body, log }) => {
      const done = await connectPrivateApp(getHubSpotServices(), params.tenant_id, body.access_token, log);
      return json(201, {
        success: true,
        tenant_id: params.tenant_id,
        integration_id: done.integrationId,
        hub_id: done.hubId,
        scopes: done.scopes,
        status: 'active',
        sync_id: done.syncId ?? null,
      });
    },
  ),
});
