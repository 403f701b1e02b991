import { randomBytes, randomUUID } from 'node:crypto';
import { errors as joseErrors, jwtVerify, SignJWT, type JWTPayload } from 'jose';
import type { SecretStore } from '../secrets';
import { appSecretName } from '../secrets/names';
import { tenantId as toTenantId, type DeploymentState, type ProcessedStore } from '../storage';
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

/** Where the key lived before its name was settled in DeploymentState; such a key is adopted as is. */
export const LEGACY_KEY_SECRET = appSecretName('token-signing-key');
/** The DeploymentState row naming the secret that holds the key. */
export const KEY_POINTER = 'token-signing-key';
const ISSUER = 'itil-next-connectors';

/**
 * Signed, expiring, purpose-bound tokens for what travels through a browser or a third party and comes
 * back: OAuth `state`, Graph admin-consent `state`, Teams snooze links. HS256 (jose) with a key kept in
 * the secret store; single use is enforced by claiming the token id in the Processed table.
 *
 * Every instance must sign with the same key. Key Vault has no conditional create (two instances that
 * both find no key would each write a version, and each keep its own), so the key's secret name is
 * settled in a DeploymentState row, which only the first insert creates: an instance writes a key under
 * a name of its own, then offers that name; the loser adopts the winner's and deletes its own unused
 * secret. The secret is written before the row, so the row never names a missing secret (an instance
 * that dies in between leaves an unused secret that nothing points at).
 */
export class SignedTokens {
  #key: Promise<Uint8Array> | undefined;

  constructor(
    private readonly secrets: SecretStore,
    private readonly processed: ProcessedStore,
    private readonly deployment: DeploymentState,
  ) {}

  /** Loaded once per instance; a failed load is tried again on the next call. */
  private key(): Promise<Uint8Array> {
    this.#key ??= this.loadKey().catch((err: unknown) => {
      this.#key = undefined;
      throw err;
    });
    return this.#key;
  }

  private async loadKey(): Promise<Uint8Array> {
    const name = (await this.deployment.get(KEY_POINTER)) ?? (await this.settleKey());
    const stored = await this.secrets.get(name);
    if (!stored) throw new Error(`the token-signing key (secret ${name}) is missing from the secret store`);
    return Buffer.from(stored, 'base64');
  }

  /** Makes a key (or adopts the one from before) and offers its name; returns the name every instance uses. */
  private async settleKey(): Promise<string> {
    const legacy = (await this.secrets.get(LEGACY_KEY_SECRET)) !== undefined;
    const mine = legacy ? LEGACY_KEY_SECRET : `${LEGACY_KEY_SECRET}-${randomBytes(16).toString('hex')}`;
    if (!legacy) await this.secrets.set(mine, randomBytes(32).toString('base64'), { contentType: 'application/octet-stream;base64' });
    const chosen = await this.deployment.putIfAbsent(KEY_POINTER, mine);
    // Lost the race: nothing was ever signed with ours.
    if (chosen !== mine && !legacy) await this.secrets.delete(mine).catch(() => undefined);
    return chosen;
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
