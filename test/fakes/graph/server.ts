import { randomBytes, randomUUID } from 'node:crypto';
import https from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { makeSelfSignedCert } from '../../helpers/certs';
import { registerSecret } from '../../helpers/secretScan';
import {
  addressOf,
  exchangeLikeId,
  internetMessageId,
  newGuid,
  type FakeAttachment,
  type FakeEvent,
  type FakeGroup,
  type FakeMessage,
  type FakeSubscription,
  type FakeTenant,
  type FakeUser,
  type Recipient,
} from './model';
import { clientAuthMethod, createClientAuthenticator, type ClientAuthMethod } from './clientAuth';
import { createIdentityPlatform, type IdentityPlatform, type IdTokenTamper } from './identity';
import { decodeState, encodeState, ODataError, parseFilter, parseSelect, project, type FilterTerm } from './odata';

/**
 * A local HTTPS Microsoft Graph + Entra token endpoint speaking the wire protocol the real
 * `@azure/identity` (MSAL) and `@microsoft/microsoft-graph-client` use:
 *
 * - `/{tenant}/v2.0/.well-known/openid-configuration` and `/{tenant}/oauth2/v2.0/token` (client
 *   credentials; a tenant must have "consented" first, as after admin consent);
 * - the browser side of sign-in and admin consent (`authorize`, the code grant with an RS256 id_token,
 *   the JWKS, `adminconsent`): see `identity.ts`;
 * - `/v1.0/...`: users (filter by mail, paging), groups (members, transitiveMembers, paging), messages
 *   (by conversation, with Graph's `$filter`+`$orderby` restriction), message reply, inbox delta with
 *   `@odata.nextLink` / `@odata.deltaLink`, events, getSchedule, subscriptions (create with a real
 *   validation POST to the notification and lifecycle URLs, renew, reauthorize, delete);
 * - immutable ids only with `Prefer: IdType="ImmutableId"`, as Outlook;
 * - notifications and lifecycle events POSTed to the app for real, and 429 + Retry-After on demand.
 *
 * Data is scoped by the Entra tenant the bearer token was issued for.
 */

export interface FakeGraphOptions {
  clientId: string;
  clientSecret: string;
  /** Public certificates (PEM) on the app registration: the token endpoint accepts assertions they verify. */
  certificates?: string[];
  /** False: an app registration with certificates only, whose token endpoint refuses any client secret. Default true. */
  secretsAllowed?: boolean;
  /** Longest subscription Graph accepts, in minutes (default 4230, the documented Outlook maximum). */
  maxSubscriptionMinutes?: number;
  /** How long the app gets to answer the validation POST (Graph: 10 s). */
  validationTimeoutMs?: number;
  /** Default page size of message lists and delta (Graph: 10). */
  messagePageSize?: number;
  /** Server-driven paging of message lists: no page is larger than this, whatever `$top` asks (OData allows it). */
  messagePageCap?: number;
  /** Access token lifetime, seconds. */
  tokenLifetimeSeconds?: number;
  /** Every Graph answer waits this long, so concurrency can be observed. */
  responseDelayMs?: number;
}

export interface RecordedGraphRequest {
  method: string;
  path: string;
  search: string;
  prefer: string | null;
  /** The Entra tenant of the bearer token, when valid. */
  tenantId: string | undefined;
  /** Lower-cased address of the mailbox in `/users/{id}/…`, when there is one. */
  mailbox: string | undefined;
  status: number;
  /** Epoch ms when the request reached the fake (Outlook counts requests as they arrive). */
  at: number;
  /** Form fields of token requests, without the secret. */
  tokenRequest?: { tenant: string; clientId: string; grantType: string; scope: string; clientAuth: ClientAuthMethod };
}

export interface OutboundDelivery {
  kind: 'validation' | 'notification' | 'lifecycle';
  url: string;
  subscriptionId: string;
  status: number;
  ok: boolean;
  elapsedMs: number;
  error?: string;
}

export interface ThrottleRule {
  status?: number;
  retryAfterSeconds?: number;
  times?: number;
  when?: (req: { method: string; path: string; mailbox: string | undefined }) => boolean;
}

export interface MailInput {
  from: string | { address: string; name?: string };
  to?: string[];
  cc?: string[];
  subject: string;
  html?: string;
  text?: string;
  /** Continue an existing conversation (its id), else a new one is started. */
  conversationId?: string;
  /** internetMessageId of the message this one answers (In-Reply-To / References). */
  inReplyTo?: string;
  headers?: Record<string, string>;
  importance?: 'low' | 'normal' | 'high';
  attachments?: Array<{ name: string; contentType: string; size: number; isInline?: boolean }>;
  receivedAt?: Date;
}

export interface FakeGraph {
  /** `https://127.0.0.1:<port>`: both the Graph base URL and the authority host. */
  url: string;
  /** PEM of the certificate the fake serves; clients trust it explicitly. */
  ca: string;
  requests: RecordedGraphRequest[];
  deliveries: OutboundDelivery[];
  addTenant(id?: string): string;
  consent(tenantId: string): void;
  revokeConsent(tenantId: string): void;
  /** The account signed in at the fake Microsoft (the browser's session there); `admin` (default true) may consent for its tenant. */
  signIn(tenantId: string, mail: string, opts?: { admin?: boolean }): void;
  signOut(): void;
  /** The next id_token is altered (claims) or signed wrongly, to test that the app refuses it. */
  tamperNextIdToken(t: IdTokenTamper): void;
  /** Uploads a public certificate (PEM) to the app registration. */
  registerCertificate(pem: string): void;
  /** False: the app registration has no client secret any more (certificates only). */
  setSecretsAllowed(allowed: boolean): void;
  /** What browsers asked `authorize` and `adminconsent`. */
  browserRequests: IdentityPlatform['browserRequests'];
  consented(tenantId: string): boolean;
  addUser(tenantId: string, user: { mail: string; displayName?: string; jobTitle?: string }): FakeUser;
  addGroup(tenantId: string, displayName: string, members: string[]): FakeGroup;
  addCalendar(tenantId: string, mailbox: string, name: string): string;
  /** Puts a message in the mailbox's inbox; with `notify` (default) POSTs the change notifications. */
  deliverMail(tenantId: string, mailbox: string, mail: MailInput, opts?: { notify?: boolean }): Promise<{ message: FakeMessage; deliveries: OutboundDelivery[] }>;
  /** POSTs the `created` notifications for an existing message again (Graph redelivers). */
  notifyAgain(message: FakeMessage): Promise<OutboundDelivery[]>;
  /** POSTs a lifecycle event; `subscriptionRemoved` deletes the subscription first, as Graph does. */
  lifecycle(subscriptionId: string, event: 'reauthorizationRequired' | 'subscriptionRemoved' | 'missed'): Promise<OutboundDelivery[]>;
  subscriptions(): FakeSubscription[];
  messages(tenantId: string, mailbox: string, folder?: 'inbox' | 'sentitems'): FakeMessage[];
  events(tenantId: string, mailbox: string): FakeEvent[];
  /** The next matching authorised Graph request(s) fail with this status (default 429). */
  throttle(rule: ThrottleRule): void;
  /** Every delta token issued so far answers 410 syncStateNotFound. */
  expireDeltaTokens(): void;
  /** Most Graph requests ever in flight at once for a mailbox (by address). */
  maxInFlight(mailbox: string): number;
  clearRequests(): void;
  stop(): Promise<void>;
}

interface Reply {
  status: number;
  body?: unknown;
  headers?: Record<string, string>;
  text?: string;
}

interface TokenInfo {
  tenantId: string;
  appId: string;
  expiresAt: number;
}

interface DeltaState {
  u: string;
  f: 'inbox';
  after: number;
  upto: number;
  gen: number;
  ge?: string;
  gt?: string;
  sel?: string[];
  off?: number;
  size?: number;
}

const GRAPH_SCOPE = 'https://graph.microsoft.com/.default';

export async function startFakeGraph(options: FakeGraphOptions): Promise<FakeGraph> {
  const { key, cert } = await makeSelfSignedCert();
  const maxMinutes = options.maxSubscriptionMinutes ?? 4230;
  const validationTimeoutMs = options.validationTimeoutMs ?? 10_000;
  const messagePageSize = options.messagePageSize ?? 10;
  const tokenLifetime = options.tokenLifetimeSeconds ?? 3599;

  const tenants = new Map<string, FakeTenant>();
  const consented = new Set<string>();
  const tokens = new Map<string, TokenInfo>();
  const messages: FakeMessage[] = [];
  const events: FakeEvent[] = [];
  const calendars = new Map<string, string>(); // `${tenant}:${userId}:${calendarId}` → name
  const subs = new Map<string, FakeSubscription>();
  const requests: RecordedGraphRequest[] = [];
  const deliveries: OutboundDelivery[] = [];
  const throttles: Array<ThrottleRule & { left: number }> = [];
  let seq = 0;
  let deltaGeneration = 0;
  const inFlight = new Map<string, number>();
  const maxInFlight = new Map<string, number>();
  let url = '';
  const clientAuth = createClientAuthenticator({
    clientId: options.clientId,
    clientSecret: options.clientSecret,
    ...(options.certificates ? { certificates: options.certificates } : {}),
    ...(options.secretsAllowed !== undefined ? { secretsAllowed: options.secretsAllowed } : {}),
  });
  const identity = await createIdentityPlatform({ clientId: options.clientId, clientAuth, url: () => url, tenants, consent: (id) => consented.add(id) });

  const tenantOf = (id: string): FakeTenant => {
    const t = tenants.get(id);
    if (!t) throw new Error(`fake graph: unknown tenant ${id}`);
    return t;
  };

  function findUser(tenantId: string, idOrAddress: string): FakeUser | undefined {
    const t = tenants.get(tenantId);
    if (!t) return undefined;
    const needle = idOrAddress.toLowerCase();
    for (const u of t.users.values()) {
      if (u.id === idOrAddress || u.mail.toLowerCase() === needle || u.userPrincipalName.toLowerCase() === needle) return u;
    }
    return undefined;
  }

  const wantsImmutable = (prefer: string | null) => /IdType\s*=\s*"ImmutableId"/i.test(prefer ?? '');
  const idOf = (m: FakeMessage, immutable: boolean) => (immutable ? m.immutableId : m.restId);

  function renderMessage(m: FakeMessage, immutable: boolean, select: string[] | undefined, expandAttachments: boolean): Record<string, unknown> {
    const full: Record<string, unknown> = {
      '@odata.etag': `W/"${m.seq}"`,
      id: idOf(m, immutable),
      createdDateTime: m.receivedDateTime,
      lastModifiedDateTime: m.receivedDateTime,
      receivedDateTime: m.receivedDateTime,
      sentDateTime: m.sentDateTime,
      hasAttachments: m.attachments.some((a) => !a.isInline),
      internetMessageId: m.internetMessageId,
      subject: m.subject,
      bodyPreview: m.bodyPreview,
      importance: m.importance,
      parentFolderId: m.folder === 'inbox' ? 'inbox-folder-id' : 'sentitems-folder-id',
      conversationId: m.conversationId,
      isRead: m.isRead,
      isDraft: false,
      body: m.body,
      sender: m.sender,
      from: m.from,
      toRecipients: m.toRecipients,
      ccRecipients: m.ccRecipients,
      replyTo: m.replyTo,
    };
    // Outlook returns the headers only when they are selected.
    if (select?.includes('internetMessageHeaders')) full.internetMessageHeaders = m.internetMessageHeaders;
    const out = project(full, select);
    if (expandAttachments) {
      out.attachments = m.attachments.map((a) => ({ '@odata.type': '#microsoft.graph.fileAttachment', ...a }));
    }
    return out;
  }

  function renderSubscription(s: FakeSubscription): Record<string, unknown> {
    return {
      '@odata.context': `${url}/v1.0/$metadata#subscriptions/$entity`,
      id: s.id,
      resource: s.resource,
      applicationId: s.appId,
      changeType: s.changeType,
      clientState: s.clientState ?? null,
      notificationUrl: s.notificationUrl,
      lifecycleNotificationUrl: s.lifecycleNotificationUrl ?? null,
      expirationDateTime: s.expirationDateTime,
      creatorId: newGuid(),
      latestSupportedTlsVersion: s.latestSupportedTlsVersion,
    };
  }

  const graphError = (status: number, code: string, message: string, headers?: Record<string, string>): Reply => ({
    status,
    body: { error: { code, message, innerError: { date: new Date().toISOString(), 'request-id': randomUUID() } } },
    ...(headers ? { headers } : {}),
  });

  // ---------------------------------------------------------------------------------------------
  // Token endpoint (what MSAL calls for ClientSecretCredential with disableInstanceDiscovery)
  // ---------------------------------------------------------------------------------------------

  function openIdConfiguration(tenant: string): Reply {
    return {
      status: 200,
      body: {
        token_endpoint: `${url}/${tenant}/oauth2/v2.0/token`,
        token_endpoint_auth_methods_supported: ['client_secret_post', 'private_key_jwt', 'client_secret_basic'],
        jwks_uri: `${url}/${tenant}/discovery/v2.0/keys`,
        response_modes_supported: ['query', 'fragment', 'form_post'],
        subject_types_supported: ['pairwise'],
        id_token_signing_alg_values_supported: ['RS256'],
        response_types_supported: ['code', 'id_token', 'code id_token', 'id_token token'],
        scopes_supported: ['openid', 'profile', 'email', 'offline_access'],
        // The multi-tenant authorities name the issuer as a template, as Microsoft's do.
        issuer: tenant === 'organizations' || tenant === 'common' ? `${url}/{tenantid}/v2.0` : `${url}/${tenant}/v2.0`,
        request_uri_parameter_supported: false,
        userinfo_endpoint: `${url}/oidc/userinfo`,
        authorization_endpoint: `${url}/${tenant}/oauth2/v2.0/authorize`,
        device_authorization_endpoint: `${url}/${tenant}/oauth2/v2.0/devicecode`,
        http_logout_supported: true,
        frontchannel_logout_supported: true,
        end_session_endpoint: `${url}/${tenant}/oauth2/v2.0/logout`,
        claims_supported: ['sub', 'iss', 'aud', 'exp', 'iat', 'tid'],
        kerberos_endpoint: `${url}/${tenant}/kerberos`,
        tenant_region_scope: 'EU',
        cloud_instance_name: 'microsoftonline.com',
        cloud_graph_host_name: 'graph.windows.net',
        msgraph_host: 'graph.microsoft.com',
        rbac_url: 'https://pas.windows.net',
      },
    };
  }

  async function token(tenant: string, form: URLSearchParams, tokenEndpoint: string): Promise<Reply> {
    const clientId = form.get('client_id') ?? '';
    const grantType = form.get('grant_type') ?? '';
    const scope = form.get('scope') ?? '';
    const oauthError = (status: number, error: string, description: string): Reply => ({
      status,
      body: { error, error_description: description, error_codes: [Number(description.slice(5, 11)) || 0], timestamp: new Date().toISOString(), trace_id: randomUUID(), correlation_id: randomUUID() },
    });
    if (grantType !== 'client_credentials') return oauthError(400, 'unsupported_grant_type', 'AADSTS70003: The app requested an unsupported grant type.');
    if (clientId !== options.clientId) return oauthError(400, 'unauthorized_client', `AADSTS700016: Application with identifier '${clientId}' was not found in the directory.`);
    const denied = await clientAuth.authenticate(form, tokenEndpoint);
    if (denied) return oauthError(denied.status, denied.error, denied.description);
    if (!scope.split(' ').includes(GRAPH_SCOPE)) return oauthError(400, 'invalid_scope', 'AADSTS1002012: The provided value for scope is not valid.');
    if (!tenants.has(tenant)) return oauthError(400, 'invalid_request', `AADSTS90002: Tenant '${tenant}' not found.`);
    if (!consented.has(tenant)) return oauthError(400, 'invalid_client', 'AADSTS650052: The app needs access to a service that your organization has not subscribed to or enabled (admin consent missing).');
    const access = `fake-graph-token.${randomBytes(24).toString('base64url')}`;
    registerSecret(access, 'Graph access token');
    tokens.set(access, { tenantId: tenant, appId: clientId, expiresAt: Date.now() + tokenLifetime * 1000 });
    return { status: 200, body: { token_type: 'Bearer', expires_in: tokenLifetime, ext_expires_in: tokenLifetime, access_token: access } };
  }

  // ---------------------------------------------------------------------------------------------
  // Graph
  // ---------------------------------------------------------------------------------------------

  function pageOf<T>(items: T[], query: URLSearchParams, path: string, defaultSize: number, maxSize: number, render: (item: T) => unknown, cap?: number): Reply {
    const topRaw = query.get('$top');
    let size = defaultSize;
    if (topRaw !== null) {
      size = Number(topRaw);
      if (!Number.isInteger(size) || size < 1 || size > maxSize) {
        return graphError(400, 'Request_UnsupportedQuery', `Invalid page size specified: '${topRaw}'. Must be between 1 and ${maxSize} inclusive.`);
      }
    }
    if (cap) size = Math.min(size, cap);
    const skipToken = query.get('$skiptoken');
    const offset = skipToken ? decodeState<{ off: number }>(skipToken).off : 0;
    const page = items.slice(offset, offset + size);
    const body: Record<string, unknown> = { '@odata.context': `${url}/v1.0/$metadata`, value: page.map(render) };
    if (offset + size < items.length) {
      const keep = new URLSearchParams();
      for (const [k, v] of query) if (k !== '$skiptoken' && k !== '$top') keep.append(k, v);
      keep.set('$top', String(size));
      keep.set('$skiptoken', encodeState({ off: offset + size }));
      body['@odata.nextLink'] = `${url}/v1.0/${path}?${keep.toString()}`;
    }
    return { status: 200, body };
  }

  function matchesTerms(obj: Record<string, unknown>, terms: FilterTerm[]): boolean {
    return terms.every((t) => {
      const v = obj[t.property];
      if (typeof v !== 'string') return false;
      if (t.op === 'eq') return t.property === 'conversationId' ? v === t.value : v.toLowerCase() === t.value.toLowerCase();
      if (t.op === 'ge') return v >= t.value;
      return v > t.value;
    });
  }

  function listUsers(tenantId: string, query: URLSearchParams): Reply {
    if (query.has('$skip')) return graphError(400, 'Request_BadRequest', "'$skip' is not supported by the service.");
    const terms = parseFilter(query.get('$filter'));
    for (const t of terms) {
      if (!['mail', 'userPrincipalName', 'displayName'].includes(t.property) || t.op !== 'eq') {
        return graphError(400, 'Request_UnsupportedQuery', `Unsupported filter on ${t.property}`);
      }
    }
    const select = parseSelect(query.get('$select'));
    const users = [...tenantOf(tenantId).users.values()].filter((u) => matchesTerms(u as unknown as Record<string, unknown>, terms));
    return pageOf(users, query, 'users', 100, 999, (u) => project({ ...u }, select));
  }

  function groupMembers(tenantId: string, groupId: string, transitive: boolean, query: URLSearchParams, path: string): Reply {
    const t = tenantOf(tenantId);
    const group = t.groups.get(groupId);
    if (!group) return graphError(404, 'Request_ResourceNotFound', `Resource '${groupId}' does not exist or one of its queried reference-property objects are not present.`);
    const seen = new Set<string>();
    const out: string[] = [];
    const walk = (g: FakeGroup) => {
      for (const id of g.members) {
        if (seen.has(id)) continue;
        seen.add(id);
        out.push(id);
        const nested = t.groups.get(id);
        if (transitive && nested) walk(nested);
      }
    };
    walk(group);
    const select = parseSelect(query.get('$select'));
    return pageOf(out, query, path, 100, 999, (id) => {
      const user = t.users.get(id);
      if (user) return project({ '@odata.type': '#microsoft.graph.user', ...user }, select);
      const g = t.groups.get(id) as FakeGroup;
      return project({ '@odata.type': '#microsoft.graph.group', id: g.id, displayName: g.displayName }, select);
    });
  }

  function findMessage(tenantId: string, user: FakeUser, id: string): FakeMessage | undefined {
    return messages.find((m) => m.tenantId === tenantId && m.userId === user.id && (m.immutableId === id || m.restId === id));
  }

  function listMessages(tenantId: string, user: FakeUser, query: URLSearchParams, prefer: string | null, path: string): Reply {
    const terms = parseFilter(query.get('$filter'));
    const orderby = (query.get('$orderby') ?? '')
      .split(',')
      .map((s) => s.trim().split(/\s+/)[0] as string)
      .filter(Boolean);
    // Outlook: every $orderby property must also be in $filter, first and in the same order.
    if (orderby.length > 0 && terms.length > 0) {
      const leading = terms.slice(0, orderby.length).map((t) => t.property);
      if (leading.join(',') !== orderby.join(',')) {
        return graphError(400, 'InefficientFilter', 'The restriction or sort order is too complex for this operation.');
      }
    }
    for (const t of terms) {
      if (!['conversationId', 'receivedDateTime', 'internetMessageId'].includes(t.property)) return graphError(400, 'BadRequest', `Unsupported filter on ${t.property}`);
    }
    const immutable = wantsImmutable(prefer);
    const select = parseSelect(query.get('$select'));
    let list = messages.filter((m) => m.tenantId === tenantId && m.userId === user.id && matchesTerms(m as unknown as Record<string, unknown>, terms));
    // Newest first unless told otherwise: callers that need thread order must sort.
    list = [...list].sort((a, b) => b.seq - a.seq);
    if (orderby[0] === 'receivedDateTime' && !/desc/i.test(query.get('$orderby') ?? '')) list.reverse();
    return pageOf(list, query, path, messagePageSize, 1000, (m) => renderMessage(m, immutable, select, false), options.messagePageCap);
  }

  function replyToMessage(tenantId: string, user: FakeUser, original: FakeMessage, body: unknown): Reply {
    const b = (body ?? {}) as { comment?: unknown; message?: { body?: { contentType?: string; content?: string }; toRecipients?: Recipient[] } };
    if (b.comment !== undefined && b.message?.body !== undefined) {
      return graphError(400, 'ErrorInvalidRequest', 'Cannot specify both comment and message body.');
    }
    if (b.comment === undefined && b.message?.body?.content === undefined) return graphError(400, 'ErrorInvalidRequest', 'A comment or a message body is required.');
    const content = b.message?.body?.content ?? String(b.comment);
    const contentType = /html/i.test(b.message?.body?.contentType ?? 'html') ? 'html' : 'text';
    const to = b.message?.toRecipients ?? (original.replyTo.length > 0 ? original.replyTo : [original.from]);
    const references = original.internetMessageHeaders.find((h) => h.name.toLowerCase() === 'references')?.value;
    const sent = store({
      tenantId,
      userId: user.id,
      folder: 'sentitems',
      from: { emailAddress: { name: user.displayName, address: user.mail } },
      to,
      cc: [],
      subject: /^re:/i.test(original.subject) ? original.subject : `RE: ${original.subject}`,
      body: { contentType, content },
      conversationId: original.conversationId,
      headers: {
        'In-Reply-To': original.internetMessageId,
        References: [references, original.internetMessageId].filter(Boolean).join(' '),
      },
      importance: 'normal',
      attachments: [],
      receivedAt: new Date(),
    });
    // A recipient inside the tenant receives it too (and its subscriptions fire).
    for (const r of to) {
      const rcpt = findUser(tenantId, addressOf(r));
      if (rcpt && rcpt.id !== user.id) {
        const copy = store({ ...copyInput(sent), userId: rcpt.id, folder: 'inbox' });
        void notifyCreated(copy);
      }
    }
    return { status: 202 };
  }

  function delta(tenantId: string, user: FakeUser, query: URLSearchParams, prefer: string | null, path: string): Reply {
    const token = query.get('$deltatoken') ?? query.get('$skiptoken');
    let state: DeltaState;
    if (token) {
      state = decodeState<DeltaState>(token);
      if (state.u !== user.id) return graphError(400, 'BadRequest', 'The delta token belongs to another mailbox.');
      if (state.gen < deltaGeneration) return graphError(410, 'syncStateNotFound', 'The sync state generation was not found or has expired. Restart the sync.');
      if (query.has('$deltatoken')) state = { ...state, after: state.upto, upto: seq, off: 0 };
    } else {
      const terms = parseFilter(query.get('$filter'));
      for (const t of terms) {
        if (t.property !== 'receivedDateTime' || t.op === 'eq') return graphError(400, 'BadRequest', 'Delta supports only receivedDateTime ge|gt in $filter.');
      }
      if (query.has('$orderby') && !/^receivedDateTime desc$/i.test(query.get('$orderby') ?? '')) return graphError(400, 'BadRequest', 'Delta supports $orderby=receivedDateTime desc only.');
      if (query.has('$search')) return graphError(400, 'BadRequest', '$search is not supported on delta.');
      const ge = terms.find((t) => t.op === 'ge')?.value;
      const gt = terms.find((t) => t.op === 'gt')?.value;
      const sel = parseSelect(query.get('$select'));
      const max = /odata\.maxpagesize\s*=\s*(\d+)/i.exec(prefer ?? '')?.[1];
      state = { u: user.id, f: 'inbox', after: 0, upto: seq, gen: deltaGeneration, ...(ge ? { ge } : {}), ...(gt ? { gt } : {}), ...(sel ? { sel } : {}), off: 0, size: max ? Number(max) : messagePageSize };
    }
    const immutable = wantsImmutable(prefer);
    const items = messages.filter(
      (m) =>
        m.tenantId === tenantId &&
        m.userId === user.id &&
        m.folder === state.f &&
        m.seq > state.after &&
        m.seq <= state.upto &&
        (state.ge === undefined || m.receivedDateTime >= state.ge) &&
        (state.gt === undefined || m.receivedDateTime > state.gt),
    );
    const size = state.size ?? messagePageSize;
    const off = state.off ?? 0;
    const page = items.slice(off, off + size);
    const body: Record<string, unknown> = {
      '@odata.context': `${url}/v1.0/$metadata#Collection(message)`,
      value: page.map((m) => renderMessage(m, immutable, state.sel, false)),
    };
    if (off + size < items.length) body['@odata.nextLink'] = `${url}/v1.0/${path}?$skiptoken=${encodeState({ ...state, off: off + size })}`;
    else body['@odata.deltaLink'] = `${url}/v1.0/${path}?$deltatoken=${encodeState({ ...state, off: 0 })}`;
    return { status: 200, body };
  }

  function createEvent(tenantId: string, user: FakeUser, calendarId: string, body: unknown): Reply {
    const b = body as Partial<FakeEvent> | undefined;
    if (!b || typeof b.subject !== 'string' || !b.start?.dateTime || !b.end?.dateTime) return graphError(400, 'ErrorInvalidRequest', 'subject, start and end are required.');
    if (calendarId !== 'default' && !calendars.has(`${tenantId}:${user.id}:${calendarId}`)) return graphError(404, 'ErrorItemNotFound', 'The specified object was not found in the store.');
    // Graph's transactionId: a retried create with the same id gives the event already made, not a second one.
    const transactionId = (b as { transactionId?: unknown }).transactionId;
    const earlier = typeof transactionId === 'string' ? events.find((e) => e.tenantId === tenantId && e.userId === user.id && e.transactionId === transactionId) : undefined;
    if (earlier) {
      const { tenantId: _t, userId: _u, calendarId: _c, ...rest } = earlier;
      return { status: 201, body: { '@odata.context': `${url}/v1.0/$metadata#users('${user.id}')/events/$entity`, ...rest } };
    }
    const ev: FakeEvent = {
      id: exchangeLikeId('evt'),
      tenantId,
      userId: user.id,
      calendarId,
      subject: b.subject,
      ...(b.body ? { body: b.body } : {}),
      start: b.start,
      end: b.end,
      attendees: b.attendees ?? [],
      ...(b.location ? { location: b.location } : {}),
      showAs: b.showAs ?? 'busy',
      ...(typeof transactionId === 'string' ? { transactionId } : {}),
    };
    events.push(ev);
    const { tenantId: _t, userId: _u, calendarId: _c, ...rest } = ev;
    return { status: 201, body: { '@odata.context': `${url}/v1.0/$metadata#users('${user.id}')/events/$entity`, ...rest } };
  }

  function getSchedule(tenantId: string, body: unknown): Reply {
    const b = body as { schedules?: string[]; startTime?: { dateTime: string }; endTime?: { dateTime: string }; availabilityViewInterval?: number } | undefined;
    if (!b?.schedules?.length || !b.startTime || !b.endTime) return graphError(400, 'ErrorInvalidRequest', 'schedules, startTime and endTime are required.');
    const interval = b.availabilityViewInterval ?? 30;
    if (interval < 5 || interval > 1440) return graphError(400, 'ErrorInvalidParameter', 'availabilityViewInterval must be between 5 and 1440.');
    const start = Date.parse(`${b.startTime.dateTime.replace(/Z$/, '')}Z`);
    const end = Date.parse(`${b.endTime.dateTime.replace(/Z$/, '')}Z`);
    const value = b.schedules.map((address) => {
      const user = findUser(tenantId, address);
      if (!user) return { scheduleId: address, availabilityView: '', error: { message: 'The user is not in this organization.', responseCode: 'ErrorMailRecipientNotFound' }, scheduleItems: [] };
      const mine = events.filter((e) => e.tenantId === tenantId && e.userId === user.id && e.calendarId === 'default');
      const span = (e: FakeEvent) => [Date.parse(`${e.start.dateTime.replace(/Z$/, '')}Z`), Date.parse(`${e.end.dateTime.replace(/Z$/, '')}Z`)] as const;
      let view = '';
      for (let t = start; t < end; t += interval * 60_000) {
        const busy = mine.some((e) => {
          const [s, f] = span(e);
          return s < t + interval * 60_000 && f > t;
        });
        view += busy ? '2' : '0';
      }
      return {
        scheduleId: address,
        availabilityView: view,
        scheduleItems: mine
          .filter((e) => {
            const [s, f] = span(e);
            return s < end && f > start;
          })
          .map((e) => ({ isPrivate: false, status: e.showAs, subject: e.subject, start: e.start, end: e.end })),
        workingHours: { daysOfWeek: ['monday', 'tuesday', 'wednesday', 'thursday', 'friday'], startTime: '08:00:00.0000000', endTime: '17:00:00.0000000', timeZone: { name: 'UTC' } },
      };
    });
    return { status: 200, body: { '@odata.context': `${url}/v1.0/$metadata#Collection(microsoft.graph.scheduleInformation)`, value } };
  }

  const RESOURCE = /^\/?users\/([^/]+)\/mailFolders\('inbox'\)\/messages$/i;

  async function createSubscription(tenantId: string, appId: string, body: unknown, prefer: string | null): Promise<Reply> {
    const b = body as Partial<FakeSubscription> | undefined;
    if (!b || typeof b.changeType !== 'string' || typeof b.notificationUrl !== 'string' || typeof b.resource !== 'string' || typeof b.expirationDateTime !== 'string') {
      return graphError(400, 'InvalidRequest', 'changeType, notificationUrl, resource and expirationDateTime are required.');
    }
    if (!b.changeType.split(',').every((c) => ['created', 'updated', 'deleted'].includes(c.trim()))) return graphError(400, 'InvalidRequest', 'Invalid changeType.');
    for (const u of [b.notificationUrl, b.lifecycleNotificationUrl].filter((x): x is string => typeof x === 'string')) {
      if (!URL.canParse(u)) return graphError(400, 'InvalidRequest', 'Invalid notification url.');
      const parsed = new URL(u);
      // Graph requires HTTPS; the fake lets loopback HTTP through so the local runner can be the target.
      const loopback = ['127.0.0.1', 'localhost', '[::1]'].includes(parsed.hostname);
      if (parsed.protocol !== 'https:' && !(loopback && parsed.protocol === 'http:')) return graphError(400, 'InvalidRequest', 'The notification URL must use HTTPS.');
    }
    if (b.clientState !== undefined && (typeof b.clientState !== 'string' || b.clientState.length > 128)) return graphError(400, 'InvalidRequest', 'clientState must be at most 128 characters.');
    const m = RESOURCE.exec(b.resource);
    if (!m) return graphError(400, 'ExtensionError', `Resource '${b.resource}' is not supported by the fake.`);
    const user = findUser(tenantId, decodeURIComponent(m[1] as string));
    if (!user) return graphError(404, 'ExtensionError', 'Operation: Create; Exception: [Status Code: NotFound; Reason: The mailbox was not found]');
    const expiry = Date.parse(b.expirationDateTime);
    if (Number.isNaN(expiry) || expiry <= Date.now()) return graphError(400, 'InvalidRequest', 'Subscription expiration must be in the future.');
    if (expiry > Date.now() + maxMinutes * 60_000 + 60_000) return graphError(400, 'ExtensionError', `Subscription expiration can only be ${maxMinutes} minutes in the future.`);

    const id = newGuid();
    for (const [kind, target] of [
      ['notificationUrl', b.notificationUrl],
      ['lifecycleNotificationUrl', b.lifecycleNotificationUrl],
    ] as const) {
      if (typeof target !== 'string') continue;
      const ok = await validate(target, id);
      if (!ok) {
        return graphError(400, 'ValidationError', `Subscription validation request failed. ${kind} must respond with 200 OK and the validation token as text/plain.`);
      }
    }
    const sub: FakeSubscription = {
      id,
      tenantId,
      appId,
      resource: b.resource,
      userId: user.id,
      changeType: b.changeType,
      notificationUrl: b.notificationUrl,
      ...(typeof b.lifecycleNotificationUrl === 'string' ? { lifecycleNotificationUrl: b.lifecycleNotificationUrl } : {}),
      ...(typeof b.clientState === 'string' ? (registerSecret(b.clientState, 'Graph clientState'), { clientState: b.clientState }) : {}),
      expirationDateTime: new Date(expiry).toISOString(),
      latestSupportedTlsVersion: typeof b.latestSupportedTlsVersion === 'string' ? b.latestSupportedTlsVersion : 'v1_2',
      immutableIds: wantsImmutable(prefer),
      reauthorizations: 0,
    };
    subs.set(id, sub);
    return { status: 201, body: renderSubscription(sub) };
  }

  async function validate(target: string, subscriptionId: string): Promise<boolean> {
    const tokenText = `Validation: Testing client application reachability for subscription Request-Id: ${randomUUID()} & more+chars`;
    const u = new URL(target);
    u.searchParams.set('validationToken', tokenText);
    const started = Date.now();
    const rec: OutboundDelivery = { kind: 'validation', url: target, subscriptionId, status: 0, ok: false, elapsedMs: 0 };
    try {
      const res = await fetch(u, { method: 'POST', headers: { 'content-type': 'text/plain; charset=utf-8' }, body: '', signal: AbortSignal.timeout(validationTimeoutMs) });
      const text = await res.text();
      rec.status = res.status;
      rec.ok = res.status === 200 && /^text\/plain/i.test(res.headers.get('content-type') ?? '') && text === tokenText;
      if (!rec.ok) rec.error = `status ${res.status}, content-type ${res.headers.get('content-type')}, body matched: ${text === tokenText}`;
    } catch (err) {
      rec.error = (err as Error).message;
    }
    rec.elapsedMs = Date.now() - started;
    deliveries.push(rec);
    return rec.ok;
  }

  async function post(kind: OutboundDelivery['kind'], target: string, subscriptionId: string, payload: unknown): Promise<OutboundDelivery> {
    const started = Date.now();
    const rec: OutboundDelivery = { kind, url: target, subscriptionId, status: 0, ok: false, elapsedMs: 0 };
    try {
      // Graph's delivery timeout is 3 s.
      const res = await fetch(target, { method: 'POST', headers: { 'content-type': 'application/json; charset=utf-8' }, body: JSON.stringify(payload), signal: AbortSignal.timeout(3_000) });
      await res.arrayBuffer();
      rec.status = res.status;
      rec.ok = res.status >= 200 && res.status < 300;
    } catch (err) {
      rec.error = (err as Error).message;
    }
    rec.elapsedMs = Date.now() - started;
    deliveries.push(rec);
    return rec;
  }

  async function notifyCreated(m: FakeMessage): Promise<OutboundDelivery[]> {
    const targets = [...subs.values()].filter((s) => s.tenantId === m.tenantId && s.userId === m.userId && m.folder === 'inbox' && s.changeType.includes('created'));
    const out: OutboundDelivery[] = [];
    for (const s of targets) {
      const id = idOf(m, s.immutableIds);
      const item = {
        id: randomUUID(),
        subscriptionId: s.id,
        subscriptionExpirationDateTime: s.expirationDateTime,
        changeType: 'created',
        resource: `Users/${m.userId}/Messages/${id}`,
        resourceData: { '@odata.type': '#Microsoft.Graph.Message', '@odata.id': `Users/${m.userId}/Messages/${id}`, '@odata.etag': `W/"${m.seq}"`, id },
        clientState: s.clientState ?? null,
        tenantId: s.tenantId,
      };
      out.push(await post('notification', s.notificationUrl, s.id, { value: [item] }));
    }
    return out;
  }

  interface StoreInput {
    tenantId: string;
    userId: string;
    folder: 'inbox' | 'sentitems';
    from: Recipient;
    to: Recipient[];
    cc: Recipient[];
    subject: string;
    body: { contentType: 'html' | 'text'; content: string };
    conversationId: string;
    headers: Record<string, string>;
    importance: 'low' | 'normal' | 'high';
    attachments: Array<{ name: string; contentType: string; size: number; isInline?: boolean }>;
    receivedAt: Date;
    internetMessageId?: string;
  }

  function copyInput(m: FakeMessage): StoreInput {
    return {
      tenantId: m.tenantId,
      userId: m.userId,
      folder: m.folder,
      from: m.from,
      to: m.toRecipients,
      cc: m.ccRecipients,
      subject: m.subject,
      body: m.body,
      conversationId: m.conversationId,
      headers: Object.fromEntries(m.internetMessageHeaders.map((h) => [h.name, h.value])),
      importance: m.importance,
      attachments: m.attachments,
      receivedAt: new Date(m.receivedDateTime),
      internetMessageId: m.internetMessageId,
    };
  }

  function store(input: StoreInput): FakeMessage {
    const domain = input.from.emailAddress.address.split('@')[1] ?? 'example.com';
    const imid = input.internetMessageId ?? internetMessageId(domain);
    const text = input.body.contentType === 'html' ? input.body.content.replace(/<[^>]*>/g, ' ') : input.body.content;
    const headers = [
      { name: 'Message-ID', value: imid },
      { name: 'Subject', value: input.subject },
      { name: 'From', value: input.from.emailAddress.address },
      ...Object.entries(input.headers).map(([name, value]) => ({ name, value })),
    ];
    const attachments: FakeAttachment[] = input.attachments.map((a) => ({ id: exchangeLikeId('att'), name: a.name, contentType: a.contentType, size: a.size, isInline: a.isInline ?? false }));
    const msg: FakeMessage = {
      seq: ++seq,
      tenantId: input.tenantId,
      userId: input.userId,
      folder: input.folder,
      immutableId: exchangeLikeId('imm'),
      restId: exchangeLikeId('rest'),
      conversationId: input.conversationId,
      internetMessageId: imid,
      subject: input.subject,
      body: input.body,
      bodyPreview: text.replace(/\s+/g, ' ').trim().slice(0, 255),
      from: input.from,
      sender: input.from,
      toRecipients: input.to,
      ccRecipients: input.cc,
      replyTo: [],
      receivedDateTime: input.receivedAt.toISOString().replace(/\.\d{3}Z$/, 'Z'),
      sentDateTime: input.receivedAt.toISOString().replace(/\.\d{3}Z$/, 'Z'),
      importance: input.importance,
      isRead: false,
      internetMessageHeaders: headers,
      attachments,
    };
    messages.push(msg);
    return msg;
  }

  // ---------------------------------------------------------------------------------------------
  // Routing
  // ---------------------------------------------------------------------------------------------

  async function route(method: string, segments: string[], query: URLSearchParams, body: unknown, prefer: string | null, tenantId: string, appId: string, record: RecordedGraphRequest, rawPath: string): Promise<Reply> {
    const [root, a, b, c, d, e] = segments;
    if (root === 'subscriptions') {
      if (a === undefined) {
        if (method === 'POST') return createSubscription(tenantId, appId, body, prefer);
        if (method === 'GET') return { status: 200, body: { value: [...subs.values()].filter((s) => s.tenantId === tenantId).map(renderSubscription) } };
      }
      const sub = a ? subs.get(a) : undefined;
      if (!sub || sub.tenantId !== tenantId) return graphError(404, 'ResourceNotFound', 'The object was not found.');
      if (b === 'reauthorize' && method === 'POST') {
        sub.reauthorizations++;
        return { status: 204 };
      }
      if (b !== undefined) return graphError(404, 'ResourceNotFound', 'Unknown segment.');
      if (method === 'GET') return { status: 200, body: renderSubscription(sub) };
      if (method === 'DELETE') {
        subs.delete(sub.id);
        return { status: 204 };
      }
      if (method === 'PATCH') {
        const exp = (body as { expirationDateTime?: unknown } | undefined)?.expirationDateTime;
        const keys = Object.keys((body as object | undefined) ?? {});
        if (typeof exp !== 'string' || keys.some((k) => k !== 'expirationDateTime')) return graphError(400, 'InvalidRequest', 'Only expirationDateTime can be updated.');
        const at = Date.parse(exp);
        if (Number.isNaN(at) || at <= Date.now()) return graphError(400, 'InvalidRequest', 'Subscription expiration must be in the future.');
        if (at > Date.now() + maxMinutes * 60_000 + 60_000) return graphError(400, 'ExtensionError', `Subscription expiration can only be ${maxMinutes} minutes in the future.`);
        sub.expirationDateTime = new Date(at).toISOString();
        return { status: 200, body: renderSubscription(sub) };
      }
    }
    if (root === 'groups' && a && (b === 'members' || b === 'transitiveMembers') && c === undefined && method === 'GET') {
      return groupMembers(tenantId, a, b === 'transitiveMembers', query, rawPath);
    }
    if (root === 'users') {
      if (a === undefined && method === 'GET') return listUsers(tenantId, query);
      const user = a ? findUser(tenantId, a) : undefined;
      if (!user) return graphError(404, 'ErrorInvalidUser', `The requested user '${a}' is invalid.`);
      record.mailbox = user.mail.toLowerCase();
      if (b === undefined && method === 'GET') return { status: 200, body: project({ ...user }, parseSelect(query.get('$select'))) };
      if (b === 'messages' && c === undefined && method === 'GET') return listMessages(tenantId, user, query, prefer, rawPath);
      if (b === 'messages' && c !== undefined) {
        const msg = findMessage(tenantId, user, c);
        if (!msg) return graphError(404, 'ErrorItemNotFound', 'The specified object was not found in the store.');
        if (d === undefined && method === 'GET') {
          const expand = query.get('$expand') ?? '';
          return { status: 200, body: renderMessage(msg, wantsImmutable(prefer), parseSelect(query.get('$select')), /^attachments\b/.test(expand)) };
        }
        if (d === 'reply' && method === 'POST') return replyToMessage(tenantId, user, msg, body);
      }
      const inbox = (b === "mailFolders('inbox')" && c === 'messages' && d === 'delta') || (b === 'mailFolders' && c?.toLowerCase() === 'inbox' && d === 'messages' && e === 'delta');
      if (inbox && method === 'GET') return delta(tenantId, user, query, prefer, rawPath);
      if (b === 'events' && c === undefined && method === 'POST') return createEvent(tenantId, user, 'default', body);
      if (b === 'calendars' && c && d === 'events' && method === 'POST') return createEvent(tenantId, user, c, body);
      if (b === 'calendar' && c === 'getSchedule' && method === 'POST') return getSchedule(tenantId, body);
    }
    return graphError(400, 'BadRequest', `Resource not found for the segment '${segments.join('/')}'.`);
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const parsed = new URL(req.url ?? '/', url);
    const method = req.method ?? 'GET';
    const raw = await readBody(req);
    const prefer = header(req, 'prefer');
    const record: RecordedGraphRequest = { method, path: parsed.pathname, search: parsed.search, prefer, tenantId: undefined, mailbox: undefined, status: 0, at: Date.now() };
    let reply: Reply;
    try {
      const segments = parsed.pathname.split('/').filter(Boolean).map((s) => decodeURIComponent(s));
      if (segments[0] === 'v1.0') {
        const auth = /^Bearer (.+)$/.exec(header(req, 'authorization') ?? '')?.[1];
        const info = auth ? tokens.get(auth) : undefined;
        if (!info || info.expiresAt < Date.now()) {
          reply = graphError(401, 'InvalidAuthenticationToken', auth ? 'Access token has expired or is not yet valid.' : 'Access token is empty.');
        } else {
          record.tenantId = info.tenantId;
          let body: unknown;
          if (raw.length > 0) {
            try {
              body = JSON.parse(raw);
            } catch {
              throw new ODataError(400, 'BadRequest', 'Unable to read JSON request payload.');
            }
          }
          // Peek the mailbox so throttling rules can target one.
          if (segments[1] === 'users' && segments[2]) record.mailbox = findUser(info.tenantId, segments[2])?.mail.toLowerCase();
          const mb = record.mailbox;
          if (mb) {
            inFlight.set(mb, (inFlight.get(mb) ?? 0) + 1);
            maxInFlight.set(mb, Math.max(maxInFlight.get(mb) ?? 0, inFlight.get(mb) as number));
          }
          try {
            if (options.responseDelayMs) await new Promise((r) => setTimeout(r, options.responseDelayMs));
            const rule = throttles.find((t) => t.left > 0 && (!t.when || t.when({ method, path: parsed.pathname, mailbox: record.mailbox })));
            if (rule) {
              rule.left--;
              const retry = rule.retryAfterSeconds ?? 1;
              reply = graphError(rule.status ?? 429, rule.status === 503 ? 'ServiceUnavailable' : 'ApplicationThrottled', 'Application is over its MailboxConcurrency limit.', { 'Retry-After': String(retry) });
            } else {
              const rawPath = parsed.pathname.replace(/^\/v1\.0\//, '');
              reply = await route(method, segments.slice(1), parsed.searchParams, body, prefer, info.tenantId, info.appId, record, rawPath);
            }
          } finally {
            if (mb) inFlight.set(mb, (inFlight.get(mb) ?? 1) - 1);
          }
        }
      } else if (segments.length === 4 && segments[1] === 'v2.0' && segments[2] === '.well-known' && segments[3] === 'openid-configuration' && method === 'GET') {
        reply = openIdConfiguration(segments[0] as string);
      } else if (segments.length === 4 && segments[1] === 'oauth2' && segments[2] === 'v2.0' && segments[3] === 'token' && method === 'POST') {
        const form = new URLSearchParams(raw);
        const tenant = segments[0] as string;
        // The assertion's audience is the URL it was posted to, as Entra checks it.
        const tokenEndpoint = `${url}${parsed.pathname}`;
        record.tokenRequest = { tenant, clientId: form.get('client_id') ?? '', grantType: form.get('grant_type') ?? '', scope: form.get('scope') ?? '', clientAuth: clientAuthMethod(form) };
        reply = (await identity.redeemCode(tenant, form, tokenEndpoint)) ?? (await token(tenant, form, tokenEndpoint));
      } else if (segments.length === 4 && segments[1] === 'oauth2' && segments[2] === 'v2.0' && segments[3] === 'authorize' && method === 'GET') {
        reply = identity.authorize(segments[0] as string, parsed.searchParams);
      } else if (segments.length === 4 && segments[1] === 'discovery' && segments[2] === 'v2.0' && segments[3] === 'keys' && method === 'GET') {
        reply = identity.keys();
      } else if (segments.length === 3 && segments[1] === 'v2.0' && segments[2] === 'adminconsent' && method === 'GET') {
        reply = identity.adminConsent(segments[0] as string, parsed.searchParams);
      } else {
        reply = { status: 404, body: { error: 'not_found', path: parsed.pathname } };
      }
    } catch (err) {
      if (err instanceof ODataError) reply = graphError(err.status, err.code, err.message);
      else reply = graphError(500, 'InternalServerError', (err as Error).message);
    }
    record.status = reply.status;
    requests.push(record);
    const headers: Record<string, string> = { 'request-id': randomUUID(), ...(reply.headers ?? {}) };
    if (reply.body !== undefined) {
      res.writeHead(reply.status, { ...headers, 'content-type': 'application/json; odata.metadata=minimal; charset=utf-8' });
      res.end(JSON.stringify(reply.body));
    } else {
      res.writeHead(reply.status, headers);
      res.end(reply.text ?? '');
    }
  }

  const server = https.createServer({ key, cert }, (req, res) => {
    handle(req, res).catch((err: Error) => {
      res.writeHead(500);
      res.end(err.message);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  url = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;

  const toRecipient = (a: string | { address: string; name?: string }): Recipient => (typeof a === 'string' ? { emailAddress: { address: a } } : { emailAddress: a });

  return {
    url,
    ca: cert,
    requests,
    deliveries,
    addTenant(id = newGuid()) {
      tenants.set(id, { id, users: new Map(), groups: new Map() });
      return id;
    },
    consent(tenantId) {
      tenantOf(tenantId);
      consented.add(tenantId);
    },
    signIn(tenantId, mail, opts = {}) {
      const user = findUser(tenantId, mail);
      if (!user) throw new Error(`fake graph: no user ${mail} in ${tenantId}`);
      identity.signIn({ tenantId, user, admin: opts.admin ?? true });
    },
    signOut: () => identity.signIn(undefined),
    tamperNextIdToken: (t) => identity.tamperNextIdToken(t),
    registerCertificate: (pem) => clientAuth.register(pem),
    setSecretsAllowed: (allowed) => clientAuth.setSecretsAllowed(allowed),
    browserRequests: identity.browserRequests,
    consented: (tenantId) => consented.has(tenantId),
    revokeConsent(tenantId) {
      consented.delete(tenantId);
      for (const [k, v] of tokens) if (v.tenantId === tenantId) tokens.delete(k);
    },
    addUser(tenantId, u) {
      const user: FakeUser = { id: newGuid(), displayName: u.displayName ?? u.mail.split('@')[0] ?? u.mail, mail: u.mail, userPrincipalName: u.mail, ...(u.jobTitle ? { jobTitle: u.jobTitle } : {}) };
      tenantOf(tenantId).users.set(user.id, user);
      return user;
    },
    addGroup(tenantId, displayName, members) {
      const g: FakeGroup = { id: newGuid(), displayName, members };
      tenantOf(tenantId).groups.set(g.id, g);
      return g;
    },
    addCalendar(tenantId, mailbox, name) {
      const user = findUser(tenantId, mailbox);
      if (!user) throw new Error(`fake graph: no mailbox ${mailbox}`);
      const id = exchangeLikeId('cal');
      calendars.set(`${tenantId}:${user.id}:${id}`, name);
      return id;
    },
    async deliverMail(tenantId, mailbox, mail, opts = {}) {
      const user = findUser(tenantId, mailbox);
      if (!user) throw new Error(`fake graph: no mailbox ${mailbox}`);
      const headers: Record<string, string> = { ...(mail.headers ?? {}) };
      if (mail.inReplyTo) {
        headers['In-Reply-To'] = mail.inReplyTo;
        headers.References = mail.inReplyTo;
      }
      const message = store({
        tenantId,
        userId: user.id,
        folder: 'inbox',
        from: toRecipient(mail.from),
        to: (mail.to ?? [user.mail]).map(toRecipient),
        cc: (mail.cc ?? []).map(toRecipient),
        subject: mail.subject,
        body: mail.html !== undefined ? { contentType: 'html', content: mail.html } : { contentType: 'text', content: mail.text ?? '' },
        conversationId: mail.conversationId ?? exchangeLikeId('conv'),
        headers,
        importance: mail.importance ?? 'normal',
        attachments: mail.attachments ?? [],
        receivedAt: mail.receivedAt ?? new Date(),
      });
      const sent = opts.notify === false ? [] : await notifyCreated(message);
      return { message, deliveries: sent };
    },
    notifyAgain: (message) => notifyCreated(message),
    async lifecycle(subscriptionId, event) {
      const s = subs.get(subscriptionId);
      if (!s) throw new Error(`fake graph: no subscription ${subscriptionId}`);
      if (!s.lifecycleNotificationUrl) return [];
      if (event === 'subscriptionRemoved') subs.delete(subscriptionId);
      const item = { subscriptionId: s.id, subscriptionExpirationDateTime: s.expirationDateTime, tenantId: s.tenantId, clientState: s.clientState ?? null, lifecycleEvent: event };
      return [await post('lifecycle', s.lifecycleNotificationUrl, s.id, { value: [item] })];
    },
    subscriptions: () => [...subs.values()],
    messages(tenantId, mailbox, folder) {
      const user = findUser(tenantId, mailbox);
      return messages.filter((m) => m.tenantId === tenantId && m.userId === user?.id && (folder === undefined || m.folder === folder));
    },
    events(tenantId, mailbox) {
      const user = findUser(tenantId, mailbox);
      return events.filter((e) => e.tenantId === tenantId && e.userId === user?.id);
    },
    throttle(rule) {
      throttles.push({ ...rule, left: rule.times ?? 1 });
    },
    expireDeltaTokens() {
      deltaGeneration++;
    },
    maxInFlight: (mailbox) => maxInFlight.get(mailbox.toLowerCase()) ?? 0,
    clearRequests() {
      requests.length = 0;
      deliveries.length = 0;
    },
    stop: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

function header(req: IncomingMessage, name: string): string | null {
  const v = req.headers[name];
  if (Array.isArray(v)) return v.join(', ');
  return v ?? null;
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}
