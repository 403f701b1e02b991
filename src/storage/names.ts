/**
 * Every table, queue and blob container the app uses. infra/ declares exactly these (a test holds them together), the
 * local runner creates them on Azurite, and queue triggers may only name queues listed here.
 */
export const TABLES = {
  integrations: 'Integrations',
  accountIndex: 'AccountIndex',
  syncState: 'SyncState',
  syncEvents: 'SyncEvents',
  records: 'Records',
  conversations: 'Conversations',
  subscriptions: 'Subscriptions',
  processed: 'Processed',
  leases: 'Leases',
  rateBudgets: 'RateBudgets',
  graphMailboxes: 'GraphMailboxes',
  teamsChannels: 'TeamsChannels',
  teamsNotifications: 'TeamsNotifications',
  teamsState: 'TeamsState',
  deploymentState: 'DeploymentState',
  expiry: 'Expiry',
} as const;

export type TableName = (typeof TABLES)[keyof typeof TABLES];

export const QUEUES = {
  hubspotSync: 'hubspot-sync',
  hubspotEvents: 'hubspot-events',
  /** Verified HubSpot deliveries as received, before fan-out to integrations (see `INTAKE_QUEUES`). */
  hubspotWebhooks: 'hubspot-webhooks',
  graphNotifications: 'graph-notifications',
  /** Graph notification deliveries as received, before their subscriptions are checked. */
  graphWebhooks: 'graph-webhooks',
  teamsCards: 'teams-cards',
  engineEvents: 'engine-events',
} as const;

export type QueueName = (typeof QUEUES)[keyof typeof QUEUES];

/**
 * Blob containers. `engine-event-data` holds the `data` of engine events too large for a queue message
 * (the claim check: the event names the blob in its `dataref`); infra/ expires its blobs by a lifecycle rule.
 */
export const BLOB_CONTAINERS = {
  engineEventData: 'engine-event-data',
} as const;

export type BlobContainerName = (typeof BLOB_CONTAINERS)[keyof typeof BLOB_CONTAINERS];

export const ALL_TABLES: readonly TableName[] = Object.values(TABLES);
export const ALL_QUEUES: readonly QueueName[] = Object.values(QUEUES);
export const ALL_BLOB_CONTAINERS: readonly BlobContainerName[] = Object.values(BLOB_CONTAINERS);

/**
 * Queues that hold webhook deliveries before any tenant is known: a delivery names an external account
 * (a HubSpot portal, an Entra tenant), and only its consumer resolves that to tenants through the
 * AccountIndex. Their messages are account-scoped instead of tenant-scoped, and every message their
 * consumers write onwards names its tenant again.
 */
export const INTAKE_QUEUES = [QUEUES.hubspotWebhooks, QUEUES.graphWebhooks] as const;
export type IntakeQueueName = (typeof INTAKE_QUEUES)[number];

/**
 * How our code encodes queue messages; host.json `extensions.queues.messageEncoding` must say the same
 * (the registration test checks), or the runtime fails to decode and poisons every message.
 */
export const QUEUE_MESSAGE_ENCODING = 'base64' as const;

export function isQueueName(name: string): name is QueueName {
  return (ALL_QUEUES as readonly string[]).includes(name);
}
