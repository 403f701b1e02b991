import { DefaultAzureCredential, type TokenCredential } from '@azure/identity';
import { SecretClient, type SecretClientOptions } from '@azure/keyvault-secrets';
import { assertSecretName, type SecretStore } from './types';

export interface KeyVaultSecretStoreOptions {
  /** `https://<vault>.vault.azure.net` (`KEY_VAULT_URI`). */
  vaultUri: string;
  /** Defaults to DefaultAzureCredential; `AZURE_CLIENT_ID` selects a user-assigned managed identity. */
  credential?: TokenCredential;
  /** How long a read value is reused from memory. Default 5 minutes. */
  cacheTtlMs?: number;
  clientOptions?: SecretClientOptions;
  /** Upper bound for one store call, retries included. Default 30 s. */
  operationTimeoutMs?: number;
  /** Delay between polls of delete/recover operations. Default 2 s (the SDK's). */
  pollIntervalMs?: number;
  /** Read for `AZURE_CLIENT_ID` when no credential is given. */
  env?: NodeJS.ProcessEnv;
}

/** A Key Vault failure. Carries the secret's name, the operation and the service's status/code, never a value. */
export class SecretStoreError extends Error {
  readonly secretName: string;
  readonly operation: 'get' | 'set' | 'delete';
  readonly statusCode: number | undefined;
  readonly code: string | undefined;
  constructor(operation: 'get' | 'set' | 'delete', secretName: string, info: RestErrorInfo) {
    const status = info.statusCode === undefined ? '' : ` (HTTP ${info.statusCode}${info.code ? ` ${info.code}` : ''})`;
    super(`Key Vault ${operation} of secret "${secretName}" failed${status}: ${describe(info)}`);
    this.name = 'SecretStoreError';
    this.secretName = secretName;
    this.operation = operation;
    this.statusCode = info.statusCode;
    this.code = info.code;
  }
}

const DEFAULT_CACHE_TTL_MS = 5 * 60_000;
const DEFAULT_OPERATION_TIMEOUT_MS = 30_000;
const DEFAULT_POLL_INTERVAL_MS = 2_000;
/** Looked up by healthCheck; "not found" proves the vault answers and accepts our token. */
const HEALTH_PROBE_NAME = 'itil-next-health-probe';

interface CacheEntry {
  value: string;
  expiresAt: number;
}

/**
 * Production secret store. Values are cached in memory for `cacheTtlMs` because Key Vault throttles
 * per vault (Microsoft's guidance is to cache and re-read rarely). Misses are not cached: a secret
 * another instance just wrote must be visible at once.
 *
 * Deletes are soft (purge protection is on in production), so a deleted name stays reserved until it
 * is recovered; `set` on such a name recovers it and writes the new version instead of failing.
 */
export class KeyVaultSecretStore implements SecretStore {
  readonly kind = 'keyVault' as const;
  readonly #client: SecretClient;
  readonly #cacheTtlMs: number;
  readonly #timeoutMs: number;
  readonly #pollIntervalMs: number;
  readonly #cache = new Map<string, CacheEntry>();
  /** Bumped by set/delete so a read that started earlier cannot put an older value in the cache. */
  readonly #generation = new Map<string, number>();

  constructor(options: KeyVaultSecretStoreOptions) {
    const env = options.env ?? process.env;
    const credential =
      options.credential ?? new DefaultAzureCredential(env.AZURE_CLIENT_ID ? { managedIdentityClientId: env.AZURE_CLIENT_ID } : {});
    this.#client = new SecretClient(options.vaultUri, credential, {
      // 429s are retried by the SDK's throttling policy (honouring Retry-After); these bound the
      // exponential retries for 5xx and network errors.
      retryOptions: { maxRetries: 3, retryDelayInMs: 500, maxRetryDelayInMs: 8_000 },
      ...options.clientOptions,
      // A local fake cannot serve a vault.azure.net challenge resource; a real vault always must.
      disableChallengeResourceVerification: isLoopbackUrl(options.vaultUri),
    });
    this.#cacheTtlMs = options.cacheTtlMs ?? DEFAULT_CACHE_TTL_MS;
    this.#timeoutMs = options.operationTimeoutMs ?? DEFAULT_OPERATION_TIMEOUT_MS;
    this.#pollIntervalMs = options.pollIntervalMs ?? DEFAULT_POLL_INTERVAL_MS;
  }

  async get(name: string): Promise<string | undefined> {
    assertSecretName(name);
    const key = name.toLowerCase();
    const hit = this.#cache.get(key);
    if (hit && hit.expiresAt > Date.now()) return hit.value;
    this.#cache.delete(key);

    const generation = this.#generation.get(key) ?? 0;
    let value: string | undefined;
    try {
      value = (await this.#client.getSecret(name, { abortSignal: this.#signal() })).value;
    } catch (err) {
      const info = restErrorInfo(err);
      if (info.statusCode === 404) return undefined;
      throw new SecretStoreError('get', name, info);
    }
    if (value !== undefined && (this.#generation.get(key) ?? 0) === generation) this.#remember(key, value);
    return value;
  }

  async set(name: string, value: string, options: { contentType?: string; tags?: Record<string, string> } = {}): Promise<void> {
    assertSecretName(name);
    const key = name.toLowerCase();
    this.#invalidate(key);
    const params = {
      ...(options.contentType !== undefined ? { contentType: options.contentType } : {}),
      ...(options.tags !== undefined ? { tags: options.tags } : {}),
    };
    const signal = this.#signal();
    try {
      await this.#client.setSecret(name, value, { ...params, abortSignal: signal });
    } catch (err) {
      const info = restErrorInfo(err);
      if (!isDeletedButRecoverable(info)) throw new SecretStoreError('set', name, info);
      await this.#recover(name, signal);
      try {
        await this.#client.setSecret(name, value, { ...params, abortSignal: signal });
      } catch (retryErr) {
        throw new SecretStoreError('set', name, restErrorInfo(retryErr));
      }
    }
    this.#remember(key, value);
  }

  async delete(name: string): Promise<void> {
    assertSecretName(name);
    this.#invalidate(name.toLowerCase());
    try {
      const poller = await this.#client.beginDeleteSecret(name, { abortSignal: this.#signal(), intervalInMs: this.#pollIntervalMs });
      await poller.pollUntilDone();
    } catch (err) {
      const info = restErrorInfo(err);
      if (info.statusCode !== 404) throw new SecretStoreError('delete', name, info);
    }
  }

  async healthCheck(): Promise<boolean> {
    try {
      await this.#client.getSecret(HEALTH_PROBE_NAME, { abortSignal: this.#signal() });
      return true;
    } catch (err) {
      return restErrorInfo(err).statusCode === 404;
    }
  }

  async #recover(name: string, signal: AbortSignal): Promise<void> {
    try {
      const poller = await this.#client.beginRecoverDeletedSecret(name, { abortSignal: signal, intervalInMs: this.#pollIntervalMs });
      await poller.pollUntilDone();
    } catch (err) {
      const info = restErrorInfo(err);
      // Another instance recovered it first (404: no longer deleted; 409: recovery under way); the
      // second setSecret then succeeds or reports the real problem.
      if (info.statusCode !== 404 && info.statusCode !== 409) {
        throw new SecretStoreError('set', name, { ...info, message: `recovering the soft-deleted secret failed: ${info.message ?? 'unknown error'}` });
      }
    }
  }

  #signal(): AbortSignal {
    return AbortSignal.timeout(this.#timeoutMs);
  }

  #remember(key: string, value: string): void {
    if (this.#cacheTtlMs > 0) this.#cache.set(key, { value, expiresAt: Date.now() + this.#cacheTtlMs });
  }

  #invalidate(key: string): void {
    this.#cache.delete(key);
    this.#generation.set(key, (this.#generation.get(key) ?? 0) + 1);
  }
}

/** True for `localhost`, `127.0.0.1` and `::1`: the only hosts where challenge verification is skipped. */
export function isLoopbackUrl(url: string): boolean {
  let host: string;
  try {
    host = new URL(url).hostname.toLowerCase();
  } catch {
    return false;
  }
  return host === 'localhost' || host === '127.0.0.1' || host === '[::1]' || host === '::1';
}

export interface RestErrorInfo {
  statusCode?: number | undefined;
  code?: string | undefined;
  innerCode?: string | undefined;
  message?: string | undefined;
}

/**
 * Reads what we need from the SDK's RestError without keeping the error: it holds the request,
 * whose body for setSecret is the secret value.
 */
export function restErrorInfo(err: unknown): RestErrorInfo {
  if (typeof err !== 'object' || err === null) return { message: 'non-error thrown' };
  const e = err as { name?: unknown; statusCode?: unknown; code?: unknown; message?: unknown; details?: unknown };
  const details = e.details as { error?: { code?: unknown; message?: unknown; innerError?: { code?: unknown } } } | undefined;
  const serviceMessage = typeof details?.error?.message === 'string' ? details.error.message : undefined;
  return {
    statusCode: typeof e.statusCode === 'number' ? e.statusCode : undefined,
    code: typeof e.code === 'string' ? e.code : typeof details?.error?.code === 'string' ? details.error.code : undefined,
    innerCode: typeof details?.error?.innerError?.code === 'string' ? details.error.innerError.code : undefined,
    message: e.name === 'AbortError' ? 'no answer in time (vault unreachable or slow) or aborted' : (serviceMessage ?? (typeof e.message === 'string' ? e.message : undefined)),
  };
}

function isDeletedButRecoverable(info: RestErrorInfo): boolean {
  return info.statusCode === 409 && (info.innerCode === 'ObjectIsDeletedButRecoverable' || /deleted but recoverable/i.test(info.message ?? ''));
}

function describe(info: RestErrorInfo): string {
  if (info.statusCode === 401 || info.statusCode === 403) {
    return `not authorised; check the identity's access to the vault (${info.message ?? 'no details'})`;
  }
  return info.message ?? 'unknown error';
}
