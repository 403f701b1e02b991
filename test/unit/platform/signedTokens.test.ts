import { randomBytes } from 'node:crypto';
import type { SecretClientOptions } from '@azure/keyvault-secrets';
import { SignJWT } from 'jose';
import { KeyVaultSecretStore } from '../../../src/secrets/keyVaultSecretStore';
import { KEY_POINTER, LEGACY_KEY_SECRET, SignedTokens } from '../../../src/platform/signedTokens';
import { DeploymentState, partitionKey, ProcessedStore, StorageClients, TABLES, TenantTable, type DeploymentRow, type ProcessedRow } from '../../../src/storage';
import { startFakeKeyVault, staticTokenCredential, type FakeKeyVault } from '../../fakes/keyVault';
import { useAzurite } from '../../helpers/azurite';

type Policy = NonNullable<SecretClientOptions['additionalPolicies']>[number]['policy'];

/**
 * Separate instances of the app at cold start: each with its own Key Vault client and cache and its own
 * storage clients, against one fake Key Vault and one Azurite.
 */
describe('SignedTokens key across instances', () => {
  let az: Awaited<ReturnType<typeof useAzurite>>;
  let kv: FakeKeyVault;

  beforeAll(async () => {
    az = await useAzurite();
  });

  afterAll(async () => {
    await az?.stop();
  });

  beforeEach(async () => {
    kv = await startFakeKeyVault();
    await new TenantTable<DeploymentRow>(az.clients.table(TABLES.deploymentState)).delete(partitionKey.deployment(), KEY_POINTER);
  });

  afterEach(async () => {
    await kv?.close();
  });

  const store = (policy?: Policy) =>
    new KeyVaultSecretStore({ vaultUri: kv.url, credential: staticTokenCredential(), clientOptions: { ...kv.clientOptions, ...(policy ? { additionalPolicies: [{ policy, position: 'perCall' as const }] } : {}) } });

  const instance = (policy?: Policy) => {
    const clients = new StorageClients({ kind: 'connectionString', connectionString: az.connectionString });
    return new SignedTokens(store(policy), new ProcessedStore(new TenantTable<ProcessedRow>(clients.table(TABLES.processed))), new DeploymentState(new TenantTable<DeploymentRow>(clients.table(TABLES.deploymentState))));
  };

  it('two instances racing at cold start end with one key: a token signed by either verifies on the other', async () => {
    // The race made certain rather than likely: neither writes a key before both have looked and found none.
    let looked = 0;
    let bothLooked!: () => void;
    const lookedTwice = new Promise<void>((r) => (bothLooked = r));
    const race: Policy = {
      name: 'coldStartRace',
      async sendRequest(request, next) {
        if (request.method === 'PUT') await lookedTwice;
        const response = await next(request);
        if (request.method === 'GET' && new URL(request.url).pathname.replace(/\/$/, '') === `/secrets/${LEGACY_KEY_SECRET}` && response.status === 404 && ++looked === 2) bothLooked();
        return response;
      },
    };
    const a = instance(race);
    const b = instance(race);
    const [fromA, fromB] = await Promise.all([a.sign('oauth-state', 'tenant-1', { integration_id: 'i1' }, 600), b.sign('oauth-state', 'tenant-1', { integration_id: 'i2' }, 600)]);
    expect(looked).toBe(2);

    await expect(b.verify('oauth-state', fromA, { singleUse: false })).resolves.toMatchObject({ tenant_id: 'tenant-1', integration_id: 'i1' });
    await expect(a.verify('oauth-state', fromB, { singleUse: false })).resolves.toMatchObject({ tenant_id: 'tenant-1', integration_id: 'i2' });
    // A third instance, started later, uses the same key; the loser's unused key is gone from the vault.
    const c = instance();
    await expect(c.verify('oauth-state', fromA, { singleUse: false })).resolves.toMatchObject({ integration_id: 'i1' });
    await expect(c.verify('oauth-state', fromB, { singleUse: false })).resolves.toMatchObject({ integration_id: 'i2' });
    expect(kv.liveNames().filter((n) => n.startsWith(LEGACY_KEY_SECRET))).toHaveLength(1);
  });

  it('a key made before the name was settled (the fixed name) is adopted, so its tokens keep verifying', async () => {
    const old = randomBytes(32);
    await store().set(LEGACY_KEY_SECRET, old.toString('base64'));
    const signedBefore = await new SignJWT({ tenant_id: 'tenant-2', purpose: 'teams-snooze' })
      .setProtectedHeader({ alg: 'HS256' })
      .setIssuer('itil-next-connectors')
      .setAudience('teams-snooze')
      .setJti('jti-1')
      .setIssuedAt()
      .setExpirationTime('600s')
      .sign(old);
    const [a, b] = [instance(), instance()];
    await Promise.all([a.verify('teams-snooze', signedBefore, { singleUse: false }), b.verify('teams-snooze', signedBefore, { singleUse: false })]);
    expect(await new DeploymentState(new TenantTable<DeploymentRow>(az.clients.table(TABLES.deploymentState))).get(KEY_POINTER)).toBe(LEGACY_KEY_SECRET);
    expect(kv.liveNames()).toEqual([LEGACY_KEY_SECRET]);
  });
});
