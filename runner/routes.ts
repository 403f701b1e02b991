/**
 * ASP.NET-style route templates as the Functions host accepts them: literal segments, `{name}`,
 * optional `{name?}`, catch-all `{*name}` and the common constraints (`int`, `long`, `bool`, `guid`,
 * `alpha`, `double`). Matching is case-insensitive on literals, and more literal routes win.
 */

export interface CompiledRoute {
  template: string;
  regex: RegExp;
  params: string[];
  /** Higher is more specific. */
  score: number;
}

const CONSTRAINTS: Record<string, string> = {
  int: '-?\\d+',
  long: '-?\\d+',
  double: '-?\\d+(?:\\.\\d+)?',
  float: '-?\\d+(?:\\.\\d+)?',
  bool: '(?:true|false)',
  guid: '[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}',
  alpha: '[A-Za-z]+',
};

function escapeRe(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

export function compileRoute(prefix: string, route: string): CompiledRoute {
  const template = [prefix, route].filter((p) => p.length > 0).join('/').replace(/\/+/g, '/').replace(/^\/|\/$/g, '');
  const segments = template.split('/').filter((s) => s.length > 0);
  const params: string[] = [];
  let pattern = '^';
  let score = 0;
  for (const seg of segments) {
    const m = /^\{(\*)?([A-Za-z_][A-Za-z0-9_]*)(?::([a-z]+)(?:\([^)]*\))?)?(\?)?\}$/.exec(seg);
    if (!m) {
      if (seg.includes('{')) throw new Error(`Unsupported route segment "${seg}" in "${route}"`);
      pattern += '/' + escapeRe(seg);
      score += 3;
      continue;
    }
    const [, catchAll, name, constraint, optional] = m;
    params.push(name as string);
    if (catchAll) {
      pattern += `(?:/(?<${name}>.*))?`;
      continue;
    }
    if (constraint && !CONSTRAINTS[constraint]) throw new Error(`Unsupported route constraint "${constraint}" in "${route}"`);
    const body = constraint ? (CONSTRAINTS[constraint] as string) : '[^/]+';
    pattern += optional ? `(?:/(?<${name}>${body}))?` : `/(?<${name}>${body})`;
    score += constraint ? 2 : 1;
  }
  pattern += '/?$';
  return { template, regex: new RegExp(pattern, 'i'), params, score };
}

export function matchRoute(route: CompiledRoute, pathname: string): Record<string, string> | undefined {
  const m = route.regex.exec(pathname);
  if (!m) return undefined;
  const out: Record<string, string> = {};
  for (const name of route.params) {
    const v = m.groups?.[name];
    if (v !== undefined) out[name] = decodeURIComponent(v);
  }
  return out;
}
