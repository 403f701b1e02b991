import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { SECRET_SCAN_ENV } from './helpers/secretScan';

/** The end-to-end tests load the compiled app the way the Functions host does; make sure it exists. */
export default async function globalSetup(): Promise<void> {
  const root = path.resolve(__dirname, '..');
  if (!existsSync(path.join(root, 'dist', 'src', 'index.js'))) {
    execFileSync(process.execPath, [path.join(path.dirname(require.resolve('typescript/package.json')), 'bin', 'tsc'), '-p', path.join(root, 'tsconfig.json')], { stdio: 'inherit' });
  }
  // One folder for the whole run's secret scan (test/helpers/secretScan.ts); test files, fakes and
  // runner processes inherit it through the environment.
  process.env[SECRET_SCAN_ENV] ??= mkdtempSync(path.join(os.tmpdir(), 'itil-secret-scan-'));
}
