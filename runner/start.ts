import path from 'node:path';
import { parseArgs } from 'node:util';
import { startAzurite, type AzuriteInstance } from './azurite';
import { installFaultsFromEnv } from './faults';
import { LocalFunctionHost, loadApp } from './host';
import { applySettings, ensureLocalSettings, readLocalSettings } from './settings';
import { formatFunctionTable } from './table';

/**
 * `npm start`: the app on its embedded default, offline. Reads local.settings.json like Core Tools,
 * starts Azurite when storage is `UseDevelopmentStorage=true`, loads the compiled app through the
 * worker's registration hook, and serves it on http://localhost:7071 (PORT overrides).
 */
async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      app: { type: 'string' },
      port: { type: 'string' },
      'no-init': { type: 'boolean', default: false },
      'no-local-settings': { type: 'boolean', default: false },
      'in-memory': { type: 'boolean', default: false },
    },
  });
  const appDir = path.resolve(values.app ?? path.join(__dirname, '..', '..'));
  const say = (line: string) => process.stdout.write(line + '\n');

  if (!values['no-init']) {
    const init = ensureLocalSettings(appDir);
    if (init.created) say(`Created ${path.relative(process.cwd(), init.file) || init.file} from local.settings.sample.json`);
    if (init.generated.length) say(`Generated local values for ${init.generated.join(', ')} in local.settings.json`);
  }
  // Tests pass every setting in the environment and must not pick up a developer's local file.
  const local = values['no-local-settings'] ? undefined : readLocalSettings(path.join(appDir, 'local.settings.json'));
  if (local) applySettings(local.Values);

  let azurite: AzuriteInstance | undefined;
  const storage = process.env.AzureWebJobsStorage ?? 'UseDevelopmentStorage=true';
  if (/^UseDevelopmentStorage=true;?$/i.test(storage.trim())) {
    const inMemory = values['in-memory'] || process.env.AZURITE_IN_MEMORY === 'true';
    azurite = await startAzurite({
      ...(inMemory ? {} : { location: path.join(appDir, '.azurite') }),
      ports: { blob: 10000, queue: 10001, table: 10002 },
      log: say,
    });
    process.env.AzureWebJobsStorage = azurite.connectionString;
    say(`Azurite ${inMemory ? '(in memory)' : '(.azurite/)'} on ports blob ${azurite.ports.blob}, queue ${azurite.ports.queue}, table ${azurite.ports.table}`);
  }

  const functionKey = process.env.LOCAL_FUNCTION_KEY;
  const masterKey = process.env.LOCAL_MASTER_KEY;
  if (!functionKey || !masterKey) throw new Error('LOCAL_FUNCTION_KEY and LOCAL_MASTER_KEY must be set (npm start generates them into local.settings.json).');

  installFaultsFromEnv();
  const { core, settings } = loadApp(appDir);
  const port = Number(values.port ?? process.env.PORT ?? local?.Host?.LocalHttpPort ?? 7071);
  const bodyLimit = process.env.FUNCTIONS_REQUEST_BODY_SIZE_LIMIT;
  const host = new LocalFunctionHost(core, settings, {
    appDir,
    port,
    functionKey,
    masterKey,
    hostname: process.env.HOST ?? '127.0.0.1',
    ...(bodyLimit && /^\d+$/.test(bodyLimit) ? { maxRequestBodyBytes: Number(bodyLimit) } : {}),
  });

  let stopping = false;
  const shutdown = async (code: number) => {
    if (stopping) return;
    stopping = true;
    await host.stop().catch(() => undefined);
    await azurite?.stop();
    process.exit(code);
  };
  process.on('SIGINT', () => void shutdown(0));
  process.on('SIGTERM', () => void shutdown(0));

  let actualPort: number;
  try {
    actualPort = await host.start();
  } catch (err) {
    process.stderr.write(`The app failed to start:\n${err instanceof Error ? err.message : String(err)}\n`);
    await azurite?.stop();
    process.exit(1);
  }
  say('');
  say('Functions:');
  say(formatFunctionTable(host.rows()));
  say('');
  say(`Host listening on http://localhost:${actualPort}`);
  say('Management routes need a bearer token (npm run token -- <tenant_id>) and the function key (x-functions-key: LOCAL_FUNCTION_KEY).');
}

main().catch((err: unknown) => {
  process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
