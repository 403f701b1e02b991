import { app, type HttpResponseInit } from '@azure/functions';
import { z } from 'zod';
import { beginSignIn, getGraphServices } from '../connectors/msgraph';
import { AppError } from '../platform/errors';
import { htmlPage, httpHandler } from '../platform/http';
import { bindingCookie, newBrowserSecret, redirectWithBinding } from '../platform/http/browserBinding';

const startQuerySchema = z.object({ ticket: z.string().max(4096).optional() });

function fail(status: number, message: string): HttpResponseInit {
  return htmlPage({ status, title: 'Could not connect', message, tone: 'fail' });
}

/**
 * The link `GET /api/msgraph/authorize/...` returns. Anonymous (the browser has no token): only the
 * signed, single-use ticket is trusted. Sets the `__Host-` cookie that binds the flow to this browser
 * and redirects to Microsoft's sign-in (OpenID Connect, PKCE, nonce).
 */
app.http('msgraphOAuthStart', {
  methods: ['GET'],
  route: 'msgraph/oauth/start',
  authLevel: 'anonymous',
  handler: httpHandler(
    { auth: 'anonymous', summary: 'Start page of a Microsoft 365 connection (ticket from authorize): sets the browser-binding cookie, 302 to Microsoft sign-in', query: startQuerySchema },
    async ({ query, log }) => {
      if (!query.ticket) return fail(400, 'The link is missing its sign-in ticket. Start again from the app.');
      try {
        const secret = newBrowserSecret();
        const started = await beginSignIn(getGraphServices(), query.ticket, secret);
        log.info('msgraph sign-in started', { tenantId: started.tenantId, integrationId: started.integrationId });
        return redirectWithBinding(started.url, bindingCookie('msgraph', secret));
      } catch (err) {
        if (err instanceof AppError && err.expose) {
          log.warn('msgraph start link refused', { code: err.code, status: err.status });
          return fail(err.status, `${err.message} Start again from the app.`);
        }
        log.error('msgraph start failed', { error: err instanceof Error ? err : new Error('non-error thrown') });
        return fail(err instanceof AppError ? err.status : 500, 'Something went wrong on our side. Try again later.');
      }
    },
  ),
});
