import type { HttpResponseInit } from '@azure/functions';
import { AppError } from '../errors';
import { redactValue } from '../logging';

export const PROBLEM_CONTENT_TYPE = 'application/problem+json';
const TYPE_BASE = 'https://itil-next.dev/problems/';

/** RFC 7807 problem details; `correlationId` lets an operator find the logs for a failed call. */
export interface Problem {
  type: string;
  title: string;
  status: number;
  detail?: string;
  instance?: string;
  correlationId?: string;
  [extension: string]: unknown;
}

export function problemResponse(err: unknown, ctx: { instance?: string; correlationId?: string } = {}): HttpResponseInit {
  const problem: Problem =
    err instanceof AppError && err.expose
      ? {
          ...(redactValue(err.extensions) as Record<string, unknown>),
          type: TYPE_BASE + err.code,
          title: err.title,
          status: err.status,
          detail: err.message,
        }
      : err instanceof AppError
        ? { type: TYPE_BASE + err.code, title: err.title, status: err.status, detail: 'The service could not complete the request. Retry later.' }
        : // Unknown errors may carry anything (SDK messages echo URLs and headers); the body says nothing of them.
          { type: TYPE_BASE + 'internal-error', title: 'Internal error', status: 500, detail: 'An unexpected error occurred.' };
  if (ctx.instance) problem.instance = ctx.instance;
  if (ctx.correlationId) problem.correlationId = ctx.correlationId;
  return {
    status: problem.status,
    headers: {
      'Content-Type': PROBLEM_CONTENT_TYPE,
      'Cache-Control': 'no-store',
      ...(err instanceof AppError ? err.headers : {}),
      ...(ctx.correlationId ? { 'x-correlation-id': ctx.correlationId } : {}),
    },
    body: JSON.stringify(problem),
  };
}
