import { ValidationError } from '../errors';

const IDEMPOTENCY_KEY = /^[A-Za-z0-9._:-]{1,128}$/;

/**
 * The optional `Idempotency-Key` request header (IETF httpapi-idempotency-key-header): the caller's name for
 * one logical request, the same on each of its retries. Undefined when absent; a 400 when malformed.
 */
export function idempotencyKeyOf(headers: { get(name: string): string | null }): string | undefined {
  const key = headers.get('idempotency-key') ?? undefined;
  if (key !== undefined && !IDEMPOTENCY_KEY.test(key)) {
    throw new ValidationError('The Idempotency-Key header is invalid.', [{ location: 'header', path: 'idempotency-key', message: '1-128 of letters, digits, ".", "_", ":" or "-"' }]);
  }
  return key;
}
