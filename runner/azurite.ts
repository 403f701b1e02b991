import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import path from 'node:path';

export const AZURITE_ACCOUNT = 'devstoreaccount1';
// Azurite's published development key (see the Azurite README); it only opens the local emulator.
export const AZURITE_KEY = 'Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==';

export interface AzuriteInstance {
  connectionString: string;
  ports: { blob: number; queue: number; table: number };
  stop(): Promise<void>;
  /**
   * Starts it again (stopping it first if it runs) on the same ports, with the same `location`, so the
   * connection string clients hold stays valid: a storage outage and its end, for tests. With a `location`
   * the data survives (Azurite saves its state when stopped; a request in flight as it stops may have its
   * effect kept and its answer lost, like a dropped connection); in memory it comes back empty. Rejects if
   * a port was taken meanwhile: falling back to other ports would point nobody's clients at it.
   */
  restart(): Promise<void>;
}

export interface AzuriteOptions {
  /** Folder for persistent state; in-memory when omitted. */
  location?: string;
  /** Preferred ports; 0 (the default) lets the OS pick free ones. A taken preferred port falls back to 0. */
  ports?: { blob?: number; queue?: number; table?: number };
  log?: (line: string) => void;
}

export function azuriteConnectionString(ports: { blob: number; queue: number; table: number }): string {
  return [
    'DefaultEndpointsProtocol=http',
    `AccountName=${AZURITE_ACCOUNT}`,
    `AccountKey=${AZURITE_KEY}`,
    `BlobEndpoint=http://127.0.0.1:${ports.blob}/${AZURITE_ACCOUNT}`,
    `QueueEndpoint=http://127.0.0.1:${ports.queue}/${AZURITE_ACCOUNT}`,
    `TableEndpoint=http://127.0.0.1:${ports.table}/${AZURITE_ACCOUNT}`,
  ].join(';') + ';';
}

function azuriteBin(): string {
  const pkg = require.resolve('azurite/package.json');
  return path.join(path.dirname(pkg), 'dist', 'src', 'azurite.js');
}

/** Starts Azurite (blob, queue, table) as a child process and resolves once all three listen. */
export async function startAzurite(opts: AzuriteOptions = {}): Promise<AzuriteInstance> {
  let running: Launched;
  try {
    running = await launch(opts, opts.ports ?? {});
  } catch (err) {
    if (opts.ports && err instanceof PortInUseError) {
      opts.log?.(`azurite: ${err.message}; using free ports instead`);
      running = await launch(opts, {});
    } else {
      throw err;
    }
  }
  const ports = running.ports;
  return {
    connectionString: azuriteConnectionString(ports),
    ports,
    stop: () => stopChild(running.child, opts.log),
    restart: async () => {
      await stopChild(running.child, opts.log);
      running = await launch(opts, ports);
    },
  };
}

class PortInUseError extends Error {}

interface Launched {
  child: ChildProcess;
  ports: { blob: number; queue: number; table: number };
}

function launch(opts: AzuriteOptions, ports: { blob?: number; queue?: number; table?: number }): Promise<Launched> {
  const args = [
    azuriteBin(),
    '--disableTelemetry',
    '--skipApiVersionCheck',
    '--blobHost', '127.0.0.1',
    '--queueHost', '127.0.0.1',
    '--tableHost', '127.0.0.1',
    '--blobPort', String(ports.blob ?? 0),
    '--queuePort', String(ports.queue ?? 0),
    '--tablePort', String(ports.table ?? 0),
  ];
  if (opts.location) {
    mkdirSync(opts.location, { recursive: true });
    args.push('--location', opts.location);
  } else {
    args.push('--inMemoryPersistence');
  }
  const child: ChildProcess = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  // If we exit without stopping it (an uncaught error), don't leave Azurite holding the ports.
  const killOnExit = () => child.kill('SIGKILL');
  process.once('exit', killOnExit);
  child.once('exit', () => process.off('exit', killOnExit));
  return new Promise((resolve, reject) => {
    const found: { blob?: number; queue?: number; table?: number } = {};
    let output = '';
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`Azurite did not start within 30 s:\n${output}`));
    }, 30_000);
    const onData = (chunk: Buffer) => {
      const text = chunk.toString();
      output += text;
      for (const m of text.matchAll(/Azurite (Blob|Queue|Table) service is successfully listening at http:\/\/[^:]+:(\d+)/g)) {
        found[(m[1] as string).toLowerCase() as 'blob' | 'queue' | 'table'] = Number(m[2]);
      }
      if (/EADDRINUSE/.test(output)) {
        clearTimeout(timer);
        child.kill('SIGKILL');
        reject(new PortInUseError('a preferred Azurite port is taken'));
        return;
      }
      if (found.blob && found.queue && found.table) {
        clearTimeout(timer);
        child.stdout?.off('data', onData);
        child.stderr?.off('data', onData);
        // Keep draining so a chatty child never blocks on a full pipe.
        child.stdout?.resume();
        child.stderr?.resume();
        resolve({ child, ports: { blob: found.blob, queue: found.queue, table: found.table } });
      }
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`Azurite exited early (code ${code}):\n${output}`));
    });
  });
}

function stopChild(child: ChildProcess, log?: (line: string) => void): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const kill = setTimeout(() => {
      log?.('azurite: still running 5 s after SIGTERM; killed');
      child.kill('SIGKILL');
    }, 5_000);
    child.once('exit', () => {
      clearTimeout(kill);
      resolve();
    });
    child.kill('SIGTERM');
  });
}
