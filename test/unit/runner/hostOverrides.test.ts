import { readFileSync } from 'node:fs';
import path from 'node:path';
import { applyHostOverrides, readHostSettings } from '../../../runner/hostConfig';
import { HOST_FUNCTION_TIMEOUT_MS, parseConfig } from '../../../src/config/config';
import { ROOT } from '../../helpers/runner';

describe('host.json overrides from app settings (AzureFunctionsJobHost__…), as the Functions host applies them', () => {
  it('replaces nested values case-insensitively, turns digit-only values into numbers, and leaves the file alone', () => {
    const file = { version: '2.0', functionTimeout: '00:10:00', extensions: { queues: { visibilityTimeout: '00:00:10', batchSize: 16 } } };
    const out = applyHostOverrides(file, {
      AzureFunctionsJobHost__functionTimeout: '00:00:20',
      azurefunctionsjobhost__Extensions__Queues__VisibilityTimeout: '00:00:01',
      AzureFunctionsJobHost__extensions__queues__batchSize: '4',
      AzureFunctionsJobHost__extensions__http__routePrefix: 'x',
      UNRELATED: 'y',
    });
    expect(out).toEqual({ version: '2.0', functionTimeout: '00:00:20', extensions: { queues: { visibilityTimeout: '00:00:01', batchSize: 4 }, http: { routePrefix: 'x' } } });
    expect(file.functionTimeout).toBe('00:10:00');
  });

  it("the runner's settings follow the overrides (the crash-point tests shorten the timeout this way)", () => {
    const plain = readHostSettings(ROOT, {});
    const short = readHostSettings(ROOT, { AzureFunctionsJobHost__functionTimeout: '00:00:20', AzureFunctionsJobHost__extensions__queues__visibilityTimeout: '00:00:01' });
    expect(plain.functionTimeoutMs).toBe(600_000);
    expect(short.functionTimeoutMs).toBe(20_000);
    expect(short.queues.visibilityTimeoutMs).toBe(1_000);
    expect(short.queues.batchSize).toBe(plain.queues.batchSize);
  });

  it("the app reads the same override, and without it host.json's functionTimeout", () => {
    const hostJson = JSON.parse(readFileSync(path.join(ROOT, 'host.json'), 'utf8')) as { functionTimeout: string };
    expect(readHostSettings(ROOT, {}).functionTimeoutMs).toBe(HOST_FUNCTION_TIMEOUT_MS);
    expect(hostJson.functionTimeout).toBe('00:10:00');
    const env = { AzureWebJobsStorage: 'UseDevelopmentStorage=true', PUBLIC_BASE_URL: 'http://localhost:7071', API_JWT_SECRET: 'x'.repeat(32), LOCAL_SECRET_KEY: Buffer.alloc(32, 1).toString('base64') };
    expect(parseConfig(env).functionTimeoutMs).toBe(600_000);
    expect(parseConfig({ ...env, AzureFunctionsJobHost__functionTimeout: '00:00:20' }).functionTimeoutMs).toBe(20_000);
    expect(parseConfig({ ...env, AzureFunctionsJobHost__functionTimeout: '1.02:03:04' }).functionTimeoutMs).toBe(((24 + 2) * 60 + 3) * 60_000 + 4_000);
    expect(() => parseConfig({ ...env, AzureFunctionsJobHost__functionTimeout: '20s' })).toThrow(/AzureFunctionsJobHost__functionTimeout/);
  });
});
