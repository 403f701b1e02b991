import { app } from '@azure/functions';
import { z } from 'zod';
import { getTeamsServices, parseWebhookUrl, putChannelsSchema } from '../connectors/teams';
import { httpHandler, json } from '../platform/http';
import { tenantIdSchema } from '../storage';
import { channelsView } from './teamsChannelsGet';

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
      // Every URL is checked before anything is stored, so a bad one leaves the configuration unchanged.
      const targets = body.channels.map((c) => ({ name: c.name, target: parseWebhookUrl(c.webhook_url, { allowLoopback: teams.allowLoopback, kind: c.kind }) }));
      for (const { name, target } of targets) await teams.channels.put(params.tenant_id, name, target);
      if (body.settings) {
        await teams.state.saveSettings(params.tenant_id, {
          ...(body.settings.flood_window_minutes !== undefined ? { floodWindowMinutes: body.settings.flood_window_minutes } : {}),
          ...(body.settings.gather_seconds !== undefined ? { gatherSeconds: body.settings.gather_seconds } : {}),
        });
      }
      await teams.channels.syncIntegration(params.tenant_id);
      log.info('teams channels configured', { channels: targets.map((t) => t.name), kinds: targets.map((t) => t.target.kind) });
      return json(200, await channelsView(teams, params.tenant_id));
    },
  ),
});
