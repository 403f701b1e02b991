import { AppError } from '../../platform/errors';

/** What a HubSpot error body may hold; "fields … should all be treated as optional" (HubSpot's docs). */
export interface HubSpotErrorInfo {
  /** HTTP status HubSpot answered with. */
  status: number | undefined;
  category: string | undefined;
  subCategory: string | undefined;
  policyName: string | undefined;
  correlationId: string | undefined;
  /** HubSpot's message, shortened; it may echo input values (emails), never credentials. */
  message: string | undefined;
  /** The parsed error body, for callers that must look deeper (search past 10,000 results, …). */
  body: unknown;
}

/**
 * A HubSpot call failed with an HTTP answer (after our retries). `upstreamStatus` is HubSpot's status;
 * `status` is what our API answers with when this reaches an HTTP response (502, or 404/409/400 for
 * the few answers that describe the caller's request).
 *
 * The SDK's `ApiException` is deliberately not kept as `cause`: its message embeds the response
 * headers and body, and the request it came from carried a bearer token.
 */
export class HubSpotApiError extends AppError {
  readonly upstreamStatus: number | undefined;
  readonly info: HubSpotErrorInfo;
  readonly operation: string;

  constructor(operation: string, info: HubSpotErrorInfo) {
    const s = info.status;
    const status = s === 404 ? 404 : s === 409 ? 409 : s === 400 ? 400 : 502;
    super({
      status,
      code: 'hubspot-error',
      title: 'HubSpot rejected the request',
      detail: `HubSpot answered ${s ?? 'without a status'} to ${operation}${info.category ? ` (${info.category})` : ''}${info.message ? `: ${info.message}` : ''}`,
      extensions: { upstreamStatus: s ?? null, ...(info.correlationId ? { hubspotCorrelationId: info.correlationId } : {}) },
    });
    this.upstreamStatus = s;
    this.info = info;
    this.operation = operation;
  }
}

/**
 * The portal spent its daily allowance (private apps; HubSpot answers 429 with policy DAILY). Nothing
 * is retried: the work stops and says when to come back.
 */
export class HubSpotDailyLimitError extends AppError {
  readonly retryAt: number;
  readonly portalId: string;
  constructor(portalId: string, retryAt: number) {
    super({
      status: 503,
      code: 'hubspot-daily-limit',
      title: "HubSpot's daily API limit is reached for this account",
      detail: `the HubSpot account has used its daily API allowance; calls resume after ${new Date(retryAt).toISOString()}`,
      headers: { 'Retry-After': String(Math.max(1, Math.ceil((retryAt - Date.now()) / 1000))) },
    });
    this.retryAt = retryAt;
    this.portalId = portalId;
  }
}

/** The integration cannot be used as it is (not connected, disconnected, needs re-authorisation). */
export class IntegrationUnavailableError extends AppError {
  readonly integrationStatus: string;
  constructor(integrationStatus: string, detail?: string) {
    super({
      status: 409,
      code: 'integration-unavailable',
      title: 'The integration is not usable',
      detail: detail ?? `the integration is ${integrationStatus}`,
      extensions: { integrationStatus },
    });
    this.integrationStatus = integrationStatus;
  }
}

/** HubSpot rejected the credentials even after one refresh (or a private-app token was revoked). */
export class HubSpotUnauthorizedError extends AppError {
  constructor(detail: string) {
    super({ status: 409, code: 'integration-needs-reauth', title: 'The integration must be reconnected', detail });
  }
}

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null;
const str = (v: unknown): string | undefined => (typeof v === 'string' && v !== '' ? v : undefined);

/** Reads what the SDK's `ApiException` (`code`, `body`, `headers`) or a fetch answer carries. */
export function hubspotErrorInfo(err: unknown): HubSpotErrorInfo {
  const e = isObj(err) ? err : {};
  const status = typeof e.code === 'number' ? e.code : typeof e.status === 'number' ? e.status : undefined;
  let body: unknown = e.body;
  if (typeof body === 'string') {
    try {
      body = JSON.parse(body);
    } catch {
      // not JSON: keep the text out (it may be an HTML error page)
      body = undefined;
    }
  }
  const b = isObj(body) ? body : {};
  const message = str(b.message);
  return {
    status: status !== undefined && status >= 100 && status <= 599 ? status : undefined,
    category: str(b.category) ?? str(b.errorType),
    subCategory: str(b.subCategory),
    policyName: str(b.policyName),
    correlationId: str(b.correlationId),
    message: message ? (message.length > 300 ? `${message.slice(0, 300)}…` : message) : undefined,
    body,
  };
}

/** True for errors that carry an HTTP answer from HubSpot (the SDK's ApiException shape). */
export function isHubSpotHttpError(err: unknown): boolean {
  return isObj(err) && typeof err.code === 'number' && err.code >= 100 && err.code <= 599 && 'body' in err;
}
