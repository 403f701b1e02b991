/**
 * What every connector (HubSpot, Graph, Teams) offers the rest of the app, whatever its API.
 */
export interface BaseConnector {
  /** Stable, lower-case id of the connector kind (`hubspot`, `graph`, `teams`); used in logs and metrics. */
  readonly name: string;

  /**
   * Whether the connector can reach its service with the credentials it has, right now.
   *
   * Never throws and never hangs: every failure, timeout included, is `false`, so a status page or a
   * health endpoint can call all connectors side by side without one taking the others down. It says
   * nothing about why; call `authenticate()` for a typed reason. `healthProbe` implements this contract.
   */
  healthCheck(): Promise<boolean>;

  /**
   * Makes sure the connector holds a usable credential, refreshing it if needed.
   *
   * Resolves when it does; otherwise throws a `ConnectorAuthError`: `InvalidGrantError` when the grant
   * is revoked or missing (mark the integration `needs_reauth`; retrying cannot help), or
   * `TokenRefreshError` whose `retryable` says whether trying again later may.
   */
  authenticate(): Promise<void>;
}

/**
 * Turns a probe that may throw or hang into a `healthCheck` result. The probe gets a signal aborted at
 * the deadline; if it ignores it, its late result is dropped rather than waited for.
 */
export async function healthProbe(probe: (signal: AbortSignal) => Promise<unknown>, opts: { timeoutMs?: number } = {}): Promise<boolean> {
  const controller = new AbortController();
  let timer: ReturnType<typeof setTimeout> | undefined;
  const deadline = new Promise<boolean>((resolve) => {
    timer = setTimeout(() => {
      controller.abort(new Error('health check timed out'));
      resolve(false);
    }, opts.timeoutMs ?? 5_000);
  });
  const run = (async () => {
    try {
      await probe(controller.signal);
      return true;
    } catch {
      return false;
    }
  })();
  try {
    return await Promise.race([run, deadline]);
  } finally {
    clearTimeout(timer);
  }
}
