import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';

/**
 * The official Adaptive Card 1.5 JSON schema (draft-06), `schemas/1.5.0/adaptive-card.json` of
 * github.com/microsoft/AdaptiveCards (MIT). No npm package ships it, so it is not vendored here; it is
 * looked up, in order, at `$ADAPTIVE_CARD_SCHEMA`, `test/fixtures/adaptive-card-1.5.schema.json`, and
 * `../shared/reference/adaptive-card-1.5.schema.json` (the steering repo's shared folder beside the
 * clone). The file must be byte-identical to the official one (checked by SHA-256), so a hand-edited
 * copy cannot pass for it.
 */
export const OFFICIAL_SCHEMA_SHA256 = '32c91fb285180a266a55b3475dd0396e63fe079311714d3a14963b41f5e17920';
export const OFFICIAL_SCHEMA_SOURCE = 'github.com/microsoft/AdaptiveCards schemas/1.5.0/adaptive-card.json (blob 8301d0efef25d6626b52d6e38b20dc81dc59502e)';

const ROOT = path.resolve(__dirname, '..', '..', '..');

export function schemaCandidates(): string[] {
  return [
    ...(process.env.ADAPTIVE_CARD_SCHEMA ? [path.resolve(process.env.ADAPTIVE_CARD_SCHEMA)] : []),
    path.join(ROOT, 'test', 'fixtures', 'adaptive-card-1.5.schema.json'),
    path.join(ROOT, '..', 'shared', 'reference', 'adaptive-card-1.5.schema.json'),
  ];
}

export interface OfficialSchema {
  path: string;
  schema: Record<string, unknown>;
}

let loaded: OfficialSchema | null | undefined;

/** The schema, or null when no candidate exists. A candidate with other bytes is an error, not a miss. */
export function loadOfficialSchema(): OfficialSchema | null {
  if (loaded !== undefined) return loaded;
  loaded = null;
  for (const p of schemaCandidates()) {
    if (!existsSync(p)) continue;
    const bytes = readFileSync(p);
    const digest = createHash('sha256').update(bytes).digest('hex');
    if (digest !== OFFICIAL_SCHEMA_SHA256) throw new Error(`${p} is not the official Adaptive Card 1.5 schema (sha256 ${digest})`);
    loaded = { path: p, schema: JSON.parse(bytes.toString('utf8')) as Record<string, unknown> };
    break;
  }
  return loaded;
}
