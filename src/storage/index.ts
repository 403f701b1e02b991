export { StorageClients } from './clients';
export { TABLES, QUEUES, ALL_TABLES, ALL_QUEUES, INTAKE_QUEUES, QUEUE_MESSAGE_ENCODING, isQueueName } from './names';
export type { TableName, QueueName, IntakeQueueName } from './names';
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
} from './keys';
export type { TenantId, IntegrationId, PartitionKey } from './keys';
export { TenantTable } from './tenantTable';
export type { Row, RowData, Page } from './tenantTable';
export { Leases, LeaseLostError } from './lease';
export type { Lease, LeaseRow } from './lease';
export { QueueSender, encodeQueueMessage, tenantMessageSchema, intakeMessageSchema, splitIntoMessages, MessageTooLargeError, MAX_ENCODED_BYTES } from './queueSender';
export type { TenantMessage, IntakeMessage } from './queueSender';
export { IntegrationsRepository, INTEGRATION_TYPES, INTEGRATION_STATUSES, integrationRowSchema } from './repositories/integrations';
export type { Integration, IntegrationRow, IntegrationStatus, IntegrationType } from './repositories/integrations';
export { ProcessedStore, type ProvisionalClaim } from './repositories/processed';
export type { ProcessedRow } from './repositories/processed';
