import { setTimeout as delay } from 'node:timers/promises';

/** Sleeps `ms`, ending early with the signal's reason on abort (Node's own abortable timer). */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return delay(ms, undefined, signal ? { signal } : undefined).catch((err: unknown) => {
    // timers/promises rejects with an AbortError; callers expect the signal's own reason, as fetch does.
    if (signal?.aborted) throw signal.reason;
    throw err;
  });
}

/**
 * Settles with `p`, or rejects with the signal's reason as soon as it aborts. The underlying promise is
 * left to settle on its own (its rejection is swallowed), for calls that take no signal themselves.
 */
export function raceSignal<T>(p: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (!signal) return p;
  if (signal.aborted) {
    p.catch(() => undefined);
    return Promise.reject(signal.reason);
  }
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => {
      p.catch(() => undefined);
      reject(signal.reason);
    };
    signal.addEventListener('abort', onAbort, { once: true });
    p.then(
      (v) => {
        signal.removeEventListener('abort', onAbort);
        resolve(v);
      },
      (err: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(err);
      },
    );
  });
}
