import { readFileSync } from 'node:fs';
import path from 'node:path';

/**
 * The committed `openapi.json` as a list of operations, for suites that must cover every route without
 * anyone listing them (a unit test keeps the file equal to what the registrations generate).
 */
export type JsonSchema = {
  type?: string | string[];
  properties?: Record<string, JsonSchema>;
  required?: string[];
  items?: JsonSchema;
  anyOf?: JsonSchema[];
  oneOf?: JsonSchema[];
  allOf?: JsonSchema[];
  enum?: unknown[];
  const?: unknown;
  default?: unknown;
  pattern?: string;
  format?: string;
  minLength?: number;
  maxLength?: number;
  minimum?: number;
  maximum?: number;
  minItems?: number;
  maxItems?: number;
  additionalProperties?: boolean | JsonSchema;
  propertyNames?: JsonSchema;
  $ref?: string;
};

export interface OperationParameter {
  name: string;
  in: 'path' | 'query' | 'header' | 'cookie';
  required?: boolean;
  schema?: JsonSchema;
}

export interface Operation {
  method: string;
  /** The OpenAPI path, e.g. `/api/hubspot/status/{tenant_id}/{integration_id}`. */
  path: string;
  operationId: string;
  summary?: string;
  parameters: OperationParameter[];
  /** Empty: anonymous. */
  security: Array<Record<string, string[]>>;
  requestBody?: { required?: boolean; content: Record<string, { schema: JsonSchema }> };
}

export interface OpenApiDocument {
  paths: Record<string, Record<string, Omit<Operation, 'method' | 'path'>>>;
  components?: { securitySchemes?: Record<string, unknown> };
}

export const OPENAPI_FILE = path.resolve(__dirname, '..', '..', 'openapi.json');
const METHODS = ['get', 'put', 'post', 'delete', 'patch', 'head', 'options'];

export function loadOpenApi(file = OPENAPI_FILE): OpenApiDocument {
  return JSON.parse(readFileSync(file, 'utf8')) as OpenApiDocument;
}

export function operations(doc: OpenApiDocument = loadOpenApi()): Operation[] {
  const out: Operation[] = [];
  for (const [p, item] of Object.entries(doc.paths)) {
    for (const [m, op] of Object.entries(item)) {
      if (!METHODS.includes(m)) continue;
      out.push({ method: m.toUpperCase(), path: p, operationId: op.operationId, summary: op.summary, parameters: op.parameters ?? [], security: op.security ?? [], requestBody: op.requestBody });
    }
  }
  return out.sort((a, b) => a.operationId.localeCompare(b.operationId));
}

/**
 * Anonymous: no security requirement asks for a credential. Decided by the security requirement alone,
 * not by the path: an anonymous route may name a tenant (a snooze link, whose random id is its
 * authorisation) and is still anonymous, open to anyone on the internet.
 */
export function isAnonymous(op: Operation): boolean {
  return !op.security.some((s) => Object.keys(s).length > 0);
}

/** A management operation: it asks for a credential (a tenant's token and the function key). */
export function isTenantScoped(op: Operation): boolean {
  return !isAnonymous(op);
}

/** The operation names a tenant in its path (`{tenant_id}`), anonymous or not. */
export function namesTenant(op: Operation): boolean {
  return op.parameters.some((p) => p.in === 'path' && p.name === 'tenant_id');
}

export function pathParams(op: Operation): string[] {
  return [...op.path.matchAll(/\{([^}]+)\}/g)].map((m) => m[1] as string);
}

/** `/api/a/{x}` with `{ x: 'v' }` → `/api/a/v` (each value URI-encoded). */
export function fillPath(template: string, values: Record<string, string>): string {
  return template.replace(/\{([^}]+)\}/g, (_, name: string) => {
    const v = values[name];
    if (v === undefined) throw new Error(`no value for path parameter {${name}} of ${template}`);
    return encodeURIComponent(v);
  });
}

export function jsonBodySchema(op: Operation): JsonSchema | undefined {
  const content = op.requestBody?.content ?? {};
  const key = Object.keys(content).find((k) => /json/i.test(k));
  return key ? content[key]?.schema : undefined;
}

/** The methods the app serves on one path (from every operation on it). */
export function methodsOfPath(ops: Operation[], p: string): string[] {
  return ops.filter((o) => o.path === p).map((o) => o.method);
}
