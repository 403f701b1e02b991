import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair, SignJWT, type JWK } from 'jose';
import { ApiAuthenticator } from '../../../src/platform/http/auth';
import { ForbiddenError, UnauthorizedError } from '../../../src/platform/errors';

/** Production mode: tokens from an identity provider, verified against its JWKS over HTTP. */
describe('ApiAuthenticator with a JWKS', () => {
  let server: http.Server;
  let jwksUri: string;
  let signingKey: CryptoKey;
  let otherKey: CryptoKey;
  let requests = 0;

  beforeAll(async () => {
    const pair = await generateKeyPair('RS256');
    const other = await generateKeyPair('RS256');
    signingKey = pair.privateKey as CryptoKey;
    otherKey = other.privateKey as CryptoKey;
    const jwk: JWK = { ...(await exportJWK(pair.publicKey)), kid: 'k1', alg: 'RS256', use: 'sig' };
    server = http.createServer((_req, res) => {
      requests++;
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ keys: [jwk] }));
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    jwksUri = `http://127.0.0.1:${(server.address() as AddressInfo).port}/keys`;
  });

  afterAll(() => new Promise<void>((r) => server.close(() => r())));

  const auth = () => new ApiAuthenticator({ kind: 'jwks', jwksUri, issuer: 'https://idp.example/', audience: 'api://connectors', tenantClaim: 'tid', maxAgeSeconds: 3600 });
  const sign = (claims: Record<string, unknown>, opts: { key?: CryptoKey; iss?: string; aud?: string; kid?: string } = {}) =>
    new SignJWT(claims)
      .setProtectedHeader({ alg: 'RS256', kid: opts.kid ?? 'k1' })
      .setIssuer(opts.iss ?? 'https://idp.example/')
      .setAudience(opts.aud ?? 'api://connectors')
      .setIssuedAt()
      .setExpirationTime('5m')
      .sign(opts.key ?? signingKey);

  it('accepts a token signed by a key in the JWKS and reads the configured tenant claim', async () => {
    const a = auth();
    const principal = await a.authenticate(`Bearer ${await sign({ tid: 'tenant-a', sub: 'svc' })}`);
    expect(principal).toMatchObject({ tenantId: 'tenant-a', subject: 'svc' });
    expect(() => a.authorizeTenant(principal, 'tenant-a')).not.toThrow();
    expect(() => a.authorizeTenant(principal, 'tenant-b')).toThrow(ForbiddenError);
    expect(requests).toBeGreaterThan(0);
  });

  it.each([
    ['another key', { key: 'other' }],
    ['the wrong issuer', { iss: 'https://evil.example/' }],
    ['the wrong audience', { aud: 'api://other' }],
  ])('rejects a token with %s', async (_what, o) => {
    const opts = { ...(o as { iss?: string; aud?: string }), ...((o as { key?: string }).key ? { key: otherKey } : {}) };
    await expect(auth().authenticate(`Bearer ${await sign({ tid: 'tenant-a' }, opts)}`)).rejects.toThrow(UnauthorizedError);
  });

  it('rejects a token without the tenant claim, an HS256 token, and a missing header', async () => {
    await expect(auth().authenticate(`Bearer ${await sign({ sub: 'x' })}`)).rejects.toThrow(/"tid" claim/);
    const hs = await new SignJWT({ tid: 'tenant-a' }).setProtectedHeader({ alg: 'HS256' }).setExpirationTime('5m').sign(new TextEncoder().encode('x'.repeat(40)));
    await expect(auth().authenticate(`Bearer ${hs}`)).rejects.toThrow(UnauthorizedError);
    await expect(auth().authenticate(null)).rejects.toThrow(/bearer token is required/);
    await expect(auth().authenticate('Basic abc')).rejects.toThrow(UnauthorizedError);
  });
});

/** The token rules every mode shares: `exp` and `iat` required, a maximum age, and the `typ` header. */
describe('ApiAuthenticator token age and typ (HS256)', () => {
  const secret = new TextEncoder().encode('s'.repeat(40));
  const auth = (extra: { typ?: string } = {}) => new ApiAuthenticator({ kind: 'secret', secret, tenantClaim: 'tenant_id', maxAgeSeconds: 3600, ...extra });
  const now = () => Math.floor(Date.now() / 1000);
  const sign = (o: { iat?: number | null; exp?: number | null; typ?: string } = {}) => {
    let jwt = new SignJWT({ tenant_id: 't1' }).setProtectedHeader({ alg: 'HS256', ...(o.typ !== undefined ? { typ: o.typ } : {}) });
    if (o.iat !== null) jwt = jwt.setIssuedAt(o.iat ?? now());
    if (o.exp !== null) jwt = jwt.setExpirationTime(o.exp ?? now() + 300);
    return jwt.sign(secret);
  };

  it('accepts a fresh token with iat and exp', async () => {
    await expect(auth().authenticate(`Bearer ${await sign()}`)).resolves.toMatchObject({ tenantId: 't1' });
  });

  it('refuses a token without iat, without exp, or older than the maximum age even when exp is far away', async () => {
    await expect(auth().authenticate(`Bearer ${await sign({ iat: null })}`)).rejects.toThrow(/"iat" claim/);
    await expect(auth().authenticate(`Bearer ${await sign({ exp: null })}`)).rejects.toThrow(/"exp" claim/);
    const old = await sign({ iat: now() - 3600 - 120, exp: now() + 365 * 24 * 3600 });
    await expect(auth().authenticate(`Bearer ${old}`)).rejects.toThrow(UnauthorizedError);
    // Issued in the future (beyond the clock tolerance): refused too.
    await expect(auth().authenticate(`Bearer ${await sign({ iat: now() + 600 })}`)).rejects.toThrow(UnauthorizedError);
    // Within the age: accepted.
    await expect(auth().authenticate(`Bearer ${await sign({ iat: now() - 3000 })}`)).resolves.toMatchObject({ tenantId: 't1' });
  });

  it('without a pinned typ accepts none, JWT and at+jwt (any case, application/ prefix), and refuses other JWT types', async () => {
    for (const typ of [undefined, 'JWT', 'jwt', 'at+jwt', 'application/at+JWT']) {
      await expect(auth().authenticate(`Bearer ${await sign(typ === undefined ? {} : { typ })}`)).resolves.toMatchObject({ tenantId: 't1' });
    }
    for (const typ of ['logout+jwt', 'dpop+jwt', 'secevent+jwt', 'JOSE']) {
      await expect(auth().authenticate(`Bearer ${await sign({ typ })}`)).rejects.toThrow(/"typ"/);
    }
  });

  it('with a pinned typ requires exactly it', async () => {
    const pinned = auth({ typ: 'at+jwt' });
    await expect(pinned.authenticate(`Bearer ${await sign({ typ: 'at+jwt' })}`)).resolves.toMatchObject({ tenantId: 't1' });
    await expect(pinned.authenticate(`Bearer ${await sign({ typ: 'application/at+jwt' })}`)).resolves.toMatchObject({ tenantId: 't1' });
    await expect(pinned.authenticate(`Bearer ${await sign({ typ: 'JWT' })}`)).rejects.toThrow(/"typ"/);
    await expect(pinned.authenticate(`Bearer ${await sign()}`)).rejects.toThrow(/"typ"/);
  });
});
