import { redactString, redactValue } from './redact';

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';

/** Where log lines go: the invocation context's methods in a function, the console elsewhere. */
export interface LogSink {
  debug(message: string): void;
  info(message: string): void;
  warn(message: string): void;
  error(message: string): void;
}

/** Correlation fields every line carries when known. */
export interface LogFields {
  tenantId?: string;
  integrationId?: string;
  correlationId?: string;
  invocationId?: string;
  functionName?: string;
  [key: string]: unknown;
}

const ORDER: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

/**
 * Structured logger: one JSON object per line, fields redacted before they leave the process. The only
 * way code logs, so the redaction test can cover every path by covering this class.
 */
export class Logger {
  constructor(
    private readonly sink: LogSink,
    private readonly fields: LogFields = {},
    private readonly minLevel: LogLevel = 'info',
  ) {}

  child(fields: LogFields): Logger {
    return new Logger(this.sink, { ...this.fields, ...fields }, this.minLevel);
  }

  debug(message: string, fields?: Record<string, unknown>): void {
    this.write('debug', message, fields);
  }
  info(message: string, fields?: Record<string, unknown>): void {
    this.write('info', message, fields);
  }
  warn(message: string, fields?: Record<string, unknown>): void {
    this.write('warn', message, fields);
  }
  error(message: string, fields?: Record<string, unknown>): void {
    this.write('error', message, fields);
  }

  private write(level: LogLevel, message: string, fields?: Record<string, unknown>): void {
    if (ORDER[level] < ORDER[this.minLevel]) return;
    const record = redactValue({ level, msg: message, ...this.fields, ...fields }) as Record<string, unknown>;
    // JSON.stringify output is re-checked: a secret split across fields must not reassemble in the line.
    this.sink[level](redactString(JSON.stringify(record)));
  }
}

export const consoleSink: LogSink = {
  debug: (m) => console.debug(m),
  info: (m) => console.info(m),
  warn: (m) => console.warn(m),
  error: (m) => console.error(m),
};

/** Adapts an `InvocationContext` (or anything with the same log methods) to a sink. */
export function contextSink(ctx: { debug(...a: unknown[]): void; info(...a: unknown[]): void; warn(...a: unknown[]): void; error(...a: unknown[]): void }): LogSink {
  return {
    debug: (m) => ctx.debug(m),
    info: (m) => ctx.info(m),
    warn: (m) => ctx.warn(m),
    error: (m) => ctx.error(m),
  };
}
