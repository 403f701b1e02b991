import { StorageClients } from '../../src/storage/clients';
import { startAzurite, type AzuriteInstance } from '../../runner/azurite';

/**
 * Every test file gets its own in-memory Azurite on free ports: files run in isolation and leave
 * nothing behind. `AZURITE_CONNECTION_STRING` (set by globalSetup) lets files share one instead.
 */
export async function useAzurite(): Promise<{ connectionString: string; clients: StorageClients; stop(): Promise<void> }> {
  let instance: AzuriteInstance | undefined;
  const shared = process.env.TEST_SHARED_AZURITE;
  const connectionString = shared ?? (instance = await startAzurite()).connectionString;
  const clients = new StorageClients({ kind: 'connectionString', connectionString });
  await clients.ensureAll();
  return { connectionString, clients, stop: async () => instance?.stop() };
}
