export { getConfig, parseConfig, resetConfigForTests, ConfigError } from './config';
export type { AppConfig, ApiAuthConfig, ApiTokenRules, SecretStoreConfig, StorageConfig } from './config';
export { envSchema, decodeKey256 } from './schema';
export type { Env } from './schema';
