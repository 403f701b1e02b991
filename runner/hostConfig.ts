import { readFileSync } from 'node:fs';
import path from 'node:path';
import { z } from 'zod';

/** "hh:mm:ss" or "d.hh:mm:ss[.fff]" (the .NET TimeSpan form host.json uses) → milliseconds. */
export function parseTimeSpan(value: string): number {
  const m = /^(?:(\d+)\.)?(\d{1,2}):(\d{2}):(\d{2})(?:\.(\d{1,7}))?$/.exec(value);
  if (!m) throw new Error(`"${value}" is not a TimeSpan (hh:mm:ss)`);
  const [, d, h, min, s, frac] = m;
  const ms = frac ? Math.round(Number(`0.${frac}`) * 1000) : 0;
  return ((Number(d ?? 0) * 24 + Number(h)) * 60 + Number(min)) * 60_000 + Number(s) * 1000 + ms;
}

const timeSpan = z.string().transform((v, ctx) => {
  try {
    return parseTimeSpan(v);
  } catch (err) {
    ctx.addIssue({ code: 'custom', message: (err as Error).message });
    return z.NEVER;
  }
});

// Defaults are the Functions runtime's documented ones, so a host.json that omits a setting behaves here
// as it would in Azure.
const hostJsonSchema = z.object({
  version: z.literal('2.0'),
  functionTimeout: timeSpan.optional(),
  extensionBundle: z.object({ id: z.string(), version: z.string() }).optional(),
  extensions: z
    .object({
      http: z.object({ routePrefix: z.string().default('api') }).partial().optional(),
      queues: z
        .object({
          maxPollingInterval: timeSpan.default(60_000),
          visibilityTimeout: timeSpan.default(0),
          batchSize: z.number().int().min(1).max(32).default(16),
          newBatchThreshold: z.number().int().min(0).optional(),
          maxDequeueCount: z.number().int().min(1).default(5),
          messageEncoding: z.enum(['base64', 'none']).default('base64'),
        })
        .partial()
        .optional(),
    })
    .optional(),
});

export interface HostSettings {
  routePrefix: string;
  functionTimeoutMs: number;
  queues: {
    maxPollingIntervalMs: number;
    visibilityTimeoutMs: number;
    batchSize: number;
    newBatchThreshold: number;
    maxDequeueCount: number;
    messageEncoding: 'base64' | 'none';
  };
  extensionBundle?: { id: string; version: string };
}

const OVERRIDE_PREFIX = 'AzureFunctionsJobHost__';

/**
 * host.json with the app settings that override it applied, as the Functions host does:
 * `AzureFunctionsJobHost__functionTimeout=00:05:00` or
 * `AzureFunctionsJobHost__extensions__queues__visibilityTimeout=00:00:01` (path segments joined by `__`,
 * matched without regard to case). A value of digits only becomes a number (e.g. `batchSize`).
 */
export function applyHostOverrides(hostJson: unknown, env: NodeJS.ProcessEnv = process.env): unknown {
  if (typeof hostJson !== 'object' || hostJson === null || Array.isArray(hostJson)) return hostJson;
  const root = structuredClone(hostJson) as Record<string, unknown>;
  for (const [name, value] of Object.entries(env)) {
    // Blank is unset, as for every other setting (local.settings.json lists it empty).
    if (value === undefined || value.trim() === '' || name.length <= OVERRIDE_PREFIX.length || name.slice(0, OVERRIDE_PREFIX.length).toLowerCase() !== OVERRIDE_PREFIX.toLowerCase()) continue;
    const segments = name.slice(OVERRIDE_PREFIX.length).split('__').filter((s) => s.length > 0);
    let node = root;
    segments.forEach((segment, i) => {
      const key = Object.keys(node).find((k) => k.toLowerCase() === segment.toLowerCase()) ?? segment;
      if (i === segments.length - 1) {
        node[key] = /^\d+$/.test(value) ? Number(value) : value;
        return;
      }
      const next = node[key];
      if (typeof next !== 'object' || next === null || Array.isArray(next)) node[key] = {};
      node = node[key] as Record<string, unknown>;
    });
  }
  return root;
}

export function readHostSettings(appDir: string, env: NodeJS.ProcessEnv = process.env): HostSettings {
  const raw: unknown = applyHostOverrides(JSON.parse(readFileSync(path.join(appDir, 'host.json'), 'utf8')), env);
  const parsed = hostJsonSchema.parse(raw);
  const q = parsed.extensions?.queues ?? {};
  const batchSize = q.batchSize ?? 16;
  return {
    routePrefix: (parsed.extensions?.http?.routePrefix ?? 'api').replace(/^\/+|\/+$/g, ''),
    functionTimeoutMs: parsed.functionTimeout ?? 30 * 60_000,
    queues: {
      // Locally the host caps polling at 2 s whatever host.json says.
      maxPollingIntervalMs: Math.max(100, Math.min(q.maxPollingInterval ?? 60_000, 2_000)),
      visibilityTimeoutMs: q.visibilityTimeout ?? 0,
      batchSize,
      newBatchThreshold: q.newBatchThreshold ?? Math.floor(batchSize / 2),
      maxDequeueCount: q.maxDequeueCount ?? 5,
      messageEncoding: q.messageEncoding ?? 'base64',
    },
    ...(parsed.extensionBundle ? { extensionBundle: parsed.extensionBundle } : {}),
  };
}
