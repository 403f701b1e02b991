import { mkdtempSync, rmSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import os from 'node:os';
import { startAzurite, type AzuriteInstance } from '../../runner/azurite';
import { StorageClients } from '../../src/storage/clients';
import { IntegrationsRepository } from '../../src/storage/repositories/integrations';
import { TenantTable } from '../../src/storage/tenantTable';
import { TABLES } from '../../src/storage/names';
import { tenantId } from '../../src/storage/keys';
import { apiClient, startRunner, type RunningHost, localAppEnv } from '../helpers/runner';
import { TEST_JWT_SECRET, tenantToken } from '../helpers/jwt';

interface LogRecord {
  level: string;
  msg: string;
  correlationId?: string;
  [key: string]: unknown;
}

/**
 * What an operator reads in the logs of the real app (issue 18, "Logs an operator can use"): a refused
 * request shows its problem code and status, and what a request carried as a secret (an OAuth
 * authorization code and state, a bearer token) shows nowhere.
 */
describe('operator logs through the local runner', () => {
  let azurite: AzuriteInstance;
  let host: RunningHost;
  let secretDir: string;
  const localKey = randomBytes(32).toString('base64');
  const HUBSPOT_CLIENT_SECRET = `hs-client-secret-${randomBytes(12).toString('hex')}`;

  beforeAll(async () => {
    secretDir = mkdtempSync(`${os.tmpdir()}/itil-secrets-`);
    azurite = await startAzurite();
    host = await startRunner({
      env: {
        ...localAppEnv({ storage: azurite.connectionString, secretKey: localKey, secretDir, jwtSecret: TEST_JWT_SECRET, publicBaseUrl: 'http://localhost:7071' }),
        HUBSPOT_CLIENT_ID: 'hs-client-id',
        HUBSPOT_CLIENT_SECRET,
        HUBSPOT_REDIRECT_URI: 'http://localhost:7071/api/hubspot/oauth/callback',
        // Never reached: the state is checked before HubSpot is called.
        HUBSPOT_API_BASE_URL: 'http://127.0.0.1:9',
      },
    });
    const clients = new StorageClients({ kind: 'connectionString', connectionString: azurite.connectionString });
    await new IntegrationsRepository(new TenantTable(clients.table(TABLES.integrations))).create(tenantId('tenant-a'), { type: 'hubspot', status: 'active', externalAccountId: '123456' });
  }, 120_000);

  afterAll(async () => {
    await host?.stop();
    await azurite?.stop();
    rmSync(secretDir, { recursive: true, force: true });
  });

  const api = apiClient(() => host);

  /** The app's JSON log records for one correlation id, once `msg` has been written (polled, bounded). */
  async function recordsFor(correlationId: string, msg: string): Promise<LogRecord[]> {
    const deadline = Date.now() + 10_000;
    for (;;) {
      const records = host
        .output()
        .split('\n')
        .filter((l) => l.includes(correlationId) && l.includes('{'))
        .map((l) => JSON.parse(l.slice(l.indexOf('{'))) as LogRecord)
        .filter((r) => r.correlationId === correlationId);
      if (records.some((r) => r.msg === msg) || Date.now() > deadline) return records;
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  it("a refused request (tenant B's token on tenant A's path, 403) logs its problem code and status", async () => {
    const res = await api('integrations/tenant-a', { token: await tenantToken('tenant-b'), headers: { 'x-correlation-id': 'corr-refused-403' } });
    expect(res.status).toBe(403);
    const problem = (await res.json()) as { type: string };
    const code = problem.type.slice(problem.type.lastIndexOf('/') + 1);
    expect(code).toMatch(/^[a-z][a-z-]+$/);
    const rejected = (await recordsFor('corr-refused-403', 'request rejected')).find((r) => r.msg === 'request rejected');
    expect(rejected).toMatchObject({ level: 'warn', status: 403, code });
  });

  it('a refused request with bad input (400) logs its problem code', async () => {
    const res = await api('integrations/tenant-a?type=salesforce', { token: await tenantToken('tenant-a'), headers: { 'x-correlation-id': 'corr-refused-400' } });
    expect(res.status).toBe(400);
    const problem = (await res.json()) as { type: string };
    const code = problem.type.slice(problem.type.lastIndexOf('/') + 1);
    const rejected = (await recordsFor('corr-refused-400', 'request rejected')).find((r) => r.msg === 'request rejected');
    expect(rejected).toMatchObject({ status: 400, code });
  });

  it('an OAuth callback carrying a code, a state and a bearer token logs why it was refused and none of them', async () => {
    const oauthCode = `na1-${randomBytes(24).toString('base64url')}`;
    const state = randomBytes(32).toString('base64url');
    const bearer = randomBytes(24).toString('hex');
    const res = await api(`hubspot/oauth/callback?code=${encodeURIComponent(oauthCode)}&state=${encodeURIComponent(state)}`, {
      anonymous: true,
      headers: { authorization: `Bearer ${bearer}`, 'x-correlation-id': 'corr-oauth-cb' },
    });
    expect(res.status).toBe(400);
    await res.text();
    const records = await recordsFor('corr-oauth-cb', 'request completed');
    const refused = records.find((r) => r.msg === 'HubSpot callback refused before its state was used');
    // The refusal's own code (a forged state, from a browser that did not start the flow), not a mask: that is
    // what tells an operator what happened.
    expect(refused).toMatchObject({ level: 'warn', status: 400, code: expect.stringMatching(/^(token-invalid|oauth-browser-missing)$/) });
    expect(records.find((r) => r.msg === 'request completed')).toMatchObject({ status: 400 });
    const out = host.output();
    for (const secret of [oauthCode, state, bearer, HUBSPOT_CLIENT_SECRET, TEST_JWT_SECRET, localKey]) expect(out).not.toContain(secret);
  });
});
