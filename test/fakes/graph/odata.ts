/**
 * Just enough OData for the fake: `$filter` terms joined by `and` (`eq`, `ge`, `gt` on one property),
 * `$select`, and opaque paging state carried in `$skiptoken` / `$deltatoken`.
 */

export interface FilterTerm {
  property: string;
  op: 'eq' | 'ge' | 'gt';
  /** The literal: a quoted string unquoted ('' → '), or the raw token (dates, numbers). */
  value: string;
}

export class ODataError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

const TERM = /^\s*([A-Za-z][A-Za-z0-9/]*)\s+(eq|ge|gt)\s+('(?:[^']|'')*'|[^\s']+)\s*$/;

export function parseFilter(filter: string | null): FilterTerm[] {
  if (filter === null || filter.trim() === '') return [];
  // Split on " and " outside quotes.
  const parts: string[] = [];
  let current = '';
  let inQuote = false;
  for (let i = 0; i < filter.length; i++) {
    const ch = filter[i] as string;
    if (ch === "'") inQuote = !inQuote;
    if (!inQuote && filter.slice(i, i + 5).toLowerCase() === ' and ') {
      parts.push(current);
      current = '';
      i += 4;
      continue;
    }
    current += ch;
  }
  parts.push(current);
  return parts.map((p) => {
    const m = TERM.exec(p);
    if (!m) throw new ODataError(400, 'BadRequest', `Invalid filter clause: ${p.trim()}`);
    const raw = m[3] as string;
    const value = raw.startsWith("'") ? raw.slice(1, -1).replace(/''/g, "'") : raw;
    return { property: m[1] as string, op: m[2] as FilterTerm['op'], value };
  });
}

export function parseSelect(select: string | null): string[] | undefined {
  if (select === null || select.trim() === '') return undefined;
  return select.split(',').map((s) => s.trim()).filter(Boolean);
}

export function encodeState(state: unknown): string {
  return Buffer.from(JSON.stringify(state), 'utf8').toString('base64url');
}

export function decodeState<T>(token: string): T {
  try {
    return JSON.parse(Buffer.from(token, 'base64url').toString('utf8')) as T;
  } catch {
    throw new ODataError(400, 'BadRequest', 'The skip or delta token is invalid.');
  }
}

export function project(obj: Record<string, unknown>, select: string[] | undefined, always: string[] = ['id']): Record<string, unknown> {
  if (!select) return obj;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(obj)) if (k.startsWith('@odata.') || always.includes(k) || select.includes(k)) out[k] = v;
  return out;
}
