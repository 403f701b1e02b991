import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';

/** The end-to-end tests load the compiled app the way the Functions host does; make sure it exists. */
export default async function globalSetup(): Promise<void> {
  const root = path.resolve(__dirname, '..');
  if (!existsSync(path.join(root, 'dist', 'src', 'index.js'))) {
    execFileSync(process.execPath, [path.join(path.dirname(require.resolve('typescript/package.json')), 'bin', 'tsc'), '-p', path.join(root, 'tsconfig.json')], { stdio: 'inherit' });
  }
}
