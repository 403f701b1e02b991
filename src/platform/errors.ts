/**
 * Errors the app raises on purpose. `expose` separates user errors (safe to describe to the caller,
 * mapped to a 4xx problem) from system errors (logged with details, answered with a generic 5xx),
 * after the system/user split in Azure/azure-functions-nodejs-library.
 */
export class AppError extends Error {
  readonly status: number;
  /** A stable, machine-readable slug; becomes the problem `type`. */
  readonly code: string;
  readonly title: string;
  /** Safe extra members for the problem body (e.g. validation errors). Never secrets. */
  readonly extensions: Record<string, unknown>;
  readonly expose: boolean;
  readonly headers: Record<string, string>;

  constructor(opts: {
    status: number;
    code: string;
    title: string;
    detail?: string;
    extensions?: Record<string, unknown>;
    headers?: Record<string, string>;
    cause?: unknown;
  }) {
    super(opts.detail ?? opts.title, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = new.target.name;
    this.status = opts.status;
    this.code = opts.code;
    this.title = opts.title;
    this.extensions = opts.extensions ?? {};
    this.headers = opts.headers ?? {};
    this.expose = opts.status < 500;
  }
}

export class ValidationError extends AppError {
  constructor(detail: string, errors: Array<{ location: string; path: string; message: string }>) {
    super({ status: 400, code: 'validation-error', title: 'Request is invalid', detail, extensions: { errors } });
  }
}

export class UnauthorizedError extends AppError {
  constructor(detail: string) {
    super({
      status: 401,
      code: 'unauthorized',
      title: 'Authentication required',
      detail,
      headers: { 'WWW-Authenticate': 'Bearer realm="itil-next-connectors"' },
    });
  }
}

export class ForbiddenError extends AppError {
  constructor(detail: string) {
    super({ status: 403, code: 'forbidden', title: 'Not allowed for this tenant', detail });
  }
}

export class NotFoundError extends AppError {
  constructor(detail: string) {
    super({ status: 404, code: 'not-found', title: 'Not found', detail });
  }
}

export class ConflictError extends AppError {
  constructor(detail: string, cause?: unknown) {
    super({ status: 409, code: 'conflict', title: 'Conflict', detail, cause });
  }
}

/** A conditional write lost a race (stale ETag). */
export class PreconditionFailedError extends AppError {
  constructor(detail: string, cause?: unknown) {
    super({ status: 412, code: 'precondition-failed', title: 'The resource changed', detail, cause });
  }
}

/** A key or id that Table Storage or our key scheme cannot hold. */
export class InvalidKeyError extends AppError {
  constructor(detail: string) {
    super({ status: 400, code: 'invalid-key', title: 'Invalid identifier', detail });
  }
}

export class ServiceUnavailableError extends AppError {
  constructor(detail: string, retryAfterSeconds?: number) {
    super({
      status: 503,
      code: 'service-unavailable',
      title: 'Service unavailable',
      detail,
      headers: retryAfterSeconds ? { 'Retry-After': String(retryAfterSeconds) } : {},
    });
  }
}

/** Normalises anything thrown into an Error. */
export function ensureError(err: unknown): Error {
  if (err instanceof Error) return err;
  return new Error(typeof err === 'string' ? err : 'Non-error value thrown');
}
