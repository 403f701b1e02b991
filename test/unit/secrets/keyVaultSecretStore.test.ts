import { inspect } from 'node:util';
import { SecretClient } from '@azure/keyvault-secrets';
import { createSecretStore, InvalidSecretNameError } from '../../../src/secrets';
import { KeyVaultSecretStore, SecretStoreError } from '../../../src/secrets/keyVaultSecretStore';
import { isLoopbackUrl } from '../../../src/secrets/keyVaultSecretStore';
import { startFakeKeyVault, staticTokenCredential, type FakeKeyVault } from '../../fakes/keyVault';

const TOKEN = 'kv-test-token';
const SECRET_VALUE = 'graph-refresh-token-7a6b5c4d-must-not-appear-in-errors';

describe('KeyVaultSecretStore against the fake Key Vault (real SecretClient over HTTPS)', () => {
  let kv: FakeKeyVault;

  beforeAll(async () => {
    kv = await startFakeKeyVault({ acceptedTokens: [TOKEN] });
  });

  afterAll(async () => {
    await kv.close();
  });

  beforeEach(() => {
    kv.setAcceptedToken(TOKEN);
    kv.clearRequests();
  });

  const store = (opts: { token?: string; cacheTtlMs?: number } = {}): KeyVaultSecretStore =>
    new KeyVaultSecretStore({
      vaultUri: kv.url,
      credential: staticTokenCredential(opts.token ?? TOKEN),
      clientOptions: kv.clientOptions,
      pollIntervalMs: 20,
      ...(opts.cacheTtlMs !== undefined ? { cacheTtlMs: opts.cacheTtlMs } : {}),
    });

  it('answers the 401 challenge, then sends the bearer token the vault accepts', async () => {
    await store().set('challenge-test', 'v');
    const [first, second] = kv.requests;
    expect(first).toMatchObject({ method: 'PUT', path: '/secrets/challenge-test', hadAuth: false, status: 401 });
    expect(second).toMatchObject({ method: 'PUT', path: '/secrets/challenge-test', hadAuth: true, authorized: true, status: 200 });
    expect(second?.query['api-version']).toBeTruthy();
    expect(kv.peek('challenge-test')).toBe('v');
  });

  it('sets, gets and deletes (soft delete), and a missing secret reads as undefined', async () => {
    const s = store();
    await s.set('round-trip', SECRET_VALUE, { contentType: 'text/plain', tags: { purpose: 'test' } });
    expect(await store().get('round-trip')).toBe(SECRET_VALUE);
    await s.delete('round-trip');
    expect(kv.deletedNames()).toContain('round-trip');
    expect(await s.get('round-trip')).toBeUndefined();
    expect(await store().get('round-trip')).toBeUndefined();
    expect(await s.get('never-existed')).toBeUndefined();
  });

  it('deletes a missing or already-deleted secret without error', async () => {
    const s = store();
    await expect(s.delete('not-there')).resolves.toBeUndefined();
    await s.set('delete-twice', 'v');
    await s.delete('delete-twice');
    await expect(s.delete('delete-twice')).resolves.toBeUndefined();
    // Nothing purges: the name is left recoverable, as production's purge protection requires.
    expect(kv.requests.some((r) => r.method === 'DELETE' && r.path.startsWith('/deletedsecrets/'))).toBe(false);
  });

  it('serves a second get from the cache, and set refreshes the cached value', async () => {
    const s = store();
    await s.set('cached', 'one');
    kv.clearRequests();
    expect(await s.get('cached')).toBe('one');
    expect(kv.requests).toHaveLength(0);

    const other = store();
    expect(await other.get('cached')).toBe('one');
    const afterFirst = kv.requests.length;
    expect(await other.get('cached')).toBe('one');
    expect(kv.requests).toHaveLength(afterFirst);

    await s.set('cached', 'two');
    kv.clearRequests();
    expect(await s.get('cached')).toBe('two');
    expect(kv.requests).toHaveLength(0);
  });

  it('re-reads after the cache TTL and after a delete', async () => {
    const s = store({ cacheTtlMs: 30 });
    await s.set('ttl', 'v');
    await new Promise((r) => setTimeout(r, 60));
    kv.clearRequests();
    expect(await s.get('ttl')).toBe('v');
    expect(kv.requests.filter((r) => r.method === 'GET' && r.path.startsWith('/secrets/ttl'))).toHaveLength(1);
    await s.delete('ttl');
    expect(await s.get('ttl')).toBeUndefined();
  });

  it('recovers a soft-deleted name on set instead of failing', async () => {
    const s = store();
    await s.set('soft-deleted', 'old');
    await s.delete('soft-deleted');
    kv.clearRequests();

    await s.set('soft-deleted', 'new');

    const calls = kv.requests.filter((r) => r.authorized).map((r) => `${r.method} ${r.path} ${r.status}`);
    expect(calls).toContain('PUT /secrets/soft-deleted 409');
    expect(calls).toContain('POST /deletedsecrets/soft-deleted/recover 200');
    expect(calls[calls.length - 1]).toBe('PUT /secrets/soft-deleted 200');
    expect(kv.deletedNames()).not.toContain('soft-deleted');
    expect(await store().get('soft-deleted')).toBe('new');
  });

  it('recovers a name another client soft-deleted (case-insensitively)', async () => {
    const client = new SecretClient(kv.url, staticTokenCredential(TOKEN), { ...kv.clientOptions, disableChallengeResourceVerification: true });
    await client.setSecret('Other-Client', 'x');
    await (await client.beginDeleteSecret('Other-Client', { intervalInMs: 20 })).pollUntilDone();
    await store().set('other-client', 'y');
    expect(await store().get('OTHER-CLIENT')).toBe('y');
  });

  it('retries a 429 with Retry-After and succeeds', async () => {
    const s = store();
    await s.set('throttled', 'v');
    kv.injectFailure({ status: 429, retryAfterSeconds: 1, when: (r) => r.method === 'GET' });
    kv.clearRequests();
    expect(await store().get('throttled')).toBe('v');
    const gets = kv.requests.filter((r) => r.authorized && r.method === 'GET').map((r) => r.status);
    expect(gets).toEqual([429, 200]);
  });

  it('reports health: true with an accepted token, false with a rejected one', async () => {
    expect(await store().healthCheck()).toBe(true);
    expect(await store({ token: 'not-accepted' }).healthCheck()).toBe(false);
    kv.setAcceptedToken('rotated');
    expect(await store().healthCheck()).toBe(false);
  });

  it('reports health false, within its time limit, when the vault is unreachable', async () => {
    const gone = await startFakeKeyVault();
    const url = gone.url;
    await gone.close();
    const s = new KeyVaultSecretStore({ vaultUri: url, credential: staticTokenCredential(TOKEN), clientOptions: kv.clientOptions, operationTimeoutMs: 1500 });
    const started = Date.now();
    expect(await s.healthCheck()).toBe(false);
    expect(Date.now() - started).toBeLessThan(5000);
    await expect(s.get('anything')).rejects.toThrow(/Key Vault get of secret "anything" failed/);
  });

  it('fails with a clear error that names the secret but never the value', async () => {
    const s = store({ token: 'not-accepted' });
    const setErr = await s.set('leak-check', SECRET_VALUE).catch((e: unknown) => e);
    expect(setErr).toBeInstanceOf(SecretStoreError);
    const message = (setErr as Error).message;
    expect(message).toContain('"leak-check"');
    expect(message).toMatch(/HTTP 401/);
    expect(message).toMatch(/not authorised/);
    for (const rendering of [message, String((setErr as Error).stack), inspect(setErr, { depth: 10 }), JSON.stringify(setErr)]) {
      expect(rendering).not.toContain(SECRET_VALUE);
    }
    expect((setErr as Error).cause).toBeUndefined();
    // Nothing reached the vault under the rejected token.
    expect(kv.peek('leak-check')).toBeUndefined();

    await store().set('leak-check', SECRET_VALUE);
    const getErr = await s.get('leak-check').catch((e: unknown) => e);
    expect(getErr).toBeInstanceOf(SecretStoreError);
    expect(inspect(getErr, { depth: 10 })).not.toContain(SECRET_VALUE);
  });

  it('rejects invalid names before any request', async () => {
    const s = store();
    await expect(s.get('bad_name')).rejects.toBeInstanceOf(InvalidSecretNameError);
    await expect(s.set('bad.name', 'v')).rejects.toBeInstanceOf(InvalidSecretNameError);
    await expect(s.delete('')).rejects.toBeInstanceOf(InvalidSecretNameError);
    expect(kv.requests).toHaveLength(0);
  });

  it('is what the factory builds for a keyVault config', async () => {
    const s = createSecretStore({ kind: 'keyVault', vaultUri: kv.url }, { credential: staticTokenCredential(TOKEN), clientOptions: kv.clientOptions });
    expect(s.kind).toBe('keyVault');
    await s.set('via-factory', 'v');
    expect(kv.peek('via-factory')).toBe('v');
  });
});

describe('fake Key Vault wire protocol, exercised with the bare SecretClient', () => {
  it('pages GET /secrets by maxresults through nextLink', async () => {
    const kv = await startFakeKeyVault();
    try {
      const client = new SecretClient(kv.url, staticTokenCredential(), { ...kv.clientOptions, disableChallengeResourceVerification: true });
      for (const name of ['p1', 'p2', 'p3', 'p4', 'p5']) await client.setSecret(name, 'v');
      const pages: string[][] = [];
      for await (const page of client.listPropertiesOfSecrets().byPage({ maxPageSize: 2 })) pages.push(page.map((p) => p.name));
      expect(pages).toEqual([['p1', 'p2'], ['p3', 'p4'], ['p5']]);
      expect(kv.requests.filter((r) => r.path === '/secrets' && r.authorized).map((r) => r.query.maxresults)).toEqual(['2', '2', '2']);
    } finally {
      await kv.close();
    }
  });

  it('reads versions, purges, and answers the scope= challenge form', async () => {
    const kv = await startFakeKeyVault({ challenge: 'scope' });
    try {
      const client = new SecretClient(kv.url, staticTokenCredential(), { ...kv.clientOptions, disableChallengeResourceVerification: true });
      const first = await client.setSecret('versioned', 'one');
      await client.setSecret('versioned', 'two');
      expect((await client.getSecret('versioned', { version: first.properties.version as string })).value).toBe('one');
      expect((await client.getSecret('versioned')).value).toBe('two');
      await (await client.beginDeleteSecret('versioned', { intervalInMs: 20 })).pollUntilDone();
      await client.purgeDeletedSecret('versioned');
      expect(kv.deletedNames()).toEqual([]);
      await client.setSecret('versioned', 'fresh');
    } finally {
      await kv.close();
    }
  });

  it('is only trusted by a client given its certificate', async () => {
    const kv = await startFakeKeyVault();
    try {
      const untrusting = new SecretClient(kv.url, staticTokenCredential(), { disableChallengeResourceVerification: true, retryOptions: { maxRetries: 0 } });
      await expect(untrusting.getSecret('anything')).rejects.toThrow(/self[- ]signed/i);
      expect(kv.requests).toHaveLength(0);
    } finally {
      await kv.close();
    }
  });

  it("needs challenge verification off for a loopback vault, which is why the store turns it off there only", async () => {
    const kv = await startFakeKeyVault();
    try {
      const verifying = new SecretClient(kv.url, staticTokenCredential(), kv.clientOptions);
      await expect(verifying.getSecret('anything')).rejects.toThrow(/does not match the requested domain/);
    } finally {
      await kv.close();
    }
    expect(isLoopbackUrl('https://127.0.0.1:8443')).toBe(true);
    expect(isLoopbackUrl('https://localhost:8443')).toBe(true);
    expect(isLoopbackUrl('https://[::1]:8443')).toBe(true);
    expect(isLoopbackUrl('https://myvault.vault.azure.net')).toBe(false);
    expect(isLoopbackUrl('https://localhost.evil.example')).toBe(false);
  });
});
