import { randomUUID } from 'node:crypto';
import type { FakeRateLimit } from './types';

/**
 * HubSpot's limits as the fake enforces them: TEN_SECONDLY_ROLLING per installed portal and app
 * (all API calls except search), SECONDLY per token for search, DAILY per portal for private apps.
 * Counting accepted requests decides; counting *sent* requests (accepted or not) gives
 * `maxPerWindowSeen`, the measure of whether a client paced itself.
 */

export interface ResolvedLimits {
  perTenSeconds: number;
  searchPerSecond: number;
  dailyLimit: number;
  windowMs: number;
  sendRetryAfter: boolean;
}

export const DEFAULT_LIMITS: ResolvedLimits = { perTenSeconds: 110, searchPerSecond: 5, dailyLimit: 500_000, windowMs: 10_000, sendRetryAfter: false };

export function mergeLimits(base: ResolvedLimits, r: FakeRateLimit | undefined): ResolvedLimits {
  if (!r) return base;
  return {
    perTenSeconds: r.perTenSeconds ?? base.perTenSeconds,
    searchPerSecond: r.searchPerSecond ?? base.searchPerSecond,
    dailyLimit: r.dailyLimit ?? base.dailyLimit,
    windowMs: r.windowMs ?? base.windowMs,
    sendRetryAfter: r.sendRetryAfter ?? base.sendRetryAfter,
  };
}

/** Timestamps in a rolling window; a queue with a moving head so trimming is amortised O(1). */
class RollingWindow {
  private times: number[] = [];
  private head = 0;

  size(now: number, windowMs: number): number {
    const cutoff = now - windowMs;
    while (this.head < this.times.length && (this.times[this.head] as number) <= cutoff) this.head++;
    if (this.head > 1024 && this.head * 2 > this.times.length) {
      this.times = this.times.slice(this.head);
      this.head = 0;
    }
    return this.times.length - this.head;
  }

  push(now: number): void {
    this.times.push(now);
  }

  oldest(): number | undefined {
    return this.times[this.head];
  }
}

export type Policy = 'TEN_SECONDLY_ROLLING' | 'SECONDLY' | 'DAILY';

export interface Decision {
  allowed: boolean;
  policy?: Policy;
  headers: Record<string, string>;
  retryAfterMs?: number;
}

interface WindowPair {
  accepted: RollingWindow;
  sent: RollingWindow;
}

export class RateLimiter {
  private readonly burst = new Map<string, WindowPair>();
  private readonly search = new Map<string, RollingWindow>();
  private readonly daily = new Map<number, { day: number; count: number }>();
  maxPerWindowSeen = 0;

  constructor(public limits: ResolvedLimits) {}

  /** A non-search API call by `appKey` (portal + app) on portal `hubId`; `private` apps also get the daily limit and headers. */
  checkCall(appKey: string, hubId: number, isPrivate: boolean, now: number): Decision {
    const l = this.limits;
    let pair = this.burst.get(appKey);
    if (!pair) this.burst.set(appKey, (pair = { accepted: new RollingWindow(), sent: new RollingWindow() }));
    pair.sent.push(now);
    this.maxPerWindowSeen = Math.max(this.maxPerWindowSeen, pair.sent.size(now, l.windowMs));

    const day = Math.floor(now / 86_400_000);
    let d = this.daily.get(hubId);
    if (!d || d.day !== day) this.daily.set(hubId, (d = { day, count: 0 }));

    const used = pair.accepted.size(now, l.windowMs);
    const dailyHeaders = (count: number): Record<string, string> =>
      isPrivate ? { 'X-HubSpot-RateLimit-Daily': String(l.dailyLimit), 'X-HubSpot-RateLimit-Daily-Remaining': String(Math.max(0, l.dailyLimit - count)) } : {};

    if (isPrivate && d.count >= l.dailyLimit) {
      const untilMidnight = (day + 1) * 86_400_000 - now;
      return { allowed: false, policy: 'DAILY', retryAfterMs: untilMidnight, headers: this.burstHeaders(used, dailyHeaders(d.count)) };
    }
    if (used >= l.perTenSeconds) {
      const oldest = pair.accepted.oldest() ?? now;
      return { allowed: false, policy: 'TEN_SECONDLY_ROLLING', retryAfterMs: Math.max(1, oldest + l.windowMs - now), headers: this.burstHeaders(used, dailyHeaders(d.count)) };
    }
    pair.accepted.push(now);
    d.count++;
    return { allowed: true, headers: this.burstHeaders(used + 1, dailyHeaders(d.count)) };
  }

  /** A search call by `token`; HubSpot sends no rate-limit headers on search responses. */
  checkSearch(token: string, now: number): Decision {
    const windowMs = this.limits.windowMs / 10;
    let w = this.search.get(token);
    if (!w) this.search.set(token, (w = new RollingWindow()));
    if (w.size(now, windowMs) >= this.limits.searchPerSecond) {
      const oldest = w.oldest() ?? now;
      return { allowed: false, policy: 'SECONDLY', retryAfterMs: Math.max(1, oldest + windowMs - now), headers: {} };
    }
    w.push(now);
    return { allowed: true, headers: {} };
  }

  private burstHeaders(used: number, extra: Record<string, string>): Record<string, string> {
    const l = this.limits;
    return {
      'X-HubSpot-RateLimit-Max': String(l.perTenSeconds),
      'X-HubSpot-RateLimit-Remaining': String(Math.max(0, l.perTenSeconds - used)),
      'X-HubSpot-RateLimit-Interval-Milliseconds': String(l.windowMs),
      ...extra,
    };
  }
}

/** HubSpot's 429 body; the SDK's retry keys on `policyName` (ten-secondly) and on the secondly `message`. */
export function rateLimitBody(policy: Policy, appId: number, hubId: number): Record<string, unknown> {
  const message =
    policy === 'DAILY' ? 'You have reached your daily limit.' : policy === 'SECONDLY' ? 'You have reached your secondly limit.' : 'You have reached your ten_secondly_rolling limit.';
  return {
    status: 'error',
    message,
    errorType: 'RATE_LIMIT',
    correlationId: randomUUID(),
    policyName: policy,
    ...(policy === 'TEN_SECONDLY_ROLLING' ? { groupName: `publicapi:app-api-calls-ten-secondly:${appId}:${hubId}` } : {}),
    requestId: randomUUID().replace(/-/g, ''),
  };
}
