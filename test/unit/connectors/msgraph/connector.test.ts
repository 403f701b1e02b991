import { GraphClientFactory, MsGraphConnector } from '../../../../src/connectors/msgraph';
import { InvalidGrantError, TokenRefreshError } from '../../../../src/connectors/base';
import { integrationId, tenantId } from '../../../../src/storage';
import { startFakeGraph, type FakeGraph } from '../../../fakes/graph';

const APP = { clientId: 'conn-app', clientSecret: 'conn-app-secret-0123456789' };
const ids = { tenant: tenantId('t1'), integration: integrationId('i1') };

describe('MsGraphConnector (BaseConnector) against the fake token endpoint', () => {
  let fake: FakeGraph;
  beforeAll(async () => {
    fake = await startFakeGraph(APP);
  });
  afterAll(async () => fake.stop());

  const factory = (secret = APP.clientSecret) => new GraphClientFactory({ clientId: APP.clientId, clientSecret: secret, baseUrl: fake.url, authorityHost: fake.url, tls: { ca: fake.ca } });

  it('a consented tenant: healthy, authenticate resolves', async () => {
    const t = fake.addTenant();
    fake.consent(t);
    const c = new MsGraphConnector(factory(), t, ids);
    expect(c.name).toBe('msgraph');
    await expect(c.authenticate()).resolves.toBeUndefined();
    expect(await c.healthCheck()).toBe(true);
  });

  it('a tenant without consent: unhealthy, authenticate throws InvalidGrantError (re-consent needed)', async () => {
    const t = fake.addTenant();
    const c = new MsGraphConnector(factory(), t, ids);
    expect(await c.healthCheck()).toBe(false);
    const err = await c.authenticate().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(InvalidGrantError);
    expect(err).toMatchObject({ upstreamCode: 'AADSTS650052', tenant: 't1', integration: 'i1' });
  });

  it('a wrong app secret is our problem, not a revoked tenant: TokenRefreshError, and the secret is not in the error', async () => {
    const t = fake.addTenant();
    fake.consent(t);
    const c = new MsGraphConnector(factory('wrong-secret-value-123456'), t, ids);
    const err = await c.authenticate().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TokenRefreshError);
    expect(err).toMatchObject({ upstreamCode: 'AADSTS7000215' });
    expect(JSON.stringify(err)).not.toContain('wrong-secret-value');
    expect((err as Error).message).not.toContain('wrong-secret-value');
  });
});
