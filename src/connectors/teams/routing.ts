import type { Channel } from './channelStore';
import { teamChannelName, type FixedChannel, type Notification, type NotificationKind } from './schemas';

/**
 * Where each kind goes when the ticket's team has no channel of its own, in order of preference. An
 * assignment concerns one team, so without a team channel it has nowhere sensible to go among the
 * tenant's channels.
 */
export const KIND_CHANNELS: Readonly<Record<NotificationKind, readonly FixedChannel[]>> = {
  critical_ticket: ['critical'],
  escalation: ['escalations', 'critical'],
  sla_breach: ['sla-breaches', 'critical'],
  sla_warning: ['sla-breaches'],
  assignment: [],
};

export type Route = { to: 'channel'; channel: Channel } | { to: 'fallback' };

/**
 * The channel a notification goes to: the ticket's team channel when the tenant has one, else the
 * kind's channel. The deployment-wide fallback webhook serves only tenants with no channel at all that
 * opted in to it (`fallbackAvailable` is the deployment's fallback and the tenant's opt-in together); a
 * tenant that configured channels but none for this kind gets nothing rather than a card in a channel
 * it did not choose.
 */
export function route(n: Notification, channels: readonly Channel[], fallbackAvailable: boolean): Route | undefined {
  if (channels.length === 0) return fallbackAvailable ? { to: 'fallback' } : undefined;
  const byName = new Map(channels.map((c) => [c.name, c]));
  const team = n.ticket.team ? teamChannelName(n.ticket.team) : undefined;
  const teamChannel = team ? byName.get(team) : undefined;
  if (teamChannel) return { to: 'channel', channel: teamChannel };
  for (const name of KIND_CHANNELS[n.kind]) {
    const c = byName.get(name);
    if (c) return { to: 'channel', channel: c };
  }
  return undefined;
}
