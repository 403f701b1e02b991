import { app } from '@azure/functions';
import { z } from 'zod';
import { getGraphServices, mailboxView, watchMailbox } from '../connectors/msgraph';
import { httpHandler, json } from '../platform/http';
import { integrationIdSchema, tenantIdSchema } from '../storage';

/** Starts watching a support mailbox: its Graph subscription is validated by a real handshake before this answers. */
app.http('msgraphMailboxesCreate', {
  methods: ['POST'],
  route: 'msgraph/mailboxes/{tenant_id}/{integration_id}',
  authLevel: 'function',
  handler: httpHandler(
    {
      auth: 'tenant',
      params: z.object({ tenant_id: tenantIdSchema, integration_id: integrationIdSchema }),
      body: z.strictObject({ address: z.string().trim().email().max(320) }),
      maxBodyBytes: 4096,
    },
    async ({ params, body, log }) => {
      const { mailbox, created } = await watchMailbox(getGraphServices(), params.tenant_id, params.integration_id, body.address, log);
      return json(created ? 201 : 200, mailboxView(mailbox));
    },
  ),
});
