import type { Logger } from '../../platform/logging';
import { getServices, type Services } from '../../platform/services';
import { NotFoundError } from '../../platform/errors';
import { TABLES, TenantTable, type Integration, type IntegrationId, type TenantId } from '../../storage';
import type { OAuth2TokenManager } from '../base';
import { AccountIndex, type AccountIndexRow } from './accountIndex';
import { DistributedBudget, type BudgetRow, type CallClass } from './budget';
import type { HubSpotCaller } from './caller';
import { createHubSpotCaller, type HubSpotAuth } from './client';
import { IntegrationUnavailableError } from './errors';
import { HubSpotOAuthClient } from './oauth';
import { HubSpotRateGate, ratePolicy, type RateLimitSettings } from './rateLimit';
import { HubSpotRecordStore } from './records';
import { authKindOf, createHubSpotTokenManager, oauthAuth, privateAppAuth } from './tokens';

export interface CallerOptions {
  /** `background` for sync work (the default), `interactive` for webhooks, engine pushes, status. */
  priority?: CallClass;
  signal?: AbortSignal;
  timeoutMs?: number;
  maxAttempts?: number;
  maxElapsedMs?: number;
  log?: Logger;
}

/**
 * The HubSpot connector's process-wide pieces, built once on top of the platform services: the OAuth
 * client, the token manager, the rate gate (with its cross-instance budget), the portal index and the
 * record store. Everything that calls HubSpot gets its caller from here, so every call shares the
 * same limiter and budget.
 */
export interface HubSpotServices {
  base: Services;
  /** Undefined when HubSpot OAuth is not configured (private-app integrations still work). */
  oauth: HubSpotOAuthClient | undefined;
  tokens: OAuth2TokenManager | undefined;
  gate: HubSpotRateGate;
  budget: DistributedBudget;
  accountIndex: AccountIndex;
  records: HubSpotRecordStore;
  rateLimits: RateLimitSettings;
  /** The integration's token source (OAuth or private app). */
  authFor(integration: Integration): HubSpotAuth;
  /** A caller for an integration already read (and checked) by the caller. */
  callerFor(integration: Integration, opts?: CallerOptions): HubSpotCaller;
  /** Reads a HubSpot integration of the tenant: 404 if it is not there or not HubSpot. */
  getIntegration(tenant: TenantId, id: IntegrationId): Promise<Integration>;
  /** Reads the integration and builds its caller; 409 `integration-unavailable` unless it is active. */
  activeCaller(tenant: TenantId, id: IntegrationId, opts?: CallerOptions): Promise<{ integration: Integration; caller: HubSpotCaller }>;
}

export interface HubSpotServicesOptions {
  rateLimits?: Partial<RateLimitSettings>;
  interactiveReserve?: number;
  /** Access tokens are refreshed this long before expiry. Default 5 min. */
  refreshAheadMs?: number;
  log?: Logger;
}

export function createHubSpotServices(base: Services, opts: HubSpotServicesOptions = {}): HubSpotServices {
  const cfg = base.config.hubspot;
  const rateLimits: RateLimitSettings = {
    windowMs: cfg.rateWindowMs,
    publicAppLimit: 110,
    privateAppLimit: cfg.privateAppRateLimit,
    searchLimit: 5,
    ...opts.rateLimits,
  };
  const oauth = cfg.oauth ? new HubSpotOAuthClient({ ...cfg.oauth, apiBaseUrl: cfg.apiBaseUrl }) : undefined;
  const tokens = oauth
    ? createHubSpotTokenManager({
        oauth,
        secrets: base.secrets,
        leases: base.leases,
        integrations: base.integrations,
        ...(opts.log ? { log: opts.log } : {}),
        ...(opts.refreshAheadMs !== undefined ? { refreshAheadMs: opts.refreshAheadMs } : {}),
      })
    : undefined;
  const budget = new DistributedBudget(new TenantTable<BudgetRow>(base.storage.table(TABLES.rateBudgets)), {
    ...(opts.interactiveReserve !== undefined ? { interactiveReserve: opts.interactiveReserve } : {}),
  });
  const gate = new HubSpotRateGate(budget);
  const accountIndex = new AccountIndex(new TenantTable<AccountIndexRow>(base.storage.table(TABLES.accountIndex)));
  const records = new HubSpotRecordStore(base.storage);

  const authFor = (integration: Integration): HubSpotAuth => {
    if (authKindOf(integration) === 'private_app') return privateAppAuth(base.secrets, base.integrations, integration.tenantId, integration.integrationId);
    if (!tokens) throw new IntegrationUnavailableError(integration.status, 'HubSpot OAuth is not configured in this deployment');
    return oauthAuth(tokens, integration.tenantId, integration.integrationId);
  };

  const callerFor = (integration: Integration, o: CallerOptions = {}): HubSpotCaller => {
    if (!integration.externalAccountId) throw new IntegrationUnavailableError(integration.status, 'the integration is not connected to a HubSpot account');
    return createHubSpotCaller({
      tenantId: integration.tenantId,
      integrationId: integration.integrationId,
      portalId: integration.externalAccountId,
      auth: authFor(integration),
      gate,
      policy: ratePolicy(authKindOf(integration), rateLimits),
      apiBaseUrl: cfg.apiBaseUrl,
      ...o,
    });
  };

  const getIntegration = async (tenant: TenantId, id: IntegrationId): Promise<Integration> => {
    const integration = await base.integrations.get(tenant, id);
    if (!integration || integration.type !== 'hubspot') throw new NotFoundError('No HubSpot integration with this id for this tenant.');
    return integration;
  };

  return {
    base,
    oauth,
    tokens,
    gate,
    budget,
    accountIndex,
    records,
    rateLimits,
    authFor,
    callerFor,
    getIntegration,
    activeCaller: async (tenant, id, o) => {
      const integration = await getIntegration(tenant, id);
      if (integration.status !== 'active') throw new IntegrationUnavailableError(integration.status);
      return { integration, caller: callerFor(integration, o) };
    },
  };
}

let instance: HubSpotServices | undefined;

/** Made once per process on first use, over `getServices()`. */
export function getHubSpotServices(): HubSpotServices {
  instance ??= createHubSpotServices(getServices());
  return instance;
}
