import type { TokenCredential } from '@azure/identity';
import type { SecretClientOptions } from '@azure/keyvault-secrets';
import type { SecretStoreConfig } from '../config';
import { LocalSecretStore } from './localSecretStore';
import { RedactingSecretStore } from './redactingSecretStore';
import type { SecretStore } from './types';

export interface CreateSecretStoreOptions {
  /** Key Vault only; defaults to DefaultAzureCredential (honouring `AZURE_CLIENT_ID`). */
  credential?: TokenCredential;
  /** Key Vault only. */
  cacheTtlMs?: number;
  /** Key Vault only; tests pass the fake vault's TLS trust here. */
  clientOptions?: SecretClientOptions;
  /** Read for Azure host markers (local) and `AZURE_CLIENT_ID` (Key Vault). Defaults to process.env. */
  env?: NodeJS.ProcessEnv;
}

/** The store the configuration asks for: Key Vault when `KEY_VAULT_URI` is set, else the encrypted local store. */
export function createSecretStore(config: SecretStoreConfig, opts: CreateSecretStoreOptions = {}): SecretStore {
  return new RedactingSecretStore(createInner(config, opts));
}

function createInner(config: SecretStoreConfig, opts: CreateSecretStoreOptions): SecretStore {
  switch (config.kind) {
    case 'keyVault': {
      // Required here, not imported above: @azure/identity and the Key Vault SDK cost ~140 ms of every cold
      // start, and only a deployed app (KEY_VAULT_URI set) uses them.
      const { KeyVaultSecretStore } = require('./keyVaultSecretStore') as typeof import('./keyVaultSecretStore');
      return new KeyVaultSecretStore({
        vaultUri: config.vaultUri,
        ...(opts.credential ? { credential: opts.credential } : {}),
        ...(opts.cacheTtlMs !== undefined ? { cacheTtlMs: opts.cacheTtlMs } : {}),
        ...(opts.clientOptions ? { clientOptions: opts.clientOptions } : {}),
        ...(opts.env ? { env: opts.env } : {}),
      });
    }
    case 'local':
      return new LocalSecretStore({ key: config.key, directory: config.directory, ...(opts.env ? { env: opts.env } : {}) });
  }
}
