import { createRemoteJWKSet, errors as joseErrors, jwtVerify, type JWTPayload, type JWTVerifyGetKey } from 'jose';
import type { ApiAuthConfig } from '../../config';
import { ForbiddenError, UnauthorizedError } from '../errors';

export interface Principal {
  tenantId: string;
  subject?: string;
  claims: JWTPayload;
}

const CLOCK_TOLERANCE_S = 60;

/**
 * Without a pinned `typ`: a token may omit it or say `JWT` / `at+jwt` (RFC 9068), compared as RFC 7515
 * §4.1.9 says (case-insensitive, an `application/` prefix optional); anything else is a JWT meant for
 * something other than API access.
 */
function acceptedDefaultTyp(typ: string | undefined): boolean {
  if (typ === undefined) return true;
  const t = typ.toLowerCase().replace(/^application\//, '');
  return t === 'jwt' || t === 'at+jwt';
}

/**
 * Verifies the management API's bearer tokens with jose: HS256 with a shared secret locally, a JWKS
 * (RS256/ES256) in production. The tenant claim must equal the tenant in the path.
 */
export class ApiAuthenticator {
  readonly #config: ApiAuthConfig;
  readonly #jwks: JWTVerifyGetKey | undefined;

  constructor(config: ApiAuthConfig) {
    this.#config = config;
    this.#jwks = config.kind === 'jwks' ? createRemoteJWKSet(new URL(config.jwksUri)) : undefined;
  }

  /** Verifies the token; throws UnauthorizedError (401) when it is missing or invalid. */
  async authenticate(authorization: string | null): Promise<Principal> {
    const match = /^Bearer\s+(\S+)\s*$/i.exec(authorization ?? '');
    if (!match) throw new UnauthorizedError('A bearer token is required.');
    const token = match[1] as string;
    const cfg = this.#config;
    let payload: JWTPayload;
    try {
      const options = {
        clockTolerance: CLOCK_TOLERANCE_S,
        // jose requires `iat` with maxTokenAge and refuses a token issued longer ago (or in the future).
        requiredClaims: ['exp', 'iat'],
        maxTokenAge: cfg.maxAgeSeconds,
        ...(cfg.typ ? { typ: cfg.typ } : {}),
        ...(cfg.issuer ? { issuer: cfg.issuer } : {}),
        ...(cfg.audience ? { audience: cfg.audience } : {}),
      };
      const verified =
        cfg.kind === 'secret'
          ? await jwtVerify(token, cfg.secret, { ...options, algorithms: ['HS256'] })
          : await jwtVerify(token, this.#jwks as JWTVerifyGetKey, { ...options, algorithms: ['RS256', 'PS256', 'ES256'] });
      if (!cfg.typ && !acceptedDefaultTyp(verified.protectedHeader.typ)) throw new UnauthorizedError('The token\'s "typ" header is not accepted.');
      payload = verified.payload;
    } catch (err) {
      if (err instanceof UnauthorizedError) throw err;
      // The reason is safe to tell (expired, bad signature, wrong audience); the token itself never is.
      const reason = err instanceof joseErrors.JWTExpired ? 'The token has expired.' : err instanceof joseErrors.JWTClaimValidationFailed ? `The token's "${err.claim}" claim is not accepted.` : 'The token is not valid.';
      throw new UnauthorizedError(reason);
    }
    const tenant = payload[cfg.tenantClaim];
    if (typeof tenant !== 'string' || tenant.length === 0) throw new UnauthorizedError(`The token has no "${cfg.tenantClaim}" claim.`);
    return { tenantId: tenant, ...(payload.sub ? { subject: payload.sub } : {}), claims: payload };
  }

  /** 403 unless the principal belongs to `tenantId`. */
  authorizeTenant(principal: Principal, tenantId: string): void {
    if (principal.tenantId !== tenantId) throw new ForbiddenError('The token does not grant access to this tenant.');
  }
}
