export { assertSecretName, InvalidSecretNameError, SECRET_NAME_PATTERN } from './types';
export type { SecretStore } from './types';
export { appSecretName, tenantSecretName } from './names';
// The Key Vault store is not re-exported as a value: importing it loads the Azure SDKs (see factory.ts).
export type { KeyVaultSecretStore, KeyVaultSecretStoreOptions, SecretStoreError } from './keyVaultSecretStore';
export { AZURE_HOST_MARKERS, LocalSecretStore, LocalSecretStoreRefusedError, LocalSecretUnreadableError } from './localSecretStore';
export type { LocalSecretStoreOptions } from './localSecretStore';
export { createSecretStore } from './factory';
export type { CreateSecretStoreOptions } from './factory';
export { RedactingSecretStore } from './redactingSecretStore';
