import { randomBytes, randomUUID } from 'node:crypto';
import { errors as joseErrors, jwtVerify, SignJWT, type JWTPayload } from 'jose';
import type { SecretStore } from '../secrets';
import { appSecretName } from '../secrets/names';
import { tenantId as toTenantId, type ProcessedStore } from '../storage';
import { AppError } from './errors';

export class InvalidSignedTokenError extends AppError {
  readonly reason: 'invalid' | 'expired' | 'used' | 'wrong_purpose';
  constructor(reason: 'invalid' | 'expired' | 'used' | 'wrong_purpose') {
    const detail = {
      invalid: 'The link or state is not valid.',
      expired: 'The link or state has expired.',
      used: 'The link or state has already been used.',
      wrong_purpose: 'The link or state is not valid here.',
    }[reason];
    super({ status: 400, code: `token-${reason.replace('_', '-')}`, title: 'Invalid token', detail });
    this.reason = reason;
  }
}

export interface SignedClaims extends JWTPayload {
  tenant_id: string;
  purpose: string;
}

const KEY_SECRET = appSecretName('token-signing-key');
const ISSUER = 'itil-next-connectors';

/**
 * Signed, expiring, purpose-bound tokens for what travels through a browser or a third party and comes
 * back: OAuth `state`, Graph admin-consent `state`, Teams snooze links. HS256 (jose) with a key kept in
 * the secret store; single use is enforced by claiming the token id in the Processed table.
 */
export class SignedTokens {
  #key: Uint8Array | undefined;

  constructor(
    private readonly secrets: SecretStore,
    private readonly processed: ProcessedStore,
  ) {}

  private async key(): Promise<Uint8Array> {
    if (this.#key) return this.#key;
    let stored = await this.secrets.get(KEY_SECRET);
    if (!stored) {
      await this.secrets.set(KEY_SECRET, randomBytes(32).toString('base64'), { contentType: 'application/octet-stream;base64' });
      // Two instances may race to create it; both use whatever won, so tokens verify on either.
      stored = (await this.secrets.get(KEY_SECRET)) as string;
    }
    this.#key = Buffer.from(stored, 'base64');
    return this.#key;
  }

  async sign(purpose: string, tenant: string, claims: Record<string, unknown>, ttlSeconds: number): Promise<string> {
    return new SignJWT({ ...claims, tenant_id: tenant, purpose })
      .setProtectedHeader({ alg: 'HS256' })
      .setIssuer(ISSUER)
      .setAudience(purpose)
      .setJti(randomUUID())
      .setIssuedAt()
      .setExpirationTime(`${ttlSeconds}s`)
      .sign(await this.key());
  }

  /**
   * Verifies signature, purpose and expiry; with `singleUse`, the first verification consumes it.
   * `check` runs on the verified claims before that, so a token refused by it (another browser's
   * state, say) is not used up and nothing is written.
   */
  async verify(purpose: string, token: string, opts: { singleUse: boolean; check?: (claims: SignedClaims) => void }): Promise<SignedClaims> {
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(token, await this.key(), { issuer: ISSUER, algorithms: ['HS256'], requiredClaims: ['exp', 'jti'] }));
    } catch (err) {
      throw new InvalidSignedTokenError(err instanceof joseErrors.JWTExpired ? 'expired' : 'invalid');
    }
    const claims = payload as SignedClaims;
    if (claims.purpose !== purpose || payload.aud !== purpose) throw new InvalidSignedTokenError('wrong_purpose');
    opts.check?.(claims);
    if (opts.singleUse) {
      const first = await this.processed.claim(`token-${purpose}`, toTenantId(claims.tenant_id), claims.jti as string);
      if (!first) throw new InvalidSignedTokenError('used');
    }
    return claims;
  }
}
