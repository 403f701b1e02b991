import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Ajv2020 from 'ajv/dist/2020';
import addFormats from 'ajv-formats';
import { startAzurite, type AzuriteInstance } from '../../runner/azurite';
import { StorageClients } from '../../src/storage/clients';
import { integrationId, tenantId } from '../../src/storage/keys';
import { TABLES } from '../../src/storage/names';
import { IntegrationsRepository } from '../../src/storage/repositories/integrations';
import { TenantTable } from '../../src/storage/tenantTable';
import { startFakeGraph, type FakeGraph } from '../fakes/graph';
import { TEST_JWT_SECRET } from '../helpers/jwt';
import { apiClient, freePort, localAppEnv, ROOT, startRunner, type RunningHost, fakeGraphAppEnv } from '../helpers/runner';

const APP = { clientId: 'e2e-graph-dir-app', clientSecret: 'e2e-graph-dir-secret-2c9d' };

type Json = Record<string, unknown>;

/** Checks an answer against the success schema the committed openapi.json gives its operation. */
function openApiValidator() {
  const doc = JSON.parse(readFileSync(path.join(ROOT, 'openapi.json'), 'utf8')) as { paths: Record<string, Record<string, { responses: Record<string, { content?: Record<string, { schema: Json }> }> }>> };
  const ajv = new Ajv2020({ strict: false, allErrors: true });
  addFormats(ajv);
  return (route: string, method: string, status: number, body: unknown): void => {
    const schema = doc.paths[route]?.[method]?.responses[String(status)]?.content?.['application/json']?.schema;
    if (!schema) throw new Error(`openapi.json documents no ${status} answer for ${method.toUpperCase()} ${route}`);
    const validate = ajv.compile(schema);
    if (!validate(body)) throw new Error(`${method.toUpperCase()} ${route} answered outside its schema: ${ajv.errorsText(validate.errors)}`);
  };
}

/**
 * Calendar and directory routes for the engine's routing and assignment, through the local runner against the
 * fake Graph: each call runs in the integration's own Entra tenant, and tenant B reaches nothing of A's.
 */
describe('Microsoft Graph calendar and directory routes', () => {
  let azurite: AzuriteInstance;
  let fake: FakeGraph;
  let host: RunningHost;
  let tmp: string;
  let entraA: string;
  let entraB: string;
  const A = 'dir-tenant-a';
  const B = 'dir-tenant-b';
  const integrationA = integrationId('0b6a3c1e-0000-4000-8000-00000000000a');
  const integrationB = integrationId('0b6a3c1e-0000-4000-8000-00000000000b');
  const support = 'support@a.example';
  const agent = 'agent@a.example';
  const checkAnswer = openApiValidator();
  const api = apiClient(() => host);

  beforeAll(async () => {
    tmp = mkdtempSync(path.join(os.tmpdir(), 'itil-graph-dir-'));
    azurite = await startAzurite();
    fake = await startFakeGraph(APP);
    const home = fake.addTenant();
    entraA = fake.addTenant();
    entraB = fake.addTenant();
    fake.consent(entraA);
    fake.consent(entraB);
    fake.addUser(entraA, { mail: support, displayName: 'A Support' });
    fake.addUser(entraA, { mail: agent, displayName: 'A Agent', jobTitle: 'Engineer' });
    fake.addUser(entraB, { mail: 'help@b.example', displayName: 'B Help' });

    // The integrations are the fixture, not what is tested: connecting is the consent suite's subject.
    const clients = new StorageClients({ kind: 'connectionString', connectionString: azurite.connectionString });
    await clients.ensureAll();
    const integrations = new IntegrationsRepository(new TenantTable(clients.table(TABLES.integrations)));
    await integrations.create(tenantId(A), { integrationId: integrationA, type: 'msgraph', status: 'active', externalAccountId: entraA });
    await integrations.create(tenantId(B), { integrationId: integrationB, type: 'msgraph', status: 'active', externalAccountId: entraB });

    const caFile = path.join(tmp, 'fake-graph-ca.pem');
    writeFileSync(caFile, fake.ca);
    const port = await freePort();
    host = await startRunner({
      port,
      env: {
        ...localAppEnv({ storage: azurite.connectionString, secretKey: randomBytes(32).toString('base64'), secretDir: path.join(tmp, 'secrets'), jwtSecret: TEST_JWT_SECRET, publicBaseUrl: `http://127.0.0.1:${port}` }),
        ...fakeGraphAppEnv({ app: APP, homeTenant: home, fakeUrl: fake.url, caFile }),
      },
    });
  });

  afterAll(async () => {
    await host?.stop();
    await fake?.stop();
    await azurite?.stop();
    rmSync(tmp, { recursive: true, force: true });
  });

  const event = (over: Json = {}) => ({
    mailbox: agent,
    subject: 'INC-42 on-site visit',
    start: { dateTime: '2026-03-02T09:00:00', timeZone: 'UTC' },
    end: { dateTime: '2026-03-02T10:30:00', timeZone: 'UTC' },
    attendees: [{ address: support }],
    transaction_id: 'INC-42-visit',
    ...over,
  });

  it('creates an event on a user calendar once, however often the engine retries it', async () => {
    const first = await api(`msgraph/calendar/events/${A}/${integrationA}`, { method: 'POST', tenant: A, json: event() });
    expect(first.status).toBe(201);
    const created = (await first.json()) as Json;
    checkAnswer('/api/msgraph/calendar/events/{tenant_id}/{integration_id}', 'post', 201, created);
    const again = await api(`msgraph/calendar/events/${A}/${integrationA}`, { method: 'POST', tenant: A, json: event() });
    expect(((await again.json()) as Json).id).toBe(created.id);
    const stored = fake.events(entraA, agent);
    expect(stored).toHaveLength(1);
    expect(stored[0]).toMatchObject({ subject: 'INC-42 on-site visit', calendarId: 'default', showAs: 'busy', attendees: [{ emailAddress: { address: support }, type: 'required' }] });
  });

  it('creates an event on a shared calendar, and answers 404 for a calendar that does not exist', async () => {
    const shared = fake.addCalendar(entraA, support, 'Field visits');
    const res = await api(`msgraph/calendar/events/${A}/${integrationA}`, { method: 'POST', tenant: A, json: event({ mailbox: support, calendar_id: shared, transaction_id: 'INC-43' }) });
    expect(res.status).toBe(201);
    expect(fake.events(entraA, support).map((e) => e.calendarId)).toEqual([shared]);
    const missing = await api(`msgraph/calendar/events/${A}/${integrationA}`, { method: 'POST', tenant: A, json: event({ mailbox: support, calendar_id: 'AAMkNoSuchCalendar', transaction_id: 'INC-44' }) });
    expect(missing.status).toBe(404);
    expect(missing.headers.get('content-type')).toMatch(/application\/problem\+json/);
  });

  it('reads free/busy, with the busy slot the event above made', async () => {
    const res = await api(`msgraph/calendar/schedule/${A}/${integrationA}`, {
      method: 'POST',
      tenant: A,
      json: { requester: support, addresses: [agent, 'ghost@a.example'], start: '2026-03-02T08:00:00Z', end: '2026-03-02T12:00:00Z', interval_minutes: 60 },
    });
    expect(res.status).toBe(200);
    const body = (await res.json()) as { schedules: Array<{ address: string; availability_view: string; busy: unknown[]; error: string | null }> };
    checkAnswer('/api/msgraph/calendar/schedule/{tenant_id}/{integration_id}', 'post', 200, body);
    expect(body.schedules[0]).toMatchObject({ address: agent, availability_view: '0220', error: null });
    expect(body.schedules[0]?.busy).toHaveLength(1);
    expect(body.schedules[1]?.error).toMatch(/not in this organization/);
  });

  it('refuses a schedule query Graph would refuse, before calling it', async () => {
    const before = fake.requests.length;
    for (const bad of [
      { requester: support, addresses: [], start: '2026-03-02T08:00:00Z', end: '2026-03-02T12:00:00Z' },
      { requester: support, addresses: [agent], start: '2026-03-02T12:00:00Z', end: '2026-03-02T08:00:00Z' },
      { requester: support, addresses: [agent], start: '2026-01-01T00:00:00Z', end: '2026-04-01T00:00:00Z' },
      { requester: support, addresses: Array.from({ length: 101 }, (_, i) => `u${i}@a.example`), start: '2026-03-02T08:00:00Z', end: '2026-03-02T12:00:00Z' },
    ]) {
      const res = await api(`msgraph/calendar/schedule/${A}/${integrationA}`, { method: 'POST', tenant: A, json: bad });
      expect(res.status).toBe(400);
    }
    expect(fake.requests.length).toBe(before);
  });

  it('finds a user by email, and answers 404 for an address nobody has', async () => {
    const res = await api(`msgraph/users/${A}/${integrationA}?email=${encodeURIComponent('AGENT@a.example')}`, { tenant: A });
    expect(res.status).toBe(200);
    const user = (await res.json()) as Json;
    checkAnswer('/api/msgraph/users/{tenant_id}/{integration_id}', 'get', 200, user);
    expect(user).toMatchObject({ mail: agent, display_name: 'A Agent', job_title: 'Engineer' });
    expect((await api(`msgraph/users/${A}/${integrationA}?email=nobody@a.example`, { tenant: A })).status).toBe(404);
  });

  it("lists a group's members transitively, across Graph's pages", async () => {
    const many = Array.from({ length: 1_050 }, (_, i) => fake.addUser(entraA, { mail: `member${i}@a.example` }).id);
    const inner = fake.addGroup(entraA, 'Inner', many);
    const outerUser = fake.addUser(entraA, { mail: 'lead@a.example' });
    const outer = fake.addGroup(entraA, 'Service desk', [outerUser.id, inner.id]);

    const res = await api(`msgraph/groups/${A}/${integrationA}/${outer.id}/members`, { tenant: A });
    expect(res.status).toBe(200);
    const body = (await res.json()) as { members: Array<{ id: string; kind: string }>; transitive: boolean };
    checkAnswer('/api/msgraph/groups/{tenant_id}/{integration_id}/{group_id}/members', 'get', 200, body);
    expect(body.transitive).toBe(true);
    expect(body.members.filter((m) => m.kind === 'user').map((m) => m.id).sort()).toEqual([outerUser.id, ...many].sort());
    expect(body.members.filter((m) => m.kind === 'group').map((m) => m.id)).toEqual([inner.id]);

    const direct = (await (await api(`msgraph/groups/${A}/${integrationA}/${outer.id}/members?transitive=false`, { tenant: A })).json()) as { members: Array<{ id: string }> };
    expect(direct.members.map((m) => m.id).sort()).toEqual([outerUser.id, inner.id].sort());
  });

  it("gives tenant B nothing of A's: not A's integration, and not A's organisation through B's own", async () => {
    // B's token on A's tenant id.
    expect((await api(`msgraph/users/${A}/${integrationA}?email=${agent}`, { tenant: B })).status).toBe(403);
    // B's token on its own tenant with A's integration id.
    expect((await api(`msgraph/users/${B}/${integrationA}?email=${agent}`, { tenant: B })).status).toBe(404);
    const created = await api(`msgraph/calendar/events/${B}/${integrationA}`, { method: 'POST', tenant: B, json: event({ transaction_id: 'B-try' }) });
    expect(created.status).toBe(404);
    // B's own integration reaches only B's Entra tenant, where A's people do not exist.
    expect((await api(`msgraph/users/${B}/${integrationB}?email=${agent}`, { tenant: B })).status).toBe(404);
    const viaB = await api(`msgraph/calendar/events/${B}/${integrationB}`, { method: 'POST', tenant: B, json: event({ transaction_id: 'B-own' }) });
    expect(viaB.status).toBe(404);
    expect(fake.events(entraA, agent).map((e) => e.transactionId)).toEqual(['INC-42-visit']);
  });
});
