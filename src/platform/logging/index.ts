export { Logger, consoleSink, contextSink } from './logger';
export type { LogFields, LogLevel, LogSink } from './logger';
export { registerSecret, redactString, redactValue, knownSecretCount } from './redact';
