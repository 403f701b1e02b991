import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startAzurite, type AzuriteInstance } from '../../runner/azurite';
import { MSGRAPH_CERTIFICATE_SECRET_NAME } from '../../src/connectors/msgraph/appCredential';
import { LocalSecretStore } from '../../src/secrets';
import { StorageClients } from '../../src/storage/clients';
import { integrationId, tenantId } from '../../src/storage/keys';
import { TABLES } from '../../src/storage/names';
import { IntegrationsRepository } from '../../src/storage/repositories/integrations';
import { TenantTable } from '../../src/storage/tenantTable';
import { startFakeGraph, type FakeGraph } from '../fakes/graph';
import { TestBrowser } from '../helpers/browser';
import { makeAppCertificate, type AppCertificatePems } from '../helpers/certs';
import { TEST_JWT_SECRET } from '../helpers/jwt';
import { apiClient, freePort, localAppEnv, startRunner, type RunningHost } from '../helpers/runner';

const APP = { clientId: 'e2e-graph-cert-app', clientSecret: 'e2e-graph-cert-never-used-7d41' };

/**
 * MSGRAPH_CREDENTIAL=certificate through the local runner: the app's PEM sits in the local secret store (as it
 * would in Key Vault), no client secret is configured, and the fake app registration accepts certificates only.
 * First the registration does not know the app's certificate (every token request is refused, and that is all
 * that happens), then the certificate is uploaded and both app-only Graph calls and the admin sign-in + consent
 * work with signed client assertions.
 */
describe('Microsoft Graph with a certificate credential', () => {
  let azurite: AzuriteInstance;
  let fake: FakeGraph;
  let host: RunningHost;
  let tmp: string;
  let publicBase: string;
  let cert: AppCertificatePems;
  let entraA: string;
  const A = 'cert-tenant-a';
  const integrationA = integrationId('0c7e4d2f-0000-4000-8000-00000000000a');
  const support = 'support@cert-a.example';
  const api = apiClient(() => host);

  beforeAll(async () => {
    tmp = mkdtempSync(path.join(os.tmpdir(), 'itil-graph-cert-'));
    cert = await makeAppCertificate();
    azurite = await startAzurite();
    fake = await startFakeGraph({ ...APP, secretsAllowed: false });
    const home = fake.addTenant();
    fake.consent(home);
    entraA = fake.addTenant();
    fake.consent(entraA);
    fake.addUser(entraA, { mail: support, displayName: 'Cert Support' });

    const clients = new StorageClients({ kind: 'connectionString', connectionString: azurite.connectionString });
    await clients.ensureAll();
    const integrations = new IntegrationsRepository(new TenantTable(clients.table(TABLES.integrations)));
    await integrations.create(tenantId(A), { integrationId: integrationA, type: 'msgraph', status: 'active', externalAccountId: entraA });

    // The operator's step: the certificate (key + cert) in the secret store before the app starts.
    const secretKey = randomBytes(32);
    const secretDir = path.join(tmp, 'secrets');
    await new LocalSecretStore({ key: secretKey, directory: secretDir, env: {} }).set(MSGRAPH_CERTIFICATE_SECRET_NAME, cert.pem, { contentType: 'application/x-pem-file' });

    const caFile = path.join(tmp, 'fake-graph-ca.pem');
    writeFileSync(caFile, fake.ca);
    const port = await freePort();
    publicBase = `http://127.0.0.1:${port}`;
    host = await startRunner({
      port,
      env: {
        ...localAppEnv({ storage: azurite.connectionString, secretKey: secretKey.toString('base64'), secretDir, jwtSecret: TEST_JWT_SECRET, publicBaseUrl: publicBase }),
        MSGRAPH_CLIENT_ID: APP.clientId,
        MSGRAPH_CLIENT_SECRET: undefined,
        MSGRAPH_CREDENTIAL: 'certificate',
        MSGRAPH_TENANT_ID: home,
        GRAPH_BASE_URL: fake.url,
        MSGRAPH_AUTHORITY_HOST: fake.url,
        NODE_EXTRA_CA_CERTS: caFile,
      },
    });
  });

  afterAll(async () => {
    await host?.stop();
    await fake?.stop();
    await azurite?.stop();
    rmSync(tmp, { recursive: true, force: true });
  });

  const keyBody = () => cert.pem.split('\n').filter((l) => l && !l.startsWith('-----'))[3] as string;
  const integrationOf = async (tenant: string, id: string) => {
    const { integrations } = (await (await api(`integrations/${tenant}?type=msgraph`, { tenant })).json()) as { integrations: Array<Record<string, unknown>> };
    return integrations.find((i) => i.integration_id === id);
  };
  const userCall = () => api(`msgraph/users/${A}/${integrationA}?email=${encodeURIComponent(support)}`, { tenant: A });

  /** authorize → start page → sign-in at the fake (admin signed in) → callback with the code → … */
  async function consentFlow(tenant: string, entra: string, admin: string) {
    const res = await api(`msgraph/authorize/${tenant}`, { tenant });
    expect(res.status).toBe(200);
    const started = (await res.json()) as { authorize_url: string; integration_id: string };
    fake.signIn(entra, admin);
    const hops = await new TestBrowser(fake.ca).follow(started.authorize_url);
    return { integrationId: started.integration_id, hops, last: hops[hops.length - 1] };
  }

  describe('while the app registration does not know the certificate', () => {
    it('a Graph call fails with a problem, and the refusal carries nothing of the certificate', async () => {
      fake.clearRequests();
      const res = await userCall();
      expect(res.status).toBeGreaterThanOrEqual(500);
      expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
      const text = await res.text();
      expect(text).not.toContain(keyBody());
      expect(text).not.toContain('BEGIN');
      const tokenCalls = fake.requests.filter((r) => r.tokenRequest);
      expect(tokenCalls.length).toBeGreaterThan(0);
      expect(tokenCalls.every((r) => r.status === 401 && r.tokenRequest?.clientAuth === 'client_assertion')).toBe(true);
    });

    it('the admin sign-in is refused at the code redemption and nothing is connected', async () => {
      const flow = await consentFlow('cert-tenant-c', entraA, support);
      expect(flow.last?.status).toBe(400);
      expect(flow.last?.text).toContain('invalid_client');
      expect(flow.last?.text).not.toContain(keyBody());
      expect(await integrationOf('cert-tenant-c', flow.integrationId)).not.toMatchObject({ status: 'active' });
      expect(fake.browserRequests.filter((r) => r.endpoint === 'adminconsent')).toHaveLength(0);
    });
  });

  describe('once the certificate is uploaded to the app registration', () => {
    beforeAll(() => fake.registerCertificate(cert.cert));

    it('app-only Graph calls work with a signed assertion, and no secret is ever sent', async () => {
      fake.clearRequests();
      const res = await userCall();
      expect(res.status).toBe(200);
      expect((await res.json()) as Record<string, unknown>).toMatchObject({ mail: support });
      const tokenCalls = fake.requests.filter((r) => r.tokenRequest);
      expect(tokenCalls.map((r) => [r.status, r.tokenRequest?.clientAuth, r.tokenRequest?.tenant])).toEqual([[200, 'client_assertion', entraA]]);
    });

    it('the admin-consent flow completes: sign-in code redeemed with an assertion, consent, integration active', async () => {
      const entraB = fake.addTenant();
      fake.addUser(entraB, { mail: 'admin@cert-b.example' });
      fake.clearRequests();
      const flow = await consentFlow('cert-tenant-b', entraB, 'admin@cert-b.example');
      expect(flow.last?.status).toBe(200);
      expect(flow.last?.text).toContain('Microsoft 365 connected');
      expect(await integrationOf('cert-tenant-b', flow.integrationId)).toMatchObject({ status: 'active', external_account_id: entraB });
      const tokenCalls = fake.requests.filter((r) => r.tokenRequest);
      expect(tokenCalls.map((r) => [r.status, r.tokenRequest?.grantType, r.tokenRequest?.clientAuth])).toEqual([
        [200, 'authorization_code', 'client_assertion'],
        [200, 'client_credentials', 'client_assertion'],
      ]);
    });

    it('the runner never logged the certificate', () => {
      expect(host.output()).not.toContain(keyBody());
    });
  });
});
