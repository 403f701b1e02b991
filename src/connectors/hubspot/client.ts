import http from 'node:http';
import https from 'node:https';
import type { Client } from '@hubspot/api-client';
import { newHubSpotClient } from './sdk';
import { AppError } from '../../platform/errors';
import type { Logger } from '../../platform/logging';
import type { IntegrationId, TenantId } from '../../storage';
import { defaultClassify, parseRetryAfter, withRetry, type Classification } from '../base';
import type { CallClass } from './budget';
import type { HubSpotCaller, HubSpotCallStats } from './caller';
import { HubSpotApiError, HubSpotDailyLimitError, HubSpotUnauthorizedError, hubspotErrorInfo, isHubSpotHttpError } from './errors';
import { raceSignal } from '../base/abort';
import type { CallKind, GateTarget, HubSpotAuthKind, HubSpotRateGate, HubSpotRatePolicy } from './rateLimit';

/** Where the caller gets its bearer token. */
export interface HubSpotAuth {
  readonly kind: HubSpotAuthKind;
  accessToken(): Promise<string>;
  /**
   * HubSpot answered 401 to `token`. Resolves true when one more attempt with a fresh token may help
   * (OAuth: the cached token is dropped, the next `accessToken()` refreshes); false when it cannot
   * (a revoked private-app token: the integration is marked `needs_reauth`).
   */
  unauthorized(token: string): Promise<boolean>;
}

export interface CreateHubSpotCallerOptions {
  tenantId: TenantId;
  integrationId: IntegrationId;
  portalId: string;
  auth: HubSpotAuth;
  gate: HubSpotRateGate;
  policy: HubSpotRatePolicy;
  /** `HUBSPOT_API_BASE_URL`, handed to the SDK as `basePath`. */
  apiBaseUrl: string;
  /** Sync work is `background`; webhook, engine pushes and status checks are `interactive`. Default `background`. */
  priority?: CallClass;
  /** Per attempt. The SDK has no timeout of its own. Default 30 s. */
  timeoutMs?: number;
  /** Total attempts per call (401 refresh aside). Default 4. */
  maxAttempts?: number;
  /** Budget of one call, waits included. Default 120 s. */
  maxElapsedMs?: number;
  /** Ends every call in flight (a function's own deadline). */
  signal?: AbortSignal;
  /** For an HTTPS endpoint with a private CA (tests). Default: a shared keep-alive agent per protocol. */
  agent?: http.Agent;
  log?: Logger;
}

/** Back-off after a DAILY 429: the account's day ends at its own midnight, which we do not know. */
const DAILY_PAUSE_MS = 15 * 60_000;
/** HubSpot asks for at least 2 s after 423 Locked. */
const LOCKED_WAIT_MS = 2_000;
/** Cloudflare statuses HubSpot's docs list next to 502/503/504 as "pause and retry". */
const EDGE_STATUSES = new Set([521, 523, 524]);

const sharedAgents = {
  'http:': new http.Agent({ keepAlive: true, maxSockets: 64 }),
  'https:': new https.Agent({ keepAlive: true, maxSockets: 64 }),
};

/**
 * The one way HubSpot is called (see `HubSpotCaller`). Each attempt builds a fresh SDK `Client` with
 * the current token, no SDK retries and no SDK limiter (its decorator list is process-wide and its
 * limiter leaks per token), an HTTP agent that destroys the request when the attempt's signal aborts
 * (the SDK has no timeout), and a middleware that reads HubSpot's rate-limit headers.
 *
 * `fn` must touch the client synchronously before its first `await`: the SDK builds an API group on
 * first access with whatever decorators the most recent `new Client()` set, and only within the same
 * tick is that ours (none).
 */
export function createHubSpotCaller(opts: CreateHubSpotCallerOptions): HubSpotCaller {
  const stats: HubSpotCallStats = { calls: 0, searchCalls: 0, rateLimitWaits: 0, rateLimitWaitedMs: 0, retries: 0, status429: 0 };
  const target: GateTarget = { tenantId: opts.tenantId, integrationId: opts.integrationId, portalId: opts.portalId, policy: opts.policy };
  const cls: CallClass = opts.priority ?? 'background';
  const timeoutMs = opts.timeoutMs ?? 30_000;
  const baseUrl = new URL(opts.apiBaseUrl);
  const baseAgent = opts.agent ?? (baseUrl.protocol === 'https:' ? sharedAgents['https:'] : sharedAgents['http:']);
  const gate = opts.gate;

  const observeHeaders = (headers: unknown, kind: CallKind) => {
    const h = headerReader(headers);
    const max = Number(h('x-hubspot-ratelimit-max'));
    const interval = Number(h('x-hubspot-ratelimit-interval-milliseconds'));
    if (kind === 'standard' && max > 0 && interval > 0) gate.observeMax(target, max, interval);
    if (kind === 'standard' && h('x-hubspot-ratelimit-remaining') === '0') gate.windowFull(target);
  };

  /** After a 429: hold the portal (or token) everywhere, or stop for the day. */
  const on429 = async (err: unknown, kind: CallKind): Promise<void> => {
    stats.status429++;
    const info = hubspotErrorInfo(err);
    const policy = (info.policyName ?? '').toUpperCase();
    const message = (info.message ?? '').toLowerCase();
    if (policy === 'DAILY' || message.includes('daily limit')) {
      await gate.penalize(target, 'standard', DAILY_PAUSE_MS).catch(() => undefined);
      throw new HubSpotDailyLimitError(opts.portalId, Date.now() + DAILY_PAUSE_MS);
    }
    const headers = (err as { headers?: unknown }).headers;
    const retryAfter = headers && typeof headers === 'object' ? parseRetryAfter(headers as Record<string, unknown>) : undefined;
    let pauseKind: CallKind = kind;
    let pause: number;
    if (policy === 'SECONDLY' || message.includes('secondly limit')) {
      pauseKind = 'search';
      pause = gate.window(target, 'search').intervalMs;
    } else {
      // TEN_SECONDLY_ROLLING (or an unnamed policy): the rolling window has to drain.
      pause = retryAfter ?? gate.window(target, kind).intervalMs;
    }
    opts.log?.warn('HubSpot rate limit hit; holding calls', { portalId: opts.portalId, policy: policy || 'unknown', pauseMs: pause, kind: pauseKind });
    await gate.penalize(target, pauseKind, pause).catch(() => undefined);
  };

  const classifyFor =
    (idempotent: boolean) =>
    (err: unknown, now: number): Classification => {
      // Our own errors (daily limit, dead grant, unavailable integration) are final by construction.
      if (err instanceof AppError) return { retryable: false };
      const status = isHubSpotHttpError(err) ? (err as { code: number }).code : undefined;
      if (status === 429) return { retryable: true, reason: 'rate-limited' }; // refused before processing; the gate waits
      if (!idempotent) {
        // Only failures that prove the request never reached HubSpot are safe to repeat.
        const code = (err as { code?: unknown; cause?: { code?: unknown } }).code ?? (err as { cause?: { code?: unknown } }).cause?.code;
        return code === 'ECONNREFUSED' ? { retryable: true, reason: 'network' } : { retryable: false };
      }
      if (status === 423) return { retryable: true, retryAfterMs: LOCKED_WAIT_MS, reason: 'locked' };
      if (status !== undefined && EDGE_STATUSES.has(status)) return { retryable: true, reason: 'server-error' };
      if (status === 401 || status === 403 || status === 404 || status === 400 || status === 409) return { retryable: false };
      return defaultClassify(err, now);
    };

  const attempt = async <T>(kind: CallKind, token: string, fn: (client: Client, signal: AbortSignal) => Promise<T>): Promise<T> => {
    const waited = await gate.acquire(target, kind, cls, opts.signal);
    const grantedAt = Date.now();
    const onSent = (sentAt: number) => {
      gate.sent(target, kind, cls, grantedAt, sentAt).catch((err: unknown) => opts.log?.warn('could not book a late HubSpot call in the rate budget', { portalId: opts.portalId, error: err instanceof Error ? err.message : String(err) }));
    };
    if (waited > 1) {
      stats.rateLimitWaits++;
      stats.rateLimitWaitedMs += waited;
    }
    stats.calls++;
    if (kind === 'search') stats.searchCalls++;
    const timeout = AbortSignal.timeout(timeoutMs);
    const signal = opts.signal ? AbortSignal.any([opts.signal, timeout]) : timeout;
    const client = newHubSpotClient({
      accessToken: token,
      basePath: opts.apiBaseUrl,
      numberOfApiCallRetries: 0,
      httpAgent: signalAgent(baseAgent, signal, onSent),
      middleware: [
        {
          pre: (ctx: unknown) => ctx,
          post: (ctx: unknown) => {
            observeHeaders((ctx as { headers?: unknown }).headers, kind);
            return ctx;
          },
        },
      ],
    });
    try {
      return await raceSignal(fn(client, signal), signal);
    } catch (err) {
      if (isHubSpotHttpError(err)) {
        const status = (err as { code: number }).code;
        if (status !== 429) observeHeaders((err as { headers?: unknown }).headers, kind);
        if (status === 429) await on429(err, kind);
      }
      throw err;
    }
  };

  return {
    tenantId: opts.tenantId,
    integrationId: opts.integrationId,
    portalId: opts.portalId,
    stats: () => ({ ...stats }),
    async call<T>(kind: CallKind, operation: string, fn: (client: Client, signal: AbortSignal) => Promise<T>, callOpts?: { idempotent?: boolean }): Promise<T> {
      const idempotent = callOpts?.idempotent ?? true;
      let refreshed = false;
      for (;;) {
        const token = await opts.auth.accessToken();
        try {
          return await withRetry(() => attempt(kind, token, fn), {
            idempotent: true, // decided per failure by classifyFor
            classify: classifyFor(idempotent),
            maxAttempts: opts.maxAttempts ?? 4,
            maxElapsedMs: opts.maxElapsedMs ?? 120_000,
            ...(opts.signal ? { signal: opts.signal } : {}),
            onRetry: (n, delayMs, reason) => {
              stats.retries++;
              opts.log?.debug('retrying HubSpot call', { operation, attempt: n, delayMs: Math.round(delayMs), reason });
            },
          });
        } catch (err) {
          if (isHubSpotHttpError(err) && (err as { code: number }).code === 401) {
            // One refresh and one retry (the contract), then it is the grant that is gone.
            if (!refreshed && (await opts.auth.unauthorized(token))) {
              refreshed = true;
              continue;
            }
            throw new HubSpotUnauthorizedError(`HubSpot rejected the ${opts.auth.kind === 'oauth' ? 'access token after a refresh' : 'private-app token'} for ${operation}`);
          }
          throw toPublicError(operation, err);
        }
      }
    },
  };
}

/** SDK HTTP failures become `HubSpotApiError` (no headers, no request); our own errors pass unchanged. */
function toPublicError(operation: string, err: unknown): unknown {
  if (err instanceof AppError) return err;
  if (isHubSpotHttpError(err)) return new HubSpotApiError(operation, hubspotErrorInfo(err));
  return err;
}

/**
 * An agent that hands pooling to the shared keep-alive agent but destroys each request when `signal`
 * aborts, and says when a request has left (`finish`: handed to the OS, after any connection set-up),
 * which is when HubSpot starts counting it. It exists because the SDK's node transport accepts an agent
 * and nothing else per request.
 */
function signalAgent(base: http.Agent, signal: AbortSignal, onSent: (at: number) => void): http.Agent {
  const agent = Object.create(base) as http.Agent & { addRequest(req: http.ClientRequest, options: unknown): void };
  const baseAdd = (base as unknown as { addRequest(req: http.ClientRequest, options: unknown): void }).addRequest.bind(base);
  agent.addRequest = (req, options) => {
    if (signal.aborted) {
      process.nextTick(() => req.destroy(signal.reason instanceof Error ? signal.reason : new Error('aborted')));
    } else {
      const onAbort = () => req.destroy(signal.reason instanceof Error ? signal.reason : new Error('aborted'));
      signal.addEventListener('abort', onAbort, { once: true });
      req.once('close', () => signal.removeEventListener('abort', onAbort));
    }
    req.once('finish', () => onSent(Date.now()));
    baseAdd(req, options);
  };
  return agent;
}

function headerReader(headers: unknown): (name: string) => string | undefined {
  if (!headers || typeof headers !== 'object') return () => undefined;
  if (typeof (headers as { get?: unknown }).get === 'function') {
    const h = headers as { get(n: string): string | null };
    return (name) => h.get(name) ?? undefined;
  }
  const bag = headers as Record<string, unknown>;
  const lower = new Map(Object.entries(bag).map(([k, v]) => [k.toLowerCase(), v]));
  return (name) => {
    const v = lower.get(name);
    return typeof v === 'string' ? v : Array.isArray(v) && typeof v[0] === 'string' ? v[0] : typeof v === 'number' ? String(v) : undefined;
  };
}

/** What `requestJson` throws for a non-2xx answer: the SDK's `ApiException` shape, so the caller classifies it alike. */
export class HubSpotHttpError extends Error {
  readonly code: number;
  readonly body: unknown;
  readonly headers: Record<string, string>;
  constructor(code: number, body: unknown, headers: Record<string, string>) {
    super(`HubSpot answered HTTP ${code}`);
    this.name = 'HubSpotHttpError';
    this.code = code;
    this.body = body;
    this.headers = headers;
  }
}

/**
 * `client.apiRequest` (for endpoints the codegen lacks, and date-versioned paths) with the answer
 * parsed and a non-2xx turned into an error: `apiRequest` itself resolves whatever the status.
 */
export async function requestJson(client: Client, opts: { method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE'; path: string; body?: unknown; qs?: Record<string, string> }): Promise<unknown> {
  const res = await client.apiRequest({ method: opts.method, path: opts.path, ...(opts.body !== undefined ? { body: opts.body } : {}), ...(opts.qs ? { qs: opts.qs } : {}) });
  const text = await res.text();
  let json: unknown;
  try {
    json = text ? JSON.parse(text) : undefined;
  } catch {
    json = undefined;
  }
  if (!res.ok) {
    const headers: Record<string, string> = {};
    res.headers.forEach((v, k) => {
      headers[k] = v;
    });
    throw new HubSpotHttpError(res.status, json, headers);
  }
  return json;
}
