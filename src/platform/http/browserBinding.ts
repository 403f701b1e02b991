import { createHash, hkdfSync, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Cookie, HttpRequest } from '@azure/functions';
import { AppError } from '../errors';

/**
 * Binds an OAuth flow to the browser that started it. The authorize endpoints (called by the engine)
 * hand out a link to our own start page; the start page puts a random secret in a `__Host-` cookie
 * and sends the browser to the provider with a `state` that carries only a hash of it. The callback
 * takes the flow only when the browser brings the cookie back. A state mailed to someone else, or a
 * callback URL replayed from another browser, arrives without the cookie and changes nothing.
 *
 * The secret also yields the PKCE verifier and the OpenID Connect nonce (HKDF with distinct labels),
 * so nothing is kept on the server between the start page and the callback, and neither value can be
 * derived from what travels in the URL.
 */

export type OAuthFlow = 'hubspot' | 'msgraph';

/** Lifetime of the start-page link the authorize endpoints return (single use). */
export const START_TICKET_TTL_SECONDS = 300;
/** Lifetime of the cookie: as long as the provider's leg of the flow may take (the state's 10 minutes). */
export const BINDING_COOKIE_MAX_AGE_SECONDS = 600;

export function startTicketPurpose(flow: OAuthFlow): string {
  return `${flow}-oauth-start`;
}

/** One cookie per provider, so a HubSpot and a Graph connection can run side by side in one browser. */
export function bindingCookieName(flow: OAuthFlow): string {
  return `__Host-itil-oauth-${flow}`;
}

export function newBrowserSecret(): string {
  return randomBytes(32).toString('base64url');
}

function derive(secret: string, label: string): string {
  return Buffer.from(hkdfSync('sha256', Buffer.from(secret, 'base64url'), Buffer.alloc(0), `itil-next oauth ${label}`, 32)).toString('base64url');
}

/** What the signed state carries: a one-way value of the cookie, never the cookie itself. */
export function bindingOf(secret: string): string {
  return derive(secret, 'state binding');
}

/** RFC 7636 `code_verifier` (43 characters of base64url) and its S256 `code_challenge`. */
export function pkceOf(secret: string): { verifier: string; challenge: string } {
  const verifier = derive(secret, 'pkce verifier');
  return { verifier, challenge: createHash('sha256').update(verifier, 'ascii').digest('base64url') };
}

/** The OpenID Connect `nonce` the id_token must carry back. */
export function oidcNonceOf(secret: string): string {
  return derive(secret, 'oidc nonce');
}

/**
 * `Secure; HttpOnly; SameSite=Lax; Path=/`, no Domain: what the `__Host-` prefix demands. Lax is what
 * lets it ride on the provider's top-level GET redirect back to us and on nothing cross-site else.
 * Browsers treat `http://localhost` as a secure context, so local runs keep working.
 */
export function bindingCookie(flow: OAuthFlow, secret: string): Cookie {
  return { name: bindingCookieName(flow), value: secret, path: '/', secure: true, httpOnly: true, sameSite: 'Lax', maxAge: BINDING_COOKIE_MAX_AGE_SECONDS };
}

/** Expires the cookie (the flow is over, whatever its outcome). */
export function clearedBindingCookie(flow: OAuthFlow): Cookie {
  return { name: bindingCookieName(flow), value: '', path: '/', secure: true, httpOnly: true, sameSite: 'Lax', maxAge: 0 };
}

const COOKIE_VALUE = /^[A-Za-z0-9_-]{43}$/;

/**
 * The flow's secret from the request's `Cookie` header, or undefined. Hand-parsed: we need one cookie
 * by exact name out of a `;`-separated list, and our values are base64url, so no quoting or decoding
 * rules come into play; anything else under that name is ignored.
 */
export function browserSecretOf(request: HttpRequest, flow: OAuthFlow): string | undefined {
  const header = request.headers.get('cookie');
  if (!header || header.length > 8192) return undefined;
  const name = bindingCookieName(flow);
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq < 0 || part.slice(0, eq).trim() !== name) continue;
    const value = part.slice(eq + 1).trim();
    if (COOKIE_VALUE.test(value)) return value;
  }
  return undefined;
}

export class BrowserBindingError extends AppError {
  constructor(reason: 'missing' | 'mismatch') {
    super({
      status: 400,
      code: `oauth-browser-${reason}`,
      title: 'This sign-in was started in another browser',
      detail:
        reason === 'missing'
          ? 'This browser did not start this connection (its sign-in cookie is missing or expired). Start the connection again from the application, in this browser.'
          : 'This sign-in belongs to a connection started in another browser. Start the connection again from the application, in this browser.',
    });
  }
}

/** Throws unless the browser's secret is the one the state was issued for (constant-time compare). */
export function requireSameBrowser(secret: string | undefined, expectedBinding: unknown): void {
  if (!secret) throw new BrowserBindingError('missing');
  const actual = Buffer.from(bindingOf(secret));
  const expected = Buffer.from(typeof expectedBinding === 'string' ? expectedBinding : '');
  if (actual.length !== expected.length || !timingSafeEqual(actual, expected)) throw new BrowserBindingError('mismatch');
}

/** The start page's answer: set the cookie and send the browser on to the provider. */
export function redirectWithBinding(location: string, cookie: Cookie): { status: number; headers: Record<string, string>; cookies: Cookie[]; body: string } {
  return {
    status: 302,
    headers: { Location: location, 'Cache-Control': 'no-store', 'Referrer-Policy': 'no-referrer', 'Content-Type': 'text/plain; charset=utf-8' },
    cookies: [cookie],
    body: 'Redirecting to the sign-in page.',
  };
}
