import { app } from '@azure/functions';
import { z } from 'zod';
import { contactsBodySchema, getHubSpotServices, upsertContacts } from '../connectors/hubspot';
import { httpHandler, json } from '../platform/http';
import { integrationIdSchema, tenantIdSchema } from '../storage';

/** The engine pushes contacts (one or a batch): upserted by email, HubSpot ids returned. */
app.http('hubspotContacts', {
  methods: ['POST'],
  route: 'hubspot/contacts/{tenant_id}/{integration_id}',
  authLevel: 'function',
  handler: httpHandler(
    { auth: 'tenant', summary: 'Push contacts (one or a batch): batch upsert by email, HubSpot ids returned', params: z.object({ tenant_id: tenantIdSchema, integration_id: integrationIdSchema }), body: contactsBodySchema, maxBodyBytes: 1024 * 1024 },
    async ({ params, body, log }) => {
      const hs = getHubSpotServices();
      const { caller } = await hs.activeCaller(params.tenant_id, params.integration_id, { priority: 'interactive', log });
      const out = await upsertContacts({ caller, records: hs.records, tenantId: params.tenant_id, integrationId: params.integration_id }, body.contacts);
      return json(200, {
        success: out.errors.length === 0,
        tenant_id: params.tenant_id,
        integration_id: params.integration_id,
        results: out.results.map((r) => ({ email: r.key, id: r.id, created: r.created })),
        errors: out.errors.map((e) => ({ email: e.key, message: e.message })),
      });
    },
  ),
});
