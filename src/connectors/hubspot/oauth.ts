import { newHubSpotClient } from './sdk';
import { z } from 'zod';
import { registerSecret } from '../../platform/logging';
import { withRetry, type TokenSet } from '../base';
import { HUBSPOT_AUTHORIZE_URL, OAUTH_PATHS } from './apiVersions';
import { raceSignal } from '../base/abort';

export interface HubSpotOAuthSettings {
  clientId: string;
  clientSecret: string;
  redirectUri: string;
  /** `HUBSPOT_API_BASE_URL`: the SDK's `basePath`. */
  apiBaseUrl: string;
}

/** Scopes the app asks for; they must match the app's required scopes in HubSpot exactly. */
export const HUBSPOT_REQUIRED_SCOPES = [
  'oauth',
  'tickets',
  'crm.objects.contacts.read',
  'crm.objects.contacts.write',
  'crm.objects.companies.read',
  'crm.objects.companies.write',
] as const;

/** What HubSpot says about a token (introspection), normalised across its field spellings. */
export interface HubSpotTokenInfo {
  active: boolean;
  hubId: string | undefined;
  hubDomain: string | undefined;
  scopes: string[];
  tokenType: string | undefined;
  /** Seconds left, when HubSpot says. */
  expiresIn: number | undefined;
  user: string | undefined;
  userId: string | undefined;
  appId: string | undefined;
}

export interface HubSpotTokenResponse extends TokenSet {
  refreshToken?: string | undefined;
  expiresIn: number;
  /** HubSpot adds `hub_id` and `scopes` to token responses (changelog, August 2025). */
  hubId: string | undefined;
}

/**
 * An OAuth endpoint answered with an error. Only codes are kept (`error`, `status`, `category`),
 * never `error_description` or the body: they could echo what we sent. `body` is shaped so that
 * `looksLikeInvalidGrant` (connectors/base) recognises `invalid_grant` / `BAD_REFRESH_TOKEN`.
 */
export class HubSpotOAuthError extends Error {
  readonly status: number;
  readonly body: { error?: string; status?: string; category?: string };
  constructor(operation: string, status: number, body: { error?: string; status?: string; category?: string }) {
    const code = body.error ?? body.status ?? body.category;
    super(`HubSpot OAuth ${operation} failed with HTTP ${status}${code ? ` (${code})` : ''}`);
    this.name = 'HubSpotOAuthError';
    this.status = status;
    this.body = body;
  }
}

const idLike = z.union([z.string().min(1), z.number()]).transform(String);
const scopeList = z.union([z.array(z.string()), z.string().transform((s) => s.split(/[\s,]+/).filter(Boolean))]);

const tokenResponseSchema = z.looseObject({
  access_token: z.string().min(1).max(4096),
  refresh_token: z.string().min(1).max(4096).optional(),
  expires_in: z.coerce.number().positive(),
  token_type: z.string().optional(),
  hub_id: idLike.optional(),
  scopes: scopeList.optional(),
  scope: scopeList.optional(),
});

// The 2026-03 introspection response is only partly documented ({"active": true} in the example);
// accept RFC 7662 names and HubSpot's v1 metadata names, snake or camel case.
const introspectionSchema = z.looseObject({
  active: z.boolean().optional(),
  hub_id: idLike.optional(),
  hubId: idLike.optional(),
  hub_domain: z.string().optional(),
  hubDomain: z.string().optional(),
  scopes: scopeList.optional(),
  scope: scopeList.optional(),
  token_type: z.string().optional(),
  tokenType: z.string().optional(),
  expires_in: z.coerce.number().optional(),
  expiresIn: z.coerce.number().optional(),
  exp: z.coerce.number().optional(),
  user: z.string().optional(),
  username: z.string().optional(),
  user_id: idLike.optional(),
  userId: idLike.optional(),
  sub: idLike.optional(),
  app_id: idLike.optional(),
  appId: idLike.optional(),
  client_id: z.string().optional(),
});

const errorBodySchema = z.looseObject({ error: z.unknown().optional(), status: z.unknown().optional(), category: z.unknown().optional() });

type Form = Record<string, string>;

/**
 * HubSpot's date-versioned OAuth endpoints (`/oauth/2026-03/token`, `/token/introspect`,
 * `/token/revoke`), called through the SDK's `apiRequest` so `HUBSPOT_API_BASE_URL` applies. Every
 * parameter travels in the form body, never the URL (the v1 metadata endpoints put tokens in the path,
 * where proxies log them).
 *
 * `apiRequest` takes no AbortSignal, so a timeout stops waiting rather than the request; for the
 * refresh that is harmless at HubSpot, whose refresh tokens do not rotate.
 */
export class HubSpotOAuthClient {
  readonly #s: HubSpotOAuthSettings;
  readonly #timeoutMs: number;

  constructor(settings: HubSpotOAuthSettings, opts: { timeoutMs?: number } = {}) {
    this.#s = settings;
    this.#timeoutMs = opts.timeoutMs ?? 10_000;
    registerSecret(settings.clientSecret);
  }

  get clientId(): string {
    return this.#s.clientId;
  }

  get redirectUri(): string {
    return this.#s.redirectUri;
  }

  authorizationUrl(state: string, opts: { scopes?: readonly string[]; optionalScopes?: readonly string[] } = {}): string {
    const url = new URL(HUBSPOT_AUTHORIZE_URL);
    url.searchParams.set('client_id', this.#s.clientId);
    url.searchParams.set('redirect_uri', this.#s.redirectUri);
    url.searchParams.set('scope', (opts.scopes ?? HUBSPOT_REQUIRED_SCOPES).join(' '));
    if (opts.optionalScopes?.length) url.searchParams.set('optional_scope', opts.optionalScopes.join(' '));
    url.searchParams.set('state', state);
    return url.toString();
  }

  /** Single use: never retried (a second attempt with the same code fails and hides the first answer). */
  async exchangeCode(code: string, opts: { signal?: AbortSignal } = {}): Promise<HubSpotTokenResponse> {
    const json = await this.#post(
      'code exchange',
      OAUTH_PATHS.token,
      { grant_type: 'authorization_code', code, redirect_uri: this.#s.redirectUri, client_id: this.#s.clientId, client_secret: this.#s.clientSecret },
      { idempotent: false, signal: opts.signal },
    );
    return toTokenResponse(json, Date.now());
  }

  async refresh(refreshToken: string, opts: { signal?: AbortSignal } = {}): Promise<HubSpotTokenResponse> {
    const json = await this.#post(
      'refresh',
      OAUTH_PATHS.token,
      { grant_type: 'refresh_token', refresh_token: refreshToken, client_id: this.#s.clientId, client_secret: this.#s.clientSecret },
      { idempotent: true, signal: opts.signal },
    );
    return toTokenResponse(json, Date.now());
  }

  async introspect(token: string, hint: 'access_token' | 'refresh_token', opts: { signal?: AbortSignal } = {}): Promise<HubSpotTokenInfo> {
    const json = await this.#post(
      'introspection',
      OAUTH_PATHS.introspect,
      { token, token_type_hint: hint, client_id: this.#s.clientId, client_secret: this.#s.clientSecret },
      { idempotent: true, signal: opts.signal },
    );
    const p = introspectionSchema.parse(json);
    const scopes = p.scopes ?? p.scope ?? [];
    const expiresIn = p.expires_in ?? p.expiresIn ?? (p.exp !== undefined ? Math.max(0, Math.round(p.exp - Date.now() / 1000)) : undefined);
    const hubId = p.hub_id ?? p.hubId;
    return {
      // Old-style metadata answers have no `active`; a 200 with a hub id is an active token.
      active: p.active ?? hubId !== undefined,
      hubId,
      hubDomain: p.hub_domain ?? p.hubDomain,
      scopes,
      tokenType: p.token_type ?? p.tokenType,
      expiresIn,
      user: p.user ?? p.username,
      userId: p.user_id ?? p.userId ?? p.sub,
      appId: p.app_id ?? p.appId,
    };
  }

  /** Revokes a refresh token. A token HubSpot no longer knows counts as revoked. */
  async revoke(token: string, opts: { signal?: AbortSignal } = {}): Promise<'revoked' | 'already_invalid'> {
    try {
      await this.#post(
        'revocation',
        OAUTH_PATHS.revoke,
        { token, token_type_hint: 'refresh_token', client_id: this.#s.clientId, client_secret: this.#s.clientSecret },
        { idempotent: true, signal: opts.signal },
      );
      return 'revoked';
    } catch (err) {
      if (err instanceof HubSpotOAuthError && (err.status === 400 || err.status === 404) && /invalid_grant|invalid_token|BAD_REFRESH_TOKEN|NOT_FOUND/i.test(`${err.body.error ?? ''} ${err.body.status ?? ''} ${err.body.category ?? ''}`)) {
        return 'already_invalid';
      }
      throw err;
    }
  }

  async #post(operation: string, path: string, form: Form, opts: { idempotent: boolean; signal?: AbortSignal | undefined }): Promise<unknown> {
    return withRetry(
      async () => {
        const signal = opts.signal ? AbortSignal.any([opts.signal, AbortSignal.timeout(this.#timeoutMs)]) : AbortSignal.timeout(this.#timeoutMs);
        // A fresh client per request: `new Client()` resets the SDK's process-wide decorator list, and
        // ours has no retry or limiter decorators, so nothing of another client's settings applies.
        const client = newHubSpotClient({ basePath: this.#s.apiBaseUrl, numberOfApiCallRetries: 0 });
        const res = await raceSignal(
          client.apiRequest({
            method: 'POST',
            path,
            body: new URLSearchParams(form).toString(),
            defaultJson: false,
            headers: { 'Content-Type': 'application/x-www-form-urlencoded', Accept: 'application/json' },
          }),
          signal,
        );
        const text = await raceSignal(res.text(), signal);
        let json: unknown;
        try {
          json = text === '' ? {} : JSON.parse(text);
        } catch {
          json = undefined;
        }
        if (!res.ok) throw new HubSpotOAuthError(operation, res.status, safeErrorBody(json));
        if (json === undefined) throw new HubSpotOAuthError(operation, res.status, { category: 'INVALID_JSON' });
        return json;
      },
      { idempotent: opts.idempotent, maxAttempts: 3, maxElapsedMs: this.#timeoutMs * 2, ...(opts.signal ? { signal: opts.signal } : {}) },
    );
  }
}

function toTokenResponse(json: unknown, now: number): HubSpotTokenResponse {
  const parsed = tokenResponseSchema.safeParse(json);
  if (!parsed.success) throw new HubSpotOAuthError('token response', 200, { category: 'INVALID_TOKEN_RESPONSE' });
  const p = parsed.data;
  registerSecret(p.access_token);
  registerSecret(p.refresh_token);
  return {
    accessToken: p.access_token,
    refreshToken: p.refresh_token,
    expiresIn: p.expires_in,
    expiresAt: now + p.expires_in * 1000,
    tokenType: p.token_type,
    scopes: p.scopes ?? p.scope,
    hubId: p.hub_id,
  };
}

function safeErrorBody(json: unknown): { error?: string; status?: string; category?: string } {
  const parsed = errorBodySchema.safeParse(json);
  if (!parsed.success) return {};
  const code = (v: unknown) => (typeof v === 'string' && /^[A-Za-z][A-Za-z0-9_.-]{0,63}$/.test(v) ? v : undefined);
  const out: { error?: string; status?: string; category?: string } = {};
  const error = code(parsed.data.error);
  const status = code(parsed.data.status);
  const category = code(parsed.data.category);
  if (error) out.error = error;
  if (status && status !== 'error') out.status = status;
  if (category) out.category = category;
  return out;
}

