export { StorageClients } from './clients';
export { TABLES, QUEUES, BLOB_CONTAINERS, ALL_TABLES, ALL_QUEUES, ALL_BLOB_CONTAINERS, INTAKE_QUEUES, QUEUE_MESSAGE_ENCODING, isQueueName } from './names';
export type { TableName, QueueName, BlobContainerName, IntakeQueueName } from './names';
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
export { QueueSender, encodeQueueMessage, fitsQueueMessage, tenantMessageSchema, intakeMessageSchema, splitIntoMessages, MessageTooLargeError, MAX_QUEUE_MESSAGE_BYTES, MAX_ENCODED_BYTES } from './queueSender';
export type { TenantMessage, EncodedMessage, IntakeMessage } from './queueSender';
export { EventDataBlobs, eventDataBlobName, eventDataDigest, eventDataTenantPrefix } from './eventDataBlobs';
export { IntegrationsRepository, INTEGRATION_TYPES, INTEGRATION_STATUSES, integrationRowSchema } from './repositories/integrations';
export type { Integration, IntegrationRow, IntegrationStatus, IntegrationType } from './repositories/integrations';
export { ProcessedStore, processedRetentionMs, PROCESSED_RETENTION_MS, TOKEN_CLAIM_RETENTION_MS, type ProvisionalClaim } from './repositories/processed';
export { ExpiryIndex } from './expiry';
export type { ExpiryRow, ExpiringKind, SweepResult } from './expiry';
export type { ProcessedRow } from './repositories/processed';
export { DeploymentState, type DeploymentRow } from './repositories/deployment';
