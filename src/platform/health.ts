import { registeredConnectors } from '../connectors/registry';
import type { Services } from './services';

export type PartStatus = 'up' | 'down' | 'not_configured';

export interface HealthReport {
  status: 'healthy' | 'unhealthy';
  checks: {
    storage: PartStatus;
    secrets: PartStatus;
    connectors: Record<string, PartStatus>;
  };
}

const CHECK_TIMEOUT_MS = 5_000;

async function probe(check: () => Promise<boolean | void>): Promise<'up' | 'down'> {
  let timer: NodeJS.Timeout | undefined;
  try {
    const timeout = new Promise<false>((resolve) => {
      timer = setTimeout(() => resolve(false), CHECK_TIMEOUT_MS);
    });
    const result = await Promise.race([check().then((r) => r !== false), timeout]);
    return result ? 'up' : 'down';
  } catch {
    return 'down';
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Deployment-wide health: storage, the secret store and each registered connector. Only up/down per
 * part: reasons go to the log, never to this anonymous answer.
 */
export async function checkHealth(services: Services): Promise<HealthReport> {
  const connectors = registeredConnectors();
  const [storage, secrets, ...connectorResults] = await Promise.all([
    probe(() => services.storage.ping()),
    probe(() => services.secrets.healthCheck()),
    ...connectors.map(async (c) => {
      const connector = c.create();
      return connector ? probe(() => connector.healthCheck()) : ('not_configured' as const);
    }),
  ]);
  const connectorStatus: Record<string, PartStatus> = {};
  connectors.forEach((c, i) => {
    connectorStatus[c.name] = connectorResults[i] as PartStatus;
  });
  const requiredDown = connectors.some((c, i) => c.required && connectorResults[i] === 'down');
  const healthy = storage === 'up' && secrets === 'up' && !requiredDown;
  return { status: healthy ? 'healthy' : 'unhealthy', checks: { storage: storage as PartStatus, secrets: secrets as PartStatus, connectors: connectorStatus } };
}
