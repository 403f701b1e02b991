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

/**
 * How long one health report is served before the next request computes a new one. The route is
 * anonymous: without this, every request costs a Key Vault read, two storage calls and a call to each
 * connector's API, so a flood of it would throttle Key Vault and storage for every tenant. A part that
 * goes down shows within this period plus one probe (at most `CHECK_TIMEOUT_MS`).
 */
export const HEALTH_CACHE_MS = 5_000;

interface CacheEntry {
  /** The computation every caller of this period shares (single flight). */
  report: Promise<HealthReport>;
  /** When the shared computation finished; undefined while it runs. */
  doneAt?: number;
}

// One cache per Services object: one per instance in a deployment (services are a process singleton),
// and separate ones for the separate fakes of unit tests.
const caches = new WeakMap<Services, CacheEntry>();

/**
 * The health report, computed at most once per `HEALTH_CACHE_MS` per instance: concurrent requests
 * share the one computation in flight, and later ones get its result until it is older than the period.
 */
export function cachedHealth(services: Services, opts: { now?: () => number; ttlMs?: number } = {}): Promise<HealthReport> {
  const now = opts.now ?? Date.now;
  const ttl = opts.ttlMs ?? HEALTH_CACHE_MS;
  const entry = caches.get(services);
  if (entry && (entry.doneAt === undefined || now() - entry.doneAt < ttl)) return entry.report;
  const fresh: CacheEntry = {
    report: checkHealth(services).finally(() => {
      fresh.doneAt = now();
    }),
  };
  // A computation that failed is not served for a period: the next request tries again.
  fresh.report.catch(() => {
    if (caches.get(services) === fresh) caches.delete(services);
  });
  caches.set(services, fresh);
  return fresh.report;
}
