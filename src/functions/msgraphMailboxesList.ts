import { app } from '@azure/functions';
import { z } from 'zod';
import { getGraphServices, mailboxView, requireGraphIntegration } from '../connectors/msgraph';
import { httpHandler, json } from '../platform/http';
import { integrationIdSchema, tenantIdSchema } from '../storage';

app.http('msgraphMailboxesList', {
  methods: ['GET'],
  route: 'msgraph/mailboxes/{tenant_id}/{integration_id}',
  authLevel: 'function',
  handler: httpHandler(
    {
      auth: 'tenant',
      params: z.object({ tenant_id: tenantIdSchema, integration_id: integrationIdSchema }),
    },
    async ({ params }) => {
      const gs = getGraphServices();
      await requireGraphIntegration(gs, params.tenant_id, params.integration_id);
      const mailboxes = await gs.mailboxes.list(params.tenant_id, params.integration_id);
      return json(200, { tenant_id: params.tenant_id, integration_id: params.integration_id, mailboxes: mailboxes.map(mailboxView) });
    },
  ),
});
