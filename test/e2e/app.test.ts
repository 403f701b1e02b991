import { mkdtempSync, rmSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import os from 'node:os';
import { startAzurite, type AzuriteInstance } from '../../runner/azurite';
import { StorageClients } from '../../src/storage/clients';
import { IntegrationsRepository } from '../../src/storage/repositories/integrations';
import { TenantTable } from '../../src/storage/tenantTable';
import { TABLES } from '../../src/storage/names';
import { tenantId } from '../../src/storage/keys';
import { apiClient, runExpectingFailure, startRunner, type RunningHost, localAppEnv } from '../helpers/runner';
import { TEST_JWT_SECRET, tenantToken } from '../helpers/jwt';

/** The real app, started by the local runner as `npm start` does, against its own Azurite. */
describe('the app end to end', () => {
  let azurite: AzuriteInstance;
  let host: RunningHost;
  let secretDir: string;
  const localKey = randomBytes(32).toString('base64');

  const baseEnv = () => ({
    ...localAppEnv({ storage: azurite.connectionString, secretKey: localKey, secretDir: secretDir, jwtSecret: TEST_JWT_SECRET, publicBaseUrl: 'http://localhost:7071' }),
  });

  beforeAll(async () => {
    secretDir = mkdtempSync(`${os.tmpdir()}/itil-secrets-`);
    azurite = await startAzurite();
    host = await startRunner({ env: baseEnv() });
  });

  afterAll(async () => {
    await host?.stop();
    await azurite?.stop();
    rmSync(secretDir, { recursive: true, force: true });
  });

  const api = apiClient(() => host);

  it('GET /api/health is anonymous and reports storage and the secret store up', async () => {
    const res = await api('health', { key: null });
    expect(res.status).toBe(200);
    const body = await res.json();
    expect(body).toEqual({ status: 'healthy', checks: { storage: 'up', secrets: 'up', connectors: expect.any(Object) } });
  });

  it('serves its OpenAPI description anonymously', async () => {
    const res = await api('openapi.json', { key: null });
    expect(res.status).toBe(200);
    const doc = await res.json();
    expect(doc.openapi).toBe('3.1.0');
    expect(Object.keys(doc.paths)).toContain('/api/integrations/{tenant_id}');
  });

  it('created every table and queue on Azurite at start', async () => {
    const clients = new StorageClients({ kind: 'connectionString', connectionString: azurite.connectionString });
    expect(await clients.queue('engine-events').exists()).toBe(true);
    const t = new TenantTable(clients.table(TABLES.syncEvents));
    await expect(t.page(('t1:i1' as unknown) as Parameters<typeof t.page>[0])).resolves.toEqual({ rows: [] });
  });

  describe('management API authentication and tenant isolation', () => {
    beforeAll(async () => {
      const clients = new StorageClients({ kind: 'connectionString', connectionString: azurite.connectionString });
      const repo = new IntegrationsRepository(new TenantTable(clients.table(TABLES.integrations)));
      await repo.create(tenantId('tenant-a'), { type: 'hubspot', status: 'active', externalAccountId: '123456' });
    });

    it('no bearer token → 401 problem JSON with WWW-Authenticate', async () => {
      const res = await api('integrations/tenant-a');
      expect(res.status).toBe(401);
      expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
      expect(res.headers.get('www-authenticate')).toMatch(/^Bearer/);
      const problem = await res.json();
      expect(problem).toMatchObject({ status: 401, title: 'Authentication required', instance: '/api/integrations/tenant-a' });
      expect(problem.type).toMatch(/unauthorized$/);
      expect(typeof problem.correlationId).toBe('string');
    });

    it('no function key → 401 before the app is reached', async () => {
      const res = await api('integrations/tenant-a', { key: null, token: await tenantToken('tenant-a') });
      expect(res.status).toBe(401);
    });

    it('a token signed with another key, or expired → 401, and the reason is given without the token', async () => {
      const forged = await tenantToken('tenant-a', { secret: 'another-secret-that-is-long-enough-000000' });
      const r1 = await api('integrations/tenant-a', { token: forged });
      expect(r1.status).toBe(401);
      expect(await r1.text()).not.toContain(forged);
      const expired = await tenantToken('tenant-a', { expiresIn: '-5m' });
      const r2 = await api('integrations/tenant-a', { token: expired });
      expect(r2.status).toBe(401);
      expect((await r2.json()).detail).toMatch(/expired/);
    });

    it("tenant B's token on tenant A's path → 403, and B sees none of A's integrations on its own path", async () => {
      const tokenB = await tenantToken('tenant-b');
      const r1 = await api('integrations/tenant-a', { token: tokenB });
      expect(r1.status).toBe(403);
      const p = await r1.json();
      expect(p).toMatchObject({ status: 403 });
      expect(JSON.stringify(p)).not.toContain('123456');
      const r2 = await api('integrations/tenant-b', { token: tokenB });
      expect(r2.status).toBe(200);
      expect((await r2.json()).integrations).toEqual([]);
    });

    it("tenant A's token lists A's integration", async () => {
      const res = await api('integrations/tenant-a', { token: await tenantToken('tenant-a') });
      expect(res.status).toBe(200);
      const body = await res.json();
      expect(body.tenant_id).toBe('tenant-a');
      expect(body.integrations).toHaveLength(1);
      expect(body.integrations[0]).toMatchObject({ type: 'hubspot', status: 'active', external_account_id: '123456' });
    });

    it('bad input → 400 problem JSON listing each problem', async () => {
      const res = await api('integrations/tenant-a?type=salesforce&extra=1', { token: await tenantToken('tenant-a') });
      expect(res.status).toBe(400);
      const problem = await res.json();
      expect(problem.errors.map((e: { location: string; path: string }) => `${e.location}:${e.path}`).sort()).toEqual(['query:', 'query:type'].sort());
    });

    it('a malformed tenant id in the path is refused, even with a matching tenant claim', async () => {
      const res = await api(`integrations/${encodeURIComponent('a#b')}`, { token: await tenantToken('a#b') });
      expect(res.status).toBe(400);
      expect((await res.json()).errors[0]).toMatchObject({ location: 'path', path: 'tenant_id' });
    });
  });

  it('writes structured logs with correlation ids and never a token or secret', async () => {
    const token = await tenantToken('tenant-a');
    await api('integrations/tenant-a', { token, headers: { 'x-correlation-id': 'corr-12345' } });
    await new Promise((r) => setTimeout(r, 200));
    const out = host.output();
    const line = out.split('\n').find((l) => l.includes('corr-12345') && l.includes('request completed'));
    expect(line).toBeDefined();
    const json = JSON.parse((line as string).slice((line as string).indexOf('{')));
    expect(json).toMatchObject({ level: 'info', correlationId: 'corr-12345', tenantId: 'tenant-a', status: 200, functionName: 'listIntegrations' });
    for (const secret of [token, TEST_JWT_SECRET, localKey]) expect(out).not.toContain(secret);
  });
});

describe('configuration errors at start', () => {
  it('a missing or malformed setting stops the start with one message listing every problem, values not echoed', async () => {
    const azurite = await startAzurite();
    try {
      const { code, output } = await runExpectingFailure({
        env: {
          AzureWebJobsStorage: azurite.connectionString,
          LOCAL_SECRET_KEY: 'not-a-valid-key-value-xyz',
          API_JWT_SECRET: undefined,
          API_JWT_JWKS_URI: undefined,
          PUBLIC_BASE_URL: 'not a url',
          HUBSPOT_CLIENT_ID: 'only-the-id',
          KEY_VAULT_URI: undefined,
        },
      });
      expect(code).toBe(1);
      expect(output).toMatch(/Invalid configuration \(\d+ problems\)/);
      for (const name of ['LOCAL_SECRET_KEY', 'API_JWT_SECRET', 'PUBLIC_BASE_URL', 'HUBSPOT_CLIENT_SECRET', 'HUBSPOT_REDIRECT_URI']) expect(output).toContain(name);
      expect(output).not.toContain('not-a-valid-key-value-xyz');
    } finally {
      await azurite.stop();
    }
  });
});
