import { RetryAfterTooLongError } from './errors';
import { raceSignal, sleep } from './abort';

/** What a classifier says about a failure. */
export interface Classification {
  retryable: boolean;
  /** The least the server asked us to wait, from `Retry-After` and friends. */
  retryAfterMs?: number | undefined;
  /** Short label handed to `onRetry`, so callers can count rate-limit waits apart from outages. */
  reason?: RetryReason | undefined;
}

/** `(string & {})` keeps the known labels in editor completion while letting classifiers add their own. */
export type RetryReason = 'rate-limited' | 'server-error' | 'timeout' | 'network' | (string & {});

/** `now` is withRetry's clock, for reading HTTP-date Retry-After values. */
export type Classifier = (err: unknown, now: number) => Classification;

export interface RetryOptions {
  /**
   * Required on purpose: retrying a POST that reached the server may create a second ticket or send a
   * second message. `false` makes exactly one attempt. Pass `true` for reads, PUTs, deletes, and writes
   * guarded by an idempotency key or a dedupe lookup.
   */
  idempotent: boolean;
  /** Total attempts, the first included. Default 4. */
  maxAttempts?: number;
  /** Base of the exponential backoff. Default 250 ms. */
  baseDelayMs?: number;
  /**
   * Cap of any single wait, ours or the server's. A server asking for more ends the retries with
   * `RetryAfterTooLongError` rather than sleeping through the function timeout. Default 20 s.
   */
  maxDelayMs?: number;
  /**
   * Budget for the whole call, attempts and waits included, measured from the first attempt. A backoff
   * that would overrun it is shortened to what is left; a server-mandated wait that would overrun it is
   * `RetryAfterTooLongError`. Default 60 s.
   */
  maxElapsedMs?: number;
  classify?: Classifier;
  signal?: AbortSignal;
  /** Called before each wait. `attempt` is the 1-based attempt that just failed. */
  onRetry?: (attempt: number, delayMs: number, reason: RetryReason, error: unknown) => void;
  sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
  /** In [0, 1). */
  random?: () => number;
  now?: () => number;
}

export interface AttemptContext {
  /** 1-based. */
  attempt: number;
  signal: AbortSignal | undefined;
}

const DEFAULTS = { maxAttempts: 4, baseDelayMs: 250, maxDelayMs: 20_000, maxElapsedMs: 60_000 } as const;

/**
 * Runs `fn` until it succeeds, a failure is not retryable, attempts or budget run out, or `signal`
 * aborts. Waits are full-jitter exponential backoff, random(0, min(maxDelay, base·2^n)), which spreads
 * instances that failed together (AWS's "Exponential Backoff and Jitter"); when the server names a wait
 * we never wait less. Exhausting attempts or budget rethrows the last error unchanged.
 */
export async function withRetry<T>(fn: (ctx: AttemptContext) => Promise<T>, opts: RetryOptions): Promise<T> {
  const maxAttempts = Math.max(1, Math.floor(opts.maxAttempts ?? DEFAULTS.maxAttempts));
  const baseDelayMs = opts.baseDelayMs ?? DEFAULTS.baseDelayMs;
  const maxDelayMs = opts.maxDelayMs ?? DEFAULTS.maxDelayMs;
  const maxElapsedMs = opts.maxElapsedMs ?? DEFAULTS.maxElapsedMs;
  const classify = opts.classify ?? defaultClassify;
  const sleepFn = opts.sleep ?? sleep;
  const random = opts.random ?? Math.random;
  const now = opts.now ?? Date.now;
  const signal = opts.signal;

  const started = now();
  for (let attempt = 1; ; attempt++) {
    signal?.throwIfAborted();
    try {
      return await fn({ attempt, signal });
    } catch (err) {
      // An abort surfaces as whatever fn threw; report the abort itself so callers see one shape.
      signal?.throwIfAborted();
      if (!opts.idempotent || attempt >= maxAttempts) throw err;
      const verdict = classify(err, now());
      if (!verdict.retryable) throw err;

      const remaining = maxElapsedMs - (now() - started);
      if (remaining <= 0) throw err;
      const server = verdict.retryAfterMs;
      if (server !== undefined && server > Math.min(maxDelayMs, remaining)) {
        throw new RetryAfterTooLongError({ retryAfterMs: server, allowedMs: Math.min(maxDelayMs, remaining), attempts: attempt, now: now(), cause: err });
      }
      const jittered = random() * Math.min(maxDelayMs, baseDelayMs * 2 ** (attempt - 1));
      const delay = Math.min(Math.max(jittered, server ?? 0), remaining);

      opts.onRetry?.(attempt, delay, verdict.reason ?? 'retryable', err);
      // Injected sleeps may ignore the signal; an abort must still end the wait at once.
      await raceSignal(sleepFn(delay, signal), signal);
    }
  }
}

/** Retryable statuses for HTTP-ish errors; other 4xx are our fault and other 5xx (501, 505) permanent. */
export const RETRYABLE_STATUSES: ReadonlySet<number> = new Set([408, 429, 500, 502, 503, 504]);

/** Socket and DNS failures that say nothing about the request itself. `UND_ERR_*` are undici's (fetch). */
const RETRYABLE_CODES: ReadonlySet<string> = new Set(['ECONNRESET', 'ETIMEDOUT', 'ECONNREFUSED', 'EAI_AGAIN', 'EPIPE', 'ENETUNREACH', 'EHOSTUNREACH']);

/** undici codes that mean we called it wrongly; retrying would only repeat the bug. */
const PERMANENT_UNDICI_CODES: ReadonlySet<string> = new Set(['UND_ERR_INVALID_ARG', 'UND_ERR_NOT_SUPPORTED', 'UND_ERR_INVALID_RETURN_VALUE']);

/**
 * Understands the error shapes our clients throw: `status`/`statusCode` (fetch wrappers, Azure SDK),
 * a numeric `code` (HubSpot's `ApiException`), `response.status`, string `code`s from Node and undici,
 * and fetch's `TypeError('fetch failed')` whose real reason is in `cause`. Anything it cannot read is
 * not retried: an unknown error is more likely a bug than a blip.
 */
export function defaultClassify(err: unknown, now: number = Date.now()): Classification {
  const status = statusOf(err);
  if (status !== undefined) {
    if (!RETRYABLE_STATUSES.has(status)) return { retryable: false };
    const headers = headersOf(err);
    const retryAfterMs = headers ? parseRetryAfter(headers, now) : undefined;
    const reason: RetryReason = status === 429 ? 'rate-limited' : status === 408 ? 'timeout' : 'server-error';
    return { retryable: true, retryAfterMs, reason };
  }
  for (let e: unknown = err, depth = 0; isObject(e) && depth < 5; e = e.cause, depth++) {
    const code = e.code;
    if (typeof code === 'string' && (RETRYABLE_CODES.has(code) || (code.startsWith('UND_ERR_') && !PERMANENT_UNDICI_CODES.has(code)))) {
      return { retryable: true, reason: code === 'ETIMEDOUT' || code.includes('TIMEOUT') ? 'timeout' : 'network' };
    }
    // AbortSignal.timeout() on a single attempt; the caller's own abort is handled before classifying.
    if (e.name === 'TimeoutError') return { retryable: true, reason: 'timeout' };
  }
  return { retryable: false };
}

/** A header bag as clients hand them out: fetch `Headers`, Node's lower-cased object, or any-case plain object. */
export type HeaderSource = { get(name: string): string | null | undefined } | Record<string, unknown>;

/**
 * The wait a server asked for, in ms, or undefined when it asked nothing (or nothing readable).
 * `retry-after-ms` and `x-ms-retry-after-ms` (Azure) win over `Retry-After` for their precision;
 * `Retry-After` may be delay-seconds or an HTTP-date, and a date in the past means "now" (0).
 */
export function parseRetryAfter(headers: HeaderSource, now: number = Date.now()): number | undefined {
  for (const name of ['retry-after-ms', 'x-ms-retry-after-ms']) {
    const raw = headerValue(headers, name);
    if (raw !== undefined && /^\d+(?:\.\d+|)$/.test(raw)) return Math.ceil(Number(raw));
  }
  const raw = headerValue(headers, 'retry-after');
  if (raw === undefined) return undefined;
  if (/^\d+(?:\.\d+|)$/.test(raw)) return Math.ceil(Number(raw) * 1000);
  // All three HTTP-date forms start with a day name; without this, Date.parse('-5') is year -5.
  if (!/^[A-Za-z]{3,9},? /.test(raw)) return undefined;
  // asctime dates carry no zone and Date.parse would read them as local time; HTTP dates are GMT.
  const at = Date.parse(/GMT|UTC|[+-]\d{4}$/.test(raw) ? raw : `${raw} GMT`);
  if (Number.isNaN(at)) return undefined;
  return Math.max(0, at - now);
}

function headerValue(headers: HeaderSource, name: string): string | undefined {
  let value: unknown;
  if (typeof headers.get === 'function') {
    value = (headers as { get(name: string): unknown }).get(name);
  } else {
    const bag = headers as Record<string, unknown>;
    value = bag[name];
    if (value === undefined) {
      const key = Object.keys(bag).find((k) => k.toLowerCase() === name);
      if (key !== undefined) value = bag[key];
    }
  }
  if (Array.isArray(value)) value = value[0];
  if (typeof value === 'number') return String(value);
  if (typeof value !== 'string') return undefined;
  const trimmed = value.trim();
  return trimmed === '' ? undefined : trimmed;
}

type Obj = Record<string, unknown> & { cause?: unknown };

function isObject(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null;
}

function asStatus(v: unknown): number | undefined {
  return typeof v === 'number' && Number.isInteger(v) && v >= 100 && v <= 599 ? v : undefined;
}

function statusOf(err: unknown): number | undefined {
  if (!isObject(err)) return undefined;
  const response = isObject(err.response) ? err.response : undefined;
  return asStatus(err.status) ?? asStatus(err.statusCode) ?? asStatus(err.code) ?? asStatus(response?.status) ?? asStatus(response?.statusCode);
}

function headersOf(err: unknown): HeaderSource | undefined {
  if (!isObject(err)) return undefined;
  if (isObject(err.headers)) return err.headers;
  if (isObject(err.response) && isObject(err.response.headers)) return err.response.headers;
  return undefined;
}

