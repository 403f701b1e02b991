import { z } from 'zod';
import { checkScopes, type ApiCtx } from './context';
import { ALWAYS_RETURNED, OBJECT_TYPES, associationTarget, isKnownAssociationType, objectTypeOf, v3AssociationName, type ObjectType } from './objects';
import { parseSearchRequest, runSearch, type SearchContext } from './search';
import type { CrmObject, PortalStore, TypeStore } from './store';
import { ReplyError, empty, hubspotError, iso, json, notFound, parseOr400, validationError, type Reply } from './wire';

/** CRM v3 object endpoints: list, get, create, update, archive, batch read/create/update/upsert/archive, search, merge, pipelines. */

export const MAX_LIST_LIMIT = 100;
const DEFAULT_LIST_LIMIT = 10;
export const MAX_BATCH_INPUTS = 100;

const propValue = z.union([z.string(), z.number(), z.boolean(), z.null()]).transform((v) => (v === null ? null : String(v)));
const Properties = z.record(z.string(), propValue);
const AssociationInput = z.object({
  to: z.object({ id: z.union([z.string(), z.number()]).transform(String) }),
  types: z.array(z.object({ associationCategory: z.string(), associationTypeId: z.number().int() })).min(1),
});
const CreateInput = z.object({ properties: Properties, associations: z.array(AssociationInput).optional() });
const UpdateInput = z.object({ id: z.union([z.string(), z.number()]).transform(String), idProperty: z.string().optional(), properties: Properties });
const IdInput = z.object({ id: z.union([z.string(), z.number()]).transform(String) });
const batchOf = <T extends z.ZodType>(input: T) => z.object({ inputs: z.array(input) });
const BatchRead = z.object({
  inputs: z.array(IdInput),
  properties: z.array(z.string()).optional(),
  propertiesWithHistory: z.array(z.string()).optional(),
  idProperty: z.string().optional(),
});
const MergeInput = z.object({ primaryObjectId: z.union([z.string(), z.number()]).transform(String), objectIdToMerge: z.union([z.string(), z.number()]).transform(String) });

type Props = Record<string, string | null>;

/** Query parameters HubSpot takes both repeated and comma-separated. */
function multi(query: URLSearchParams, name: string): string[] | undefined {
  const all = query.getAll(name);
  if (all.length === 0) return undefined;
  return all.flatMap((v) => v.split(',')).map((s) => s.trim()).filter(Boolean);
}

function render(store: TypeStore, o: CrmObject, requested: string[] | undefined): Record<string, unknown> {
  const info = store.info;
  const names = requested && requested.length > 0 ? [...new Set([...ALWAYS_RETURNED(info), ...requested])] : info.defaultProperties;
  const properties: Record<string, string | null> = {};
  for (const n of names) properties[n] = o.properties[n] ?? null;
  return {
    id: String(o.id),
    properties,
    createdAt: iso(o.createdAt),
    updatedAt: iso(o.updatedAt),
    archived: o.archived,
    ...(o.archived && o.archivedAt !== undefined ? { archivedAt: iso(o.archivedAt) } : {}),
  };
}

function renderWithAssociations(portal: PortalStore, type: ObjectType, o: CrmObject, requested: string[] | undefined, assocTypes: string[] | undefined): Record<string, unknown> {
  const out = render(portal.types[type], o, requested);
  if (!assocTypes) return out;
  const associations: Record<string, unknown> = {};
  for (const name of assocTypes) {
    const toType = objectTypeOf(name);
    if (!toType) continue;
    const list = portal.assoc.list(type, o.id, toType);
    if (list.length === 0) continue;
    associations[toType] = { results: list.flatMap((a) => a.typeIds.map((t) => ({ id: String(a.toId), type: v3AssociationName(t) }))) };
  }
  return Object.keys(associations).length > 0 ? { ...out, associations } : out;
}

function numericId(id: string): number | undefined {
  return /^\d{1,15}$/.test(id) ? Number(id) : undefined;
}

/** Finds an object by id or by `idProperty` value (following merges for ids). */
function find(store: TypeStore, id: string, idProperty: string | undefined): CrmObject | undefined {
  if (idProperty && idProperty !== 'hs_object_id') {
    if (idProperty !== store.info.uniqueProperty) throw new ReplyError(validationError(`${idProperty} is not a unique identifier property for ${store.info.type}`, [{ message: 'idProperty must be a unique property', in: 'idProperty' }]));
    return store.byUnique(id);
  }
  const n = numericId(id);
  return n === undefined ? undefined : store.resolve(n);
}

function batchResponse(status: number, results: unknown[], errors: unknown[], started: number): Reply {
  const base = { status: 'COMPLETE', results, startedAt: iso(started), completedAt: iso(Date.now()) };
  if (errors.length === 0) return json(status, base);
  return json(207, { ...base, numErrors: errors.length, errors });
}

function checkBatchSize(n: number): void {
  if (n > MAX_BATCH_INPUTS) throw new ReplyError(validationError(`Batch requests are limited to ${MAX_BATCH_INPUTS} inputs, got ${n}`, [{ message: `at most ${MAX_BATCH_INPUTS} inputs`, in: 'inputs' }]));
}

function conflict(info: { singular: string }, existing: CrmObject): Reply {
  const label = info.singular.charAt(0).toUpperCase() + info.singular.slice(1);
  return hubspotError(409, 'CONFLICT', `${label} already exists. Existing ID: ${existing.id}`);
}

function validateCreate(type: ObjectType, props: Props): void {
  if (type === 'tickets' && !props.hs_pipeline_stage) {
    throw new ReplyError(validationError('Property values were not valid: hs_pipeline_stage is required', [{ message: 'hs_pipeline_stage is required', in: 'hs_pipeline_stage', code: 'REQUIRED_PROPERTY' }]));
  }
}

function cleanProps(props: Props): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(props)) if (v !== null && v !== '') out[k] = v;
  return out;
}

function addAssociations(portal: PortalStore, type: ObjectType, id: number, assoc: Array<z.infer<typeof AssociationInput>> | undefined): void {
  for (const a of assoc ?? []) {
    for (const t of a.types) {
      const toType = associationTarget(type, t.associationTypeId);
      const toId = numericId(a.to.id);
      if (!toType || toId === undefined || !isKnownAssociationType(type, toType, t.associationTypeId)) {
        throw new ReplyError(validationError(`Unknown association type ${t.associationCategory}/${t.associationTypeId} from ${type}`, [{ message: 'invalid association type', in: 'associations' }]));
      }
      if (!portal.types[toType].live(toId)) throw new ReplyError(validationError(`${OBJECT_TYPES[toType].singular} ${a.to.id} does not exist`, [{ message: 'association target not found', in: 'associations' }]));
      portal.assoc.add(type, id, toType, toId, t.associationTypeId);
    }
  }
}

export function listObjects(ctx: ApiCtx, type: ObjectType): Reply {
  const store = ctx.portal.types[type];
  const limitRaw = ctx.query.get('limit');
  const limit = limitRaw === null ? DEFAULT_LIST_LIMIT : Number(limitRaw);
  if (!Number.isInteger(limit) || limit < 1) return validationError(`limit must be a positive integer`, [{ message: 'invalid limit', in: 'limit' }]);
  const afterRaw = ctx.query.get('after');
  const after = afterRaw === null || afterRaw === '' ? 0 : numericId(afterRaw);
  if (after === undefined) return validationError(`Invalid paging cursor after=${afterRaw}`, [{ message: 'invalid after', in: 'after' }]);
  const archived = ctx.query.get('archived') === 'true';
  // HubSpot quietly serves at most 100 per page, whatever `limit` asks.
  const page = store.listPage(after, Math.min(limit, MAX_LIST_LIMIT), archived);
  const props = multi(ctx.query, 'properties');
  const assoc = multi(ctx.query, 'associations');
  const results = page.objects.map((o) => renderWithAssociations(ctx.portal, type, o, props, assoc));
  if (page.next === undefined) return json(200, { results });
  const next = String(page.next);
  const link = new URL(`${ctx.baseUrl}/crm/v3/objects/${type}`);
  for (const [k, v] of ctx.query) if (k !== 'after') link.searchParams.append(k, v);
  link.searchParams.set('after', next);
  return json(200, { results, paging: { next: { after: next, link: link.toString() } } });
}

export function getObject(ctx: ApiCtx, type: ObjectType, id: string): Reply {
  const store = ctx.portal.types[type];
  const archived = ctx.query.get('archived') === 'true';
  const idProperty = ctx.query.get('idProperty') ?? undefined;
  let o = find(store, id, idProperty);
  if (!o && archived) {
    const n = numericId(id);
    const a = n === undefined ? undefined : store.byId.get(n);
    o = a?.archived ? a : undefined;
  }
  if (!o || o.archived !== archived) return notFound();
  return json(200, renderWithAssociations(ctx.portal, type, o, multi(ctx.query, 'properties'), multi(ctx.query, 'associations')));
}

export function createObject(ctx: ApiCtx, type: ObjectType): Reply {
  const input = parseOr400(CreateInput, ctx.body, 'create');
  validateCreate(type, input.properties);
  const store = ctx.portal.types[type];
  const u = store.info.uniqueProperty;
  const existing = u && input.properties[u] ? store.byUnique(input.properties[u] as string) : undefined;
  if (existing && type === 'contacts') return conflict(store.info, existing);
  const o = ctx.portal.create(type, cleanProps(input.properties), ctx.now);
  addAssociations(ctx.portal, type, o.id, input.associations);
  return json(201, render(store, o, Object.keys(input.properties)));
}

export function updateObject(ctx: ApiCtx, type: ObjectType, id: string): Reply {
  const input = parseOr400(z.object({ properties: Properties }), ctx.body, 'update');
  const store = ctx.portal.types[type];
  const o = find(store, id, ctx.query.get('idProperty') ?? undefined);
  if (!o) return notFound();
  store.apply(o, input.properties, ctx.now);
  return json(200, render(store, o, Object.keys(input.properties)));
}

export function archiveObject(ctx: ApiCtx, type: ObjectType, id: string): Reply {
  const store = ctx.portal.types[type];
  const n = numericId(id);
  const o = n === undefined ? undefined : store.live(n);
  if (o) store.archive(o, ctx.now);
  return empty(204);
}

export function batchRead(ctx: ApiCtx, type: ObjectType): Reply {
  const started = Date.now();
  const input = parseOr400(BatchRead, ctx.body, 'batch read');
  checkBatchSize(input.inputs.length);
  const store = ctx.portal.types[type];
  const archived = ctx.query.get('archived') === 'true';
  const results: unknown[] = [];
  const missing: string[] = [];
  const seen = new Set<number>();
  for (const { id } of input.inputs) {
    const o = find(store, id, input.idProperty);
    if (!o || o.archived !== archived) {
      missing.push(id);
      continue;
    }
    if (seen.has(o.id)) continue;
    seen.add(o.id);
    results.push(render(store, o, input.properties));
  }
  const errors = missing.length === 0 ? [] : [{
    status: 'error',
    category: 'OBJECT_NOT_FOUND',
    message: `Could not get some ${store.info.singular.toUpperCase()} objects, they may be deleted or not exist. Check that ids are valid.`,
    context: { ids: missing },
  }];
  return batchResponse(200, results, errors, started);
}

export function batchCreate(ctx: ApiCtx, type: ObjectType): Reply {
  const started = Date.now();
  const input = parseOr400(batchOf(CreateInput), ctx.body, 'batch create');
  checkBatchSize(input.inputs.length);
  const store = ctx.portal.types[type];
  const u = store.info.uniqueProperty;
  for (const i of input.inputs) {
    validateCreate(type, i.properties);
    const existing = u && i.properties[u] ? store.byUnique(i.properties[u] as string) : undefined;
    if (existing && type === 'contacts') return conflict(store.info, existing);
  }
  const results = input.inputs.map((i) => {
    const o = ctx.portal.create(type, cleanProps(i.properties), ctx.now);
    addAssociations(ctx.portal, type, o.id, i.associations);
    return render(store, o, Object.keys(i.properties));
  });
  return batchResponse(201, results, [], started);
}

export function batchUpdate(ctx: ApiCtx, type: ObjectType): Reply {
  const started = Date.now();
  const input = parseOr400(batchOf(UpdateInput), ctx.body, 'batch update');
  checkBatchSize(input.inputs.length);
  const store = ctx.portal.types[type];
  const results: unknown[] = [];
  const missing: string[] = [];
  for (const i of input.inputs) {
    const o = find(store, i.id, i.idProperty);
    if (!o || o.archived) {
      missing.push(i.id);
      continue;
    }
    store.apply(o, i.properties, ctx.now);
    results.push(render(store, o, Object.keys(i.properties)));
  }
  const errors = missing.length === 0 ? [] : [{ status: 'error', category: 'OBJECT_NOT_FOUND', message: `Could not find some ${store.info.singular.toUpperCase()} objects`, context: { ids: missing } }];
  return batchResponse(200, results, errors, started);
}

/** Upsert by the type's unique property (contacts: email, companies: domain); results say which were `new`. */
export function batchUpsert(ctx: ApiCtx, type: ObjectType): Reply {
  const started = Date.now();
  const input = parseOr400(batchOf(UpdateInput), ctx.body, 'batch upsert');
  checkBatchSize(input.inputs.length);
  const store = ctx.portal.types[type];
  const u = store.info.uniqueProperty;
  const results: unknown[] = [];
  for (const i of input.inputs) {
    if (!u || i.idProperty !== u) {
      return validationError(`Upsert of ${type} requires idProperty ${u ?? '(a unique property)'}, got ${i.idProperty ?? 'none'}`, [{ message: 'idProperty must be a unique property', in: 'idProperty' }]);
    }
    const existing = store.byUnique(i.id);
    if (existing) {
      store.apply(existing, i.properties, ctx.now);
      results.push({ ...render(store, existing, Object.keys(i.properties)), new: false });
    } else {
      const o = ctx.portal.create(type, cleanProps({ ...i.properties, [u]: i.id }), ctx.now);
      results.push({ ...render(store, o, [...Object.keys(i.properties), u]), new: true });
    }
  }
  return batchResponse(200, results, [], started);
}

export function batchArchive(ctx: ApiCtx, type: ObjectType): Reply {
  const input = parseOr400(batchOf(IdInput), ctx.body, 'batch archive');
  checkBatchSize(input.inputs.length);
  const store = ctx.portal.types[type];
  for (const { id } of input.inputs) {
    const n = numericId(id);
    const o = n === undefined ? undefined : store.live(n);
    if (o) store.archive(o, ctx.now);
  }
  return empty(204);
}

export function search(ctx: ApiCtx, type: ObjectType, sctx: SearchContext): Reply {
  const req = parseSearchRequest(ctx.body);
  const store = ctx.portal.types[type];
  const out = runSearch(store, req, sctx);
  const results = out.results.map((o) => render(store, o, req.properties));
  return json(200, { total: out.total, results, ...(out.nextAfter !== undefined ? { paging: { next: { after: out.nextAfter } } } : {}) });
}

export function merge(ctx: ApiCtx, type: ObjectType): Reply {
  const input = parseOr400(MergeInput, ctx.body, 'merge');
  const a = numericId(input.primaryObjectId);
  const b = numericId(input.objectIdToMerge);
  const merged = a === undefined || b === undefined ? undefined : ctx.portal.merge(type, a, b, ctx.now);
  if (!merged) return validationError(`Cannot merge ${input.objectIdToMerge} into ${input.primaryObjectId}`);
  return json(200, render(ctx.portal.types[type], merged, undefined));
}

function renderPipeline(p: { id: string; label: string; stages: Array<{ id: string; label: string; ticketState?: string }> }, i: number, created: string): Record<string, unknown> {
  return {
    id: p.id,
    label: p.label,
    displayOrder: i,
    archived: false,
    createdAt: created,
    updatedAt: created,
    stages: p.stages.map((s, j) => ({
      id: s.id,
      label: s.label,
      displayOrder: j,
      archived: false,
      createdAt: created,
      updatedAt: created,
      writePermissions: 'CRM_PERMISSIONS_ENFORCEMENT',
      metadata: { ticketState: s.ticketState ?? 'OPEN', isClosed: String(s.ticketState === 'CLOSED') },
    })),
  };
}

const PIPELINES_CREATED = '2020-01-01T00:00:00.000Z';

export function pipelines(ctx: ApiCtx, objectType: string, pipelineId: string | undefined, stagesOnly: boolean): Reply {
  if (objectTypeOf(objectType) !== 'tickets') return validationError(`Unable to infer object type from: ${objectType}`);
  const denied = checkScopes(ctx, 'tickets', 'read');
  if (denied) return denied;
  const all = ctx.portal.pipelines.map((p, i) => renderPipeline(p, i, PIPELINES_CREATED));
  if (pipelineId === undefined) return json(200, { results: all });
  const one = all.find((p) => p.id === pipelineId);
  if (!one) return notFound(`Pipeline ${pipelineId} not found`);
  return stagesOnly ? json(200, { results: one.stages }) : json(200, one);
}
