/** At most `n` of the returned function's tasks run at once (a tiny p-limit, hand-written: a few lines, no dependency for it). */
export function limiter(n: number): <T>(task: () => Promise<T>) => Promise<T> {
  let active = 0;
  const waiting: Array<() => void> = [];
  return async <T>(task: () => Promise<T>): Promise<T> => {
    if (active >= n) await new Promise<void>((resolve) => waiting.push(resolve));
    active++;
    try {
      return await task();
    } finally {
      active--;
      waiting.shift()?.();
    }
  };
}

/**
 * Webhook stages that run beside the HTTP intake in the same instance (the HubSpot fan-out, the Graph
 * router) share this bound, so a backlog they work through cannot starve the acknowledgements of new
 * deliveries of the event loop: the backlog is durable and can wait, the 5 s / 3 s answer cannot.
 */
export const WEBHOOK_STAGE_CONCURRENCY = Math.max(1, Number(process.env.WEBHOOK_STAGE_CONCURRENCY ?? 4) || 4);
export const webhookStage = limiter(WEBHOOK_STAGE_CONCURRENCY);
