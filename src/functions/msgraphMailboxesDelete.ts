import { app } from '@azure/functions';
import { z } from 'zod';
import { getGraphServices, unwatchMailbox } from '../connectors/msgraph';
import { httpHandler } from '../platform/http';
import { integrationIdSchema, tenantIdSchema } from '../storage';

/** Stops watching a mailbox (`?address=`): deletes its Graph subscription and our state. */
app.http('msgraphMailboxesDelete', {
  methods: ['DELETE'],
  route: 'msgraph/mailboxes/{tenant_id}/{integration_id}',
  authLevel: 'function',
  handler: httpHandler(
    {
      auth: 'tenant',
      params: z.object({ tenant_id: tenantIdSchema, integration_id: integrationIdSchema }),
      query: z.strictObject({ address: z.string().trim().email().max(320) }),
    },
    async ({ params, query, log }) => {
      await unwatchMailbox(getGraphServices(), params.tenant_id, params.integration_id, query.address, log);
      return { status: 204, headers: { 'Cache-Control': 'no-store' } };
    },
  ),
});
