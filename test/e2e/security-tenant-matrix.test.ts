import { tenantToken } from '../helpers/jwt';
import { fillPath, isAnonymous, isTenantScoped, jsonBodySchema, namesTenant, operations, pathParams, type Operation } from '../helpers/openapi';
import { sampleFromSchema } from '../helpers/schemaSample';
import { startSecurityWorld, type SecurityWorld } from '../helpers/securityWorld';
import { diffSnapshots, type StorageSnapshot } from '../helpers/storageSnapshot';

/**
 * The cross-tenant matrix. Every management operation of the committed openapi.json (an operation
 * that asks for a credential; each names `{tenant_id}`) is called with tenant B's valid token and the
 * function key:
 *  1. on tenant A's tenant id and A's real resource ids → 403 or 404, problem JSON;
 *  2. on B's own tenant id with A's resource ids (only operations that take a resource id besides the
 *     tenant) → 403 or 404;
 * and after each call a snapshot of every table, queue, blob container and secret equals the one taken
 * before the matrix. Anonymous operations that name a tenant and a resource (snooze links) get the
 * second half only: A's link id under B's tenant finds nothing. Bodies are generated from the operation's request schema (and checked against it),
 * so a refusal comes from authorisation, not from validation. Nothing here lists routes: a new one is a
 * new row of the matrix, and the last test fails if an operation could not be exercised.
 */
const ALL = operations();
const TENANT_OPS = ALL.filter(isTenantScoped);
/**
 * Anonymous operations that name a tenant and one of its resources in the path (a snooze link: its
 * random id is the authorisation). On A's tenant with A's id they do what the link is for, so only the
 * other half of the matrix applies: A's id under B's tenant must find nothing.
 */
const ANONYMOUS_TENANT_OPS = ALL.filter((op) => isAnonymous(op) && namesTenant(op) && pathParams(op).length > 1);
/** Query parameters that name one of a tenant's resources (filled with A's), besides required ones. */
const RESOURCE_QUERY = new Set(['integration_id', 'address', 'name', 'ticket_id']);

/** Which order each operation checks in, recorded for the README (auth before body validation or not). */
const validationOrder = new Map<string, number>();
const coveredOnA = new Set<string>();
const coveredOnB = new Set<string>();
const coveredAnonymous = new Set<string>();

describe('cross-tenant matrix (generated from openapi.json)', () => {
  let world: SecurityWorld;
  let baseline: StorageSnapshot;
  let tokenB: string;

  beforeAll(async () => {
    world = await startSecurityWorld();
    tokenB = await tenantToken(world.B.tenant);
    baseline = await world.snapshot();
  }, 180_000);

  afterAll(async () => {
    await world?.stop();
  });

  /** A's id for `integration_id` on this operation's connector (the path's first segment after /api). */
  const integrationFor = (op: Operation) => (op.path.split('/')[2] === 'msgraph' ? world.A.graphIntegration : world.A.hubspotIntegration);

  function request(op: Operation, tenant: string): { url: string; init: RequestInit } {
    const values: Record<string, string> = { ...world.A.values, integration_id: integrationFor(op), tenant_id: tenant };
    const url = new URL(`${world.host.url}${fillPath(op.path, values)}`);
    for (const p of op.parameters.filter((x) => x.in === 'query')) {
      if (p.name in values && (p.required || RESOURCE_QUERY.has(p.name))) url.searchParams.set(p.name, values[p.name] as string);
      else if (p.required) url.searchParams.set(p.name, String(sampleFromSchema(p.schema ?? { type: 'string' })));
    }
    const headers: Record<string, string> = { authorization: `Bearer ${tokenB}`, 'x-functions-key': world.host.functionKey };
    const init: RequestInit = { method: op.method, headers };
    const schema = jsonBodySchema(op);
    if (schema) {
      // Real values where a request would reach something real: A's token, a working Teams webhook.
      const body = sampleFromSchema(schema, {
        ...values,
        access_token: world.A.hubspotToken,
        webhook_url: world.teams.url('attacker'),
        url: 'https://itil.example.com/tickets/x',
        email: 'someone@example.com',
        // Values the handlers check beyond the schema (a bare domain, an end after the start): so that on
        // B's own tenant the refusal is about A's ids, not about the sample.
        domain: 'example.com',
        ...(schema.properties?.start?.type === 'string' ? { start: '2026-01-05T09:00:00Z', end: '2026-01-05T17:00:00Z' } : {}),
        properties: { subject: 'cross-tenant', hs_pipeline: '0', hs_pipeline_stage: '1' },
      });
      headers['content-type'] = 'application/json';
      init.body = JSON.stringify(body);
    }
    return { url: url.toString(), init };
  }

  async function expectRefusedAndNothingChanged(op: Operation, tenant: string): Promise<void> {
    const { url, init } = request(op, tenant);
    const res = await fetch(url, { ...init, signal: AbortSignal.timeout(30_000) });
    const text = await res.text();
    const what = `${op.method} ${new URL(url).pathname} as ${world.B.tenant} → ${res.status} ${text.slice(0, 300)}`;
    // On B's own tenant a read that filters by A's id (a ticket id) may answer B's own, empty, list.
    const emptyOwnRead = tenant === world.B.tenant && op.method === 'GET' && res.status === 200;
    expect({ what, refused: [403, 404].includes(res.status) || emptyOwnRead }).toEqual({ what, refused: true });
    // Problem JSON, or the HTML page a browser route (a snooze link) answers.
    if (!emptyOwnRead) expect(res.headers.get('content-type')).toMatch(isAnonymous(op) ? /^(application\/problem\+json|text\/html)/ : /^application\/problem\+json/);
    // Nothing of A's in the answer: its external accounts, its token, and on B's tenant its resources.
    const mine = [String(world.A.hubId), world.A.entraTenant, world.A.hubspotToken, ...(tenant === world.B.tenant ? [world.A.mailbox, world.A.ticketId, world.A.hubspotIntegration, world.A.graphIntegration, world.A.groupId, world.A.linkId] : [])];
    // (An id B itself sent may come back, in the problem's `instance`: that tells B nothing new.)
    const sent = `${decodeURIComponent(url)} ${typeof init.body === 'string' ? init.body : ''}`;
    for (const secret of mine.filter((v) => !sent.includes(v))) expect({ what, leaks: text.includes(secret) ? secret : undefined }).toEqual({ what, leaks: undefined });
    await world.settle();
    expect(diffSnapshots(baseline, await world.snapshot())).toEqual([]);
  }

  describe.each(TENANT_OPS.map((op) => [op.operationId, op] as const))('%s', (operationId, op) => {
    it("B's token on A's tenant and A's resource ids → 403/404, nothing changes", async () => {
      await expectRefusedAndNothingChanged(op, world.A.tenant);
      coveredOnA.add(operationId);
      // The order of checks, for the record: the same call with a body that is not JSON.
      if (jsonBodySchema(op)) {
        const { url, init } = request(op, world.A.tenant);
        const res = await fetch(url, { ...init, body: '{"not json', signal: AbortSignal.timeout(30_000) });
        validationOrder.set(operationId, res.status);
        expect([403, 404]).toContain(res.status);
      }
    });

    const resourceParams = [...pathParams(op).filter((p) => p !== 'tenant_id'), ...op.parameters.filter((p) => p.in === 'query' && RESOURCE_QUERY.has(p.name)).map((p) => p.name)];
    // An operation that takes only the tenant has nothing of A's to name on B's own tenant.
    if (resourceParams.length > 0) {
      it(`B's token on B's own tenant with A's ${resourceParams.join(', ')} → 403/404, nothing changes`, async () => {
        await expectRefusedAndNothingChanged(op, world.B.tenant);
        coveredOnB.add(operationId);
      });
    }
  });

  describe.each(ANONYMOUS_TENANT_OPS.map((op) => [op.operationId, op] as const))('%s (anonymous, names a tenant)', (operationId, op) => {
    it(`A's ${pathParams(op).filter((p) => p !== 'tenant_id').join(', ')} under B's tenant → 403/404, nothing changes`, async () => {
      await expectRefusedAndNothingChanged(op, world.B.tenant);
      coveredAnonymous.add(operationId);
    });
  });

  it('covered every tenant-scoped operation of openapi.json, and openapi.json lists every registered management route', async () => {
    expect([...coveredOnA].sort()).toEqual(TENANT_OPS.map((o) => o.operationId).sort());
    expect(coveredOnA.size).toBe(TENANT_OPS.length);
    expect(coveredOnB.size).toBeGreaterThan(0);
    expect([...coveredAnonymous].sort()).toEqual(ANONYMOUS_TENANT_OPS.map((o) => o.operationId).sort());
    // The registrations the host serves (its admin status), method by method, against the file.
    const status = (await (await fetch(`${world.host.url}/admin/host/status`, { headers: { 'x-functions-key': world.host.masterKey } })).json()) as { functions: Array<{ trigger: string; detail: string; authLevel?: string }> };
    const registered = status.functions
      .filter((f) => f.trigger === 'http' && f.authLevel !== 'anonymous')
      .flatMap((f) => {
        const [methods, route] = f.detail.split(' ') as [string, string];
        return methods.split(',').map((m) => `${m} ${route}`);
      });
    expect(registered.sort()).toEqual(TENANT_OPS.map((o) => `${o.method} ${o.path}`).sort());
    // Recorded for the README: every operation with a body refused a malformed one with 403 (auth first).
    // eslint-disable-next-line no-console
    console.log(`cross-tenant matrix: ${TENANT_OPS.length} operations on A's tenant, ${coveredOnB.size} on B's own tenant with A's ids, ${coveredAnonymous.size} anonymous with A's ids under B; malformed body as B on A → ${JSON.stringify(Object.fromEntries(validationOrder))}`);
  });
});
