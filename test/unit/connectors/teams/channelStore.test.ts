import { ChannelStore } from '../../../../src/connectors/teams';
import type { ChannelRow } from '../../../../src/connectors/teams/channelStore';
import { KeyVaultSecretStore } from '../../../../src/secrets/keyVaultSecretStore';
import { IntegrationsRepository, partitionKey, TABLES, TenantTable, tenantId } from '../../../../src/storage';
import { startFakeKeyVault, staticTokenCredential, type FakeKeyVault } from '../../../fakes/keyVault';
import { useAzurite } from '../../../helpers/azurite';

/**
 * Issue 12 finding 6: two instances, each with its own Key Vault store (5-minute cache), share the
 * channel table. A replaced or removed webhook URL must stop being used at once on both, and a failed
 * secret delete must not leave a credential that no row names.
 */
const TOKEN = 'kv-channels-token';
let az: Awaited<ReturnType<typeof useAzurite>>;
let kv: FakeKeyVault;

beforeAll(async () => {
  az = await useAzurite();
  kv = await startFakeKeyVault({ acceptedTokens: [TOKEN] });
});
afterAll(async () => {
  await kv.close();
  await az.stop();
});

const table = () => new TenantTable<ChannelRow>(az.clients.table(TABLES.teamsChannels));
const instance = () =>
  new ChannelStore(
    table(),
    // The production cache (5 minutes): what made a replaced URL linger on other instances.
    new KeyVaultSecretStore({ vaultUri: kv.url, credential: staticTokenCredential(TOKEN), clientOptions: kv.clientOptions, pollIntervalMs: 20 }),
    new IntegrationsRepository(new TenantTable(az.clients.table(TABLES.integrations))),
  );
const url = (n: number) => `https://prod-${n}.westeurope.logic.azure.com/workflows/w${n}/triggers/manual/paths/invoke?sig=SIG${n}`;
const target = (n: number) => ({ url: url(n), kind: 'workflows' as const, loopback: false });

describe('Teams channel webhook URLs across instances', () => {
  it('a replaced URL is used at once on another instance that cached the old one; the old secret is deleted', async () => {
    const T = tenantId('tenant-kv-replace');
    const one = instance();
    const two = instance();
    const first = await one.put(T, 'critical', target(1));
    const seen = await two.get(T, 'critical');
    expect(seen && (await two.webhookUrl(seen))).toBe(url(1)); // now cached on instance two

    await one.put(T, 'critical', target(2));
    const now = await two.get(T, 'critical');
    expect(now && (await two.webhookUrl(now))).toBe(url(2));
    expect(kv.liveNames()).not.toContain(first.secretName.toLowerCase());
    expect(kv.liveNames()).toContain(now?.secretName.toLowerCase());
  });

  it('a removed channel is not used by another instance, and a failed secret delete leaves the row marked and naming the secret until a retry deletes both', async () => {
    const T = tenantId('tenant-kv-delete');
    const one = instance();
    const two = instance();
    const ch = await one.put(T, 'critical', target(3));
    const cached = await two.get(T, 'critical');
    expect(cached && (await two.webhookUrl(cached))).toBe(url(3));

    kv.injectFailure({ status: 403, code: 'Forbidden', when: (r) => r.method === 'DELETE' });
    await expect(one.delete(T, 'critical')).rejects.toThrow(/delete/);

    // Not used anywhere from the moment it was marked.
    expect(await two.get(T, 'critical')).toBeUndefined();
    // The credential is still referenced: its row says it is being removed and names it.
    expect(kv.liveNames()).toContain(ch.secretName.toLowerCase());
    const row = await table().get(partitionKey.tenant(T), 'critical');
    expect(row?.data).toMatchObject({ deleting: true, secretName: ch.secretName });

    // Any later listing (here on the other instance) finishes the removal.
    expect(await two.list(T)).toEqual([]);
    expect(kv.liveNames()).not.toContain(ch.secretName.toLowerCase());
    expect(await table().get(partitionKey.tenant(T), 'critical')).toBeUndefined();
  });

  it('a failed delete of a replaced secret keeps it named on the row (retired) until a later listing deletes it', async () => {
    const T = tenantId('tenant-kv-retired');
    const one = instance();
    const first = await one.put(T, 'critical', target(4));
    kv.injectFailure({ status: 403, code: 'Forbidden', when: (r) => r.method === 'DELETE' });
    const second = await one.put(T, 'critical', target(5));
    expect(kv.liveNames()).toContain(first.secretName.toLowerCase());
    expect((await table().get(partitionKey.tenant(T), 'critical'))?.data).toMatchObject({ secretName: second.secretName, retiredSecrets: first.secretName });

    expect((await instance().list(T)).map((c) => c.secretName)).toEqual([second.secretName]);
    expect(kv.liveNames()).not.toContain(first.secretName.toLowerCase());
    expect((await table().get(partitionKey.tenant(T), 'critical'))?.data.retiredSecrets).toBe('');
  });
});
