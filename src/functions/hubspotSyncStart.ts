import { app } from '@azure/functions';
import { z } from 'zod';
import { getHubSpotServices } from '../connectors/hubspot/services';
import { IntegrationUnavailableError } from '../connectors/hubspot/errors';
import { requestSync, SYNC_OBJECT_TYPES, SYNC_TYPES } from '../connectors/hubspot';
import { AppError } from '../platform/errors';
import { httpHandler, json } from '../platform/http';
import { integrationIdSchema, tenantIdSchema } from '../storage';

app.http('hubspotSyncStart', {
  methods: ['POST'],
  route: 'hubspot/sync/{tenant_id}/{integration_id}',
  authLevel: 'function',
  handler: httpHandler(
    {
      auth: 'tenant',
      params: z.object({ tenant_id: tenantIdSchema, integration_id: integrationIdSchema }),
      body: z.strictObject({
        sync_type: z.enum(SYNC_TYPES),
        object_types: z.array(z.enum(SYNC_OBJECT_TYPES)).min(1).max(SYNC_OBJECT_TYPES.length).optional(),
      }),
      maxBodyBytes: 4096,
    },
    async ({ params, body, services, log }) => {
      const t = params.tenant_id;
      const i = params.integration_id;
      const integration = await getHubSpotServices().getIntegration(t, i);
      if (integration.status !== 'active') throw new IntegrationUnavailableError(integration.status);
      const result = await requestSync(services, t, i, {
        syncType: body.sync_type,
        trigger: 'api',
        ...(body.object_types ? { objectTypes: [...new Set(body.object_types)] } : {}),
      });
      if (!result.started) {
        throw new AppError({
          status: 409,
          code: 'sync-already-running',
          title: 'A sync is already running for this integration',
          detail: `sync ${result.syncId} is ${result.status}; follow it with GET on this path`,
          extensions: { tenant_id: t, integration_id: i, sync_id: result.syncId, sync_status: result.status },
        });
      }
      log.info('sync requested', { syncId: result.syncId, syncType: body.sync_type });
      return json(202, {
        success: true,
        message: `${body.sync_type === 'full' ? 'Full' : 'Incremental'} sync queued`,
        tenant_id: t,
        integration_id: i,
        sync_id: result.syncId,
      });
    },
  ),
});
