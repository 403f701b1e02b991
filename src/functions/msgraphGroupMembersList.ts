import { app } from '@azure/functions';
import { z } from 'zod';
import { getGraphServices, groupMembers, groupMembersResponseSchema } from '../connectors/msgraph';
import { httpHandler, json } from '../platform/http';
import { integrationIdSchema, tenantIdSchema } from '../storage';

/** The members of a group of the connected organisation, nested groups walked by Graph unless transitive=false. */
app.http('msgraphGroupMembersList', {
  methods: ['GET'],
  route: 'msgraph/groups/{tenant_id}/{integration_id}/{group_id}/members',
  authLevel: 'function',
  handler: httpHandler(
    {
      auth: 'tenant',
      summary: "A group's members, paged to the end (transitive by default)",
      params: z.object({ tenant_id: tenantIdSchema, integration_id: integrationIdSchema, group_id: z.string().regex(/^[0-9a-fA-F-]{36}$/, 'a group object id (GUID)') }),
      query: z.object({ transitive: z.enum(['true', 'false']).default('true') }),
      response: { status: 200, schema: groupMembersResponseSchema },
    },
    async ({ params, query }) => json(200, await groupMembers(getGraphServices(), params.tenant_id, params.integration_id, params.group_id, query.transitive === 'true')),
  ),
});
