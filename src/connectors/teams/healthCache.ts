/**
 * The deployment-wide Teams health answer, cached because /api/health is anonymous and must not cost a
 * table scan per request. Any change to a channel's state in this process forgets it.
 */
const TTL_MS = 30_000;
let cached: { at: number; ok: boolean } | undefined;

export function cachedDeploymentHealth(now: number): boolean | undefined {
  return cached && now - cached.at < TTL_MS ? cached.ok : undefined;
}

export function rememberDeploymentHealth(now: number, ok: boolean): void {
  cached = { at: now, ok };
}

export function forgetDeploymentHealth(): void {
  cached = undefined;
}
