import type { TokenCredential } from '@azure/identity';
import { randomBytes } from 'node:crypto';
import https from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { makeSelfSignedCert } from '../helpers/certs';

/**
 * A local HTTPS Key Vault speaking the REST protocol the real `SecretClient` uses, so tests run the
 * real SDK end to end: challenge-based auth, JSON bodies, soft delete, recovery, paging, throttling.
 *
 * Auth follows the service: a request without a bearer token gets 401 with a `WWW-Authenticate`
 * challenge; a token is accepted only if it equals one the fake was told to accept. Names are
 * case-insensitive, as in Key Vault.
 */
export interface FakeKeyVaultOptions {
  /** Tokens to accept; default `['fake-kv-token']`. */
  acceptedTokens?: string[];
  tenantId?: string;
  /** The challenge form: `resource="…"` (what Key Vault sends) or the newer `scope="…"`. */
  challenge?: 'resource' | 'scope';
  /** When on, purge answers 403 like a vault with purge protection. */
  purgeProtection?: boolean;
  /** Largest page `GET /secrets` returns, whatever maxresults asks; the service caps it at 25. */
  maxPageSize?: number;
}

export interface RecordedRequest {
  method: string;
  /** Path without the query string. */
  path: string;
  query: Record<string, string>;
  /** An `Authorization: Bearer …` header was present. */
  hadAuth: boolean;
  /** The token was one the fake accepts. */
  authorized: boolean;
  status: number;
}

export interface InjectedFailure {
  status: number;
  /** Sent as `Retry-After`. */
  retryAfterSeconds?: number;
  code?: string;
  /** How many authorised requests fail; default 1. */
  times?: number;
  /** Limit the failure to matching requests. */
  when?: (req: { method: string; path: string }) => boolean;
}

interface Version {
  version: string;
  value: string;
  contentType?: string;
  tags?: Record<string, string>;
  created: number;
  updated: number;
}

interface SecretEntry {
  name: string;
  versions: Version[];
  deletedDate?: number;
}

export interface FakeKeyVault {
  /** `https://127.0.0.1:<port>`; the vault URI for the client. */
  url: string;
  /** PEM of the certificate the fake serves; clients trust it explicitly. */
  ca: string;
  /** Options for `new SecretClient(url, cred, clientOptions)` so the client trusts `ca` (only that client). */
  clientOptions: { tlsOptions: { ca: string } };
  requests: RecordedRequest[];
  clearRequests(): void;
  /** Replaces the accepted tokens with this one. */
  setAcceptedToken(token: string): void;
  /** The next matching authorised request(s) fail with this status (e.g. 429 + Retry-After). */
  injectFailure(failure: InjectedFailure): void;
  /** Live (not deleted) secret names. */
  liveNames(): string[];
  /** Soft-deleted secret names. */
  deletedNames(): string[];
  /** The latest value, for tests that check what reached the vault. */
  peek(name: string): string | undefined;
  close(): Promise<void>;
}

const DEFAULT_TOKEN = 'fake-kv-token';
const RETENTION_DAYS = 90;

export async function startFakeKeyVault(options: FakeKeyVaultOptions = {}): Promise<FakeKeyVault> {
  const { key, cert } = await makeSelfSignedCert();
  let accepted = new Set(options.acceptedTokens ?? [DEFAULT_TOKEN]);
  const tenantId = options.tenantId ?? '00000000-0000-0000-0000-00000000fa4e';
  const maxPage = options.maxPageSize ?? 25;
  const secrets = new Map<string, SecretEntry>();
  const requests: RecordedRequest[] = [];
  const failures: Array<InjectedFailure & { remaining: number }> = [];
  let base = '';

  const challenge =
    options.challenge === 'scope'
      ? `Bearer authorization="https://login.microsoftonline.com/${tenantId}", scope="https://vault.azure.net/.default"`
      : `Bearer authorization="https://login.microsoftonline.com/${tenantId}", resource="https://vault.azure.net"`;

  const now = (): number => Math.floor(Date.now() / 1000);
  const live = (name: string): SecretEntry | undefined => {
    const entry = secrets.get(name.toLowerCase());
    return entry && entry.deletedDate === undefined ? entry : undefined;
  };
  const deleted = (name: string): SecretEntry | undefined => {
    const entry = secrets.get(name.toLowerCase());
    return entry && entry.deletedDate !== undefined ? entry : undefined;
  };
  const attributes = (v: Version): Record<string, unknown> => ({
    enabled: true,
    created: v.created,
    updated: v.updated,
    recoveryLevel: options.purgeProtection ? 'Recoverable' : 'Recoverable+Purgeable',
    recoverableDays: RETENTION_DAYS,
  });
  const latest = (entry: SecretEntry): Version => entry.versions[entry.versions.length - 1] as Version;
  const bundle = (entry: SecretEntry, v: Version, withValue: boolean): Record<string, unknown> => ({
    ...(withValue ? { value: v.value } : {}),
    id: `${base}/secrets/${entry.name}/${v.version}`,
    attributes: attributes(v),
    ...(v.contentType !== undefined ? { contentType: v.contentType } : {}),
    ...(v.tags !== undefined ? { tags: v.tags } : {}),
  });
  const deletedBundle = (entry: SecretEntry): Record<string, unknown> => ({
    ...bundle(entry, latest(entry), false),
    recoveryId: `${base}/deletedsecrets/${entry.name}`,
    deletedDate: entry.deletedDate,
    scheduledPurgeDate: (entry.deletedDate ?? now()) + RETENTION_DAYS * 86400,
  });
  const item = (entry: SecretEntry): Record<string, unknown> => {
    const v = latest(entry);
    return {
      id: `${base}/secrets/${entry.name}`,
      attributes: attributes(v),
      ...(v.contentType !== undefined ? { contentType: v.contentType } : {}),
      ...(v.tags !== undefined ? { tags: v.tags } : {}),
    };
  };
  const notFound = (name: string): Reply => kvError(404, 'SecretNotFound', `A secret with (name/id) ${name} was not found in this key vault. If you recently deleted this secret you may be able to recover it using the correct recovery command.`);
  const deletedNotFound = (name: string): Reply => kvError(404, 'SecretNotFound', `Deleted Secret not found: ${name}`);

  function list(entries: SecretEntry[], query: Record<string, string>, path: string, render: (e: SecretEntry) => Record<string, unknown>): Reply {
    const requested = query.maxresults === undefined ? maxPage : Number(query.maxresults);
    if (!Number.isInteger(requested) || requested < 1 || requested > 25) {
      return kvError(400, 'BadParameter', 'The value of maxresults must be between 1 and 25.');
    }
    const size = Math.min(requested, maxPage);
    const skip = query.$skiptoken === undefined ? 0 : Number(Buffer.from(query.$skiptoken, 'base64url').toString('utf8'));
    const sorted = [...entries].sort((a, b) => a.name.localeCompare(b.name));
    const page = sorted.slice(skip, skip + size);
    const more = skip + size < sorted.length;
    const next = new URLSearchParams({ 'api-version': query['api-version'] ?? '', $skiptoken: Buffer.from(String(skip + size)).toString('base64url'), maxresults: String(size) });
    return json(200, { value: page.map(render), nextLink: more ? `${base}${path}?${next.toString()}` : null });
  }

  function route(method: string, segments: string[], query: Record<string, string>, body: unknown): Reply {
    const [collection, rawName, sub, extra] = segments;
    const name = rawName ?? '';
    if (collection === 'secrets' && segments.length === 1 && method === 'GET') {
      return list([...secrets.values()].filter((e) => e.deletedDate === undefined), query, '/secrets', item);
    }
    if (collection === 'deletedsecrets' && segments.length === 1 && method === 'GET') {
      return list([...secrets.values()].filter((e) => e.deletedDate !== undefined), query, '/deletedsecrets', deletedBundle);
    }
    if (!rawName || extra !== undefined) return kvError(404, 'NotFound', 'The requested resource was not found.');
    if (!/^[0-9a-zA-Z-]{1,127}$/.test(name)) return kvError(400, 'BadParameter', 'The request URI contains an invalid name.');

    if (collection === 'secrets') {
      if (sub === undefined && method === 'PUT') return setSecret(name, body);
      if (sub === undefined && method === 'DELETE') {
        const entry = live(name);
        if (!entry) return notFound(name);
        entry.deletedDate = now();
        return json(200, deletedBundle(entry));
      }
      if (sub === 'versions' && method === 'GET') {
        const entry = live(name);
        if (!entry) return notFound(name);
        return list(entry.versions.map((v) => ({ name: entry.name, versions: [v] })), query, `/secrets/${name}/versions`, (e) => ({ ...item(e), id: `${base}/secrets/${e.name}/${latest(e).version}` }));
      }
      if (method === 'GET') {
        const entry = live(name);
        if (!entry) return notFound(name);
        const v = sub ? entry.versions.find((x) => x.version === sub) : latest(entry);
        return v ? json(200, bundle(entry, v, true)) : notFound(`${name}/${sub ?? ''}`);
      }
      return kvError(405, 'MethodNotAllowed', `The requested method ${method} is not allowed.`);
    }

    if (collection === 'deletedsecrets') {
      const entry = deleted(name);
      if (sub === 'recover' && method === 'POST') {
        if (!entry) return deletedNotFound(name);
        delete entry.deletedDate;
        return json(200, bundle(entry, latest(entry), false));
      }
      if (sub !== undefined) return kvError(404, 'NotFound', 'The requested resource was not found.');
      if (method === 'GET') return entry ? json(200, deletedBundle(entry)) : deletedNotFound(name);
      if (method === 'DELETE') {
        if (!entry) return deletedNotFound(name);
        if (options.purgeProtection) {
          return kvError(403, 'Forbidden', `Operation "purge" is not allowed because purge protection is enabled for this vault. Key Vault service will automatically purge it after the retention period has passed.`);
        }
        secrets.delete(name.toLowerCase());
        return { status: 204, headers: {}, body: '' };
      }
      return kvError(405, 'MethodNotAllowed', `The requested method ${method} is not allowed.`);
    }
    return kvError(404, 'NotFound', 'The requested resource was not found.');
  }

  function setSecret(name: string, body: unknown): Reply {
    if (deleted(name)) {
      return kvError(409, 'Conflict', `Secret ${name} is currently in a deleted but recoverable state, and its name cannot be reused; in this state, the secret can only be recovered or purged.`, 'ObjectIsDeletedButRecoverable');
    }
    if (typeof body !== 'object' || body === null || typeof (body as { value?: unknown }).value !== 'string') {
      return kvError(400, 'BadParameter', 'Property value is required.');
    }
    const params = body as { value: string; contentType?: unknown; tags?: unknown };
    if (Buffer.byteLength(params.value, 'utf8') > 25 * 1024) return kvError(400, 'BadParameter', 'Secret value is too large.');
    const t = now();
    const version: Version = {
      version: randomBytes(16).toString('hex'),
      value: params.value,
      created: t,
      updated: t,
      ...(typeof params.contentType === 'string' ? { contentType: params.contentType } : {}),
      ...(isStringRecord(params.tags) ? { tags: params.tags } : {}),
    };
    let entry = live(name);
    if (!entry) {
      entry = { name, versions: [] };
      secrets.set(name.toLowerCase(), entry);
    }
    entry.versions.push(version);
    return json(200, bundle(entry, version, true));
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', base);
    const method = req.method ?? 'GET';
    const raw = await readBody(req);
    const auth = /^Bearer (.+)$/i.exec(req.headers.authorization ?? '');
    const record: RecordedRequest = {
      method,
      path: url.pathname,
      query: Object.fromEntries(url.searchParams),
      hadAuth: auth !== null,
      authorized: auth !== null && accepted.has(auth[1] ?? ''),
      status: 0,
    };
    requests.push(record);

    let reply: Reply;
    if (!record.authorized) {
      // The service sends the challenge with every 401, with or without a token.
      reply = auth
        ? kvError(401, 'Unauthorized', 'AKV10032: Invalid issuer or the token is not accepted by this vault.')
        : kvError(401, 'Unauthorized', 'AKV10000: Request is missing a Bearer or PoP token.');
      reply.headers['WWW-Authenticate'] = challenge;
    } else if (!record.query['api-version']) {
      reply = kvError(400, 'BadParameter', 'The request URI contains an invalid or missing api-version.');
    } else {
      const failure = failures.find((f) => f.remaining > 0 && (!f.when || f.when({ method, path: url.pathname })));
      if (failure) {
        failure.remaining--;
        reply = kvError(failure.status, failure.code ?? (failure.status === 429 ? 'Throttled' : 'InjectedFailure'), 'Injected failure.');
        if (failure.retryAfterSeconds !== undefined) reply.headers['Retry-After'] = String(failure.retryAfterSeconds);
      } else {
        const body = raw.length > 0 ? safeJson(raw) : undefined;
        const segments = url.pathname.replace(/^\/+/, '').split('/');
        // getSecret sends GET /secrets/{name}/ (an empty version) for the latest version.
        if (segments.length > 1 && segments[segments.length - 1] === '') segments.pop();
        reply = route(method, segments.map(decodeURIComponent), record.query, body);
      }
    }
    record.status = reply.status;
    res.writeHead(reply.status, { ...reply.headers, 'x-ms-keyvault-service-version': '1.9.0.0', 'x-ms-request-id': randomBytes(8).toString('hex') });
    res.end(reply.body);
  }

  const server = https.createServer({ key, cert }, (req, res) => {
    handle(req, res).catch(() => {
      if (!res.headersSent) res.writeHead(500, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify({ error: { code: 'InternalError', message: 'fake Key Vault failed' } }));
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  base = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;

  return {
    url: base,
    ca: cert,
    clientOptions: { tlsOptions: { ca: cert } },
    requests,
    clearRequests: () => {
      requests.length = 0;
    },
    setAcceptedToken: (token) => {
      accepted = new Set([token]);
    },
    injectFailure: (failure) => {
      failures.push({ ...failure, remaining: failure.times ?? 1 });
    },
    liveNames: () => [...secrets.values()].filter((e) => e.deletedDate === undefined).map((e) => e.name),
    deletedNames: () => [...secrets.values()].filter((e) => e.deletedDate !== undefined).map((e) => e.name),
    peek: (name) => {
      const entry = live(name);
      return entry ? latest(entry).value : undefined;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

/** A credential that hands out a fixed token: the only part of the client that is not the real SDK. */
export function staticTokenCredential(token: string = DEFAULT_TOKEN): TokenCredential & { calls: number } {
  const credential = {
    calls: 0,
    getToken: async () => {
      credential.calls++;
      return { token, expiresOnTimestamp: Date.now() + 3600_000 };
    },
  };
  return credential;
}

interface Reply {
  status: number;
  headers: Record<string, string>;
  body: string;
}

function json(status: number, body: unknown): Reply {
  return { status, headers: { 'Content-Type': 'application/json; charset=utf-8' }, body: JSON.stringify(body) };
}

function kvError(status: number, code: string, message: string, innerCode?: string): Reply {
  return json(status, { error: { code, message, ...(innerCode ? { innererror: { code: innerCode } } : {}) } });
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}

function isStringRecord(value: unknown): value is Record<string, string> {
  return typeof value === 'object' && value !== null && !Array.isArray(value) && Object.values(value).every((v) => typeof v === 'string');
}
