import { z } from 'zod';

/**
 * Every setting the app reads, in one schema. Names are fixed: infra/, local.settings.sample.json and
 * the structure test rely on them.
 */

const url = (what: string) =>
  z
    .string()
    .trim()
    .refine((v) => URL.canParse(v) && /^https?:$/.test(new URL(v).protocol), { message: `${what} must be an http(s) URL` });

const optionalString = z
  .string()
  .trim()
  .transform((v) => (v === '' ? undefined : v))
  .optional();

const optionalUrl = (what: string) =>
  z
    .string()
    .trim()
    .transform((v) => (v === '' ? undefined : v))
    .optional()
    .refine((v) => v === undefined || (URL.canParse(v) && /^https?:$/.test(new URL(v).protocol)), {
      message: `${what} must be an http(s) URL`,
    });

/** An empty or blank value counts as unset, so a setting with a default falls back to it (app settings are often ''). */
const blankAsUnset = <S extends z.ZodType>(schema: S) =>
  z.preprocess((v) => (typeof v === 'string' && v.trim() === '' ? undefined : v), schema);

/** True when the process runs on the Azure platform (App Service / Functions / Container Apps). */
export function runsInAzure(env: { WEBSITE_INSTANCE_ID?: string | undefined; WEBSITE_SITE_NAME?: string | undefined; CONTAINER_APP_NAME?: string | undefined }): boolean {
  return Boolean(env.WEBSITE_INSTANCE_ID || env.WEBSITE_SITE_NAME || env.CONTAINER_APP_NAME);
}

/** Raw environment as the Functions host (or our runner) gives it: every value is a string. */
export const envSchema = z
  .object({
    AzureWebJobsStorage: optionalString,
    AzureWebJobsStorage__accountName: optionalString,
    AzureWebJobsStorage__tableServiceUri: optionalUrl('AzureWebJobsStorage__tableServiceUri'),
    AzureWebJobsStorage__queueServiceUri: optionalUrl('AzureWebJobsStorage__queueServiceUri'),
    // Also the host's own (timer locks); we keep oversized engine-event data there (the claim check).
    AzureWebJobsStorage__blobServiceUri: optionalUrl('AzureWebJobsStorage__blobServiceUri'),
    AzureWebJobsStorage__clientId: optionalString,
    AzureWebJobsStorage__credential: optionalString,

    KEY_VAULT_URI: optionalUrl('KEY_VAULT_URI'),
    LOCAL_SECRET_KEY: optionalString,
    LOCAL_SECRET_DIR: blankAsUnset(z.string().trim().min(1).default('.local-secrets')),

    PUBLIC_BASE_URL: url('PUBLIC_BASE_URL'),

    API_JWT_SECRET: optionalString,
    API_JWT_JWKS_URI: optionalUrl('API_JWT_JWKS_URI'),
    API_JWT_ISSUER: optionalString,
    API_JWT_AUDIENCE: optionalString,
    API_JWT_TENANT_CLAIM: blankAsUnset(z.string().trim().min(1).default('tenant_id')),
    // Tokens older than this (by their required `iat`) are refused whatever their `exp` says: a leaked
    // long-lived token stops working after at most this long.
    API_JWT_MAX_AGE_SECONDS: blankAsUnset(z.coerce.number().int().min(60).max(30 * 24 * 3600).default(24 * 3600)),
    // The `typ` header the issuer stamps (e.g. `at+jwt`, RFC 9068): when set, every token must carry it.
    // Unset: a token's `typ`, if any, must be `JWT` or `at+jwt`, so other JWTs of the issuer (logout,
    // DPoP proofs, security events) are not accepted as API tokens.
    API_JWT_TYP: optionalString,

    HUBSPOT_CLIENT_ID: optionalString,
    HUBSPOT_CLIENT_SECRET: optionalString,
    HUBSPOT_REDIRECT_URI: optionalUrl('HUBSPOT_REDIRECT_URI'),
    HUBSPOT_API_BASE_URL: blankAsUnset(url('HUBSPOT_API_BASE_URL').default('https://api.hubapi.com')),
    // Webhook signatures v1/v2 (no timestamp, so no replay window) are refused unless this is 'true'.
    HUBSPOT_WEBHOOK_ACCEPT_LEGACY_SIGNATURES: blankAsUnset(z.enum(['true', 'false']).default('false')),
    // Private-app requests per rate window: 100 (Free/Starter), 190 (Professional/Enterprise), 250 (API add-on).
    HUBSPOT_PRIVATE_APP_RATE_LIMIT: blankAsUnset(z.coerce.number().int().min(10).max(1000).default(100)),
    // HubSpot's rolling rate window (10 s; search: a tenth of it). Tests shrink it together with the fake's.
    HUBSPOT_RATE_WINDOW_MS: blankAsUnset(z.coerce.number().int().min(100).max(60_000).default(10_000)),
    // A sync job stops taking pages after this long and re-queues itself; functionTimeout is 10 minutes.
    HUBSPOT_SYNC_TIME_BUDGET_SECONDS: blankAsUnset(z.coerce.number().int().min(1).max(570).default(480)),

    MSGRAPH_CLIENT_ID: optionalString,
    MSGRAPH_CLIENT_SECRET: optionalString,
    // How the app proves itself to Entra for Graph: 'secret' (MSGRAPH_CLIENT_SECRET), or 'certificate' (the PEM
    // Key Vault holds as msgraph-client-certificate; MSGRAPH_CLIENT_SECRET is then only a fallback).
    MSGRAPH_CREDENTIAL: blankAsUnset(z.enum(['secret', 'certificate']).default('secret')),
    MSGRAPH_TENANT_ID: optionalString,
    GRAPH_BASE_URL: blankAsUnset(url('GRAPH_BASE_URL').default('https://graph.microsoft.com')),
    MSGRAPH_AUTHORITY_HOST: blankAsUnset(url('MSGRAPH_AUTHORITY_HOST').default('https://login.microsoftonline.com')),
    // Outlook's documented maximum is 4230 minutes; newer pages quote 10080. We ask for this and fall back
    // to 4230 when Graph refuses it.
    MSGRAPH_SUBSCRIPTION_LIFETIME_MINUTES: blankAsUnset(z.coerce.number().int().min(45).max(10080).default(4230)),
    // Outlook's limit per app and mailbox, held across instances (10,000 per 10 minutes). Tests shrink both.
    MSGRAPH_MAILBOX_RATE_LIMIT: blankAsUnset(z.coerce.number().int().min(1).max(10_000).default(10_000)),
    MSGRAPH_MAILBOX_RATE_WINDOW_MS: blankAsUnset(z.coerce.number().int().min(100).max(600_000).default(600_000)),
    // Requests in flight per mailbox in one process (Outlook allows 4 per app and mailbox in all; see README).
    MSGRAPH_MAILBOX_CONCURRENCY: blankAsUnset(z.coerce.number().int().min(1).max(4).default(4)),

    TEAMS_WEBHOOK_URL: optionalUrl('TEAMS_WEBHOOK_URL'),
    // Loopback (127.0.0.1, localhost, [::1]) Teams webhook URLs, for a fake Teams in tests and local runs only.
    TEAMS_ALLOW_LOOPBACK_WEBHOOKS: blankAsUnset(z.enum(['true', 'false']).default('false')),
    // Replaces Teams' per-webhook windows, as "limit/ms" pairs ("4/2000,60/30000"); tests and local runs
    // shrink them. Unset: Teams' documented limits with our margins (sender.ts TEAMS_WEBHOOK_WINDOWS).
    // One pair at a time: a regex over the whole list would nest quantifiers (the regex scan refuses that).
    TEAMS_WEBHOOK_RATE_WINDOWS: blankAsUnset(
      z
        .string()
        .trim()
        .refine((v) => {
          const pairs = v.split(',');
          return pairs.length <= 10 && pairs.every((p) => /^[1-9]\d{0,5}\/[1-9]\d{0,8}$/.test(p));
        }, 'must be "limit/ms" pairs separated by commas')
        .optional(),
    ),

    LOG_LEVEL: blankAsUnset(z.enum(['debug', 'info', 'warn', 'error']).default('info')),
    // The host's own override of host.json's functionTimeout (an app setting the Functions host reads);
    // the app needs it too: a claim is stale only once no live invocation can still hold it.
    AzureFunctionsJobHost__functionTimeout: blankAsUnset(
      z
        .string()
        // Two patterns instead of an optional group: no nested quantifier (the regex scan's rule).
        .refine((v) => /^\d{1,2}:\d{2}:\d{2}$/.test(v) || /^\d{1,2}\.\d{1,2}:\d{2}:\d{2}$/.test(v), 'AzureFunctionsJobHost__functionTimeout must be a TimeSpan ([d.]hh:mm:ss)')
        .optional(),
    ),

    // Set by the Azure platform; we only read them to know where we run.
    WEBSITE_INSTANCE_ID: optionalString,
    WEBSITE_SITE_NAME: optionalString,
    CONTAINER_APP_NAME: optionalString,
    IDENTITY_ENDPOINT: optionalString,
  })
  .superRefine((env, ctx) => {
    const issue = (path: string, message: string) => ctx.addIssue({ code: 'custom', path: [path], message });

    // The platform passes an unresolvable Key Vault reference through as its literal text; catch it here
    // rather than let "@Microsoft.KeyVault(...)" be used as a client secret or a webhook URL.
    for (const [name, value] of Object.entries(env)) {
      if (typeof value === 'string' && value.startsWith('@Microsoft.KeyVault(')) {
        issue(name, "is an unresolved Key Vault reference: check that the secret exists and the app's identity may read it");
      }
    }

    const identityStorage =
      env.AzureWebJobsStorage__accountName ??
      (env.AzureWebJobsStorage__tableServiceUri && env.AzureWebJobsStorage__queueServiceUri && env.AzureWebJobsStorage__blobServiceUri);
    if (!env.AzureWebJobsStorage && !identityStorage) {
      issue(
        'AzureWebJobsStorage',
        'is required: a connection string, or AzureWebJobsStorage__accountName (or __tableServiceUri, __queueServiceUri and __blobServiceUri) for identity-based access',
      );
    }

    if (!env.KEY_VAULT_URI) {
      if (!env.LOCAL_SECRET_KEY) {
        issue('LOCAL_SECRET_KEY', 'is required when KEY_VAULT_URI is not set (the local secret store encrypts with it); npm start generates one');
      } else if (!isKey256(env.LOCAL_SECRET_KEY)) {
        issue('LOCAL_SECRET_KEY', 'must be 32 random bytes, base64- or hex-encoded');
      }
    }

    const hasJwks = Boolean(env.API_JWT_JWKS_URI);
    if (!env.API_JWT_SECRET && !hasJwks) {
      issue('API_JWT_SECRET', 'or API_JWT_JWKS_URI (with API_JWT_ISSUER and API_JWT_AUDIENCE) is required');
    }
    if (env.API_JWT_SECRET && Buffer.byteLength(env.API_JWT_SECRET, 'utf8') < 32) {
      issue('API_JWT_SECRET', 'must be at least 32 bytes long (HS256)');
    }
    // A shared secret is a local convenience; in Azure it must at least be tied to one issuer and one
    // audience, so a token minted for another service that shares the secret is not accepted here.
    if (!hasJwks && env.API_JWT_SECRET && runsInAzure(env)) {
      if (!env.API_JWT_ISSUER) issue('API_JWT_ISSUER', 'is required with API_JWT_SECRET when running in Azure');
      if (!env.API_JWT_AUDIENCE) issue('API_JWT_AUDIENCE', 'is required with API_JWT_SECRET when running in Azure');
    }
    if (hasJwks) {
      if (!env.API_JWT_ISSUER) issue('API_JWT_ISSUER', 'is required with API_JWT_JWKS_URI');
      if (!env.API_JWT_AUDIENCE) issue('API_JWT_AUDIENCE', 'is required with API_JWT_JWKS_URI');
    }

    requireAllOrNone(ctx, env, ['HUBSPOT_CLIENT_ID', 'HUBSPOT_CLIENT_SECRET', 'HUBSPOT_REDIRECT_URI'], 'HubSpot OAuth');
    if (env.MSGRAPH_CREDENTIAL === 'certificate') {
      // The certificate is read from the secret store at first use; only the app registration's id is a setting.
      if (!env.MSGRAPH_CLIENT_ID) issue('MSGRAPH_CLIENT_ID', 'is required when MSGRAPH_CREDENTIAL is certificate');
    } else {
      requireAllOrNone(ctx, env, ['MSGRAPH_CLIENT_ID', 'MSGRAPH_CLIENT_SECRET'], 'Microsoft Graph');
    }
  }, {
    // Run even when a field failed (say PUBLIC_BASE_URL is missing): the error must list every problem.
    // The checks above only read optional settings, which keep their (string or undefined) value when invalid.
    when: (payload) => typeof payload.value === 'object' && payload.value !== null,
  });

export type Env = z.infer<typeof envSchema>;

function requireAllOrNone<K extends keyof Env>(ctx: z.RefinementCtx, env: Env, keys: K[], what: string): void {
  const set = keys.filter((k) => env[k] !== undefined);
  if (set.length > 0 && set.length < keys.length) {
    for (const k of keys.filter((k) => env[k] === undefined)) {
      ctx.addIssue({ code: 'custom', path: [k], message: `is required when ${set.join(', ')} is set (${what} needs all of ${keys.join(', ')})` });
    }
  }
}

export function isKey256(value: string): boolean {
  return decodeKey256(value) !== undefined;
}

/** Accepts 64 hex characters or base64 of exactly 32 bytes. */
export function decodeKey256(value: string): Buffer | undefined {
  if (/^[0-9a-fA-F]{64}$/.test(value)) return Buffer.from(value, 'hex');
  if (/^[A-Za-z0-9+/]{43}=$/.test(value)) {
    const buf = Buffer.from(value, 'base64');
    return buf.length === 32 ? buf : undefined;
  }
  return undefined;
}
