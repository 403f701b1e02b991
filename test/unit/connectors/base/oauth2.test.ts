import { inspect } from 'node:util';
import {
  InvalidGrantError,
  OAuth2TokenManager,
  REFRESH_LEASE_NAME,
  TokenRefreshError,
  type OAuth2Provider,
  type OAuth2TokenManagerOptions,
  type RefreshedEvent,
  type RefreshFailedEvent,
  type TokenSet,
} from '../../../../src/connectors/base';
import { tenantSecretName } from '../../../../src/secrets/names';
import { assertSecretName, type SecretStore } from '../../../../src/secrets/types';
import { StorageClients } from '../../../../src/storage/clients';
import { integrationId, partitionKey, tenantId, type IntegrationId, type TenantId } from '../../../../src/storage/keys';
import { Leases, type LeaseRow } from '../../../../src/storage/lease';
import { TABLES } from '../../../../src/storage/names';
import { TenantTable } from '../../../../src/storage/tenantTable';
import { useAzurite } from '../../../helpers/azurite';

const MIN = 60_000;

/** Key Vault's behaviour that matters here: names validated, values as strings, every call async. */
class MemorySecretStore implements SecretStore {
  readonly kind = 'local' as const;
  readonly values = new Map<string, string>();
  readonly writes: string[] = [];
  readonly reads: string[] = [];

  async get(name: string): Promise<string | undefined> {
    this.reads.push(name);
    await new Promise((r) => setImmediate(r));
    return this.values.get(name.toLowerCase());
  }

  async set(name: string, value: string): Promise<void> {
    assertSecretName(name);
    await new Promise((r) => setImmediate(r));
    this.writes.push(name);
    this.values.set(name.toLowerCase(), value);
  }

  async delete(name: string): Promise<void> {
    this.values.delete(name.toLowerCase());
  }

  async healthCheck(): Promise<boolean> {
    return true;
  }
}

/**
 * One instance's view of the shared store whose first read returns what the store held at that
 * moment, but only after `gate` opens: an instance that read just before another one refreshed.
 */
class StaleFirstRead implements SecretStore {
  readonly kind = 'local' as const;
  #first = true;
  constructor(
    private readonly inner: SecretStore,
    private readonly gate: Promise<void>,
  ) {}

  async get(name: string): Promise<string | undefined> {
    const value = await this.inner.get(name);
    if (this.#first) {
      this.#first = false;
      await this.gate;
    }
    return value;
  }

  set(name: string, value: string): Promise<void> {
    return this.inner.set(name, value);
  }

  delete(name: string): Promise<void> {
    return this.inner.delete(name);
  }

  healthCheck(): Promise<boolean> {
    return this.inner.healthCheck();
  }
}

const REFRESH_TOKEN = 'rt-0-secret-refresh-token-value';

/** A token endpoint: counts calls, can be slowed, fail, or rotate refresh tokens. */
class FakeProvider implements OAuth2Provider {
  calls: string[] = [];
  delayMs = 0;
  lifetimeMs = 30 * MIN;
  rotate = false;
  failWith: unknown;
  constructor(private readonly clock: () => number) {}

  async refresh(refreshToken: string): Promise<TokenSet> {
    this.calls.push(refreshToken);
    const n = this.calls.length;
    if (this.delayMs > 0) await new Promise((r) => setTimeout(r, this.delayMs));
    if (this.failWith !== undefined) throw this.failWith;
    return {
      accessToken: `at-${n}`,
      expiresAt: this.clock() + this.lifetimeMs,
      ...(this.rotate ? { refreshToken: `rt-${n}` } : {}),
      scopes: ['tickets'],
      tokenType: 'bearer',
    };
  }
}

describe('OAuth2TokenManager (leases on Azurite)', () => {
  let azurite: Awaited<ReturnType<typeof useAzurite>>;
  let seq = 0;

  beforeAll(async () => {
    azurite = await useAzurite();
  });

  afterAll(async () => {
    await azurite?.stop();
  });

  /** A fresh integration per test, so leases and secrets never leak between tests. */
  function ids(): { tenant: TenantId; integration: IntegrationId } {
    seq++;
    return { tenant: tenantId(`tenant-${seq}`), integration: integrationId(`hubspot-${seq}`) };
  }

  /** Leases as one function instance has them: its own storage clients over the shared account. */
  function instanceLeases(): Leases {
    const clients = new StorageClients({ kind: 'connectionString', connectionString: azurite.connectionString });
    return new Leases(new TenantTable<LeaseRow>(clients.table(TABLES.leases)));
  }

  function setup(over: Partial<OAuth2TokenManagerOptions> = {}) {
    const clock = { offset: 0 };
    const now = () => Date.now() + clock.offset;
    const secrets = new MemorySecretStore();
    const provider = new FakeProvider(now);
    const { tenant, integration } = ids();
    const refreshName = tenantSecretName(tenant, integration, 'refresh-token');
    const accessName = tenantSecretName(tenant, integration, 'access-token');
    secrets.values.set(refreshName.toLowerCase(), REFRESH_TOKEN);
    const manager = (extra: Partial<OAuth2TokenManagerOptions> = {}) =>
      new OAuth2TokenManager({ provider, secrets, leases: instanceLeases(), now, sleep: (ms) => new Promise((r) => setTimeout(r, Math.min(ms, 20))), ...over, ...extra });
    return { clock, now, secrets, provider, tenant, integration, refreshName, accessName, manager };
  }

  it('20 concurrent callers in one process share a single refresh', async () => {
    const { provider, manager, tenant, integration, secrets, accessName } = setup();
    provider.delayMs = 50;
    const m = manager();
    const tokens = await Promise.all(Array.from({ length: 20 }, () => m.getAccessToken(tenant, integration)));
    expect(provider.calls).toEqual([REFRESH_TOKEN]);
    expect(new Set(tokens)).toEqual(new Set(['at-1']));
    // one flight did the work: one look at the stored token, one re-read under the lease
    expect(secrets.reads.filter((n) => n === accessName)).toHaveLength(2);
    // stored for other instances, as JSON with its expiry
    const stored = JSON.parse(secrets.values.get(accessName.toLowerCase()) as string) as { accessToken: string; expiresAt: number };
    expect(stored.accessToken).toBe('at-1');
    expect(stored.expiresAt).toBeGreaterThan(Date.now());
    // and served from memory afterwards
    await expect(m.getAccessToken(tenant, integration)).resolves.toBe('at-1');
    expect(provider.calls).toHaveLength(1);
  });

  it('two instances racing refresh exactly once and hand out the same token', async () => {
    for (let round = 0; round < 5; round++) {
      const { provider, manager, tenant, integration, secrets, refreshName } = setup();
      provider.delayMs = 100;
      provider.rotate = true;
      const a = manager();
      const b = manager();
      const tokens = await Promise.all([
        ...Array.from({ length: 10 }, () => a.getAccessToken(tenant, integration)),
        ...Array.from({ length: 10 }, () => b.getAccessToken(tenant, integration)),
      ]);
      expect(provider.calls).toEqual([REFRESH_TOKEN]);
      expect(new Set(tokens)).toEqual(new Set(['at-1']));
      // the rotated refresh token replaced the old one, once
      expect(secrets.values.get(refreshName.toLowerCase())).toBe('rt-1');
      expect(secrets.writes.filter((w) => w === refreshName)).toHaveLength(1);
    }
  });

  it('an instance that takes the lease right after another refreshed re-reads instead of refreshing again', async () => {
    const { provider, manager, tenant, integration, secrets } = setup();
    provider.rotate = true;
    let open!: () => void;
    const gate = new Promise<void>((resolve) => (open = resolve));
    const late = manager({ secrets: new StaleFirstRead(secrets, gate) });
    // `late` reads "no token yet", then stalls while the other instance refreshes and releases the lease
    const lateToken = late.getAccessToken(tenant, integration);
    await expect(manager().getAccessToken(tenant, integration)).resolves.toBe('at-1');
    open();
    await expect(lateToken).resolves.toBe('at-1');
    expect(provider.calls).toEqual([REFRESH_TOKEN]);
  });

  it('a cold instance takes a fresh stored token without refreshing', async () => {
    const { provider, manager, tenant, integration } = setup();
    await manager().getAccessToken(tenant, integration);
    await expect(manager().getAccessToken(tenant, integration)).resolves.toBe('at-1');
    expect(provider.calls).toHaveLength(1);
  });

  it('refreshes ahead of expiry: not before refreshAheadMs, and at once within it', async () => {
    const { clock, provider, manager, tenant, integration } = setup();
    const m = manager({ refreshAheadMs: 5 * MIN });
    await expect(m.getAccessToken(tenant, integration)).resolves.toBe('at-1');
    clock.offset = 25 * MIN - 1000; // 5 min + 1 s before the 30-minute expiry
    await expect(m.getAccessToken(tenant, integration)).resolves.toBe('at-1');
    expect(provider.calls).toHaveLength(1);
    clock.offset = 25 * MIN + 1000; // 4 min 59 s left
    await expect(m.getAccessToken(tenant, integration)).resolves.toBe('at-2');
    expect(provider.calls).toHaveLength(2);
    // another instance does not take the stored token that is inside the margin either
    clock.offset = 50 * MIN + 1000;
    await expect(manager().getAccessToken(tenant, integration)).resolves.toBe('at-3');
  });

  it('does not refresh on every call when tokens live shorter than twice the margin', async () => {
    const { clock, provider, manager, tenant, integration } = setup();
    provider.lifetimeMs = 4 * MIN;
    const m = manager({ refreshAheadMs: 5 * MIN });
    await m.getAccessToken(tenant, integration);
    clock.offset = 2 * MIN - 1000;
    await m.getAccessToken(tenant, integration);
    expect(provider.calls).toHaveLength(1);
    clock.offset = 2 * MIN + 1000;
    await m.getAccessToken(tenant, integration);
    expect(provider.calls).toHaveLength(2);
  });

  it('invalid_grant is InvalidGrantError, nothing is cached, and the next call tries again', async () => {
    const failed: RefreshFailedEvent[] = [];
    const { provider, manager, tenant, integration, secrets, accessName } = setup({ onRefreshFailed: (e) => void failed.push(e) });
    provider.failWith = Object.assign(new Error('Request failed with status code 400'), {
      status: 400,
      body: { error: 'invalid_grant', error_description: 'AADSTS70008: The refresh token has expired' },
      config: { data: `grant_type=refresh_token&refresh_token=${REFRESH_TOKEN}&client_secret=shh` },
    });
    const m = manager();
    const results = await Promise.allSettled(Array.from({ length: 5 }, () => m.getAccessToken(tenant, integration)));
    expect(provider.calls).toHaveLength(1);
    for (const r of results) {
      expect(r.status).toBe('rejected');
      const err = (r as PromiseRejectedResult).reason as InvalidGrantError;
      expect(err).toBeInstanceOf(InvalidGrantError);
      expect(err.reason).toBe('invalid_grant');
      expect(err.upstreamStatus).toBe(400);
      expect(err.upstreamCode).toBe('invalid_grant');
      expect(err.tenant).toBe(tenant);
      expect(err.cause).toBeUndefined();
      expect(inspect(err, { depth: 10 })).not.toContain(REFRESH_TOKEN);
      expect(JSON.stringify(err)).not.toContain(REFRESH_TOKEN);
    }
    expect(failed).toHaveLength(1);
    expect(failed[0]?.error).toBeInstanceOf(InvalidGrantError);
    expect(secrets.values.has(accessName.toLowerCase())).toBe(false);

    // not cached: once the customer reconnects, the same manager works (and the lease was released)
    provider.failWith = undefined;
    await expect(m.getAccessToken(tenant, integration)).resolves.toBe('at-2');
  });

  it("HubSpot's BAD_REFRESH_TOKEN is InvalidGrantError too, in its v1 and string-body shapes", async () => {
    const { provider, manager, tenant, integration } = setup();
    const m = manager();
    provider.failWith = Object.assign(new Error('HTTP-Code: 400'), {
      code: 400,
      body: { status: 'BAD_REFRESH_TOKEN', message: 'missing or unknown refresh token', correlationId: 'c' },
    });
    await expect(m.getAccessToken(tenant, integration)).rejects.toMatchObject({ name: 'InvalidGrantError', upstreamCode: 'BAD_REFRESH_TOKEN' });
    provider.failWith = Object.assign(new Error('bad'), { response: { status: 400, body: '{"status":"BAD_REFRESH_TOKEN","message":"x"}' } });
    await expect(m.getAccessToken(tenant, integration)).rejects.toBeInstanceOf(InvalidGrantError);
  });

  it('no stored refresh token is InvalidGrantError(missing_refresh_token) without calling the provider', async () => {
    const { provider, manager, tenant, integration, secrets, refreshName } = setup();
    secrets.values.delete(refreshName.toLowerCase());
    await expect(manager().getAccessToken(tenant, integration)).rejects.toMatchObject({ name: 'InvalidGrantError', reason: 'missing_refresh_token' });
    expect(provider.calls).toHaveLength(0);
  });

  it('other failures are TokenRefreshError with a retryable flag, and leak no secrets', async () => {
    const { provider, manager, tenant, integration } = setup();
    const m = manager();
    provider.failWith = Object.assign(new Error(`upstream said no to ${REFRESH_TOKEN}`), { status: 503, headers: {} });
    const outage = await m.getAccessToken(tenant, integration).catch((e: unknown) => e);
    expect(outage).toBeInstanceOf(TokenRefreshError);
    expect((outage as TokenRefreshError).retryable).toBe(true);
    expect(inspect(outage, { depth: 10 })).not.toContain(REFRESH_TOKEN);

    provider.failWith = Object.assign(new Error('unauthorized'), { status: 401, body: { error: 'invalid_client' } });
    const misconfigured = await m.getAccessToken(tenant, integration).catch((e: unknown) => e);
    expect(misconfigured).toBeInstanceOf(TokenRefreshError);
    expect(misconfigured).toMatchObject({ retryable: false, upstreamStatus: 401, upstreamCode: 'invalid_client' });
    expect((misconfigured as Error).message).toBe('token refresh failed with HTTP 401 (invalid_client)');

    provider.failWith = Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' });
    await expect(m.getAccessToken(tenant, integration)).rejects.toMatchObject({ retryable: true, upstreamCode: 'ECONNRESET' });
  });

  it('invalidate() after a 401 forces exactly one refresh, even though the stored token looks fresh', async () => {
    const { provider, manager, tenant, integration } = setup();
    const m = manager();
    const first = await m.getAccessToken(tenant, integration);
    m.invalidate(tenant, integration, first);
    // several requests failing with the same token invalidate together; the new token is kept
    const again = await Promise.all([m.getAccessToken(tenant, integration), m.getAccessToken(tenant, integration)]);
    m.invalidate(tenant, integration, first);
    await expect(m.getAccessToken(tenant, integration)).resolves.toBe('at-2');
    expect(again).toEqual(['at-2', 'at-2']);
    expect(provider.calls).toHaveLength(2);
    // without the token, whatever is cached goes
    m.invalidate(tenant, integration);
    await expect(m.getAccessToken(tenant, integration)).resolves.toBe('at-3');
  });

  it('after one instance invalidates and refreshes, another instance with the old token takes the new one', async () => {
    const { provider, manager, tenant, integration } = setup();
    const a = manager();
    const b = manager();
    await a.getAccessToken(tenant, integration);
    await expect(b.getAccessToken(tenant, integration)).resolves.toBe('at-1');
    a.invalidate(tenant, integration, 'at-1');
    await expect(a.getAccessToken(tenant, integration)).resolves.toBe('at-2');
    b.invalidate(tenant, integration, 'at-1');
    await expect(b.getAccessToken(tenant, integration)).resolves.toBe('at-2');
    expect(provider.calls).toHaveLength(2);
  });

  it('waits out a holder that crashed with the lease, then refreshes', async () => {
    const { provider, manager, tenant, integration } = setup();
    const ghost = await instanceLeases().tryAcquire(partitionKey.integration(tenant, integration), REFRESH_LEASE_NAME, 300, 'crashed-instance');
    expect(ghost).toBeDefined();
    const started = Date.now();
    await expect(manager().getAccessToken(tenant, integration)).resolves.toBe('at-1');
    expect(Date.now() - started).toBeGreaterThanOrEqual(250);
    expect(provider.calls).toHaveLength(1);
  });

  it('gives up waiting for another holder with a retryable TokenRefreshError', async () => {
    const { provider, manager, tenant, integration } = setup();
    await instanceLeases().tryAcquire(partitionKey.integration(tenant, integration), REFRESH_LEASE_NAME, 60_000, 'slow-instance');
    const err = await manager({ waitForRefreshMs: 200 })
      .getAccessToken(tenant, integration)
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TokenRefreshError);
    expect((err as TokenRefreshError).retryable).toBe(true);
    expect(provider.calls).toHaveLength(0);
  });

  it('calls onRefreshed without tokens, and a failing hook does not fail the caller', async () => {
    const events: RefreshedEvent[] = [];
    const { provider, manager, tenant, integration, refreshName, secrets } = setup({
      onRefreshed: (e) => {
        events.push(e);
        throw new Error('status table down');
      },
    });
    await expect(manager().getAccessToken(tenant, integration)).resolves.toBe('at-1');
    expect(events).toEqual([{ tenant, integration, obtainedAt: expect.any(Number), expiresAt: expect.any(Number), scopes: ['tickets'], refreshTokenRotated: false }]);
    expect(JSON.stringify(events)).not.toMatch(/at-1|rt-/);
    // no rotation, no refresh-token write
    expect(secrets.writes).not.toContain(refreshName);
    expect(provider.calls).toHaveLength(1);
  });

  it('saveTokenSet() stores a connect-flow grant where every instance finds it', async () => {
    const { provider, manager, tenant, integration, secrets, refreshName, now } = setup();
    const m = manager();
    m.invalidate(tenant, integration, 'at-old');
    await m.saveTokenSet(tenant, integration, { accessToken: 'at-connect', expiresAt: now() + 30 * MIN, refreshToken: 'rt-connect' });
    await expect(m.getAccessToken(tenant, integration)).resolves.toBe('at-connect');
    await expect(manager().getAccessToken(tenant, integration)).resolves.toBe('at-connect');
    expect(secrets.values.get(refreshName.toLowerCase())).toBe('rt-connect');
    expect(provider.calls).toHaveLength(0);
    await expect(m.saveTokenSet(tenant, integration, { accessToken: '', expiresAt: now() })).rejects.toBeInstanceOf(TypeError);
  });

  it('refuses a refresh timeout that could outlive the lease', () => {
    const { manager } = setup();
    expect(() => manager({ leaseTtlMs: 5_000, refreshTimeoutMs: 5_000 })).toThrow(RangeError);
  });

  it('rejects a token set without an access token or expiry', async () => {
    const { manager, tenant, integration } = setup({
      provider: { refresh: async () => ({ accessToken: '', expiresAt: Number.NaN }) },
    });
    await expect(manager().getAccessToken(tenant, integration)).rejects.toMatchObject({ name: 'TokenRefreshError', retryable: false });
  });
});
