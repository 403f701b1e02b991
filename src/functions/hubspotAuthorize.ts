import { app } from '@azure/functions';
import { z } from 'zod';
import { getHubSpotServices, startAuthorization } from '../connectors/hubspot';
import { httpHandler, json } from '../platform/http';
import { integrationIdSchema, tenantIdSchema } from '../storage';

/** The consent URL for a new HubSpot connection (or, with `integration_id`, to reconnect one). */
app.http('hubspotAuthorize', {
  methods: ['GET'],
  route: 'hubspot/authorize/{tenant_id}',
  authLevel: 'function',
  handler: httpHandler(
    { auth: 'tenant', summary: 'HubSpot consent URL with a signed, single-use state (new or reconnecting integration)', params: z.object({ tenant_id: tenantIdSchema }), query: z.strictObject({ integration_id: integrationIdSchema.optional() }) },
    async ({ params, query }) => {
      const started = await startAuthorization(getHubSpotServices(), params.tenant_id, query.integration_id ? { integrationId: query.integration_id } : {});
      return json(200, { success: true, authorization_url: started.authorizationUrl, integration_id: started.integrationId, tenant_id: params.tenant_id });
    },
  ),
});
