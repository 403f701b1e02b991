import { app } from '@azure/functions';
import { z } from 'zod';
import { getGraphServices, replyFromEngine, replyRequestSchema } from '../connectors/msgraph';
import { httpHandler, idempotencyKeyOf, json } from '../platform/http';
import { integrationIdSchema, tenantIdSchema } from '../storage';

/** The engine replies to a ticket's email thread, from the tenant's support mailbox. */
app.http('msgraphReply', {
  methods: ['POST'],
  route: 'msgraph/reply/{tenant_id}/{integration_id}',
  authLevel: 'function',
  handler: httpHandler(
    {
      auth: 'tenant',
      params: z.object({ tenant_id: tenantIdSchema, integration_id: integrationIdSchema }),
      body: replyRequestSchema,
      maxBodyBytes: 512 * 1024,
    },
    async ({ params, body, request, log }) => {
      const key = idempotencyKeyOf(request.headers);
      const outcome = await replyFromEngine(getGraphServices(), params.tenant_id, params.integration_id, body, key, log);
      if (outcome.status === 'duplicate') return json(200, { status: 'duplicate' });
      return json(202, {
        status: 'sent',
        conversation_id: body.conversation_id,
        from_address: outcome.from,
        replied_to_message_id: outcome.repliedToMessageId,
        replied_to_internet_message_id: outcome.repliedToInternetMessageId ?? null,
      });
    },
  ),
});
