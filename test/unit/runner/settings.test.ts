import { copyFileSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { decodeKey256 } from '../../../src/config';
import { applySettings, ensureLocalSettings, readLocalSettings } from '../../../runner/settings';
import { ROOT } from '../../helpers/runner';

describe('local settings', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'itil-settings-'));
    copyFileSync(path.join(ROOT, 'local.settings.sample.json'), path.join(dir, 'local.settings.sample.json'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('first start copies the sample and generates the local keys, privately; a second start keeps them', () => {
    const first = ensureLocalSettings(dir);
    expect(first.created).toBe(true);
    expect(first.generated.sort()).toEqual(['API_JWT_SECRET', 'LOCAL_FUNCTION_KEY', 'LOCAL_MASTER_KEY', 'LOCAL_SECRET_KEY']);
    const file = path.join(dir, 'local.settings.json');
    expect(statSync(file).mode & 0o077).toBe(0);
    const values = readLocalSettings(file)?.Values as Record<string, string>;
    expect(decodeKey256(values.LOCAL_SECRET_KEY as string)?.length).toBe(32);
    expect(Buffer.byteLength(values.API_JWT_SECRET as string)).toBeGreaterThanOrEqual(32);
    const before = readFileSync(file, 'utf8');
    const second = ensureLocalSettings(dir);
    expect(second).toMatchObject({ created: false, generated: [] });
    expect(readFileSync(file, 'utf8')).toBe(before);
  });

  it('variables already in the environment win over the file', () => {
    const env: NodeJS.ProcessEnv = { PUBLIC_BASE_URL: 'https://from-env.example' };
    const applied = applySettings({ PUBLIC_BASE_URL: 'http://localhost:7071', LOG_LEVEL: 'debug' }, env);
    expect(env).toEqual({ PUBLIC_BASE_URL: 'https://from-env.example', LOG_LEVEL: 'debug' });
    expect(applied).toEqual(['LOG_LEVEL']);
  });
});
