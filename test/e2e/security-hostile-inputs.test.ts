import http from 'node:http';
import fc from 'fast-check';
import { isAnonymous, methodsOfPath, operations, fillPath, pathParams, type Operation } from '../helpers/openapi';
import { TestBrowser } from '../helpers/browser';
import { StorageClients } from '../../src/storage/clients';
import { partitionKey } from '../../src/storage/keys';
import { TABLES } from '../../src/storage/names';
import { TenantTable } from '../../src/storage/tenantTable';
import { registerSecret } from '../helpers/secretScan';
import { startSecurityWorld, type SecurityWorld } from '../helpers/securityWorld';
import { diffSnapshots, type StorageSnapshot } from '../helpers/storageSnapshot';

/**
 * Hostile inputs for every anonymous route of the committed openapi.json (webhooks, OAuth start pages
 * and callbacks, snooze, health, openapi, asyncapi and whatever is added later): CASES_PER_ROUTE generated requests each, with
 * fast-check — malformed and truncated JSON, wrong types, deep nesting, huge strings, invalid UTF-8,
 * forged, stale, tampered and replayed HubSpot v3 signatures, forged, replayed and browser-bound OAuth
 * states and start tickets, tampered and spent snooze link ids, Graph handshakes and forged clientStates, wrong methods and content types — against
 * one local runner. Every answer is a 4xx or the route's documented answer (DOCUMENTED_2XX), never a
 * 5xx, never slower than the per-request timeout; errors are problem JSON (an HTML page on browser
 * routes); and after each route's cases a snapshot of every table, queue, blob and secret equals the one
 * taken before. The review findings it locks are in FIXED_FINDINGS; the one defect still open (bare
 * refusals on the Graph notification routes) is a `test.failing` per route (BARE_ERROR_ROUTES).
 */
export const CASES_PER_ROUTE = 200;
const REQUEST_TIMEOUT_MS = 10_000;

/**
 * 2xx answers a route documents for requests that change nothing: a replayed HubSpot delivery is
 * acknowledged (204, duplicate), a Graph notification is acknowledged (202, unverified items dropped)
 * and a Graph validation handshake is echoed (200 text/plain); health and the OpenAPI and AsyncAPI
 * documents answer anyone. A case may name its own answers (a live snooze link's confirm page: 200). A route not named here may answer only 4xx to hostile input.
 */
const DOCUMENTED_2XX: Record<string, number[]> = {
  hubspotWebhook: [204],
  graphNotifications: [200, 202],
  graphLifecycle: [200, 202],
  health: [200],
  openapi: [200],
  asyncapi: [200],
};
/** Documented non-2xx answers besides 4xx: health says 503 when a required part is down. */
const DOCUMENTED_OTHER: Record<string, number[]> = { health: [503] };

/**
 * Review findings (issue 11) that this suite locks now that they are fixed: each has a case below that
 * failed on the code before its fix.
 */
const FIXED_FINDINGS = {
  /** Finding 1: Graph admin consent trusted the unauthenticated `tenant` query parameter. */
  forgedGraphConsent: 1,
  /** Finding 4: every anonymous /api/health request called storage, the secret store and HubSpot. */
  healthCostsCalls: 4,
  /** Finding 10: bodies without Content-Length were read whole before the size check. */
  endlessChunkedBody: 10,
} as const;

/**
 * Not a numbered finding, found by this suite: the Graph notification routes answer a refused delivery
 * with a bare status (no body, no type) instead of problem JSON. Bare answers are tolerated for these
 * routes in the property, and a `test.failing` per route asks for problem JSON; remove an entry when
 * the webhook intake rewrite answers problem JSON.
 */
const BARE_ERROR_ROUTES = new Set<string>();

const ANONYMOUS = operations().filter(isAnonymous);
const ALL_METHODS = ['GET', 'POST', 'PUT', 'DELETE', 'PATCH'];

/** A browser route answers an HTML page (callbacks, snooze): the openapi summary says so, or it is an OAuth redirect target. */
const isBrowserRoute = (op: Operation) => /html/i.test(op.summary ?? '') || op.path.includes('/oauth/');

interface HostileCase {
  label: string;
  method: string;
  /** Path and query, relative to the host. */
  target: string;
  headers: Record<string, string>;
  body?: Buffer;
  /** When set, only these statuses are right for this case. */
  expect?: number[];
}

interface Answer {
  status: number;
  contentType: string;
  body: string;
}

// ---------------------------------------------------------------------------------------------------
// Generators
// ---------------------------------------------------------------------------------------------------

const nasty = fc.constantFrom('', ' ', '%', '%zz', '%00', '\u0000', '\uFFFF', '\u202Eevil', '../../../etc/passwd', '<script>alert(1)</script>', "' OR 1=1 --", '${jndi:ldap://x/a}', '{{7*7}}', 'null', 'undefined', '[]', '{}', 'true', '-1', '1e309', 'NaN', '\r\nX-Injected: 1');
const hostileString = fc.oneof(
  { weight: 3, arbitrary: fc.string({ maxLength: 40 }) },
  { weight: 2, arbitrary: fc.string({ unit: 'grapheme', maxLength: 40 }) },
  { weight: 3, arbitrary: nasty },
  { weight: 1, arbitrary: fc.integer({ min: 1_000, max: 6_000 }).map((n) => 'A'.repeat(n)) },
  { weight: 1, arbitrary: fc.base64String({ minLength: 4, maxLength: 400 }) },
);
/** Bytes that are not UTF-8: lone continuation bytes, overlong forms, surrogates, 0xFF. */
const invalidUtf8 = fc
  .array(fc.constantFrom([0xff], [0xfe, 0xff], [0x80], [0xc0, 0xaf], [0xe0, 0x80, 0xaf], [0xed, 0xa0, 0x80], [0xf8, 0x88, 0x80, 0x80, 0x80], [0x22], [0x7b], [0x5b]), { minLength: 1, maxLength: 40 })
  .map((parts) => Buffer.from(parts.flat()));
const truncatedJson = fc.jsonValue({ maxDepth: 4 }).chain((v) => {
  const s = JSON.stringify(v) ?? 'null';
  return fc.nat({ max: Math.max(0, s.length - 1) }).map((n) => s.slice(0, n));
});
const deepNesting = fc.tuple(fc.integer({ min: 200, max: 20_000 }), fc.constantFrom('[', '{"a":')).map(([n, open]) => (open === '[' ? '['.repeat(n) + ']'.repeat(n) : '{"a":'.repeat(n) + '1' + '}'.repeat(n)));
const hugeString = fc.integer({ min: 64 * 1024, max: 600 * 1024 }).map((n) => JSON.stringify([{ value: 'x'.repeat(n) }]));
const wrongTypes = fc.jsonValue({ maxDepth: 3 }).map((v) => JSON.stringify(v) ?? 'null');
const hostileBody = fc.oneof(
  wrongTypes.map((s) => ({ kind: 'wrong types', bytes: Buffer.from(s) })),
  truncatedJson.map((s) => ({ kind: 'truncated JSON', bytes: Buffer.from(s) })),
  deepNesting.map((s) => ({ kind: 'deep nesting', bytes: Buffer.from(s) })),
  hugeString.map((s) => ({ kind: 'huge string', bytes: Buffer.from(s) })),
  invalidUtf8.map((b) => ({ kind: 'invalid UTF-8', bytes: b })),
  fc.constant({ kind: 'empty', bytes: Buffer.alloc(0) }),
);
const contentType = fc.constantFrom<string | undefined>(undefined, 'application/json', 'application/json; charset=utf-8', 'text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x', 'application/xml', 'application/json; charset=utf-16', '*/*', 'application/octet-stream');

/** Query parameter names worth trying: the operation's own and the ones our routes read anywhere. */
const paramNames = (op: Operation) => fc.constantFrom(...new Set([...op.parameters.filter((p) => p.in === 'query').map((p) => p.name), 'state', 'ticket', 'code', 'token', 'tenant', 'admin_consent', 'validationToken', 'error', 'x']));

/** A middle character of `s` changed (not the last ones: base64 padding bits could leave it equal). */
const tampered = (s: string) =>
  fc.integer({ min: 0, max: Math.max(0, s.length - 3) }).chain((i) =>
    fc.constantFrom('A', 'B', '_', '-', '0').filter((c) => c !== s[i]).map((c) => s.slice(0, i) + c + s.slice(i + 1)),
  );

describe('hostile inputs on every anonymous route (generated from openapi.json)', () => {
  let world: SecurityWorld;
  let baseline: StorageSnapshot;
  /** Real but spent or unusable things to replay and tamper with. */
  const real = {
    hubspotStates: [] as string[],
    graphStates: [] as string[],
    /** Start-page tickets already used (replays) and never used (only ever sent tampered: a real one would start a flow). */
    spentTickets: [] as string[],
    liveTickets: [] as string[],
    snoozeLink: '',
    spentSnoozeLink: '',
    delivery: { body: '', headers: {} as Record<string, string> },
    subscriptionId: '',
    entraA: '',
    entraB: '',
    graphIntegrationB: '',
    graphBrowserB: new TestBrowser(),
  };

  beforeAll(async () => {
    world = await startSecurityWorld();
    const { api, A, B, hubspot, teams } = world;
    real.entraA = A.entraTenant;
    real.subscriptionId = world.graph.subscriptions().find((s) => s.tenantId === A.entraTenant)?.id ?? '';

    // A HubSpot OAuth connection of B's through its browser (authorize → start page → callback): its
    // ticket and state are spent (replays); a second flow is left open at the consent page (its state
    // live, but bound to a browser no hostile case has), and a third authorize's ticket is never opened.
    const portal = hubspot.addPortal({ hubDomain: 'b.hubspot.com' }).hubId;
    const hubspotStart = async (browser: TestBrowser) => {
      const auth = (await (await api(`hubspot/authorize/${B.tenant}`, { tenant: B.tenant })).json()) as { authorization_url: string };
      const res = await browser.get(auth.authorization_url);
      expect(res.status).toBe(302);
      return { ticket: new URL(auth.authorization_url).searchParams.get('ticket') as string, state: new URL(res.location as string).searchParams.get('state') as string };
    };
    const browserB = new TestBrowser();
    const spent = await hubspotStart(browserB);
    const cb = await browserB.get(`${world.publicBase}/api/hubspot/oauth/callback?${new URLSearchParams({ code: hubspot.issueAuthorizationCode(portal, `${world.publicBase}/api/hubspot/oauth/callback`), state: spent.state }).toString()}`);
    expect(cb.status).toBe(200);
    const open = await hubspotStart(new TestBrowser());
    const unopened = (await (await api(`hubspot/authorize/${B.tenant}`, { tenant: B.tenant })).json()) as { authorization_url: string };
    real.hubspotStates = [spent.state, open.state];
    real.spentTickets.push(spent.ticket, open.ticket);
    real.liveTickets.push(new URL(unopened.authorization_url).searchParams.get('ticket') as string);

    // A Microsoft 365 flow of B's: its admin signs in at the fake Microsoft; the browser stops at the
    // admin consent page (B's organisation never consents). Its sign-in and consent states are spent or
    // bound to B's browser; B's cookie is kept for the forged-consent case (finding 1).
    real.entraB = world.graph.addTenant();
    world.graph.addUser(real.entraB, { mail: 'admin@b.example' });
    world.graph.signIn(real.entraB, 'admin@b.example');
    const graphAuth = (await (await api(`msgraph/authorize/${B.tenant}`, { tenant: B.tenant })).json()) as { authorize_url: string; integration_id: string };
    real.graphIntegrationB = graphAuth.integration_id;
    real.graphBrowserB = new TestBrowser(world.graph.ca);
    const graphHops = await real.graphBrowserB.follow(graphAuth.authorize_url, 3);
    expect(graphHops.map((h) => h.status)).toEqual([302, 302, 302]);
    const signInState = new URL(graphHops[1]?.url as string).searchParams.get('state') as string;
    const consent = new URL(graphHops[2]?.location as string);
    expect(consent.pathname).toBe(`/${real.entraB}/v2.0/adminconsent`);
    world.graph.signOut();
    real.graphStates = [signInState, consent.searchParams.get('state') as string];
    real.spentTickets.push(new URL(graphAuth.authorize_url).searchParams.get('ticket') as string);
    const graphUnopened = (await (await api(`msgraph/authorize/${B.tenant}?integration_id=${real.graphIntegrationB}`, { tenant: B.tenant })).json()) as { authorize_url: string };
    real.liveTickets.push(new URL(graphUnopened.authorize_url).searchParams.get('ticket') as string);
    [...real.hubspotStates, ...real.graphStates, ...real.spentTickets, ...real.liveTickets].forEach((s) => registerSecret(s, 'OAuth state or start ticket'));

    // Two SLA warning cards with snooze links (`/api/teams/snooze/{tenant}/{link id}`): the first stays
    // live (its confirm page is shown, it is never posted; tampered copies are sent), the second is
    // redeemed once here, so every later post of it is a replay.
    const sla = teams.url(`${A.tenant}-sla`);
    expect((await api(`teams/channels/${A.tenant}`, { tenant: A.tenant, method: 'PUT', json: { channels: [{ name: 'critical', webhook_url: teams.url(`${A.tenant}-critical2`) }, { name: 'sla-breaches', webhook_url: sla }], settings: { gather_seconds: 0 } } })).status).toBe(200);
    const snoozeLinkOf = async (id: string, nth: number) => {
      const ticket = { id, title: 'Printer', priority: 'P2', status: 'Open', url: `https://itil.example.com/tickets/${id}` };
      expect((await api(`teams/notify/${A.tenant}`, { tenant: A.tenant, method: 'POST', json: { kind: 'sla_warning', ticket, time_remaining_minutes: 20 } })).status).toBe(202);
      const deadline = Date.now() + 30_000;
      for (;;) {
        const actions = (teams.accepted(`${A.tenant}-sla`)[nth]?.card?.actions ?? []) as Array<{ type: string; url?: string }>;
        const url = actions.find((a) => a.type === 'Action.OpenUrl' && /snooze/i.test(a.url ?? ''))?.url;
        if (url) return url;
        if (Date.now() > deadline) throw new Error(`no snooze link on the card of ${id}`);
        await new Promise((r) => setTimeout(r, 100));
      }
    };
    real.snoozeLink = await snoozeLinkOf('A-SLA', 0);
    real.spentSnoozeLink = await snoozeLinkOf('A-SLA2', 1);
    for (const link of [real.snoozeLink, real.spentSnoozeLink]) {
      registerSecret(link, 'snooze link');
      registerSecret(new URL(link).pathname.split('/').pop() as string, 'snooze link id');
    }
    const redeemed = await fetch(new URL(new URL(real.spentSnoozeLink).pathname, world.host.url), { method: 'POST' });
    expect(redeemed.status).toBe(200);

    // A signed HubSpot delivery about A's portal, accepted once: every later copy is a replay.
    const body = JSON.stringify([hubspot.webhookEvent(A.hubId, { subscriptionType: 'ticket.propertyChange', objectId: 1, propertyName: 'subject' })]);
    const ts = Date.now();
    real.delivery = { body, headers: { 'content-type': 'application/json', 'x-hubspot-signature-v3': hubspot.signV3('POST', `${world.publicBase}/api/webhooks/hubspot`, body, ts), 'x-hubspot-request-timestamp': String(ts) } };
    expect((await fetch(`${world.host.url}/api/webhooks/hubspot`, { method: 'POST', headers: real.delivery.headers, body })).status).toBe(204);

    await world.settle();
    baseline = await world.snapshot();
  }, 180_000);

  afterAll(async () => {
    await world?.stop();
  });

  /** Signature headers for a body: none, forged, stale, from the future, for another body, legacy-only, or the replayed delivery's. */
  const hubspotSignature = (body: Buffer) =>
    fc.constantFrom('none', 'forged', 'stale', 'future', 'other-body', 'not-a-number', 'legacy-only').chain((kind) =>
      fc.base64String({ minLength: 44, maxLength: 44 }).map((junk) => ({ kind, headers: signatureHeaders(kind, body, junk) })),
    );

  function signatureHeaders(kind: string, body: Buffer, junk: string): Record<string, string> {
    const uri = `${world.publicBase}/api/webhooks/hubspot`;
    const sign = (ts: number, over = body.toString('utf8')) => world.hubspot.signV3('POST', uri, over, ts);
    const now = Date.now();
    switch (kind) {
      case 'none':
        return {};
      case 'forged':
        return { 'x-hubspot-signature-v3': junk, 'x-hubspot-request-timestamp': String(now) };
      case 'stale':
        return { 'x-hubspot-signature-v3': sign(now - 6 * 60_000), 'x-hubspot-request-timestamp': String(now - 6 * 60_000) };
      case 'future':
        return { 'x-hubspot-signature-v3': sign(now + 6 * 60_000), 'x-hubspot-request-timestamp': String(now + 6 * 60_000) };
      case 'other-body':
        // Right secret, right time, but over other bytes than those sent.
        return { 'x-hubspot-signature-v3': sign(now, `${body.toString('utf8')} `), 'x-hubspot-request-timestamp': String(now) };
      case 'not-a-number':
        return { 'x-hubspot-signature-v3': junk, 'x-hubspot-request-timestamp': 'yesterday' };
      default:
        return { 'x-hubspot-signature': junk.slice(0, 40), 'x-hubspot-signature-version': 'v1' };
    }
  }

  /** Graph deliveries about A's real subscription with a forged clientState, or about nothing at all. */
  const graphDelivery = fc
    .record({
      subscriptionId: fc.oneof(fc.constant(''), fc.uuid(), hostileString).map((s) => s || real.subscriptionId),
      clientState: hostileString,
      changeType: fc.oneof(fc.constantFrom('created', 'updated', 'deleted'), hostileString),
      lifecycleEvent: fc.constantFrom('reauthorizationRequired', 'subscriptionRemoved', 'missed'),
      tenantId: fc.oneof(fc.constant(''), fc.uuid()).map((s) => s || real.entraA),
      resource: hostileString,
      count: fc.integer({ min: 1, max: 3 }),
    })
    .map((d) => Buffer.from(JSON.stringify({ value: Array.from({ length: d.count }, () => ({ subscriptionId: d.subscriptionId, clientState: d.clientState, changeType: d.changeType, lifecycleEvent: d.lifecycleEvent, tenantId: d.tenantId, resource: d.resource })) })));

  /** A well-formed batch about A's portal, about objects never delivered before. */
  const freshBatch = fc.integer({ min: 1_000_000, max: 9_999_999 }).map((objectId) => Buffer.from(JSON.stringify([world.hubspot.webhookEvent(world.A.hubId, { subscriptionType: 'ticket.creation', objectId })])));

  /** One generated request for `op`. */
  function caseFor(op: Operation): fc.Arbitrary<HostileCase> {
    const declared = methodsOfPath(ANONYMOUS, op.path);
    const others = ALL_METHODS.filter((m) => !declared.includes(m));
    // A path parameter gets hostile text, or (a token moved into the path) the real snooze link's last segment tampered with.
    const lastSegment = real.snoozeLink ? (new URL(real.snoozeLink).pathname.split('/').pop() ?? '') : '';
    const pathValue = () => fc.oneof(hostileString.filter((s) => s.length > 0), ...(lastSegment.length > 3 ? [tampered(lastSegment)] : []));
    const target = fc
      .tuple(
        fc.record(Object.fromEntries(pathParams(op).map((p) => [p, pathValue()]))) as fc.Arbitrary<Record<string, string>>,
        fc.array(fc.tuple(paramNames(op), stateOrHostile()), { maxLength: 4 }),
      )
      .map(([params, query]) => {
        const qs = new URLSearchParams(query).toString();
        return `${fillPath(op.path, params)}${qs ? `?${qs}` : ''}`;
      });
    const wrongMethod = fc.tuple(fc.constantFrom(...(others.length ? others : ['PATCH'])), target).map(([method, t]): HostileCase => ({ label: `wrong method ${method}`, method, target: t, headers: {}, expect: [404, 405] }));
    const withBody = fc.tuple(target, hostileBody, contentType).map(([t, b, ct]): HostileCase => ({ label: `${b.kind} as ${ct ?? 'no content-type'}`, method: op.method, target: t, headers: ct ? { 'content-type': ct } : {}, body: b.bytes }));
    const plain = fc.tuple(target, fc.dictionary(fc.constantFrom('accept', 'content-type', 'x-correlation-id', 'cookie', 'x-forwarded-host', 'origin'), fc.string({ maxLength: 60 }).map((s) => s.replace(/[^\x20-\x7e]/g, '')), { maxKeys: 3 })).map(([t, h]): HostileCase => ({ label: 'hostile query and headers', method: op.method, target: t, headers: h }));
    const special = specialCases(op);
    const options = [wrongMethod, plain, ...(op.method === 'POST' ? [withBody] : []), ...special];
    return fc.oneof(...options);
  }

  /**
   * A state or ticket value: hostile, a tampered real one, or a real one sent as is: spent states and
   * tickets (replays) and live states (each bound to a browser whose cookie no case carries). A live
   * ticket is only ever sent tampered: as is, it would rightly start a flow.
   */
  function stateOrHostile(): fc.Arbitrary<string> {
    const asIs = [...real.hubspotStates, ...real.graphStates, ...real.spentTickets];
    const reals = [...asIs, ...real.liveTickets];
    return fc.oneof({ weight: 3, arbitrary: hostileString }, ...(reals.length ? [{ weight: 2, arbitrary: fc.constantFrom(...reals).chain(tampered) }, { weight: 1, arbitrary: fc.constantFrom(...asIs) }] : []));
  }

  /** Route-specific cases: signatures, Graph handshakes and deliveries, callback form posts, the snooze link. */
  function specialCases(op: Operation): Array<fc.Arbitrary<HostileCase>> {
    const out: Array<fc.Arbitrary<HostileCase>> = [];
    if (op.operationId === 'hubspotWebhook') {
      out.push(
        // A hostile body, the delivered one, or a fresh, well-formed batch about A's portal that would be
        // queued if its signature were believed: none of them is signed right, so each must be a 401 (or a
        // 413 first, for a body over the limit).
        fc.tuple(fc.oneof(hostileBody.map((b) => b.bytes), fc.constant(Buffer.from(real.delivery.body)), freshBatch), contentType).chain(([body, ct]) =>
          hubspotSignature(body).map((sig): HostileCase => ({ label: `signature ${sig.kind}`, method: 'POST', target: op.path, headers: { ...(ct ? { 'content-type': ct } : {}), ...sig.headers }, body, expect: [401, 413] })),
        ),
        fc.constant<HostileCase>({ label: 'replayed signed delivery', method: 'POST', target: op.path, headers: real.delivery.headers, body: Buffer.from(real.delivery.body), expect: [204, 401] }),
      );
    }
    if (op.operationId === 'graphNotifications' || op.operationId === 'graphLifecycle') {
      out.push(
        fc.tuple(graphDelivery, contentType).map(([body, ct]): HostileCase => ({ label: 'forged clientState', method: 'POST', target: op.path, headers: ct ? { 'content-type': ct } : { 'content-type': 'application/json' }, body })),
        hostileString.map((t): HostileCase => ({ label: 'validation handshake', method: 'POST', target: `${op.path}?validationToken=${encodeURIComponent(t)}`, headers: {} })),
      );
    }
    if (op.path.includes('/oauth/') && op.method === 'POST') {
      out.push(
        fc.tuple(fc.array(fc.tuple(paramNames(op), stateOrHostile()), { maxLength: 4 }), fc.constantFrom('application/x-www-form-urlencoded', 'application/json', 'text/plain')).map(([pairs, ct]): HostileCase => ({
          label: `form post as ${ct}`,
          method: 'POST',
          target: op.path,
          headers: { 'content-type': ct },
          body: Buffer.from(ct === 'application/json' ? JSON.stringify(Object.fromEntries(pairs)) : new URLSearchParams(pairs).toString()),
        })),
      );
    }
    if (real.snoozeLink && /snooze/i.test(op.path)) {
      // The real links: the live one with its id tampered with (→ 4xx), the spent one replayed (→ 4xx),
      // and the live one's confirm page as is (a GET, which shows the page and never snoozes: 200).
      const live = new URL(real.snoozeLink).pathname;
      const id = live.split('/').pop() as string;
      const prefix = live.slice(0, live.length - id.length);
      out.push(
        tampered(id).map((bad): HostileCase => ({ label: 'tampered link id', method: op.method, target: `${prefix}${bad}`, headers: {}, expect: [400, 404] })),
        fc.constant<HostileCase>({ label: 'spent link replayed', method: op.method, target: new URL(real.spentSnoozeLink).pathname, headers: {}, expect: [410] }),
      );
      if (op.method === 'GET') out.push(fc.constant<HostileCase>({ label: 'live link confirm page', method: 'GET', target: live, headers: {}, expect: [200] }));
    }
    return out;
  }

  async function send(c: HostileCase): Promise<Answer> {
    const res = await fetch(`${world.host.url}${c.target}`, {
      method: c.method,
      headers: c.headers,
      ...(c.body !== undefined && c.method !== 'GET' && c.method !== 'HEAD' ? { body: new Uint8Array(c.body) } : {}),
      signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
    });
    return { status: res.status, contentType: res.headers.get('content-type') ?? '', body: await res.text() };
  }

  /** The rules every answer keeps; returns a reason when one is broken. */
  function judge(op: Operation, c: HostileCase, a: Answer): string | undefined {
    if (c.expect && !c.expect.includes(a.status)) return `expected ${c.expect.join('/')} for ${c.label}`;
    // A case that names its answers was checked above; any other answers a 4xx or the route's documented one.
    const okStatus = c.expect !== undefined || (a.status >= 400 && a.status < 500) || (DOCUMENTED_2XX[op.operationId] ?? []).includes(a.status) || (DOCUMENTED_OTHER[op.operationId] ?? []).includes(a.status);
    if (!okStatus) return `status ${a.status} is neither a 4xx nor documented for ${op.operationId}`;
    if (a.status >= 400) {
      // The runner answers an unknown method or path with an empty 404 (as the host does), and Node
      // refuses an oversized URL with an empty 431 before the app sees it.
      const bare = a.body.length === 0 && ([404, 405, 413, 414, 431].includes(a.status) || BARE_ERROR_ROUTES.has(op.operationId));
      const problem = /^application\/problem\+json/.test(a.contentType);
      const html = isBrowserRoute(op) && /^text\/html/.test(a.contentType);
      if (!bare && !problem && !html) return `error answer is ${a.contentType || 'untyped'}, not problem JSON${isBrowserRoute(op) ? ' or an HTML page' : ''}`;
      if (problem) {
        const p = JSON.parse(a.body) as { status?: number; title?: string };
        if (p.status !== a.status || typeof p.title !== 'string') return 'problem JSON without its status and title';
      }
    }
    if (c.label === 'validation handshake' && a.status === 200 && !/^text\/plain/.test(a.contentType)) return 'handshake answered without text/plain';
    return undefined;
  }

  describe.each(ANONYMOUS.map((op) => [`${op.method} ${op.path} (${op.operationId})`, op] as const))('%s', (_name, op) => {
    it(`${CASES_PER_ROUTE} generated hostile requests: 4xx or the documented answer, never 5xx or a hang, nothing changes`, async () => {
      const seen = new Map<string, number>();
      await fc.assert(
        fc.asyncProperty(caseFor(op), async (c) => {
          seen.set(c.label, (seen.get(c.label) ?? 0) + 1);
          const answer = await send(c);
          const broken = judge(op, c, answer);
          if (broken) throw new Error(`${broken}: ${c.method} ${c.target.slice(0, 200)} [${c.label}] → ${answer.status} ${answer.contentType} ${answer.body.slice(0, 200)}`);
        }),
        { numRuns: CASES_PER_ROUTE, seed: Number(process.env.HOSTILE_SEED ?? 20261204), endOnFailure: true },
      );
      expect([...seen.values()].reduce((a, b) => a + b, 0)).toBe(CASES_PER_ROUTE);
      await world.settle();
      expect(diffSnapshots(baseline, await world.snapshot())).toEqual([]);
    }, 120_000);

    if (op.method === 'POST') {
      it('a chunked body past the limit (no Content-Length) → 413 or another 4xx, nothing changes', async () => {
        const a = await sendChunked(op.path, 2 * 1024 * 1024, true);
        expect(a.status).toBeGreaterThanOrEqual(400);
        expect(a.status).toBeLessThan(500);
        await world.settle();
        expect(diffSnapshots(baseline, await world.snapshot())).toEqual([]);
      });
      // Finding 10 (fixed): one bounded reader stops at the limit, so even a body that never ends is
      // answered 413 once past it (before: read to its end, never answered).
      it(`finding ${FIXED_FINDINGS.endlessChunkedBody}: a chunked body that never ends is answered 413 once past the limit, nothing changes`, async () => {
        const a = await sendChunked(op.path, 4 * 1024 * 1024, false);
        expect(a.status).toBe(413);
        await world.settle();
        expect(diffSnapshots(baseline, await world.snapshot())).toEqual([]);
      }, 20_000);
    }

    if (op.operationId === 'graphNotifications' || op.operationId === 'graphLifecycle') {
      it('a malformed delivery is refused with problem JSON', async () => {
        const a = await send({ label: 'malformed', method: op.method, target: op.path, headers: { 'content-type': 'application/json' }, body: Buffer.from('{"value": [') });
        expect(a.status).toBe(400);
        expect(a.contentType).toMatch(/^application\/problem\+json/);
      });
    }
  });

  // Finding 1 (fixed): a tenant with a flow of its own names another organisation in the consent
  // callback. The Entra tenant now comes from the signed-in admin's verified id_token, carried in the
  // signed consent state, and must equal the callback's `tenant`: the forged callback connects nothing,
  // whether sent directly (the review's attack), from B's own browser with B's live consent state, or
  // with B's spent sign-in state.
  it(`finding ${FIXED_FINDINGS.forgedGraphConsent}: a forged Graph consent callback (B's own flow, the victim's tenant) connects nothing`, async () => {
    const callback = ANONYMOUS.find((o) => o.path.includes('/msgraph/') && o.path.endsWith('/oauth/callback'));
    expect(callback).toBeDefined();
    const victim = world.graph.addTenant();
    world.graph.consent(victim);
    const [signInState, consentState] = real.graphStates as [string, string];
    const forged = (state: string) => `${world.host.url}${callback?.path}?${new URLSearchParams({ admin_consent: 'True', tenant: victim, state }).toString()}`;
    const answers = [
      await fetch(forged(consentState), { signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) }),
      await real.graphBrowserB.get(forged(consentState)),
      await real.graphBrowserB.get(forged(signInState)),
    ].map((r) => r.status);
    expect(answers.every((st) => st >= 400 && st < 500)).toBe(true);
    await world.settle();
    // Nothing linked for the victim's organisation, B's integration not active, nothing else changed.
    const clients = new StorageClients({ kind: 'connectionString', connectionString: world.azurite.connectionString });
    const links: unknown[] = [];
    for await (const row of new TenantTable<Record<string, string>>(clients.table(TABLES.accountIndex)).all(partitionKey.accountIndex('msgraph', victim.toLowerCase()))) links.push(row);
    expect(links).toEqual([]);
    const { integrations } = (await (await world.api(`integrations/${world.B.tenant}?type=msgraph`, { tenant: world.B.tenant })).json()) as { integrations: Array<{ integration_id: string; status: string }> };
    expect(integrations.find((x) => x.integration_id === real.graphIntegrationB)).toBeDefined();
    expect(integrations.filter((x) => x.status === 'active')).toEqual([]);
    expect(diffSnapshots(baseline, await world.snapshot())).toEqual([]);
  });

  // Finding 4 (fixed): the health report is cached briefly per instance, so a flood of anonymous
  // requests costs one round of calls (before: a HubSpot call, storage and Key Vault reads per request).
  it(`finding ${FIXED_FINDINGS.healthCostsCalls}: 20 anonymous health requests cost HubSpot at most one call`, async () => {
    const health = ANONYMOUS.find((o) => o.path.endsWith('/health'));
    expect(health).toBeDefined();
    const before = world.hubspot.stats().requests;
    for (let i = 0; i < 20; i++) expect((await fetch(`${world.host.url}${health?.path}`, { signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) })).status).toBe(200);
    expect(world.hubspot.stats().requests - before).toBeLessThanOrEqual(1);
  });

  it('covered every anonymous operation of openapi.json and of the registrations', async () => {
    const status = (await (await fetch(`${world.host.url}/admin/host/status`, { headers: { 'x-functions-key': world.host.masterKey } })).json()) as { functions: Array<{ trigger: string; detail: string; authLevel?: string }> };
    const registered = status.functions.filter((f) => f.trigger === 'http' && f.authLevel === 'anonymous').flatMap((f) => {
      const [methods, route] = f.detail.split(' ') as [string, string];
      return methods.split(',').map((m) => `${m} ${route}`);
    });
    expect(registered.sort()).toEqual(ANONYMOUS.map((o) => `${o.method} ${o.path}`).sort());
  });

  /**
   * POSTs `bytes` of JSON-looking data in chunks without a Content-Length. `end: false` keeps the body
   * open after it: a server that reads to the end never answers, and the timeout says so.
   */
  function sendChunked(target: string, bytes: number, end: boolean): Promise<Answer> {
    return new Promise((resolve, reject) => {
      const url = new URL(`${world.host.url}${target}`);
      const req = http.request({ host: url.hostname, port: url.port, path: `${url.pathname}${url.search}`, method: 'POST', headers: { 'content-type': 'application/json', 'transfer-encoding': 'chunked' }, timeout: end ? REQUEST_TIMEOUT_MS : 3_000 });
      req.on('timeout', () => req.destroy(new Error('no answer before the timeout')));
      req.on('error', reject);
      req.on('response', (res) => {
        let body = '';
        res.on('data', (c: Buffer) => (body += c.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, contentType: String(res.headers['content-type'] ?? ''), body }));
        req.destroy();
      });
      const chunk = Buffer.from('["' + 'x'.repeat(64 * 1024 - 4) + '",');
      let sent = 0;
      const pump = () => {
        while (sent < bytes) {
          sent += chunk.length;
          if (!req.write(chunk)) return void req.once('drain', pump);
        }
        if (end) req.end();
      };
      pump();
    });
  }
});
