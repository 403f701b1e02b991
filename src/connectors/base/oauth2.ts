import { createHash, randomUUID } from 'node:crypto';
import { z } from 'zod';
import { tenantSecretName } from '../../secrets/names';
import type { SecretStore } from '../../secrets/types';
import { partitionKey, type IntegrationId, type PartitionKey, type TenantId } from '../../storage/keys';
import type { Lease, Leases } from '../../storage/lease';
import { InvalidGrantError, TokenRefreshError } from './errors';
import { defaultClassify } from './retry';

export interface TokenSet {
  accessToken: string;
  /** Epoch ms. */
  expiresAt: number;
  /** Present when the provider rotated it; persisted before anything else. */
  refreshToken?: string | undefined;
  scopes?: string[] | undefined;
  tokenType?: string | undefined;
}

/**
 * The provider-specific half: one call to the token endpoint. Throw what the HTTP client throws; the
 * manager recognises `invalid_grant` / `BAD_REFRESH_TOKEN` in the usual error shapes (see
 * `looksLikeInvalidGrant`) or you may throw `InvalidGrantError` yourself. Honour `signal`: giving up
 * on a refresh that later succeeds would lose a rotated refresh token, so the manager never abandons
 * the promise, it only asks.
 */
export interface OAuth2Provider {
  refresh(refreshToken: string, options?: { signal?: AbortSignal }): Promise<TokenSet>;
}

/** What `onRefreshed` learns; deliberately without any token. */
export interface RefreshedEvent {
  tenant: TenantId;
  integration: IntegrationId;
  obtainedAt: number;
  expiresAt: number;
  scopes: string[] | undefined;
  refreshTokenRotated: boolean;
}

export interface RefreshFailedEvent {
  tenant: TenantId;
  integration: IntegrationId;
  error: InvalidGrantError | TokenRefreshError;
}

export interface OAuth2TokenManagerOptions {
  provider: OAuth2Provider;
  secrets: SecretStore;
  /** Over the Leases table; it is what makes refresh single-flight across instances. */
  leases: Leases;
  /** Refresh when the token expires within this. Default 5 min. */
  refreshAheadMs?: number;
  /** Default 30 s: long enough for one token call, short enough that a crashed holder blocks little. */
  leaseTtlMs?: number;
  /** Handed to the provider as an AbortSignal timeout; keep well under `leaseTtlMs`. Default 10 s. */
  refreshTimeoutMs?: number;
  /** How long a non-holder waits for the holder's result before giving up. Default `leaseTtlMs` + 5 s. */
  waitForRefreshMs?: number;
  /** First and largest pause between polls while another instance refreshes. Defaults 100 ms, 1 s. */
  pollInitialMs?: number;
  pollMaxMs?: number;
  isInvalidGrant?: (err: unknown) => boolean;
  /** Called by the instance that refreshed, after the new tokens are stored. Errors are ignored. */
  onRefreshed?: (event: RefreshedEvent) => void | Promise<void>;
  /** Called once per failed attempt to obtain a token (not once per waiting caller). Errors are ignored. */
  onRefreshFailed?: (event: RefreshFailedEvent) => void | Promise<void>;
  now?: () => number;
  sleep?: (ms: number) => Promise<void>;
}

export const REFRESH_LEASE_NAME = 'oauth-refresh';
export const ACCESS_TOKEN_SECRET_PURPOSE = 'access-token';
export const REFRESH_TOKEN_SECRET_PURPOSE = 'refresh-token';

interface CachedToken {
  accessToken: string;
  expiresAt: number;
  obtainedAt: number;
  scopes: string[] | undefined;
  tokenType: string | undefined;
}

const storedAccessTokenSchema = z.object({
  v: z.literal(1),
  accessToken: z.string().min(1),
  expiresAt: z.number().finite(),
  obtainedAt: z.number().finite(),
  scopes: z.array(z.string()).optional(),
  tokenType: z.string().optional(),
});

/**
 * Access tokens per integration, refreshed ahead of expiry, at most one refresh at a time per
 * integration: in-process by sharing one promise, across instances by the `oauth-refresh` lease.
 * Refresh tokens are single-use at some providers (Microsoft, and possibly HubSpot), so two instances
 * refreshing at once can leave the loser's stored refresh token dead; that is Nango's #1005.
 *
 * The stored access token (secret `access-token`, JSON with its expiry) is the shared cache between
 * instances. The lease holder re-reads it after taking the lease, because the previous holder may
 * have just refreshed; that re-read is what keeps a race to exactly one refresh.
 */
export class OAuth2TokenManager {
  readonly #provider: OAuth2Provider;
  readonly #secrets: SecretStore;
  readonly #leases: Leases;
  readonly #refreshAheadMs: number;
  readonly #leaseTtlMs: number;
  readonly #refreshTimeoutMs: number;
  readonly #waitForRefreshMs: number;
  readonly #pollInitialMs: number;
  readonly #pollMaxMs: number;
  readonly #isInvalidGrant: (err: unknown) => boolean;
  readonly #onRefreshed: OAuth2TokenManagerOptions['onRefreshed'];
  readonly #onRefreshFailed: OAuth2TokenManagerOptions['onRefreshFailed'];
  readonly #now: () => number;
  readonly #sleep: (ms: number) => Promise<void>;

  readonly #cache = new Map<PartitionKey, CachedToken>();
  readonly #flights = new Map<PartitionKey, Promise<CachedToken>>();
  /** Fingerprints of access tokens a provider answered 401 to; a stored copy of one is not reused. */
  readonly #rejected = new Map<PartitionKey, string>();

  constructor(opts: OAuth2TokenManagerOptions) {
    this.#provider = opts.provider;
    this.#secrets = opts.secrets;
    this.#leases = opts.leases;
    this.#refreshAheadMs = opts.refreshAheadMs ?? 5 * 60_000;
    this.#leaseTtlMs = opts.leaseTtlMs ?? 30_000;
    this.#refreshTimeoutMs = opts.refreshTimeoutMs ?? 10_000;
    this.#waitForRefreshMs = opts.waitForRefreshMs ?? this.#leaseTtlMs + 5_000;
    this.#pollInitialMs = opts.pollInitialMs ?? 100;
    this.#pollMaxMs = opts.pollMaxMs ?? 1_000;
    // A refresh outliving its lease lets a second instance spend the same refresh token.
    if (this.#refreshTimeoutMs >= this.#leaseTtlMs) throw new RangeError('refreshTimeoutMs must be shorter than leaseTtlMs');
    this.#isInvalidGrant = opts.isInvalidGrant ?? looksLikeInvalidGrant;
    this.#onRefreshed = opts.onRefreshed;
    this.#onRefreshFailed = opts.onRefreshFailed;
    this.#now = opts.now ?? Date.now;
    this.#sleep = opts.sleep ?? ((ms) => new Promise((resolve) => setTimeout(resolve, ms)));
  }

  /**
   * A valid access token, refreshing first if it expires within `refreshAheadMs`. Throws
   * `InvalidGrantError` (mark the integration `needs_reauth`) or `TokenRefreshError` (see `retryable`).
   * Failures are not cached: the next call tries again.
   */
  async getAccessToken(tenant: TenantId, integration: IntegrationId): Promise<string> {
    const pk = partitionKey.integration(tenant, integration);
    const cached = this.#cache.get(pk);
    if (cached && this.#fresh(cached)) return cached.accessToken;
    let flight = this.#flights.get(pk);
    if (!flight) {
      flight = this.#obtain(tenant, integration, pk).finally(() => this.#flights.delete(pk));
      this.#flights.set(pk, flight);
    }
    return (await flight).accessToken;
  }

  /**
   * Forgets the cached token after the provider answered 401, so the next `getAccessToken` refreshes
   * once. Pass the token that was rejected: when several calls fail with the same token, only the first
   * invalidation takes effect and the token refreshed meanwhile is kept instead of being thrown away.
   * Without it, whatever is cached is dropped.
   */
  invalidate(tenant: TenantId, integration: IntegrationId, rejectedAccessToken?: string): void {
    const pk = partitionKey.integration(tenant, integration);
    const cached = this.#cache.get(pk);
    const fp = rejectedAccessToken !== undefined ? fingerprint(rejectedAccessToken) : cached ? fingerprint(cached.accessToken) : undefined;
    if (fp === undefined) return;
    if (cached && fingerprint(cached.accessToken) !== fp) return;
    this.#cache.delete(pk);
    this.#rejected.set(pk, fp);
  }

  /**
   * Stores a token set obtained outside a refresh (the authorization-code exchange of the connect
   * flow), in the format `getAccessToken` reads, and caches it. Clears an earlier rejection: a new
   * grant starts clean.
   */
  async saveTokenSet(tenant: TenantId, integration: IntegrationId, set: TokenSet): Promise<void> {
    if (!isTokenSet(set)) throw new TypeError('token set needs a non-empty accessToken and a finite expiresAt');
    const pk = partitionKey.integration(tenant, integration);
    if (set.refreshToken) {
      const refreshToken = set.refreshToken;
      await this.#secretOp(tenant, integration, 'store the refresh token', () =>
        this.#secrets.set(tenantSecretName(tenant, integration, REFRESH_TOKEN_SECRET_PURPOSE), refreshToken, { contentType: 'text/plain' }),
      );
    }
    const entry = await this.#storeAccessToken(tenant, integration, set);
    this.#rejected.delete(pk);
    this.#cache.set(pk, entry);
  }

  async #obtain(tenant: TenantId, integration: IntegrationId, pk: PartitionKey): Promise<CachedToken> {
    try {
      return await this.#obtainOnce(tenant, integration, pk);
    } catch (err) {
      if (err instanceof InvalidGrantError || err instanceof TokenRefreshError) {
        await safely(() => this.#onRefreshFailed?.({ tenant, integration, error: err }));
      }
      throw err;
    }
  }

  async #obtainOnce(tenant: TenantId, integration: IntegrationId, pk: PartitionKey): Promise<CachedToken> {
    const rejected = this.#rejected.get(pk);
    const usable = (t: CachedToken | undefined): t is CachedToken => t !== undefined && this.#fresh(t) && fingerprint(t.accessToken) !== rejected;

    // Another instance may have refreshed already; most cold starts end here without touching the lease.
    const stored = await this.#readStored(tenant, integration);
    if (usable(stored)) return this.#remember(pk, stored, rejected);

    const deadline = this.#now() + this.#waitForRefreshMs;
    let pause = this.#pollInitialMs;
    for (;;) {
      const lease = await this.#tryLease(tenant, integration, pk);
      if (lease) {
        try {
          const current = await this.#readStored(tenant, integration);
          if (usable(current)) return this.#remember(pk, current, rejected);
          return await this.#refresh(tenant, integration, pk, rejected);
        } finally {
          // An expired lease may already be someone else's; release() leaves it alone then.
          await this.#leases.release(lease).catch(() => undefined);
        }
      }
      const left = deadline - this.#now();
      if (left <= 0) {
        throw new TokenRefreshError({ tenant, integration, retryable: true, detail: 'timed out waiting for another instance to refresh the token' });
      }
      await this.#sleep(Math.min(pause, left));
      pause = Math.min(pause * 2, this.#pollMaxMs);
      const polled = await this.#readStored(tenant, integration);
      if (usable(polled)) return this.#remember(pk, polled, rejected);
      // Not there yet: loop and try the lease, which also covers a holder that failed or crashed.
    }
  }

  /** Runs only under the lease. */
  async #refresh(tenant: TenantId, integration: IntegrationId, pk: PartitionKey, rejected: string | undefined): Promise<CachedToken> {
    const refreshName = tenantSecretName(tenant, integration, REFRESH_TOKEN_SECRET_PURPOSE);
    const refreshToken = await this.#secretOp(tenant, integration, 'read the stored refresh token', () => this.#secrets.get(refreshName));
    if (!refreshToken) throw new InvalidGrantError({ tenant, integration, reason: 'missing_refresh_token' });

    let set: TokenSet;
    try {
      set = await this.#provider.refresh(refreshToken, { signal: AbortSignal.timeout(this.#refreshTimeoutMs) });
    } catch (err) {
      throw this.#toAuthError(tenant, integration, err);
    }
    if (!isTokenSet(set)) {
      throw new TokenRefreshError({ tenant, integration, retryable: false, detail: 'the provider returned no usable access token or expiry' });
    }

    const rotated = typeof set.refreshToken === 'string' && set.refreshToken !== '' && set.refreshToken !== refreshToken;
    // The rotated refresh token first: if we crash after this, the next refresh still works; if we
    // stored the access token first and crashed, the old refresh token might already be dead.
    if (rotated) {
      await this.#secretOp(tenant, integration, 'store the rotated refresh token', () =>
        this.#secrets.set(refreshName, set.refreshToken as string, { contentType: 'text/plain' }),
      );
    }
    const entry = await this.#storeAccessToken(tenant, integration, set);
    this.#remember(pk, entry, rejected);
    await safely(() =>
      this.#onRefreshed?.({ tenant, integration, obtainedAt: entry.obtainedAt, expiresAt: entry.expiresAt, scopes: entry.scopes, refreshTokenRotated: rotated }),
    );
    return entry;
  }

  async #storeAccessToken(tenant: TenantId, integration: IntegrationId, set: TokenSet): Promise<CachedToken> {
    const entry: CachedToken = { accessToken: set.accessToken, expiresAt: set.expiresAt, obtainedAt: this.#now(), scopes: set.scopes, tokenType: set.tokenType };
    const stored: z.infer<typeof storedAccessTokenSchema> = {
      v: 1,
      accessToken: entry.accessToken,
      expiresAt: entry.expiresAt,
      obtainedAt: entry.obtainedAt,
      ...(entry.scopes ? { scopes: entry.scopes } : {}),
      ...(entry.tokenType ? { tokenType: entry.tokenType } : {}),
    };
    await this.#secretOp(tenant, integration, 'store the access token', () =>
      this.#secrets.set(tenantSecretName(tenant, integration, ACCESS_TOKEN_SECRET_PURPOSE), JSON.stringify(stored), { contentType: 'application/json' }),
    );
    return entry;
  }

  /**
   * Fresh until `refreshAheadMs` before expiry, or half its lifetime for tokens shorter-lived than
   * twice that; otherwise a 4-minute token with a 5-minute margin would be refreshed on every call.
   */
  #fresh(t: CachedToken): boolean {
    const margin = Math.min(this.#refreshAheadMs, Math.max(0, (t.expiresAt - t.obtainedAt) / 2));
    return this.#now() < t.expiresAt - margin;
  }

  #remember(pk: PartitionKey, t: CachedToken, rejected: string | undefined): CachedToken {
    this.#cache.set(pk, t);
    // Only the rejection this flight started with; a newer invalidate() stays in force.
    if (this.#rejected.get(pk) === rejected) this.#rejected.delete(pk);
    return t;
  }

  async #readStored(tenant: TenantId, integration: IntegrationId): Promise<CachedToken | undefined> {
    const raw = await this.#secretOp(tenant, integration, 'read the stored access token', () =>
      this.#secrets.get(tenantSecretName(tenant, integration, ACCESS_TOKEN_SECRET_PURPOSE)),
    );
    if (!raw) return undefined;
    let json: unknown;
    try {
      json = JSON.parse(raw);
    } catch {
      return undefined; // unreadable is as good as absent: the next refresh overwrites it
    }
    const parsed = storedAccessTokenSchema.safeParse(json);
    if (!parsed.success) return undefined;
    const d = parsed.data;
    return { accessToken: d.accessToken, expiresAt: d.expiresAt, obtainedAt: d.obtainedAt, scopes: d.scopes, tokenType: d.tokenType };
  }

  async #tryLease(tenant: TenantId, integration: IntegrationId, pk: PartitionKey): Promise<Lease | undefined> {
    try {
      // A fresh owner per attempt: tryAcquire lets the same owner re-take its own unexpired lease.
      return await this.#leases.tryAcquire(pk, REFRESH_LEASE_NAME, this.#leaseTtlMs, randomUUID());
    } catch (err) {
      // Lease rows hold only owners and times, so the storage error is safe to keep as the cause.
      throw new TokenRefreshError({ tenant, integration, retryable: true, detail: 'could not take the token refresh lease', cause: err });
    }
  }

  /** Secret store errors are not kept as `cause`: a failed `set` may carry the secret it was sending. */
  async #secretOp<R>(tenant: TenantId, integration: IntegrationId, what: string, op: () => Promise<R>): Promise<R> {
    try {
      return await op();
    } catch (err) {
      const status = statusOf(err);
      throw new TokenRefreshError({ tenant, integration, retryable: true, detail: `could not ${what}`, upstreamStatus: status });
    }
  }

  #toAuthError(tenant: TenantId, integration: IntegrationId, err: unknown): InvalidGrantError | TokenRefreshError {
    // A provider that already speaks our errors, for this integration, is taken at its word.
    if ((err instanceof InvalidGrantError || err instanceof TokenRefreshError) && err.tenant === tenant && err.integration === integration) return err;
    const upstreamStatus = statusOf(err);
    const upstreamCode = safeCodeOf(err);
    if (err instanceof InvalidGrantError || this.#isInvalidGrant(err)) {
      return new InvalidGrantError({ tenant, integration, reason: 'invalid_grant', upstreamStatus, upstreamCode });
    }
    const retryable = err instanceof TokenRefreshError ? err.retryable : defaultClassify(err).retryable;
    const detail = `token refresh failed${upstreamStatus !== undefined ? ` with HTTP ${upstreamStatus}` : ''}${upstreamCode !== undefined ? ` (${upstreamCode})` : ''}`;
    return new TokenRefreshError({ tenant, integration, retryable, detail, upstreamStatus, upstreamCode });
  }
}

type Obj = Record<string, unknown>;

function isObject(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null;
}

/** Where OAuth error bodies end up in the clients we use: the error itself, `body`, `data`, `response.*`, `cause`. */
function errorBodies(err: unknown): Obj[] {
  const out: Obj[] = [];
  const push = (v: unknown) => {
    if (typeof v === 'string') {
      try {
        v = JSON.parse(v);
      } catch {
        return;
      }
    }
    if (isObject(v)) out.push(v);
  };
  push(err);
  if (isObject(err)) {
    push(err.body);
    push(err.data);
    push(err.cause);
    if (isObject(err.response)) {
      push(err.response.body);
      push(err.response.data);
    }
  }
  return out;
}

const INVALID_GRANT_CODES = new Set(['invalid_grant', 'BAD_REFRESH_TOKEN']);

/**
 * True for RFC 6749 `invalid_grant` (Microsoft identity platform, HubSpot's v3 endpoints) and HubSpot
 * v1's `{"status":"BAD_REFRESH_TOKEN"}`, in any of the shapes `errorBodies` knows, including a JSON
 * string body. Messages are not searched: a 400 whose text merely mentions a grant is not a revocation.
 */
export function looksLikeInvalidGrant(err: unknown): boolean {
  return errorBodies(err).some((b) => [b.error, b.status, b.errorCode, b.code, b.category].some((v) => typeof v === 'string' && INVALID_GRANT_CODES.has(v)));
}

function statusOf(err: unknown): number | undefined {
  if (!isObject(err)) return undefined;
  const response = isObject(err.response) ? err.response : undefined;
  for (const v of [err.status, err.statusCode, err.code, response?.status, response?.statusCode]) {
    if (typeof v === 'number' && Number.isInteger(v) && v >= 100 && v <= 599) return v;
  }
  return undefined;
}

/** A provider code worth showing (`invalid_client`, `ECONNRESET`); free text is dropped, it may echo input. */
function safeCodeOf(err: unknown): string | undefined {
  for (const b of errorBodies(err)) {
    // HubSpot bodies say `"status":"error"` on every failure; only a specific status is a code.
    for (const v of [b.error, b.errorCode, b.code, b.status === 'error' ? undefined : b.status]) {
      if (typeof v === 'string' && /^[A-Za-z][A-Za-z0-9_.-]{0,63}$/.test(v)) return v;
    }
  }
  return undefined;
}

function isTokenSet(v: unknown): v is TokenSet {
  return isObject(v) && typeof v.accessToken === 'string' && v.accessToken !== '' && typeof v.expiresAt === 'number' && Number.isFinite(v.expiresAt);
}

/** Short and one-way, so a rejected token is recognised without being kept. */
function fingerprint(token: string): string {
  return createHash('sha256').update(token).digest('base64url').slice(0, 22);
}

async function safely(fn: () => void | Promise<void> | undefined): Promise<void> {
  try {
    await fn();
  } catch {
    // Hooks record state; the token is already stored, so their failure must not fail the caller.
  }
}
