import { recordOutput } from '../helpers/secretScan';

/**
 * For the secret scan: every error body any test (or fake in the test process) receives through fetch
 * goes into the scan's haystack. Recorded off to the side, so the test's own reading is unchanged.
 */
const original = globalThis.fetch;
if (process.env.ITIL_SECRET_SCAN_DIR && !(original as { recordsErrors?: boolean }).recordsErrors) {
  const recording = async (input: Parameters<typeof fetch>[0], init?: Parameters<typeof fetch>[1]): Promise<Response> => {
    const res = await original(input, init);
    if (res.status >= 400) {
      const url = typeof input === 'string' ? input : input instanceof URL ? input.href : input.url;
      void res
        .clone()
        .text()
        .then((text) => recordOutput(`error-bodies-${process.pid}.log`, `${res.status} ${new URL(url).pathname}\n${text}\n`))
        .catch(() => undefined);
    }
    return res;
  };
  globalThis.fetch = Object.assign(recording, { recordsErrors: true }) as typeof fetch;
}
