import { AppError } from '../../platform/errors';
import type { IntegrationId, TenantId } from '../../storage/keys';

/**
 * Why a token could not be had. Callers map `InvalidGrantError` to `needs_reauth` at once (Nango waits
 * four days before concluding a grant is revoked; we don't) and count `TokenRefreshError`s.
 *
 * None of these carry the provider's error as `cause`: HTTP client errors routinely embed the request
 * body (a form with `refresh_token` and `client_secret`) and would leak it the first time someone logs
 * the error with its cause. Only the status and the provider's error code are kept.
 */
export abstract class ConnectorAuthError extends AppError {
  readonly tenant: TenantId;
  readonly integration: IntegrationId;
  /** HTTP status of the provider's answer, when there was one. */
  readonly upstreamStatus: number | undefined;
  /** The provider's machine-readable error (`invalid_grant`, `BAD_REFRESH_TOKEN`, `ECONNRESET`, …). */
  readonly upstreamCode: string | undefined;

  protected constructor(opts: {
    status: number;
    code: string;
    title: string;
    detail: string;
    tenant: TenantId;
    integration: IntegrationId;
    upstreamStatus?: number | undefined;
    upstreamCode?: string | undefined;
    headers?: Record<string, string>;
    cause?: unknown;
  }) {
    super({
      status: opts.status,
      code: opts.code,
      title: opts.title,
      detail: opts.detail,
      ...(opts.headers ? { headers: opts.headers } : {}),
      ...(opts.cause !== undefined ? { cause: opts.cause } : {}),
    });
    this.tenant = opts.tenant;
    this.integration = opts.integration;
    this.upstreamStatus = opts.upstreamStatus;
    this.upstreamCode = opts.upstreamCode;
  }
}

/**
 * The grant is gone: the provider rejected the refresh token (`invalid_grant`, HubSpot's
 * `BAD_REFRESH_TOKEN`), or there is no refresh token stored at all. Retrying cannot help; a person
 * has to reconnect the integration.
 */
export class InvalidGrantError extends ConnectorAuthError {
  readonly reason: 'invalid_grant' | 'missing_refresh_token';

  constructor(opts: {
    tenant: TenantId;
    integration: IntegrationId;
    reason: 'invalid_grant' | 'missing_refresh_token';
    upstreamStatus?: number | undefined;
    upstreamCode?: string | undefined;
  }) {
    super({
      status: 409,
      code: 'integration-needs-reauth',
      title: 'The integration must be reconnected',
      detail:
        opts.reason === 'missing_refresh_token'
          ? 'no refresh token is stored for this integration; it must be reconnected'
          : 'the provider rejected the refresh token (expired or revoked); the integration must be reconnected',
      ...opts,
    });
    this.reason = opts.reason;
  }
}

/** A refresh that failed for any other reason. `retryable` says whether trying again later may work. */
export class TokenRefreshError extends ConnectorAuthError {
  readonly retryable: boolean;

  constructor(opts: {
    tenant: TenantId;
    integration: IntegrationId;
    retryable: boolean;
    detail: string;
    upstreamStatus?: number | undefined;
    upstreamCode?: string | undefined;
    /** Only for errors of our own infrastructure (lease table), never the provider's or the secret store's. */
    cause?: unknown;
  }) {
    super({
      status: opts.retryable ? 503 : 502,
      code: 'token-refresh-failed',
      title: 'Could not refresh the integration credentials',
      ...opts,
    });
    this.retryable = opts.retryable;
  }
}

/**
 * The server asked us to wait longer than we are allowed to (a single wait above `maxDelayMs`, or past
 * the remaining `maxElapsedMs` budget). Sleeping anyway would run into the function timeout and lose
 * the invocation, so we stop and say when the server will take us again; the caller reschedules (queue
 * visibility timeout, sync state `throttled_until`). `cause` is the error that carried the request.
 */
export class RetryAfterTooLongError extends AppError {
  /** What the server asked for. */
  readonly retryAfterMs: number;
  /** The most we were willing to wait at that point. */
  readonly allowedMs: number;
  /** Epoch ms from which the server should accept the call again. */
  readonly retryAt: number;
  readonly attempts: number;

  constructor(opts: { retryAfterMs: number; allowedMs: number; attempts: number; now: number; cause: unknown }) {
    const seconds = Math.max(1, Math.ceil(opts.retryAfterMs / 1000));
    super({
      status: 503,
      code: 'upstream-throttled',
      title: 'The upstream service asked us to come back later',
      detail: `server asked to wait ${opts.retryAfterMs} ms, more than the ${opts.allowedMs} ms allowed; giving up after ${opts.attempts} attempt(s)`,
      headers: { 'Retry-After': String(seconds) },
      cause: opts.cause,
    });
    this.retryAfterMs = opts.retryAfterMs;
    this.allowedMs = opts.allowedMs;
    this.retryAt = opts.now + opts.retryAfterMs;
    this.attempts = opts.attempts;
  }
}
