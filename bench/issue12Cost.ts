import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { z } from 'zod';

/**
 * `npm run bench:cost`: what issue 12's fixes cost on the HubSpot sync figures. Reads result files of
 * `npm run bench` taken at the baseline (`22bd2db^`, the commit before the fixes) and at the code with the
 * fixes, and writes `bench/results/issue12-cost.json`: per contender and tables, per figure (records/s ÷
 * bound, HubSpot calls per 100 tickets, peak RSS growth), each run, the means, the difference and whether
 * it lies within the run-to-run noise.
 *
 * Arguments: `--base <file|dir>… --head <file|dir>…`, or directories (default `bench/results/issue12` and its `probe/`) in
 * which `base-*.json` are baseline runs and `head-*.json` runs with the fixes. Runs are grouped by their
 * settings (tickets, rate limit and window, latency, object types, heap, flags) and compared only within a
 * group; each group is a set of its own in the output.
 *
 * Noise rule: a difference of the means is measurable when it exceeds 2 % of the baseline mean and either
 * exceeds the larger spread (max − min) of the two versions' runs or the versions' ranges do not overlap
 * (every head run on the same side of every baseline run); otherwise it is within noise. The 2 % floor
 * keeps runs that happen to agree (calls per 100 is deterministic) from making any difference measurable;
 * the overlap test keeps one outlying run from hiding a consistent shift inside a wide spread. A
 * difference in the better direction counts as no cost whatever its size.
 */

const ROOT = path.resolve(__dirname, '..', '..');
/** The committed runs: full benchmark runs, and engine-only probes (in-memory tables only) in `probe/`. */
const DEFAULT_DIRS = [path.join(ROOT, 'bench', 'results', 'issue12'), path.join(ROOT, 'bench', 'results', 'issue12', 'probe')];
const OUT = path.join(ROOT, 'bench', 'results', 'issue12-cost.json');
const RELATIVE_FLOOR = 0.02;

const rowSchema = z
  .object({
    contender: z.string(),
    tables: z.string(),
    records: z.number(),
    seconds: z.number(),
    boundRatio: z.number(),
    callsPer100Tickets: z.number(),
    peakRssGrowthMb: z.number(),
    rateLimited429: z.number(),
  })
  .loose();

const resultFileSchema = z
  .object({
    benchmark: z.literal('hubspot-full-sync'),
    startedAt: z.string(),
    tickets: z.object({ inMemoryTables: z.number(), azurite: z.number() }),
    rateLimit: z.object({ callsPerWindow: z.number(), windowMs: z.number() }).loose(),
    addedLatencyMs: z.number(),
    objectTypes: z.array(z.string()),
    contenderHeap: z.unknown(),
    contenderFlags: z.array(z.string()),
    results: z.array(rowSchema),
  })
  .loose();

type ResultFile = z.infer<typeof resultFileSchema>;
type Row = z.infer<typeof rowSchema>;
type Version = 'base' | 'head';

const FIGURES = [
  { key: 'boundRatio', label: 'records/s ÷ bound', better: 'higher' },
  { key: 'callsPer100Tickets', label: 'HubSpot calls per 100 tickets', better: 'lower' },
  { key: 'peakRssGrowthMb', label: 'peak RSS growth (MB)', better: 'lower' },
] as const satisfies ReadonlyArray<{ key: keyof Row; label: string; better: 'higher' | 'lower' }>;

interface Run {
  file: string;
  data: ResultFile;
}

function jsonFiles(p: string, prefix: string | undefined): string[] {
  if (!statSync(p).isDirectory()) return [p];
  return readdirSync(p)
    .filter((f) => f.endsWith('.json') && (prefix === undefined || f.startsWith(prefix)))
    .sort()
    .map((f) => path.join(p, f));
}

function filesFromArgs(args: string[]): Record<Version, string[]> {
  const out: Record<Version, string[]> = { base: [], head: [] };
  if (args.includes('--base') || args.includes('--head')) {
    let current: Version | undefined;
    for (const a of args) {
      if (a === '--base' || a === '--head') current = a === '--base' ? 'base' : 'head';
      else if (current === undefined) throw new Error(`${a}: say --base or --head first`);
      else out[current].push(...jsonFiles(path.resolve(a), undefined));
    }
    return out;
  }
  for (const dir of args.length > 0 ? args : DEFAULT_DIRS.filter((d) => existsSync(d))) {
    out.base.push(...jsonFiles(path.resolve(dir), 'base-'));
    out.head.push(...jsonFiles(path.resolve(dir), 'head-'));
  }
  return out;
}

function read(file: string): Run {
  return { file, data: resultFileSchema.parse(JSON.parse(readFileSync(file, 'utf8'))) };
}

/** The settings a comparison needs to share (head's bench adds `incrementalChanges`, which the full-sync rows do not depend on). */
function settings(r: ResultFile): string {
  return JSON.stringify({ tickets: r.tickets, callsPerWindow: r.rateLimit.callsPerWindow, windowMs: r.rateLimit.windowMs, addedLatencyMs: r.addedLatencyMs, objectTypes: r.objectTypes, contenderHeap: r.contenderHeap, contenderFlags: r.contenderFlags });
}

function round(n: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(n * f) / f;
}

function mean(xs: number[]): number {
  return xs.reduce((a, b) => a + b, 0) / xs.length;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
}

function spread(xs: number[]): number {
  return Math.max(...xs) - Math.min(...xs);
}

interface Comparison {
  contender: string;
  tables: string;
  records: Record<Version, number[]>;
  rateLimited429: Record<Version, number[]>;
  seconds: Record<Version, number[]>;
  figures: Array<{
    figure: string;
    label: string;
    better: 'higher' | 'lower';
    base: Stats;
    head: Stats;
    difference: number;
    differencePercent: number | null;
    floor: number;
    largestSpread: number;
    rangesOverlap: boolean;
    withinNoise: boolean;
    direction: 'same' | 'better' | 'worse';
    costsNothingMeasurable: boolean;
  }>;
}

interface Stats {
  runs: number[];
  mean: number;
  median: number;
  spread: number;
}

function stats(xs: number[]): Stats {
  return { runs: xs, mean: round(mean(xs), 4), median: round(median(xs), 4), spread: round(spread(xs), 4) };
}

const rowKey = (r: Row) => `${r.contender} | ${r.tables}`;

/** One set of runs taken with the same settings: baseline against head, row by row, figure by figure. */
function compare(runs: Record<Version, Run[]>): Comparison[] {
  const all = [...runs.base, ...runs.head];
  const keys = [...new Set(all.flatMap((r) => r.data.results.map(rowKey)))].filter((k) => all.every((r) => r.data.results.some((x) => rowKey(x) === k)));
  return keys.map((k) => {
    const rowsOf = (v: Version) => runs[v].map((r) => r.data.results.find((x) => rowKey(x) === k) as Row);
    const base = rowsOf('base');
    const head = rowsOf('head');
    const figures = FIGURES.map((f) => {
      const b = base.map((r) => r[f.key]);
      const h = head.map((r) => r[f.key]);
      const mb = mean(b);
      const diff = mean(h) - mb;
      const floor = RELATIVE_FLOOR * Math.abs(mb);
      const largestSpread = Math.max(spread(b), spread(h));
      const rangesOverlap = Math.max(...b) >= Math.min(...h) && Math.max(...h) >= Math.min(...b);
      const better = f.better === 'higher' ? diff > 0 : diff < 0;
      const withinNoise = Math.abs(diff) <= floor || (rangesOverlap && Math.abs(diff) <= largestSpread);
      return {
        figure: f.key,
        label: f.label,
        better: f.better,
        base: stats(b),
        head: stats(h),
        difference: round(diff, 4),
        differencePercent: mb === 0 ? null : round((diff / Math.abs(mb)) * 100, 2),
        floor: round(floor, 4),
        largestSpread: round(largestSpread, 4),
        rangesOverlap,
        withinNoise,
        direction: diff === 0 ? ('same' as const) : better ? ('better' as const) : ('worse' as const),
        costsNothingMeasurable: withinNoise || better,
      };
    });
    const [contender, tables] = k.split(' | ') as [string, string];
    const each = (pick: (r: Row) => number) => ({ base: base.map(pick), head: head.map(pick) });
    return { contender, tables, records: each((r) => r.records), rateLimited429: each((r) => r.rateLimited429), seconds: each((r) => r.seconds), figures };
  });
}

function main(): void {
  const files = filesFromArgs(process.argv.slice(2));
  const runs: Record<Version, Run[]> = { base: files.base.map(read), head: files.head.map(read) };
  if (runs.base.length === 0 || runs.head.length === 0) throw new Error(`need at least one baseline and one head result (got ${runs.base.length} and ${runs.head.length})`);

  // Runs are compared only with runs of the same settings; each distinct setting is a set of its own.
  const bySettings = new Map<string, Record<Version, Run[]>>();
  for (const v of ['base', 'head'] as const) {
    for (const r of runs[v]) {
      const key = settings(r.data);
      const set = bySettings.get(key) ?? { base: [], head: [] };
      set[v].push(r);
      bySettings.set(key, set);
    }
  }
  const names = (rs: Run[]) => rs.map((r) => ({ file: path.basename(r.file), startedAt: r.data.startedAt }));
  const sets = [...bySettings.entries()].map(([key, set]) => {
    const comparisons = set.base.length > 0 && set.head.length > 0 ? compare(set) : [];
    const engine = comparisons.find((c) => c.contender === 'engine (ours)' && c.tables === 'in-memory stand-in');
    return {
      settings: JSON.parse(key) as unknown,
      runs: { base: names(set.base), head: names(set.head) },
      comparisons,
      verdict:
        comparisons.length === 0
          ? null
          : {
              /** The row the issue's goals are about: our engine, HubSpot's limit setting the pace. */
              engineInMemory: engine ? engine.figures.every((f) => f.costsNothingMeasurable) : null,
              /** Our engine on both table kinds (on Azurite the store, not HubSpot's limit, sets the pace). */
              engine: comparisons.filter((c) => c.contender === 'engine (ours)').every((c) => c.figures.every((f) => f.costsNothingMeasurable)),
              /** Also the SDK `getAll` contender, a control: it shares only the record store with the code under test. */
              allRows: comparisons.every((c) => c.figures.every((f) => f.costsNothingMeasurable)),
            },
    };
  });

  const out = {
    comparison: 'issue-12-cost-hubspot-sync',
    baseline: '22bd2db^ (before the issue-12 fixes)',
    head: 'h-bench HEAD (with the fixes)',
    figures: FIGURES.map((f) => `${f.key}: ${f.label}, ${f.better} is better`),
    noiseRule: `Δ = mean(head) − mean(base) is measurable when |Δ| > ${RELATIVE_FLOOR * 100} % of mean(base) and (|Δ| > max(spread(base runs), spread(head runs)) or the two versions' ranges do not overlap); spread = max − min over one version's runs. Otherwise within noise. A difference in the better direction costs nothing.`,
    sets,
  };
  mkdirSync(path.dirname(OUT), { recursive: true });
  writeFileSync(OUT, JSON.stringify(out, null, 2) + '\n');

  for (const set of sets) {
    process.stdout.write(`\nSettings ${JSON.stringify(set.settings)}\n`);
    if (set.verdict === null) {
      process.stdout.write(`  not compared: ${set.runs.base.length} baseline and ${set.runs.head.length} head runs\n`);
      continue;
    }
    for (const c of set.comparisons) {
      process.stdout.write(`  ${c.contender}, ${c.tables} (base ${set.runs.base.length} runs, head ${set.runs.head.length}):\n`);
      for (const f of c.figures) {
        process.stdout.write(
          `    ${f.label.padEnd(30)} base ${f.base.runs.join(' / ')} (mean ${f.base.mean})  head ${f.head.runs.join(' / ')} (mean ${f.head.mean})` +
            `  Δ ${f.difference}${f.differencePercent === null ? '' : ` (${f.differencePercent} %)`}  spread ${f.largestSpread}, floor ${f.floor}${f.rangesOverlap ? '' : ', ranges apart'}: ${f.withinNoise ? 'within noise' : `outside noise, ${f.direction}`}\n`,
        );
      }
    }
    process.stdout.write(`  Nothing measurable: engine in-memory ${String(set.verdict.engineInMemory)}, engine ${String(set.verdict.engine)}, all rows ${String(set.verdict.allRows)}\n`);
  }
  process.stdout.write(`\nWritten to ${path.relative(process.cwd(), OUT) || OUT}\n`);
}

main();
