import { app } from '@azure/functions';
import { z } from 'zod';
import { beginConsent, callbackPage, getHubSpotServices } from '../connectors/hubspot';
import { AppError } from '../platform/errors';
import { httpHandler } from '../platform/http';
import { bindingCookie, newBrowserSecret, redirectWithBinding } from '../platform/http/browserBinding';

const startQuerySchema = z.object({ ticket: z.string().max(4096).optional() });

/**
 * The link `GET /api/hubspot/authorize/...` returns. Anonymous (the browser has no token): only the
 * signed, single-use ticket is trusted. Sets the `__Host-` cookie that binds the flow to this browser
 * and redirects to HubSpot's consent screen.
 */
app.http('hubspotOAuthStart', {
  methods: ['GET'],
  route: 'hubspot/oauth/start',
  authLevel: 'anonymous',
  handler: httpHandler(
    { auth: 'anonymous', summary: 'Start page of a HubSpot connection (ticket from authorize): sets the browser-binding cookie, 302 to HubSpot', query: startQuerySchema },
    async ({ query, log }) => {
      const fail = (status: number, message: string) => callbackPage({ status, connected: false, title: 'HubSpot was not connected', message });
      if (!query.ticket) return fail(400, 'The link is missing its sign-in ticket. Start the connection again from the application.');
      try {
        const secret = newBrowserSecret();
        const started = await beginConsent(getHubSpotServices(), query.ticket, secret);
        log.info('HubSpot consent started', { tenantId: started.tenantId, integrationId: started.integrationId });
        return redirectWithBinding(started.url, bindingCookie('hubspot', secret));
      } catch (err) {
        if (err instanceof AppError && err.expose) {
          log.warn('HubSpot start link refused', { code: err.code, status: err.status });
          return fail(err.status, `${err.message} Start the connection again from the application.`);
        }
        log.error('HubSpot start failed', { error: err instanceof Error ? err : new Error(String(err)) });
        return fail(err instanceof AppError ? err.status : 500, 'Something went wrong on our side. Start the connection again in a few minutes.');
      }
    },
  ),
});
