import type { z } from 'zod';
import { NotFoundError } from '../../platform/errors';
import type { Logger } from '../../platform/logging';
import type { TenantId } from '../../storage';
import type { TeamsServices } from './connector';
import type { channelNameSchema, putChannelsSchema } from './schemas';
import { parseWebhookUrl } from './webhookUrl';

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
      opted_in: settings.useFallback,
      in_use: channels.length === 0 && teams.fallbackUrl !== undefined && settings.useFallback,
      last_post_at: fallback?.lastPostAt ?? null,
      last_post_outcome: fallback?.lastPostOutcome ?? null,
      last_error: fallback?.lastError || null,
    },
    settings: { flood_window_minutes: settings.floodWindowMinutes, gather_seconds: settings.gatherSeconds, use_fallback: settings.useFallback },
  };
}

/** Adds or replaces the listed channels and settings. Every URL is checked first, so a bad one changes nothing. */
export async function putChannels(teams: TeamsServices, tenant: TenantId, body: z.infer<typeof putChannelsSchema>, log: Logger): Promise<void> {
  const targets = body.channels.map((c) => ({ name: c.name, target: parseWebhookUrl(c.webhook_url, { allowLoopback: teams.allowLoopback, kind: c.kind }) }));
  for (const { name, target } of targets) await teams.channels.put(tenant, name, target);
  if (body.settings) {
    await teams.state.saveSettings(tenant, {
      ...(body.settings.flood_window_minutes !== undefined ? { floodWindowMinutes: body.settings.flood_window_minutes } : {}),
      ...(body.settings.gather_seconds !== undefined ? { gatherSeconds: body.settings.gather_seconds } : {}),
      ...(body.settings.use_fallback !== undefined ? { useFallback: body.settings.use_fallback } : {}),
    });
  }
  await teams.channels.syncIntegration(tenant);
  log.info('teams channels configured', { channels: targets.map((t) => t.name), kinds: targets.map((t) => t.target.kind) });
}

/** Removes one channel, or all of them, with their webhook URLs in the secret store. */
export async function removeChannels(teams: TeamsServices, tenant: TenantId, name: z.infer<typeof channelNameSchema> | undefined, log: Logger): Promise<void> {
  // With no name: every row, those left half-removed by an earlier failure included.
  const names = name ? [name] : await teams.channels.names(tenant);
  let removed = 0;
  for (const n of names) if (await teams.channels.delete(tenant, n)) removed++;
  if (name && removed === 0) throw new NotFoundError(`The tenant has no channel ${name}.`);
  await teams.channels.syncIntegration(tenant);
  log.info('teams channels removed', { removed });
}
