import { z } from 'zod';
import { DATE_PROPERTIES } from './objects';
import { parseDate, type CrmObject, type TypeStore } from './store';
import { ReplyError, parseOr400, validationError } from './wire';

/** `POST /crm/v3/objects/{type}/search`: filters, one sort, paging by offset, the result cap, index lag. */

const scalar = z.union([z.string(), z.number(), z.boolean()]).transform((v) => String(v));

const FilterSchema = z.object({
  propertyName: z.string().min(1),
  operator: z.enum(['EQ', 'NEQ', 'LT', 'LTE', 'GT', 'GTE', 'BETWEEN', 'IN', 'NOT_IN', 'HAS_PROPERTY', 'NOT_HAS_PROPERTY', 'CONTAINS_TOKEN', 'NOT_CONTAINS_TOKEN']),
  value: scalar.optional(),
  highValue: scalar.optional(),
  values: z.array(scalar).optional(),
});
type Filter = z.infer<typeof FilterSchema>;

const SortSchema = z.union([
  z.string().min(1),
  z.object({ propertyName: z.string().min(1), direction: z.enum(['ASCENDING', 'DESCENDING']).optional() }),
]);

export const SearchRequestSchema = z.object({
  filterGroups: z.array(z.object({ filters: z.array(FilterSchema) })).optional(),
  /** The older top-level form (one implicit group); HubSpot still accepts it. */
  filters: z.array(FilterSchema).optional(),
  sorts: z.array(SortSchema).optional(),
  properties: z.array(z.string()).optional(),
  limit: z.union([z.number().int(), z.string().regex(/^\d+$/).transform(Number)]).optional(),
  after: z.union([z.string(), z.number()]).nullish(),
  query: z.string().optional(),
});
export type SearchRequest = z.infer<typeof SearchRequestSchema>;

// Current limits per HubSpot's 2024-08 changelog (the reference marks the exact numbers unconfirmed).
const MAX_GROUPS = 5;
const MAX_FILTERS_PER_GROUP = 10;
const MAX_FILTERS = 25;
export const MAX_SEARCH_LIMIT = 200;
const DEFAULT_SEARCH_LIMIT = 10;

export interface SearchOutcome {
  total: number;
  results: CrmObject[];
  nextAfter?: string;
}

export interface SearchContext {
  now: number;
  indexLagMs: number;
  cap: number;
}

export function parseSearchRequest(body: unknown): SearchRequest {
  return parseOr400(SearchRequestSchema, body, 'search request');
}

export function runSearch(store: TypeStore, req: SearchRequest, ctx: SearchContext): SearchOutcome {
  const groups = req.filterGroups ?? (req.filters ? [{ filters: req.filters }] : []);
  validateFilters(groups);
  const limit = req.limit ?? DEFAULT_SEARCH_LIMIT;
  if (limit < 1 || limit > MAX_SEARCH_LIMIT) throw new ReplyError(validationError(`limit must be between 1 and ${MAX_SEARCH_LIMIT}`, [{ message: `limit must be <= ${MAX_SEARCH_LIMIT}`, in: 'limit' }]));
  const afterRaw = req.after === undefined || req.after === null || req.after === '' ? '0' : String(req.after);
  if (!/^\d+$/.test(afterRaw)) throw new ReplyError(validationError(`Invalid paging cursor after=${afterRaw}`, [{ message: 'after must be an integer offset', in: 'after' }]));
  const after = Number(afterRaw);
  if (after + limit > ctx.cap) {
    // HubSpot answers 400 once a page would reach past the 10,000th result, whatever the total.
    throw new ReplyError(validationError(`Search results are limited to ${ctx.cap} total results for any given query. Attempted to page to ${after + limit}.`, [{ message: `after + limit must be <= ${ctx.cap}`, in: 'after' }]));
  }
  const sorts = req.sorts ?? [];
  if (sorts.length > 1) throw new ReplyError(validationError('Only one sort is allowed per search request', [{ message: 'too many sorts', in: 'sorts' }]));
  const sort = sorts[0] === undefined ? undefined : typeof sorts[0] === 'string' ? parseSortString(sorts[0]) : { prop: sorts[0].propertyName, desc: sorts[0].direction === 'DESCENDING' };

  const ids = matchingIds(store, groups, sort, req.query, ctx);
  const page = ids.slice(after, after + limit).map((id) => store.byId.get(id) as CrmObject);
  const end = after + limit;
  return { total: ids.length, results: page, ...(end < ids.length ? { nextAfter: String(end) } : {}) };
}

function parseSortString(s: string): { prop: string; desc: boolean } {
  return s.startsWith('-') ? { prop: s.slice(1), desc: true } : { prop: s, desc: false };
}

function validateFilters(groups: Array<{ filters: Filter[] }>): void {
  if (groups.length > MAX_GROUPS) throw new ReplyError(validationError(`Too many filter groups: ${groups.length} (max ${MAX_GROUPS})`));
  let total = 0;
  for (const g of groups) {
    total += g.filters.length;
    if (g.filters.length > MAX_FILTERS_PER_GROUP) throw new ReplyError(validationError(`Too many filters in a group: ${g.filters.length} (max ${MAX_FILTERS_PER_GROUP})`));
    for (const f of g.filters) {
      const needsValue = ['EQ', 'NEQ', 'LT', 'LTE', 'GT', 'GTE', 'BETWEEN', 'CONTAINS_TOKEN', 'NOT_CONTAINS_TOKEN'].includes(f.operator);
      if (needsValue && f.value === undefined) throw new ReplyError(validationError(`Filter on ${f.propertyName} with operator ${f.operator} requires a value`, [{ message: 'value is required', in: 'value' }]));
      if (f.operator === 'BETWEEN' && f.highValue === undefined) throw new ReplyError(validationError(`BETWEEN filter on ${f.propertyName} requires highValue`, [{ message: 'highValue is required', in: 'highValue' }]));
      if ((f.operator === 'IN' || f.operator === 'NOT_IN') && !f.values?.length) throw new ReplyError(validationError(`${f.operator} filter on ${f.propertyName} requires values`, [{ message: 'values is required', in: 'values' }]));
    }
  }
  if (total > MAX_FILTERS) throw new ReplyError(validationError(`Too many filters: ${total} (max ${MAX_FILTERS})`));
}

function matchingIds(store: TypeStore, groups: Array<{ filters: Filter[] }>, sort: { prop: string; desc: boolean } | undefined, query: string | undefined, ctx: SearchContext): number[] {
  // Lagging searches depend on the clock, so only lag-free searches are cached (paging re-runs the same query).
  const key = JSON.stringify({ groups, sort, query });
  const cacheable = ctx.indexLagMs <= 0;
  if (cacheable && store.searchCache?.key === key && store.searchCache.version === store.version) return store.searchCache.ids;

  const lmProp = store.info.lastModifiedProperty;
  const range = lmRangeOf(groups, lmProp);
  const fromIndex = range !== undefined;
  const candidates: Iterable<CrmObject> = fromIndex ? store.lmRange(range.lo, range.hi) : store.byId.values();
  const visibleBefore = ctx.now - ctx.indexLagMs;
  const q = query?.trim().toLowerCase();
  const matches: CrmObject[] = [];
  for (const o of candidates) {
    if (o.archived || o.mergedInto !== undefined) continue;
    if (ctx.indexLagMs > 0 && o.touchedAt > visibleBefore) continue;
    if (groups.length > 0 && !groups.some((g) => g.filters.every((f) => matches1(o, f)))) continue;
    if (q && !matchesQuery(o, q)) continue;
    matches.push(o);
  }
  if (sort?.prop === lmProp && fromIndex) {
    if (sort.desc) matches.reverse();
  } else if (sort) {
    const { prop, desc } = sort;
    matches.sort((a, b) => {
      const c = compareValues(prop, a.properties[prop], b.properties[prop]);
      return (desc ? -c : c) || a.id - b.id;
    });
  } else {
    matches.sort((a, b) => a.id - b.id);
  }
  const ids = matches.map((o) => o.id);
  if (cacheable) store.searchCache = { key, version: store.version, ids };
  return ids;
}

/** The last-modified range every group is confined to, so the index can be used; undefined when some group is unbounded. */
function lmRangeOf(groups: Array<{ filters: Filter[] }>, lmProp: string): { lo: number; hi: number } | undefined {
  if (groups.length === 0) return undefined;
  let lo = Infinity;
  let hi = -Infinity;
  for (const g of groups) {
    let glo = -Infinity;
    let ghi = Infinity;
    let bounded = false;
    for (const f of g.filters) {
      if (f.propertyName !== lmProp) continue;
      const v = f.value === undefined ? undefined : parseDate(f.value);
      if (v === undefined) continue;
      switch (f.operator) {
        case 'GTE': glo = Math.max(glo, Math.ceil(v)); bounded = true; break;
        case 'GT': glo = Math.max(glo, Math.floor(v) + 1); bounded = true; break;
        case 'LTE': ghi = Math.min(ghi, Math.floor(v)); bounded = true; break;
        case 'LT': ghi = Math.min(ghi, Math.ceil(v) - 1); bounded = true; break;
        case 'EQ': glo = Math.max(glo, v); ghi = Math.min(ghi, v); bounded = true; break;
        case 'BETWEEN': {
          const h = f.highValue === undefined ? undefined : parseDate(f.highValue);
          if (h === undefined) break;
          glo = Math.max(glo, v);
          ghi = Math.min(ghi, h);
          bounded = true;
          break;
        }
        default: break;
      }
    }
    if (!bounded) return undefined;
    lo = Math.min(lo, glo);
    hi = Math.max(hi, ghi);
  }
  return { lo, hi };
}

function matchesQuery(o: CrmObject, q: string): boolean {
  for (const p of ['subject', 'content', 'email', 'firstname', 'lastname', 'name', 'domain', 'phone']) {
    if (o.properties[p]?.toLowerCase().includes(q)) return true;
  }
  return o.properties.hs_object_id === q;
}

function asNumber(prop: string, v: string): number | undefined {
  if (DATE_PROPERTIES.has(prop)) return parseDate(v);
  if (v.trim() === '') return undefined;
  const n = Number(v);
  return Number.isFinite(n) ? n : undefined;
}

/** Numbers and dates compare numerically, anything else case-insensitively as text; missing values sort last. */
function compareValues(prop: string, a: string | undefined, b: string | undefined): number {
  if (a === undefined || b === undefined) return a === b ? 0 : a === undefined ? 1 : -1;
  const na = asNumber(prop, a);
  const nb = asNumber(prop, b);
  if (na !== undefined && nb !== undefined) return na - nb;
  const la = a.toLowerCase();
  const lb = b.toLowerCase();
  return la < lb ? -1 : la > lb ? 1 : 0;
}

function tokenMatch(value: string, pattern: string): boolean {
  const tokens = value.toLowerCase().split(/[^a-z0-9@._-]+/).filter(Boolean);
  const p = pattern.toLowerCase();
  if (!p.includes('*')) return tokens.includes(p) || value.toLowerCase() === p;
  const re = new RegExp(`^${p.split('*').map((s) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('.*')}$`);
  return tokens.some((t) => re.test(t)) || re.test(value.toLowerCase());
}

function matches1(o: CrmObject, f: Filter): boolean {
  const actual = f.propertyName === 'hs_object_id' ? String(o.id) : o.properties[f.propertyName];
  const v = f.value ?? '';
  switch (f.operator) {
    case 'HAS_PROPERTY': return actual !== undefined;
    case 'NOT_HAS_PROPERTY': return actual === undefined;
    case 'EQ': return actual !== undefined && compareValues(f.propertyName, actual, v) === 0;
    case 'NEQ': return actual === undefined || compareValues(f.propertyName, actual, v) !== 0;
    case 'LT': return actual !== undefined && compareValues(f.propertyName, actual, v) < 0;
    case 'LTE': return actual !== undefined && compareValues(f.propertyName, actual, v) <= 0;
    case 'GT': return actual !== undefined && compareValues(f.propertyName, actual, v) > 0;
    case 'GTE': return actual !== undefined && compareValues(f.propertyName, actual, v) >= 0;
    case 'BETWEEN': return actual !== undefined && compareValues(f.propertyName, actual, v) >= 0 && compareValues(f.propertyName, actual, f.highValue ?? '') <= 0;
    case 'IN': return actual !== undefined && (f.values ?? []).some((x) => compareValues(f.propertyName, actual, x) === 0);
    case 'NOT_IN': return actual === undefined || !(f.values ?? []).some((x) => compareValues(f.propertyName, actual, x) === 0);
    case 'CONTAINS_TOKEN': return actual !== undefined && tokenMatch(actual, v);
    case 'NOT_CONTAINS_TOKEN': return actual === undefined || !tokenMatch(actual, v);
  }
}
