import type { InvocationContext, StorageQueueHandler, Timer, TimerHandler } from '@azure/functions';
import type { z } from 'zod';
import { encodeQueueMessage, type QueueName } from '../storage';
import { ensureError } from './errors';
import { contextSink, Logger } from './logging';
import { getServices, type Services } from './services';

export interface QueueInput<T> {
  message: T;
  context: InvocationContext;
  log: Logger;
  services: Services;
  dequeueCount: number;
  /**
   * The queue message's id (trigger metadata `id`): the same on every delivery of this message, and no
   * two invocations hold it at once, so work can own a claim by it (a redelivery after a crash).
   */
  queueMessageId: string | undefined;
}

/**
 * The shared front of every queue-triggered function: zod validation of the message, structured logs
 * with the message's tenant and correlation ids, and the retry contract. A message that can never be
 * valid goes straight to `<queue>-poison` (retrying it five times would only delay the alarm); a failure
 * of the work is thrown, so the runtime makes the message visible again and poisons it after
 * `maxDequeueCount` attempts.
 */
export function queueHandler<T>(
  spec: { queue: QueueName; schema: z.ZodType<T> },
  fn: (input: QueueInput<T>) => Promise<void>,
  servicesFactory: () => Services = getServices,
): StorageQueueHandler {
  return async (raw, context) => {
    const services = servicesFactory();
    const metadata = context.triggerMetadata as { dequeueCount?: unknown; id?: unknown } | undefined;
    const dequeueCount = Number(metadata?.dequeueCount ?? 1);
    const queueMessageId = typeof metadata?.id === 'string' && metadata.id.length > 0 ? metadata.id : undefined;
    const ids = idsOf(raw);
    const log = new Logger(
      contextSink(context),
      { ...ids, correlationId: ids.correlationId ?? context.invocationId, invocationId: context.invocationId, functionName: context.functionName, queue: spec.queue },
      services.config.logLevel,
    );
    const parsed = spec.schema.safeParse(raw);
    if (!parsed.success) {
      log.error('invalid queue message moved to poison', { issues: parsed.error.issues.map((i) => ({ path: i.path.join('.'), message: i.message })) });
      await services.storage.queue(`${spec.queue}-poison`).createIfNotExists();
      await services.storage.queue(`${spec.queue}-poison`).sendMessage(encodeQueueMessage(raw));
      return;
    }
    const started = Date.now();
    try {
      await fn({ message: parsed.data, context, log, services, dequeueCount, queueMessageId });
      log.info('message processed', { dequeueCount, durationMs: Date.now() - started });
    } catch (err) {
      log.error('message failed', { dequeueCount, durationMs: Date.now() - started, error: ensureError(err) });
      throw err;
    }
  };
}

export interface TimerInput {
  timer: Timer;
  context: InvocationContext;
  log: Logger;
  services: Services;
}

/** The shared front of timer functions: structured logs around the run; failures are logged and thrown. */
export function timerHandler(fn: (input: TimerInput) => Promise<void>, servicesFactory: () => Services = getServices): TimerHandler {
  return async (timer, context) => {
    const services = servicesFactory();
    const log = new Logger(contextSink(context), { correlationId: context.invocationId, invocationId: context.invocationId, functionName: context.functionName }, services.config.logLevel);
    const started = Date.now();
    try {
      await fn({ timer, context, log, services });
      log.info('timer run completed', { durationMs: Date.now() - started, isPastDue: timer.isPastDue });
    } catch (err) {
      log.error('timer run failed', { durationMs: Date.now() - started, error: ensureError(err) });
      throw err;
    }
  };
}

function idsOf(raw: unknown): { tenantId?: string; integrationId?: string; correlationId?: string } {
  if (!raw || typeof raw !== 'object') return {};
  const r = raw as Record<string, unknown>;
  const pick = (...keys: string[]) => keys.map((k) => r[k]).find((v): v is string => typeof v === 'string');
  const tenantId = pick('tenantId', 'tenantid');
  const integrationId = pick('integrationId', 'integrationid');
  const correlationId = pick('correlationId');
  return { ...(tenantId ? { tenantId } : {}), ...(integrationId ? { integrationId } : {}), ...(correlationId ? { correlationId } : {}) };
}
