import type { Context, Middleware } from '@microsoft/microsoft-graph-client';
import { limitKeyHash, parseRetryAfter, type KeyedRateLimiter, type SharedLimitKey, type SharedRateLimiter } from '../base';
import { partitionKey } from '../../storage';

/** `Prefer: IdType="ImmutableId"` on every call, merged with whatever else a call prefers. */
export class ImmutableIdMiddleware implements Middleware {
  #next: Middleware | undefined;

  setNext(next: Middleware): void {
    this.#next = next;
  }

  async execute(context: Context): Promise<void> {
    const options = (context.options ??= {});
    const headers = new Headers(options.headers as HeadersInit | undefined);
    const prefer = headers.get('prefer');
    if (!/IdType\s*=/i.test(prefer ?? '')) headers.set('Prefer', prefer ? `${prefer}, IdType="ImmutableId"` : 'IdType="ImmutableId"');
    options.headers = Object.fromEntries(headers.entries());
    await (this.#next as Middleware).execute(context);
  }
}

export interface ThrottleEvent {
  key: string;
  status: number;
  waitMs: number;
  attempt: number;
  willRetry: boolean;
}

export interface MailboxLimiterOptions {
  limiter: KeyedRateLimiter;
  /** Outlook's window across every instance (RateBudgets rows per Entra tenant and mailbox); per process only when omitted. */
  shared?: SharedRateLimiter;
  /** Prefix of every key (the customer's Entra tenant): mailboxes are per tenant. */
  keyPrefix: string;
  /** Attempts per call, the first included. */
  maxAttempts?: number;
  /** Longest server-mandated wait we sit through inside one call; above it the 429 is returned. */
  maxWaitMs?: number;
  onThrottled?: (event: ThrottleEvent) => void;
  sleep?: (ms: number) => Promise<void>;
}

const IDEMPOTENT = new Set(['GET', 'HEAD', 'PUT', 'DELETE', 'OPTIONS']);

/**
 * Outlook's limits are per app and mailbox (4 concurrent requests, 10,000 per 10 minutes), so every
 * request takes a slot of the limiter keyed by tenant + mailbox (`/users/{id}/…`), and a 429 pauses only
 * that key for its Retry-After: a busy mailbox waits, the others go on. A 429 is retried whatever the
 * method (Graph did not process it); a 503/504 only for idempotent methods. With `shared`, the request
 * window holds across instances too, and a 429 pauses the mailbox on every instance; the concurrency
 * cap stays per process (README, "Limits"). It stands in for the SDK's
 * RetryHandler, whose waits (up to 180 s) would outlive a function invocation.
 */
export class MailboxLimiterMiddleware implements Middleware {
  #next: Middleware | undefined;
  readonly #maxAttempts: number;
  readonly #maxWaitMs: number;
  readonly #sleep: (ms: number) => Promise<void>;

  constructor(private readonly opts: MailboxLimiterOptions) {
    this.#maxAttempts = opts.maxAttempts ?? 4;
    this.#maxWaitMs = opts.maxWaitMs ?? 30_000;
    this.#sleep = opts.sleep ?? ((ms) => new Promise((r) => setTimeout(r, ms)));
  }

  setNext(next: Middleware): void {
    this.#next = next;
  }

  async execute(context: Context): Promise<void> {
    const url = typeof context.request === 'string' ? context.request : context.request.url;
    const method = (context.options?.method ?? 'GET').toUpperCase();
    const mailbox = limiterKey(url);
    const key = `${this.opts.keyPrefix}:${mailbox}`;
    const shared = this.opts.shared;
    // Mailbox ids are addresses (personal data): the row names a hash, in the Entra tenant's partition.
    const sharedKey: SharedLimitKey | undefined = shared
      ? { id: `graph|${key}`, pk: partitionKey.accountIndex('graph-mailbox', this.opts.keyPrefix), rk: limitKeyHash(mailbox) }
      : undefined;
    for (let attempt = 1; ; attempt++) {
      const release = await this.opts.limiter.acquire(key);
      try {
        const grant = shared && sharedKey ? await shared.take(sharedKey) : undefined;
        try {
          await (this.#next as Middleware).execute(context);
        } finally {
          // Outlook counted the request at some point before its answer; the shared window counts it until
          // then. Not awaited, so a slow call costs its caller no extra round trip.
          if (shared && sharedKey && grant) void shared.finished(sharedKey, grant).catch(() => undefined);
        }
      } finally {
        release();
      }
      const response = context.response;
      const status = response?.status ?? 0;
      const retryable = status === 429 || ((status === 503 || status === 504) && IDEMPOTENT.has(method));
      if (!response || !retryable) return;
      const asked = parseRetryAfter(response.headers);
      const waitMs = asked ?? Math.min(this.#maxWaitMs, 500 * 2 ** (attempt - 1));
      if (status === 429) {
        this.opts.limiter.penalize(key, waitMs);
        if (shared && sharedKey) await shared.pause(sharedKey, waitMs).catch(() => undefined);
      }
      const willRetry = attempt < this.#maxAttempts && waitMs <= this.#maxWaitMs;
      this.opts.onThrottled?.({ key, status, waitMs, attempt, willRetry });
      if (!willRetry) return;
      // Let the next attempt read a fresh body; the throttled one is dropped.
      await response.arrayBuffer().catch(() => undefined);
      // A 429 already pauses the key; the limiter lets us through when the pause ends.
      if (status !== 429) await this.#sleep(waitMs);
    }
  }
}

/** `users/<id>` (lower-cased) for mailbox calls; `app` for everything else (subscriptions, groups). */
export function limiterKey(url: string): string {
  let path: string;
  try {
    path = new URL(url).pathname;
  } catch {
    path = url;
  }
  const m = /\/users\/([^/?]+)/i.exec(path);
  if (!m) return 'app';
  let id = m[1] as string;
  try {
    id = decodeURIComponent(id);
  } catch {
    // keep the raw segment
  }
  return `users/${id.replace(/^'|'$/g, '').toLowerCase()}`;
}
