import { readFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { timingSafeEqual } from 'node:crypto';
import { globSync } from 'tinyglobby';
import { installCoreApi, type CoreApiState, type Registration, type RpcBinding, type RpcHttpData, type RpcTypedData } from './coreApi';
import { readHostSettings, type HostSettings } from './hostConfig';
import { Invoker, type InvocationResult } from './invoker';
import { encodeMessage, outputMessages, QueuePoller, queueService, storageConnectionString } from './queues';
import { compileRoute, matchRoute, type CompiledRoute } from './routes';
import { TimerRunner } from './timers';

export interface HostOptions {
  appDir: string;
  port: number;
  hostname?: string;
  /** Accepted for `authLevel: 'function'` routes (header `x-functions-key` or query `code`). */
  functionKey: string;
  /** Accepted everywhere, and required for `authLevel: 'admin'` and the /admin endpoints. */
  masterKey: string;
  /**
   * The host's request body cap, `FUNCTIONS_REQUEST_BODY_SIZE_LIMIT` (default 104857600): with HTTP
   * streams off the host buffers a body before invoking, so this, not the function, bounds its memory.
   */
  maxRequestBodyBytes?: number;
  log?: (line: string) => void;
}

export interface FunctionRow {
  name: string;
  trigger: string;
  detail: string;
  authLevel?: string;
}

/** The Functions host's default `FUNCTIONS_REQUEST_BODY_SIZE_LIMIT`. */
export const DEFAULT_MAX_REQUEST_BODY_BYTES = 104_857_600;
/** How long a refused request's socket stays open for its client to read the 413. */
const REFUSED_SOCKET_LINGER_MS = 2_000;

type Trigger =
  | { kind: 'http'; binding: string; methods: string[]; authLevel: string; route: CompiledRoute }
  | { kind: 'timer'; binding: string; schedule: string; runOnStartup: boolean }
  | { kind: 'queue'; binding: string; queueName: string; connection: string | undefined }
  | { kind: 'other'; binding: string; type: string };

interface LoadedFunction {
  reg: Registration;
  trigger: Trigger;
}

let installed: CoreApiState | undefined;

/** Reads the registrations an app makes, through the same hook the worker provides. One app per process. */
export function loadApp(appDir: string): { core: CoreApiState; files: string[]; settings: HostSettings } {
  if (installed) throw new Error('An app is already loaded in this process.');
  const core = installCoreApi();
  installed = core;
  const files = resolveMainFiles(appDir);
  for (const file of files) require(file);
  return { core, files, settings: readHostSettings(appDir) };
}

/** The compiled files `package.json` `main` names (a path or a glob), as the worker resolves them. */
export function resolveMainFiles(appDir: string): string[] {
  const pkg = JSON.parse(readFileSync(path.join(appDir, 'package.json'), 'utf8')) as { main?: string };
  if (!pkg.main) throw new Error('package.json has no "main": the Functions host would load no functions.');
  const files = globSync(pkg.main, { cwd: appDir, absolute: true, onlyFiles: true }).sort();
  if (files.length === 0) throw new Error(`package.json "main" (${pkg.main}) matches no file under ${appDir}; run the build first.`);
  return files;
}

function triggerOf(reg: Registration, prefix: string): Trigger {
  const entry = Object.entries(reg.metadata.bindings).find(([, b]) => /trigger$/i.test(b.type));
  if (!entry) throw new Error(`Function "${reg.metadata.name}" has no trigger binding.`);
  const [binding, b] = entry;
  const type = b.type.toLowerCase();
  if (type === 'httptrigger') {
    const methods = ((b.methods as string[] | undefined) ?? ['GET', 'POST']).map((m) => m.toUpperCase());
    const route = (b.route as string | undefined) ?? reg.metadata.name;
    return { kind: 'http', binding, methods, authLevel: String(b.authLevel ?? 'anonymous').toLowerCase(), route: compileRoute(prefix, route) };
  }
  if (type === 'timertrigger') return { kind: 'timer', binding, schedule: String(b.schedule), runOnStartup: b.runOnStartup === true };
  if (type === 'queuetrigger') return { kind: 'queue', binding, queueName: String(b.queueName), connection: b.connection as string | undefined };
  return { kind: 'other', binding, type: b.type };
}

/**
 * A small Functions host for local runs and end-to-end tests: it serves the app's HTTP triggers, fires
 * its timers and polls its storage queues, invoking handlers through the library's programming model.
 */
/**
 * `AzureWebJobs.<FunctionName>.Disabled` set to true (or 1), as the Functions host reads it: the function
 * is not triggered (its queue is left alone, its route answers 404). Tests use it to stop a stage.
 */
export function isDisabled(functionName: string, env: NodeJS.ProcessEnv = process.env): boolean {
  // Setting names are case-insensitive in the host; `_` stands for `.` where a shell cannot name a variable with dots.
  const wanted = new Set([`azurewebjobs.${functionName}.disabled`, `azurewebjobs_${functionName}_disabled`].map((k) => k.toLowerCase()));
  const key = Object.keys(env).find((k) => wanted.has(k.toLowerCase()));
  return key !== undefined && /^(true|1)$/i.test(env[key] ?? '');
}

export class LocalFunctionHost {
  readonly functions: LoadedFunction[];
  private server: http.Server | undefined;
  private readonly timers = new Map<string, TimerRunner>();
  private readonly pollers = new Map<string, QueuePoller>();
  private readonly invoker: Invoker;
  private readonly log: (line: string) => void;

  constructor(
    private readonly core: CoreApiState,
    private readonly settings: HostSettings,
    private readonly opts: HostOptions,
  ) {
    this.log = opts.log ?? ((line) => console.log(line));
    core.logSink = (level, category, message) => this.log(`[${level}] [${category}] ${message}`);
    this.invoker = new Invoker(core, (e) => this.log(`${new Date().toISOString()} [${e.level}] ${e.functionName}: ${e.message}`));
    // `AzureWebJobs.<name>.Disabled=true` turns a function off, as the Functions host does (an app setting).
    this.functions = core.registrations.filter((reg) => !isDisabled(reg.metadata.name)).map((reg) => ({ reg, trigger: triggerOf(reg, settings.routePrefix) }));
  }

  rows(): FunctionRow[] {
    return this.functions.map(({ reg, trigger }) => {
      switch (trigger.kind) {
        case 'http':
          return { name: reg.metadata.name, trigger: 'http', detail: `${trigger.methods.join(',')} /${trigger.route.template}`, authLevel: trigger.authLevel };
        case 'timer':
          return { name: reg.metadata.name, trigger: 'timer', detail: trigger.schedule };
        case 'queue':
          return { name: reg.metadata.name, trigger: 'queue', detail: trigger.queueName };
        default:
          return { name: reg.metadata.name, trigger: trigger.type, detail: '(not run locally)' };
      }
    });
  }

  async start(): Promise<number> {
    for (const hook of this.core.hooks.get('appStart') ?? []) await hook({ hookData: {}, functionAppDirectory: this.opts.appDir });
    await this.core.programmingModel().getCapabilities({});

    this.server = http.createServer((req, res) => {
      this.handle(req, res).catch((err: unknown) => {
        this.log(`[error] runner: ${err instanceof Error ? err.stack ?? err.message : String(err)}`);
        if (!res.headersSent) res.writeHead(500);
        res.end();
      });
    });
    await new Promise<void>((resolve, reject) => {
      this.server?.once('error', reject);
      this.server?.listen(this.opts.port, this.opts.hostname ?? '127.0.0.1', () => resolve());
    });
    const port = (this.server.address() as AddressInfo).port;

    for (const f of this.functions) {
      if (isDisabled(f.reg.metadata.name)) {
        this.log(`[info] ${f.reg.metadata.name} is disabled (AzureWebJobs.${f.reg.metadata.name}.Disabled)`);
        continue;
      }
      if (f.trigger.kind === 'timer') {
        const t = new TimerRunner(f.reg, f.trigger.binding, f.trigger.schedule, f.trigger.runOnStartup, this.invoker, (l, m) => this.log(`[${l}] ${m}`), (r) =>
          this.writeOutputs(f.reg, r),
        );
        t.start();
        this.timers.set(f.reg.metadata.name, t);
      } else if (f.trigger.kind === 'queue') {
        const p = new QueuePoller(
          f.reg,
          f.trigger.binding,
          f.trigger.queueName,
          storageConnectionString(f.trigger.connection),
          this.settings,
          this.invoker,
          (l, m) => this.log(`[${l}] ${m}`),
          (r) => this.writeOutputs(f.reg, r),
        );
        await p.start();
        this.pollers.set(f.reg.metadata.name, p);
      }
    }
    return port;
  }

  async stop(): Promise<void> {
    await new Promise<void>((resolve) => {
      if (!this.server) return resolve();
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
    await Promise.all([...this.timers.values()].map((t) => t.stop()));
    await Promise.all([...this.pollers.values()].map((p) => p.stop()));
    for (const hook of this.core.hooks.get('appTerminate') ?? []) await hook({ hookData: {} });
  }

  private maxBody(): number {
    return this.opts.maxRequestBodyBytes ?? DEFAULT_MAX_REQUEST_BODY_BYTES;
  }

  private keyMatches(given: string | null, level: string): boolean {
    if (!given) return false;
    const accepted = level === 'admin' ? [this.opts.masterKey] : [this.opts.functionKey, this.opts.masterKey];
    const g = Buffer.from(given);
    return accepted.some((k) => {
      const kb = Buffer.from(k);
      return kb.length === g.length && timingSafeEqual(kb, g);
    });
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', `http://${req.headers.host ?? 'localhost'}`);
    const method = (req.method ?? 'GET').toUpperCase();
    const given = (req.headers['x-functions-key'] as string | undefined) ?? url.searchParams.get('code');

    if (url.pathname.startsWith('/admin/')) return this.handleAdmin(req, res, url, method, given);

    const pathname = url.pathname;
    const candidates = this.functions
      .flatMap((f) => (f.trigger.kind === 'http' ? [{ f, t: f.trigger, params: matchRoute(f.trigger.route, pathname) }] : []))
      .filter((c) => c.params !== undefined && c.t.methods.includes(method) && !isDisabled(c.f.reg.metadata.name))
      .sort((a, b) => b.t.route.score - a.t.route.score);
    const hit = candidates[0];
    if (!hit) {
      res.writeHead(404).end();
      return;
    }
    if (hit.t.authLevel !== 'anonymous' && !this.keyMatches(given, hit.t.authLevel)) {
      res.writeHead(401).end();
      return;
    }
    const body = await readBody(req, this.maxBody());
    if (body === undefined) {
      refuseTooLarge(req, res, this.maxBody());
      return;
    }
    const headers: Record<string, string> = {};
    for (const [k, v] of Object.entries(req.headers)) if (v !== undefined) headers[k] = Array.isArray(v) ? v.join(', ') : v;
    const rpc: RpcHttpData = {
      method,
      url: url.toString(),
      headers,
      query: Object.fromEntries(url.searchParams.entries()),
      params: hit.params as Record<string, string>,
      body: { bytes: body },
    };
    let result;
    try {
      result = await this.invoker.invoke(hit.f.reg, { triggerBindingName: hit.t.binding, data: { http: rpc } });
    } catch (err) {
      // The host answers an unhandled exception with a bare 500; the details go to the log only.
      this.log(`[error] ${hit.f.reg.metadata.name}: ${err instanceof Error ? err.stack ?? err.message : String(err)}`);
      res.writeHead(500).end();
      return;
    }
    await this.writeOutputs(hit.f.reg, result);
    writeHttpResponse(res, result.returnValue);
  }

  private async handleAdmin(req: http.IncomingMessage, res: http.ServerResponse, url: URL, method: string, given: string | null): Promise<void> {
    if (!this.keyMatches(given, 'admin')) {
      res.writeHead(401).end();
      return;
    }
    if (method === 'GET' && url.pathname === '/admin/host/status') {
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ state: 'Running', functions: this.rows() }));
      return;
    }
    // Same contract as the host's "run a non-HTTP function" endpoint: POST /admin/functions/{name} {"input": "..."}.
    const m = /^\/admin\/functions\/([^/]+)$/.exec(url.pathname);
    if (method === 'POST' && m) {
      const name = decodeURIComponent(m[1] as string);
      const f = this.functions.find((x) => x.reg.metadata.name.toLowerCase() === name.toLowerCase());
      if (!f || f.trigger.kind === 'http') {
        res.writeHead(404).end();
        return;
      }
      const raw = await readBody(req, this.maxBody());
      if (raw === undefined) {
        refuseTooLarge(req, res, this.maxBody());
        return;
      }
      const input = raw.length ? ((JSON.parse(Buffer.from(raw).toString('utf8')) as { input?: string }).input ?? '') : '';
      if (f.trigger.kind === 'timer') {
        const timer = this.timers.get(f.reg.metadata.name);
        void timer?.fire(true);
      } else if (f.trigger.kind === 'queue') {
        const service = queueService(storageConnectionString(f.trigger.connection));
        await service.getQueueClient(f.trigger.queueName).sendMessage(encodeMessage(input, this.settings.queues.messageEncoding));
      }
      res.writeHead(202).end();
      return;
    }
    res.writeHead(404).end();
  }

  /** Writes output bindings: named extra outputs, and `$return` when it is not the HTTP response. */
  private async writeOutputs(reg: Registration, result: InvocationResult): Promise<void> {
    const outputs = [...result.outputData];
    const ret = reg.metadata.bindings['$return'];
    if (ret && ret.type.toLowerCase() !== 'http' && result.returnValue) outputs.push({ name: '$return', data: result.returnValue });
    for (const out of outputs) {
      const binding: RpcBinding | undefined = reg.metadata.bindings[out.name];
      if (!binding) continue;
      if (binding.type.toLowerCase() === 'queue') {
        const client = queueService(storageConnectionString(binding.connection as string | undefined)).getQueueClient(String(binding.queueName));
        await client.createIfNotExists();
        for (const text of outputMessages(out.data)) await client.sendMessage(encodeMessage(text, this.settings.queues.messageEncoding));
      } else {
        this.log(`[warn] ${reg.metadata.name}: output binding type "${binding.type}" is not supported by the local runner; value dropped`);
      }
    }
  }
}

/**
 * The body, counted as it arrives whatever Content-Length says (a declared length above the cap is
 * refused before reading); undefined as soon as it passes `max`, when reading stops: the rest of the
 * stream is never read, let alone buffered.
 */
function readBody(req: http.IncomingMessage, max: number): Promise<Uint8Array | undefined> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    // Listening marks the request consumed, so Node does not drain (read and drop) what we leave unread.
    const stop = () => {
      req.off('data', onData);
      req.pause();
      chunks.length = 0;
      resolve(undefined);
    };
    const onData = (c: Buffer) => {
      size += c.length;
      if (size <= max) chunks.push(c);
      else stop();
    };
    req.on('data', onData);
    const declared = req.headers['content-length'];
    if (declared !== undefined && Number(declared) > max) stop();
    req.on('end', () => resolve(new Uint8Array(Buffer.concat(chunks))));
    req.on('error', reject);
  });
}

/**
 * 413 problem JSON, and the rest of the body is never read: the request stays paused (the client's
 * writes stall on full socket buffers) and the socket is destroyed shortly after the answer is out.
 * Not `Connection: close` with an immediate close: that resets the connection under a client still
 * writing, which then loses the answer; nor draining, which would read the whole stream after all.
 */
function refuseTooLarge(req: http.IncomingMessage, res: http.ServerResponse, max: number): void {
  const problem = { type: 'about:blank', title: 'Payload too large', status: 413, detail: `The request body must be at most ${max} bytes.` };
  res.writeHead(413, { 'content-type': 'application/problem+json' });
  res.end(JSON.stringify(problem), () => setTimeout(() => req.socket.destroy(), REFUSED_SOCKET_LINGER_MS).unref());
}

function writeHttpResponse(res: http.ServerResponse, value: RpcTypedData | null | undefined): void {
  const data = value && 'http' in value ? value.http : undefined;
  if (!data) {
    res.writeHead(204).end();
    return;
  }
  const status = Number(data.statusCode ?? 200);
  const headers: Record<string, string | string[]> = { ...(data.headers ?? {}) };
  const cookies = (data.cookies ?? []).map(setCookieHeader);
  if (cookies.length > 0) headers['set-cookie'] = cookies;
  let body: Buffer = Buffer.alloc(0);
  const b = data.body;
  if (b && 'bytes' in b) body = Buffer.from(b.bytes);
  else if (b && 'string' in b) body = Buffer.from(b.string, 'utf8');
  res.writeHead(status, headers);
  res.end(body);
}

type RpcCookie = NonNullable<RpcHttpData['cookies']>[number];

/** A `Set-Cookie` value with the attributes the Functions host writes from the worker's RPC cookie. */
function setCookieHeader(c: RpcCookie): string {
  const v = <T>(x: unknown): T | undefined => (x && typeof x === 'object' && 'value' in x ? ((x as { value: T }).value) : undefined);
  const parts = [`${c.name}=${c.value}`];
  const domain = v<string>(c.domain);
  const cookiePath = v<string>(c.path);
  const expires = v<{ seconds: number }>(c.expires);
  const maxAge = v<number>(c.maxAge);
  if (domain) parts.push(`Domain=${domain}`);
  if (cookiePath) parts.push(`Path=${cookiePath}`);
  if (expires) parts.push(`Expires=${new Date(expires.seconds * 1000).toUTCString()}`);
  if (maxAge !== undefined) parts.push(`Max-Age=${Math.trunc(maxAge)}`);
  if (v<boolean>(c.secure)) parts.push('Secure');
  if (v<boolean>(c.httpOnly)) parts.push('HttpOnly');
  const sameSite = { lax: 'Lax', strict: 'Strict', explicitNone: 'None' }[String(c.sameSite)];
  if (sameSite) parts.push(`SameSite=${sameSite}`);
  return parts.join('; ');
}
