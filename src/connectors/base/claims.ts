/**
 * How old a provisional claim must be before another delivery may take it over: no live invocation runs
 * past the function timeout, and a tenth more covers clock skew between instances (11 min with host.json's
 * 10 min).
 */
export function staleClaimMs(functionTimeoutMs: number): number {
  return Math.ceil(functionTimeoutMs * 1.1);
}
