import type { Client } from '@hubspot/api-client';
import { z } from 'zod';
import type { HubSpotCaller } from '../caller';
import type { SyncObjectType } from './messages';
import { OBJECT_SPECS } from './objects';

/**
 * The few HubSpot calls the sync makes, each through the caller (limiter, budget, retry, timeout) and
 * each answer checked with zod before anything is stored: the SDK's types are promises, not checks.
 */

const dateLike = z.union([z.date(), z.string()]).optional();

const associationListSchema = z.object({
  results: z.array(z.object({ id: z.union([z.string(), z.number()]).transform(String), type: z.string().optional() })),
});

export const hubSpotObjectSchema = z.object({
  id: z.union([z.string(), z.number()]).transform(String).pipe(z.string().min(1)),
  properties: z.record(z.string(), z.string().nullable().optional()).default({}),
  createdAt: dateLike,
  updatedAt: dateLike,
  archived: z.boolean().optional(),
  archivedAt: dateLike,
  associations: z.record(z.string(), associationListSchema).optional(),
});
export type HubSpotObjectInput = z.input<typeof hubSpotObjectSchema>;

/** One object as the sync keeps it: properties as strings, associations as id lists per type. */
export interface HubSpotObject {
  id: string;
  properties: Record<string, string | null>;
  /** Last-modified, epoch ms (the type's last-modified property, else `updatedAt`). */
  lastModifiedMs: number;
  createdAt?: string;
  archived: boolean;
  archivedAtMs?: number;
  /** Present when the call returned associations; absent means "not read", not "none". */
  associations?: Partial<Record<SyncObjectType, string[]>>;
}

const pagingSchema = z.object({ next: z.object({ after: z.union([z.string(), z.number()]).transform(String) }).optional() }).optional();
const listPageSchema = z.object({ results: z.array(hubSpotObjectSchema), paging: pagingSchema });
const searchPageSchema = z.object({ total: z.number().int().nonnegative(), results: z.array(hubSpotObjectSchema), paging: pagingSchema });

/** Normalises one validated object; associations are kept only for the types the spec asks for. */
export function toHubSpotObject(type: SyncObjectType, raw: z.output<typeof hubSpotObjectSchema>): HubSpotObject {
  const spec = OBJECT_SPECS[type];
  const properties: Record<string, string | null> = {};
  for (const [k, v] of Object.entries(raw.properties)) properties[k] = v ?? null;
  const lastModifiedMs = parseTime(properties[spec.lastModifiedProperty]) ?? parseTime(raw.updatedAt) ?? 0;
  const obj: HubSpotObject = { id: raw.id, properties, lastModifiedMs, archived: raw.archived ?? false };
  const created = parseTime(raw.createdAt) ?? parseTime(properties['createdate']);
  if (created !== undefined) obj.createdAt = new Date(created).toISOString();
  const archivedAt = parseTime(raw.archivedAt);
  if (archivedAt !== undefined) obj.archivedAtMs = archivedAt;
  if (raw.associations) {
    const assoc: Partial<Record<SyncObjectType, string[]>> = {};
    for (const to of spec.associations) assoc[to] = [...new Set((raw.associations[to]?.results ?? []).map((r) => r.id))];
    obj.associations = assoc;
  }
  return obj;
}

/** HubSpot sends times as ISO strings (v3 properties), epoch-ms strings (some filters) or Dates (SDK). */
export function parseTime(v: unknown): number | undefined {
  if (v instanceof Date) return Number.isNaN(v.getTime()) ? undefined : v.getTime();
  if (typeof v !== 'string' || v === '') return undefined;
  if (/^\d{10,}$/.test(v)) return Number(v);
  const t = Date.parse(v);
  return Number.isNaN(t) ? undefined : t;
}

function objectApi(client: Client, type: SyncObjectType) {
  switch (type) {
    case 'tickets':
      return client.crm.tickets;
    case 'contacts':
      return client.crm.contacts;
    case 'companies':
      return client.crm.companies;
  }
}

export interface ObjectPage {
  objects: HubSpotObject[];
  nextAfter?: string;
}

/** One page of the list API: `limit=100`, the spec's properties and associations in the same call. */
export async function listPage(caller: HubSpotCaller, type: SyncObjectType, opts: { after?: string; archived: boolean }): Promise<ObjectPage> {
  const spec = OBJECT_SPECS[type];
  // Archived objects are only looked up to tombstone what we hold; their associations are not needed.
  const associations = opts.archived || spec.associations.length === 0 ? undefined : [...spec.associations];
  const raw: unknown = await caller.call('standard', `${type}.list${opts.archived ? '-archived' : ''}`, (client) =>
    objectApi(client, type).basicApi.getPage(100, opts.after, [...spec.properties], undefined, associations, opts.archived),
  );
  const page = listPageSchema.parse(raw);
  return {
    objects: page.results.map((r) => {
      const o = toHubSpotObject(type, r);
      // The list API omits `associations` for an object that has none; that is "none", not "unknown".
      if (associations && !o.associations) o.associations = Object.fromEntries(spec.associations.map((t) => [t, [] as string[]]));
      return o;
    }),
    ...(page.paging?.next?.after ? { nextAfter: page.paging.next.after } : {}),
  };
}

export type SearchFilter = { propertyName: string; operator: 'EQ' | 'GT' | 'GTE' | 'LTE' | 'LT'; value: string };

export interface SearchPage extends ObjectPage {
  total: number;
}

/**
 * One page of the search API. Sorts go in the documented `{propertyName, direction}` form; the SDK types
 * them as strings but sends the array verbatim.
 */
export async function searchPage(
  caller: HubSpotCaller,
  type: SyncObjectType,
  req: { filters: SearchFilter[]; sortBy: string; after?: number; limit: number },
): Promise<SearchPage> {
  const spec = OBJECT_SPECS[type];
  const body = {
    // An empty group is rejected by HubSpot; no filters means no groups.
    filterGroups: req.filters.length > 0 ? [{ filters: req.filters }] : [],
    sorts: [{ propertyName: req.sortBy, direction: 'ASCENDING' }] as unknown as string[],
    properties: [...spec.properties],
    limit: req.limit,
    ...(req.after ? { after: String(req.after) } : {}),
  };
  const raw: unknown = await caller.call('search', `${type}.search`, (client) => {
    const api = objectApi(client, type);
    // The three search APIs take structurally identical bodies; only their nominal enum types differ.
    return (api.searchApi as { doSearch(r: unknown): Promise<unknown> }).doSearch(body);
  });
  const page = searchPageSchema.parse(raw);
  return {
    total: page.total,
    objects: page.results.map((r) => toHubSpotObject(type, r)),
    ...(page.paging?.next?.after ? { nextAfter: page.paging.next.after } : {}),
  };
}

/** Only the total a search would find (limit 1): one call, used to estimate a full sync's length. */
export async function countObjects(caller: HubSpotCaller, type: SyncObjectType): Promise<number> {
  const page = await searchPage(caller, type, { filters: [], sortBy: 'hs_object_id', limit: 1 });
  return page.total;
}

const assocBatchSchema = z.object({
  results: z.array(
    z.object({
      _from: z.object({ id: z.union([z.string(), z.number()]).transform(String) }),
      to: z.array(z.object({ toObjectId: z.union([z.string(), z.number()]).transform(String) })),
    }),
  ),
});

/** Associations of up to 1,000 objects to one other type, with one v4 batch call. */
export async function readAssociations(caller: HubSpotCaller, from: SyncObjectType, to: SyncObjectType, ids: string[]): Promise<Map<string, string[]>> {
  const out = new Map<string, string[]>(ids.map((id) => [id, []]));
  if (ids.length === 0) return out;
  const raw: unknown = await caller.call('standard', `associations.${from}-${to}.read`, (client) =>
    client.crm.associations.v4.batchApi.getPage(from, to, { inputs: ids.map((id) => ({ id })) }),
  );
  // Objects without associations come back under `errors` (NO_ASSOCIATIONS_FOUND): they keep [].
  for (const r of assocBatchSchema.parse(raw).results) out.set(r._from.id, [...new Set(r.to.map((t) => t.toObjectId))]);
  return out;
}

const pipelinesSchema = z.object({
  results: z.array(
    z.object({
      id: z.string(),
      label: z.string(),
      stages: z.array(z.object({ id: z.string(), label: z.string(), metadata: z.record(z.string(), z.unknown()).optional() })).default([]),
    }),
  ),
});

export interface PipelineLabels {
  pipeline(id: string | null | undefined): string | undefined;
  stage(pipelineId: string | null | undefined, stageId: string | null | undefined): { label: string; state?: string } | undefined;
}

/** Ticket pipelines and their stages (labels and OPEN/CLOSED state), one call. */
export async function ticketPipelines(caller: HubSpotCaller): Promise<PipelineLabels> {
  const raw: unknown = await caller.call('standard', 'pipelines.tickets', (client) => client.crm.pipelines.pipelinesApi.getAll('tickets'));
  const parsed = pipelinesSchema.parse(raw);
  const pipelines = new Map<string, { label: string; stages: Map<string, { label: string; state?: string }> }>();
  const anyStage = new Map<string, { label: string; state?: string }>();
  for (const p of parsed.results) {
    const stages = new Map<string, { label: string; state?: string }>();
    for (const s of p.stages) {
      const state = typeof s.metadata?.['ticketState'] === 'string' ? (s.metadata['ticketState'] as string) : undefined;
      const v = state ? { label: s.label, state } : { label: s.label };
      stages.set(s.id, v);
      if (!anyStage.has(s.id)) anyStage.set(s.id, v);
    }
    pipelines.set(p.id, { label: p.label, stages });
  }
  return {
    pipeline: (id) => (id ? pipelines.get(id)?.label : undefined),
    // A ticket without hs_pipeline sits in the default pipeline; stage ids are unique enough to fall back on.
    stage: (pid, sid) => (sid ? (pid ? pipelines.get(pid)?.stages.get(sid) : undefined) ?? anyStage.get(sid) : undefined),
  };
}
