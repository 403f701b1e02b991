import { createRemoteJWKSet, errors as joseErrors, jwtVerify, type JWTPayload } from 'jose';
import { z } from 'zod';
import { AppError } from '../../platform/errors';
import { AppCredentialSource, CLIENT_ASSERTION_TYPE, clientAssertion } from './appCredential';
import { ENTRA_TENANT_ID } from './client';

/**
 * OpenID Connect sign-in of the customer's admin at the Microsoft identity platform (authorization
 * code flow with PKCE), so that the Entra tenant id we connect comes from an id_token Microsoft
 * signed for our app and for this browser's nonce, never from a query parameter.
 *
 * Multi-tenant: the `organizations` authority (work and school accounts). Its discovery document names
 * the issuer as the template `https://login.microsoftonline.com/{tenantid}/v2.0`; a token's issuer must
 * be that template filled with the token's own `tid` (Microsoft's guidance for multi-tenant apps).
 */

export const SIGN_IN_AUTHORITY = 'organizations';
export const SIGN_IN_SCOPE = 'openid profile';
/** An id_token is used once, right after the code exchange; an older one is not accepted. */
const MAX_ID_TOKEN_AGE = '10m';

export class SignInFailedError extends AppError {
  constructor(detail: string, status = 400) {
    super({ status, code: 'msgraph-sign-in-failed', title: 'Microsoft sign-in could not be verified', detail });
  }
}

const discoverySchema = z.looseObject({
  issuer: z.string().min(1).max(512),
  authorization_endpoint: z.url().max(512),
  token_endpoint: z.url().max(512),
  jwks_uri: z.url().max(512),
});
type Discovery = z.infer<typeof discoverySchema>;

const tokenResponseSchema = z.looseObject({ id_token: z.string().min(1).max(16_384) });

const idTokenClaimsSchema = z.looseObject({
  tid: z.string().regex(ENTRA_TENANT_ID),
  oid: z.string().min(1).max(64).optional(),
  iss: z.string(),
  nonce: z.string(),
});

export interface VerifiedSignIn {
  /** The admin's Entra tenant (lower case GUID). */
  entraTenantId: string;
  /** The admin's object id in that tenant, when the token says. */
  userObjectId: string | undefined;
}

export interface EntraSignInOptions {
  authorityHost: string;
  clientId: string;
  /** The client secret, when no `appCredential` is given (secret mode). */
  clientSecret?: string;
  /** What proves the app at the token endpoint: a signed client assertion (certificate) or the secret. */
  appCredential?: AppCredentialSource;
  /** Bounded waits for Microsoft's endpoints. */
  timeoutMs?: number;
}

/** One per process: the discovery document and the JWKS (jose caches and refreshes keys by `kid`). */
export class EntraSignIn {
  #discovery: Promise<Discovery> | undefined;
  #jwks: ReturnType<typeof createRemoteJWKSet> | undefined;
  readonly #credential: AppCredentialSource;

  constructor(private readonly opts: EntraSignInOptions) {
    this.#credential = opts.appCredential ?? new AppCredentialSource({ mode: 'secret', clientSecret: opts.clientSecret, secrets: { get: async () => undefined } });
  }

  private get timeoutMs(): number {
    return this.opts.timeoutMs ?? 10_000;
  }

  private discovery(): Promise<Discovery> {
    if (!this.#discovery) {
      const pending = (async () => {
        const res = await fetch(`${this.opts.authorityHost}/${SIGN_IN_AUTHORITY}/v2.0/.well-known/openid-configuration`, { signal: AbortSignal.timeout(this.timeoutMs) });
        if (!res.ok) throw new Error(`OpenID discovery answered HTTP ${res.status}`);
        return discoverySchema.parse(await res.json());
      })();
      // A failure is not cached: the next sign-in asks again.
      pending.catch(() => {
        if (this.#discovery === pending) this.#discovery = undefined;
      });
      this.#discovery = pending;
    }
    return this.#discovery;
  }

  /** Where the start page sends the browser. */
  async authorizeUrl(p: { redirectUri: string; state: string; nonce: string; codeChallenge: string }): Promise<string> {
    const d = await this.discovery();
    const u = new URL(d.authorization_endpoint);
    u.searchParams.set('client_id', this.opts.clientId);
    u.searchParams.set('response_type', 'code');
    u.searchParams.set('redirect_uri', p.redirectUri);
    u.searchParams.set('response_mode', 'query');
    u.searchParams.set('scope', SIGN_IN_SCOPE);
    u.searchParams.set('state', p.state);
    u.searchParams.set('nonce', p.nonce);
    u.searchParams.set('code_challenge', p.codeChallenge);
    u.searchParams.set('code_challenge_method', 'S256');
    return u.toString();
  }

  /** Redeems the code (with the PKCE verifier) and verifies the id_token it returns. */
  async redeem(p: { code: string; redirectUri: string; codeVerifier: string; nonce: string }): Promise<VerifiedSignIn> {
    const d = await this.discovery();
    const material = await this.#credential.material();
    // Certificate: the assertion's audience is the token endpoint this very request goes to.
    const clientAuth: Record<string, string> =
      material.kind === 'certificate'
        ? { client_assertion_type: CLIENT_ASSERTION_TYPE, client_assertion: await clientAssertion({ certificate: material.certificate, clientId: this.opts.clientId, tokenEndpoint: d.token_endpoint }) }
        : { client_secret: material.secret };
    const form = new URLSearchParams({
      client_id: this.opts.clientId,
      ...clientAuth,
      grant_type: 'authorization_code',
      code: p.code,
      redirect_uri: p.redirectUri,
      code_verifier: p.codeVerifier,
      scope: SIGN_IN_SCOPE,
    });
    const res = await fetch(d.token_endpoint, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
      body: form.toString(),
      signal: AbortSignal.timeout(this.timeoutMs),
    });
    // Only Microsoft's error code is kept; its description can echo what we sent.
    if (!res.ok) {
      const code = await res.json().then((b: unknown) => (b && typeof b === 'object' && 'error' in b ? String((b as { error: unknown }).error).replace(/[^a-z_]/gi, '').slice(0, 64) : ''), () => '');
      throw new SignInFailedError(`Microsoft refused the sign-in code${code ? ` (${code})` : ''}; start again.`, res.status >= 500 ? 502 : 400);
    }
    const body = tokenResponseSchema.safeParse(await res.json().catch(() => undefined));
    if (!body.success) throw new SignInFailedError('Microsoft returned no id_token for the sign-in.', 502);
    return this.verifyIdToken(body.data.id_token, p.nonce);
  }

  /**
   * RS256 signature against the authority's JWKS, audience our client id, expiry and age, the
   * per-tenant issuer, and the nonce of this browser's flow.
   */
  async verifyIdToken(idToken: string, nonce: string): Promise<VerifiedSignIn> {
    const d = await this.discovery();
    this.#jwks ??= createRemoteJWKSet(new URL(d.jwks_uri), { timeoutDuration: this.timeoutMs });
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(idToken, this.#jwks, {
        algorithms: ['RS256'],
        audience: this.opts.clientId,
        maxTokenAge: MAX_ID_TOKEN_AGE,
        requiredClaims: ['iss', 'aud', 'exp', 'iat', 'tid', 'nonce'],
      }));
    } catch (err) {
      const why = err instanceof joseErrors.JWTExpired ? 'it has expired' : err instanceof joseErrors.JWTClaimValidationFailed ? `its ${err.claim} claim is not valid` : 'its signature or form is not valid';
      throw new SignInFailedError(`The Microsoft sign-in was refused: ${why}.`);
    }
    const claims = idTokenClaimsSchema.safeParse(payload);
    if (!claims.success) throw new SignInFailedError('The Microsoft sign-in was refused: it names no Entra tenant.');
    const tid = claims.data.tid.toLowerCase();
    if (claims.data.iss !== d.issuer.replace('{tenantid}', tid) && claims.data.iss !== d.issuer.replace('{tenantid}', claims.data.tid)) {
      throw new SignInFailedError('The Microsoft sign-in was refused: its issuer is not the tenant it names.');
    }
    if (claims.data.nonce !== nonce) throw new SignInFailedError('The Microsoft sign-in was refused: it was not issued for this browser (nonce).');
    return { entraTenantId: tid, userObjectId: claims.data.oid };
  }
}
