import { app } from '@azure/functions';
import { z } from 'zod';
import { directoryUserResponseSchema, getGraphServices, userByEmail } from '../connectors/msgraph';
import { httpHandler, json } from '../platform/http';
import { integrationIdSchema, tenantIdSchema } from '../storage';

/** A user of the connected organisation by mail address (or UPN), for assignment. */
app.http('msgraphUsersGet', {
  methods: ['GET'],
  route: 'msgraph/users/{tenant_id}/{integration_id}',
  authLevel: 'function',
  handler: httpHandler(
    {
      auth: 'tenant',
      summary: 'A user by email address (mail, then userPrincipalName); 404 when there is none',
      params: z.object({ tenant_id: tenantIdSchema, integration_id: integrationIdSchema }),
      query: z.object({ email: z.string().email().max(320) }),
      response: { status: 200, schema: directoryUserResponseSchema },
    },
    async ({ params, query }) => json(200, await userByEmail(getGraphServices(), params.tenant_id, params.integration_id, query.email)),
  ),
});
