import { getConfig, type AppConfig } from '../config';
import { createSecretStore, type SecretStore } from '../secrets';
import { IntegrationsRepository, Leases, QueueSender, StorageClients, TABLES, TenantTable, type LeaseRow } from '../storage';
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
}

let services: Services | undefined;

export function createServices(config: AppConfig): Services {
  registerConfigSecrets(config);
  const storage = new StorageClients(config.storage);
  return {
    config,
    storage,
    queues: new QueueSender(storage),
    leases: new Leases(new TenantTable<LeaseRow>(storage.table(TABLES.leases))),
    secrets: createSecretStore(config.secrets),
    auth: new ApiAuthenticator(config.apiAuth),
    integrations: new IntegrationsRepository(new TenantTable(storage.table(TABLES.integrations))),
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
