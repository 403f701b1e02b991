export { healthProbe, type BaseConnector } from './baseConnector';
export { ConnectorAuthError, InvalidGrantError, RetryAfterTooLongError, TokenRefreshError } from './errors';
export {
  ACCESS_TOKEN_SECRET_PURPOSE,
  looksLikeInvalidGrant,
  OAuth2TokenManager,
  REFRESH_LEASE_NAME,
  REFRESH_TOKEN_SECRET_PURPOSE,
  type OAuth2Provider,
  type OAuth2TokenManagerOptions,
  type RefreshedEvent,
  type RefreshFailedEvent,
  type TokenSet,
} from './oauth2';
export { KeyedRateLimiter, type KeyedRateLimiterOptions, type RateLimiterStats, type Release } from './rateLimiter';
export {
  defaultClassify,
  parseRetryAfter,
  RETRYABLE_STATUSES,
  withRetry,
  type AttemptContext,
  type Classification,
  type Classifier,
  type HeaderSource,
  type RetryOptions,
  type RetryReason,
} from './retry';
export { raceSignal, sleep } from './abort';
export { DistributedBudget, type BudgetKey, type BudgetOptions, type BudgetRow, type BudgetStats, type CallClass, type RateWindow } from './distributedBudget';
export { limitKeyHash, MAX_SINGLE_CALL_LIMIT, SharedRateLimiter, type SharedGrant, type SharedLimitKey } from './sharedRateLimiter';
export { staleClaimMs } from './claims';
