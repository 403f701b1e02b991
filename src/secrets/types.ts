/**
 * Where client secrets, per-tenant refresh tokens and Teams webhook URLs live. Two implementations:
 * `KeyVaultSecretStore` (production) and `LocalSecretStore` (local runs and tests, encrypted at rest).
 *
 * Names follow Key Vault's rules (1-127 of `0-9 a-z A-Z -`) in both stores, so a name that works
 * locally works in Azure; build tenant-scoped names with `tenantSecretName`.
 */
export interface SecretStore {
  readonly kind: 'keyVault' | 'local';
  /** The value, or undefined when no such secret exists (or it is deleted). */
  get(name: string): Promise<string | undefined>;
  set(name: string, value: string, options?: { contentType?: string; tags?: Record<string, string> }): Promise<void>;
  /** Deletes; a missing secret is fine. */
  delete(name: string): Promise<void>;
  /** True when the store answers with the credentials we have. */
  healthCheck(): Promise<boolean>;
}

export class InvalidSecretNameError extends Error {
  constructor() {
    super('secret names must be 1-127 characters of letters, digits and "-", starting with a letter');
    this.name = 'InvalidSecretNameError';
  }
}

export const SECRET_NAME_PATTERN = /^[A-Za-z][A-Za-z0-9-]{0,126}$/;

export function assertSecretName(name: string): void {
  if (!SECRET_NAME_PATTERN.test(name)) throw new InvalidSecretNameError();
}
