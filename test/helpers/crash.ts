import { existsSync, readFileSync } from 'node:fs';
import type { RunningHost } from './runner';

/**
 * For the crash-point tests (#12): settings that make a runner SIGKILL itself right after a named durable
 * step (`faultPoint(...)` in src, `runner/faults.ts`), and a function timeout short enough that the
 * message it held comes back within seconds. The host reads `AzureFunctionsJobHost__functionTimeout` as
 * Azure does; the app reads it too, so claims go stale a tenth after it, not after 11 minutes.
 */
export const SHORT_TIMEOUT_ENV = {
  AzureFunctionsJobHost__functionTimeout: '00:00:15',
  AzureFunctionsJobHost__extensions__queues__visibilityTimeout: '00:00:01',
} as const;

export function crashEnv(point: string, logFile: string): Record<string, string> {
  return { ...SHORT_TIMEOUT_ENV, RUNNER_FAULT_KILL_AT: point, RUNNER_FAULT_LOG: logFile };
}

/** Points passed so far, in order (`KILL <point>` marks the kill). */
export function faultLog(logFile: string): string[] {
  return existsSync(logFile) ? readFileSync(logFile, 'utf8').split('\n').filter((l) => l.length > 0) : [];
}

/** Waits for the runner to die at `point` (and nowhere else); rejects with its output if it did not within `timeoutMs`. */
export async function waitForCrash(host: RunningHost, logFile: string, point: string, timeoutMs = 60_000): Promise<void> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const code = await Promise.race([host.exited, new Promise<'timeout'>((r) => (timer = setTimeout(() => r('timeout'), timeoutMs)))]);
  clearTimeout(timer);
  if (code === 'timeout') {
    await host.kill();
    throw new Error(`runner did not crash at ${point} within ${timeoutMs} ms; points passed: ${faultLog(logFile).join(', ')}\n${host.output().slice(-4000)}`);
  }
  const kills = faultLog(logFile).filter((l) => l.startsWith('KILL '));
  if (kills.length !== 1 || kills[0] !== `KILL ${point}`) throw new Error(`runner exited (${String(code)}) but not at ${point}: ${kills.join(', ') || 'no kill logged'}\n${host.output().slice(-4000)}`);
}
