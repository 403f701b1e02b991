import type { Client } from '@hubspot/api-client';
import type { IntegrationId, TenantId } from '../../storage';

/**
 * The one way HubSpot is called. Every call goes through the portal's rate limiter (and the cross-
 * instance budget), our retry (not the SDK's: its retry and limiter settings are process-wide and leak
 * per token), a per-call timeout, and the integration's token (refreshed ahead of expiry; a 401 triggers
 * one refresh and one retry). `kind: 'search'` also spends the search limit (5/s per token).
 *
 * Implemented by `createHubSpotCaller` (client.ts); sync code depends only on this interface.
 */
export interface HubSpotCaller {
  readonly tenantId: TenantId;
  readonly integrationId: IntegrationId;
  readonly portalId: string;
  call<T>(kind: 'standard' | 'search', operation: string, fn: (client: Client, signal: AbortSignal) => Promise<T>, opts?: { idempotent?: boolean }): Promise<T>;
  /** Counters since creation: calls, rate-limit waits and waited ms, retries. */
  stats(): HubSpotCallStats;
}

export interface HubSpotCallStats {
  calls: number;
  searchCalls: number;
  rateLimitWaits: number;
  rateLimitWaitedMs: number;
  retries: number;
  status429: number;
}
