import { parseSync } from '@swc/core';
import fc from 'fast-check';
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import safeRegex from 'safe-regex2';
import { companyPushSchema } from '../../../src/connectors/hubspot/twoWay';

/**
 * Every regex in `src/` is checked, not only the ones someone remembered: the source files are parsed
 * (swc, the compiler the tests already run on) and each regex literal and `RegExp(...)` call is
 * collected. A literal must pass `safe-regex2` (no nested quantifiers — star height 1 — and at most 25
 * quantifiers); a `RegExp` built from anything but a string literal fails the test, since a pattern
 * assembled at run time cannot be checked here (issue 11, finding 2: a nested quantifier in the mail
 * quote stripping let a 127-byte body block the shared worker).
 *
 * What safe-regex2 does not see: overlapping alternatives under a quantifier (`(a|aa)+`) and the
 * quadratic scan of an unanchored `x+$` over a long run of x. The patterns that read untrusted text
 * (mail in `mailText.ts`, card text in `teams/cards.ts`) were reviewed for both; the scan keeps the
 * nested-quantifier kind out everywhere.
 */

const SRC = join(__dirname, '..', '..', '..', 'src');

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? sourceFiles(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : []));
}

interface Found {
  file: string;
  pattern: string;
  flags: string;
}

type Node = { type?: unknown; [k: string]: unknown };

function collect(file: string): { literals: Found[]; dynamic: string[] } {
  const literals: Found[] = [];
  const dynamic: string[] = [];
  const name = relative(SRC, file);
  const visit = (node: unknown): void => {
    if (Array.isArray(node)) return node.forEach(visit);
    if (node === null || typeof node !== 'object') return;
    const n = node as Node;
    if (n.type === 'RegExpLiteral') literals.push({ file: name, pattern: n.pattern as string, flags: n.flags as string });
    if ((n.type === 'NewExpression' || n.type === 'CallExpression') && (n.callee as Node | undefined)?.type === 'Identifier' && (n.callee as Node).value === 'RegExp') {
      const first = ((n.arguments as Array<{ expression: Node }> | undefined) ?? [])[0]?.expression;
      if (first?.type === 'StringLiteral') literals.push({ file: name, pattern: first.value as string, flags: '' });
      else dynamic.push(name);
    }
    for (const [k, v] of Object.entries(n)) if (k !== 'span') visit(v);
  };
  visit(parseSync(readFileSync(file, 'utf8'), { syntax: 'typescript' }));
  return { literals, dynamic };
}

const files = sourceFiles(SRC);
const results = files.map(collect);
const literals = results.flatMap((r) => r.literals);

describe('regexes in src/', () => {
  it('are found (the scan reads the files it should)', () => {
    expect(files.length).toBeGreaterThan(50);
    expect(literals.length).toBeGreaterThan(80);
    // Known ones from the mail parsing and the card text, so a broken walk cannot pass with a few.
    expect(literals.filter((l) => l.file === join('connectors', 'msgraph', 'mailText.ts')).length).toBeGreaterThanOrEqual(8);
    expect(literals.some((l) => l.file === join('connectors', 'teams', 'cards.ts'))).toBe(true);
    // The checker itself rejects what it is here to reject.
    expect(safeRegex(/(\n\s*[-_]{3,}\s*)+$/)).toBe(false);
    expect(safeRegex(/^(a+)+$/)).toBe(false);
  });

  it('are all literals: no pattern built at run time', () => {
    expect(results.flatMap((r) => r.dynamic)).toEqual([]);
  });

  it('each passes safe-regex2 (no nested quantifiers)', () => {
    const unsafe = literals.filter((l) => !safeRegex(new RegExp(l.pattern, l.flags))).map((l) => `${l.file}: /${l.pattern}/${l.flags}`);
    expect(unsafe).toEqual([]);
  });
});

describe('patterns rewritten to pass the check accept exactly what they did before', () => {
  const strings = (alphabet: string[], maxLength: number) => fc.array(fc.constantFrom(...alphabet), { maxLength }).map((a) => a.join(''));

  it('HubSpot company domain (label by label instead of a repeated group)', () => {
    const old = /^(?=.{1,253}$)([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$/;
    const domain = strings(['a', 'b', '0', '-', '.', '..', 'x'.repeat(61), 'com', 'z', 'q'.repeat(63)], 12);
    fc.assert(
      fc.property(domain, (d) => companyPushSchema.safeParse({ domain: d }).success === old.test(d)),
      { numRuns: 5000 },
    );
  });

  it('Retry-After seconds, Teams channel names and JSON content types', () => {
    const pairs: Array<[RegExp, RegExp, string[]]> = [
      [/^\d+(\.\d+)?$/, /^\d+(?:\.\d+|)$/, ['1', '0', '.', '5', 'x', ' ']],
      [/^team-[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$/, /^team-[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9]|)$/, ['team-', 'a', '9', '-', 'B', 'x'.repeat(30)]],
      [/^application\/([a-z.+-]*\+)?json\b/i, /^application\/(?:[a-z.+-]*\+|)json\b/i, ['application/', 'json', '+', 'vnd.', 'problem', ';', ' ', 'JSON']],
    ];
    for (const [before, after, alphabet] of pairs) {
      fc.assert(fc.property(strings(alphabet, 8), (s) => before.test(s) === after.test(s)), { numRuns: 3000 });
    }
  });
});
