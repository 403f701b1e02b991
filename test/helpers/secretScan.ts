import { appendFileSync, existsSync, mkdirSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';

/**
 * The secret scan over the whole end-to-end run. Everything lives in one folder named by
 * `ITIL_SECRET_SCAN_DIR` (made by jest's globalSetup; test files, fakes in child processes and runner
 * processes all inherit it), because jest gives each test file its own module registry:
 *  - `secrets.jsonl`: every secret, token, clientState and webhook URL a test or fake created;
 *  - `haystack/*`: what must never contain one: each runner process's whole output, every error body
 *    the tests received, every queue message (the runner's tap of what its workers consumed, and a peek
 *    of what was left when a runner stopped).
 * The scan (`scanForSecrets`) runs as the last test file and again in globalTeardown.
 * Without the variable (a benchmark, a script) every call here is a no-op.
 */
export const SECRET_SCAN_ENV = 'ITIL_SECRET_SCAN_DIR';

/** Shorter values are too likely to occur by chance (a port, a word) to mean a leak. */
const MIN_SECRET_LENGTH = 12;

function scanDir(): string | undefined {
  const dir = process.env[SECRET_SCAN_ENV];
  if (!dir) return undefined;
  mkdirSync(path.join(dir, 'haystack'), { recursive: true });
  return dir;
}

const registered = new Set<string>();

export function registerSecret(value: string | undefined | null, label: string): void {
  const dir = scanDir();
  if (!dir || !value || value.length < MIN_SECRET_LENGTH || registered.has(value)) return;
  registered.add(value);
  appendFileSync(path.join(dir, 'secrets.jsonl'), JSON.stringify({ label, value }) + '\n');
}

/** Appends `text` to the haystack file `source` (a name, e.g. `runner-1234.log`). */
export function recordOutput(source: string, text: string): void {
  const dir = scanDir();
  if (!dir || text.length === 0) return;
  appendFileSync(path.join(dir, 'haystack', source.replace(/[^A-Za-z0-9._-]/g, '_')), text);
}

/** A file for the runner's queue tap (`RUNNER_QUEUE_TAP_FILE`), inside the haystack; undefined when off. */
export function queueTapFile(name: string): string | undefined {
  const dir = scanDir();
  return dir ? path.join(dir, 'haystack', `queue-tap-${name.replace(/[^A-Za-z0-9._-]/g, '_')}.jsonl`) : undefined;
}

export interface SecretHit {
  label: string;
  source: string;
  /** Where in the source, with the secret itself masked. */
  context: string;
}

/** Every registered secret found in the haystack, in its raw, URL-encoded or JSON-escaped form. */
export function scanForSecrets(dir = process.env[SECRET_SCAN_ENV]): { secrets: number; sources: number; bytes: number; hits: SecretHit[] } {
  if (!dir || !existsSync(path.join(dir, 'secrets.jsonl'))) return { secrets: 0, sources: 0, bytes: 0, hits: [] };
  const secrets = new Map<string, string>();
  for (const line of readFileSync(path.join(dir, 'secrets.jsonl'), 'utf8').split('\n')) {
    if (!line) continue;
    const { label, value } = JSON.parse(line) as { label: string; value: string };
    secrets.set(value, label);
  }
  const hay = path.join(dir, 'haystack');
  const files = existsSync(hay) ? readdirSync(hay).sort() : [];
  const hits: SecretHit[] = [];
  let bytes = 0;
  for (const f of files) {
    const text = readFileSync(path.join(hay, f), 'utf8');
    bytes += text.length;
    for (const [value, label] of secrets) {
      for (const form of new Set([value, encodeURIComponent(value), JSON.stringify(value).slice(1, -1)])) {
        const at = text.indexOf(form);
        if (at < 0) continue;
        const context = (text.slice(Math.max(0, at - 80), at) + '«SECRET»' + text.slice(at + form.length, at + form.length + 80)).replace(/\s+/g, ' ');
        hits.push({ label, source: f, context });
        break;
      }
    }
  }
  return { secrets: secrets.size, sources: files.length, bytes, hits };
}

export function formatHits(hits: SecretHit[]): string {
  return hits.map((h) => `- ${h.label} in ${h.source}: …${h.context}…`).join('\n');
}
