export { StorageClients } from './clients';
export { TABLES, QUEUES, ALL_TABLES, ALL_QUEUES, QUEUE_MESSAGE_ENCODING, isQueueName } from './names';
export type { TableName, QueueName } from './names';
export {
  tenantId,
  integrationId,
  tenantIdSchema,
  integrationIdSchema,
  partitionKey,
  rowKey,
  escapeKeyPart,
  unescapeKeyPart,
  tenantPartitionRange,
  expiryHour,
  expiredHours,
} from './keys';
export type { TenantId, IntegrationId, PartitionKey } from './keys';
export { TenantTable } from './tenantTable';
export type { Row, RowData, Page } from './tenantTable';
export { Leases, LeaseLostError } from './lease';
export type { Lease, LeaseRow } from './lease';
export { QueueSender, encodeQueueMessage, tenantMessageSchema, MessageTooLargeError } from './queueSender';
export type { TenantMessage } from './queueSender';
export { IntegrationsRepository, INTEGRATION_TYPES, INTEGRATION_STATUSES, integrationRowSchema } from './repositories/integrations';
export type { Integration, IntegrationRow, IntegrationStatus, IntegrationType } from './repositories/integrations';
export { ProcessedStore, processedRetentionMs, PROCESSED_RETENTION_MS, TOKEN_CLAIM_RETENTION_MS, type ProvisionalClaim } from './repositories/processed';
export { ExpiryIndex } from './expiry';
export type { ExpiryRow, ExpiringKind, SweepResult } from './expiry';
export type { ProcessedRow } from './repositories/processed';
