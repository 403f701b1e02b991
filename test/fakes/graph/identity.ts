import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWK } from 'jose';
import type { ClientAuthenticator } from './clientAuth';
import type { FakeTenant, FakeUser } from './model';

/**
 * The browser-facing half of the fake Microsoft identity platform, as login.microsoftonline.com
 * answers it (v2.0 endpoints):
 * - `GET /{tenant}/oauth2/v2.0/authorize` (code flow): with a signed-in account (`signIn`), 302 to the
 *   `redirect_uri` with `code`, `state` and `session_state`; without one, the sign-in HTML page.
 *   `{tenant}` is `organizations`, `common` or the account's own tenant. PKCE S256 is recorded.
 * - `POST /{tenant}/oauth2/v2.0/token` with `grant_type=authorization_code`: the code once, for the same
 *   client, credential (secret or certificate assertion, see `clientAuth.ts`) and redirect URI, with the
 *   matching `code_verifier`; answers an RS256 `id_token`
 *   (`iss` `https://<host>/{tid}/v2.0`, `aud` the client id, `tid`, `oid`, `sub`, `nonce`, `iat`, `nbf`, `exp`).
 * - `GET /{tenant}/discovery/v2.0/keys`: the JWKS of the signing key.
 * - `GET /{tenant}/v2.0/adminconsent`: the signed-in admin of `{tenant}` consents (302 back with
 *   `admin_consent=True&tenant=<tid>&scope=…&state=…`), a non-admin or an account of another tenant
 *   is sent back with `error=access_denied`.
 */

export interface IdTokenTamper {
  /** Claims to override in the next id_token (`undefined` removes one). */
  claims?: Record<string, unknown>;
  /** `foreign`: signed by a key not in the JWKS (same `kid`); `none`: unsigned (`alg: none`). */
  key?: 'foreign' | 'none';
}

export interface SignInSession {
  tenantId: string;
  user: FakeUser;
  admin: boolean;
}

interface IssuedCode {
  tenantId: string;
  user: FakeUser;
  clientId: string;
  redirectUri: string;
  nonce: string | undefined;
  challenge: string | undefined;
  scope: string;
  expiresAt: number;
}

export interface IdentityReply {
  status: number;
  body?: unknown;
  headers?: Record<string, string>;
  text?: string;
}

export interface IdentityPlatform {
  /** The account signed in at the fake Microsoft (its browser session); `undefined` signs out. */
  signIn(session: SignInSession | undefined): void;
  tamperNextIdToken(t: IdTokenTamper): void;
  /** Requests to `authorize` and `adminconsent`, as a browser made them. */
  browserRequests: Array<{ endpoint: 'authorize' | 'adminconsent'; tenant: string; query: Record<string, string> }>;
  authorize(tenant: string, query: URLSearchParams): IdentityReply;
  adminConsent(tenant: string, query: URLSearchParams): IdentityReply;
  /** `undefined` when the grant is not `authorization_code` (the caller handles client credentials). */
  redeemCode(tenant: string, form: URLSearchParams, tokenEndpoint: string): Promise<IdentityReply | undefined>;
  keys(): IdentityReply;
}

export async function createIdentityPlatform(opts: {
  clientId: string;
  clientAuth: ClientAuthenticator;
  url: () => string;
  tenants: Map<string, FakeTenant>;
  consent: (tenantId: string) => void;
}): Promise<IdentityPlatform> {
  const kid = randomBytes(8).toString('hex');
  const signing = await generateKeyPair('RS256', { extractable: true });
  const foreign = await generateKeyPair('RS256');
  const jwk: JWK = { ...(await exportJWK(signing.publicKey)), kid, use: 'sig', kty: 'RSA' };
  const codes = new Map<string, IssuedCode>();
  const browserRequests: IdentityPlatform['browserRequests'] = [];
  let session: SignInSession | undefined;
  let tamper: IdTokenTamper | undefined;

  const oauthError = (status: number, error: string, description: string): IdentityReply => ({
    status,
    body: { error, error_description: description, error_codes: [Number(description.slice(5, 11)) || 0], timestamp: new Date().toISOString(), trace_id: randomUUID(), correlation_id: randomUUID() },
  });
  const redirect = (to: string, params: Record<string, string>): IdentityReply => {
    const u = new URL(to);
    for (const [k, v] of Object.entries(params)) u.searchParams.set(k, v);
    return { status: 302, headers: { Location: u.toString(), 'content-type': 'text/html; charset=utf-8' }, text: '' };
  };
  const page = (status: number, title: string): IdentityReply => ({
    status,
    headers: { 'content-type': 'text/html; charset=utf-8' },
    text: `<!doctype html><html><head><title>${title}</title></head><body><h1>${title}</h1></body></html>`,
  });
  const tenantMatches = (pathTenant: string, tid: string) => pathTenant === 'organizations' || pathTenant === 'common' || pathTenant.toLowerCase() === tid.toLowerCase();

  async function idToken(code: IssuedCode): Promise<string> {
    const now = Math.floor(Date.now() / 1000);
    const claims: Record<string, unknown> = {
      ver: '2.0',
      iss: `${opts.url()}/${code.tenantId}/v2.0`,
      aud: code.clientId,
      iat: now,
      nbf: now,
      exp: now + 3600,
      tid: code.tenantId,
      oid: code.user.id,
      sub: createHash('sha256').update(`${code.user.id}:${code.clientId}`).digest('base64url').slice(0, 43),
      name: code.user.displayName,
      preferred_username: code.user.userPrincipalName,
      uti: randomBytes(16).toString('base64url'),
      ...(code.nonce !== undefined ? { nonce: code.nonce } : {}),
    };
    const t = tamper;
    tamper = undefined;
    for (const [k, v] of Object.entries(t?.claims ?? {})) {
      if (v === undefined) delete claims[k];
      else claims[k] = v;
    }
    if (t?.key === 'none') {
      const enc = (o: unknown) => Buffer.from(JSON.stringify(o)).toString('base64url');
      return `${enc({ alg: 'none', typ: 'JWT' })}.${enc(claims)}.`;
    }
    const key: CryptoKey = t?.key === 'foreign' ? foreign.privateKey : signing.privateKey;
    return new SignJWT(claims).setProtectedHeader({ alg: 'RS256', typ: 'JWT', kid }).sign(key);
  }

  return {
    browserRequests,
    signIn(s) {
      session = s;
    },
    tamperNextIdToken(t) {
      tamper = t;
    },
    authorize(tenant, query) {
      browserRequests.push({ endpoint: 'authorize', tenant, query: Object.fromEntries(query) });
      const redirectUri = query.get('redirect_uri') ?? '';
      if (query.get('client_id') !== opts.clientId) return page(400, `AADSTS700016: Application with identifier '${query.get('client_id') ?? ''}' was not found.`);
      if (!/^https?:\/\//.test(redirectUri)) return page(400, 'AADSTS50011: The redirect URI specified in the request does not match.');
      const state = query.get('state');
      const back = (params: Record<string, string>) => redirect(redirectUri, { ...params, ...(state !== null ? { state } : {}) });
      if (query.get('response_type') !== 'code') return back({ error: 'unsupported_response_type', error_description: 'AADSTS700054: response_type is not enabled for the application.' });
      if (!(query.get('scope') ?? '').split(' ').includes('openid')) return back({ error: 'invalid_request', error_description: 'AADSTS900144: openid scope is required.' });
      const challenge = query.get('code_challenge') ?? undefined;
      if (challenge !== undefined && query.get('code_challenge_method') !== 'S256') return back({ error: 'invalid_request', error_description: 'AADSTS501491: Invalid code_challenge_method.' });
      if (!session) return page(200, 'Sign in to your account');
      if (!tenantMatches(tenant, session.tenantId)) return back({ error: 'invalid_request', error_description: 'AADSTS50020: User account does not exist in tenant.' });
      const code = `fake-auth-code.${randomBytes(24).toString('base64url')}`;
      codes.set(code, {
        tenantId: session.tenantId,
        user: session.user,
        clientId: opts.clientId,
        redirectUri,
        nonce: query.get('nonce') ?? undefined,
        challenge,
        scope: query.get('scope') ?? '',
        expiresAt: Date.now() + 10 * 60_000,
      });
      return back({ code, session_state: randomUUID() });
    },
    adminConsent(tenant, query) {
      browserRequests.push({ endpoint: 'adminconsent', tenant, query: Object.fromEntries(query) });
      const redirectUri = query.get('redirect_uri') ?? '';
      if (query.get('client_id') !== opts.clientId) return page(400, `AADSTS700016: Application with identifier '${query.get('client_id') ?? ''}' was not found.`);
      if (!/^https?:\/\//.test(redirectUri)) return page(400, 'AADSTS50011: The redirect URI specified in the request does not match.');
      const state = query.get('state');
      const back = (params: Record<string, string>) => redirect(redirectUri, { ...params, ...(state !== null ? { state } : {}) });
      if (!session) return page(200, 'Sign in to your account');
      if (!tenantMatches(tenant, session.tenantId)) return back({ error: 'access_denied', error_description: 'AADSTS50020: The signed-in account is not from this organization.' });
      if (!session.admin) return back({ error: 'access_denied', error_subcode: 'cancel', error_description: 'AADSTS90094: An administrator has not consented.' });
      opts.consent(session.tenantId);
      return back({ admin_consent: 'True', tenant: session.tenantId, scope: query.get('scope') ?? '' });
    },
    async redeemCode(tenant, form, tokenEndpoint) {
      if (form.get('grant_type') !== 'authorization_code') return undefined;
      const raw = form.get('code') ?? '';
      const code = codes.get(raw);
      codes.delete(raw);
      if (form.get('client_id') !== opts.clientId) return oauthError(400, 'unauthorized_client', 'AADSTS700016: Application was not found in the directory.');
      const denied = await opts.clientAuth.authenticate(form, tokenEndpoint);
      if (denied) return oauthError(denied.status, denied.error, denied.description);
      if (!code || code.expiresAt < Date.now()) return oauthError(400, 'invalid_grant', 'AADSTS54005: OAuth2 Authorization code was already redeemed or is not valid.');
      if (!tenantMatches(tenant, code.tenantId)) return oauthError(400, 'invalid_grant', 'AADSTS50020: The code was not issued for this tenant.');
      if (form.get('redirect_uri') !== code.redirectUri) return oauthError(400, 'invalid_grant', 'AADSTS50148: The redirect_uri does not match the one of the authorization request.');
      if (code.challenge !== undefined) {
        const verifier = form.get('code_verifier') ?? '';
        if (createHash('sha256').update(verifier, 'ascii').digest('base64url') !== code.challenge) return oauthError(400, 'invalid_grant', 'AADSTS501481: The Code_Verifier does not match the code_challenge supplied in the authorization request.');
      }
      return {
        status: 200,
        body: { token_type: 'Bearer', scope: code.scope, expires_in: 3599, ext_expires_in: 3599, access_token: `fake-user-token.${randomBytes(24).toString('base64url')}`, id_token: await idToken(code) },
      };
    },
    keys() {
      return { status: 200, body: { keys: [jwk] } };
    },
  };
}
