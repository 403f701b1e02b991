import path from 'node:path';
import { parseArgs } from 'node:util';
import { loadApp } from './host';

/**
 * Prints, as JSON, what the Functions host would receive from the app: the files `main` resolves to and
 * every `registerFunction` call's metadata. Used by the registration test and handy before a deploy.
 */
function main(): void {
  const { values } = parseArgs({ options: { app: { type: 'string' } } });
  const appDir = path.resolve(values.app ?? path.join(__dirname, '..', '..'));
  const { core, files, settings } = loadApp(appDir);
  const out = {
    files: files.map((f) => path.relative(appDir, f)),
    hostSettings: settings,
    hooks: [...core.hooks.entries()].map(([name, list]) => ({ name, count: list.length })),
    functions: core.registrations.map((r) => ({ ...r.metadata, handlerIsFunction: typeof r.handler === 'function' })),
  };
  process.stdout.write(JSON.stringify(out, null, 2) + '\n');
}

main();
