import type { Client } from '@microsoft/microsoft-graph-client';
import { AppError } from '../../platform/errors';
import { getServices, type Services } from '../../platform/services';
import { TABLES, TenantTable } from '../../storage';
import { AppCredentialSource } from './appCredential';
import { DistributedBudget, type BudgetRow } from '../base';
import { GraphClientFactory, type GraphClientFactoryOptions } from './client';
import { EntraSignIn } from './signIn';
import { AccountIndex, ConversationRepository, MailboxRepository, SubscriptionRepository } from './store';
import { SubscriptionService } from './subscriptions';

/**
 * The Graph connector's own process-wide objects, built lazily on top of the platform services: the
 * client factory (credentials, limiter), its repositories and the subscription service.
 */
export interface GraphServices {
  services: Services;
  mailboxes: MailboxRepository;
  subscriptionsRepo: SubscriptionRepository;
  conversations: ConversationRepository;
  accountIndex: AccountIndex;
  subscriptions: SubscriptionService;
  /** Undefined when MSGRAPH_CLIENT_ID (and _SECRET, or MSGRAPH_CREDENTIAL=certificate) are not set in this deployment. */
  factory: GraphClientFactory | undefined;
  /** The admin's OpenID Connect sign-in before admin consent; undefined like `factory`. */
  signIn: EntraSignIn | undefined;
  /** The factory, or a 503 problem saying Graph is not configured. */
  requireFactory(): GraphClientFactory;
  client(entraTenantId: string): Client;
}

/**
 * Least margin of the cross-instance mailbox budget: a grant counts from when it is made, Outlook counts
 * on arrival, and a first request on a new TLS connection arrives a few hundred ms later. Outlook's
 * 10-minute window has a 6 s margin anyway (a hundredth of the window); this floor matters only for the
 * short windows tests use.
 */
export const GRAPH_BUDGET_MARGIN_MS = 500;

export class GraphNotConfiguredError extends AppError {
  constructor() {
    super({ status: 503, code: 'msgraph-not-configured', title: 'Microsoft Graph is not configured', detail: 'This deployment has no Microsoft Graph app registration (MSGRAPH_CLIENT_ID / MSGRAPH_CLIENT_SECRET).' });
  }
}

export function createGraphServices(services: Services, factoryOverrides: Partial<GraphClientFactoryOptions> = {}): GraphServices {
  const { config, storage } = services;
  const app = config.msgraph.app;
  // One per process, shared by app-only tokens and the admin sign-in: the certificate is read once.
  const appCredential = app ? new AppCredentialSource({ mode: app.credential, clientSecret: app.clientSecret, secrets: services.secrets }) : undefined;
  const factory = app
    ? new GraphClientFactory({
        clientId: app.clientId,
        ...(appCredential ? { appCredential } : {}),
        baseUrl: config.msgraph.baseUrl,
        authorityHost: config.msgraph.authorityHost,
        requestsPerWindow: config.msgraph.mailboxRateLimit.limit,
        windowMs: config.msgraph.mailboxRateLimit.intervalMs,
        maxConcurrentPerMailbox: config.msgraph.mailboxConcurrency,
        budget: new DistributedBudget(new TenantTable<BudgetRow>(storage.table(TABLES.rateBudgets)), { minMarginMs: GRAPH_BUDGET_MARGIN_MS }),
        ...factoryOverrides,
      })
    : undefined;
  const subscriptionsRepo = new SubscriptionRepository(new TenantTable(storage.table(TABLES.subscriptions)));
  const requireFactory = (): GraphClientFactory => {
    if (!factory) throw new GraphNotConfiguredError();
    return factory;
  };
  return {
    services,
    mailboxes: new MailboxRepository(new TenantTable(storage.table(TABLES.graphMailboxes))),
    subscriptionsRepo,
    conversations: new ConversationRepository(new TenantTable(storage.table(TABLES.conversations))),
    accountIndex: new AccountIndex(new TenantTable(storage.table(TABLES.accountIndex))),
    subscriptions: new SubscriptionService({
      secrets: services.secrets,
      repo: subscriptionsRepo,
      publicBaseUrl: config.publicBaseUrl,
      lifetimeMinutes: config.msgraph.subscriptionLifetimeMinutes,
    }),
    factory,
    signIn: app && appCredential ? new EntraSignIn({ authorityHost: config.msgraph.authorityHost, clientId: app.clientId, appCredential }) : undefined,
    requireFactory,
    client: (entraTenantId) => requireFactory().client(entraTenantId),
  };
}

let graphServices: GraphServices | undefined;

export function getGraphServices(): GraphServices {
  graphServices ??= createGraphServices(getServices());
  return graphServices;
}
