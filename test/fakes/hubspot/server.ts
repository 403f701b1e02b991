import { randomUUID } from 'node:crypto';
import { registerSecret } from '../../helpers/secretScan';
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { OAuthState, type AccessTokenRec, type PortalInfo } from './auth';
import { checkScopes, type ApiCtx } from './context';
import { DEFAULT_LIMITS, RateLimiter, mergeLimits, rateLimitBody, type Decision } from './limits';
import { defaultAssociationType, objectTypeOf, type ObjectType } from './objects';
import { apiRoutes, oauthRoutes, t, type ApiRoute, type PublicRoute } from './routes';
import { PortalStore } from './store';
import type { FakeFault, FakeHubSpot, FakeHubSpotOptions, FakeHubSpotStats, FakePortal } from './types';
import { buildEvent, deliver, signV3 } from './webhooks';
import { ReplyError, hubspotError, json, validationError, type Reply } from './wire';

/**
 * A local HubSpot speaking the real wire format, so the real `@hubspot/api-client` (with
 * `basePath` = this server's url) and our own fetch code run unchanged against it.
 */

const DEFAULT_SCOPES = [
  'oauth',
  'tickets',
  'crm.objects.contacts.read',
  'crm.objects.contacts.write',
  'crm.objects.companies.read',
  'crm.objects.companies.write',
];
const MAX_BODY_BYTES = 10 * 1024 * 1024;

interface PortalState extends PortalInfo {
  store: PortalStore;
}

function defaultFaultBody(status: number): unknown {
  if (status === 429) return rateLimitBody('TEN_SECONDLY_ROLLING', 0, 0);
  if (status >= 500) return { status: 'error', message: 'internal error', correlationId: randomUUID(), category: 'INTERNAL_ERROR' };
  return { status: 'error', message: `injected ${status}`, correlationId: randomUUID(), category: 'VALIDATION_ERROR' };
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > MAX_BODY_BYTES) {
        reject(new Error('body too large'));
        req.destroy();
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

export async function startFakeHubSpot(opts: FakeHubSpotOptions = {}): Promise<FakeHubSpot> {
  const clientId = opts.clientId ?? 'fake-hubspot-client-id';
  const clientSecret = opts.clientSecret ?? 'fake-hubspot-client-secret';
  registerSecret(clientSecret, 'HubSpot client secret');
  const appId = 3_456_789;
  const limiter = new RateLimiter(mergeLimits(DEFAULT_LIMITS, opts.rateLimit));
  let arrivalLog: number[] | undefined;
  const searchResultCap = opts.searchResultCap ?? 10_000;
  let indexLagMs = opts.indexLagMs ?? 0;
  const portals = new Map<number, PortalState>();
  let consenting: number | undefined;
  let portalSeq = 0;
  let seedSeq = 0;
  let eventSeq = 1000;
  const subscriptionIds = new Map<string, number>();
  const faults: Array<FakeFault & { remaining: number }> = [];
  let baseUrl = '';

  const stats: FakeHubSpotStats = { requests: 0, byRoute: {}, rateLimited: 0, maxPerWindowSeen: 0, maxInFlight: 0, revokedTokens: [], legacyOauthCalls: 0, searchRequests: 0, faultsInjected: 0 };
  let inFlight = 0;

  const oauth = new OAuthState(
    { clientId, clientSecret, appId, ttlSeconds: opts.accessTokenTtlSeconds ?? 1800, rotateRefreshTokens: opts.rotateRefreshTokens ?? false },
    (hubId) => portals.get(hubId),
  );

  const api = apiRoutes({ oauth, searchContext: () => ({ now: Date.now(), indexLagMs, cap: searchResultCap }) });
  const publicRoutes = oauthRoutes({ oauth, authorize });

  /** The browser leg of OAuth: the consenting portal's user approves and is redirected with a code. */
  function authorize(query: URLSearchParams): Reply {
    const redirect = query.get('redirect_uri');
    if (!redirect) return validationError('redirect_uri is required');
    const target = new URL(redirect);
    const state = query.get('state');
    if (state !== null) target.searchParams.set('state', state);
    if (query.get('client_id') !== clientId) {
      target.searchParams.set('error', 'invalid_client');
      target.searchParams.set('error_description', 'unknown client_id');
    } else if (consenting === undefined || !portals.has(consenting)) {
      target.searchParams.set('error', 'access_denied');
      target.searchParams.set('error_description', 'no HubSpot account consented');
    } else {
      target.searchParams.set('code', oauth.issueCode(consenting, redirect));
    }
    return { status: 302, headers: { location: target.toString() }, body: undefined };
  }

  function count(label: string): void {
    stats.byRoute[label] = (stats.byRoute[label] ?? 0) + 1;
  }

  function limitReply(decision: Decision, token: AccessTokenRec): Reply {
    stats.rateLimited++;
    const policy = decision.policy ?? 'TEN_SECONDLY_ROLLING';
    const headers = { ...decision.headers };
    if (limiter.limits.sendRetryAfter && decision.retryAfterMs !== undefined) headers['Retry-After'] = String(Math.max(1, Math.ceil(decision.retryAfterMs / 1000)));
    return json(429, rateLimitBody(policy, token.appId, token.hubId), headers);
  }

  function serveApi(route: ApiRoute, m: string[], req: IncomingMessage, path: string, query: URLSearchParams, raw: string): Reply {
    const auth = oauth.authenticate(req.headers.authorization);
    if (!auth.ok) return auth.reply;
    const token = auth.token;
    const state = portals.get(token.hubId) as PortalState;
    const now = Date.now();
    let decision: Decision;
    if (route.search) {
      stats.searchRequests++;
      decision = limiter.checkSearch(token.token, now);
    } else {
      arrivalLog?.push(performance.timeOrigin + performance.now());
      decision = limiter.checkCall(token.appKey, token.hubId, token.kind === 'private', now);
      stats.maxPerWindowSeen = Math.max(stats.maxPerWindowSeen, limiter.maxPerWindowSeen);
    }
    if (!decision.allowed) return limitReply(decision, token);
    let reply: Reply;
    try {
      let body: unknown;
      if (raw.trim() !== '') {
        try {
          body = JSON.parse(raw);
        } catch (e) {
          throw new ReplyError(validationError(`Invalid input JSON: ${(e as Error).message}`));
        }
      }
      const ctx: ApiCtx = { method: req.method ?? 'GET', path, query, body, token, portal: state.store, info: state, baseUrl, now };
      if (route.typeAt !== undefined) {
        const type = objectTypeOf(t(m, route.typeAt));
        if (!type) throw new ReplyError(validationError(`Unable to infer object type from: ${t(m, route.typeAt)}`));
        const denied = route.access ? checkScopes(ctx, type, route.access) : undefined;
        if (denied) throw new ReplyError(denied);
      }
      reply = route.handler(ctx, m);
    } catch (e) {
      if (!(e instanceof ReplyError)) throw e;
      reply = e.reply;
    }
    return { ...reply, headers: { ...decision.headers, ...reply.headers } };
  }

  type Matched = { kind: 'public'; route: PublicRoute; groups: string[] } | { kind: 'api'; route: ApiRoute; groups: string[] };

  function match(method: string, pathname: string): Matched | undefined {
    const decode = (m: RegExpExecArray): string[] => m.map((g) => (g === undefined ? '' : decodeURIComponent(g)));
    for (const route of publicRoutes) {
      const m = route.method === method ? route.re.exec(pathname) : null;
      if (m) return { kind: 'public', route, groups: decode(m) };
    }
    for (const route of api) {
      const m = route.method === method ? route.re.exec(pathname) : null;
      if (m) return { kind: 'api', route, groups: decode(m) };
    }
    return undefined;
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    stats.requests++;
    const url = new URL(req.url ?? '/', 'http://fake');
    const method = req.method ?? 'GET';
    const raw = await readBody(req);
    const matched = match(method, url.pathname);
    // Counted before faults apply: a failed call is still a call the client made.
    count(matched ? matched.route.label(matched.groups) : `${method} (unmatched)`);
    if (matched?.kind === 'public' && matched.route.legacyOauth) stats.legacyOauthCalls++;

    const fault = faults.find((f) => f.remaining > 0 && (!f.match || f.match.test(`${method} ${url.pathname}${url.search}`)));
    if (fault) {
      fault.remaining--;
      stats.faultsInjected++;
      fault.onMatch?.();
      if (fault.until) await fault.until;
      if (fault.delayMs) await sleep(fault.delayMs);
      if (fault.resetConnection) {
        req.socket.destroy();
        return;
      }
      if (fault.status !== undefined) {
        send(res, json(fault.status, fault.body ?? defaultFaultBody(fault.status)));
        return;
      }
    }

    let reply: Reply;
    if (!matched) reply = hubspotError(404, 'OBJECT_NOT_FOUND', `No route for ${method} ${url.pathname}`);
    else if (matched.kind === 'public') reply = matched.route.handler({ body: raw, query: url.searchParams }, matched.groups);
    else reply = serveApi(matched.route, matched.groups, req, url.pathname, url.searchParams, raw);
    send(res, reply);
  }

  function send(res: ServerResponse, reply: Reply): void {
    const headers: Record<string, string> = { 'x-hubspot-correlation-id': randomUUID(), ...reply.headers };
    if (reply.body !== undefined) headers['content-length'] = String(Buffer.byteLength(reply.body));
    else headers['content-length'] = '0';
    res.writeHead(reply.status, headers);
    res.end(reply.body);
  }

  const server = http.createServer((req, res) => {
    inFlight++;
    stats.maxInFlight = Math.max(stats.maxInFlight, inFlight);
    res.once('close', () => inFlight--);
    handle(req, res).catch((e: unknown) => {
      if (res.headersSent || res.destroyed) return;
      send(res, hubspotError(500, 'INTERNAL_ERROR', `fake HubSpot failed: ${(e as Error).message}`));
    });
  });
  server.keepAliveTimeout = 30_000;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  function portalOrThrow(hubId: number): PortalState {
    const p = portals.get(hubId);
    if (!p) throw new Error(`unknown portal ${hubId}`);
    return p;
  }

  function typeOrThrow(name: string): ObjectType {
    const type = objectTypeOf(name);
    if (!type) throw new Error(`unknown object type ${name}`);
    return type;
  }

  function idOrThrow(id: string): number {
    if (!/^\d{1,15}$/.test(id)) throw new Error(`not a HubSpot object id: ${id}`);
    return Number(id);
  }

  function seedDefaults(type: ObjectType, hubId: number, i: number): Record<string, string> {
    const n = ++seedSeq;
    if (type === 'tickets') return { subject: `Ticket ${i}`, content: `Seeded ticket ${i}`, hs_pipeline: '0', hs_pipeline_stage: '1', hs_ticket_priority: ['LOW', 'MEDIUM', 'HIGH'][i % 3] as string };
    if (type === 'contacts') return { email: `contact${n}.${hubId}@example.com`, firstname: `First${i}`, lastname: `Last${i}` };
    return { name: `Company ${i}`, domain: `company${n}-${hubId}.example.com` };
  }

  const fake: FakeHubSpot = {
    url: baseUrl,
    clientId,
    clientSecret,
    appId,
    async close() {
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
    },
    addPortal(p = {}) {
      portalSeq++;
      const hubId = p.hubId ?? 24_300_000 + portalSeq;
      if (portals.has(hubId)) throw new Error(`portal ${hubId} exists`);
      const portal: FakePortal = {
        hubId,
        hubDomain: p.hubDomain ?? `demo-${hubId}.com`,
        scopes: p.scopes ?? [...DEFAULT_SCOPES],
        userEmail: p.userEmail ?? `admin${portalSeq}@portal-${hubId}.example.com`,
      };
      portals.set(hubId, { portal, userId: 5_000_000 + portalSeq, store: new PortalStore(hubId) });
      consenting = hubId;
      return { ...portal, scopes: [...portal.scopes] };
    },
    issueAuthorizationCode: (hubId, redirectUri) => oauth.issueCode(hubId, redirectUri),
    createPrivateAppToken: (hubId, scopes) => oauth.createPrivateAppToken(hubId, scopes ?? portalOrThrow(hubId).portal.scopes),
    expireAccessTokens: (hubId) => oauth.expire(hubId),
    revokeRefreshTokens: (hubId) => oauth.revokeRefresh(hubId),
    setConsentingPortal(hubId) {
      portalOrThrow(hubId);
      consenting = hubId;
    },
    seed(hubId, objectType, n, make) {
      const { store } = portalOrThrow(hubId);
      const type = typeOrThrow(objectType);
      const lmProp = store.types[type].info.lastModifiedProperty;
      // Seeded objects look old and distinct: last-modified 1 ms apart, ending a second ago.
      const base = Date.now() - n - 1000;
      const ids: string[] = [];
      for (let i = 0; i < n; i++) {
        const ts = String(base + i);
        const props = { createdate: ts, [lmProp]: ts, ...seedDefaults(type, hubId, i), ...(make ? make(i) : {}) };
        ids.push(String(store.create(type, props, base + i).id));
      }
      return ids;
    },
    upsertObject(hubId, objectType, id, properties) {
      const { store } = portalOrThrow(hubId);
      const type = typeOrThrow(objectType);
      const now = Date.now();
      if (id !== undefined) {
        const n = idOrThrow(id);
        const existing = store.types[type].byId.get(n);
        if (existing) {
          if (existing.archived || existing.mergedInto !== undefined) throw new Error(`${objectType} ${id} is archived or merged`);
          store.types[type].apply(existing, properties, now);
          return id;
        }
        return String(store.create(type, type === 'tickets' ? { hs_pipeline_stage: '1', ...properties } : properties, now, n).id);
      }
      return String(store.create(type, type === 'tickets' ? { hs_pipeline_stage: '1', ...properties } : properties, now).id);
    },
    archiveObject(hubId, objectType, id) {
      const { store } = portalOrThrow(hubId);
      const ts = store.types[typeOrThrow(objectType)];
      const o = ts.live(idOrThrow(id));
      if (!o) throw new Error(`${objectType} ${id} not found`);
      ts.archive(o, Date.now());
    },
    mergeObjects(hubId, objectType, primaryId, mergedId) {
      const { store } = portalOrThrow(hubId);
      if (!store.merge(typeOrThrow(objectType), idOrThrow(primaryId), idOrThrow(mergedId), Date.now())) throw new Error(`cannot merge ${mergedId} into ${primaryId}`);
    },
    associate(hubId, fromType, fromId, toType, toId) {
      const { store } = portalOrThrow(hubId);
      const from = typeOrThrow(fromType);
      const to = typeOrThrow(toType);
      const a = idOrThrow(fromId);
      const b = idOrThrow(toId);
      if (!store.types[from].live(a) || !store.types[to].live(b)) throw new Error(`cannot associate ${fromType} ${fromId} with ${toType} ${toId}: not found`);
      const typeId = assocDefault(from, to);
      store.assoc.add(from, a, to, b, typeId);
    },
    getObject(hubId, objectType, id) {
      const { store } = portalOrThrow(hubId);
      const ts = store.types[typeOrThrow(objectType)];
      if (!/^\d{1,15}$/.test(id)) return undefined;
      const raw = ts.byId.get(Number(id));
      const o = raw?.mergedInto !== undefined ? ts.resolve(raw.id) : raw;
      return o ? { id: String(o.id), properties: { ...o.properties }, archived: o.archived } : undefined;
    },
    count: (hubId, objectType) => portalOrThrow(hubId).store.types[typeOrThrow(objectType)].liveCount(),
    associations(hubId, fromType, fromId, toType) {
      const { store } = portalOrThrow(hubId);
      return store.assoc.list(typeOrThrow(fromType), idOrThrow(fromId), typeOrThrow(toType)).map((a) => String(a.toId));
    },
    setPipelines(hubId, pipelines) {
      portalOrThrow(hubId).store.pipelines = pipelines.map((p) => ({ ...p, stages: p.stages.map((s) => ({ ...s })) }));
    },
    injectFault(f) {
      faults.push({ ...f, remaining: f.times ?? 1 });
    },
    clearFaults() {
      faults.length = 0;
    },
    setRateLimit(r) {
      limiter.limits = mergeLimits(limiter.limits, r);
    },
    setIndexLag(ms) {
      indexLagMs = ms;
    },
    stats: () => ({ ...stats, byRoute: { ...stats.byRoute }, revokedTokens: [...oauth.revokedViaApi] }),
    resetStats() {
      Object.assign(stats, { requests: 0, byRoute: {}, rateLimited: 0, maxPerWindowSeen: 0, maxInFlight: inFlight, legacyOauthCalls: 0, searchRequests: 0, faultsInjected: 0 });
      limiter.maxPerWindowSeen = 0;
      oauth.revokedViaApi.length = 0;
      if (arrivalLog) arrivalLog.length = 0;
    },
    recordArrivals() {
      arrivalLog ??= [];
    },
    arrivals: () => [...(arrivalLog ?? [])],
    signV3: (method, uri, body, timestamp) => signV3(clientSecret, method, uri, body, timestamp),
    sendWebhook: (targetUrl, events, o) => deliver(clientSecret, targetUrl, events, o ?? {}),
    webhookEvent(hubId, e) {
      const p = portalOrThrow(hubId);
      return buildEvent(
        {
          hubId,
          appId,
          userId: p.userId,
          nextEventId: () => ++eventSeq,
          subscriptionIdFor: (type) => {
            let id = subscriptionIds.get(type);
            if (id === undefined) subscriptionIds.set(type, (id = 1_200_000 + subscriptionIds.size));
            return id;
          },
        },
        e,
      );
    },
  };
  return fake;
}

function assocDefault(from: ObjectType, to: ObjectType): number {
  const id = defaultAssociationType(from, to);
  if (id === undefined) throw new Error(`no default association between ${from} and ${to}`);
  return id;
}
