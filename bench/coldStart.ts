import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startAzurite } from '../runner/azurite';
import { TEST_JWT_SECRET } from '../test/helpers/jwt';
import { localAppEnv } from '../test/helpers/runner';

/**
 * `npm run bench:cold`: the app's cold start (issue 13), as ratios to a bare `node -e 0` measured in the
 * same run on the same machine, interleaved so that machine load falls on both alike.
 *
 *  - module loading: a fresh `node` that requires what the Functions host loads through `main`
 *    (`dist/src/index.js` and every `dist/src/functions/*.js`), wall time of the process;
 *  - first answer: the local runner started as its own process (Azurite already up) until its
 *    `/api/health` answers, wall time from spawn.
 *
 * Goal: module loading ≤ 3 × `node -e 0`. BENCH_COLD_RUNS (7) per figure; the median is reported.
 */
const RUNS = Number(process.env.BENCH_COLD_RUNS ?? 7);
const GOAL_RATIO = 3;
const ROOT = path.resolve(__dirname, '..', '..');

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] as number;
};
const round = (n: number, d = 1): number => Math.round(n * 10 ** d) / 10 ** d;

function timeProcess(args: string[], env: NodeJS.ProcessEnv = process.env): number {
  const started = process.hrtime.bigint();
  const r = spawnSync(process.execPath, args, { env, stdio: ['ignore', 'ignore', 'pipe'] });
  if (r.status !== 0) throw new Error(`node ${args.join(' ').slice(0, 80)} exited ${String(r.status)}: ${r.stderr.toString().slice(0, 500)}`);
  return Number(process.hrtime.bigint() - started) / 1e6;
}

async function timeFirstAnswer(env: NodeJS.ProcessEnv): Promise<number> {
  const started = process.hrtime.bigint();
  const child = spawn(process.execPath, [path.join(ROOT, 'dist', 'runner', 'start.js'), '--app', ROOT, '--no-init', '--no-local-settings', '--port', '0'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  try {
    const url = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`runner did not listen:\n${out}`)), 60_000);
      child.stdout.on('data', (c: Buffer) => {
        out += c.toString();
        const m = /Host listening on http:\/\/localhost:(\d+)/.exec(out);
        if (m) {
          clearTimeout(timer);
          resolve(`http://127.0.0.1:${m[1]}`);
        }
      });
      child.stderr.on('data', (c: Buffer) => (out += c.toString()));
      child.once('exit', (code) => reject(new Error(`runner exited ${String(code)}:\n${out}`)));
    });
    for (;;) {
      const res = await fetch(`${url}/api/health`).catch(() => undefined);
      if (res) {
        await res.arrayBuffer();
        return Number(process.hrtime.bigint() - started) / 1e6;
      }
      await new Promise((r) => setTimeout(r, 5));
    }
  } finally {
    child.kill('SIGKILL');
  }
}

async function main(): Promise<void> {
  const functionsDir = path.join(ROOT, 'dist', 'src', 'functions');
  const files = [path.join(ROOT, 'dist', 'src', 'index.js'), ...readdirSync(functionsDir).filter((f) => f.endsWith('.js')).map((f) => path.join(functionsDir, f))];
  const loadApp = `for (const f of ${JSON.stringify(files)}) require(f);`;
  const azurite = await startAzurite();
  const dir = mkdtempSync(path.join(os.tmpdir(), 'itil-cold-'));
  const env: NodeJS.ProcessEnv = { ...process.env, LOCAL_FUNCTION_KEY: randomBytes(16).toString('hex'), LOCAL_MASTER_KEY: randomBytes(16).toString('hex') };
  for (const [k, v] of Object.entries(localAppEnv({ storage: azurite.connectionString, secretKey: randomBytes(32).toString('base64'), secretDir: dir, jwtSecret: TEST_JWT_SECRET, publicBaseUrl: 'http://localhost:7071' }))) {
    if (v === undefined) delete env[k];
    else env[k] = v;
  }
  const bare: number[] = [];
  const load: number[] = [];
  const answer: number[] = [];
  try {
    // One warm-up of each (file system cache), not counted.
    timeProcess(['-e', '0']);
    timeProcess(['-e', loadApp], env);
    for (let i = 0; i < RUNS; i++) {
      bare.push(timeProcess(['-e', '0']));
      load.push(timeProcess(['-e', loadApp], env));
      answer.push(await timeFirstAnswer(env));
    }
  } finally {
    await azurite.stop();
    rmSync(dir, { recursive: true, force: true });
  }
  const b = median(bare);
  const rows = [
    { figure: 'node -e 0', medianMs: round(b), minMs: round(Math.min(...bare)), maxMs: round(Math.max(...bare)), ratio: 1 },
    { figure: 'load the app (index + every function file)', medianMs: round(median(load)), minMs: round(Math.min(...load)), maxMs: round(Math.max(...load)), ratio: round(median(load) / b, 2) },
    { figure: 'runner: spawn to first answered request', medianMs: round(median(answer)), minMs: round(Math.min(...answer)), maxMs: round(Math.max(...answer)), ratio: round(median(answer) / b, 2) },
  ];
  console.table(rows);
  const ratio = rows[1]?.ratio ?? Infinity;
  console.log(`module loading ${ratio} × node -e 0 (goal ≤ ${GOAL_RATIO}): ${ratio <= GOAL_RATIO ? 'met' : 'NOT met'}`);
  const out = path.join(ROOT, 'bench', 'results');
  mkdirSync(out, { recursive: true });
  const file = path.join(out, `cold-start-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
  writeFileSync(file, JSON.stringify({ benchmark: 'cold-start', runs: RUNS, goalRatio: GOAL_RATIO, machine: { node: process.version, cpus: os.cpus().length, loadAverage: os.loadavg() }, results: rows, samples: { bare, load, answer } }, null, 2) + '\n');
  console.log(`results: ${path.relative(ROOT, file)}`);
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
