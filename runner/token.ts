import path from 'node:path';
import { parseArgs } from 'node:util';
import { SignJWT } from 'jose';
import { readLocalSettings } from './settings';

/** `npm run token -- <tenant_id>`: a short-lived HS256 token for the local management API. */
async function main(): Promise<void> {
  const { values, positionals } = parseArgs({ allowPositionals: true, options: { ttl: { type: 'string', default: '3600' }, sub: { type: 'string', default: 'local-dev' } } });
  const tenant = positionals[0];
  if (!tenant) throw new Error('usage: npm run token -- <tenant_id> [--ttl seconds]');
  const settings = readLocalSettings(path.resolve(__dirname, '..', '..', 'local.settings.json'));
  const secret = process.env.API_JWT_SECRET ?? settings?.Values.API_JWT_SECRET;
  if (!secret) throw new Error('API_JWT_SECRET is not set; run npm start once to generate local settings.');
  const claim = process.env.API_JWT_TENANT_CLAIM ?? settings?.Values.API_JWT_TENANT_CLAIM ?? 'tenant_id';
  const issuer = process.env.API_JWT_ISSUER ?? settings?.Values.API_JWT_ISSUER;
  const audience = process.env.API_JWT_AUDIENCE ?? settings?.Values.API_JWT_AUDIENCE;
  let jwt = new SignJWT({ [claim]: tenant }).setProtectedHeader({ alg: 'HS256' }).setSubject(values.sub).setIssuedAt().setExpirationTime(`${Number(values.ttl)}s`);
  if (issuer) jwt = jwt.setIssuer(issuer);
  if (audience) jwt = jwt.setAudience(audience);
  process.stdout.write((await jwt.sign(new TextEncoder().encode(secret))) + '\n');
}

main().catch((err: unknown) => {
  process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
