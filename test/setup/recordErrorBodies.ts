import { recordOutput } from '../helpers/secretScan';

/**
 * For the secret scan: every error body any test (or fake in the test process) receives through fetch
 * goes into the scan's haystack. Recorded off to the side, so the test's own reading is unchanged.
 */
const original = globalThis.fetch;

/**
 * The request's path cut to its first three segments (`/api/teams/snooze/…`), to say where a body came
 * from: the rest of a path is what the test sent (a snooze link's id, say), not something the app leaked,
 * and must not be searched as if it were.
 */
function routePrefix(url: string): string {
  const segments = new URL(url).pathname.split('/');
  return segments.length > 4 ? `${segments.slice(0, 4).join('/')}/…` : segments.join('/');
}
if (process.env.ITIL_SECRET_SCAN_DIR && !(original as { recordsErrors?: boolean }).recordsErrors) {
  const recording = async (input: Parameters<typeof fetch>[0], init?: Parameters<typeof fetch>[1]): Promise<Response> => {
    const res = await original(input, init);
    if (res.status >= 400) {
      const url = typeof input === 'string' ? input : input instanceof URL ? input.href : input.url;
      void res
        .clone()
        .text()
        .then((text) => recordOutput(`error-bodies-${process.pid}.log`, `${res.status} ${routePrefix(url)}\n${text}\n`))
        .catch(() => undefined);
    }
    return res;
  };
  globalThis.fetch = Object.assign(recording, { recordsErrors: true }) as typeof fetch;
}
