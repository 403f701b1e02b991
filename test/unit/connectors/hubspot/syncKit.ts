import { Client } from '@hubspot/api-client';
import type { HubSpotCaller, HubSpotCallStats } from '../../../../src/connectors/hubspot/caller';
import { SyncEngine, type SyncMessage, type SyncOptions } from '../../../../src/connectors/hubspot';
import { EngineEventPublisher } from '../../../../src/platform/events';
import { checkEngineEventMessage } from '../../../helpers/engineEvents';
import { ENGINE_EVENT_CATALOG } from '../../../../src/connectors/eventCatalog';
import { Logger, type LogSink } from '../../../../src/platform/logging';
import {
  EventDataBlobs,
  IntegrationsRepository,
  Leases,
  QueueSender,
  TABLES,
  TenantTable,
  integrationId,
  tenantId,
  type IntegrationId,
  type LeaseRow,
  type QueueName,
  type StorageClients,
  type TenantId,
} from '../../../../src/storage';
import type { FakeHubSpot } from '../../../fakes/hubspot';

/**
 * A minimal caller for the engine's tests: the real SDK against the fake with a private-app token,
 * no limiter, a short retry on 429/5xx. The production caller (limiter, budget, token refresh) is
 * exercised by the end-to-end tests and the benchmark.
 */
export function testCaller(fake: FakeHubSpot, hubId: number, t: TenantId, i: IntegrationId): HubSpotCaller {
  const token = fake.createPrivateAppToken(hubId);
  const stats: HubSpotCallStats = { calls: 0, searchCalls: 0, rateLimitWaits: 0, rateLimitWaitedMs: 0, retries: 0, status429: 0 };
  return {
    tenantId: t,
    integrationId: i,
    portalId: String(hubId),
    stats: () => ({ ...stats }),
    async call(kind, _operation, fn) {
      for (let attempt = 1; ; attempt++) {
        stats.calls++;
        if (kind === 'search') stats.searchCalls++;
        const client = new Client({ accessToken: token, basePath: fake.url, numberOfApiCallRetries: 0 });
        try {
          return await fn(client, new AbortController().signal);
        } catch (err) {
          const code = (err as { code?: unknown }).code;
          const retryable = code === 429 || (typeof code === 'number' && code >= 500);
          if (!retryable || attempt >= 3) throw err;
          if (code === 429) {
            stats.status429++;
            stats.rateLimitWaits++;
          }
          stats.retries++;
          await new Promise((r) => setTimeout(r, 50));
        }
      }
    },
  };
}

export interface CapturedLog {
  lines: string[];
  log: Logger;
}

export function captureLog(): CapturedLog {
  const lines: string[] = [];
  const sink: LogSink = { debug: (m) => lines.push(m), info: (m) => lines.push(m), warn: (m) => lines.push(m), error: (m) => lines.push(m) };
  return { lines, log: new Logger(sink, {}, 'debug') };
}

export interface Kit {
  integrations: IntegrationsRepository;
  queues: QueueSender;
  leases: Leases;
  events: EngineEventPublisher;
  engine(caller: HubSpotCaller, opts?: Partial<SyncOptions>): SyncEngine;
  /** Creates an active HubSpot integration row for a tenant, connected to `hubId`. */
  connect(tenant: string, id: string, hubId: number, status?: 'active' | 'needs_reauth'): Promise<{ t: TenantId; i: IntegrationId }>;
}

export function kit(clients: StorageClients, log: Logger): Kit {
  const integrations = new IntegrationsRepository(new TenantTable(clients.table(TABLES.integrations)));
  const queues = new QueueSender(clients);
  const leases = new Leases(new TenantTable<LeaseRow>(clients.table(TABLES.leases)));
  const events = new EngineEventPublisher(queues, new EventDataBlobs(clients), ENGINE_EVENT_CATALOG);
  return {
    integrations,
    queues,
    leases,
    events,
    engine: (caller, opts = {}) => new SyncEngine({ storage: clients, queues, leases, integrations, events, log, callerFor: async () => caller }, opts),
    connect: async (tenant, id, hubId, status = 'active') => {
      const t = tenantId(tenant);
      const i = integrationId(id);
      await integrations.create(t, { integrationId: i, type: 'hubspot', status, externalAccountId: String(hubId) });
      return { t, i };
    },
  };
}

/** Drains `hubspot-sync`, running each job, until the queue is empty (continuations included). */
export async function drainSyncQueue(clients: StorageClients, engine: SyncEngine, max = 500): Promise<{ jobs: number; outcomes: string[] }> {
  const q = clients.queue('hubspot-sync');
  const outcomes: string[] = [];
  for (let n = 0; n < max; n++) {
    const res = await q.receiveMessages({ numberOfMessages: 1, visibilityTimeout: 60 });
    const msg = res.receivedMessageItems[0];
    if (!msg) {
      // A deferred job is invisible for a moment; look once more before calling the queue empty.
      const peek = await q.getProperties();
      if ((peek.approximateMessagesCount ?? 0) === 0) return { jobs: n, outcomes };
      await new Promise((r) => setTimeout(r, 200));
      continue;
    }
    const body = JSON.parse(Buffer.from(msg.messageText, 'base64').toString('utf8')) as SyncMessage;
    const out = await engine.runJob(body, { dequeueCount: msg.dequeueCount });
    outcomes.push(out.outcome);
    await q.deleteMessage(msg.messageId, msg.popReceipt);
  }
  throw new Error('sync queue did not drain');
}

/** Every message on a queue, decoded, removed from the queue. */
export async function drainQueue(clients: StorageClients, queue: QueueName): Promise<unknown[]> {
  const q = clients.queue(queue);
  const out: unknown[] = [];
  for (;;) {
    const res = await q.receiveMessages({ numberOfMessages: 32, visibilityTimeout: 60 });
    if (res.receivedMessageItems.length === 0) return out;
    for (const m of res.receivedMessageItems) {
      const message: unknown = JSON.parse(Buffer.from(m.messageText, 'base64').toString('utf8'));
      // Every engine event the sync suites read must be what asyncapi.json promises.
      if (queue === 'engine-events') await checkEngineEventMessage(message);
      out.push(message);
      await q.deleteMessage(m.messageId, m.popReceipt);
    }
  }
}
