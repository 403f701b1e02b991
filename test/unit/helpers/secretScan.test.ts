import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { recordOutput, registerSecret, scanForSecrets, SECRET_SCAN_ENV } from '../../helpers/secretScan';

/** The scanner itself, on a folder of its own: a planted secret is found in each form it may take. */
describe('secret scan', () => {
  let dir: string;
  let saved: string | undefined;
  beforeEach(() => {
    saved = process.env[SECRET_SCAN_ENV];
    dir = mkdtempSync(path.join(os.tmpdir(), 'scan-unit-'));
    process.env[SECRET_SCAN_ENV] = dir;
  });
  afterEach(() => {
    if (saved === undefined) delete process.env[SECRET_SCAN_ENV];
    else process.env[SECRET_SCAN_ENV] = saved;
    rmSync(dir, { recursive: true, force: true });
  });

  it('finds a planted secret raw, URL-encoded and JSON-escaped, and nothing in clean output', () => {
    registerSecret('pat-na1-planted-0000-secret', 'planted token');
    registerSecret('https://x.example/hook?sig=abc/def+"q"', 'planted url');
    registerSecret('short', 'too short to mean anything');
    recordOutput('runner-1.log', 'clean line\nanother line mentioning short\n');
    expect(scanForSecrets(dir).hits).toEqual([]);

    recordOutput('runner-1.log', '{"msg":"calling","token":"pat-na1-planted-0000-secret"}\n');
    recordOutput('error-bodies.log', `url=${encodeURIComponent('https://x.example/hook?sig=abc/def+"q"')}\n`);
    recordOutput('queue.log', JSON.stringify({ u: 'https://x.example/hook?sig=abc/def+"q"' }));
    const hits = scanForSecrets(dir).hits;
    expect(hits.map((h) => [h.label, h.source]).sort()).toEqual([
      ['planted token', 'runner-1.log'],
      ['planted url', 'error-bodies.log'],
      ['planted url', 'queue.log'],
    ]);
    expect(hits.every((h) => !h.context.includes('pat-na1-planted'))).toBe(true);
  });
});
