import type { HttpRequest, HttpResponseInit } from '@azure/functions';
import { ValidationError } from '../../platform/errors';
import { readBodyBounded } from '../../platform/http/body';
import type { Logger } from '../../platform/logging';
import { acceptNotifications, MAX_NOTIFICATION_BYTES, MAX_VALIDATION_TOKEN_LENGTH, type NotificationKind } from './notifications';
import type { GraphServices } from './services';

/**
 * Graph's validation handshake: a POST with `?validationToken=…`; the answer is 200 text/plain with
 * the URL-decoded token (the query parser has decoded it), within 10 s. Undefined when this is not one.
 */
export function validationResponse(request: HttpRequest): HttpResponseInit | undefined {
  const token = request.query.get('validationToken');
  if (token === null) return undefined;
  if (token.length === 0 || token.length > MAX_VALIDATION_TOKEN_LENGTH) {
    throw new ValidationError('The validationToken is empty or too long.', [{ location: 'query', path: 'validationToken', message: `1 to ${MAX_VALIDATION_TOKEN_LENGTH} characters` }]);
  }
  return {
    status: 200,
    body: token,
    headers: { 'Content-Type': 'text/plain; charset=utf-8', 'X-Content-Type-Options': 'nosniff', 'Cache-Control': 'no-store' },
  };
}

/** The delivery body as text; 413 (`PayloadTooLargeError`) when it is larger than any Graph delivery. */
async function readNotificationBody(request: HttpRequest): Promise<string> {
  return (await readBodyBounded(request, MAX_NOTIFICATION_BYTES)).toString('utf8');
}

/**
 * One request to a Graph notification URL (change or lifecycle): the validation handshake, or a delivery
 * whose verified items are queued before 202 goes back.
 */
export async function receiveNotificationRequest(gs: GraphServices, request: HttpRequest, kind: NotificationKind, log: Logger): Promise<HttpResponseInit> {
  const validation = validationResponse(request);
  if (validation) return validation;
  const raw = await readNotificationBody(request);
  const { status } = await acceptNotifications(gs, raw, kind, log);
  // A refusal is problem JSON like every other error of the API (Graph only reads the status).
  if (status === 400) throw new ValidationError('The body is not a Microsoft Graph notification delivery.', [{ location: 'body', path: '', message: 'malformed JSON or not {"value": [...]}' }]);
  return { status };
}
