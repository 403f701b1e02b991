import { formatHits, scanForSecrets, SECRET_SCAN_ENV } from '../helpers/secretScan';

/**
 * The secret scan over the whole run (the sequencer runs this file last): no secret, token, clientState
 * or webhook URL that any test or fake created appears in any runner's output, any error body a test
 * received, or any queue message. globalTeardown repeats it for runs of a few files.
 */
describe('secret scan over the end-to-end run', () => {
  it('finds no registered secret in runner output, error bodies or queue messages', () => {
    const dir = process.env[SECRET_SCAN_ENV];
    expect(dir).toBeDefined();
    const result = scanForSecrets(dir);
    // When this file runs alone nothing was recorded; with the suite, there is something to search.
    if (result.secrets > 0) expect(result.sources).toBeGreaterThan(0);
    if (result.hits.length > 0) throw new Error(`${result.hits.length} leak(s):\n${formatHits(result.hits)}`);
  });
});
