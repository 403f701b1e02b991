import { app } from '@azure/functions';
import { z } from 'zod';
import { httpHandler, json } from '../platform/http';
import { INTEGRATION_TYPES, tenantIdSchema } from '../storage';

app.http('listIntegrations', {
  methods: ['GET'],
  route: 'integrations/{tenant_id}',
  authLevel: 'function',
  handler: httpHandler(
    {
      auth: 'tenant',
      params: z.object({ tenant_id: tenantIdSchema }),
      query: z.strictObject({ type: z.enum(INTEGRATION_TYPES).optional() }),
    },
    async ({ params, query, services }) => {
      const items = await services.integrations.list(params.tenant_id, query.type ? { type: query.type } : undefined);
      return json(200, {
        tenant_id: params.tenant_id,
        integrations: items.map((i) => ({
          integration_id: i.integrationId,
          type: i.type,
          status: i.status,
          external_account_id: i.externalAccountId ?? null,
          external_account_name: i.externalAccountName ?? null,
          created_at: i.createdAt,
          updated_at: i.updatedAt,
          last_sync_at: i.lastSyncAt ?? null,
          last_error: i.lastError ?? null,
        })),
      });
    },
  ),
});
