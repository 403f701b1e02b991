import { app, type HttpRequest, type HttpResponseInit } from '@azure/functions';
import { z } from 'zod';
import { callbackPage, completeAuthorization, getHubSpotServices } from '../connectors/hubspot';
import { AppError } from '../platform/errors';
import { InvalidSignedTokenError } from '../platform/signedTokens';
import { httpHandler, PayloadTooLargeError, readBodyBounded } from '../platform/http';
import { BrowserBindingError, browserSecretOf, clearedBindingCookie } from '../platform/http/browserBinding';

const MAX_FORM_BYTES = 16 * 1024;

const callbackSchema = z.object({
  state: z.string().min(1).max(4096),
  code: z.string().min(1).max(2048).optional(),
  error: z.string().max(200).optional(),
  error_description: z.string().max(2000).optional(),
});

/**
 * Where HubSpot sends the browser after consent (GET), or a form post (POST). Anonymous: only the
 * signed, single-use `state` is trusted, and only from the browser that opened our start page (its
 * `__Host-` cookie; a cross-site POST does not carry a Lax cookie, so browsers come back by GET).
 * Answers a small HTML page either way, naming our tenant and the HubSpot portal when connected.
 */
app.http('hubspotOAuthCallback', {
  methods: ['GET', 'POST'],
  route: 'hubspot/oauth/callback',
  authLevel: 'anonymous',
  handler: httpHandler({ auth: 'anonymous', summary: 'HubSpot OAuth redirect target (code, state): connects the integration; answers an HTML page' }, async ({ request, log }) => {
    const params = callbackSchema.safeParse(await callbackParams(request));
    if (!params.success) {
      return callbackPage({ status: 400, connected: false, title: 'HubSpot was not connected', message: 'The request is missing its sign-in state. Start the connection again from the application.' });
    }
    const browserSecret = browserSecretOf(request, 'hubspot');
    // The flow is over once this browser's state was taken, whatever the outcome: the cookie goes.
    const done = (page: HttpResponseInit): HttpResponseInit => (browserSecret ? { ...page, cookies: [clearedBindingCookie('hubspot')] } : page);
    try {
      const connected = await completeAuthorization(getHubSpotServices(), { code: params.data.code, state: params.data.state, error: params.data.error, browserSecret }, log);
      return done(
        callbackPage({
          status: 200,
          connected: true,
          title: 'HubSpot connected',
          message: `The HubSpot account ${connected.hubDomain ?? connected.hubId} (portal ${connected.hubId}) is connected to the itil-next tenant ${connected.tenantId}. The first synchronisation has started.`,
        }),
      );
    } catch (err) {
      // Another browser's callback, or a forged or replayed state, ends nothing: a flow still under way in this browser keeps its cookie.
      if (err instanceof BrowserBindingError || err instanceof InvalidSignedTokenError) {
        log.warn('HubSpot callback refused before its state was used', { code: err.code, status: err.status });
        return callbackPage({ status: err.status, connected: false, title: 'HubSpot was not connected', message: err.message });
      }
      if (err instanceof AppError && err.expose) {
        log.warn('HubSpot connection refused', { code: err.code, status: err.status });
        return done(callbackPage({ status: err.status, connected: false, title: 'HubSpot was not connected', message: err.message }));
      }
      log.error('HubSpot connection failed', { error: err instanceof Error ? err : new Error(String(err)) });
      return callbackPage({ status: err instanceof AppError ? err.status : 500, connected: false, title: 'HubSpot was not connected', message: 'Something went wrong on our side. Start the connection again in a few minutes.' });
    }
  }),
});

async function callbackParams(request: HttpRequest): Promise<Record<string, string>> {
  const out: Record<string, string> = Object.fromEntries(request.query.entries());
  if (request.method !== 'POST') return out;
  let text: string;
  try {
    text = (await readBodyBounded(request, MAX_FORM_BYTES)).toString('utf8');
  } catch (err) {
    // An oversized form has no usable state: the same 400 page as a missing one.
    if (err instanceof PayloadTooLargeError) return {};
    throw err;
  }
  if (/json/i.test(request.headers.get('content-type') ?? '')) {
    try {
      const parsed: unknown = JSON.parse(text);
      if (parsed && typeof parsed === 'object') for (const [k, v] of Object.entries(parsed)) if (typeof v === 'string') out[k] = v;
    } catch {
      return {};
    }
    return out;
  }
  for (const [k, v] of new URLSearchParams(text)) out[k] = v;
  return out;
}
