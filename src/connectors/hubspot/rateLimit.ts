import { KeyedRateLimiter } from '../base';
import { partitionKey, type IntegrationId, type TenantId } from '../../storage';
import type { BudgetKey, CallClass, DistributedBudget, RateWindow } from './budget';

export type HubSpotAuthKind = 'oauth' | 'private_app';

/** HubSpot's limits for one integration, scaled by `windowMs` (tests shrink the windows). */
export interface HubSpotRatePolicy {
  /** Per portal (installed account), every call but search. */
  standard: RateWindow;
  /** Per token (integration): search. */
  search: RateWindow;
}

export interface RateLimitSettings {
  /** HubSpot's 10-second window; tests may shrink it (and the fake's) by the same factor. Default 10 000. */
  windowMs: number;
  /** Public (OAuth) apps: 110 per window per installed account. */
  publicAppLimit: number;
  /** Private apps: 100 (Free/Starter), 190 (Professional, Enterprise), 250 with the API add-on. */
  privateAppLimit: number;
  /** Search: 5 per second per token, i.e. 5 per window/10. */
  searchLimit: number;
}

export const DEFAULT_RATE_LIMITS: RateLimitSettings = { windowMs: 10_000, publicAppLimit: 110, privateAppLimit: 100, searchLimit: 5 };

export function ratePolicy(kind: HubSpotAuthKind, s: RateLimitSettings): HubSpotRatePolicy {
  return {
    standard: { limit: kind === 'oauth' ? s.publicAppLimit : s.privateAppLimit, intervalMs: s.windowMs },
    search: { limit: s.searchLimit, intervalMs: Math.max(1, Math.round(s.windowMs / 10)) },
  };
}

export interface GateTarget {
  tenantId: TenantId;
  integrationId: IntegrationId;
  portalId: string;
  policy: HubSpotRatePolicy;
}

export type CallKind = 'standard' | 'search';

function smoothed(window: RateWindow): RateWindow {
  return { limit: Math.max(1, Math.ceil(window.limit / 10)), intervalMs: Math.max(1, Math.round(window.intervalMs / 10)) };
}

/**
 * Every HubSpot call waits here first. Two stages: an in-process sliding window per portal and class
 * (exact inside one process, and it keeps a burst of local callers from hammering the budget row),
 * then the cross-instance budget in Table Storage, which is what makes the limit hold when Azure runs
 * several instances. Interactive (webhook, engine push, status) and background (sync) calls queue
 * separately at both stages, so a long sync never sits in front of a webhook's read.
 */
export class HubSpotRateGate {
  readonly #budget: DistributedBudget | undefined;
  readonly #limiters = new Map<string, KeyedRateLimiter>();
  /** Smaller limits learned from `X-HubSpot-RateLimit-Max` (private-app tiers), per portal. */
  readonly #observed = new Map<string, RateWindow>();
  /** Grant times of standard calls in this process, per portal, for the last window. */
  readonly #granted = new Map<string, number[]>();

  constructor(budget: DistributedBudget | undefined) {
    this.#budget = budget;
  }

  /** Waits for a slot; returns the ms waited. */
  async acquire(target: GateTarget, kind: CallKind, cls: CallClass, signal?: AbortSignal): Promise<number> {
    const started = Date.now();
    const window = this.window(target, kind);
    const limiter = this.#limiter(window);
    const local = kind === 'search' ? `s|${target.tenantId}|${target.integrationId}|${cls}` : `p|${target.portalId}|${cls}`;
    const release = await limiter.acquire(local, signal);
    release();
    // Spread a window's calls over its tenths: a burst of a whole window's calls reaches HubSpot over
    // a spread of arrival times, and the late arrivals of one window would meet the next one's calls.
    (await this.#limiter(smoothed(window)).acquire(local, signal))();
    if (this.#budget) await this.#budget.take(this.#key(target, kind), cls, window, signal);
    const now = Date.now();
    if (kind === 'standard') this.#log(target.portalId, now, window.intervalMs).push(now);
    return now - started;
  }

  /** The call let through at `grantedAt` left at `sentAt`; a late one is booked again (`DistributedBudget.sent`). */
  async sent(target: GateTarget, kind: CallKind, cls: CallClass, grantedAt: number, sentAt: number): Promise<void> {
    await this.#budget?.sent(this.#key(target, kind), cls, this.window(target, kind), grantedAt, sentAt);
  }

  /**
   * HubSpot said the portal's window is full (`X-HubSpot-RateLimit-Remaining: 0`). When this process
   * alone filled it, that is the budget working as planned and nothing changes; otherwise calls we do
   * not see (another instance, another deployment of the app) fill it, and this process holds back for
   * the time one slot takes to free up. Only locally: the shared row is paused by 429s, which are
   * certain, not by this hint.
   */
  windowFull(target: GateTarget): void {
    const window = this.window(target, 'standard');
    const now = Date.now();
    const mine = this.#log(target.portalId, now, window.intervalMs).length;
    if (mine >= window.limit - 2 * Math.max(1, Math.round(window.limit / 40))) return;
    const slotMs = Math.max(1, Math.ceil(window.intervalMs / window.limit));
    const limiter = this.#limiter(window);
    for (const cls of ['interactive', 'background'] as const) limiter.penalize(`p|${target.portalId}|${cls}`, slotMs);
  }

  #log(portalId: string, now: number, intervalMs: number): number[] {
    let log = this.#granted.get(portalId);
    if (!log) {
      log = [];
      this.#granted.set(portalId, log);
      if (this.#granted.size > 1000) for (const [k, v] of this.#granted) if (v.length === 0 || (v[v.length - 1] as number) <= now - intervalMs) this.#granted.delete(k);
    }
    let drop = 0;
    while (drop < log.length && (log[drop] as number) <= now - intervalMs) drop++;
    if (drop > 0) log.splice(0, drop);
    return log;
  }

  /** Holds every call of the portal (or token, for search) for `ms`, here and on every instance. */
  async penalize(target: GateTarget, kind: CallKind, ms: number): Promise<void> {
    const window = this.window(target, kind);
    const limiter = this.#limiter(window);
    for (const cls of ['interactive', 'background'] as const) {
      limiter.penalize(kind === 'search' ? `s|${target.tenantId}|${target.integrationId}|${cls}` : `p|${target.portalId}|${cls}`, ms);
    }

    await this.#budget?.pause(this.#key(target, kind), ms);
  }

  /** Learns a smaller per-portal limit from HubSpot's headers; never raises the configured one. */
  observeMax(target: GateTarget, max: number, intervalMs: number): void {
    const configured = target.policy.standard;
    if (!(max > 0) || !(intervalMs > 0)) return;
    // Compare as rates so a header with another interval (HubSpot's 10 s vs a scaled test window) still compares.
    const scaled = Math.floor((max * configured.intervalMs) / intervalMs);
    if (scaled >= configured.limit || scaled < 1) return;
    this.#observed.set(target.portalId, { limit: scaled, intervalMs: configured.intervalMs });
  }

  window(target: GateTarget, kind: CallKind): RateWindow {
    if (kind === 'search') return target.policy.search;
    return this.#observed.get(target.portalId) ?? target.policy.standard;
  }

  #limiter(window: RateWindow): KeyedRateLimiter {
    const id = `${window.limit}/${window.intervalMs}`;
    let limiter = this.#limiters.get(id);
    if (!limiter) {
      limiter = new KeyedRateLimiter({ limit: window.limit, intervalMs: window.intervalMs });
      this.#limiters.set(id, limiter);
    }
    return limiter;
  }

  #key(target: GateTarget, kind: CallKind): BudgetKey {
    if (kind === 'search') {
      return { id: `s|${target.tenantId}|${target.integrationId}`, pk: partitionKey.integration(target.tenantId, target.integrationId), rk: 'hubspot-search' };
    }
    return { id: `p|${target.portalId}`, pk: partitionKey.accountIndex('hubspot', target.portalId), rk: 'standard' };
  }
}
