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

  const auth = () => new ApiAuthenticator({ kind: 'jwks', jwksUri, issuer: 'https://idp.example/', audience: 'api://connectors', tenantClaim: 'tid' });
  const sign = (claims: Record<string, unknown>, opts: { key?: CryptoKey; iss?: string; aud?: string; kid?: string } = {}) =>
    new SignJWT(claims)
      .setProtectedHeader({ alg: 'RS256', kid: opts.kid ?? 'k1' })
      .setIssuer(opts.iss ?? 'https://idp.example/')
      .setAudience(opts.aud ?? 'api://connectors')
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
