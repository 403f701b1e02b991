import { app } from '@azure/functions';
import { z } from 'zod';
import { channelsView, getTeamsServices, putChannels, putChannelsSchema } from '../connectors/teams';
import { httpHandler, json } from '../platform/http';
import { tenantIdSchema } from '../storage';

app.http('teamsChannelsPut', {
  methods: ['PUT'],
  route: 'teams/channels/{tenant_id}',
  authLevel: 'function',
  handler: httpHandler(
    {
      auth: 'tenant',
      summary: 'Set Teams channels (webhook URLs go to the secret store) and flood-control settings',
      params: z.object({ tenant_id: tenantIdSchema }),
      body: putChannelsSchema,
      maxBodyBytes: 64 * 1024,
    },
    async ({ params, body, services, log }) => {
      const teams = getTeamsServices(services);
      await putChannels(teams, params.tenant_id, body, log);
      return json(200, await channelsView(teams, params.tenant_id));
    },
  ),
});
