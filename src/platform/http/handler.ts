import type { HttpHandler, HttpRequest, HttpResponseInit, InvocationContext } from '@azure/functions';
import { z } from 'zod';
import { ensureError, UnauthorizedError, ValidationError, AppError } from '../errors';
import { contextSink, Logger } from '../logging';
import { getServices, type Services } from '../services';
import type { Principal } from './auth';
import { readBodyBounded } from './body';
import { problemResponse } from './problem';

type Schema<T> = z.ZodType<T, unknown>;

export interface RouteSpec<P, Q, B> {
  /** `tenant`: bearer JWT whose tenant claim equals `params.tenant_id`; `anonymous`: no JWT (webhooks, health, callbacks). */
  auth: 'tenant' | 'anonymous';
  params?: Schema<P>;
  query?: Schema<Q>;
  body?: Schema<B>;
  /** Bodies above this are refused with 413 before parsing. */
  maxBodyBytes?: number;
  /** One line for the OpenAPI description. */
  summary?: string;
  /** The success answer, for the OpenAPI description (the end-to-end tests check answers against it). */
  response?: { status: number; schema: z.ZodType; description?: string };
}

/** The route spec travels with the handler so `npm run openapi` can describe the API from the registrations. */
export const ROUTE_SPEC = Symbol.for('itil-next.routeSpec');

export interface RouteInput<P, Q, B> {
  request: HttpRequest;
  context: InvocationContext;
  params: P;
  query: Q;
  body: B;
  principal: Principal | undefined;
  log: Logger;
  services: Services;
  correlationId: string;
}

const DEFAULT_MAX_BODY = 256 * 1024;
const CORRELATION_ID = /^[A-Za-z0-9._:-]{1,128}$/;

/**
 * The shared front of every HTTP function: authentication, zod validation of path, query and body,
 * structured logging with correlation ids, and RFC 7807 answers for every failure. Function files stay
 * a route spec plus a call into services.
 */
export function httpHandler<P = Record<string, never>, Q = Record<string, never>, B = undefined>(
  spec: RouteSpec<P, Q, B>,
  fn: (input: RouteInput<P, Q, B>) => Promise<HttpResponseInit>,
  servicesFactory: () => Services = getServices,
): HttpHandler {
  const handler: HttpHandler = async (request, context) => {
    const started = Date.now();
    const headerId = request.headers.get('x-correlation-id');
    const correlationId = headerId && CORRELATION_ID.test(headerId) ? headerId : context.invocationId;
    const instance = new URL(request.url).pathname;
    let log = new Logger(contextSink(context), { correlationId, invocationId: context.invocationId, functionName: context.functionName });
    let response: HttpResponseInit;
    try {
      const services = servicesFactory();
      log = new Logger(contextSink(context), { correlationId, invocationId: context.invocationId, functionName: context.functionName }, services.config.logLevel);

      let principal: Principal | undefined;
      if (spec.auth === 'tenant') principal = await services.auth.authenticate(request.headers.get('authorization'));

      const params = parse(spec.params, request.params, 'path') as P;
      if (spec.auth === 'tenant') {
        const tenant = (params as { tenant_id?: unknown }).tenant_id;
        if (typeof tenant !== 'string') throw new UnauthorizedError('This route has no tenant to authorise against.');
        services.auth.authorizeTenant(principal as Principal, tenant);
        log = log.child({ tenantId: tenant });
      }
      const integration = (params as { integration_id?: unknown }).integration_id;
      if (typeof integration === 'string') log = log.child({ integrationId: integration });

      const query = parse(spec.query, Object.fromEntries(request.query.entries()), 'query') as Q;
      const body = spec.body ? (parse(spec.body, await readJson(request, spec.maxBodyBytes ?? DEFAULT_MAX_BODY), 'body') as B) : (undefined as B);

      response = await fn({ request, context, params, query, body, principal, log, services, correlationId });
    } catch (err) {
      const error = ensureError(err);
      if (error instanceof AppError && error.expose) log.warn('request rejected', { status: error.status, code: error.code, detail: error.message });
      else log.error('request failed', { error });
      response = problemResponse(error, { instance, correlationId });
    }
    log.info('request completed', { method: request.method, route: instance, status: response.status ?? 200, durationMs: Date.now() - started });
    return withCorrelation(response, correlationId);
  };
  Object.defineProperty(handler, ROUTE_SPEC, { value: spec });
  return handler;
}

function withCorrelation(res: HttpResponseInit, correlationId: string): HttpResponseInit {
  const headers = new Headers(res.headers as HeadersInit | undefined);
  if (!headers.has('x-correlation-id')) headers.set('x-correlation-id', correlationId);
  return { ...res, headers: Object.fromEntries(headers.entries()) };
}

function parse<T>(schema: Schema<T> | undefined, value: unknown, location: 'path' | 'query' | 'body'): T | Record<string, never> {
  if (!schema) return {};
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  const errors = result.error.issues.map((i) => ({ location, path: i.path.map(String).join('.'), message: i.message }));
  throw new ValidationError(`The request ${location} is invalid.`, errors);
}

async function readJson(request: HttpRequest, maxBytes: number): Promise<unknown> {
  const buf = await readBodyBounded(request, maxBytes);
  if (buf.length === 0) throw new ValidationError('A JSON body is required.', [{ location: 'body', path: '', message: 'empty body' }]);
  const type = request.headers.get('content-type') ?? '';
  if (!/^application\/(?:[a-z.+-]*\+|)json\b/i.test(type)) {
    throw new AppError({ status: 415, code: 'unsupported-media-type', title: 'Unsupported media type', detail: 'Send the body as application/json.' });
  }
  try {
    return JSON.parse(buf.toString('utf8'));
  } catch {
    throw new ValidationError('The body is not valid JSON.', [{ location: 'body', path: '', message: 'malformed JSON' }]);
  }
}

/** JSON answer with no-store caching, the default for management responses. */
export function json(status: number, body: unknown, headers: Record<string, string> = {}): HttpResponseInit {
  return { status, jsonBody: body, headers: { 'Cache-Control': 'no-store', ...headers } };
}
