import { app } from '@azure/functions';
import { z } from 'zod';
import { getHubSpotServices, startAuthorization } from '../connectors/hubspot';
import { httpHandler, json } from '../platform/http';
import { integrationIdSchema, tenantIdSchema } from '../storage';

/** The link that starts a new HubSpot connection (or, with `integration_id`, reconnects one): our start page, which sends the browser on to HubSpot. */
app.http('hubspotAuthorize', {
  methods: ['GET'],
  route: 'hubspot/authorize/{tenant_id}',
  authLevel: 'function',
  handler: httpHandler(
    { auth: 'tenant', summary: 'Link (authorization_url) to our start page, with a signed 5-minute single-use ticket, which binds the browser and goes on to HubSpot consent (new or reconnecting integration)', params: z.object({ tenant_id: tenantIdSchema }), query: z.strictObject({ integration_id: integrationIdSchema.optional() }) },
    async ({ params, query }) => {
      const started = await startAuthorization(getHubSpotServices(), params.tenant_id, query.integration_id ? { integrationId: query.integration_id } : {});
      return json(200, { success: true, authorization_url: started.authorizationUrl, integration_id: started.integrationId, tenant_id: params.tenant_id });
    },
  ),
});
