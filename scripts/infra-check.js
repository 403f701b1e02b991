#!/usr/bin/env node
/**
 * Compiles and lints infra/ with the Bicep compiler, and type-checks infra/main.parameters.json against it.
 *
 * Which compiler: a `bicep` on PATH, else `az bicep`, else — where the .NET SDK exists — the Bicep CLI from
 * NuGet (`Azure.Bicep.CommandLine.linux-x64`, a self-contained binary inside the package), restored once by a
 * throwaway project in a cache folder outside the repository (nothing is added to the repo's build). With none
 * of these it prints SKIPPED and exits 0, or 2 with --strict.
 *
 * Steps, each of which must report nothing (the linter's rules are set to error in infra/bicepconfig.json, and
 * a warning fails the check too, so that nothing it says is ignored):
 *   1. offline checks: the parameters JSON parses, every module path exists
 *   2. `bicep build infra/main.bicep` (every module compiles)
 *   3. `bicep lint infra/main.bicep`
 *   4. main.parameters.json, as azd fills it (each `${VAR}` becomes the parameter's type read from the
 *      environment), written as a temporary .bicepparam and compiled with `bicep build-params`, so a misspelt
 *      or missing parameter, or a literal of the wrong type, fails here instead of at `azd up`.
 *
 * Usage: node scripts/infra-check.js [--strict]
 */
'use strict';

const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const root = path.resolve(__dirname, '..');
const infraDir = path.join(root, 'infra');
const mainBicep = path.join(infraDir, 'main.bicep');
const parametersJson = path.join(infraDir, 'main.parameters.json');
const strict = process.argv.includes('--strict');
const isWindows = process.platform === 'win32';

const NUGET_PACKAGE = 'Azure.Bicep.CommandLine.linux-x64';
const NUGET_VERSION = '0.49.2';

function log(line) {
  process.stdout.write(`infra-check: ${line}\n`);
}

function fail(line) {
  process.stderr.write(`infra-check: ${line}\n`);
}

/** Runs a command; undefined when it is not installed (ENOENT, or the Windows shell's "not recognized"). */
function run(command, args, opts = {}) {
  const result = spawnSync(command, args, { cwd: root, encoding: 'utf8', shell: isWindows, maxBuffer: 64 * 1024 * 1024, ...opts });
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
  for (const json of ['main.parameters.json', 'abbreviations.json', 'bicepconfig.json']) {
    const file = path.join(infraDir, json);
    if (!fs.existsSync(file)) {
      problems.push(`infra/${json} is missing`);
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
      if (/^(br|ts)[/:]/.test(target)) continue;
      if (!fs.existsSync(path.resolve(path.dirname(file), target))) problems.push(`${path.relative(root, file)} uses module '${target}', which does not exist`);
    }
  }
  return problems;
}

/** The Bicep CLI restored from NuGet into a cache folder, or undefined when dotnet is missing or the restore fails. */
function bicepFromNuGet() {
  if (process.platform !== 'linux' || process.arch !== 'x64') return undefined;
  const cache = path.join(process.env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache'), 'itil-next-connectors', `bicep-${NUGET_VERSION}`);
  const binary = path.join(cache, 'packages', NUGET_PACKAGE.toLowerCase(), NUGET_VERSION, 'tools', 'bicep');
  if (!fs.existsSync(binary)) {
    if (run('dotnet', ['--version']) === undefined) return undefined;
    fs.mkdirSync(cache, { recursive: true });
    // PackageDownload fetches the package without referencing it: the project is never built.
    fs.writeFileSync(
      path.join(cache, 'bicep-cli.csproj'),
      `<Project Sdk="Microsoft.NET.Sdk">\n  <PropertyGroup><TargetFramework>net10.0</TargetFramework></PropertyGroup>\n  <ItemGroup><PackageDownload Include="${NUGET_PACKAGE}" Version="[${NUGET_VERSION}]" /></ItemGroup>\n</Project>\n`,
    );
    log(`restoring ${NUGET_PACKAGE} ${NUGET_VERSION} from NuGet into ${cache}`);
    const restore = run('dotnet', ['restore', path.join(cache, 'bicep-cli.csproj'), '--packages', path.join(cache, 'packages'), '--nologo', '-v', 'q'], { cwd: cache });
    if (!restore || restore.status !== 0) {
      fail(`dotnet restore of ${NUGET_PACKAGE} failed:\n${(restore && (restore.stdout + restore.stderr)) || ''}`);
      return undefined;
    }
    if (!fs.existsSync(binary)) {
      fail(`${NUGET_PACKAGE} ${NUGET_VERSION} restored, but ${binary} is not in it`);
      return undefined;
    }
  }
  fs.chmodSync(binary, 0o755);
  return binary;
}

/** The first compiler that answers, as a function taking Bicep CLI arguments. */
function findCompiler() {
  if (run('bicep', ['--version'])?.status === 0) return { label: 'bicep (PATH)', bicep: (args, opts) => run('bicep', args, opts) };
  if (run('az', ['bicep', 'version'])?.status === 0) return { label: 'az bicep', bicep: (args, opts) => run('az', ['bicep', ...args], opts) };
  const binary = bicepFromNuGet();
  if (binary) return { label: `bicep ${NUGET_VERSION} (NuGet ${NUGET_PACKAGE})`, bicep: (args, opts) => run(binary, args, opts) };
  return undefined;
}

/** Runs one compiler step; any diagnostic (error or warning) or a non-zero exit is a failure. */
function step(compiler, label, args) {
  const result = compiler.bicep(args);
  const diagnostics = (result.stderr || '').split('\n').filter((l) => /\) : (Error|Warning|Info)/.test(l));
  if (result.status !== 0 || diagnostics.length > 0) {
    if (result.stderr && result.stderr.trim()) process.stderr.write(result.stderr);
    fail(`${label}: FAILED (exit ${result.status}, ${diagnostics.length} diagnostic(s))`);
    return { ok: false, stdout: result.stdout };
  }
  log(`${label}: OK`);
  return { ok: true, stdout: result.stdout };
}

/**
 * A sample of what azd may put into a parameter of this declaration: an allowed value, the default, or a string
 * long enough for its minimum length. The compiler then checks the rest (names, types, allowed values).
 */
function sampleFor(decl) {
  if (!decl) return 'sample';
  if (Array.isArray(decl.allowedValues) && decl.allowedValues.length > 0) return String(decl.allowedValues[0]);
  if (decl.type === 'bool') return 'true';
  if (decl.type === 'int') return String(decl.minValue ?? decl.defaultValue ?? 1);
  if (typeof decl.defaultValue === 'string' && decl.defaultValue !== '' && !decl.defaultValue.startsWith('[')) return decl.defaultValue;
  return 'sample'.padEnd(Math.max(decl.minLength ?? 0, 6), 'x').slice(0, Math.max(decl.maxLength ?? Infinity, 1));
}

/** A Bicep expression for what azd makes of one main.parameters.json value; `env` collects the variables it reads. */
function paramExpression(value, decl, env) {
  const azdVar = typeof value === 'string' ? /^\$\{([A-Za-z_][A-Za-z0-9_]*)\}$/.exec(value) : null;
  if (azdVar) {
    env[azdVar[1]] = sampleFor(decl);
    const read = `readEnvironmentVariable('${azdVar[1]}')`;
    if (decl?.type === 'bool') return `bool(${read})`;
    if (decl?.type === 'int') return `int(${read})`;
    return read;
  }
  // A literal is written as JSON, which Bicep reads for strings, numbers, booleans, arrays and objects.
  return JSON.stringify(value).replace(/'/g, "\\'").replace(/"/g, "'");
}

function checkParameters(compiler, compiledMain) {
  const template = JSON.parse(compiledMain);
  const declared = template.parameters || {};
  const given = JSON.parse(fs.readFileSync(parametersJson, 'utf8')).parameters || {};
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'infra-params-'));
  try {
    const usingPath = path.relative(dir, mainBicep).split(path.sep).join('/');
    const lines = [`using '${usingPath}'`, ''];
    const env = {};
    // An unknown name keeps a type-less expression, so the compiler reports it as not declared.
    for (const [name, entry] of Object.entries(given)) lines.push(`param ${name} = ${paramExpression(entry.value, declared[name], env)}`);
    const file = path.join(dir, 'main.parameters.bicepparam');
    fs.writeFileSync(file, `${lines.join('\n')}\n`);
    const compilerWithEnv = { bicep: (args) => compiler.bicep(args, { env: { ...process.env, ...env } }) };
    return step(compilerWithEnv, 'bicep build-params (infra/main.parameters.json as azd fills it)', ['build-params', file, '--stdout']).ok;
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

function main() {
  const problems = offlineChecks();
  for (const p of problems) fail(p);
  if (problems.length > 0) return 1;
  log('offline checks passed (parameters JSON, bicepconfig.json, module paths)');

  const compiler = findCompiler();
  if (!compiler) {
    const message = 'SKIPPED compiling infra/: no `bicep` or `az` on PATH, and no `dotnet` to restore the Bicep CLI from NuGet.';
    if (strict) {
      fail(`${message} (--strict: failing)`);
      return 2;
    }
    log(message);
    return 0;
  }
  log(`compiler: ${compiler.label}`);
  const rel = path.relative(root, mainBicep);
  const build = step(compiler, `bicep build ${rel}`, ['build', rel, '--stdout']);
  const lint = step(compiler, `bicep lint ${rel}`, ['lint', rel]);
  const params = build.ok && checkParameters(compiler, build.stdout);
  return build.ok && lint.ok && params ? 0 : 1;
}

process.exitCode = main();
