import { graphSdk } from './sdk';
import { AppError } from '../../platform/errors';

export function graphStatus(err: unknown): number | undefined {
  if (err instanceof graphSdk().GraphError) return err.statusCode;
  const s = (err as { statusCode?: unknown } | undefined)?.statusCode;
  return typeof s === 'number' ? s : undefined;
}

export function graphCode(err: unknown): string | undefined {
  if (err instanceof graphSdk().GraphError) return err.code ?? undefined;
  return undefined;
}

export const isNotFound = (err: unknown): boolean => graphStatus(err) === 404;

/**
 * A Graph failure as our own error: the status and Graph's code, never the body (which can quote
 * the request) nor a token. 429/5xx stay retryable for the queue.
 */
export function toAppError(err: unknown, what: string): AppError {
  if (err instanceof AppError) return err;
  const status = graphStatus(err);
  const code = graphCode(err);
  const upstream = `${what} failed at Microsoft Graph${status ? ` (HTTP ${status}${code ? `, ${code}` : ''})` : ''}`;
  if (status === 404) return new AppError({ status: 404, code: 'graph-not-found', title: 'Not found in Microsoft 365', detail: upstream });
  if (status === 403 || status === 401) return new AppError({ status: 502, code: 'graph-forbidden', title: 'Microsoft Graph refused the call', detail: `${upstream}; check the app's permissions and admin consent` });
  if (status === 429) return new AppError({ status: 503, code: 'graph-throttled', title: 'Microsoft Graph is throttling this mailbox', detail: upstream, headers: { 'Retry-After': '30' } });
  return new AppError({ status: 502, code: 'graph-error', title: 'Microsoft Graph call failed', detail: upstream });
}
