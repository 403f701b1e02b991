import { SignJWT } from 'jose';
import { registerSecret } from './secretScan';

export const TEST_JWT_SECRET = 'test-jwt-secret-0123456789-abcdefghijklmnop';

export async function tenantToken(tenant: string, opts: { secret?: string; expiresIn?: string; claim?: string; extra?: Record<string, unknown> } = {}): Promise<string> {
  registerSecret(opts.secret ?? TEST_JWT_SECRET, 'API_JWT_SECRET');
  const token = await new SignJWT({ [opts.claim ?? 'tenant_id']: tenant, ...(opts.extra ?? {}) })
    .setProtectedHeader({ alg: 'HS256' })
    .setSubject('engine-test')
    .setIssuedAt()
    .setExpirationTime(opts.expiresIn ?? '10m')
    .sign(new TextEncoder().encode(opts.secret ?? TEST_JWT_SECRET));
  registerSecret(token, `bearer token of ${tenant}`);
  return token;
}
