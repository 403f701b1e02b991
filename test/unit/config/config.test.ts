import { readFileSync } from 'node:fs';
import path from 'node:path';
import { ConfigError, decodeKey256, getConfig, parseConfig, resetConfigForTests, type AppConfig } from '../../../src/config';

// 32 distinct bytes, so a wrong decoding (or a truncated key) cannot look right by accident.
const KEY = Buffer.from(Array.from({ length: 32 }, (_, k) => (k * 37 + 11) & 0xff));
const JWT_SECRET = 'jwt-signing-secret-that-is-long-enough-0123456789';
const DEV_STORAGE = 'UseDevelopmentStorage=true';

const localEnv = (extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv => ({
  AzureWebJobsStorage: DEV_STORAGE,
  LOCAL_SECRET_KEY: KEY.toString('base64'),
  PUBLIC_BASE_URL: 'http://localhost:7071/',
  API_JWT_SECRET: JWT_SECRET,
  ...extra,
});

/** Throws unless parseConfig fails, and returns the ConfigError. */
function configError(env: NodeJS.ProcessEnv): ConfigError {
  try {
    parseConfig(env);
  } catch (err) {
    if (err instanceof ConfigError) return err;
    throw err;
  }
  throw new Error('parseConfig accepted an invalid environment');
}

/** The settings a ConfigError names, one per problem. */
const settingsNamed = (err: ConfigError): string[] => err.problems.map((p) => p.slice(0, p.indexOf(':'))).sort();

describe('parseConfig: a valid local environment', () => {
  it('returns the full structure', () => {
    const config = parseConfig(localEnv());
    const expected: AppConfig = {
      storage: { kind: 'connectionString', connectionString: DEV_STORAGE },
      secrets: { kind: 'local', key: KEY, directory: '.local-secrets' },
      publicBaseUrl: 'http://localhost:7071',
      apiAuth: { kind: 'secret', secret: new TextEncoder().encode(JWT_SECRET), tenantClaim: 'tenant_id', maxAgeSeconds: 86_400 },
      hubspot: { apiBaseUrl: 'https://api.hubapi.com', acceptLegacySignatures: false, privateAppRateLimit: 100, rateWindowMs: 10_000, syncTimeBudgetMs: 480_000 },
      msgraph: { baseUrl: 'https://graph.microsoft.com', authorityHost: 'https://login.microsoftonline.com', subscriptionLifetimeMinutes: 4230, mailboxRateLimit: { limit: 10_000, intervalMs: 600_000 }, mailboxConcurrency: 4 },
      teams: { allowLoopbackWebhooks: false },
      logLevel: 'info',
      functionTimeoutMs: 600_000,
      runningInAzure: false,
    };
    expect(config).toEqual(expected);
    if (config.apiAuth.kind !== 'secret') throw new Error('expected secret auth');
    expect(Buffer.from(config.apiAuth.secret).toString('utf8')).toBe(JWT_SECRET);
  });

  it('decodes the 32-byte local secret key from base64 and from hex (either case)', () => {
    for (const encoded of [KEY.toString('base64'), KEY.toString('hex'), KEY.toString('hex').toUpperCase()]) {
      const { secrets } = parseConfig(localEnv({ LOCAL_SECRET_KEY: encoded }));
      expect(secrets.kind).toBe('local');
      if (secrets.kind !== 'local') continue;
      expect(secrets.key).toHaveLength(32);
      expect(secrets.key.equals(KEY)).toBe(true);
    }
    expect(decodeKey256(KEY.toString('base64'))?.equals(KEY)).toBe(true);
  });

  it.each([
    ['31 bytes of base64', Buffer.alloc(31, 1).toString('base64')],
    ['33 bytes of base64', Buffer.alloc(33, 1).toString('base64')],
    ['63 hex characters', KEY.toString('hex').slice(1)],
    ['65 hex characters', KEY.toString('hex') + 'a'],
    ['64 characters that are not hex', 'g'.repeat(64)],
    ['a passphrase', 'correct horse battery staple'],
  ])('rejects a local secret key that is %s', (_label, value) => {
    const err = configError(localEnv({ LOCAL_SECRET_KEY: value }));
    expect(err.problems).toHaveLength(1);
    expect(settingsNamed(err)).toEqual(['LOCAL_SECRET_KEY']);
    expect(err.message).not.toContain(value);
  });

  it('takes every optional setting into account', () => {
    const config = parseConfig(
      localEnv({
        LOCAL_SECRET_DIR: '/var/secrets',
        API_JWT_ISSUER: 'https://issuer.example',
        API_JWT_AUDIENCE: 'api://connectors',
        API_JWT_TENANT_CLAIM: 'tid',
        HUBSPOT_CLIENT_ID: 'hs-id',
        HUBSPOT_CLIENT_SECRET: 'hs-secret',
        HUBSPOT_REDIRECT_URI: 'https://app.example/oauth/hubspot/callback',
        HUBSPOT_API_BASE_URL: 'http://127.0.0.1:9999/',
        HUBSPOT_WEBHOOK_ACCEPT_LEGACY_SIGNATURES: 'true',
        HUBSPOT_PRIVATE_APP_RATE_LIMIT: '190',
        HUBSPOT_RATE_WINDOW_MS: '1000',
        MSGRAPH_CLIENT_ID: 'graph-id',
        MSGRAPH_CLIENT_SECRET: 'graph-secret',
        MSGRAPH_TENANT_ID: 'home-tenant',
        GRAPH_BASE_URL: 'http://127.0.0.1:9998//',
        MSGRAPH_AUTHORITY_HOST: 'https://127.0.0.1:9997/',
        MSGRAPH_SUBSCRIPTION_LIFETIME_MINUTES: '10080',
        TEAMS_WEBHOOK_URL: 'https://contoso.webhook.office.com/x',
        LOG_LEVEL: 'debug',
      }),
    );
    expect(config.secrets).toEqual({ kind: 'local', key: KEY, directory: '/var/secrets' });
    expect(config.apiAuth).toEqual({
      kind: 'secret',
      secret: new TextEncoder().encode(JWT_SECRET),
      issuer: 'https://issuer.example',
      audience: 'api://connectors',
      tenantClaim: 'tid',
      maxAgeSeconds: 86_400,
    });
    expect(config.hubspot).toEqual({
      apiBaseUrl: 'http://127.0.0.1:9999',
      oauth: { clientId: 'hs-id', clientSecret: 'hs-secret', redirectUri: 'https://app.example/oauth/hubspot/callback' },
      acceptLegacySignatures: true,
      privateAppRateLimit: 190,
      rateWindowMs: 1000,
      syncTimeBudgetMs: 480_000,
    });
    expect(config.msgraph).toEqual({
      baseUrl: 'http://127.0.0.1:9998',
      authorityHost: 'https://127.0.0.1:9997',
      subscriptionLifetimeMinutes: 10080,
      mailboxRateLimit: { limit: 10_000, intervalMs: 600_000 }, mailboxConcurrency: 4,
      app: { clientId: 'graph-id', clientSecret: 'graph-secret', credential: 'secret', homeTenantId: 'home-tenant' },
    });
    expect(config.teams).toEqual({ fallbackWebhookUrl: 'https://contoso.webhook.office.com/x', allowLoopbackWebhooks: false });
    expect(config.logLevel).toBe('debug');
  });

  it('parses local.settings.sample.json once the generated secrets are filled in', () => {
    const sample = JSON.parse(readFileSync(path.resolve(__dirname, '../../../local.settings.sample.json'), 'utf8')) as { Values: Record<string, string> };
    const config = parseConfig({ ...sample.Values, LOCAL_SECRET_KEY: KEY.toString('hex'), API_JWT_SECRET: JWT_SECRET });
    expect(config.storage).toEqual({ kind: 'connectionString', connectionString: DEV_STORAGE });
    expect(config.secrets.kind).toBe('local');
    expect(config.apiAuth.kind).toBe('secret');
    expect(config.hubspot.oauth).toBeUndefined();
    expect(config.msgraph.app).toBeUndefined();
  });
});

describe('parseConfig: storage', () => {
  it('derives table, queue and blob URIs from AzureWebJobsStorage__accountName alone', () => {
    const { storage } = parseConfig(localEnv({ AzureWebJobsStorage: undefined, AzureWebJobsStorage__accountName: 'itilnextst' }));
    expect(storage).toEqual({
      kind: 'identity',
      tableServiceUri: 'https://itilnextst.table.core.windows.net',
      queueServiceUri: 'https://itilnextst.queue.core.windows.net',
      blobServiceUri: 'https://itilnextst.blob.core.windows.net',
    });
  });

  it('passes the user-assigned identity client id and prefers explicit service URIs', () => {
    const { storage } = parseConfig(
      localEnv({
        AzureWebJobsStorage: '',
        AzureWebJobsStorage__accountName: 'itilnextst',
        AzureWebJobsStorage__queueServiceUri: 'https://queues.example',
        AzureWebJobsStorage__clientId: '00000000-0000-0000-0000-000000000001',
        AzureWebJobsStorage__credential: 'managedidentity',
      }),
    );
    expect(storage).toEqual({
      kind: 'identity',
      tableServiceUri: 'https://itilnextst.table.core.windows.net',
      queueServiceUri: 'https://queues.example',
      blobServiceUri: 'https://itilnextst.blob.core.windows.net',
      managedIdentityClientId: '00000000-0000-0000-0000-000000000001',
    });
  });

  it('accepts all three service URIs without an account name, but not fewer', () => {
    const { storage } = parseConfig(
      localEnv({
        AzureWebJobsStorage: undefined,
        AzureWebJobsStorage__tableServiceUri: 'https://t.example',
        AzureWebJobsStorage__queueServiceUri: 'https://q.example',
        AzureWebJobsStorage__blobServiceUri: 'https://b.example',
      }),
    );
    expect(storage).toEqual({ kind: 'identity', tableServiceUri: 'https://t.example', queueServiceUri: 'https://q.example', blobServiceUri: 'https://b.example' });

    const err = configError(localEnv({ AzureWebJobsStorage: undefined, AzureWebJobsStorage__tableServiceUri: 'https://t.example' }));
    expect(settingsNamed(err)).toEqual(['AzureWebJobsStorage']);
    // Without the blob endpoint, oversized engine events would have nowhere to go.
    const noBlob = configError(localEnv({ AzureWebJobsStorage: undefined, AzureWebJobsStorage__tableServiceUri: 'https://t.example', AzureWebJobsStorage__queueServiceUri: 'https://q.example' }));
    expect(settingsNamed(noBlob)).toEqual(['AzureWebJobsStorage']);
  });

  it('prefers a connection string over identity settings', () => {
    const { storage } = parseConfig(localEnv({ AzureWebJobsStorage__accountName: 'ignored' }));
    expect(storage).toEqual({ kind: 'connectionString', connectionString: DEV_STORAGE });
  });

  it('requires some storage setting', () => {
    expect(settingsNamed(configError(localEnv({ AzureWebJobsStorage: undefined })))).toEqual(['AzureWebJobsStorage']);
  });
});

describe('parseConfig: API auth', () => {
  it('JWKS mode requires issuer and audience', () => {
    const jwks = 'https://login.example/keys';
    expect(settingsNamed(configError(localEnv({ API_JWT_SECRET: undefined, API_JWT_JWKS_URI: jwks })))).toEqual(['API_JWT_AUDIENCE', 'API_JWT_ISSUER']);
    expect(settingsNamed(configError(localEnv({ API_JWT_SECRET: undefined, API_JWT_JWKS_URI: jwks, API_JWT_ISSUER: 'iss' })))).toEqual(['API_JWT_AUDIENCE']);
    expect(settingsNamed(configError(localEnv({ API_JWT_SECRET: undefined, API_JWT_JWKS_URI: jwks, API_JWT_AUDIENCE: 'aud' })))).toEqual(['API_JWT_ISSUER']);

    const { apiAuth } = parseConfig(localEnv({ API_JWT_SECRET: undefined, API_JWT_JWKS_URI: jwks, API_JWT_ISSUER: 'iss', API_JWT_AUDIENCE: 'aud' }));
    expect(apiAuth).toEqual({ kind: 'jwks', jwksUri: jwks, issuer: 'iss', audience: 'aud', tenantClaim: 'tenant_id', maxAgeSeconds: 86_400 });
  });

  it('uses JWKS when both a secret and a JWKS URI are set', () => {
    const { apiAuth } = parseConfig(localEnv({ API_JWT_JWKS_URI: 'https://login.example/keys', API_JWT_ISSUER: 'iss', API_JWT_AUDIENCE: 'aud' }));
    expect(apiAuth.kind).toBe('jwks');
  });

  it('requires a secret or a JWKS URI, and a secret of at least 32 bytes', () => {
    expect(settingsNamed(configError(localEnv({ API_JWT_SECRET: undefined })))).toEqual(['API_JWT_SECRET']);
    const short = 'x'.repeat(31);
    const err = configError(localEnv({ API_JWT_SECRET: short }));
    expect(settingsNamed(err)).toEqual(['API_JWT_SECRET']);
    expect(err.message).not.toContain(short);
    expect(parseConfig(localEnv({ API_JWT_SECRET: 'x'.repeat(32) })).apiAuth.kind).toBe('secret');
  });

  it('HS256 mode in Azure requires an issuer and an audience; locally they stay optional', () => {
    for (const platform of [{ WEBSITE_INSTANCE_ID: 'abc123' }, { WEBSITE_SITE_NAME: 'itil-next-connectors' }, { CONTAINER_APP_NAME: 'connectors' }]) {
      expect(settingsNamed(configError(localEnv(platform)))).toEqual(['API_JWT_AUDIENCE', 'API_JWT_ISSUER']);
      expect(settingsNamed(configError(localEnv({ ...platform, API_JWT_ISSUER: 'https://issuer.example' })))).toEqual(['API_JWT_AUDIENCE']);
      const config = parseConfig(localEnv({ ...platform, API_JWT_ISSUER: 'https://issuer.example', API_JWT_AUDIENCE: 'api://connectors' }));
      expect(config.runningInAzure).toBe(true);
      expect(config.apiAuth).toMatchObject({ kind: 'secret', issuer: 'https://issuer.example', audience: 'api://connectors' });
    }
    expect(parseConfig(localEnv()).apiAuth).not.toHaveProperty('issuer');
  });

  it('reads the maximum token age (default 24 h, bounded) and an optional pinned typ', () => {
    expect(parseConfig(localEnv()).apiAuth).toMatchObject({ maxAgeSeconds: 86_400 });
    expect(parseConfig(localEnv({ API_JWT_MAX_AGE_SECONDS: '' })).apiAuth.maxAgeSeconds).toBe(86_400);
    expect(parseConfig(localEnv({ API_JWT_MAX_AGE_SECONDS: '3600', API_JWT_TYP: 'at+jwt' })).apiAuth).toMatchObject({ maxAgeSeconds: 3600, typ: 'at+jwt' });
    for (const bad of ['0', '59', 'forever', String(31 * 24 * 3600)]) {
      expect(settingsNamed(configError(localEnv({ API_JWT_MAX_AGE_SECONDS: bad })))).toEqual(['API_JWT_MAX_AGE_SECONDS']);
    }
  });

  it('rejects a JWKS URI that is not http(s)', () => {
    const err = configError(localEnv({ API_JWT_JWKS_URI: 'file:///etc/keys', API_JWT_ISSUER: 'iss', API_JWT_AUDIENCE: 'aud' }));
    expect(settingsNamed(err)).toEqual(['API_JWT_JWKS_URI']);
  });
});

describe('parseConfig: reporting', () => {
  it('reports every problem in ONE ConfigError, naming settings but echoing no value', () => {
    const values = {
      LOCAL_SECRET_KEY: 'super-secret-but-wrong',
      API_JWT_SECRET: 'short-jwt-secret-value',
      HUBSPOT_CLIENT_ID: 'hubspot-client-id-value',
      TEAMS_WEBHOOK_URL: 'ftp://hooks.example/secret-path-value',
      LOG_LEVEL: 'verbose-level-value',
    };
    // no storage, no PUBLIC_BASE_URL
    const err = configError({ ...values });
    expect(err).toBeInstanceOf(ConfigError);
    expect(err.name).toBe('ConfigError');
    expect(settingsNamed(err)).toEqual(
      [
        'PUBLIC_BASE_URL',
        'AzureWebJobsStorage',
        'LOCAL_SECRET_KEY',
        'API_JWT_SECRET',
        'HUBSPOT_CLIENT_SECRET',
        'HUBSPOT_REDIRECT_URI',
        'TEAMS_WEBHOOK_URL',
        'LOG_LEVEL',
      ].sort(),
    );
    expect(err.message).toContain(`(${err.problems.length} problems)`);
    for (const p of err.problems) expect(err.message).toContain(p);
    for (const v of Object.values(values)) {
      expect(err.message).not.toContain(v);
      for (const p of err.problems) expect(p).not.toContain(v);
    }
  });

  it('reports the cross-setting problems even when PUBLIC_BASE_URL is the only other thing missing', () => {
    const err = configError({ LOCAL_SECRET_KEY: 'super-secret-but-wrong' });
    expect(settingsNamed(err)).toEqual(['API_JWT_SECRET', 'AzureWebJobsStorage', 'LOCAL_SECRET_KEY', 'PUBLIC_BASE_URL']);
    expect(err.message).not.toContain('super-secret-but-wrong');
  });

  it('an empty environment is one ConfigError listing the required settings', () => {
    const err = configError({});
    expect(settingsNamed(err)).toEqual(['API_JWT_SECRET', 'AzureWebJobsStorage', 'LOCAL_SECRET_KEY', 'PUBLIC_BASE_URL']);
    expect(err.message).toMatch(/^Invalid configuration \(4 problems\):/);
  });

  it('says "1 problem" for one', () => {
    expect(configError(localEnv({ PUBLIC_BASE_URL: 'not a url' })).message).toMatch(/^Invalid configuration \(1 problem\):\n {2}- PUBLIC_BASE_URL: /);
  });

  it('names the missing members of a partial HubSpot or Graph app registration', () => {
    expect(settingsNamed(configError(localEnv({ HUBSPOT_CLIENT_ID: 'id' })))).toEqual(['HUBSPOT_CLIENT_SECRET', 'HUBSPOT_REDIRECT_URI']);
    expect(settingsNamed(configError(localEnv({ HUBSPOT_CLIENT_SECRET: 's', HUBSPOT_REDIRECT_URI: 'https://app.example/cb' })))).toEqual(['HUBSPOT_CLIENT_ID']);
    const hubspot = configError(localEnv({ HUBSPOT_CLIENT_ID: 'id', HUBSPOT_CLIENT_SECRET: 'hs-secret-value' }));
    expect(settingsNamed(hubspot)).toEqual(['HUBSPOT_REDIRECT_URI']);
    expect(hubspot.message).toContain('HUBSPOT_CLIENT_ID');
    expect(hubspot.message).not.toContain('hs-secret-value');

    expect(settingsNamed(configError(localEnv({ MSGRAPH_CLIENT_ID: 'id' })))).toEqual(['MSGRAPH_CLIENT_SECRET']);
    expect(settingsNamed(configError(localEnv({ MSGRAPH_CLIENT_SECRET: 's' })))).toEqual(['MSGRAPH_CLIENT_ID']);
    // the Graph home tenant alone is not an app registration
    expect(parseConfig(localEnv({ MSGRAPH_TENANT_ID: 'home' })).msgraph).toEqual({ baseUrl: 'https://graph.microsoft.com', authorityHost: 'https://login.microsoftonline.com', subscriptionLifetimeMinutes: 4230, mailboxRateLimit: { limit: 10_000, intervalMs: 600_000 }, mailboxConcurrency: 4 });
    // a subscription lifetime Graph could never accept is a start error, not a runtime surprise
    expect(settingsNamed(configError(localEnv({ MSGRAPH_SUBSCRIPTION_LIFETIME_MINUTES: '20000' })))).toEqual(['MSGRAPH_SUBSCRIPTION_LIFETIME_MINUTES']);
  });

  it('reads the rate windows tests shrink, and refuses malformed ones', () => {
    const config = parseConfig(localEnv({ TEAMS_WEBHOOK_RATE_WINDOWS: '4/2000,60/30000', MSGRAPH_MAILBOX_RATE_LIMIT: '5', MSGRAPH_MAILBOX_RATE_WINDOW_MS: '2000', MSGRAPH_MAILBOX_CONCURRENCY: '2' }));
    expect(config.teams.webhookWindows).toEqual([{ limit: 4, intervalMs: 2000 }, { limit: 60, intervalMs: 30_000 }]);
    expect(config.msgraph.mailboxRateLimit).toEqual({ limit: 5, intervalMs: 2000 });
    expect(config.msgraph.mailboxConcurrency).toBe(2);
    expect(settingsNamed(configError(localEnv({ TEAMS_WEBHOOK_RATE_WINDOWS: '4 per 2s' })))).toEqual(['TEAMS_WEBHOOK_RATE_WINDOWS']);
    for (const bad of ['0/2000', '4/2000,', '4/2000,,3/1000', '1234567/10', Array.from({ length: 11 }, () => '4/2000').join(',')]) {
      expect(settingsNamed(configError(localEnv({ TEAMS_WEBHOOK_RATE_WINDOWS: bad })))).toEqual(['TEAMS_WEBHOOK_RATE_WINDOWS']);
    }
    expect(parseConfig(localEnv({ TEAMS_WEBHOOK_RATE_WINDOWS: Array.from({ length: 10 }, () => '4/2000').join(',') }))).toBeDefined();
    expect(settingsNamed(configError(localEnv({ MSGRAPH_MAILBOX_CONCURRENCY: '5' })))).toEqual(['MSGRAPH_MAILBOX_CONCURRENCY']);
  });
});

describe('parseConfig: unset, empty and defaults', () => {
  it('treats empty and blank optional settings as unset', () => {
    const blank = {
      KEY_VAULT_URI: '',
      AzureWebJobsStorage__accountName: '',
      AzureWebJobsStorage__tableServiceUri: ' ',
      AzureWebJobsStorage__queueServiceUri: '',
      AzureWebJobsStorage__clientId: '',
      API_JWT_JWKS_URI: '',
      API_JWT_ISSUER: '',
      API_JWT_AUDIENCE: '  ',
      HUBSPOT_CLIENT_ID: '',
      HUBSPOT_CLIENT_SECRET: '',
      HUBSPOT_REDIRECT_URI: '',
      MSGRAPH_CLIENT_ID: '',
      MSGRAPH_CLIENT_SECRET: '',
      MSGRAPH_TENANT_ID: '',
      TEAMS_WEBHOOK_URL: '',
      WEBSITE_INSTANCE_ID: '',
      WEBSITE_SITE_NAME: '',
      CONTAINER_APP_NAME: '',
    };
    expect(parseConfig(localEnv(blank))).toEqual(parseConfig(localEnv()));
  });

  it('treats empty settings that have defaults as unset, so the default applies', () => {
    const config = parseConfig(
      localEnv({ LOCAL_SECRET_DIR: '', API_JWT_TENANT_CLAIM: '', HUBSPOT_API_BASE_URL: '', GRAPH_BASE_URL: ' ', LOG_LEVEL: '' }),
    );
    expect(config).toEqual(parseConfig(localEnv()));
  });

  it('treats empty required settings as missing', () => {
    const err = configError({ AzureWebJobsStorage: '', LOCAL_SECRET_KEY: '', PUBLIC_BASE_URL: '', API_JWT_SECRET: ' ' });
    expect(settingsNamed(err)).toEqual(['API_JWT_SECRET', 'AzureWebJobsStorage', 'LOCAL_SECRET_KEY', 'PUBLIC_BASE_URL']);
    // an empty key is "required", not "malformed"
    expect(err.problems.find((p) => p.startsWith('LOCAL_SECRET_KEY'))).toMatch(/is required/);
  });

  it('does not require LOCAL_SECRET_KEY when KEY_VAULT_URI is set', () => {
    const config = parseConfig(localEnv({ LOCAL_SECRET_KEY: undefined, KEY_VAULT_URI: 'https://itil-next-kv.vault.azure.net/' }));
    expect(config.secrets).toEqual({ kind: 'keyVault', vaultUri: 'https://itil-next-kv.vault.azure.net/' });
  });

  it('rejects a KEY_VAULT_URI that is not a URL', () => {
    const err = configError(localEnv({ KEY_VAULT_URI: 'itil-next-kv' }));
    expect(settingsNamed(err)).toEqual(['KEY_VAULT_URI']);
    expect(err.message).not.toContain('itil-next-kv');
  });

  it('applies the defaults', () => {
    const config = parseConfig(localEnv());
    expect(config.hubspot.apiBaseUrl).toBe('https://api.hubapi.com');
    expect(config.msgraph.baseUrl).toBe('https://graph.microsoft.com');
    expect(config.apiAuth.tenantClaim).toBe('tenant_id');
    expect(config.logLevel).toBe('info');
    expect(config.secrets.kind === 'local' && config.secrets.directory).toBe('.local-secrets');
  });

  it.each(['WEBSITE_INSTANCE_ID', 'WEBSITE_SITE_NAME', 'CONTAINER_APP_NAME'])('knows it runs in Azure when %s is set', (name) => {
    expect(parseConfig(localEnv({ [name]: 'some-value', API_JWT_ISSUER: 'iss', API_JWT_AUDIENCE: 'aud' })).runningInAzure).toBe(true);
  });

  it('accepts loopback Teams webhooks only when TEAMS_ALLOW_LOOPBACK_WEBHOOKS is true, and never in Azure', () => {
    expect(parseConfig(localEnv()).teams.allowLoopbackWebhooks).toBe(false);
    expect(parseConfig(localEnv({ TEAMS_ALLOW_LOOPBACK_WEBHOOKS: '' })).teams.allowLoopbackWebhooks).toBe(false);
    expect(parseConfig(localEnv({ TEAMS_ALLOW_LOOPBACK_WEBHOOKS: 'true' })).teams.allowLoopbackWebhooks).toBe(true);
    expect(settingsNamed(configError(localEnv({ TEAMS_ALLOW_LOOPBACK_WEBHOOKS: 'yes' })))).toEqual(['TEAMS_ALLOW_LOOPBACK_WEBHOOKS']);
    // In Azure (issuer and audience given, as HS256 needs there), the setting alone is refused.
    expect(settingsNamed(configError(localEnv({ TEAMS_ALLOW_LOOPBACK_WEBHOOKS: 'true', WEBSITE_SITE_NAME: 'app', API_JWT_ISSUER: 'https://issuer.example', API_JWT_AUDIENCE: 'connectors' })))).toEqual(['TEAMS_ALLOW_LOOPBACK_WEBHOOKS']);
  });

  it('does not think it runs in Azure without those settings', () => {
    expect(parseConfig(localEnv({ IDENTITY_ENDPOINT: 'http://localhost:4141/msi' })).runningInAzure).toBe(false);
  });
});

describe('getConfig', () => {
  const saved = { ...process.env };
  afterEach(() => {
    for (const k of Object.keys(process.env)) if (!(k in saved)) delete process.env[k];
    Object.assign(process.env, saved);
    resetConfigForTests();
  });

  it('parses process.env once and caches it until reset', () => {
    Object.assign(process.env, localEnv({ LOG_LEVEL: 'warn' }));
    resetConfigForTests();
    const first = getConfig();
    expect(first.logLevel).toBe('warn');
    process.env.LOG_LEVEL = 'error';
    expect(getConfig()).toBe(first);
    resetConfigForTests();
    expect(getConfig().logLevel).toBe('error');
  });

  it('throws ConfigError for a bad environment', () => {
    Object.assign(process.env, localEnv());
    delete process.env.PUBLIC_BASE_URL;
    resetConfigForTests();
    expect(() => getConfig()).toThrow(ConfigError);
  });
});

describe('unresolved Key Vault references', () => {
  it('a setting still holding "@Microsoft.KeyVault(...)" fails the start, naming the setting', () => {
    const { parseConfig: parse, ConfigError: CE } = jest.requireActual('../../../src/config') as typeof import('../../../src/config');
    const env = {
      AzureWebJobsStorage__accountName: 'acct',
      KEY_VAULT_URI: 'https://kv.vault.azure.net',
      PUBLIC_BASE_URL: 'https://app.example.net',
      API_JWT_JWKS_URI: 'https://login.example/keys',
      API_JWT_ISSUER: 'iss',
      API_JWT_AUDIENCE: 'aud',
      HUBSPOT_CLIENT_ID: 'id',
      HUBSPOT_CLIENT_SECRET: '@Microsoft.KeyVault(VaultName=kv;SecretName=hubspot-client-secret)',
      HUBSPOT_REDIRECT_URI: 'https://app.example.net/api/hubspot/oauth/callback',
    };
    let caught: unknown;
    try {
      parse(env);
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(CE);
    expect((caught as InstanceType<typeof CE>).problems).toEqual([expect.stringMatching(/^HUBSPOT_CLIENT_SECRET: is an unresolved Key Vault reference/)]);
  });
});
