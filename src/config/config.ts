import { decodeKey256, envSchema, runsInAzure, type Env } from './schema';

export type StorageConfig =
  | { kind: 'connectionString'; connectionString: string }
  | { kind: 'identity'; tableServiceUri: string; queueServiceUri: string; blobServiceUri: string; managedIdentityClientId?: string };

export type SecretStoreConfig =
  | { kind: 'keyVault'; vaultUri: string }
  | { kind: 'local'; key: Buffer; directory: string };

export type ApiAuthConfig =
  | ({ kind: 'secret'; secret: Uint8Array; issuer?: string; audience?: string } & ApiTokenRules)
  | ({ kind: 'jwks'; jwksUri: string; issuer: string; audience: string } & ApiTokenRules);

/** What every management API token must satisfy, whichever way it is signed. */
export interface ApiTokenRules {
  tenantClaim: string;
  /** Oldest accepted `iat`, in seconds before now. */
  maxAgeSeconds: number;
  /** The exact `typ` header required; unset: absent, `JWT` or `at+jwt`. */
  typ?: string;
}

export interface AppConfig {
  storage: StorageConfig;
  secrets: SecretStoreConfig;
  publicBaseUrl: string;
  apiAuth: ApiAuthConfig;
  hubspot: {
    apiBaseUrl: string;
    oauth?: { clientId: string; clientSecret: string; redirectUri: string };
    /** Accept webhook signatures v1/v2 (no timestamp) when a request carries no v3 signature. */
    acceptLegacySignatures: boolean;
    /** Private-app requests per window (the account's tier). */
    privateAppRateLimit: number;
    /** HubSpot's rolling rate window in ms (10 000; tests shrink it). */
    rateWindowMs: number;
    /** A sync invocation's time budget before it re-queues its continuation. */
    syncTimeBudgetMs: number;
  };
  msgraph: {
    baseUrl: string;
    /** Entra authority host for client-credential tokens (tests point it at a fake). */
    authorityHost: string;
    /** Lifetime asked for new and renewed Graph subscriptions. */
    subscriptionLifetimeMinutes: number;
    /** Outlook's per-mailbox window, held across instances. */
    mailboxRateLimit: { limit: number; intervalMs: number };
    /** Requests in flight per mailbox in one process. */
    mailboxConcurrency: number;
    /**
     * The app registration. `credential` says what proves it: the client secret, or the certificate in the secret
     * store (then `clientSecret`, when set, is the fallback for a certificate that cannot be loaded).
     */
    app?: { clientId: string; clientSecret?: string; credential: 'secret' | 'certificate'; homeTenantId?: string };
  };
  teams: {
    fallbackWebhookUrl?: string;
    /** `TEAMS_ALLOW_LOOPBACK_WEBHOOKS=true`: loopback webhook URLs (a fake Teams) are accepted. Off by default; refused in Azure. */
    allowLoopbackWebhooks: boolean;
    /** `TEAMS_WEBHOOK_RATE_WINDOWS`: replaces Teams' per-webhook windows (tests shrink them). */
    webhookWindows?: Array<{ limit: number; intervalMs: number }>;
  };
  logLevel: Env['LOG_LEVEL'];
  /** host.json `functionTimeout` (10 min), or the host's `AzureFunctionsJobHost__functionTimeout` override. */
  functionTimeoutMs: number;
  /** True when the process runs on the Azure platform (App Service / Functions). */
  runningInAzure: boolean;
}

/** A configuration problem found at start: every problem, in one message, with no values echoed. */
export class ConfigError extends Error {
  readonly problems: string[];
  constructor(problems: string[]) {
    super(`Invalid configuration (${problems.length} problem${problems.length === 1 ? '' : 's'}):\n` + problems.map((p) => `  - ${p}`).join('\n'));
    this.name = 'ConfigError';
    this.problems = problems;
  }
}

export function parseConfig(source: NodeJS.ProcessEnv): AppConfig {
  const parsed = envSchema.safeParse(source);
  if (!parsed.success) {
    // Messages name the setting and the rule, never the value: a malformed secret must not reach a log.
    throw new ConfigError(parsed.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`));
  }
  const config = toAppConfig(parsed.data);
  // An explicit switch, and one that cannot be left on in a deployment by mistake.
  if (config.teams.allowLoopbackWebhooks && config.runningInAzure) {
    throw new ConfigError(['TEAMS_ALLOW_LOOPBACK_WEBHOOKS: must not be true when running in Azure (it is for tests and local runs)']);
  }
  return config;
}

function toAppConfig(env: Env): AppConfig {
  const runningInAzure = runsInAzure(env);
  return {
    storage: storageConfig(env),
    secrets: env.KEY_VAULT_URI
      ? { kind: 'keyVault', vaultUri: env.KEY_VAULT_URI }
      : { kind: 'local', key: decodeKey256(env.LOCAL_SECRET_KEY ?? '') as Buffer, directory: env.LOCAL_SECRET_DIR },
    publicBaseUrl: env.PUBLIC_BASE_URL.replace(/\/+$/, ''),
    apiAuth: env.API_JWT_JWKS_URI
      ? {
          kind: 'jwks',
          jwksUri: env.API_JWT_JWKS_URI,
          issuer: env.API_JWT_ISSUER as string,
          audience: env.API_JWT_AUDIENCE as string,
          tenantClaim: env.API_JWT_TENANT_CLAIM,
          maxAgeSeconds: env.API_JWT_MAX_AGE_SECONDS,
          ...(env.API_JWT_TYP ? { typ: env.API_JWT_TYP } : {}),
        }
      : {
          kind: 'secret',
          secret: new TextEncoder().encode(env.API_JWT_SECRET as string),
          ...(env.API_JWT_ISSUER ? { issuer: env.API_JWT_ISSUER } : {}),
          ...(env.API_JWT_AUDIENCE ? { audience: env.API_JWT_AUDIENCE } : {}),
          tenantClaim: env.API_JWT_TENANT_CLAIM,
          maxAgeSeconds: env.API_JWT_MAX_AGE_SECONDS,
          ...(env.API_JWT_TYP ? { typ: env.API_JWT_TYP } : {}),
        },
    hubspot: {
      apiBaseUrl: env.HUBSPOT_API_BASE_URL.replace(/\/+$/, ''),
      acceptLegacySignatures: env.HUBSPOT_WEBHOOK_ACCEPT_LEGACY_SIGNATURES === 'true',
      privateAppRateLimit: env.HUBSPOT_PRIVATE_APP_RATE_LIMIT,
      rateWindowMs: env.HUBSPOT_RATE_WINDOW_MS,
      syncTimeBudgetMs: env.HUBSPOT_SYNC_TIME_BUDGET_SECONDS * 1000,
      ...(env.HUBSPOT_CLIENT_ID && env.HUBSPOT_CLIENT_SECRET && env.HUBSPOT_REDIRECT_URI
        ? { oauth: { clientId: env.HUBSPOT_CLIENT_ID, clientSecret: env.HUBSPOT_CLIENT_SECRET, redirectUri: env.HUBSPOT_REDIRECT_URI } }
        : {}),
    },
    msgraph: {
      baseUrl: env.GRAPH_BASE_URL.replace(/\/+$/, ''),
      authorityHost: env.MSGRAPH_AUTHORITY_HOST.replace(/\/+$/, ''),
      subscriptionLifetimeMinutes: env.MSGRAPH_SUBSCRIPTION_LIFETIME_MINUTES,
      mailboxRateLimit: { limit: env.MSGRAPH_MAILBOX_RATE_LIMIT, intervalMs: env.MSGRAPH_MAILBOX_RATE_WINDOW_MS },
      mailboxConcurrency: env.MSGRAPH_MAILBOX_CONCURRENCY,
      ...(env.MSGRAPH_CLIENT_ID && (env.MSGRAPH_CLIENT_SECRET || env.MSGRAPH_CREDENTIAL === 'certificate')
        ? {
            app: {
              clientId: env.MSGRAPH_CLIENT_ID,
              credential: env.MSGRAPH_CREDENTIAL,
              ...(env.MSGRAPH_CLIENT_SECRET ? { clientSecret: env.MSGRAPH_CLIENT_SECRET } : {}),
              ...(env.MSGRAPH_TENANT_ID ? { homeTenantId: env.MSGRAPH_TENANT_ID } : {}),
            },
          }
        : {}),
    },
    teams: {
      ...(env.TEAMS_WEBHOOK_URL ? { fallbackWebhookUrl: env.TEAMS_WEBHOOK_URL } : {}),
      allowLoopbackWebhooks: env.TEAMS_ALLOW_LOOPBACK_WEBHOOKS === 'true',
      ...(env.TEAMS_WEBHOOK_RATE_WINDOWS ? { webhookWindows: parseWindows(env.TEAMS_WEBHOOK_RATE_WINDOWS) } : {}),
    },
    logLevel: env.LOG_LEVEL,
    functionTimeoutMs: env.AzureFunctionsJobHost__functionTimeout ? timeSpanMs(env.AzureFunctionsJobHost__functionTimeout) : HOST_FUNCTION_TIMEOUT_MS,
    runningInAzure,
  };
}

/** host.json's `functionTimeout`; a unit test keeps the two equal. */
export const HOST_FUNCTION_TIMEOUT_MS = 10 * 60_000;

/** `[d.]hh:mm:ss` (already checked by the schema) → ms. */
function timeSpanMs(value: string): number {
  const [dayPart, rest] = value.includes('.') ? (value.split('.') as [string, string]) : ['0', value];
  const [h, m, s] = rest.split(':').map(Number) as [number, number, number];
  return ((Number(dayPart) * 24 + h) * 60 + m) * 60_000 + s * 1000;
}

function storageConfig(env: Env): StorageConfig {
  if (env.AzureWebJobsStorage) return { kind: 'connectionString', connectionString: env.AzureWebJobsStorage };
  const account = env.AzureWebJobsStorage__accountName;
  return {
    kind: 'identity',
    tableServiceUri: env.AzureWebJobsStorage__tableServiceUri ?? `https://${account}.table.core.windows.net`,
    queueServiceUri: env.AzureWebJobsStorage__queueServiceUri ?? `https://${account}.queue.core.windows.net`,
    blobServiceUri: env.AzureWebJobsStorage__blobServiceUri ?? `https://${account}.blob.core.windows.net`,
    ...(env.AzureWebJobsStorage__clientId ? { managedIdentityClientId: env.AzureWebJobsStorage__clientId } : {}),
  };
}

let cached: AppConfig | undefined;

/** Parsed once per process; a bad environment fails the first caller (the app's start) with every problem listed. */
export function getConfig(): AppConfig {
  cached ??= parseConfig(process.env);
  return cached;
}

/** For tests that change the environment between cases. */
export function resetConfigForTests(): void {
  cached = undefined;
}

/** "4/2000,60/30000" (already checked by the schema's pattern) as windows. */
function parseWindows(raw: string): Array<{ limit: number; intervalMs: number }> {
  return raw.split(',').map((pair) => {
    const [limit, ms] = pair.split('/');
    return { limit: Number(limit), intervalMs: Number(ms) };
  });
}
