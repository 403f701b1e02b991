import { createHash, createPrivateKey, randomUUID, X509Certificate, type KeyObject } from 'node:crypto';
import { SignJWT } from 'jose';
import { AppError } from '../../platform/errors';
import { Logger, consoleSink } from '../../platform/logging';
import type { SecretStore } from '../../secrets';

/**
 * What proves the Graph app registration to Entra: its client secret, or (Microsoft's recommendation for
 * app-only access) a certificate whose public half is uploaded to the app registration.
 *
 * The certificate lives in the secret store under a fixed name. In Azure that is a Key Vault *certificate*
 * imported or created with content type `application/x-pem-file`: Key Vault exposes its private key and
 * certificate chain as a secret of the same name, which is what we read. Locally it is the same PEM in the
 * local secret store.
 */
export const MSGRAPH_CERTIFICATE_SECRET_NAME = 'msgraph-client-certificate';

/** How long a certificate that could not be loaded is not asked for again while the secret stands in. */
const DEFAULT_RETRY_AFTER_MS = 5 * 60_000;
/** Microsoft: keep the assertion short-lived, 5-10 minutes after nbf at most. */
const ASSERTION_LIFETIME_SECONDS = 5 * 60;
export const CLIENT_ASSERTION_TYPE = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';

export interface AppCertificate {
  /** Private key, then the certificate, as one PEM: what `ClientCertificateCredential` takes. */
  pem: string;
  privateKey: KeyObject;
  /** base64url SHA-256 of the leaf certificate's DER: the assertion's `x5t#S256`. */
  thumbprintSha256: string;
  notAfter: Date;
}

export type AppCredentialMaterial = { kind: 'certificate'; certificate: AppCertificate } | { kind: 'secret'; secret: string };

/**
 * The app's credential cannot be used (a deployment problem: 503). The message names the secret and the cause,
 * never any of its content.
 */
export class AppCredentialUnavailableError extends AppError {
  constructor(detail: string) {
    super({ status: 503, code: 'msgraph-credential-unavailable', title: 'The Microsoft Graph app credential is not available', detail });
  }
}

export class AppCertificateError extends AppCredentialUnavailableError {
  constructor(reason: string) {
    super(`Graph app certificate (secret "${MSGRAPH_CERTIFICATE_SECRET_NAME}") cannot be used: ${reason}`);
  }
}

// A PEM block as Key Vault and openssl write it. Linear: the body class excludes "-", so it cannot overlap
// the END line.
const CERTIFICATE_BLOCK = /-----BEGIN CERTIFICATE-----[A-Za-z0-9+/=\s]+-----END CERTIFICATE-----/;
// PKCS#8 (Key Vault's, openssl's default) or PKCS#1; an encrypted key is not matched and so refused.
const PRIVATE_KEY_BLOCK = /-----BEGIN (?:RSA )?PRIVATE KEY-----[A-Za-z0-9+/=\s]+-----END (?:RSA )?PRIVATE KEY-----/;

/**
 * Reads the PEM: the first certificate is the app's (Key Vault puts the leaf first, then the chain), the
 * private key must be its key, and it must be valid now (Entra refuses an expired one with a code that
 * says less).
 */
export function parseAppCertificate(pem: string, now: Date = new Date()): AppCertificate {
  const block = CERTIFICATE_BLOCK.exec(pem)?.[0];
  if (!block) throw new AppCertificateError('it holds no PEM certificate (import it with content type application/x-pem-file)');
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(block);
  } catch {
    throw new AppCertificateError('its certificate is not a valid X.509 certificate');
  }
  const keyBlock = PRIVATE_KEY_BLOCK.exec(pem)?.[0];
  let privateKey: KeyObject;
  try {
    if (!keyBlock) throw new Error('no key block');
    privateKey = createPrivateKey({ key: keyBlock, format: 'pem' });
  } catch {
    throw new AppCertificateError('it holds no unencrypted PEM private key');
  }
  if (privateKey.asymmetricKeyType !== 'rsa') throw new AppCertificateError('its key is not an RSA key (Entra signs and verifies client assertions with RSA)');
  if (!cert.checkPrivateKey(privateKey)) throw new AppCertificateError('its private key does not belong to its certificate');
  const notAfter = new Date(cert.validTo);
  if (notAfter.getTime() <= now.getTime()) throw new AppCertificateError(`its certificate expired on ${notAfter.toISOString()}`);
  if (new Date(cert.validFrom).getTime() > now.getTime()) throw new AppCertificateError('its certificate is not valid yet');
  // One canonical form for every consumer, whatever order the store had: the key, then the app's certificate
  // only (Node's key parser reads a PEM's key only when it comes first; no chain is sent anyway).
  return { pem: `${keyBlock as string}\n${block}\n`, privateKey, thumbprintSha256: createHash('sha256').update(cert.raw).digest('base64url'), notAfter };
}

/**
 * The signed client assertion of Microsoft's "certificate credentials" (OIDC `private_key_jwt`): PS256 with
 * the SHA-256 thumbprint in `x5t#S256`, `aud` the token endpoint it is posted to, `iss` = `sub` = the app's
 * client id, a fresh `jti`, and a few minutes of life.
 */
export async function clientAssertion(p: { certificate: AppCertificate; clientId: string; tokenEndpoint: string; now?: Date }): Promise<string> {
  const now = Math.floor((p.now ?? new Date()).getTime() / 1000);
  return new SignJWT({})
    .setProtectedHeader({ alg: 'PS256', typ: 'JWT', 'x5t#S256': p.certificate.thumbprintSha256 })
    .setAudience(p.tokenEndpoint)
    .setIssuer(p.clientId)
    .setSubject(p.clientId)
    .setJti(randomUUID())
    .setIssuedAt(now)
    .setNotBefore(now)
    .setExpirationTime(now + ASSERTION_LIFETIME_SECONDS)
    .sign(p.certificate.privateKey);
}

export interface AppCredentialSourceOptions {
  mode: 'secret' | 'certificate';
  /** In certificate mode, the fallback when the certificate cannot be loaded. */
  clientSecret?: string | undefined;
  secrets: Pick<SecretStore, 'get'>;
  log?: Logger;
  retryAfterMs?: number;
  now?: () => number;
}

/**
 * The app's credential, read once per process. In certificate mode the PEM is fetched from the secret store on
 * first use, by one caller while the others wait (single flight), and kept; a failure is not kept, but with a
 * client secret configured the secret answers instead (with a warning) and the certificate is asked for again
 * only after `retryAfterMs`, so a vault outage does not become a vault read per Graph call.
 */
export class AppCredentialSource {
  readonly #opts: AppCredentialSourceOptions;
  readonly #log: Logger;
  #certificate: AppCertificate | undefined;
  #loading: Promise<AppCertificate> | undefined;
  #failedAt: number | undefined;

  constructor(opts: AppCredentialSourceOptions) {
    this.#opts = opts;
    this.#log = opts.log ?? new Logger(consoleSink, { component: 'msgraph-app-credential' });
  }

  get mode(): 'secret' | 'certificate' {
    return this.#opts.mode;
  }

  async material(): Promise<AppCredentialMaterial> {
    const secret = this.#opts.clientSecret;
    if (this.#opts.mode === 'secret') {
      if (!secret) throw new AppCredentialUnavailableError('MSGRAPH_CREDENTIAL is secret but no MSGRAPH_CLIENT_SECRET is set');
      return { kind: 'secret', secret };
    }
    if (this.#certificate) return { kind: 'certificate', certificate: this.#certificate };
    const now = (this.#opts.now ?? Date.now)();
    if (secret && this.#failedAt !== undefined && now - this.#failedAt < (this.#opts.retryAfterMs ?? DEFAULT_RETRY_AFTER_MS)) return { kind: 'secret', secret };
    try {
      return { kind: 'certificate', certificate: await this.#load() };
    } catch (err) {
      this.#failedAt = (this.#opts.now ?? Date.now)();
      if (!secret) throw err;
      // The message names the secret and the cause only (AppCertificateError / SecretStoreError never carry values).
      this.#log.warn('Graph app certificate could not be loaded; using MSGRAPH_CLIENT_SECRET as the fallback', { reason: err instanceof Error ? err.message : 'unknown' });
      return { kind: 'secret', secret };
    }
  }

  #load(): Promise<AppCertificate> {
    this.#loading ??= (async () => {
      try {
        const pem = await this.#opts.secrets.get(MSGRAPH_CERTIFICATE_SECRET_NAME);
        if (pem === undefined) throw new AppCertificateError('no such secret in the secret store (import the certificate into Key Vault under that name)');
        const certificate = parseAppCertificate(pem);
        this.#certificate = certificate;
        return certificate;
      } finally {
        this.#loading = undefined;
      }
    })();
    return this.#loading;
  }
}
