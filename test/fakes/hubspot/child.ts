import { z } from 'zod';
import { startFakeHubSpot } from './server';
import type { FakeHubSpot, FakeHubSpotOptions } from './types';

/**
 * Entry point of a fake HubSpot in its own process (forked by `remote.ts`), so a benchmark's
 * memory and CPU figures are the connector's alone. Commands arrive over the IPC channel.
 */

export interface ChildRequest {
  id: number;
  method: string;
  args: unknown[];
}

export type ChildReply = { id: number; ok: true; result: unknown } | { id: number; ok: false; error: string };

/** Seeds from a template: every `{i}` in a value becomes the object's index (functions cannot cross processes). */
function fromTemplate(template: Record<string, string> | undefined): ((i: number) => Record<string, string>) | undefined {
  if (!template) return undefined;
  const entries = Object.entries(template);
  return (i) => Object.fromEntries(entries.map(([k, v]) => [k, v.split('{i}').join(String(i))]));
}

const int = z.number().int();
const str = z.string();
const opt = <T extends z.ZodType>(t: T) => t.nullish().transform((v) => v ?? undefined);
const strRecord = z.record(z.string(), z.string());
const RateLimit = z.object({
  perTenSeconds: opt(int), searchPerSecond: opt(int), dailyLimit: opt(int), windowMs: opt(z.number()), sendRetryAfter: opt(z.boolean()),
});
const Fault = z.object({
  match: opt(z.object({ source: str, flags: str })),
  status: opt(int), body: z.unknown().optional(), times: opt(int), resetConnection: opt(z.boolean()), delayMs: opt(z.number()),
});
const Portal = z.object({ hubId: opt(int), hubDomain: opt(str), scopes: opt(z.array(str)), userEmail: opt(str) });

/** Arguments cross the IPC channel as JSON (undefined becomes null), so each call's are parsed here. */
function dispatch(fake: FakeHubSpot, method: string, args: unknown[]): unknown {
  const at = <T extends z.ZodType>(i: number, t: T): z.output<T> => t.parse(args[i] ?? undefined);
  switch (method) {
    case 'addPortal': {
      const p = at(0, opt(Portal));
      return fake.addPortal(p ? Object.fromEntries(Object.entries(p).filter(([, v]) => v !== undefined)) : undefined);
    }
    case 'issueAuthorizationCode': return fake.issueAuthorizationCode(at(0, int), at(1, str));
    case 'createPrivateAppToken': return fake.createPrivateAppToken(at(0, int), at(1, opt(z.array(str))));
    case 'expireAccessTokens': return fake.expireAccessTokens(at(0, opt(int)));
    case 'revokeRefreshTokens': return fake.revokeRefreshTokens(at(0, int));
    case 'seed': return fake.seed(at(0, int), at(1, str), at(2, int), fromTemplate(at(3, opt(strRecord)))).length;
    case 'upsertObject': return fake.upsertObject(at(0, int), at(1, str), at(2, opt(str)), at(3, strRecord));
    case 'archiveObject': return fake.archiveObject(at(0, int), at(1, str), at(2, str));
    case 'count': return fake.count(at(0, int), at(1, str));
    case 'getObject': return fake.getObject(at(0, int), at(1, str), at(2, str));
    case 'stats': return fake.stats();
    case 'resetStats': return fake.resetStats();
    case 'setRateLimit': return fake.setRateLimit(at(0, opt(RateLimit)));
    case 'setIndexLag': return fake.setIndexLag(at(0, z.number()));
    case 'injectFault': {
      const f = at(0, Fault);
      return fake.injectFault({ ...f, match: f.match ? new RegExp(f.match.source, f.match.flags) : undefined });
    }
    case 'clearFaults': return fake.clearFaults();
    case 'memoryUsage': return process.memoryUsage();
    default: throw new Error(`unknown method ${method}`);
  }
}

async function main(): Promise<void> {
  const opts = JSON.parse(process.argv[2] ?? '{}') as FakeHubSpotOptions;
  const fake = await startFakeHubSpot(opts);
  const send = (m: unknown): void => {
    process.send?.(m);
  };
  process.on('message', (raw: ChildRequest) => {
    if (raw.method === 'close') {
      void fake.close().then(() => {
        send({ id: raw.id, ok: true, result: undefined } satisfies ChildReply);
        process.disconnect?.();
      });
      return;
    }
    try {
      send({ id: raw.id, ok: true, result: dispatch(fake, raw.method, raw.args) } satisfies ChildReply);
    } catch (e) {
      send({ id: raw.id, ok: false, error: (e as Error).message } satisfies ChildReply);
    }
  });
  // The parent going away ends the child too, so no fake outlives its test or benchmark.
  process.on('disconnect', () => {
    void fake.close().finally(() => process.exit(0));
  });
  send({ ready: true, url: fake.url, clientId: fake.clientId, clientSecret: fake.clientSecret, appId: fake.appId, pid: process.pid });
}

if (require.main === module) {
  main().catch((e: unknown) => {
    process.stderr.write(`fake HubSpot child failed: ${(e as Error).message}\n`);
    process.exit(1);
  });
}
