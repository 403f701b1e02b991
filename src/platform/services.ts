import { getConfig, type AppConfig } from '../config';
import { createSecretStore, type SecretStore } from '../secrets';
import { DeploymentState, EventDataBlobs, ExpiryIndex, IntegrationsRepository, Leases, ProcessedStore, QueueSender, StorageClients, TABLES, TenantTable, type DeploymentRow, type ExpiryRow, type LeaseRow, type ProcessedRow } from '../storage';
import { EngineEventPublisher } from './events';
import type { EventDefinition } from './events/catalog';
import { SignedTokens } from './signedTokens';
import { ApiAuthenticator } from './http/auth';
import { registerSecret } from './logging';

/** Process-wide clients, made once on first use and shared by every invocation. */
export interface Services {
  config: AppConfig;
  storage: StorageClients;
  queues: QueueSender;
  leases: Leases;
  secrets: SecretStore;
  auth: ApiAuthenticator;
  integrations: IntegrationsRepository;
  processed: ProcessedStore;
  /** Where expiring rows (claims, single-use tokens) are entered; the clean-up timer sweeps it. */
  expiry: ExpiryIndex;
  events: EngineEventPublisher;
  signedTokens: SignedTokens;
}

let services: Services | undefined;

export function createServices(config: AppConfig): Services {
  registerConfigSecrets(config);
  const storage = new StorageClients(config.storage);
  const queues = new QueueSender(storage);
  const secrets = createSecretStore(config.secrets);
  const expiry = new ExpiryIndex(new TenantTable<ExpiryRow>(storage.table(TABLES.expiry)));
  const processed = new ProcessedStore(new TenantTable<ProcessedRow>(storage.table(TABLES.processed)), Date.now, expiry);
  return {
    config,
    storage,
    queues,
    leases: new Leases(new TenantTable<LeaseRow>(storage.table(TABLES.leases))),
    secrets,
    auth: new ApiAuthenticator(config.apiAuth),
    integrations: new IntegrationsRepository(new TenantTable(storage.table(TABLES.integrations))),
    processed,
    expiry,
    events: new EngineEventPublisher(queues, new EventDataBlobs(storage), engineEventCatalog()),
    signedTokens: new SignedTokens(secrets, processed, new DeploymentState(new TenantTable<DeploymentRow>(storage.table(TABLES.deploymentState)))),
  };
}

export function getServices(): Services {
  services ??= createServices(getConfig());
  return services;
}

/** Every secret that arrives through configuration is masked in logs from the start. */
function registerConfigSecrets(config: AppConfig): void {
  if (config.apiAuth.kind === 'secret') registerSecret(new TextDecoder().decode(config.apiAuth.secret));
  if (config.secrets.kind === 'local') {
    registerSecret(config.secrets.key.toString('base64'));
    registerSecret(config.secrets.key.toString('hex'));
  }
  registerSecret(config.hubspot.oauth?.clientSecret);
  registerSecret(config.msgraph.app?.clientSecret);
  registerSecret(config.teams.fallbackWebhookUrl);
  if (config.storage.kind === 'connectionString') {
    const key = /AccountKey=([^;]+)/i.exec(config.storage.connectionString)?.[1];
    registerSecret(key);
  }
}

/**
 * The connectors' event catalogs, loaded when the services are built rather than when this module is: the
 * catalogs import connector modules that import this one.
 */
function engineEventCatalog(): readonly EventDefinition[] {
  return (require('../connectors/eventCatalog') as typeof import('../connectors/eventCatalog')).ENGINE_EVENT_CATALOG;
}
