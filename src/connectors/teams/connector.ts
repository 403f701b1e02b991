import { odata } from '@azure/data-tables';
import type { Services } from '../../platform/services';
import { getServices } from '../../platform/services';
import { registerConnector } from '../registry';
import type { TenantId } from '../../storage/keys';
import { TABLES } from '../../storage/names';
import { TenantTable } from '../../storage/tenantTable';
import { DistributedBudget, healthProbe, type BaseConnector, type BudgetRow } from '../base';
import { ChannelStore, type ChannelRow } from './channelStore';
import type { DeliverDeps } from './deliver';
import { TeamsState, type StateRow } from './floodControl';
import { NotificationLog, type NotificationRow } from './notificationLog';
import type { NotifyDeps } from './notify';
import { FALLBACK_TENANT_WINDOWS, TEAMS_BUDGET_MARGIN_MS, TEAMS_WEBHOOK_WINDOWS, WebhookRateLimiter, WebhookSender } from './sender';
import { SnoozeLinks } from './snooze';
import { parseWebhookUrl } from './webhookUrl';
import { cachedDeploymentHealth, rememberDeploymentHealth } from './healthCache';

/** Everything the Teams functions use, made once per process on top of the shared services. */
export interface TeamsServices {
  channels: ChannelStore;
  log: NotificationLog;
  state: TeamsState;
  snooze: SnoozeLinks;
  limiter: WebhookRateLimiter;
  sender: WebhookSender;
  /** Loopback webhook URLs (a local fake Teams) are accepted only with `TEAMS_ALLOW_LOOPBACK_WEBHOOKS=true`. */
  allowLoopback: boolean;
  /** The deployment-wide fallback webhook, when configured and an accepted webhook URL. */
  fallbackUrl: string | undefined;
  notifyDeps(): NotifyDeps;
  deliverDeps(): DeliverDeps;
}

let cached: { base: Services; teams: TeamsServices } | undefined;

export function getTeamsServices(base: Services = getServices()): TeamsServices {
  if (cached?.base === base) return cached.teams;
  const teams = createTeamsServices(base);
  cached = { base, teams };
  return teams;
}

export function createTeamsServices(base: Services, opts: { limiter?: WebhookRateLimiter; sender?: WebhookSender } = {}): TeamsServices {
  const allowLoopback = base.config.teams.allowLoopbackWebhooks;
  const channels = new ChannelStore(new TenantTable<ChannelRow>(base.storage.table(TABLES.teamsChannels)), base.secrets, base.integrations);
  const log = new NotificationLog(new TenantTable<NotificationRow>(base.storage.table(TABLES.teamsNotifications)), base.expiry);
  const state = new TeamsState(new TenantTable<StateRow>(base.storage.table(TABLES.teamsState)), Date.now, base.expiry);
  const snooze = new SnoozeLinks(state, base.config.publicBaseUrl);
  // One RateBudgets row per webhook (and per tenant's fallback quota) and window makes Teams' limits
  // hold across every instance; the in-process limiters in front keep local bursts off the row.
  const budget = new DistributedBudget(new TenantTable<BudgetRow>(base.storage.table(TABLES.rateBudgets)), { minMarginMs: TEAMS_BUDGET_MARGIN_MS });
  const limiter = opts.limiter ?? new WebhookRateLimiter(base.config.teams.webhookWindows ?? TEAMS_WEBHOOK_WINDOWS, { shared: { budget, scope: 'teams-webhook' } });
  const sender = opts.sender ?? new WebhookSender({ limiter, quotaLimiter: new WebhookRateLimiter(FALLBACK_TENANT_WINDOWS, { shared: { budget, scope: 'teams-fallback-quota' } }) });
  const fallbackUrl = acceptedFallback(base.config.teams.fallbackWebhookUrl, allowLoopback);
  const teams: TeamsServices = {
    channels,
    log,
    state,
    snooze,
    limiter,
    sender,
    allowLoopback,
    fallbackUrl,
    notifyDeps: () => ({ channels, log, state, queues: base.queues, fallbackAvailable: fallbackUrl !== undefined }),
    deliverDeps: () => ({ channels, log, state, snooze, sender, processed: base.processed, queues: base.queues, storage: base.storage, fallbackUrl, allowLoopback, functionTimeoutMs: base.config.functionTimeoutMs }),
  };
  return teams;
}

function acceptedFallback(url: string | undefined, allowLoopback: boolean): string | undefined {
  if (!url) return undefined;
  try {
    return parseWebhookUrl(url, { allowLoopback }).url;
  } catch {
    return undefined;
  }
}

/**
 * Teams through webhooks: there is no token to refresh, so "authenticated" means every configured
 * channel's URL is in the secret store, and "healthy" means every configured channel accepted its last
 * post. Scoped to one tenant, or (as `/api/health` uses it) to the whole deployment, where it is down
 * while any tenant's channel is marked failing; per-channel detail is in `GET /api/teams/channels`.
 */
export class TeamsConnector implements BaseConnector {
  readonly name = 'teams';

  constructor(
    private readonly base: Services,
    private readonly teams: TeamsServices,
    private readonly tenant?: TenantId,
  ) {}

  /** Per channel: whether it accepted its last post (`undefined` while it has not posted yet). */
  async channelHealth(tenant: TenantId): Promise<Array<{ name: string; acceptedLastPost: boolean | undefined; failing: boolean }>> {
    const channels = await this.teams.channels.list(tenant);
    return channels.map((c) => ({
      name: c.name,
      acceptedLastPost: c.lastPostOutcome === undefined ? undefined : c.lastPostOutcome === 'ok',
      failing: c.failing,
    }));
  }

  healthCheck(): Promise<boolean> {
    return healthProbe(async () => {
      if (this.tenant) {
        const health = await this.channelHealth(this.tenant);
        if (health.some((c) => c.failing || c.acceptedLastPost === false)) throw new Error('a channel did not accept its last post');
        return;
      }
      // Deployment-wide: a filtered scan that stops at the first failing channel and reads no tenant data
      // beyond the key. The service may answer empty pages with a continuation, hence the loop. /api/health
      // is anonymous, so the answer is cached: callers cannot turn it into a table scan per request.
      const now = Date.now();
      const known = cachedDeploymentHealth(now);
      if (known !== undefined) {
        if (!known) throw new Error('a channel is failing');
        return;
      }
      let ok = true;
      const pages = this.base.storage
        .table(TABLES.teamsChannels)
        .listEntities({ queryOptions: { filter: odata`failing eq ${true}`, select: ['PartitionKey'] } })
        .byPage({ maxPageSize: 1 });
      for await (const page of pages) {
        if (page.length > 0) {
          ok = false;
          break;
        }
      }
      rememberDeploymentHealth(now, ok);
      if (!ok) throw new Error('a channel is failing');
    });
  }

  async authenticate(): Promise<void> {
    if (!this.tenant) return;
    for (const c of await this.teams.channels.list(this.tenant)) {
      if ((await this.teams.channels.webhookUrl(c)) === undefined) throw new Error(`channel ${c.name} has no webhook URL stored`);
    }
  }
}

registerConnector({
  name: 'teams',
  required: false,
  create: () => {
    const base = getServices();
    return new TeamsConnector(base, getTeamsServices(base));
  },
});
