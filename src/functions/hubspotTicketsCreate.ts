import { app } from '@azure/functions';
import { z } from 'zod';
import { createTicket, getHubSpotServices, ticketCreateSchema } from '../connectors/hubspot';
import { httpHandler, json } from '../platform/http';
import { integrationIdSchema, tenantIdSchema } from '../storage';

/** The engine creates a ticket in HubSpot with its contact and company associations (v4, HUBSPOT_DEFINED). */
app.http('hubspotTicketsCreate', {
  methods: ['POST'],
  route: 'hubspot/tickets/{tenant_id}/{integration_id}',
  authLevel: 'function',
  handler: httpHandler(
    {
      auth: 'tenant',
      summary: 'Create a ticket in HubSpot with its contact and company associations',
      params: z.object({ tenant_id: tenantIdSchema, integration_id: integrationIdSchema }),
      body: ticketCreateSchema,
      maxBodyBytes: 256 * 1024,
    },
    async ({ params, body, log }) => {
      const hs = getHubSpotServices();
      const { caller } = await hs.activeCaller(params.tenant_id, params.integration_id, { priority: 'interactive', log });
      const { id } = await createTicket({ caller, records: hs.records, tenantId: params.tenant_id, integrationId: params.integration_id }, body);
      log.info('hubspot ticket created', { ticketId: id, contacts: body.contactIds.length, companies: body.companyIds.length });
      return json(201, { success: true, tenant_id: params.tenant_id, integration_id: params.integration_id, id });
    },
  ),
});
