import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { ROOT } from '../helpers/runner';

/** The committed openapi.json is what `npm run openapi` generates from the registrations today. */
describe('openapi.json', () => {
  const generated = execFileSync(process.execPath, [path.join(ROOT, 'dist', 'runner', 'openapi.js'), '--app', ROOT, '--stdout'], { encoding: 'utf8' });
  const doc = JSON.parse(generated) as { openapi: string; paths: Record<string, Record<string, { security: unknown[]; parameters: Array<{ name: string; in: string }> }>> };

  it('is committed and up to date (run `npm run openapi` after changing a route)', () => {
    expect(readFileSync(path.join(ROOT, 'openapi.json'), 'utf8')).toBe(generated);
  });

  it('describes every HTTP route with its path parameters and security', () => {
    expect(doc.openapi).toBe('3.1.0');
    const list = doc.paths['/api/integrations/{tenant_id}']?.get;
    expect(list?.parameters.map((p) => `${p.in}:${p.name}`)).toEqual(['path:tenant_id', 'query:type']);
    expect(list?.security).toEqual([{ bearer: [], functionKey: [] }]);
    expect(doc.paths['/api/health']?.get?.security).toEqual([]);
    for (const [p, ops] of Object.entries(doc.paths)) {
      const names = [...p.matchAll(/\{([^}]+)\}/g)].map((m) => m[1]);
      for (const op of Object.values(ops)) for (const n of names) expect(op.parameters).toContainEqual(expect.objectContaining({ name: n, in: 'path' }));
    }
  });
});
