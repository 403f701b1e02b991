/**
 * Just enough of Bicep's syntax to read our own infra/ files as text, without a compiler: comments, strings
 * (with ${} interpolation and ''' blocks), brackets, and the shape of param / var / resource / module / output
 * declarations with their object literals. Values stay as raw expression text; nothing is evaluated.
 *
 * It only has to understand the subset of Bicep infra/ uses; anything it cannot read makes a check fail
 * loudly rather than pass quietly.
 */

export type BicepValue =
  | { kind: 'object'; entries: Map<string, BicepValue>; raw: string; start: number; end: number }
  | { kind: 'array'; items: BicepValue[]; raw: string; start: number; end: number }
  | { kind: 'expr'; raw: string; start: number; end: number };

export interface Decorator {
  name: string;
  args: string;
}

export interface ParamDecl {
  name: string;
  type: string;
  default?: BicepValue;
  decorators: Decorator[];
}

export interface ResourceDecl {
  symbol: string;
  type: string;
  apiVersion: string;
  existing: boolean;
  /** Text between `=` and the body's `{`, e.g. `if (cond)` or `[for x in xs:`. */
  head: string;
  body: Extract<BicepValue, { kind: 'object' }>;
}

export interface ModuleDecl {
  symbol: string;
  path: string;
  body: Extract<BicepValue, { kind: 'object' }>;
}

export interface OutputDecl {
  name: string;
  type: string;
  value: BicepValue;
}

export interface BicepFile {
  /** Path relative to the repository root, with forward slashes. */
  rel: string;
  text: string;
  /** `text` with comments blanked to spaces (same length, newlines kept). */
  code: string;
  /** inString[i]: character i belongs to a string literal (quotes and interpolations included). */
  inString: boolean[];
  params: Map<string, ParamDecl>;
  vars: Map<string, BicepValue>;
  resources: ResourceDecl[];
  modules: ModuleDecl[];
  outputs: Map<string, OutputDecl>;
}

type Frame = { kind: 'code'; depth: number } | { kind: 'string' } | { kind: 'multi' };

/** Blanks comments and marks string characters, following strings into interpolations and back. */
export function lex(text: string): { code: string; inString: boolean[] } {
  const out = text.split('');
  const inString: boolean[] = new Array<boolean>(text.length).fill(false);
  const stack: Frame[] = [{ kind: 'code', depth: 0 }];
  let i = 0;
  const inAnyString = () => stack.some((f) => f.kind !== 'code');
  while (i < text.length) {
    const top = stack[stack.length - 1] as Frame;
    const c = text[i];
    if (top.kind === 'multi') {
      inString[i] = true;
      if (text.startsWith("'''", i)) {
        inString[i + 1] = inString[i + 2] = true;
        stack.pop();
        i += 3;
      } else i += 1;
      continue;
    }
    if (top.kind === 'string') {
      inString[i] = true;
      if (c === '\\') {
        if (i + 1 < text.length) inString[i + 1] = true;
        i += 2;
      } else if (text.startsWith('${', i)) {
        inString[i + 1] = true;
        stack.push({ kind: 'code', depth: 0 });
        i += 2;
      } else {
        if (c === "'") stack.pop();
        i += 1;
      }
      continue;
    }
    // code (top level, or inside an interpolation)
    const interpolation = stack.length > 1;
    if (interpolation) inString[i] = true;
    // `#disable-next-line rule` is a compiler directive that reads, for this parser, like a comment.
    if (text.startsWith('//', i) || (!interpolation && text.startsWith('#disable-next-line', i))) {
      while (i < text.length && text[i] !== '\n') out[i++] = ' ';
      continue;
    }
    if (text.startsWith('/*', i)) {
      const close = text.indexOf('*/', i + 2);
      const stop = close < 0 ? text.length : close + 2;
      for (; i < stop; i++) if (text[i] !== '\n') out[i] = ' ';
      continue;
    }
    if (text.startsWith("'''", i)) {
      inString[i] = inString[i + 1] = inString[i + 2] = true;
      stack.push({ kind: 'multi' });
      i += 3;
      continue;
    }
    if (c === "'") {
      inString[i] = true;
      stack.push({ kind: 'string' });
      i += 1;
      continue;
    }
    if (interpolation) {
      if (c === '{') top.depth += 1;
      else if (c === '}') {
        if (top.depth === 0) stack.pop();
        else top.depth -= 1;
      }
    }
    i += 1;
  }
  if (inAnyString()) throw new Error('unterminated string literal');
  return { code: out.join(''), inString };
}

const OPEN: Record<string, string> = { '{': '}', '[': ']', '(': ')' };

/** Index of the bracket closing the one at `open`, skipping strings. */
export function matching(code: string, inString: boolean[], open: number): number {
  const stack: string[] = [];
  for (let i = open; i < code.length; i++) {
    if (inString[i]) continue;
    const c = code[i] as string;
    if (c in OPEN) stack.push(OPEN[c] as string);
    else if (c === '}' || c === ']' || c === ')') {
      if (stack.pop() !== c) throw new Error(`unbalanced '${c}' at offset ${i}`);
      if (stack.length === 0) return i;
    }
  }
  throw new Error(`no closing bracket for offset ${open}`);
}

function skipBlank(code: string, i: number, end: number, newlines: boolean): number {
  while (i < end && (code[i] === ' ' || code[i] === '\t' || code[i] === '\r' || (newlines && (code[i] === '\n' || code[i] === ',')))) i++;
  return i;
}

/** Parses the value starting at `i`; it ends at a newline or comma outside brackets, or at `end`. */
export function parseValue(code: string, inString: boolean[], i: number, end: number): BicepValue {
  i = skipBlank(code, i, end, false);
  const c = code[i];
  if (c === '{' || c === '[') {
    const close = matching(code, inString, i);
    // `{ ... } : { ... }` and the like continue an expression past the literal: treat as one expression.
    const after = skipBlank(code, close + 1, end, false);
    if (after < end && code[after] !== '\n' && code[after] !== ',' && !(code[after] === '}' || code[after] === ']')) {
      return parseExpr(code, inString, i, end);
    }
    return c === '{' ? parseObject(code, inString, i) : parseArray(code, inString, i);
  }
  return parseExpr(code, inString, i, end);
}

function parseExpr(code: string, inString: boolean[], start: number, end: number): BicepValue {
  let i = start;
  while (i < end) {
    if (inString[i]) {
      i++;
      continue;
    }
    const c = code[i] as string;
    if (c in OPEN) {
      i = matching(code, inString, i) + 1;
      continue;
    }
    if (c === '\n' || c === ',' || c === '}' || c === ']' || c === ')') break;
    i++;
  }
  return { kind: 'expr', raw: code.slice(start, i).trim(), start, end: i };
}

export function parseObject(code: string, inString: boolean[], open: number): Extract<BicepValue, { kind: 'object' }> {
  const close = matching(code, inString, open);
  const entries = new Map<string, BicepValue>();
  let i = open + 1;
  for (;;) {
    i = skipBlank(code, i, close, true);
    if (i >= close) break;
    let key: string;
    if (code[i] === "'") {
      let j = i + 1;
      while (j < close && inString[j] && !(code[j] === "'" && code[j - 1] !== '\\')) j++;
      key = code.slice(i + 1, j);
      i = j + 1;
    } else {
      const m = /^[A-Za-z_$][\w$]*/.exec(code.slice(i, close));
      if (!m) throw new Error(`cannot read an object key at offset ${i}: ${JSON.stringify(code.slice(i, i + 40))}`);
      key = m[0];
      i += key.length;
    }
    i = skipBlank(code, i, close, false);
    if (code[i] !== ':') throw new Error(`expected ':' after key '${key}' at offset ${i}`);
    const value = parseValue(code, inString, i + 1, close);
    if (entries.has(key)) throw new Error(`duplicate key '${key}' at offset ${i}`);
    entries.set(key, value);
    i = value.end + (value.kind === 'expr' ? 0 : 1);
  }
  return { kind: 'object', entries, raw: code.slice(open, close + 1), start: open, end: close };
}

function parseArray(code: string, inString: boolean[], open: number): Extract<BicepValue, { kind: 'array' }> {
  const close = matching(code, inString, open);
  const items: BicepValue[] = [];
  let i = open + 1;
  for (;;) {
    i = skipBlank(code, i, close, true);
    if (i >= close) break;
    const value = parseValue(code, inString, i, close);
    items.push(value);
    i = value.end + (value.kind === 'expr' ? 0 : 1);
  }
  return { kind: 'array', items, raw: code.slice(open, close + 1), start: open, end: close };
}

/** Parses one .bicep file's declarations. */
export function parseBicep(rel: string, text: string): BicepFile {
  const { code, inString } = lex(text);
  const file: BicepFile = { rel, text, code, inString, params: new Map(), vars: new Map(), resources: [], modules: [], outputs: new Map() };
  let pending: Decorator[] = [];
  let i = 0;
  while (i < code.length) {
    i = skipBlank(code, i, code.length, true);
    if (i >= code.length) break;
    const rest = code.slice(i);
    const lineEnd = code.indexOf('\n', i) < 0 ? code.length : code.indexOf('\n', i);
    let m: RegExpExecArray | null;
    if (rest.startsWith('@')) {
      m = /^@([\w.]+)\s*\(/.exec(rest);
      if (!m) throw new Error(`${rel}: cannot read decorator at offset ${i}`);
      const open = i + m[0].length - 1;
      const close = matching(code, inString, open);
      pending.push({ name: m[1] as string, args: code.slice(open + 1, close).trim() });
      i = close + 1;
      continue;
    }
    if ((m = /^param\s+(\w+)\s+(\w+)[ \t]*(=)?/.exec(rest))) {
      const decl: ParamDecl = { name: m[1] as string, type: m[2] as string, decorators: pending };
      pending = [];
      if (m[3]) {
        decl.default = parseValue(code, inString, i + m[0].length, code.length);
        i = decl.default.end + 1;
      } else i = lineEnd + 1;
      file.params.set(decl.name, decl);
      continue;
    }
    pending = [];
    if ((m = /^var\s+(\w+)\s*=/.exec(rest))) {
      const value = parseValue(code, inString, i + m[0].length, code.length);
      file.vars.set(m[1] as string, value);
      i = value.end + 1;
      continue;
    }
    if ((m = /^resource\s+(\w+)\s+'([^'@]+)@([^']+)'\s+(existing\s+)?=/.exec(rest))) {
      const open = code.indexOf('{', i + m[0].length);
      const body = parseObject(code, inString, open);
      file.resources.push({
        symbol: m[1] as string,
        type: m[2] as string,
        apiVersion: m[3] as string,
        existing: Boolean(m[4]),
        head: code.slice(i + m[0].length, open).trim(),
        body,
      });
      i = declarationEnd(code, inString, i + m[0].length, body);
      continue;
    }
    if ((m = /^module\s+(\w+)\s+'([^']+)'\s*=/.exec(rest))) {
      const open = code.indexOf('{', i + m[0].length);
      const body = parseObject(code, inString, open);
      file.modules.push({ symbol: m[1] as string, path: m[2] as string, body });
      i = declarationEnd(code, inString, i + m[0].length, body);
      continue;
    }
    if ((m = /^output\s+(\w+)\s+(\w+)\s*=/.exec(rest))) {
      const value = parseValue(code, inString, i + m[0].length, code.length);
      file.outputs.set(m[1] as string, { name: m[1] as string, type: m[2] as string, value });
      i = value.end + 1;
      continue;
    }
    if (/^(targetScope|metadata|import|type|func)\b/.test(rest)) {
      // One-line statements we do not need.
      i = lineEnd + 1;
      continue;
    }
    throw new Error(`${rel}: cannot read the statement at offset ${i}: ${JSON.stringify(code.slice(i, lineEnd))}`);
  }
  return file;
}

/** After a resource or module body; a `[for ...: { }]` loop ends at its `]`. */
function declarationEnd(code: string, inString: boolean[], afterEquals: number, body: { end: number }): number {
  const first = skipBlank(code, afterEquals, code.length, true);
  if (code[first] === '[') return matching(code, inString, first) + 1;
  return body.end + 1;
}

// --- reading values ---------------------------------------------------------------------------------------------

/** The value at a path of object keys, or undefined. Keys compare case-insensitively, as ARM does. */
export function at(value: BicepValue | undefined, ...path: string[]): BicepValue | undefined {
  let cur = value;
  for (const key of path) {
    if (!cur || cur.kind !== 'object') return undefined;
    const found = [...cur.entries.entries()].find(([k]) => k.toLowerCase() === key.toLowerCase());
    cur = found?.[1];
  }
  return cur;
}

/** The raw expression text at a path (objects and arrays give their raw text). */
export function rawAt(value: BicepValue | undefined, ...path: string[]): string | undefined {
  return at(value, ...path)?.raw;
}

/** The content of a plain string literal ('...' without interpolation), or undefined. */
export function stringLiteral(raw: string | undefined): string | undefined {
  if (raw === undefined) return undefined;
  const m = /^'((?:[^'\\$]|\\.|\$(?!\{))*)'$/s.exec(raw.trim());
  if (!m) return undefined;
  return (m[1] as string).replace(/\\(.)/g, (_, ch: string) => (ch === 'n' ? '\n' : ch === 't' ? '\t' : ch));
}

/** Every plain string literal in an array value. */
export function stringItems(value: BicepValue | undefined): string[] | undefined {
  if (!value || value.kind !== 'array') return undefined;
  const out: string[] = [];
  for (const item of value.items) {
    const s = stringLiteral(item.raw);
    if (s === undefined) return undefined;
    out.push(s);
  }
  return out;
}

/** Object literals directly inside an expression such as `cond ? {} : { ... }`. */
export function objectsIn(file: BicepFile, value: BicepValue): Extract<BicepValue, { kind: 'object' }>[] {
  if (value.kind === 'object') return [value];
  if (value.kind === 'array') return [];
  const out: Extract<BicepValue, { kind: 'object' }>[] = [];
  for (let i = value.start; i < value.end; i++) {
    if (file.inString[i]) continue;
    const c = file.code[i];
    if (c === '{') {
      const obj = parseObject(file.code, file.inString, i);
      out.push(obj);
      i = obj.end;
    } else if (c === '(' || c === '[') {
      i = matching(file.code, file.inString, i);
    }
  }
  return out;
}

/** Decorator arguments as a value (e.g. the array of @allowed). */
export function decoratorValue(decorator: Decorator): BicepValue {
  const { code, inString } = lex(decorator.args);
  return parseValue(code, inString, 0, code.length);
}
