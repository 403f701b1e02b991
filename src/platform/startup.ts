import type { StorageConfig } from '../config';
import { consoleSink, Logger } from './logging';
import { getServices } from './services';

/** Azurite (or any emulator on loopback) starts empty; in Azure, infra/ declares tables and queues. */
export function isLocalStorage(storage: StorageConfig): boolean {
  if (storage.kind !== 'connectionString') return false;
  return /UseDevelopmentStorage=true/i.test(storage.connectionString) || /(Table|Queue)Endpoint=https?:\/\/(127\.0\.0\.1|localhost|\[::1\])[:/]/i.test(storage.connectionString);
}

/**
 * Runs once when the host starts the app: parses configuration (a bad environment stops the start with
 * every problem listed) and, on local storage, creates the tables and queues.
 */
export async function onAppStart(): Promise<void> {
  const services = getServices();
  const log = new Logger(consoleSink, { functionName: 'appStart' }, services.config.logLevel);
  if (isLocalStorage(services.config.storage)) {
    await services.storage.ensureAll();
    log.info('local storage ready: tables and queues created');
  }
  log.info('app started', { store: services.secrets.kind, runningInAzure: services.config.runningInAzure });
}
