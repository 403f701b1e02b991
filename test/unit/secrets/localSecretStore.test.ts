import { transformFileSync } from '@swc/core';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { createSecretStore, InvalidSecretNameError } from '../../../src/secrets';
import { AZURE_HOST_MARKERS, LocalSecretStore, LocalSecretStoreRefusedError, LocalSecretUnreadableError } from '../../../src/secrets/localSecretStore';

const PLAINTEXT = 'refresh-token-0f1e2d3c4b5a-do-not-leak';
const noAzure: NodeJS.ProcessEnv = {};

describe('LocalSecretStore', () => {
  let root: string;
  let directory: string;
  let key: Buffer;

  beforeEach(async () => {
    root = await fs.mkdtemp(path.join(os.tmpdir(), 'local-secrets-'));
    directory = path.join(root, 'store');
    key = randomBytes(32);
  });

  afterEach(async () => {
    await fs.rm(root, { recursive: true, force: true });
  });

  const store = (k: Buffer = key): LocalSecretStore => new LocalSecretStore({ key: k, directory, env: noAzure });

  it('round-trips a value, including after a new instance opens the directory', async () => {
    await store().set('app-hubspot-client-secret', PLAINTEXT, { contentType: 'text/plain', tags: { tenant: 't1' } });
    expect(await store().get('app-hubspot-client-secret')).toBe(PLAINTEXT);
    await store().set('app-hubspot-client-secret', 'second');
    expect(await store().get('app-hubspot-client-secret')).toBe('second');
  });

  it('treats names case-insensitively, like Key Vault', async () => {
    await store().set('MixedCase-Name', 'v');
    expect(await store().get('mixedcase-name')).toBe('v');
  });

  it('returns undefined for a missing secret and deletes idempotently', async () => {
    const s = store();
    expect(await s.get('never-set')).toBeUndefined();
    await expect(s.delete('never-set')).resolves.toBeUndefined();
    await s.set('gone', 'x');
    await s.delete('gone');
    expect(await s.get('gone')).toBeUndefined();
    await expect(s.delete('gone')).resolves.toBeUndefined();
  });

  it('keeps the plaintext, content type and tags off the disk, with private permissions', async () => {
    await store().set('on-disk', PLAINTEXT, { contentType: 'application/x-refresh-token', tags: { tenant: 'contoso-tenant' } });
    const files = await fs.readdir(directory);
    expect(files).toHaveLength(1);
    const raw = await fs.readFile(path.join(directory, files[0] as string));
    for (const needle of [PLAINTEXT, 'application/x-refresh-token', 'contoso-tenant']) {
      expect(raw.includes(needle)).toBe(false);
      expect(raw.includes(Buffer.from(needle).toString('base64'))).toBe(false);
    }
    if (process.platform !== 'win32') {
      expect((await fs.stat(directory)).mode & 0o777).toBe(0o700);
      expect((await fs.stat(path.join(directory, files[0] as string))).mode & 0o777).toBe(0o600);
    }
  });

  it('uses a fresh IV per write', async () => {
    const s = store();
    await s.set('iv-check', PLAINTEXT);
    const file = path.join(directory, (await fs.readdir(directory))[0] as string);
    const first = await fs.readFile(file, 'utf8');
    await s.set('iv-check', PLAINTEXT);
    expect(await fs.readFile(file, 'utf8')).not.toBe(first);
  });

  it('fails clearly, naming the secret but not its contents, under the wrong key', async () => {
    await store().set('wrong-key-test', PLAINTEXT);
    const err = await store(randomBytes(32))
      .get('wrong-key-test')
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(LocalSecretUnreadableError);
    const message = (err as Error).message;
    expect(message).toContain('"wrong-key-test"');
    expect(message).toMatch(/LOCAL_SECRET_KEY/);
    expect(message).not.toContain(PLAINTEXT);
  });

  it('rejects a file moved onto another secret name (the name is authenticated)', async () => {
    const s = store();
    await s.set('original', PLAINTEXT);
    await fs.rename(path.join(directory, 'original.secret.json'), path.join(directory, 'impostor.secret.json'));
    await expect(s.get('impostor')).rejects.toBeInstanceOf(LocalSecretUnreadableError);
  });

  it('reports a corrupt file as unreadable', async () => {
    await fs.mkdir(directory, { recursive: true });
    await fs.writeFile(path.join(directory, 'broken.secret.json'), 'not json');
    await expect(store().get('broken')).rejects.toThrow(/local secret "broken" cannot be read/);
  });

  it.each(AZURE_HOST_MARKERS)('refuses to construct inside Azure (%s set)', (marker) => {
    expect(() => new LocalSecretStore({ key, directory, env: { [marker]: 'x' } })).toThrow(LocalSecretStoreRefusedError);
    expect(() => new LocalSecretStore({ key, directory, env: { [marker]: 'x' } })).toThrow(new RegExp(marker));
  });

  it('needs a 32-byte key', () => {
    expect(() => new LocalSecretStore({ key: randomBytes(16), directory, env: noAzure })).toThrow(/32-byte/);
  });

  it.each(['', '1starts-with-digit', 'has_underscore', 'has.dot', '../escape', 'a'.repeat(128), 'sp ace'])('rejects the invalid name %j', async (name) => {
    const s = store();
    await expect(s.get(name)).rejects.toBeInstanceOf(InvalidSecretNameError);
    await expect(s.set(name, 'v')).rejects.toBeInstanceOf(InvalidSecretNameError);
    await expect(s.delete(name)).rejects.toBeInstanceOf(InvalidSecretNameError);
  });

  it("enforces Key Vault's 25 KB value limit", async () => {
    await expect(store().set('too-big', 'x'.repeat(25 * 1024 + 1))).rejects.toThrow(/25 KB/);
    await expect(store().set('just-fits', 'x'.repeat(25 * 1024))).resolves.toBeUndefined();
  });

  it('leaves one readable file when two instances write the same secret concurrently', async () => {
    const a = store();
    const b = store();
    const writes: Array<Promise<void>> = [];
    const values = new Set<string>();
    for (let i = 0; i < 40; i++) {
      const value = `value-${i}-${'x'.repeat(2000)}`;
      values.add(value);
      writes.push((i % 2 === 0 ? a : b).set('contended', value));
    }
    // Reads while writes are in flight must never see a torn file.
    const reads = Array.from({ length: 40 }, () => b.get('contended').catch((e: unknown) => e));
    await Promise.all(writes);
    for (const result of await Promise.all(reads)) {
      if (result instanceof Error) throw result;
      if (result !== undefined) expect(values.has(result as string)).toBe(true);
    }
    expect(values.has((await a.get('contended')) as string)).toBe(true);
    expect(await fs.readdir(directory)).toEqual(['contended.secret.json']);
  });

  it('leaves one readable file when two processes write the same secret concurrently', async () => {
    // Separate processes, not just instances: each child loads the store compiled from source.
    const lib = path.join(root, 'lib');
    await fs.mkdir(lib);
    for (const file of ['types', 'localSecretStore']) {
      const source = path.resolve(__dirname, '../../../src/secrets', `${file}.ts`);
      const { code } = transformFileSync(source, { jsc: { target: 'es2022', parser: { syntax: 'typescript' } }, module: { type: 'commonjs' } });
      await fs.writeFile(path.join(lib, `${file}.js`), code);
    }
    const writer = path.join(root, 'writer.js');
    await fs.writeFile(
      writer,
      `const { LocalSecretStore } = require(${JSON.stringify(path.join(lib, 'localSecretStore.js'))});
       const s = new LocalSecretStore({ key: Buffer.from(process.env.TEST_KEY, 'hex'), directory: process.env.TEST_DIR, env: {} });
       (async () => {
         for (let i = 0; i < 60; i++) {
           await s.set('contended', process.env.TEST_TAG + '-' + i + '-' + 'x'.repeat(4000));
           const v = await s.get('contended');
           if (!/^[ab]-\\d+-x{4000}$/.test(v)) throw new Error('torn read');
         }
       })().catch((e) => { console.error(e.message); process.exit(2); });`,
    );
    const run = promisify(execFile);
    const env = (tag: string): NodeJS.ProcessEnv => ({ PATH: process.env.PATH, TEST_KEY: key.toString('hex'), TEST_DIR: directory, TEST_TAG: tag });
    await Promise.all([run(process.execPath, [writer], { env: env('a') }), run(process.execPath, [writer], { env: env('b') })]);
    expect(await store().get('contended')).toMatch(/^[ab]-59-x{4000}$/);
    expect(await fs.readdir(directory)).toEqual(['contended.secret.json']);
  });

  it('is what the factory builds for a local config, with the same Azure refusal', async () => {
    const s = createSecretStore({ kind: 'local', key, directory }, { env: noAzure });
    expect(s.kind).toBe('local');
    await s.set('via-factory', 'v');
    expect(await store().get('via-factory')).toBe('v');
    expect(() => createSecretStore({ kind: 'local', key, directory }, { env: { WEBSITE_SITE_NAME: 'prod-app' } })).toThrow(LocalSecretStoreRefusedError);
  });

  it('reports health: true for a usable directory, false when it cannot be created', async () => {
    expect(await store().healthCheck()).toBe(true);
    const blocker = path.join(root, 'a-file');
    await fs.writeFile(blocker, '');
    expect(await new LocalSecretStore({ key, directory: path.join(blocker, 'sub'), env: noAzure }).healthCheck()).toBe(false);
  });
});
