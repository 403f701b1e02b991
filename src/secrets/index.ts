export { assertSecretName, InvalidSecretNameError, SECRET_NAME_PATTERN } from './types';
export type { SecretStore } from './types';
export { appSecretName, tenantSecretName } from './names';
export { KeyVaultSecretStore, SecretStoreError } from './keyVaultSecretStore';
export type { KeyVaultSecretStoreOptions } from './keyVaultSecretStore';
export { AZURE_HOST_MARKERS, LocalSecretStore, LocalSecretStoreRefusedError, LocalSecretUnreadableError } from './localSecretStore';
export type { LocalSecretStoreOptions } from './localSecretStore';
export { createSecretStore } from './factory';
export type { CreateSecretStoreOptions } from './factory';
