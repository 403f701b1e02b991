import { app, type HttpResponseInit } from '@azure/functions';
import { completeAdminConsent, consentCallbackQuerySchema, getGraphServices } from '../connectors/msgraph';
import { AppError } from '../platform/errors';
import { htmlPage, httpHandler } from '../platform/http';
import { InvalidSignedTokenError } from '../platform/signedTokens';

function page(status: number, title: string, message: string): HttpResponseInit {
  return htmlPage({ status, title, message, tone: status < 400 ? 'ok' : 'fail' });
}

/** Where Microsoft sends the admin's browser after admin consent; answers a small HTML page. */
app.http('msgraphOAuthCallback', {
  methods: ['GET'],
  route: 'msgraph/oauth/callback',
  authLevel: 'anonymous',
  handler: httpHandler({ auth: 'anonymous', query: consentCallbackQuerySchema }, async ({ query, log }) => {
    try {
      const outcome = await completeAdminConsent(getGraphServices(), query, log);
      if (outcome.status === 'connected') return page(200, 'Microsoft 365 connected', 'Your organisation is connected. You can close this window.');
      if (outcome.status === 'declined') return page(400, 'Consent not granted', `Microsoft reported: ${outcome.error}. Nothing was connected; an administrator can try again from the app.`);
      return page(502, 'Could not finish connecting', 'Consent was recorded, but Microsoft did not yet issue the app a token for your organisation. Consent can take a few minutes to apply; try again shortly.');
    } catch (err) {
      if (err instanceof InvalidSignedTokenError) return page(400, 'Link not valid', 'This sign-in link has expired or was already used. Start again from the app.');
      if (err instanceof AppError && err.expose) return page(err.status, 'Could not connect', err.message);
      log.error('msgraph consent callback failed', { error: err instanceof Error ? err : new Error('non-error thrown') });
      return page(500, 'Could not connect', 'Something went wrong on our side. Try again later.');
    }
  }),
});
