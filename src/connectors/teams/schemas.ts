import { z } from 'zod';
import { tenantIdSchema } from '../../storage/keys';

/**
 * The contracts of the Teams connector: what the engine sends (`notificationSchema`), how channels are
 * configured (`putChannelsSchema`) and what travels on `teams-cards` (`cardMessageSchema`). Limits on
 * text fields keep a stored notification inside one Table Storage property (32 K UTF-16 units); the card
 * builder, not the API, deals with the 28 KB card limit by truncating.
 */

export const NOTIFICATION_KINDS = ['sla_warning', 'sla_breach', 'escalation', 'critical_ticket', 'assignment'] as const;
export type NotificationKind = (typeof NOTIFICATION_KINDS)[number];

export const FIXED_CHANNELS = ['critical', 'escalations', 'sla-breaches'] as const;
export type FixedChannel = (typeof FIXED_CHANNELS)[number];

/** `team-` plus a normalised team name: what `teamChannelName()` makes from a ticket's team. */
const TEAM_CHANNEL = /^team-[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9]|)$/;
export const MAX_TEAM_SLUG = 64;

export const channelNameSchema = z
  .string()
  .refine((v) => (FIXED_CHANNELS as readonly string[]).includes(v) || TEAM_CHANNEL.test(v), {
    message: 'must be critical, escalations, sla-breaches or team-<name> (lowercase letters, digits and "-", at most 64 after "team-")',
  });
export type ChannelName = string;

/**
 * A team name as it comes on a ticket ("Network Ops", "Service Desk – EMEA") to its channel name:
 * lowercase, every run of other characters a single "-", trimmed, at most 64 characters. Two team names
 * that differ only in punctuation or case share a channel, which is what an admin typing the channel name
 * expects.
 */
export function teamChannelName(team: string): ChannelName | undefined {
  const slug = team
    .normalize('NFKD')
    .replace(/[\u0300-\u036f]/g, '')
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .slice(0, MAX_TEAM_SLUG)
    .replace(/^-+|-+$/g, '');
  return slug === '' ? undefined : `team-${slug}`;
}

const text = (max: number) => z.string().trim().min(1).max(max);

const assigneeSchema = z
  .strictObject({
    name: text(256),
    email: z.email().max(320).optional(),
    aad_object_id: z.guid().optional(),
  })
  .refine((a) => a.email !== undefined || a.aad_object_id !== undefined, { message: 'needs email or aad_object_id (who to @mention)' });

const httpUrl = z
  .string()
  .max(2048)
  .refine((v) => URL.canParse(v) && /^https?:$/.test(new URL(v).protocol), { message: 'must be an http(s) URL' });

export const ticketSchema = z.strictObject({
  id: text(128),
  title: text(4000),
  priority: text(64),
  status: text(64),
  url: httpUrl,
  assignee: assigneeSchema.optional(),
  team: text(128).optional(),
  /** When the ticket is due (ISO 8601 with offset); SLA warnings compute it from the time remaining when absent. */
  due: z.iso.datetime({ offset: true }).optional(),
});
export type Ticket = z.infer<typeof ticketSchema>;

export const notificationSchema = z.discriminatedUnion('kind', [
  z.strictObject({
    kind: z.literal('sla_warning'),
    ticket: ticketSchema,
    time_remaining_minutes: z.number().finite().min(-525_600).max(525_600),
  }),
  z.strictObject({ kind: z.literal('sla_breach'), ticket: ticketSchema }),
  z.strictObject({ kind: z.literal('escalation'), ticket: ticketSchema, reason: text(8000).optional() }),
  z.strictObject({ kind: z.literal('critical_ticket'), ticket: ticketSchema }),
  z.strictObject({
    kind: z.literal('assignment'),
    ticket: ticketSchema.refine((t) => t.assignee !== undefined, { message: 'an assignment needs ticket.assignee', path: ['assignee'] }),
  }),
]);
export type Notification = z.infer<typeof notificationSchema>;

export const WEBHOOK_KINDS = ['workflows', 'incoming-webhook'] as const;
export type WebhookKind = (typeof WEBHOOK_KINDS)[number];

export const DEFAULT_FLOOD_WINDOW_MINUTES = 30;
export const DEFAULT_GATHER_SECONDS = 5;

export const teamsSettingsSchema = z.strictObject({
  /** Same ticket and kind inside this window collapse into one card. */
  flood_window_minutes: z.number().int().min(1).max(1440).optional(),
  /**
   * How long the first card of a window waits before it is built, so that a burst arriving together
   * is counted on it rather than silently collapsed after it.
   */
  gather_seconds: z.number().int().min(0).max(300).optional(),
  /**
   * Opt in to the deployment's fallback webhook (`TEAMS_WEBHOOK_URL`) while the tenant has no channel of its
   * own. Off by default: that channel is the operator's, shared with every tenant that opted in, so the
   * tenant's ticket titles and snooze links are seen there.
   */
  use_fallback: z.boolean().optional(),
});

export const putChannelsSchema = z
  .strictObject({
    channels: z
      .array(
        z.strictObject({
          name: channelNameSchema,
          webhook_url: z.string().trim().min(1).max(2048),
          kind: z.enum(WEBHOOK_KINDS).optional(),
        }),
      )
      .max(100)
      .default([]),
    settings: teamsSettingsSchema.optional(),
  })
  .refine((b) => new Set(b.channels.map((c) => c.name)).size === b.channels.length, { message: 'channel names must be unique', path: ['channels'] })
  .refine((b) => b.channels.length > 0 || b.settings !== undefined, { message: 'nothing to change: give channels or settings' });
export type PutChannels = z.infer<typeof putChannelsSchema>;

/** What `teams-cards` carries: ids only. The card is built from the stored notification at send time. */
export const cardMessageSchema = z.strictObject({
  tenantId: tenantIdSchema,
  notificationId: z.string().regex(/^n-[0-9]{13}-[a-f0-9]{12}$/),
  correlationId: z.string().max(128).optional(),
  /** Times the message was put back for later because of rate limits. */
  deferrals: z.number().int().min(0).max(1000).optional(),
  /** Times the message was put back because another attempt held its claim. */
  claimWaits: z.number().int().min(0).max(1000).optional(),
});
export type CardMessage = z.infer<typeof cardMessageSchema>;
