import { KeyedRateLimiter, limitKeyHash, MAX_SINGLE_CALL_LIMIT, parseRetryAfter, SharedRateLimiter, withRetry, type Classification, type DistributedBudget, type Release, type RetryReason, type SharedGrant } from '../base';
import { partitionKey } from '../../storage';
import type { MessageEnvelope } from './cardTypes';
import type { WebhookKind } from './schemas';

/**
 * Posting a card envelope to one webhook, within Teams' limits, with retries.
 *
 * Limits (graph-teams.md §6, documented for connectors; Workflows' own limits are not documented, so
 * the same are applied): 4 per 1 s, 60 per 30 s, 100 per hour, 150 per 2 hours, 1,800 per day, per
 * webhook. We stay below each: the limiter counts when a call leaves, Teams when it arrives, and the
 * time between the two varies. In the 1 s window that matters most: 3 per 1.25 s can only become 5
 * arrivals within one second if some calls are held back ~1.5 s longer than others (4 per 1 s was
 * measured to let 5 arrive within 998 ms under load). With a `DistributedBudget` (as the app runs it)
 * every window holds across instances (`SharedRateLimiter`, one RateBudgets row per webhook and window);
 * without one, per process only.
 */
export const TEAMS_WEBHOOK_WINDOWS: ReadonlyArray<{ limit: number; intervalMs: number }> = [
  { limit: 1_700, intervalMs: 86_400_000 },
  { limit: 135, intervalMs: 7_200_000 },
  { limit: 90, intervalMs: 3_600_000 },
  { limit: 55, intervalMs: 30_000 },
  { limit: 3, intervalMs: 1_250 },
];

/**
 * The cross-instance budget's margin for Teams (`BudgetOptions.minMarginMs`): a grant counts from when it
 * is made, Teams counts on arrival, and a post's first request on a new connection was measured to
 * arrive ~360 ms after its grant locally (TLS to Teams adds more). 500 ms turns 3 per 1.25 s into 3 per
 * 1.75 s at most; sustained load is bound by 55 per 30 s anyway.
 */
export const TEAMS_BUDGET_MARGIN_MS = 500;

/** A wait for a rate-limit slot at least this long is reported (`onSlowSlot`). */
const SLOW_SLOT_MS = 2_000;

export type PostFailure = 'throttled' | 'server-error' | 'rejected' | 'network' | 'timeout' | 'unexpected-response';

/** Why a post failed, described without the URL (a credential) or the response body (it may echo the card). */
export class WebhookPostError extends Error {
  readonly status: number | undefined;
  readonly failure: PostFailure;
  readonly retryable: boolean;
  readonly retryAfterMs: number | undefined;
  /** Requests made by the `post` call that gave up with this error. */
  attempts = 1;

  constructor(opts: { status?: number | undefined; failure: PostFailure; retryable: boolean; retryAfterMs?: number | undefined; detail: string }) {
    super(opts.detail);
    this.name = 'WebhookPostError';
    this.status = opts.status;
    this.failure = opts.failure;
    this.retryable = opts.retryable;
    this.retryAfterMs = opts.retryAfterMs;
  }
}

/** The limiter made us wait longer than the invocation may; the caller reschedules the message. */
export class RateLimitWaitError extends Error {
  constructor(readonly waitedMs: number) {
    super(`no slot within ${waitedMs} ms under the webhook's rate limits`);
    this.name = 'RateLimitWaitError';
  }
}

/** A slot from `WebhookRateLimiter.acquire`: `finished` when the request has its answer (or failed), then `release`. */
export interface WebhookSlot {
  release: Release;
  finished(): Promise<void>;
}

/** Every window of `TEAMS_WEBHOOK_WINDOWS`, per webhook key, as one limiter. */
export class WebhookRateLimiter {
  readonly #limiters: KeyedRateLimiter[];
  readonly #shared: { limiter: SharedRateLimiter; scope: string } | undefined;

  /**
   * `shared`: the budget rows that make the windows hold across instances, and a scope naming what the
   * keys limit ('teams-webhook', 'teams-fallback-quota'), so two limiters never share a row by accident.
   */
  constructor(
    windows: ReadonlyArray<{ limit: number; intervalMs: number }> = TEAMS_WEBHOOK_WINDOWS,
    opts: { maxConcurrent?: number; shared?: { budget: DistributedBudget; scope: string } } = {},
  ) {
    // Longest window first, so that the post follows the shortest window's grant at once and the long
    // windows' stamps are at most one short wait early.
    const sorted = [...windows].sort((a, b) => b.intervalMs - a.intervalMs);
    this.#limiters = sorted.map((w, i) =>
      new KeyedRateLimiter({ limit: w.limit, intervalMs: w.intervalMs, ...(i === sorted.length - 1 ? { maxConcurrent: opts.maxConcurrent ?? 2 } : {}) }),
    );
    // Shared: the windows reserved call by call. A larger one would be reserved in chunks, and a chunk held
    // by an instance that is scaled in stays counted for a day in the daily window; Teams' daily limit is
    // implied by the 2-hour one anyway (12 × 135 = 1,620 ≤ 1,700; the fallback quota: 12 × 27 = 324 ≤ 340).
    const shared = sorted.filter((w) => w.limit <= MAX_SINGLE_CALL_LIMIT);
    this.#shared = opts.shared && shared.length > 0 ? { limiter: new SharedRateLimiter(opts.shared.budget, shared), scope: opts.shared.scope } : undefined;
  }

  /**
   * A slot for one request to `key`, or `RateLimitWaitError` after `maxWaitMs`. `sharedAs` names the
   * limited thing across instances (the webhook's URL, hashed here before it is stored); `key` when omitted.
   */
  async acquire(key: string, maxWaitMs: number, sharedAs?: string): Promise<Release & WebhookSlot> {
    const started = performance.now();
    const signal = AbortSignal.timeout(maxWaitMs);
    const releases: Release[] = [];
    let grant: SharedGrant | undefined;
    const shared = this.#shared;
    const sharedKey = shared ? this.#sharedKey(sharedAs ?? key) : undefined;
    try {
      for (const l of this.#limiters) releases.push(await l.acquire(key, signal));
      if (shared && sharedKey) grant = await shared.limiter.take(sharedKey, signal);
    } catch (err) {
      for (const r of releases) r();
      if (signal.aborted) throw new RateLimitWaitError(Math.round(performance.now() - started));
      throw err;
    }
    const release = () => {
      for (const r of releases) r();
    };
    return Object.assign(release, {
      release,
      finished: async () => {
        if (shared && sharedKey && grant) await shared.limiter.finished(sharedKey, grant).catch(() => undefined);
      },
    });
  }

  /** Nothing for `key` for `ms` (after a 429), on every instance when shared. */
  penalize(key: string, ms: number, sharedAs?: string): void {
    this.#limiters[this.#limiters.length - 1]?.penalize(key, ms);
    if (this.#shared) void this.#shared.limiter.pause(this.#sharedKey(sharedAs ?? key), ms).catch(() => undefined);
  }

  stats() {
    return this.#limiters.map((l) => l.stats());
  }

  #sharedKey(name: string) {
    const scope = (this.#shared as { scope: string }).scope;
    const hash = limitKeyHash(name);
    // Not tenant-scoped on purpose: Teams limits the webhook, whoever posts to it (two tenants' channels
    // on one URL share its limit). The row names only a hash of the URL, and holds only call times.
    return { id: `${scope}|${hash}`, pk: partitionKey.accountIndex(scope, hash), rk: 'limit' };
  }
}

/**
 * A tenant's share of the deployment's fallback webhook (which all opted-in tenants share): about a fifth
 * of each of Teams' windows, so one tenant's flood leaves the rest for the others.
 */
export const FALLBACK_TENANT_WINDOWS: ReadonlyArray<{ limit: number; intervalMs: number }> = [
  { limit: 340, intervalMs: 86_400_000 },
  { limit: 27, intervalMs: 7_200_000 },
  { limit: 18, intervalMs: 3_600_000 },
  { limit: 11, intervalMs: 30_000 },
];

export interface SenderOptions {
  limiter: WebhookRateLimiter;
  /** Per-tenant quotas on shared webhooks (targets with a `quotaKey`); taken before the webhook's own slot. */
  quotaLimiter?: WebhookRateLimiter;
  /** Per HTTP request. Default 10 s. */
  timeoutMs?: number;
  /** Longest wait for a rate-limit slot before giving the message back. Default 45 s. */
  maxLimiterWaitMs?: number;
  maxAttempts?: number;
  baseDelayMs?: number;
  maxDelayMs?: number;
  maxElapsedMs?: number;
  /** Used when a 429 names no Retry-After. Default 1 s. */
  defaultThrottleMs?: number;
  fetch?: typeof fetch;
}

export interface PostTarget {
  /** Rate-limit key: the webhook's secret name, never its URL. */
  key: string;
  /** On a shared webhook, the key of the tenant's own quota (`SenderOptions.quotaLimiter`). */
  quotaKey?: string;
  url: string;
  kind: WebhookKind;
}

export class WebhookSender {
  readonly #o: Required<Omit<SenderOptions, 'fetch' | 'quotaLimiter'>> & { fetch: typeof fetch; quotaLimiter: WebhookRateLimiter | undefined };

  constructor(opts: SenderOptions) {
    this.#o = {
      timeoutMs: 10_000,
      maxLimiterWaitMs: 45_000,
      maxAttempts: 3,
      baseDelayMs: 500,
      maxDelayMs: 10_000,
      maxElapsedMs: 90_000,
      defaultThrottleMs: 1_000,
      ...opts,
      quotaLimiter: opts.quotaLimiter,
      fetch: opts.fetch ?? ((...args) => fetch(...args)),
    };
  }

  /**
   * Posts with retries on 429 (status or, from legacy connectors, inside a 200 body), 5xx, timeouts and
   * network errors. Each attempt takes its own rate-limit slot. Throws `WebhookPostError` (the last
   * attempt's) or `RateLimitWaitError`. Retrying a post is safe enough here: the caller holds an
   * idempotency claim, and a throttled or failed post was not shown.
   */
  async post(
    target: PostTarget,
    envelope: MessageEnvelope,
    hooks: {
      onRetry?: (attempt: number, delayMs: number, reason: RetryReason) => void;
      /** Called while a wait for a slot is still going on, once it passed `SLOW_SLOT_MS`: no wait is silent. */
      onSlotWait?: (attempt: number) => void;
      onSlowSlot?: (attempt: number, waitedMs: number) => void;
      /** Called when a request leaves, after its slot was granted. */
      onAttempt?: (attempt: number) => void;
    } = {},
  ): Promise<{ attempts: number; status: number }> {
    const body = JSON.stringify(envelope);
    let attempts = 0;
    const status = await withRetry(
      async () => {
        attempts++;
        const asked = performance.now();
        const waiting = hooks.onSlotWait ? setTimeout(() => hooks.onSlotWait?.(attempts), SLOW_SLOT_MS) : undefined;
        // The tenant's quota first: a tenant over its share waits (or is deferred) without holding a place
        // in the shared webhook's queue, where every other tenant would wait behind it.
        let quota: (Release & WebhookSlot) | undefined;
        let release: Release & WebhookSlot;
        try {
          quota = this.#o.quotaLimiter && target.quotaKey ? await this.#o.quotaLimiter.acquire(target.quotaKey, this.#o.maxLimiterWaitMs) : undefined;
          release = await this.#o.limiter.acquire(target.key, Math.max(1, Math.floor(this.#o.maxLimiterWaitMs - (performance.now() - asked))), target.url);
        } catch (err) {
          quota?.();
          throw err;
        } finally {
          clearTimeout(waiting);
        }
        const releaseBoth = () => {
          release();
          quota?.();
        };
        // A wait for a slot is otherwise silent until it ends in a deferral; say so when it was long.
        const waitedMs = performance.now() - asked;
        if (waitedMs >= SLOW_SLOT_MS) hooks.onSlowSlot?.(attempts, Math.round(waitedMs));
        hooks.onAttempt?.(attempts);
        try {
          return await this.#once(target, body);
        } catch (err) {
          if (err instanceof WebhookPostError && err.failure === 'throttled') {
            this.#o.limiter.penalize(target.key, err.retryAfterMs ?? this.#o.defaultThrottleMs, target.url);
          }
          throw err;
        } finally {
          // Teams saw the post at some point before its answer; the shared windows count it until then. Not
          // awaited: the delivery is recorded without an extra round trip, and the write lands well within
          // the window and margin that the reservation is counted for anyway.
          void Promise.all([release.finished(), quota?.finished()]);
          releaseBoth();
        }
      },
      {
        idempotent: true,
        maxAttempts: this.#o.maxAttempts,
        baseDelayMs: this.#o.baseDelayMs,
        maxDelayMs: this.#o.maxDelayMs,
        maxElapsedMs: this.#o.maxElapsedMs,
        classify: (err) => classify(err, this.#o.defaultThrottleMs),
        ...(hooks.onRetry ? { onRetry: (a: number, d: number, r: RetryReason) => hooks.onRetry?.(a, d, r) } : {}),
      },
    ).catch((err: unknown) => {
      if (err instanceof WebhookPostError) err.attempts = attempts;
      throw err;
    });
    return { attempts, status };
  }

  async #once(target: PostTarget, body: string): Promise<number> {
    let res: Response;
    try {
      res = await this.#o.fetch(target.url, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body,
        redirect: 'error',
        signal: AbortSignal.timeout(this.#o.timeoutMs),
      });
    } catch (err) {
      // fetch errors can carry the URL; keep only what kind of failure it was.
      const timeout = err instanceof Error && (err.name === 'TimeoutError' || err.name === 'AbortError');
      throw new WebhookPostError({ failure: timeout ? 'timeout' : 'network', retryable: true, detail: timeout ? 'Teams webhook timed out' : `Teams webhook unreachable (${networkCode(err)})` });
    }
    const text = await readCapped(res, 4096);
    if (res.status === 429) {
      throw new WebhookPostError({ status: 429, failure: 'throttled', retryable: true, retryAfterMs: parseRetryAfter(res.headers), detail: 'Teams webhook throttled (429)' });
    }
    if (res.status >= 200 && res.status < 300) {
      // Legacy connectors report throttling as "Microsoft Teams endpoint returned HTTP error 429" in a 200.
      if (/\b429\b/.test(text) && /(HTTP error 429|too many|throttl)/i.test(text)) {
        throw new WebhookPostError({ status: res.status, failure: 'throttled', retryable: true, retryAfterMs: parseRetryAfter(res.headers), detail: 'Teams webhook throttled (429 in a 2xx body)' });
      }
      // A legacy incoming webhook answers "1"; anything else in a 2xx is an error it could not put in the status.
      if (target.kind === 'incoming-webhook' && text.trim() !== '' && text.trim() !== '1') {
        throw new WebhookPostError({ status: res.status, failure: 'unexpected-response', retryable: true, detail: `Teams webhook answered ${res.status} with an error message` });
      }
      return res.status;
    }
    if (res.status >= 500 || res.status === 408) {
      throw new WebhookPostError({ status: res.status, failure: 'server-error', retryable: true, retryAfterMs: parseRetryAfter(res.headers), detail: `Teams webhook answered ${res.status}` });
    }
    throw new WebhookPostError({ status: res.status, failure: 'rejected', retryable: false, detail: `Teams webhook refused the card (${res.status})` });
  }
}

function classify(err: unknown, defaultThrottleMs: number): Classification {
  if (!(err instanceof WebhookPostError)) return { retryable: false };
  if (!err.retryable) return { retryable: false };
  const reason: RetryReason = err.failure === 'throttled' ? 'rate-limited' : err.failure === 'server-error' ? 'server-error' : err.failure;
  const retryAfterMs = err.failure === 'throttled' ? (err.retryAfterMs ?? defaultThrottleMs) : err.retryAfterMs;
  return { retryable: true, reason, retryAfterMs };
}

async function readCapped(res: Response, max: number): Promise<string> {
  try {
    const buf = Buffer.from(await res.arrayBuffer());
    return buf.subarray(0, max).toString('utf8');
  } catch {
    return '';
  }
}

function networkCode(err: unknown): string {
  for (let e: unknown = err, depth = 0; e && typeof e === 'object' && depth < 5; e = (e as { cause?: unknown }).cause, depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string' && /^[A-Z0-9_]+$/.test(code)) return code;
  }
  return 'network error';
}
