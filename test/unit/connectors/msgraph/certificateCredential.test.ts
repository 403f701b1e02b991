import { createHash, randomBytes, X509Certificate } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { decodeJwt, decodeProtectedHeader } from 'jose';
import { ConfigError, parseConfig } from '../../../../src/config';
import { describeAuthError, GraphClientFactory } from '../../../../src/connectors/msgraph';
import {
  AppCertificateError,
  AppCredentialSource,
  clientAssertion,
  MSGRAPH_CERTIFICATE_SECRET_NAME,
  parseAppCertificate,
} from '../../../../src/connectors/msgraph/appCredential';
import { Logger } from '../../../../src/platform/logging';
import { LocalSecretStore } from '../../../../src/secrets';
import { createClientAuthenticator, JWT_BEARER } from '../../../fakes/graph/clientAuth';
import { startFakeGraph, type FakeGraph } from '../../../fakes/graph';
import { makeAppCertificate, type AppCertificatePems } from '../../../helpers/certs';

const APP = { clientId: 'cert-app-4f1c', clientSecret: 'cert-app-fallback-secret-93ab' };
const localEnv = (extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv => ({
  AzureWebJobsStorage: 'UseDevelopmentStorage=true',
  LOCAL_SECRET_KEY: randomBytes(32).toString('base64'),
  PUBLIC_BASE_URL: 'http://localhost:7071',
  API_JWT_SECRET: 'jwt-signing-secret-that-is-long-enough-0123456789',
  ...extra,
});

function problemsOf(env: NodeJS.ProcessEnv): string[] {
  try {
    parseConfig(env);
  } catch (err) {
    if (err instanceof ConfigError) return err.problems;
    throw err;
  }
  return [];
}

describe('MSGRAPH_CREDENTIAL', () => {
  it('defaults to the secret, so existing deployments do not change', () => {
    expect(parseConfig(localEnv({ MSGRAPH_CLIENT_ID: 'id', MSGRAPH_CLIENT_SECRET: 'graph-secret' })).msgraph.app).toEqual({ clientId: 'id', clientSecret: 'graph-secret', credential: 'secret' });
    expect(problemsOf(localEnv({ MSGRAPH_CLIENT_ID: 'id', MSGRAPH_CREDENTIAL: 'secret' }))).toEqual([expect.stringMatching(/^MSGRAPH_CLIENT_SECRET: is required/)]);
  });

  it('certificate: the client id is enough, the secret is an optional fallback', () => {
    expect(parseConfig(localEnv({ MSGRAPH_CLIENT_ID: 'id', MSGRAPH_CREDENTIAL: 'certificate' })).msgraph.app).toEqual({ clientId: 'id', credential: 'certificate' });
    expect(parseConfig(localEnv({ MSGRAPH_CLIENT_ID: 'id', MSGRAPH_CREDENTIAL: 'certificate', MSGRAPH_CLIENT_SECRET: 'graph-secret' })).msgraph.app).toEqual({
      clientId: 'id',
      clientSecret: 'graph-secret',
      credential: 'certificate',
    });
    expect(problemsOf(localEnv({ MSGRAPH_CREDENTIAL: 'certificate' }))).toEqual(['MSGRAPH_CLIENT_ID: is required when MSGRAPH_CREDENTIAL is certificate']);
    expect(problemsOf(localEnv({ MSGRAPH_CLIENT_ID: 'id', MSGRAPH_CREDENTIAL: 'cert' }))).toContainEqual(expect.stringMatching(/^MSGRAPH_CREDENTIAL: /));
  });
});

describe('the app certificate from the secret store', () => {
  let good: AppCertificatePems;
  let other: AppCertificatePems;
  beforeAll(async () => {
    [good, other] = await Promise.all([makeAppCertificate(), makeAppCertificate({ commonName: 'someone else' })]);
  });

  it('reads key and certificate from one PEM, with the SHA-256 thumbprint of the certificate', () => {
    const cert = parseAppCertificate(good.pem);
    expect(cert.thumbprintSha256).toBe(createHash('sha256').update(new X509Certificate(good.cert).raw).digest('base64url'));
    expect(cert.privateKey.asymmetricKeyType).toBe('rsa');
    // The store may hold the certificate first (openssl's and some exports' order): same result, key first for MSAL.
    const keyBlock = good.pem.slice(0, good.pem.indexOf('-----BEGIN CERTIFICATE-----'));
    const certFirst = parseAppCertificate(`${good.cert}\n${keyBlock}`);
    expect(certFirst.thumbprintSha256).toBe(cert.thumbprintSha256);
    expect(certFirst.pem.indexOf('PRIVATE KEY')).toBeLessThan(certFirst.pem.indexOf('BEGIN CERTIFICATE'));
  });

  it('refuses a PEM without a certificate, a key of another certificate, an expired certificate, and says why without quoting it', async () => {
    const keyOnly = good.pem.slice(0, good.pem.indexOf('-----BEGIN CERTIFICATE-----'));
    expect(() => parseAppCertificate(keyOnly)).toThrow(/holds no PEM certificate/);
    expect(() => parseAppCertificate(other.cert)).toThrow(/no unencrypted PEM private key/);
    const mixed = keyOnly + other.cert;
    expect(() => parseAppCertificate(mixed)).toThrow(/private key does not belong to its certificate/);
    const expired = await makeAppCertificate({ notBefore: new Date(Date.now() - 3 * 86_400_000), notAfter: new Date(Date.now() - 86_400_000) });
    let message = '';
    try {
      parseAppCertificate(expired.pem);
    } catch (err) {
      message = (err as Error).message;
    }
    expect(message).toMatch(/expired on/);
    expect(message).not.toContain('PRIVATE KEY');
  });

  describe('AppCredentialSource', () => {
    let dir: string;
    let store: LocalSecretStore;
    const lines: string[] = [];
    const log = new Logger({ debug: (m) => lines.push(m), info: (m) => lines.push(m), warn: (m) => lines.push(m), error: (m) => lines.push(m) });
    beforeEach(() => {
      dir = mkdtempSync(path.join(os.tmpdir(), 'itil-app-cert-'));
      store = new LocalSecretStore({ key: randomBytes(32), directory: dir, env: {} });
      lines.length = 0;
    });
    afterEach(() => rmSync(dir, { recursive: true, force: true }));

    it('reads the certificate once for concurrent callers and keeps it', async () => {
      await store.set(MSGRAPH_CERTIFICATE_SECRET_NAME, good.pem);
      let reads = 0;
      const counting = { get: (name: string) => (reads++, store.get(name)) };
      const source = new AppCredentialSource({ mode: 'certificate', secrets: counting, log });
      const all = await Promise.all([source.material(), source.material(), source.material()]);
      await source.material();
      expect(all.map((m) => m.kind)).toEqual(['certificate', 'certificate', 'certificate']);
      expect(reads).toBe(1);
    });

    it('without a certificate and without a secret: a clear 503 naming the secret, tried again on the next call', async () => {
      const source = new AppCredentialSource({ mode: 'certificate', secrets: store, log });
      await expect(source.material()).rejects.toThrow(AppCertificateError);
      await expect(source.material()).rejects.toMatchObject({ status: 503, code: 'msgraph-credential-unavailable', message: expect.stringContaining(MSGRAPH_CERTIFICATE_SECRET_NAME) });
      await store.set(MSGRAPH_CERTIFICATE_SECRET_NAME, good.pem);
      expect((await source.material()).kind).toBe('certificate');
    });

    it('with a secret configured: falls back to it with a warning that does not carry it, and retries the certificate later', async () => {
      let now = 1_000_000;
      const source = new AppCredentialSource({ mode: 'certificate', clientSecret: APP.clientSecret, secrets: store, log, retryAfterMs: 60_000, now: () => now });
      expect(await source.material()).toEqual({ kind: 'secret', secret: APP.clientSecret });
      expect(lines).toHaveLength(1);
      expect(lines[0]).toMatch(/"level":"warn".*fallback.*msgraph-client-certificate/);
      expect(lines.join('\n')).not.toContain(APP.clientSecret);
      await store.set(MSGRAPH_CERTIFICATE_SECRET_NAME, good.pem);
      now += 30_000;
      expect((await source.material()).kind).toBe('secret'); // within the retry interval: no vault read
      now += 31_000;
      expect((await source.material()).kind).toBe('certificate');
    });
  });
});

describe('the client assertion, checked by the fake identity platform', () => {
  let good: AppCertificatePems;
  let unknown: AppCertificatePems;
  const endpoint = 'https://login.example/organizations/oauth2/v2.0/token';
  beforeAll(async () => {
    [good, unknown] = await Promise.all([makeAppCertificate(), makeAppCertificate({ commonName: 'not registered' })]);
  });
  const form = (assertion: string) => new URLSearchParams({ client_id: APP.clientId, client_assertion_type: JWT_BEARER, client_assertion: assertion });

  it("has Microsoft's format: PS256, x5t#S256, aud the token endpoint, iss = sub = client id, jti, nbf, a short exp", async () => {
    const assertion = await clientAssertion({ certificate: parseAppCertificate(good.pem), clientId: APP.clientId, tokenEndpoint: endpoint });
    expect(decodeProtectedHeader(assertion)).toEqual({ alg: 'PS256', typ: 'JWT', 'x5t#S256': createHash('sha256').update(new X509Certificate(good.cert).raw).digest('base64url') });
    const claims = decodeJwt(assertion);
    expect(claims).toMatchObject({ aud: endpoint, iss: APP.clientId, sub: APP.clientId });
    expect(claims.jti).toMatch(/^[0-9a-f-]{36}$/);
    expect((claims.exp as number) - (claims.nbf as number)).toBeLessThanOrEqual(600);
  });

  it('is accepted once; a replay, another audience, an unregistered certificate, an expired assertion are refused', async () => {
    const auth = createClientAuthenticator({ ...APP, certificates: [good.cert] });
    const cert = parseAppCertificate(good.pem);
    const assertion = await clientAssertion({ certificate: cert, clientId: APP.clientId, tokenEndpoint: endpoint });
    await expect(auth.authenticate(form(assertion), endpoint)).resolves.toBeUndefined();
    await expect(auth.authenticate(form(assertion), endpoint)).resolves.toMatchObject({ status: 401, description: expect.stringMatching(/^AADSTS700025/) });
    const elsewhere = await clientAssertion({ certificate: cert, clientId: APP.clientId, tokenEndpoint: 'https://login.example/other/oauth2/v2.0/token' });
    await expect(auth.authenticate(form(elsewhere), endpoint)).resolves.toMatchObject({ status: 401, description: expect.stringMatching(/audience/) });
    const stranger = await clientAssertion({ certificate: parseAppCertificate(unknown.pem), clientId: APP.clientId, tokenEndpoint: endpoint });
    await expect(auth.authenticate(form(stranger), endpoint)).resolves.toMatchObject({ status: 401, description: expect.stringMatching(/^AADSTS700027/) });
    const old = await clientAssertion({ certificate: cert, clientId: APP.clientId, tokenEndpoint: endpoint, now: new Date(Date.now() - 3600_000) });
    await expect(auth.authenticate(form(old), endpoint)).resolves.toMatchObject({ status: 401, description: expect.stringMatching(/^AADSTS700024/) });
    const otherApp = await clientAssertion({ certificate: cert, clientId: 'another-app', tokenEndpoint: endpoint });
    await expect(auth.authenticate(form(otherApp), endpoint)).resolves.toMatchObject({ status: 401, description: expect.stringMatching(/^AADSTS700021/) });
  });

  it('a certificate-only app refuses its (former) client secret', async () => {
    const auth = createClientAuthenticator({ ...APP, certificates: [good.cert], secretsAllowed: false });
    await expect(auth.authenticate(new URLSearchParams({ client_id: APP.clientId, client_secret: APP.clientSecret }), endpoint)).resolves.toMatchObject({ status: 401, description: expect.stringMatching(/^AADSTS7000215/) });
  });
});

describe('GraphClientFactory with the certificate credential, against the fake Graph', () => {
  let fake: FakeGraph;
  let good: AppCertificatePems;
  let unknown: AppCertificatePems;
  let dir: string;
  let store: LocalSecretStore;
  beforeAll(async () => {
    [good, unknown] = await Promise.all([makeAppCertificate(), makeAppCertificate({ commonName: 'not registered' })]);
    fake = await startFakeGraph({ ...APP, certificates: [good.cert], secretsAllowed: false });
    dir = mkdtempSync(path.join(os.tmpdir(), 'itil-app-cert-factory-'));
    store = new LocalSecretStore({ key: randomBytes(32), directory: dir, env: {} });
  });
  afterAll(async () => {
    await fake.stop();
    rmSync(dir, { recursive: true, force: true });
  });
  const factory = (source: AppCredentialSource) => new GraphClientFactory({ clientId: APP.clientId, appCredential: source, baseUrl: fake.url, authorityHost: fake.url, tls: { ca: fake.ca } });

  it('gets app-only tokens with a signed assertion from a certificate-only app, and calls Graph with them', async () => {
    // Stored certificate first (another export order): it works all the same.
    const keyBlock = good.pem.slice(0, good.pem.indexOf('-----BEGIN CERTIFICATE-----'));
    await store.set(MSGRAPH_CERTIFICATE_SECRET_NAME, `${good.cert}\n${keyBlock}`);
    const tenant = fake.addTenant();
    fake.consent(tenant);
    fake.addUser(tenant, { mail: 'someone@cert.example' });
    fake.clearRequests();
    const f = factory(new AppCredentialSource({ mode: 'certificate', secrets: store }));
    const users = (await f.client(tenant).api('/users').get()) as { value: Array<{ mail: string }> };
    expect(users.value.map((u) => u.mail)).toEqual(['someone@cert.example']);
    const tokenCalls = fake.requests.filter((r) => r.tokenRequest);
    expect(tokenCalls.map((r) => [r.status, r.tokenRequest?.clientAuth, r.tokenRequest?.tenant])).toEqual([[200, 'client_assertion', tenant]]);
  });

  it('a certificate the app registration does not know is refused (AADSTS700027), and the secret fallback is refused by a certificate-only app', async () => {
    await store.set(MSGRAPH_CERTIFICATE_SECRET_NAME, unknown.pem);
    const tenant = fake.addTenant();
    fake.consent(tenant);
    const err = await factory(new AppCredentialSource({ mode: 'certificate', secrets: store })).token(tenant).then(() => undefined, (e: unknown) => e);
    expect(describeAuthError(err)).toMatchObject({ code: 'AADSTS700027', revoked: false });
    await store.delete(MSGRAPH_CERTIFICATE_SECRET_NAME);
    const quiet = new Logger({ debug: () => {}, info: () => {}, warn: () => {}, error: () => {} });
    const fallback = await factory(new AppCredentialSource({ mode: 'certificate', clientSecret: APP.clientSecret, secrets: store, log: quiet })).token(tenant).then(() => undefined, (e: unknown) => e);
    expect(describeAuthError(fallback)).toMatchObject({ code: 'AADSTS7000215' });
  });
});
