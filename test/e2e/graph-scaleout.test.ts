import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startAzurite, type AzuriteInstance } from '../../runner/azurite';
import { StorageClients } from '../../src/storage/clients';
import { integrationId, tenantId } from '../../src/storage/keys';
import { TABLES } from '../../src/storage/names';
import { IntegrationsRepository } from '../../src/storage/repositories/integrations';
import { TenantTable } from '../../src/storage/tenantTable';
import { startFakeGraph, type FakeGraph } from '../fakes/graph';
import { TEST_JWT_SECRET } from '../helpers/jwt';
import { apiClient, localAppEnv, startRunner, type RunningHost, fakeGraphAppEnv } from '../helpers/runner';
import { maxInWindow } from '../helpers/windows';

const APP = { clientId: 'e2e-graph-scale-app', clientSecret: 'e2e-graph-scale-secret-7d1e' };
/** The mailbox window the runners are given: small, so that the load exceeds it within seconds. */
const WINDOW = { limit: 5, intervalMs: 2_000 };

/**
 * Scale-out: three runner processes (three Functions instances) on one Azurite and one fake Graph, all
 * calling Graph for the same mailbox. Outlook counts requests per app and mailbox as they arrive, so the
 * check is on the fake's arrival times for that mailbox.
 */
describe('Outlook mailbox limit across three instances', () => {
  let azurite: AzuriteInstance;
  let fake: FakeGraph;
  let hosts: RunningHost[] = [];
  let tmp: string;
  let entra: string;
  const tenant = 'scale-tenant';
  const integration = integrationId('0b6a3c1e-0000-4000-8000-0000000005ca');
  const agent = 'agent@scale.example';

  beforeAll(async () => {
    tmp = mkdtempSync(path.join(os.tmpdir(), 'itil-graph-scale-'));
    azurite = await startAzurite();
    fake = await startFakeGraph(APP);
    const home = fake.addTenant();
    entra = fake.addTenant();
    fake.consent(entra);
    fake.addUser(entra, { mail: agent, displayName: 'Scale Agent' });
    // The integration is the fixture, not what is tested: connecting is the consent suite's subject.
    const clients = new StorageClients({ kind: 'connectionString', connectionString: azurite.connectionString });
    await clients.ensureAll();
    await new IntegrationsRepository(new TenantTable(clients.table(TABLES.integrations))).create(tenantId(tenant), { integrationId: integration, type: 'msgraph', status: 'active', externalAccountId: entra });
    const caFile = path.join(tmp, 'fake-graph-ca.pem');
    writeFileSync(caFile, fake.ca);
    const env = {
      ...localAppEnv({ storage: azurite.connectionString, secretKey: randomBytes(32).toString('base64'), secretDir: path.join(tmp, 'secrets'), jwtSecret: TEST_JWT_SECRET, publicBaseUrl: 'http://127.0.0.1:7071' }),
      ...fakeGraphAppEnv({ app: APP, homeTenant: home, fakeUrl: fake.url, caFile }),
      MSGRAPH_MAILBOX_RATE_LIMIT: String(WINDOW.limit),
      MSGRAPH_MAILBOX_RATE_WINDOW_MS: String(WINDOW.intervalMs),
    };
    hosts = await Promise.all([0, 1, 2].map(() => startRunner({ env })));
  }, 120_000);

  afterAll(async () => {
    await Promise.all(hosts.map((h) => h.stop()));
    await fake?.stop();
    await azurite?.stop();
    rmSync(tmp, { recursive: true, force: true });
  });

  const clients = [0, 1, 2].map((i) => apiClient(() => hosts[i] as RunningHost));

  it('18 free/busy calls on one mailbox through 3 instances: at most the limit in any window at Graph, each answered, none sent twice', async () => {
    fake.clearRequests();
    const answers = await Promise.all(
      Array.from({ length: 18 }, async (_, n) => {
        // Free/busy asked as the agent: `/users/{agent}/calendar/getSchedule`, a call on the agent's mailbox.
        const res = await (clients[n % 3] as ReturnType<typeof apiClient>)(`msgraph/calendar/schedule/${tenant}/${integration}`, {
          method: 'POST',
          tenant,
          json: { requester: agent, addresses: [agent], start: '2026-03-02T08:00:00Z', end: '2026-03-02T12:00:00Z', interval_minutes: 60 },
        });
        return { status: res.status, body: (await res.json()) as { schedules?: Array<{ address: string }> } };
      }),
    );
    expect(answers.map((a) => a.status)).toEqual(Array.from({ length: 18 }, () => 200));
    expect(answers.every((a) => a.body.schedules?.[0]?.address === agent)).toBe(true);
    const arrivals = fake.requests.filter((r) => r.mailbox === agent).map((r) => r.at);
    // One request per look-up: none lost, none repeated (a throttled retry would show here).
    expect(arrivals).toHaveLength(18);
    expect(maxInWindow(arrivals, WINDOW.intervalMs)).toBeLessThanOrEqual(WINDOW.limit);
  }, 120_000);
});
