import { createHash } from 'node:crypto';
import { HttpRequest } from '@azure/functions';
import {
  bindingCookie,
  bindingOf,
  BrowserBindingError,
  browserSecretOf,
  clearedBindingCookie,
  newBrowserSecret,
  oidcNonceOf,
  pkceOf,
  requireSameBrowser,
} from '../../../src/platform/http/browserBinding';

const req = (cookie?: string) => new HttpRequest({ url: 'http://localhost/api/x', method: 'GET', headers: cookie === undefined ? {} : { cookie } });

describe('OAuth browser binding', () => {
  it('the cookie is __Host- prefixed, Secure, HttpOnly, SameSite=Lax, Path=/ and has no Domain', () => {
    const c = bindingCookie('msgraph', newBrowserSecret());
    expect(c).toMatchObject({ name: '__Host-itil-oauth-msgraph', path: '/', secure: true, httpOnly: true, sameSite: 'Lax', maxAge: 600 });
    expect(c.domain).toBeUndefined();
    expect(clearedBindingCookie('hubspot')).toMatchObject({ name: '__Host-itil-oauth-hubspot', value: '', maxAge: 0, secure: true, path: '/' });
  });

  it("reads exactly its flow's cookie out of a Cookie header, and nothing malformed", () => {
    const s = newBrowserSecret();
    expect(browserSecretOf(req(`a=1; __Host-itil-oauth-msgraph=${s}; b=2`), 'msgraph')).toBe(s);
    expect(browserSecretOf(req(`__Host-itil-oauth-msgraph=${s}`), 'hubspot')).toBeUndefined();
    expect(browserSecretOf(req('__Host-itil-oauth-msgraph=short'), 'msgraph')).toBeUndefined();
    expect(browserSecretOf(req(`__Host-itil-oauth-msgraph="${s}"`), 'msgraph')).toBeUndefined();
    expect(browserSecretOf(req(`x__Host-itil-oauth-msgraph=${s}`), 'msgraph')).toBeUndefined();
    expect(browserSecretOf(req(), 'msgraph')).toBeUndefined();
    expect(browserSecretOf(req(`${'a=b; '.repeat(2000)}__Host-itil-oauth-msgraph=${s}`), 'msgraph')).toBeUndefined();
  });

  it('the state carries a one-way value: the cookie, the PKCE verifier and the nonce are all different and not derivable from it', () => {
    const s = newBrowserSecret();
    const values = [s, bindingOf(s), pkceOf(s).verifier, pkceOf(s).challenge, oidcNonceOf(s)];
    expect(new Set(values).size).toBe(values.length);
    for (const v of values) expect(v).toMatch(/^[\w-]{43}$/);
    // RFC 7636 S256: challenge = BASE64URL(SHA256(ASCII(verifier))).
    expect(pkceOf(s).challenge).toBe(createHash('sha256').update(pkceOf(s).verifier).digest('base64url'));
    expect(bindingOf(s)).toBe(bindingOf(s));
  });

  it('only the browser whose secret the state names passes', () => {
    const s = newBrowserSecret();
    expect(() => requireSameBrowser(s, bindingOf(s))).not.toThrow();
    expect(() => requireSameBrowser(undefined, bindingOf(s))).toThrow(BrowserBindingError);
    expect(() => requireSameBrowser(newBrowserSecret(), bindingOf(s))).toThrow(BrowserBindingError);
    expect(() => requireSameBrowser(s, undefined)).toThrow(BrowserBindingError);
    expect(() => requireSameBrowser(s, 42)).toThrow(BrowserBindingError);
    expect(() => requireSameBrowser(s, s)).toThrow(BrowserBindingError);
  });
});
