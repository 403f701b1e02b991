import { app } from '@azure/functions';
import { z } from 'zod';
import { getHubSpotServices, integrationStatus } from '../connectors/hubspot';
import { httpHandler, json } from '../platform/http';
import { integrationIdSchema, tenantIdSchema } from '../storage';

app.http('hubspotStatus', {
  methods: ['GET'],
  route: 'hubspot/status/{tenant_id}/{integration_id}',
  authLevel: 'function',
  handler: httpHandler({ auth: 'tenant', summary: 'Live HubSpot connection status {connected, hub_domain, hub_id, scopes, token_type, expires_in, status}', params: z.object({ tenant_id: tenantIdSchema, integration_id: integrationIdSchema }) }, async ({ params, log }) =>
    json(200, await integrationStatus(getHubSpotServices(), params.tenant_id, params.integration_id, log)),
  ),
});
