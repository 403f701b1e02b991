export { TeamsConnector, getTeamsServices, createTeamsServices, type TeamsServices } from './connector';
export { acceptNotification, NoChannelError, type NotifyResult } from './notify';
export { deliverCard, MAX_DEQUEUE_COUNT, type DeliverOutcome } from './deliver';
export { buildCard, buildEnvelope, toEnvelope, POSSIBLE_REPEAT_TEXT, slaWarningCard, slaBreachCard, escalationCard, criticalTicketCard, assignmentCard, MAX_PAYLOAD_BYTES, SNOOZE_MINUTES } from './cards';
export type { AdaptiveCard, MessageEnvelope } from './cardTypes';
export { ChannelStore, TEAMS_INTEGRATION_ID, type Channel } from './channelStore';
export { FALLBACK_CHANNEL, NOTIFICATION_STATUSES, NotificationLog, type NotificationRecord, type NotificationStatus } from './notificationLog';
export { TeamsState, type TeamsSettings } from './floodControl';
export { route, KIND_CHANNELS } from './routing';
export { SnoozeLinks, snoozePage, snoozeConfirmPage, snoozeRefusal, snoozeLinkIdSchema, snoozeParamsSchema, SnoozeLinkError, SNOOZE_LINK_TTL_SECONDS } from './snooze';
export { WebhookSender, WebhookRateLimiter, WebhookPostError, RateLimitWaitError, TEAMS_BUDGET_MARGIN_MS, TEAMS_WEBHOOK_WINDOWS } from './sender';
export { parseWebhookUrl, InvalidWebhookUrlError } from './webhookUrl';
export {
  notificationSchema,
  putChannelsSchema,
  cardMessageSchema,
  channelNameSchema,
  teamChannelName,
  NOTIFICATION_KINDS,
  type Notification,
  type CardMessage,
  type PutChannels,
} from './schemas';
export { channelsView, putChannels, removeChannels } from './channelAdmin';
