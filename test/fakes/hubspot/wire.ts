import { randomUUID } from 'node:crypto';
import type { z } from 'zod';

/** What a route handler answers; the server adds rate-limit and correlation headers. */
export interface Reply {
  status: number;
  headers: Record<string, string>;
  /** Serialised body; undefined means no body (204, revoke). */
  body: string | undefined;
}

export const JSON_TYPE = 'application/json;charset=utf-8';

export function json(status: number, body: unknown, headers: Record<string, string> = {}): Reply {
  return { status, headers: { 'content-type': JSON_TYPE, ...headers }, body: JSON.stringify(body) };
}

export function empty(status: number): Reply {
  return { status, headers: {}, body: undefined };
}

/** HubSpot's error body: `{status:'error', message, correlationId, category, ...}`; every field but status is optional in the docs. */
export function hubspotError(status: number, category: string, message: string, extra: Record<string, unknown> = {}): Reply {
  return json(status, { status: 'error', message, correlationId: randomUUID(), category, ...extra });
}

export function notFound(message = 'resource not found'): Reply {
  return hubspotError(404, 'OBJECT_NOT_FOUND', message);
}

export function validationError(message: string, errors?: Array<{ message: string; in?: string; code?: string }>): Reply {
  return hubspotError(400, 'VALIDATION_ERROR', message, errors ? { errors } : {});
}

/** OAuth errors carry RFC 6749 `error`/`error_description` next to HubSpot's legacy `status`/`message`. */
export function oauthError(httpStatus: number, error: string, status: string, description: string): Reply {
  return json(httpStatus, { error, error_description: description, status, message: description, correlationId: randomUUID() });
}

export function zodErrors(e: z.ZodError): Array<{ message: string; in: string }> {
  return e.issues.map((i) => ({ message: i.message, in: i.path.join('.') }));
}

export class ReplyError extends Error {
  constructor(readonly reply: Reply) {
    super(`fake HubSpot reply ${reply.status}`);
  }
}

/** Parses with a schema or throws a 400 HubSpot validation reply. */
export function parseOr400<T>(schema: z.ZodType<T>, value: unknown, what: string): T {
  const parsed = schema.safeParse(value);
  if (!parsed.success) throw new ReplyError(validationError(`Invalid input for ${what}`, zodErrors(parsed.error)));
  return parsed.data;
}

export const iso = (ms: number): string => new Date(ms).toISOString();
