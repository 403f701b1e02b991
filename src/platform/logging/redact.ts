/**
 * Masks secrets before anything is logged or returned. Three nets, because each misses something the
 * others catch: known values (every secret the app reads is registered), sensitive field names, and
 * shapes (bearer tokens, JWTs, credential query parameters, Teams/Workflows webhook URLs, storage keys).
 * What an operator needs is kept: statuses, ids and error codes (the `code` rule is at `maskField`).
 * Linear in the text redacted (see the shapes), and string fields are bounded (`MAX_FIELD_CHARS`).
 */

const MASK = '[REDACTED]';
const SPACE = /\s/;
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

// `code` and `state` are deliberately not here: see `maskField` below.
const SENSITIVE_KEY = /(secret|token|passw|pwd|authorization|auth[-_]?code|api[-_]?key|apikey|webhook[-_]?url|cookie|signature|client[-_]?state|account[-_]?key|connection[-_]?string|refresh[-_]?token|credential|private[-_]?key|code[-_]?verifier|^sig$)/i;

/*
 * Every pattern below runs in time linear in its input, by construction, because log text is untrusted
 * (upstream bodies, subjects, URLs) and the logger is on every request path of every tenant: one
 * quadratic pattern on a 70 KB message stalls the shared worker for seconds. `safe-regex2` only rules
 * out nested quantifiers; it passed two patterns that were still quadratic (an unanchored
 * `https?://[^\s]*host` and `\beyJ[\w-]{5,}\.` restart a scan at every `http://` / `-eyJ` and read to
 * the end of the token each time). Those two are therefore not regexes over the line any more: a run of
 * candidate characters is matched once by a single-class regex (`[^\s"'<>]+`, `[\w.-]+`: each character
 * is read once, a failed attempt costs one character) and a callback decides on the whole run with a
 * fixed number of linear passes. They mask exactly what the old regexes masked (property-tested against
 * them). `Bearer` is found by `\bBearer\s+`, whose failed attempts end inside a six-letter word, and the
 * token after it is read once. The remaining shapes stay regexes: each attempt either fails within a
 * bounded number of characters (a literal parameter name of at most 21, or `pat-` and 27 more) or
 * succeeds and consumes what it read, so no character is read more than a bounded number of times.
 * Registered values cost one map lookup per position plus the values sharing those six characters.
 */
const WEBHOOK_MASK = '[REDACTED-WEBHOOK-URL]';
const URL_RUN = /[^\s"'<>]+/g;
const URL_SCHEME = /https?:\/\//i;
// Teams incoming webhooks and Workflows (Power Automate / Logic Apps) trigger URLs are credentials.
const WEBHOOK_HOST = /webhook\.office\.com|\.logic\.azure\.com|powerplatform\.com|powerautomate\.com/i;

/** From the first `http(s)://` of a run to the run's end, when a webhook host follows that scheme. */
function maskWebhookUrls(input: string): string {
  return input.replace(URL_RUN, (run) => {
    const scheme = URL_SCHEME.exec(run);
    if (!scheme) return run;
    // The first scheme is the only one to try: any later scheme's tail is part of the first one's.
    return WEBHOOK_HOST.test(run.slice(scheme.index + scheme[0].length)) ? run.slice(0, scheme.index) + WEBHOOK_MASK : run;
  });
}

const JWT_RUN = /[A-Za-z0-9_.-]+/g;

/** Index of the first `eyJ` at a word boundary in a dot-free part (at its start or after a `-`), or -1. */
function jwtStart(part: string): number {
  for (let i = part.indexOf('eyJ'); i >= 0; i = part.indexOf('eyJ', i + 1)) if (i === 0 || part[i - 1] === '-') return i;
  return -1;
}

/**
 * JWT-shaped text: `eyJ` + at least 5 base64url characters, `.`, at least 5, `.`, any number. A run of
 * base64url-and-dot characters is split at its dots once; a token starts in part k and covers parts k,
 * k+1 and k+2. Only the first `eyJ` of a part can start one (a later one has less of the part left and
 * the same parts after it), so each part is looked at once.
 */
function maskJwts(input: string): string {
  return input.replace(JWT_RUN, (run) => {
    if (!run.includes('eyJ')) return run;
    const parts = run.split('.');
    const out: string[] = [];
    let k = 0;
    while (k < parts.length) {
      const part = parts[k] as string;
      const at = jwtStart(part);
      if (at >= 0 && part.length - at >= 8 && k + 2 < parts.length && (parts[k + 1] as string).length >= 5) {
        out.push(part.slice(0, at) + MASK);
        k += 3;
      } else {
        out.push(part);
        k++;
      }
    }
    return out.join('.');
  });
}

const BEARER_WORD = /\bBearer\s+/gi;
const BEARER_TOKEN = /[A-Za-z0-9._~+/=-]+/y;

/**
 * `Bearer <token>` → `Bearer [REDACTED]`. Scanned match by match instead of one regex so that a repeated
 * prefix (`Bearer Bearer <token>`, a header built twice) masks the token and not the second word; a
 * regex for that needs a quantified group holding a quantifier. Each match and each token is read once.
 */
function maskBearer(input: string): string {
  let out = '';
  let copied = 0;
  BEARER_WORD.lastIndex = 0;
  for (let m = BEARER_WORD.exec(input); m; m = BEARER_WORD.exec(input)) {
    const end = m.index + m[0].length;
    BEARER_TOKEN.lastIndex = end;
    const token = BEARER_TOKEN.exec(input);
    if (!token) continue;
    // Another `Bearer` followed by whitespace: the secret comes after it, and the next match masks it.
    const next = input.slice(end, end + 6).toLowerCase() === 'bearer' && token[0].length === 6 && SPACE.test(input.charAt(end + 6));
    if (next) continue;
    out += input.slice(copied, m.index) + 'Bearer ' + MASK;
    copied = end + token[0].length;
    BEARER_WORD.lastIndex = copied;
  }
  return copied === 0 ? input : out + input.slice(copied);
}

const SHAPES: Array<[RegExp, string]> = [
  [/([?&](?:code|sig|signature|token|access_token|refresh_token|id_token|client_secret|key|state|validationToken)=)[^&\s"'<>]+/gi, `$1${MASK}`],
  // The id in a Teams snooze link is its capability (single-use, 24 h).
  [/(\/api\/teams\/snooze\/[^/\s"'<>?]+\/)[A-Za-z0-9_-]{22}(?![A-Za-z0-9_-])/g, `$1${MASK}`],
  [/\b(AccountKey|SharedAccessKey|SharedAccessSignature|Password|pwd)=[^;\s"']+/gi, `$1=${MASK}`],
  // HubSpot private-app tokens.
  [/\bpat-[a-z0-9]{2,4}-[A-Za-z0-9-]{20,}/g, MASK],
];

/** Masks registered values and secret shapes in free text. Linear in the length of `input`. */
export function redactString(input: string): string {
  // The order of the shapes is the order they always had; each later one sees the earlier masks.
  let out = maskBearer(maskWebhookUrls(maskKnown(input)));
  out = maskJwts(out);
  for (const [re, replacement] of SHAPES) out = out.replace(re, replacement);
  return out;
}

/**
 * Longest string field kept in a log record. Redaction is linear, so this is about log volume (and a
 * second bound on the work per field), not about safety. The cut steps back to the whitespace before
 * the token it would split, so half a secret (half a JWT, the first characters of a registered value)
 * is never kept where the shapes and the known-value lookup could no longer recognise it.
 */
export const MAX_FIELD_CHARS = 16 * 1024;

function bounded(input: string): string {
  if (input.length <= MAX_FIELD_CHARS) return input;
  let cut = MAX_FIELD_CHARS;
  if (!SPACE.test(input.charAt(cut))) while (cut > 0 && !SPACE.test(input.charAt(cut - 1))) cut--;
  return `${input.slice(0, cut)}…[truncated ${input.length - cut} characters]`;
}

/** What is written for a string field: bounded, then redacted. */
function redactField(input: string): string {
  return redactString(bounded(input));
}

/*
 * `code` fields: an operator needs the error code of a refused request (`integration-not-active`,
 * `AADSTS50020`, `invalid_grant`, `ErrorItemNotFound`, `403`), but OAuth calls its authorization code
 * `code` too. The rule: a `code` is kept when it is a number, or a string of at most 64 characters made
 * of up to 8 segments (split at `-`, `_`, `.`, `:`), each of them letters followed by digits (either
 * part may be empty, digits at most 6) with at most one lower-to-upper case switch per 5 letters (words
 * in CamelCase have few, random text has many). Anything else (long, base64/hex-like, digits and
 * letters interleaved, random case) is masked, and so is every `code` or `state` in an OAuth context:
 * an object holding both `code` and `state`, or an OAuth sibling (`redirect_uri`, `grant_type`, ...),
 * or one held under a `query`, `params`, `form`, `searchParams`, `oauth` or `callback` field. A
 * `state` anywhere else (an integration's state) is kept. A kept code is still redacted
 * as text (registered secrets, shapes). OAuth parameters inside URLs and query strings are masked by the
 * query-parameter shape whatever their field.
 */
const MAX_CODE_CHARS = 64;
const MAX_CODE_SEGMENTS = 8;
const CODE_SEPARATOR = /[-_.:]/;
const CODE_SEGMENT = /^[A-Za-z]*\d{0,6}$/;
const CASE_SWITCH = /[a-z][A-Z]/g;
const LETTER = /[A-Za-z]/g;
const OAUTH_SIBLINGS = new Set(['redirect_uri', 'redirecturi', 'grant_type', 'granttype', 'session_state', 'code_verifier', 'client_id', 'admin_consent']);
const OAUTH_CONTAINERS = new Set(['query', 'params', 'form', 'searchparams', 'oauth', 'callback', 'querystring']);

export function looksLikeErrorCode(value: string): boolean {
  if (value.length === 0 || value.length > MAX_CODE_CHARS) return false;
  const segments = value.split(CODE_SEPARATOR);
  if (segments.length > MAX_CODE_SEGMENTS) return false;
  return segments.every((s) => {
    if (s.length === 0 || !CODE_SEGMENT.test(s)) return false;
    const letters = (s.match(LETTER) ?? []).length;
    const switches = (s.match(CASE_SWITCH) ?? []).length;
    return switches * 5 <= letters;
  });
}

function isOAuthContext(value: object, parentKey: string | undefined): boolean {
  if (parentKey !== undefined && OAUTH_CONTAINERS.has(parentKey.toLowerCase())) return true;
  const keys = Object.keys(value).map((k) => k.toLowerCase());
  // `code` next to `state` is the shape of an OAuth callback.
  return keys.some((k) => OAUTH_SIBLINGS.has(k)) || (keys.includes('code') && keys.includes('state'));
}

function maskField(key: string, value: unknown, oauth: boolean): boolean {
  if (value === null || value === undefined || value === '') return false;
  if (SENSITIVE_KEY.test(key)) return true;
  const k = key.toLowerCase();
  if (k === 'state') return oauth;
  if (k !== 'code') return false;
  if (oauth) return true;
  if (typeof value === 'number') return false;
  if (typeof value === 'string') return !looksLikeErrorCode(value);
  return false;
}

/** Deep copy with secrets masked; safe to JSON.stringify (handles cycles, errors, buffers). */
export function redactValue(value: unknown, seen: WeakSet<object> = new WeakSet(), parentKey?: string): unknown {
  if (value === null || value === undefined) return value;
  if (typeof value === 'string') return redactField(value);
  if (typeof value === 'number' || typeof value === 'boolean') return value;
  if (typeof value === 'bigint') return value.toString();
  if (typeof value === 'function' || typeof value === 'symbol') return undefined;
  if (value instanceof Date) return value.toISOString();
  if (Buffer.isBuffer(value) || value instanceof Uint8Array) return `[${value.byteLength} bytes]`;
  if (typeof value !== 'object') return undefined;
  if (seen.has(value)) return '[Circular]';
  seen.add(value);
  if (value instanceof Error) {
    const out: Record<string, unknown> = { name: value.name, message: redactField(value.message) };
    if (value.stack) out.stack = redactField(value.stack);
    const code = (value as { code?: unknown }).code;
    if (typeof code === 'number') out.code = code;
    else if (typeof code === 'string') out.code = looksLikeErrorCode(code) ? redactString(code) : MASK;
    const status = (value as { status?: unknown; statusCode?: unknown }).status ?? (value as { statusCode?: unknown }).statusCode;
    if (typeof status === 'number') out.status = status;
    if (value.cause !== undefined) out.cause = redactValue(value.cause, seen);
    return out;
  }
  if (Array.isArray(value)) return value.map((v) => redactValue(v, seen, parentKey));
  const oauth = isOAuthContext(value, parentKey);
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) out[k] = maskField(k, v, oauth) ? MASK : redactValue(v, seen, k);
  return out;
}
