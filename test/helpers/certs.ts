import { generate } from 'selfsigned';

export interface SelfSignedCert {
  /** PKCS#8 private key, PEM. */
  key: string;
  /** The certificate, PEM. Clients pass it as their only trusted CA (`tlsOptions.ca`). */
  cert: string;
}

let pending: Promise<SelfSignedCert> | undefined;

/**
 * A certificate for local HTTPS fakes (Key Vault, Graph) valid for `localhost` and `127.0.0.1`.
 *
 * Generated in memory once per test process: every fake in a file shares it, and nothing is
 * written to disk, so no key can end up in the repository. Clients trust it explicitly through
 * per-client TLS options; TLS verification stays on everywhere.
 */
export function makeSelfSignedCert(): Promise<SelfSignedCert> {
  pending ??= generate([{ name: 'commonName', value: 'localhost' }], {
    keyType: 'ec',
    curve: 'P-256',
    algorithm: 'sha256',
    notBeforeDate: new Date(Date.now() - 60_000),
    notAfterDate: new Date(Date.now() + 7 * 24 * 3600_000),
    extensions: [
      // It is its own trust anchor, so it must be allowed to act as a CA for OpenSSL's chain check.
      { name: 'basicConstraints', cA: true },
      { name: 'keyUsage', digitalSignature: true, keyCertSign: true },
      { name: 'extKeyUsage', serverAuth: true },
      {
        name: 'subjectAltName',
        altNames: [
          { type: 2, value: 'localhost' },
          { type: 7, ip: '127.0.0.1' },
          { type: 7, ip: '::1' },
        ],
      },
    ],
  }).then((pems) => ({ key: pems.private, cert: pems.cert }));
  // A failed generation must not poison every later caller in the process.
  pending.catch(() => {
    pending = undefined;
  });
  return pending;
}

export interface AppCertificatePems {
  /** Private key and certificate in one PEM, as Key Vault exposes a PEM certificate through its secret. */
  pem: string;
  /** The public certificate alone: what is uploaded to the app registration. */
  cert: string;
}

/**
 * An RSA certificate for an app registration's certificate credential, generated in memory at test time (no
 * key is ever committed). `notAfter` in the past makes an expired one.
 */
export async function makeAppCertificate(opts: { notBefore?: Date; notAfter?: Date; commonName?: string } = {}): Promise<AppCertificatePems> {
  const pems = await generate([{ name: 'commonName', value: opts.commonName ?? 'itil-next-connectors test app' }], {
    keyType: 'rsa',
    keySize: 2048,
    algorithm: 'sha256',
    notBeforeDate: opts.notBefore ?? new Date(Date.now() - 60_000),
    notAfterDate: opts.notAfter ?? new Date(Date.now() + 30 * 24 * 3600_000),
  });
  return { pem: `${pems.private.trim()}\n${pems.cert.trim()}\n`, cert: pems.cert };
}
