import { app } from '@azure/functions';
import { z } from 'zod';
import { channelNameSchema, getTeamsServices } from '../connectors/teams';
import { NotFoundError } from '../platform/errors';
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
      const teams = getTeamsServices(services);
      // `?name=` removes one channel; without it, all of them (the webhook URLs are deleted from the secret store too).
      const names = query.name ? [query.name] : (await teams.channels.list(params.tenant_id)).map((c) => c.name);
      let removed = 0;
      for (const name of names) if (await teams.channels.delete(params.tenant_id, name)) removed++;
      if (query.name && removed === 0) throw new NotFoundError(`The tenant has no channel ${query.name}.`);
      await teams.channels.syncIntegration(params.tenant_id);
      log.info('teams channels removed', { removed });
      return { status: 204, headers: { 'Cache-Control': 'no-store' } };
    },
  ),
});
