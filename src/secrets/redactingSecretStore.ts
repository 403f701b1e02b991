import { registerSecret } from '../platform/logging';
import type { SecretStore } from './types';

/**
 * Every value that passes through the secret store is registered with the log redactor, so a token read
 * for one call cannot show up in a later log line or error, whatever shape it has.
 */
export class RedactingSecretStore implements SecretStore {
  constructor(private readonly inner: SecretStore) {}

  get kind(): SecretStore['kind'] {
    return this.inner.kind;
  }

  async get(name: string): Promise<string | undefined> {
    const value = await this.inner.get(name);
    registerSecret(value);
    return value;
  }

  async set(name: string, value: string, options?: { contentType?: string; tags?: Record<string, string> }): Promise<void> {
    registerSecret(value);
    await this.inner.set(name, value, options);
  }

  delete(name: string): Promise<void> {
    return this.inner.delete(name);
  }

  healthCheck(): Promise<boolean> {
    return this.inner.healthCheck();
  }
}
