import { appendFileSync } from 'node:fs';
import { installFaultHandler } from '../src/platform/faultPoints';

/**
 * Test builds only: `RUNNER_FAULT_KILL_AT=<point>[#<n>][,<point>[#<n>]…]` makes the runner SIGKILL itself
 * the n-th time (default: the first) the app passes that crash point — a real crash at that instruction,
 * no `finally`, no shutdown hook. `RUNNER_FAULT_LOG` names a file that gets one line per point passed
 * (`<point>`) and `KILL <point>` just before the kill, so a test knows which points exist and that the
 * kill happened where it asked.
 */
export function installFaultsFromEnv(env: NodeJS.ProcessEnv = process.env): void {
  const spec = env.RUNNER_FAULT_KILL_AT?.trim();
  const log = env.RUNNER_FAULT_LOG?.trim();
  if (!spec && !log) return;
  const targets = new Map<string, number>();
  for (const part of (spec ?? '').split(',').map((s) => s.trim()).filter(Boolean)) {
    const [point, nth] = part.split('#');
    const n = nth === undefined ? 1 : Number(nth);
    if (!point || !Number.isInteger(n) || n < 1) throw new Error(`RUNNER_FAULT_KILL_AT: cannot read "${part}" (expected <point>[#<n>]).`);
    targets.set(point, n);
  }
  const seen = new Map<string, number>();
  installFaultHandler((point) => {
    if (log) appendFileSync(log, point + '\n');
    const n = targets.get(point);
    if (n === undefined) return;
    const count = (seen.get(point) ?? 0) + 1;
    seen.set(point, count);
    if (count !== n) return;
    if (log) appendFileSync(log, `KILL ${point}\n`);
    process.kill(process.pid, 'SIGKILL');
  });
}
