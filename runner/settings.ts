import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { z } from 'zod';

const localSettingsSchema = z.object({
  IsEncrypted: z.boolean().optional(),
  Values: z.record(z.string(), z.string()).default({}),
  Host: z.object({ LocalHttpPort: z.number().int().optional() }).passthrough().optional(),
  ConnectionStrings: z.record(z.string(), z.string()).optional(),
});

export type LocalSettings = z.infer<typeof localSettingsSchema>;

export function readLocalSettings(file: string): LocalSettings | undefined {
  if (!existsSync(file)) return undefined;
  const parsed = localSettingsSchema.parse(JSON.parse(readFileSync(file, 'utf8')));
  if (parsed.IsEncrypted) throw new Error(`${file} is encrypted (IsEncrypted: true); the local runner reads plain settings only.`);
  return parsed;
}

/**
 * Puts local.settings.json `Values` into the process environment, except where a variable is already
 * set: the environment wins, as with Core Tools, so a test or script can override anything without
 * editing files. Returns the names applied from the file.
 */
export function applySettings(values: Record<string, string>, env: NodeJS.ProcessEnv = process.env): string[] {
  const applied: string[] = [];
  for (const [k, v] of Object.entries(values)) {
    if (env[k] === undefined) {
      env[k] = v;
      applied.push(k);
    }
  }
  return applied;
}

/** Settings generated on first start when empty: fresh random values, written back to the file. */
const GENERATED: Record<string, () => string> = {
  LOCAL_SECRET_KEY: () => randomBytes(32).toString('base64'),
  API_JWT_SECRET: () => randomBytes(32).toString('base64url'),
  LOCAL_FUNCTION_KEY: () => randomBytes(24).toString('base64url'),
  LOCAL_MASTER_KEY: () => randomBytes(24).toString('base64url'),
};

/**
 * Makes sure local.settings.json exists (copied from the sample) and holds generated local secrets.
 * Returns the names it generated so the caller can say so.
 */
export function ensureLocalSettings(appDir: string): { file: string; generated: string[]; created: boolean } {
  const file = path.join(appDir, 'local.settings.json');
  let created = false;
  if (!existsSync(file)) {
    const sample = path.join(appDir, 'local.settings.sample.json');
    writeFileSync(file, readFileSync(sample, 'utf8'), { mode: 0o600 });
    created = true;
  }
  const settings = readLocalSettings(file) as LocalSettings;
  const generated: string[] = [];
  for (const [name, make] of Object.entries(GENERATED)) {
    if (name in settings.Values && !settings.Values[name] && !process.env[name]) {
      settings.Values[name] = make();
      generated.push(name);
    }
  }
  if (generated.length > 0) writeFileSync(file, JSON.stringify(settings, null, 2) + '\n', { mode: 0o600 });
  return { file, generated, created };
}
