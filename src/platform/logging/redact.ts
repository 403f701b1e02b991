/**
 * Masks secrets before anything is logged or returned. Three nets, because each misses something the
 * others catch: known values (every secret the app reads is registered), sensitive field names, and
 * shapes (bearer tokens, JWTs, credential query parameters, Teams/Workflows webhook URLs, storage keys).
 */

const MASK = '[REDACTED]';
const MIN_SECRET_LENGTH = 6;

// Known values are looked up by their first characters while scanning a line once: a regex alternation
// over thousands of rotating tokens would cost O(line × secrets) on every log call. Bounded (oldest
// forgotten first) because access tokens rotate forever.
const MAX_KNOWN = 5_000;
const PREFIX = MIN_SECRET_LENGTH;
const knownSecrets = new Set<string>();
const byPrefix = new Map<string, string[]>();

/** Registers a value that must never appear in output (a token, a client secret, a webhook URL). */
export function registerSecret(value: string | undefined | null): void {
  if (!value || value.length < MIN_SECRET_LENGTH) return;
  if (knownSecrets.has(value)) {
    knownSecrets.delete(value);
    knownSecrets.add(value);
    return;
  }
  knownSecrets.add(value);
  const key = value.slice(0, PREFIX);
  const list = byPrefix.get(key) ?? [];
  list.push(value);
  list.sort((a, b) => b.length - a.length);
  byPrefix.set(key, list);
  if (knownSecrets.size > MAX_KNOWN) {
    const oldest = knownSecrets.values().next().value as string;
    knownSecrets.delete(oldest);
    const k = oldest.slice(0, PREFIX);
    const rest = (byPrefix.get(k) ?? []).filter((v) => v !== oldest);
    if (rest.length) byPrefix.set(k, rest);
    else byPrefix.delete(k);
  }
}

export function knownSecretCount(): number {
  return knownSecrets.size;
}

function maskKnown(input: string): string {
  if (byPrefix.size === 0 || input.length < PREFIX) return input;
  let out = '';
  let i = 0;
  let copied = 0;
  while (i <= input.length - PREFIX) {
    const candidates = byPrefix.get(input.slice(i, i + PREFIX));
    const hit = candidates?.find((c) => input.startsWith(c, i));
    if (hit) {
      out += input.slice(copied, i) + MASK;
      i += hit.length;
      copied = i;
    } else {
      i++;
    }
  }
  return out + input.slice(copied);
}

const SENSITIVE_KEY = /(secret|token|passw|pwd|authorization|api[-_]?key|apikey|webhook[-_]?url|cookie|signature|client[-_]?state|account[-_]?key|connection[-_]?string|refresh[-_]?token|credential|private[-_]?key|^code$|^sig$)/i;

const SHAPES: Array<[RegExp, string]> = [
  // Teams incoming webhooks and Workflows (Power Automate / Logic Apps) trigger URLs are credentials.
  [/https?:\/\/[^\s"'<>]*(?:webhook\.office\.com|\.logic\.azure\.com|powerplatform\.com|powerautomate\.com)[^\s"'<>]*/gi, '[REDACTED-WEBHOOK-URL]'],
  [/\bBearer\s+[A-Za-z0-9._~+/=-]+/gi, 'Bearer ' + MASK],
  [/\beyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*/g, MASK],
  [/([?&](?:code|sig|signature|token|access_token|refresh_token|id_token|client_secret|key|state|validationToken)=)[^&\s"'<>]+/gi, `$1${MASK}`],
  // The id in a Teams snooze link is its capability (single-use, 24 h).
  [/(\/api\/teams\/snooze\/[^/\s"'<>?]+\/)[A-Za-z0-9_-]{22}(?![A-Za-z0-9_-])/g, `$1${MASK}`],
  [/\b(AccountKey|SharedAccessKey|SharedAccessSignature|Password|pwd)=[^;\s"']+/gi, `$1=${MASK}`],
  // HubSpot private-app tokens.
  [/\bpat-[a-z0-9]{2,4}-[A-Za-z0-9-]{20,}/g, MASK],
];

export function redactString(input: string): string {
  let out = maskKnown(input);
  for (const [re, replacement] of SHAPES) out = out.replace(re, replacement);
  return out;
}

/** Deep copy with secrets masked; safe to JSON.stringify (handles cycles, errors, buffers). */
export function redactValue(value: unknown, seen: WeakSet<object> = new WeakSet()): unknown {
  if (value === null || value === undefined) return value;
  if (typeof value === 'string') return redactString(value);
  if (typeof value === 'number' || typeof value === 'boolean') return value;
  if (typeof value === 'bigint') return value.toString();
  if (typeof value === 'function' || typeof value === 'symbol') return undefined;
  if (value instanceof Date) return value.toISOString();
  if (Buffer.isBuffer(value) || value instanceof Uint8Array) return `[${value.byteLength} bytes]`;
  if (typeof value !== 'object') return undefined;
  if (seen.has(value)) return '[Circular]';
  seen.add(value);
  if (value instanceof Error) {
    const out: Record<string, unknown> = { name: value.name, message: redactString(value.message) };
    if (value.stack) out.stack = redactString(value.stack);
    const code = (value as { code?: unknown }).code;
    if (typeof code === 'string' || typeof code === 'number') out.code = code;
    const status = (value as { status?: unknown; statusCode?: unknown }).status ?? (value as { statusCode?: unknown }).statusCode;
    if (typeof status === 'number') out.status = status;
    if (value.cause !== undefined) out.cause = redactValue(value.cause, seen);
    return out;
  }
  if (Array.isArray(value)) return value.map((v) => redactValue(v, seen));
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) {
    out[k] = SENSITIVE_KEY.test(k) && v !== null && v !== undefined && v !== '' ? MASK : redactValue(v, seen);
  }
  return out;
}
