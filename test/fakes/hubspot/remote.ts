import { fork, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import type { ChildReply } from './child';
import type { FakeFault, FakeHubSpotOptions, FakeHubSpotStats, FakePortal, FakeRateLimit } from './types';

/**
 * The fake HubSpot in a child process, driven over IPC. For benchmarks: the fake holds ~1 KB per
 * object (about 95 MB for 100,000 tickets), which must not count as the connector's memory.
 * Runs the compiled `child.js` (from `dist/`), so build first (`npx tsc -p tsconfig.json`).
 */

export interface RemoteFakeHubSpot {
  url: string;
  clientId: string;
  clientSecret: string;
  appId: number;
  pid: number;
  addPortal(p?: Partial<FakePortal>): Promise<FakePortal>;
  issueAuthorizationCode(hubId: number, redirectUri: string): Promise<string>;
  createPrivateAppToken(hubId: number, scopes?: string[]): Promise<string>;
  expireAccessTokens(hubId?: number): Promise<void>;
  revokeRefreshTokens(hubId: number): Promise<void>;
  /** `template` values may contain `{i}`, replaced by each object's index; resolves to the number created. */
  seed(hubId: number, objectType: string, count: number, template?: Record<string, string>): Promise<number>;
  upsertObject(hubId: number, objectType: string, id: string | undefined, properties: Record<string, string>): Promise<string>;
  archiveObject(hubId: number, objectType: string, id: string): Promise<void>;
  count(hubId: number, objectType: string): Promise<number>;
  getObject(hubId: number, objectType: string, id: string): Promise<{ id: string; properties: Record<string, string>; archived: boolean } | undefined>;
  stats(): Promise<FakeHubSpotStats>;
  resetStats(): Promise<void>;
  setRateLimit(r: FakeRateLimit | undefined): Promise<void>;
  setIndexLag(ms: number): Promise<void>;
  injectFault(f: FakeFault): Promise<void>;
  clearFaults(): Promise<void>;
  /** The child's own `process.memoryUsage()`. */
  memoryUsage(): Promise<NodeJS.MemoryUsage>;
  close(): Promise<void>;
}

interface Ready {
  ready: true;
  url: string;
  clientId: string;
  clientSecret: string;
  appId: number;
  pid: number;
}

function childScript(): string {
  if (__filename.endsWith('.js')) return path.join(__dirname, 'child.js');
  // Loaded from TypeScript (jest): use the compiled copy.
  const compiled = path.resolve(__dirname, '../../../dist/test/fakes/hubspot/child.js');
  if (!existsSync(compiled)) throw new Error(`${compiled} is missing: run \`npx tsc -p tsconfig.json\` first`);
  return compiled;
}

export async function startFakeHubSpotProcess(opts: FakeHubSpotOptions = {}): Promise<RemoteFakeHubSpot> {
  const child: ChildProcess = fork(childScript(), [JSON.stringify(opts)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  let seq = 0;
  let exited = false;

  const ready = await new Promise<Ready>((resolve, reject) => {
    const onMessage = (m: unknown): void => {
      if (typeof m === 'object' && m !== null && (m as { ready?: unknown }).ready === true) {
        child.off('message', onMessage);
        resolve(m as Ready);
      }
    };
    child.on('message', onMessage);
    child.once('exit', (code) => reject(new Error(`fake HubSpot child exited early (${String(code)})`)));
  });

  child.on('message', (m: unknown) => {
    const reply = m as ChildReply;
    const p = pending.get(reply.id);
    if (!p) return;
    pending.delete(reply.id);
    if (reply.ok) p.resolve(reply.result);
    else p.reject(new Error(reply.error));
  });
  child.on('exit', () => {
    exited = true;
    for (const p of pending.values()) p.reject(new Error('fake HubSpot child exited'));
    pending.clear();
  });

  function call<T>(method: string, ...args: unknown[]): Promise<T> {
    if (exited) return Promise.reject(new Error('fake HubSpot child has exited'));
    const id = ++seq;
    return new Promise<T>((resolve, reject) => {
      pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
      child.send({ id, method, args });
    });
  }

  return {
    url: ready.url,
    clientId: ready.clientId,
    clientSecret: ready.clientSecret,
    appId: ready.appId,
    pid: ready.pid,
    addPortal: (p) => call('addPortal', p),
    issueAuthorizationCode: (hubId, redirectUri) => call('issueAuthorizationCode', hubId, redirectUri),
    createPrivateAppToken: (hubId, scopes) => call('createPrivateAppToken', hubId, scopes),
    expireAccessTokens: (hubId) => call('expireAccessTokens', hubId),
    revokeRefreshTokens: (hubId) => call('revokeRefreshTokens', hubId),
    seed: (hubId, type, n, template) => call('seed', hubId, type, n, template),
    upsertObject: (hubId, type, id, props) => call('upsertObject', hubId, type, id, props),
    archiveObject: (hubId, type, id) => call('archiveObject', hubId, type, id),
    count: (hubId, type) => call('count', hubId, type),
    getObject: (hubId, type, id) => call('getObject', hubId, type, id),
    stats: () => call('stats'),
    resetStats: () => call('resetStats'),
    setRateLimit: (r) => call('setRateLimit', r),
    setIndexLag: (ms) => call('setIndexLag', ms),
    injectFault: (f) => call('injectFault', { ...f, match: f.match ? { source: f.match.source, flags: f.match.flags } : undefined }),
    clearFaults: () => call('clearFaults'),
    memoryUsage: () => call('memoryUsage'),
    async close() {
      if (exited) return;
      const gone = new Promise<void>((resolve) => child.once('exit', () => resolve()));
      await call('close').catch(() => undefined);
      await gone;
    },
  };
}
