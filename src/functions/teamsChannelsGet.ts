import { app } from '@azure/functions';
import { z } from 'zod';
import { getTeamsServices, type TeamsServices } from '../connectors/teams';
import { httpHandler, json } from '../platform/http';
import { tenantIdSchema, type TenantId } from '../storage';

/** The tenant's Teams configuration as the API shows it: never a webhook URL. */
export async function channelsView(teams: TeamsServices, tenant: TenantId) {
  const [channels, settings, fallback] = await Promise.all([teams.channels.list(tenant), teams.state.settings(tenant), teams.state.fallbackStatus(tenant)]);
  return {
    tenant_id: tenant,
    channels: channels.map((c) => ({
      name: c.name,
      kind: c.kind,
      created_at: c.createdAt,
      updated_at: c.updatedAt,
      last_post_at: c.lastPostAt ?? null,
      last_post_outcome: c.lastPostOutcome ?? null,
      accepted_last_post: c.lastPostOutcome === undefined ? null : c.lastPostOutcome === 'ok',
      last_error: c.lastError || null,
      failing: c.failing,
    })),
    fallback: {
      available: teams.fallbackUrl !== undefined,
      in_use: channels.length === 0 && teams.fallbackUrl !== undefined,
      last_post_at: fallback?.lastPostAt ?? null,
      last_post_outcome: fallback?.lastPostOutcome ?? null,
      last_error: fallback?.lastError || null,
    },
    settings: { flood_window_minutes: settings.floodWindowMinutes, gather_seconds: settings.gatherSeconds },
  };
}

app.http('teamsChannelsGet', {
  methods: ['GET'],
  route: 'teams/channels/{tenant_id}',
  authLevel: 'function',
  handler: httpHandler({ auth: 'tenant', summary: 'Teams channels and how their last post went (never the URLs)', params: z.object({ tenant_id: tenantIdSchema }) }, async ({ params, services }) =>
    json(200, await channelsView(getTeamsServices(services), params.tenant_id)),
  ),
});
