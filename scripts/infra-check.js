#!/usr/bin/env node
/**
 * Compiles infra/main.bicep (and through it every module) with whichever Bicep compiler is installed:
 * `bicep build` if a standalone `bicep` is on PATH, else `az bicep build`. Nothing is written to the repo
 * (output goes to stdout and is discarded).
 *
 * Before that, and whether or not a compiler exists, it runs the offline checks a compiler would also catch
 * first: main.parameters.json and abbreviations.json parse, and every module path the Bicep files name exists.
 * The text-level structure checks live in the jest suite (npx jest test/unit/infra).
 *
 * Exit codes:
 *   0  compiled cleanly, or no compiler installed (prints "SKIPPED"; the offline checks still ran and passed)
 *   1  the compiler or an offline check reported a problem
 *   2  no compiler installed and --strict was given (use this in CI that is expected to have one)
 *
 * Usage: node scripts/infra-check.js [--strict]
 */
'use strict';

const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const root = path.resolve(__dirname, '..');
const infraDir = path.join(root, 'infra');
const mainBicep = path.join(infraDir, 'main.bicep');
const strict = process.argv.includes('--strict');
const isWindows = process.platform === 'win32';

function log(line) {
  process.stdout.write(`${line}\n`);
}

function fail(line) {
  process.stderr.write(`infra-check: ${line}\n`);
}

/** Runs a command; undefined when it is not installed (ENOENT, or the Windows shell's "not recognized"). */
function run(command, args) {
  const result = spawnSync(command, args, { cwd: root, encoding: 'utf8', shell: isWindows, maxBuffer: 64 * 1024 * 1024 });
  if (result.error && result.error.code === 'ENOENT') return undefined;
  if (isWindows && result.status !== 0 && /is not recognized as an internal or external command/i.test(result.stderr || '')) return undefined;
  return result;
}

function bicepFiles(dir) {
  const out = [];
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) out.push(...bicepFiles(full));
    else if (entry.name.endsWith('.bicep')) out.push(full);
  }
  return out;
}

function offlineChecks() {
  const problems = [];
  if (!fs.existsSync(mainBicep)) return [`${path.relative(root, mainBicep)} is missing`];

  for (const json of ['main.parameters.json', 'abbreviations.json']) {
    const file = path.join(infraDir, json);
    if (!fs.existsSync(file)) {
      if (json === 'main.parameters.json') problems.push(`infra/${json} is missing`);
      continue;
    }
    try {
      JSON.parse(fs.readFileSync(file, 'utf8'));
    } catch (err) {
      problems.push(`infra/${json} is not valid JSON: ${err.message}`);
    }
  }

  for (const file of bicepFiles(infraDir)) {
    const text = fs.readFileSync(file, 'utf8');
    for (const match of text.matchAll(/^\s*module\s+\w+\s+'([^']+)'/gm)) {
      const target = match[1];
      if (target.startsWith('br/') || target.startsWith('br:') || target.startsWith('ts/') || target.startsWith('ts:')) continue;
      if (!fs.existsSync(path.resolve(path.dirname(file), target))) {
        problems.push(`${path.relative(root, file)} uses module '${target}', which does not exist`);
      }
    }
    for (const match of text.matchAll(/loadJsonContent\('([^']+)'\)/g)) {
      if (!fs.existsSync(path.resolve(path.dirname(file), match[1]))) {
        problems.push(`${path.relative(root, file)} loads '${match[1]}', which does not exist`);
      }
    }
  }
  return problems;
}

function main() {
  const problems = offlineChecks();
  for (const p of problems) fail(p);
  if (problems.length > 0) return 1;
  log('infra-check: offline checks passed (parameters JSON, module paths)');

  const relMain = path.relative(root, mainBicep);
  const attempts = [
    { label: 'bicep', command: 'bicep', args: ['build', relMain, '--stdout'] },
    { label: 'az bicep', command: 'az', args: ['bicep', 'build', '--file', relMain, '--stdout'] },
  ];

  for (const attempt of attempts) {
    const result = run(attempt.command, attempt.args);
    if (result === undefined) continue;
    // Compiler diagnostics (errors and linter warnings) go to stderr; the ARM JSON on stdout is not needed.
    if (result.stderr && result.stderr.trim()) process.stderr.write(result.stderr);
    if (result.status === 0) {
      log(`infra-check: ${attempt.label} build ${relMain}: OK`);
      return 0;
    }
    fail(`${attempt.label} build ${relMain} failed (exit ${result.status})`);
    return 1;
  }

  const message =
    'SKIPPED compiling infra/main.bicep: neither `bicep` nor `az` is on PATH. ' +
    'Install the Bicep CLI (https://aka.ms/bicep-install) or the Azure CLI (`az bicep install`) to compile it.';
  if (strict) {
    fail(`${message} (--strict: failing)`);
    return 2;
  }
  log(`infra-check: ${message}`);
  return 0;
}

process.exitCode = main();
