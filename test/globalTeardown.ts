import { rmSync } from 'node:fs';
import { formatHits, scanForSecrets, SECRET_SCAN_ENV } from './helpers/secretScan';

/**
 * The secret scan once more over everything the run wrote (test/e2e/zz-secret-scan.test.ts does it as a
 * test when the whole suite runs; this also covers a run of a few files). A hit fails the run.
 */
export default async function globalTeardown(): Promise<void> {
  const dir = process.env[SECRET_SCAN_ENV];
  const result = scanForSecrets(dir);
  if (result.hits.length > 0) {
    throw new Error(`Secret scan: ${result.hits.length} secret(s) found in runner output, error bodies or queue messages (kept in ${dir}):\n${formatHits(result.hits)}`);
  }
  if (dir && !process.env.KEEP_SECRET_SCAN) rmSync(dir, { recursive: true, force: true });
}
