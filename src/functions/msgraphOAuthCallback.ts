import { app, type HttpResponseInit } from '@azure/functions';
import { completeCallback, consentCallbackQuerySchema, getGraphServices } from '../connectors/msgraph';
import { AppError, ValidationError } from '../platform/errors';
import { htmlPage, httpHandler } from '../platform/http';
import { BrowserBindingError, browserSecretOf, clearedBindingCookie } from '../platform/http/browserBinding';
import { InvalidSignedTokenError } from '../platform/signedTokens';

function page(status: number, title: string, message: string): HttpResponseInit {
  return htmlPage({ status, title, message, tone: status < 400 ? 'ok' : 'fail' });
}

/**
 * Where Microsoft sends the admin's browser, after the sign-in (with a `code`: on to admin consent for
 * the signed-in organisation) and after admin consent (connects it). Anonymous: only the signed state,
 * from the browser that opened our start page, is trusted. Answers a small HTML page or a redirect.
 */
app.http('msgraphOAuthCallback', {
  methods: ['GET'],
  route: 'msgraph/oauth/callback',
  authLevel: 'anonymous',
  handler: httpHandler({ auth: 'anonymous', summary: 'Microsoft sign-in and admin-consent redirect target: verifies the id_token, then connects exactly the signed-in Entra tenant; HTML page or 302', query: consentCallbackQuerySchema }, async ({ request, query, log }) => {
    const browserSecret = browserSecretOf(request, 'msgraph');
    // Once this browser's flow has ended (its state consumed), whatever the outcome, its cookie goes. A
    // refused forgery or replay ends nothing, so it leaves the cookie of a flow still under way alone.
    const done = (res: HttpResponseInit): HttpResponseInit => (browserSecret ? { ...res, cookies: [clearedBindingCookie('msgraph')] } : res);
    try {
      const outcome = await completeCallback(getGraphServices(), query, browserSecret, log);
      if (outcome.status === 'consent_redirect') {
        return { status: 302, headers: { Location: outcome.url, 'Cache-Control': 'no-store', 'Referrer-Policy': 'no-referrer', 'Content-Type': 'text/plain; charset=utf-8' }, body: 'Redirecting to admin consent.' };
      }
      if (outcome.status === 'connected') {
        return done(page(200, 'Microsoft 365 connected', `The Microsoft 365 organisation ${outcome.entraTenantId} (Entra tenant) is connected to the itil-next tenant ${outcome.tenant}. You can close this window.`));
      }
      if (outcome.status === 'declined') return done(page(400, 'Consent not granted', `Microsoft reported: ${outcome.error}. Nothing was connected; an administrator can try again from the app.`));
      return done(page(502, 'Could not finish connecting', 'Consent was recorded, but Microsoft did not yet issue the app a token for your organisation. Consent can take a few minutes to apply; try again shortly.'));
    } catch (err) {
      if (err instanceof BrowserBindingError) {
        log.warn('msgraph callback from another browser refused', { code: err.code });
        return page(err.status, err.title, err.message);
      }
      if (err instanceof InvalidSignedTokenError) return page(400, 'Link not valid', 'This sign-in link has expired or was already used. Start again from the app.');
      if (err instanceof ValidationError) return page(err.status, 'Could not connect', err.message);
      if (err instanceof AppError && err.expose) return done(page(err.status, 'Could not connect', err.message));
      log.error('msgraph consent callback failed', { error: err instanceof Error ? err : new Error('non-error thrown') });
      return done(page(500, 'Could not connect', 'Something went wrong on our side. Try again later.'));
    }
  }),
});
