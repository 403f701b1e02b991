import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import net from 'node:net';
import path from 'node:path';
import { QueueServiceClient } from '@azure/storage-queue';
import { checkEngineEventMessage } from './engineEvents';
import { tenantToken } from './jwt';
import { queueTapFile, recordOutput, registerSecret } from './secretScan';

/** Settings whose values are credentials: the secret scan looks for each in everything the run wrote. */
const SECRET_SETTINGS = /(SECRET|_KEY$|PASSWORD|WEBHOOK_URL)/i;

// From test/helpers under jest, or from dist/test/helpers when a compiled benchmark uses these helpers.
const UP = path.resolve(__dirname, '..', '..');
export const ROOT = path.basename(UP) === 'dist' ? path.dirname(UP) : UP;

export interface RunningHost {
  url: string;
  functionKey: string;
  masterKey: string;
  output(): string;
  /** SIGTERM, then SIGKILL after `graceMs` (10 s). */
  stop(graceMs?: number): Promise<void>;
  /** SIGKILL: the process dies at whatever instruction it is at (a crash, not a shutdown). */
  kill(): Promise<void>;
  exited: Promise<number | null>;
}

/**
 * Starts the local runner as its own process (like `func start`), on a free port (or `port`, when the
 * test must know its address before start, e.g. to put it in PUBLIC_BASE_URL), with `env` winning over
 * local.settings.json. Resolves when it listens; rejects with its output if it exits first.
 */
export function startRunner(opts: { appDir?: string; env: Record<string, string | undefined>; args?: string[]; port?: number }): Promise<RunningHost> {
  const functionKey = opts.env.LOCAL_FUNCTION_KEY ?? randomBytes(16).toString('hex');
  const masterKey = opts.env.LOCAL_MASTER_KEY ?? randomBytes(16).toString('hex');
  const runnerName = `runner-${process.pid}-${randomBytes(4).toString('hex')}`;
  const tap = queueTapFile(runnerName);
  const env: NodeJS.ProcessEnv = { ...process.env, LOCAL_FUNCTION_KEY: functionKey, LOCAL_MASTER_KEY: masterKey, ...(tap ? { RUNNER_QUEUE_TAP_FILE: tap } : {}) };
  for (const [k, v] of Object.entries(opts.env)) {
    if (v === undefined) delete env[k];
    else env[k] = v;
  }
  registerSecret(functionKey, 'LOCAL_FUNCTION_KEY');
  registerSecret(masterKey, 'LOCAL_MASTER_KEY');
  for (const [k, v] of Object.entries(opts.env)) if (v && SECRET_SETTINGS.test(k) && !/_DIR$/.test(k) && !/^UseDevelopmentStorage/i.test(v)) registerSecret(v, k);
  const child: ChildProcess = spawn(
    process.execPath,
    [path.join(ROOT, 'dist', 'runner', 'start.js'), '--app', opts.appDir ?? ROOT, '--no-init', '--no-local-settings', '--port', String(opts.port ?? 0), ...(opts.args ?? [])],
    { env, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let out = '';
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`runner did not start in time:\n${out}`));
    }, 45_000);
    const onData = (c: Buffer) => {
      out += c.toString();
      recordOutput(`${runnerName}.log`, c.toString());
      const m = /Host listening on http:\/\/localhost:(\d+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve({
          url: `http://127.0.0.1:${m[1]}`,
          functionKey,
          masterKey,
          output: () => out,
          exited,
          stop: async (graceMs = 10_000) => {
            if (child.exitCode !== null) return;
            await recordQueues(env.AzureWebJobsStorage, runnerName);
            child.kill('SIGTERM');
            const t = setTimeout(() => child.kill('SIGKILL'), graceMs);
            await exited;
            clearTimeout(t);
          },
          kill: async () => {
            if (child.exitCode !== null || child.signalCode !== null) return;
            child.kill('SIGKILL');
            await exited;
          },
        });
      }
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    void exited.then((code) => {
      clearTimeout(timer);
      reject(Object.assign(new Error(`runner exited with ${code}:\n${out}`), { code, output: out }));
    });
  });
}

/** What is left on every queue of the runner's storage, into the secret scan's haystack (best effort). */
async function recordQueues(connectionString: string | undefined, runnerName: string): Promise<void> {
  if (!connectionString || !process.env.ITIL_SECRET_SCAN_DIR || /^UseDevelopmentStorage/i.test(connectionString)) return;
  try {
    const service = QueueServiceClient.fromConnectionString(connectionString);
    for await (const q of service.listQueues()) {
      const peek = await service.getQueueClient(q.name).peekMessages({ numberOfMessages: 32 });
      for (const m of peek.peekedMessageItems) {
        const decoded = Buffer.from(m.messageText, 'base64').toString('utf8');
        recordOutput(`queues-${runnerName}.log`, `${q.name}: ${m.messageText}\n${q.name} (decoded): ${decoded}\n`);
      }
    }
  } catch {
    // Storage already stopped: the tap still has what the workers consumed.
  }
}

/** A TCP port that was free a moment ago on 127.0.0.1 (for `startRunner({ port })`). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

/** Runs the runner expecting it to fail at start; returns its exit code and output. */
export async function runExpectingFailure(opts: { appDir?: string; env: Record<string, string | undefined> }): Promise<{ code: number | null; output: string }> {
  try {
    const host = await startRunner(opts);
    await host.stop();
    throw new Error('runner started but was expected to fail');
  } catch (err) {
    const e = err as { code?: number | null; output?: string };
    if (e.output === undefined) throw err;
    return { code: e.code ?? null, output: e.output };
  }
}

/** Waits for the next message on a queue and returns its decoded text (base64, as our host.json says). */
export async function nextMessage(connectionString: string, queue: string, timeoutMs = 20_000, encoding: 'base64' | 'none' = 'base64'): Promise<string> {
  const client = QueueServiceClient.fromConnectionString(connectionString).getQueueClient(queue);
  await client.createIfNotExists();
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const res = await client.receiveMessages({ numberOfMessages: 1, visibilityTimeout: 30 });
    const msg = res.receivedMessageItems[0];
    if (msg) {
      await client.deleteMessage(msg.messageId, msg.popReceipt);
      const text = encoding === 'base64' ? Buffer.from(msg.messageText, 'base64').toString('utf8') : msg.messageText;
      recordOutput(`queue-reads-${process.pid}.log`, `${queue}: ${text}\n`);
      // Every engine event a suite reads must be what asyncapi.json promises.
      if (queue === 'engine-events') await checkEngineEventMessage(JSON.parse(text));
      return text;
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`no message on ${queue} within ${timeoutMs} ms`);
}

export async function queueLength(connectionString: string, queue: string): Promise<number> {
  const client = QueueServiceClient.fromConnectionString(connectionString).getQueueClient(queue);
  if (!(await client.exists())) return 0;
  const props = await client.getProperties();
  return props.approximateMessagesCount ?? 0;
}

export async function sendRaw(connectionString: string, queue: string, text: string): Promise<void> {
  const client = QueueServiceClient.fromConnectionString(connectionString).getQueueClient(queue);
  await client.createIfNotExists();
  await client.sendMessage(text);
}

/**
 * The settings every end-to-end suite runs the real app with: its own Azurite, the local secret store in
 * a temp folder, HS256 management tokens, and nothing that would switch to Key Vault or a JWKS.
 */
export function localAppEnv(opts: { storage: string; secretKey: string; secretDir: string; jwtSecret: string; publicBaseUrl: string }): Record<string, string | undefined> {
  return {
    AzureWebJobsStorage: opts.storage,
    LOCAL_SECRET_KEY: opts.secretKey,
    LOCAL_SECRET_DIR: opts.secretDir,
    API_JWT_SECRET: opts.jwtSecret,
    PUBLIC_BASE_URL: opts.publicBaseUrl,
    // The fakes listen on loopback; the app refuses such webhook URLs unless told.
    TEAMS_ALLOW_LOOPBACK_WEBHOOKS: 'true',
    KEY_VAULT_URI: undefined,
    API_JWT_JWKS_URI: undefined,
  };
}

/** The settings that point the app's Graph connector at the fake Graph (whose CA the runner trusts from `caFile`). */
export function fakeGraphAppEnv(opts: { app: { clientId: string; clientSecret: string }; homeTenant: string; fakeUrl: string; caFile: string }): Record<string, string> {
  return {
    MSGRAPH_CLIENT_ID: opts.app.clientId,
    MSGRAPH_CLIENT_SECRET: opts.app.clientSecret,
    MSGRAPH_TENANT_ID: opts.homeTenant,
    GRAPH_BASE_URL: opts.fakeUrl,
    MSGRAPH_AUTHORITY_HOST: opts.fakeUrl,
    NODE_EXTRA_CA_CERTS: opts.caFile,
  };
}

export interface ApiCallInit extends RequestInit {
  /** Bearer token for this tenant; `null` sends none. Default: the client's tenant, else none. */
  tenant?: string | null;
  /** A ready-made bearer token (an expired or forged one, say), instead of a tenant's. */
  token?: string;
  /** Function key; `null` sends none. Default: the host's. */
  key?: string | null;
  /** Neither a function key nor a bearer token. */
  anonymous?: boolean;
  /** A JSON body. A body without a content-type is sent as JSON too. */
  json?: unknown;
}

/** Calls the app's `/api/…` routes as the engine would: function key, tenant JWT, JSON. */
export function apiClient(host: () => RunningHost, opts: { tenant?: string; onToken?: (token: string) => void } = {}) {
  return async (path: string, init: ApiCallInit = {}): Promise<Response> => {
    const { tenant = opts.tenant ?? null, token, key, anonymous = false, json, ...rest } = init;
    const h = host();
    const headers = new Headers(rest.headers);
    if (!anonymous && key !== null) headers.set('x-functions-key', key ?? h.functionKey);
    const bearer = anonymous ? undefined : (token ?? (tenant ? await tenantToken(tenant) : undefined));
    if (bearer) {
      if (!token) opts.onToken?.(bearer);
      headers.set('authorization', `Bearer ${bearer}`);
    }
    const body = json !== undefined ? JSON.stringify(json) : rest.body;
    if (body !== undefined && body !== null && !headers.has('content-type')) headers.set('content-type', 'application/json');
    return fetch(`${h.url}/api/${path}`, { ...rest, headers, ...(body !== undefined ? { body } : {}) });
  };
}
