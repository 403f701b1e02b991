import { z } from 'zod';
import { checkScopes, type ApiCtx } from './context';
import { OBJECT_TYPES, defaultAssociationType, isKnownAssociationType, objectTypeOf, type ObjectType } from './objects';
import { ReplyError, iso, json, notFound, parseOr400, validationError, type Reply } from './wire';

/** CRM associations v4: default and labelled PUT, batch read/create/associate-default, per-object list. */

const MAX_V4_BATCH = 1000;

const idLike = z.union([z.string(), z.number()]).transform(String);
const Spec = z.object({ associationCategory: z.enum(['HUBSPOT_DEFINED', 'USER_DEFINED', 'INTEGRATOR_DEFINED']), associationTypeId: z.number().int() });
const BatchReadBody = z.object({ inputs: z.array(z.object({ id: idLike, after: z.string().optional() })) });
const BatchCreateBody = z.object({ inputs: z.array(z.object({ from: z.object({ id: idLike }), to: z.object({ id: idLike }), types: z.array(Spec).min(1) })) });
const BatchDefaultBody = z.object({ inputs: z.array(z.object({ from: z.object({ id: idLike }), to: z.object({ id: idLike }) })) });

function typeOr400(name: string): ObjectType {
  const t = objectTypeOf(name);
  if (!t) throw new ReplyError(validationError(`Unable to infer object type from: ${name}`));
  return t;
}

function liveId(ctx: ApiCtx, type: ObjectType, id: string): number {
  const n = /^\d{1,15}$/.test(id) ? Number(id) : undefined;
  if (n === undefined || !ctx.portal.types[type].live(n)) throw new ReplyError(notFound(`${OBJECT_TYPES[type].singular} ${id} not found`));
  return n;
}

function scoped(ctx: ApiCtx, from: ObjectType, to: ObjectType, access: 'read' | 'write'): void {
  const denied = checkScopes(ctx, from, access) ?? checkScopes(ctx, to, access);
  if (denied) throw new ReplyError(denied);
}

function defaultType(from: ObjectType, to: ObjectType): number {
  const t = defaultAssociationType(from, to);
  if (t === undefined) throw new ReplyError(validationError(`No default association between ${from} and ${to}`));
  return t;
}

function toWithLabels(ctx: ApiCtx, from: ObjectType, id: number, to: ObjectType): Array<Record<string, unknown>> {
  return ctx.portal.assoc.list(from, id, to).map((a) => ({
    toObjectId: a.toId,
    associationTypes: a.typeIds.map((typeId) => ({ category: 'HUBSPOT_DEFINED', typeId, label: null })),
  }));
}

function defaultResults(from: ObjectType, fromId: number, to: ObjectType, toId: number): Array<Record<string, unknown>> {
  return [
    { from: { id: String(fromId) }, to: { id: String(toId) }, associationSpec: { associationCategory: 'HUBSPOT_DEFINED', associationTypeId: defaultType(from, to) } },
    { from: { id: String(toId) }, to: { id: String(fromId) }, associationSpec: { associationCategory: 'HUBSPOT_DEFINED', associationTypeId: defaultType(to, from) } },
  ];
}

function complete(status: number, results: unknown[], started: number, errors: unknown[] = []): Reply {
  const base = { status: 'COMPLETE', results, startedAt: iso(started), completedAt: iso(Date.now()) };
  return errors.length === 0 ? json(status, base) : json(207, { ...base, numErrors: errors.length, errors });
}

/** `PUT /crm/v4/objects/{from}/{fromId}/associations/default/{to}/{toId}` */
export function putDefault(ctx: ApiCtx, fromName: string, fromIdRaw: string, toName: string, toIdRaw: string): Reply {
  const started = Date.now();
  const from = typeOr400(fromName);
  const to = typeOr400(toName);
  scoped(ctx, from, to, 'write');
  const fromId = liveId(ctx, from, fromIdRaw);
  const toId = liveId(ctx, to, toIdRaw);
  ctx.portal.assoc.add(from, fromId, to, toId, defaultType(from, to));
  return complete(200, defaultResults(from, fromId, to, toId), started);
}

/** `PUT /crm/v4/objects/{from}/{fromId}/associations/{to}/{toId}` with `[{associationCategory, associationTypeId}]` */
export function putLabelled(ctx: ApiCtx, fromName: string, fromIdRaw: string, toName: string, toIdRaw: string): Reply {
  const from = typeOr400(fromName);
  const to = typeOr400(toName);
  scoped(ctx, from, to, 'write');
  const specs = parseOr400(z.array(Spec).min(1), ctx.body, 'association types');
  const fromId = liveId(ctx, from, fromIdRaw);
  const toId = liveId(ctx, to, toIdRaw);
  for (const s of specs) {
    if (s.associationCategory !== 'HUBSPOT_DEFINED' || !isKnownAssociationType(from, to, s.associationTypeId)) {
      return validationError(`Association type ${s.associationCategory}/${s.associationTypeId} is not valid from ${from} to ${to}`);
    }
  }
  for (const s of specs) ctx.portal.assoc.add(from, fromId, to, toId, s.associationTypeId);
  return json(201, { fromObjectTypeId: OBJECT_TYPES[from].objectTypeId, fromObjectId: fromId, toObjectTypeId: OBJECT_TYPES[to].objectTypeId, toObjectId: toId, labels: [] });
}

/** `GET /crm/v4/objects/{from}/{fromId}/associations/{to}` */
export function listForObject(ctx: ApiCtx, fromName: string, fromIdRaw: string, toName: string): Reply {
  const from = typeOr400(fromName);
  const to = typeOr400(toName);
  scoped(ctx, from, to, 'read');
  const fromId = liveId(ctx, from, fromIdRaw);
  return json(200, { results: toWithLabels(ctx, from, fromId, to) });
}

/** `POST /crm/v4/associations/{from}/{to}/batch/read`: ids without associations come back as errors (207). */
export function batchRead(ctx: ApiCtx, fromName: string, toName: string): Reply {
  const started = Date.now();
  const from = typeOr400(fromName);
  const to = typeOr400(toName);
  scoped(ctx, from, to, 'read');
  const input = parseOr400(BatchReadBody, ctx.body, 'association batch read');
  if (input.inputs.length > MAX_V4_BATCH) return validationError(`Batch requests are limited to ${MAX_V4_BATCH} inputs`);
  const results: unknown[] = [];
  const errors: unknown[] = [];
  for (const { id } of input.inputs) {
    const n = /^\d{1,15}$/.test(id) ? Number(id) : undefined;
    const list = n === undefined ? [] : toWithLabels(ctx, from, n, to);
    if (list.length === 0) {
      errors.push({
        status: 'error',
        category: 'OBJECT_NOT_FOUND',
        subCategory: 'crm.associations.NO_ASSOCIATIONS_FOUND',
        message: `No ${OBJECT_TYPES[to].singular} is associated with ${OBJECT_TYPES[from].singular} ${id}.`,
        context: { fromObjectId: [id] },
      });
      continue;
    }
    results.push({ from: { id }, to: list });
  }
  return complete(200, results, started, errors);
}

/** `POST /crm/v4/associations/{from}/{to}/batch/create` */
export function batchCreate(ctx: ApiCtx, fromName: string, toName: string): Reply {
  const started = Date.now();
  const from = typeOr400(fromName);
  const to = typeOr400(toName);
  scoped(ctx, from, to, 'write');
  const input = parseOr400(BatchCreateBody, ctx.body, 'association batch create');
  if (input.inputs.length > MAX_V4_BATCH) return validationError(`Batch requests are limited to ${MAX_V4_BATCH} inputs`);
  const results: unknown[] = [];
  for (const i of input.inputs) {
    const fromId = liveId(ctx, from, i.from.id);
    const toId = liveId(ctx, to, i.to.id);
    for (const s of i.types) {
      if (!isKnownAssociationType(from, to, s.associationTypeId)) return validationError(`Association type ${s.associationTypeId} is not valid from ${from} to ${to}`);
    }
    for (const s of i.types) ctx.portal.assoc.add(from, fromId, to, toId, s.associationTypeId);
    results.push({ fromObjectTypeId: OBJECT_TYPES[from].objectTypeId, fromObjectId: fromId, toObjectTypeId: OBJECT_TYPES[to].objectTypeId, toObjectId: toId, labels: [] });
  }
  return complete(201, results, started);
}

/** `POST /crm/v4/associations/{from}/{to}/batch/associate/default` */
export function batchDefault(ctx: ApiCtx, fromName: string, toName: string): Reply {
  const started = Date.now();
  const from = typeOr400(fromName);
  const to = typeOr400(toName);
  scoped(ctx, from, to, 'write');
  const input = parseOr400(BatchDefaultBody, ctx.body, 'association batch default');
  if (input.inputs.length > MAX_V4_BATCH) return validationError(`Batch requests are limited to ${MAX_V4_BATCH} inputs`);
  const results: unknown[] = [];
  for (const i of input.inputs) {
    const fromId = liveId(ctx, from, i.from.id);
    const toId = liveId(ctx, to, i.to.id);
    ctx.portal.assoc.add(from, fromId, to, toId, defaultType(from, to));
    results.push(...defaultResults(from, fromId, to, toId));
  }
  return complete(200, results, started);
}
