/**
 * The HubSpot connector's public surface. Everything that talks to HubSpot gets a `HubSpotCaller`
 * from `getHubSpotServices()` (`activeCaller` / `callerFor`), so every call shares one rate gate and
 * cross-instance budget per portal.
 */
export type { HubSpotCaller, HubSpotCallStats } from './caller';
export { createHubSpotCaller, type CreateHubSpotCallerOptions, type HubSpotAuth } from './client';
export { HUBSPOT_OAUTH_VERSION, OAUTH_PATHS, CRM_OBJECTS_VERSION, CRM_ASSOCIATIONS_VERSION, HUBSPOT_AUTHORIZE_URL } from './apiVersions';
export { HubSpotApiError, HubSpotDailyLimitError, HubSpotUnauthorizedError, IntegrationUnavailableError, hubspotErrorInfo, type HubSpotErrorInfo } from './errors';
export { DistributedBudget, type RateWindow, type CallClass, type BudgetKey, type BudgetStats } from './budget';
export { HubSpotRateGate, ratePolicy, DEFAULT_RATE_LIMITS, type HubSpotRatePolicy, type RateLimitSettings, type HubSpotAuthKind } from './rateLimit';
export { HubSpotOAuthClient, HubSpotOAuthError, HUBSPOT_REQUIRED_SCOPES, type HubSpotTokenInfo, type HubSpotTokenResponse } from './oauth';
export { authKindOf, PRIVATE_APP_TOKEN_PURPOSE, createHubSpotTokenManager } from './tokens';
export { AccountIndex, type PortalLink } from './accountIndex';
export { createHubSpotServices, getHubSpotServices, type HubSpotServices, type HubSpotServicesOptions, type CallerOptions } from './services';
export { updateIntegration, markNeedsReauth } from './integrationState';
export { requestJson, HubSpotHttpError } from './client';
export { startAuthorization, beginConsent, completeAuthorization, OAUTH_STATE_PURPOSE, ConnectError, HubSpotNotConfiguredError, type ConnectedIntegration } from './connect';
export { connectPrivateApp, privateAppBodySchema, PrivateAppTokenRejectedError } from './privateApp';
export { disconnectIntegration, type DisconnectResult } from './disconnect';
export { integrationStatus, type HubSpotStatusView } from './status';
export { refreshIdleTokens, type IdleRefreshResult } from './tokenRefresh';
export { replaceGrant, revokeRetiredTokens, retiredTokensSecretName, RETIRED_TOKENS_PURPOSE } from './retiredTokens';
export { verifyHubSpotSignature, signedUri, webhookBatchSchema, webhookEventSchema, MAX_WEBHOOK_BODY_BYTES, MAX_TIMESTAMP_AGE_MS, type WebhookEvent, type SignatureCheck } from './webhooks';
export { WEBHOOK_CLAIM_STALE_MS, WEBHOOK_CLAIM_SOURCE, webhookClaimId, hubspotEventsMessageSchema, normalizeEvent, eventKey, type HubSpotEventsMessage, type QueuedEvent } from './events';
export { receiveHubSpotDelivery, deliveryMessages, hubspotDeliveryMessageSchema, deliveryEventSchema, type HubSpotDeliveryMessage, type DeliveryEvent, type IntakeResult } from './intake';
export { fanOut, DEFER_SECONDS, type FanOutResult, type FanOutDeps } from './fanOut';
export { processEventsMessage, coalesce, hubspotObjectMergedSchema, MERGE_CLAIM_SOURCE, type EventWorkerResult } from './eventWorker';
export {
  upsertContacts,
  upsertCompanies,
  createTicket,
  contactsBodySchema,
  companiesBodySchema,
  ticketCreateSchema,
  ASSOCIATION_TYPES,
  type PushOutcome,
  type TicketCreate,
} from './twoWay';
export { HubSpotConnector } from './connector';

// Sync (engine, checkpoints, queue messages) and the synced record store.
export * from './sync';
export { HubSpotRecordStore, recordVersion, countKeyOf, COUNT_SCAN_CAP, RECORD_COUNTS_ROW_KEY } from './records';
export type { RecordRow, StoredRecord, RecordVersion, ChangeKind, RecordChange, ApplyResult, TicketQuery, TicketPage } from './records';
export { callbackPage } from './callbackPage';
