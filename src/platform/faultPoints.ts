/**
 * Named crash points for the crash-point tests (#12). Production code calls `faultPoint('<worker>.<step>')`
 * right after each durable step; nothing in `src/` ever installs a handler, so in a deployed app each call
 * is one property read. Only the offline runner (`runner/faults.ts`, never deployed) installs one, and only
 * when `RUNNER_FAULT_KILL_AT` is set. The handler lives on `globalThis` under a registered symbol so the
 * runner and the app agree on it even if the module were loaded twice.
 */
const KEY = Symbol.for('itil-next-connectors.faultPoint');

type FaultHandler = (point: string) => void;

export function faultPoint(point: string): void {
  const handler = (globalThis as { [KEY]?: FaultHandler })[KEY];
  if (handler) handler(point);
}

/** For the runner only: installs (or removes, with `undefined`) the handler every `faultPoint` call consults. */
export function installFaultHandler(handler: FaultHandler | undefined): void {
  const g = globalThis as { [KEY]?: FaultHandler };
  if (handler) g[KEY] = handler;
  else delete g[KEY];
}
