import { app } from '@azure/functions';
import { z } from 'zod';
import { companiesBodySchema, getHubSpotServices, upsertCompanies } from '../connectors/hubspot';
import { httpHandler, json } from '../platform/http';
import { integrationIdSchema, tenantIdSchema } from '../storage';

/** The engine pushes companies (one or a batch): upserted by domain, HubSpot ids returned. */
app.http('hubspotCompanies', {
  methods: ['POST'],
  route: 'hubspot/companies/{tenant_id}/{integration_id}',
  authLevel: 'function',
  handler: httpHandler(
    { auth: 'tenant', summary: 'Push companies (one or a batch): batch upsert by domain, HubSpot ids returned', params: z.object({ tenant_id: tenantIdSchema, integration_id: integrationIdSchema }), body: companiesBodySchema, maxBodyBytes: 1024 * 1024 },
    async ({ params, body, log }) => {
      const hs = getHubSpotServices();
      const { caller } = await hs.activeCaller(params.tenant_id, params.integration_id, { priority: 'interactive', log });
      const out = await upsertCompanies({ caller, records: hs.records, tenantId: params.tenant_id, integrationId: params.integration_id }, body.companies);
      return json(200, {
        success: out.errors.length === 0,
        tenant_id: params.tenant_id,
        integration_id: params.integration_id,
        results: out.results.map((r) => ({ domain: r.key, id: r.id, created: r.created })),
        errors: out.errors.map((e) => ({ domain: e.key, message: e.message })),
      });
    },
  ),
});
