import { clearConnectorRegistry, registerConnector } from '../../../src/connectors/registry';
import { cachedHealth, HEALTH_CACHE_MS } from '../../../src/platform/health';
import type { Services } from '../../../src/platform/services';
import { KeyVaultSecretStore } from '../../../src/secrets/keyVaultSecretStore';
import { startFakeKeyVault, staticTokenCredential, type FakeKeyVault } from '../../fakes/keyVault';

const TOKEN = 'kv-health-token';

/**
 * The anonymous health route must not turn a flood of requests into a flood of Key Vault reads,
 * storage calls and connector calls: one computation per cache period per instance, shared by the
 * requests that arrive while it runs.
 */
describe('cachedHealth', () => {
  let kv: FakeKeyVault;
  beforeAll(async () => {
    kv = await startFakeKeyVault({ acceptedTokens: [TOKEN] });
  });
  afterAll(async () => {
    await kv.close();
  });
  afterEach(() => clearConnectorRegistry());

  function world(): { services: Services; storagePings: () => number; connectorCalls: () => number; setStorageUp(up: boolean): void } {
    let pings = 0;
    let calls = 0;
    let storageUp = true;
    registerConnector({
      name: 'hubspot',
      required: true,
      create: () => ({ name: 'hubspot', authenticate: async () => undefined, healthCheck: async () => (calls++, true) }),
    });
    const services = {
      storage: {
        ping: async () => {
          pings++;
          if (!storageUp) throw new Error('storage down');
        },
      },
      secrets: new KeyVaultSecretStore({ vaultUri: kv.url, credential: staticTokenCredential(TOKEN), clientOptions: kv.clientOptions }),
    } as unknown as Services;
    return { services, storagePings: () => pings, connectorCalls: () => calls, setStorageUp: (up) => (storageUp = up) };
  }

  const vaultReads = (): number => kv.requests.filter((r) => r.method === 'GET' && r.authorized).length;

  it('50 concurrent and 20 repeated requests within one period cost one Key Vault read, one storage check and one connector call', async () => {
    const w = world();
    kv.clearRequests();
    let clock = 1_000_000;
    const now = (): number => clock;
    const reports = await Promise.all(Array.from({ length: 50 }, () => cachedHealth(w.services, { now })));
    for (let i = 0; i < 20; i++) {
      clock += (HEALTH_CACHE_MS - 1) / 20;
      reports.push(await cachedHealth(w.services, { now }));
    }
    expect(reports.every((r) => r.status === 'healthy')).toBe(true);
    expect(vaultReads()).toBe(1);
    expect(w.storagePings()).toBe(1);
    expect(w.connectorCalls()).toBe(1);

    // The next period computes again, once.
    clock += HEALTH_CACHE_MS;
    await Promise.all(Array.from({ length: 10 }, () => cachedHealth(w.services, { now })));
    expect(vaultReads()).toBe(2);
    expect(w.storagePings()).toBe(2);
  });

  it('storage going down shows in the first report after the period', async () => {
    const w = world();
    let clock = 5_000_000;
    const now = (): number => clock;
    expect((await cachedHealth(w.services, { now })).checks.storage).toBe('up');
    w.setStorageUp(false);
    clock += HEALTH_CACHE_MS - 1;
    expect((await cachedHealth(w.services, { now })).checks.storage).toBe('up');
    clock += 1;
    const report = await cachedHealth(w.services, { now });
    expect(report).toMatchObject({ status: 'unhealthy', checks: { storage: 'down' } });
  });

  it('a computation that failed is not served for the period: the next request computes again', async () => {
    let creates = 0;
    registerConnector({
      name: 'flaky',
      required: true,
      create: () => {
        if (++creates === 1) throw new Error('cannot build the connector');
        return { name: 'flaky', authenticate: async () => undefined, healthCheck: async () => true };
      },
    });
    const services = { storage: { ping: async () => undefined }, secrets: { healthCheck: async () => true } } as unknown as Services;
    const now = (): number => 42;
    await expect(cachedHealth(services, { now })).rejects.toThrow('cannot build the connector');
    await expect(cachedHealth(services, { now })).resolves.toMatchObject({ status: 'healthy' });
  });

  it('each Services object (instance) has its own cache', async () => {
    const a = world();
    const b = world();
    await cachedHealth(a.services);
    await cachedHealth(b.services);
    expect(a.storagePings()).toBe(1);
    expect(b.storagePings()).toBe(1);
  });
});
