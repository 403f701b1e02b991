import { DATE_PROPERTIES, OBJECT_TYPES, inverseAssociationType, type ObjectType, type ObjectTypeInfo } from './objects';
import type { FakePipeline } from './types';
import { iso } from './wire';

/**
 * The CRM data of one portal, kept so that a 100,000-object portal costs little per request:
 * objects in a Map by numeric id, ids in creation order for list paging (binary search on `after`),
 * and a (last-modified, id) index for search whose updates are appended and merged in lazily.
 */

export interface CrmObject {
  id: number;
  properties: Record<string, string>;
  createdAt: number;
  /** Last-modified time in ms; mirrors the type's last-modified property. */
  updatedAt: number;
  archived: boolean;
  archivedAt?: number;
  mergedInto?: number;
  /** Wall-clock time of the last write, for the search index lag. */
  touchedAt: number;
  /** Which index entry is current; older entries for this object are skipped. */
  indexSeq: number;
}

interface IndexEntry {
  lm: number;
  id: number;
  seq: number;
}

const byLmThenId = (a: IndexEntry, b: IndexEntry): number => a.lm - b.lm || a.id - b.id;

/** Parses a datetime property value given as epoch ms or ISO text. */
export function parseDate(value: string): number | undefined {
  if (/^-?\d+$/.test(value)) return Number(value);
  const ms = Date.parse(value);
  return Number.isNaN(ms) ? undefined : ms;
}

export class TypeStore {
  readonly byId = new Map<number, CrmObject>();
  /** Every id ever stored here, ascending. */
  private readonly order: number[] = [];
  private index: IndexEntry[] = [];
  private pending: IndexEntry[] = [];
  private seq = 0;
  private readonly unique = new Map<string, number>();
  /** Bumped on every write; search results are cached per version. */
  version = 0;
  searchCache: { key: string; version: number; ids: number[] } | undefined;

  constructor(readonly info: ObjectTypeInfo) {}

  live(id: number): CrmObject | undefined {
    const o = this.byId.get(id);
    return o && !o.archived && o.mergedInto === undefined ? o : undefined;
  }

  /** Follows merges, as HubSpot does when a merged-away id is read. */
  resolve(id: number): CrmObject | undefined {
    let o = this.byId.get(id);
    for (let hops = 0; o?.mergedInto !== undefined && hops < 10; hops++) o = this.byId.get(o.mergedInto);
    return o && o.mergedInto === undefined ? o : undefined;
  }

  byUnique(value: string): CrmObject | undefined {
    const id = this.unique.get(value.toLowerCase());
    return id === undefined ? undefined : this.live(id);
  }

  liveCount(): number {
    let n = 0;
    for (const o of this.byId.values()) if (!o.archived && o.mergedInto === undefined) n++;
    return n;
  }

  insertNew(id: number, props: Record<string, string>, now: number): CrmObject {
    const obj: CrmObject = { id, properties: {}, createdAt: now, updatedAt: now, archived: false, touchedAt: Date.now(), indexSeq: 0 };
    const created = props.createdate !== undefined ? parseDate(props.createdate) : undefined;
    if (created !== undefined) obj.createdAt = created;
    obj.properties.createdate = iso(obj.createdAt);
    obj.properties.hs_object_id = String(id);
    this.byId.set(id, obj);
    const last = this.order[this.order.length - 1];
    if (last === undefined || id > last) this.order.push(id);
    else this.order.splice(lowerBound(this.order, id), 0, id);
    this.apply(obj, props, now);
    return obj;
  }

  /** Applies property changes and bumps last-modified to `now` unless the changes set it. */
  apply(obj: CrmObject, props: Record<string, string | null>, now: number): void {
    const uniqueProp = this.info.uniqueProperty;
    for (const [k, raw] of Object.entries(props)) {
      if (k === 'hs_object_id' || k === 'createdate') continue;
      if (uniqueProp === k) {
        const before = obj.properties[k];
        if (before !== undefined && this.unique.get(before.toLowerCase()) === obj.id) this.unique.delete(before.toLowerCase());
      }
      if (raw === null || raw === '') {
        delete obj.properties[k];
        continue;
      }
      let value = String(raw);
      if (DATE_PROPERTIES.has(k)) {
        const ms = parseDate(value);
        if (ms !== undefined) value = iso(ms);
      }
      obj.properties[k] = value;
      if (uniqueProp === k) this.unique.set(value.toLowerCase(), obj.id);
    }
    const lmProp = this.info.lastModifiedProperty;
    const explicit = props[lmProp];
    const lm = explicit !== undefined && explicit !== null ? parseDate(explicit) : undefined;
    obj.updatedAt = lm ?? Math.max(now, obj.createdAt);
    obj.properties[lmProp] = iso(obj.updatedAt);
    obj.touchedAt = Date.now();
    this.reindex(obj);
  }

  archive(obj: CrmObject, now: number): void {
    obj.archived = true;
    obj.archivedAt = now;
    obj.touchedAt = Date.now();
    this.version++;
  }

  markMerged(obj: CrmObject, into: number): void {
    obj.mergedInto = into;
    obj.touchedAt = Date.now();
    const u = this.info.uniqueProperty ? obj.properties[this.info.uniqueProperty] : undefined;
    if (u !== undefined) this.unique.set(u.toLowerCase(), into);
    this.version++;
  }

  private reindex(obj: CrmObject): void {
    obj.indexSeq = ++this.seq;
    this.pending.push({ lm: obj.updatedAt, id: obj.id, seq: obj.indexSeq });
    this.version++;
  }

  private isCurrent(e: IndexEntry): boolean {
    const o = this.byId.get(e.id);
    return o !== undefined && o.indexSeq === e.seq && !o.archived && o.mergedInto === undefined;
  }

  /** Merges pending index entries in and drops stale ones: O(n + k log k) after k writes. */
  private compact(): void {
    if (this.pending.length === 0) return;
    const add = this.pending.sort(byLmThenId);
    this.pending = [];
    const out: IndexEntry[] = new Array<IndexEntry>();
    let i = 0;
    let j = 0;
    const a = this.index;
    while (i < a.length || j < add.length) {
      const x = a[i];
      const y = add[j];
      const takeA = x !== undefined && (y === undefined || byLmThenId(x, y) <= 0);
      const e = (takeA ? x : y) as IndexEntry;
      if (takeA) i++;
      else j++;
      if (this.isCurrent(e)) out.push(e);
    }
    this.index = out;
  }

  /** Live objects with lo ≤ last-modified ≤ hi, ascending by (last-modified, id). */
  *lmRange(lo: number, hi: number): Generator<CrmObject> {
    this.compact();
    const idx = this.index;
    let i = lowerBoundBy(idx, lo);
    for (; i < idx.length; i++) {
      const e = idx[i] as IndexEntry;
      if (e.lm > hi) return;
      if (!this.isCurrent(e)) continue;
      yield this.byId.get(e.id) as CrmObject;
    }
  }

  /** One list page: objects with id ≥ after whose archived flag equals `archived`. */
  listPage(after: number, limit: number, archived: boolean): { objects: CrmObject[]; next?: number } {
    const objects: CrmObject[] = [];
    for (let i = lowerBound(this.order, after); i < this.order.length; i++) {
      const o = this.byId.get(this.order[i] as number) as CrmObject;
      if (o.mergedInto !== undefined || o.archived !== archived) continue;
      if (objects.length === limit) return { objects, next: o.id };
      objects.push(o);
    }
    return { objects };
  }
}

function lowerBound(arr: number[], v: number): number {
  let lo = 0;
  let hi = arr.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if ((arr[mid] as number) < v) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

function lowerBoundBy(arr: IndexEntry[], lm: number): number {
  let lo = 0;
  let hi = arr.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if ((arr[mid] as IndexEntry).lm < lm) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** Associations of one portal, stored in both directions with their type ids. */
export class AssociationStore {
  private readonly map = new Map<string, Map<ObjectType, Map<number, Set<number>>>>();

  add(fromType: ObjectType, fromId: number, toType: ObjectType, toId: number, typeId: number): void {
    this.put(fromType, fromId, toType, toId, typeId);
    const inverse = inverseAssociationType(typeId);
    if (inverse !== undefined) this.put(toType, toId, fromType, fromId, inverse);
  }

  remove(fromType: ObjectType, fromId: number, toType: ObjectType, toId: number): void {
    this.map.get(`${fromType}:${fromId}`)?.get(toType)?.delete(toId);
    this.map.get(`${toType}:${toId}`)?.get(fromType)?.delete(fromId);
  }

  list(fromType: ObjectType, fromId: number, toType: ObjectType): Array<{ toId: number; typeIds: number[] }> {
    const m = this.map.get(`${fromType}:${fromId}`)?.get(toType);
    if (!m) return [];
    return [...m.entries()].sort((a, b) => a[0] - b[0]).map(([toId, types]) => ({ toId, typeIds: [...types].sort((a, b) => a - b) }));
  }

  /** Moves every association of `fromId` onto `intoId` (merge). */
  moveAll(type: ObjectType, fromId: number, intoId: number): void {
    const own = this.map.get(`${type}:${fromId}`);
    if (!own) return;
    this.map.delete(`${type}:${fromId}`);
    for (const [toType, targets] of own) {
      for (const [toId, types] of targets) {
        this.map.get(`${toType}:${toId}`)?.get(type)?.delete(fromId);
        for (const t of types) this.add(type, intoId, toType, toId, t);
      }
    }
  }

  private put(fromType: ObjectType, fromId: number, toType: ObjectType, toId: number, typeId: number): void {
    const key = `${fromType}:${fromId}`;
    let byType = this.map.get(key);
    if (!byType) this.map.set(key, (byType = new Map()));
    let targets = byType.get(toType);
    if (!targets) byType.set(toType, (targets = new Map()));
    let types = targets.get(toId);
    if (!types) targets.set(toId, (types = new Set()));
    types.add(typeId);
  }
}

export const DEFAULT_PIPELINES: FakePipeline[] = [
  {
    id: '0',
    label: 'Support Pipeline',
    stages: [
      { id: '1', label: 'New', ticketState: 'OPEN' },
      { id: '2', label: 'Waiting on contact', ticketState: 'OPEN' },
      { id: '3', label: 'Waiting on us', ticketState: 'OPEN' },
      { id: '4', label: 'Closed', ticketState: 'CLOSED' },
    ],
  },
];

/** All CRM state of one portal. Ids come from one counter, so ids never collide across types. */
export class PortalStore {
  private nextId: number;
  readonly types: Record<ObjectType, TypeStore>;
  readonly assoc = new AssociationStore();
  pipelines: FakePipeline[] = DEFAULT_PIPELINES;

  constructor(hubId: number) {
    // Portals get disjoint id ranges, so code that mixes up portals gets a 404 rather than someone else's object.
    this.nextId = (1 + (hubId % 89)) * 10_000_000 + 1;
    this.types = {
      tickets: new TypeStore(OBJECT_TYPES.tickets),
      contacts: new TypeStore(OBJECT_TYPES.contacts),
      companies: new TypeStore(OBJECT_TYPES.companies),
    };
  }

  create(type: ObjectType, props: Record<string, string>, now: number, id?: number): CrmObject {
    const newId = id ?? this.nextId++;
    if (id !== undefined && id >= this.nextId) this.nextId = id + 1;
    const withDefaults = type === 'tickets' ? { hs_pipeline: '0', ...props } : props;
    return this.types[type].insertNew(newId, withDefaults, now);
  }

  /** HubSpot's merge: the primary keeps its id and gains the other's associations; the other id resolves to it. */
  merge(type: ObjectType, primaryId: number, mergedId: number, now: number): CrmObject | undefined {
    const store = this.types[type];
    const primary = store.live(primaryId);
    const merged = store.live(mergedId);
    if (!primary || !merged || primary === merged) return undefined;
    store.markMerged(merged, primary.id);
    this.assoc.moveAll(type, merged.id, primary.id);
    const previous = primary.properties.hs_merged_object_ids;
    store.apply(primary, { hs_merged_object_ids: previous ? `${previous};${merged.id}` : String(merged.id) }, now);
    return primary;
  }
}
