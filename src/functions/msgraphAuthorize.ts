import { app } from '@azure/functions';
import { z } from 'zod';
import { getGraphServices, startAdminConsent } from '../connectors/msgraph';
import { httpHandler, json } from '../platform/http';
import { integrationIdSchema, tenantIdSchema } from '../storage';

/** The link that starts connecting the tenant's Microsoft 365 organisation (new or named integration): our start page, then Microsoft sign-in and admin consent. */
app.http('msgraphAuthorize', {
  methods: ['GET'],
  route: 'msgraph/authorize/{tenant_id}',
  authLevel: 'function',
  handler: httpHandler(
    {
      auth: 'tenant',
      summary: 'Link (authorize_url) to our start page, with a signed 5-minute single-use ticket, which binds the browser, signs the admin in at Microsoft and asks admin consent for that organisation',
      params: z.object({ tenant_id: tenantIdSchema }),
      query: z.strictObject({ integration_id: integrationIdSchema.optional() }),
    },
    async ({ params, query }) => {
      const started = await startAdminConsent(getGraphServices(), params.tenant_id, query.integration_id);
      return json(200, { authorize_url: started.url, integration_id: started.integrationId, expires_in: started.expiresIn });
    },
  ),
});
