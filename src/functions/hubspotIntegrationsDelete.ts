import { app } from '@azure/functions';
import { z } from 'zod';
import { disconnectIntegration, getHubSpotServices } from '../connectors/hubspot';
import { httpHandler, json } from '../platform/http';
import { integrationIdSchema, tenantIdSchema } from '../storage';

/** Disconnects: revokes the refresh token at HubSpot, deletes the secrets, keeps the history. */
app.http('hubspotIntegrationsDelete', {
  methods: ['DELETE'],
  route: 'hubspot/integrations/{tenant_id}/{integration_id}',
  authLevel: 'function',
  handler: httpHandler({ auth: 'tenant', summary: 'Disconnect: revoke the refresh token at HubSpot, delete secrets, keep history', params: z.object({ tenant_id: tenantIdSchema, integration_id: integrationIdSchema }) }, async ({ params, log }) => {
    const done = await disconnectIntegration(getHubSpotServices(), params.tenant_id, params.integration_id, log);
    return json(200, { success: true, tenant_id: params.tenant_id, integration_id: params.integration_id, status: done.status, revocation: done.revocation });
  }),
});
