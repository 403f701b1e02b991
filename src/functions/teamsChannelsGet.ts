import { app } from '@azure/functions';
import { z } from 'zod';
import { channelsView, getTeamsServices } from '../connectors/teams';
import { httpHandler, json } from '../platform/http';
import { tenantIdSchema } from '../storage';

app.http('teamsChannelsGet', {
  methods: ['GET'],
  route: 'teams/channels/{tenant_id}',
  authLevel: 'function',
  handler: httpHandler({ auth: 'tenant', summary: 'Teams channels and how their last post went (never the URLs)', params: z.object({ tenant_id: tenantIdSchema }) }, async ({ params, services }) =>
    json(200, await channelsView(getTeamsServices(services), params.tenant_id)),
  ),
});
