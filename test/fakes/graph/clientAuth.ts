import { createHash, X509Certificate, type KeyObject } from 'node:crypto';
import { decodeProtectedHeader, errors as joseErrors, jwtVerify, type JWTHeaderParameters } from 'jose';

/**
 * How the fake token endpoint authenticates the app (both grants), as Entra does for a confidential client:
 * `client_secret`, or a certificate credential (`client_assertion_type=urn:ietf:params:oauth:client-assertion-type:jwt-bearer`
 * + `client_assertion`, Microsoft's "certificate credentials"): a JWT signed (RS256 or PS256) by the private key of
 * a certificate registered on the app, found by its `x5t#S256` (SHA-256) or `x5t` (SHA-1) thumbprint, with `aud`
 * the token endpoint it was posted to, `iss` = `sub` = the client id, `exp` not passed, `nbf` reached, and a
 * `jti` not seen before (a replayed assertion is refused).
 *
 * Replays: MSAL keeps one assertion per credential for its 10 minutes of life and sends it again for a second
 * token request in that time, which Entra accepts; the fake refuses it, so a test that shortens the access
 * token lifetime below 10 minutes in certificate mode would see a refusal Entra would not give.
 *
 * `secretsAllowed: false` is an app registration with certificates only: a client secret is refused, as Entra
 * refuses a secret the app does not have.
 */

const CLOCK_SKEW_SECONDS = 300;

export const JWT_BEARER = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';

export interface ClientAuthOptions {
  clientId: string;
  clientSecret: string;
  /** Public certificates (PEM) registered on the app registration. */
  certificates?: string[];
  /** Default true. */
  secretsAllowed?: boolean;
}

export interface ClientAuthFailure {
  status: number;
  error: string;
  description: string;
}

export type ClientAuthMethod = 'client_secret' | 'client_assertion' | 'none';

interface Registered {
  key: KeyObject;
  sha256: string;
  sha1: string;
}

export function clientAuthMethod(form: URLSearchParams): ClientAuthMethod {
  if (form.has('client_assertion')) return 'client_assertion';
  if (form.has('client_secret')) return 'client_secret';
  return 'none';
}

export function createClientAuthenticator(opts: ClientAuthOptions) {
  const registered: Registered[] = [];
  const usedJti = new Map<string, number>();
  const register = (pem: string) => {
    const x = new X509Certificate(pem);
    registered.push({ key: x.publicKey, sha256: createHash('sha256').update(x.raw).digest('base64url'), sha1: createHash('sha1').update(x.raw).digest('base64url') });
  };
  for (const pem of opts.certificates ?? []) register(pem);
  let secretsAllowed = opts.secretsAllowed ?? true;

  const fail = (status: number, error: string, description: string): ClientAuthFailure => ({ status, error, description });

  async function verifyAssertion(form: URLSearchParams, audience: string): Promise<ClientAuthFailure | undefined> {
    if (form.get('client_assertion_type') !== JWT_BEARER) return fail(400, 'invalid_request', "AADSTS7000219: 'client_assertion_type' must be urn:ietf:params:oauth:client-assertion-type:jwt-bearer.");
    if (form.has('client_secret')) return fail(400, 'invalid_request', 'AADSTS700025: Only one client credential may be presented.');
    const assertion = form.get('client_assertion') ?? '';
    let header: JWTHeaderParameters;
    try {
      header = decodeProtectedHeader(assertion) as JWTHeaderParameters;
    } catch {
      return fail(401, 'invalid_client', 'AADSTS50027: JWT token is invalid or malformed.');
    }
    const s256 = typeof header['x5t#S256'] === 'string' ? header['x5t#S256'] : undefined;
    const s1 = typeof header.x5t === 'string' ? header.x5t : undefined;
    const cert = registered.find((r) => (s256 !== undefined && r.sha256 === s256) || (s256 === undefined && s1 !== undefined && r.sha1 === s1));
    if (!cert) return fail(401, 'invalid_client', `AADSTS700027: The certificate with identifier used to sign the client assertion is not registered on application. [Reason - The key was not found., Thumbprint of key used by client: '${s256 ?? s1 ?? ''}']`);
    let payload;
    try {
      ({ payload } = await jwtVerify(assertion, cert.key, {
        algorithms: ['RS256', 'PS256'],
        audience,
        issuer: opts.clientId,
        subject: opts.clientId,
        requiredClaims: ['aud', 'iss', 'sub', 'jti', 'exp', 'nbf'],
        // Entra allows for clock skew (MSAL rounds "now" to the nearest second, so its nbf can be ahead of ours).
        clockTolerance: CLOCK_SKEW_SECONDS,
      }));
    } catch (err) {
      if (err instanceof joseErrors.JWTExpired) return fail(401, 'invalid_client', 'AADSTS700024: Client assertion is not within its valid time range.');
      if (err instanceof joseErrors.JWTClaimValidationFailed) {
        if (err.claim === 'nbf') return fail(401, 'invalid_client', 'AADSTS700024: Client assertion is not within its valid time range.');
        if (err.claim === 'aud') return fail(401, 'invalid_client', 'AADSTS700016: Client assertion audience claim does not match Realm issuer.');
        if (err.claim === 'iss' || err.claim === 'sub') return fail(401, 'invalid_client', "AADSTS700021: Client assertion application identifier doesn't match 'client_id' parameter.");
        return fail(401, 'invalid_client', `AADSTS50027: JWT token is invalid (claim ${err.claim}).`);
      }
      return fail(401, 'invalid_client', 'AADSTS700027: Client assertion failed signature validation.');
    }
    const now = Math.floor(Date.now() / 1000);
    for (const [j, exp] of usedJti) if (exp < now) usedJti.delete(j);
    const jti = String(payload.jti);
    if (usedJti.has(jti)) return fail(401, 'invalid_client', 'AADSTS700025: The client assertion was already used (jti replayed).');
    usedJti.set(jti, payload.exp as number);
    return undefined;
  }

  return {
    register,
    setSecretsAllowed(allowed: boolean) {
      secretsAllowed = allowed;
    },
    /** Undefined when the app is authenticated; `audience` is the token endpoint URL the request was posted to. */
    async authenticate(form: URLSearchParams, audience: string): Promise<ClientAuthFailure | undefined> {
      switch (clientAuthMethod(form)) {
        case 'client_assertion':
          return verifyAssertion(form, audience);
        case 'client_secret':
          if (!secretsAllowed || form.get('client_secret') !== opts.clientSecret) return fail(401, 'invalid_client', 'AADSTS7000215: Invalid client secret provided.');
          return undefined;
        case 'none':
          return fail(401, 'invalid_client', "AADSTS7000218: The request body must contain the following parameter: 'client_assertion' or 'client_secret'.");
      }
    },
  };
}

export type ClientAuthenticator = ReturnType<typeof createClientAuthenticator>;
