import { app } from '@azure/functions';
import { z } from 'zod';
import { channelNameSchema, getTeamsServices, removeChannels } from '../connectors/teams';
import { httpHandler } from '../platform/http';
import { tenantIdSchema } from '../storage';

app.http('teamsChannelsDelete', {
  methods: ['DELETE'],
  route: 'teams/channels/{tenant_id}',
  authLevel: 'function',
  handler: httpHandler(
    {
      auth: 'tenant',
      summary: 'Remove one Teams channel (?name=) or all of them, with their webhook URLs',
      params: z.object({ tenant_id: tenantIdSchema }),
      query: z.strictObject({ name: channelNameSchema.optional() }),
    },
    async ({ params, query, services, log }) => {
      await removeChannels(getTeamsServices(services), params.tenant_id, query.name, log);
      return { status: 204, headers: { 'Cache-Control': 'no-store' } };
    },
  ),
});
