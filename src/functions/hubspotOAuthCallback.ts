import { app, type HttpRequest } from '@azure/functions';
import { z } from 'zod';
import { callbackPage, completeAuthorization, getHubSpotServices } from '../connectors/hubspot';
import { AppError } from '../platform/errors';
import { httpHandler, PayloadTooLargeError, readBodyBounded } from '../platform/http';

const MAX_FORM_BYTES = 16 * 1024;

const callbackSchema = z.object({
  state: z.string().min(1).max(4096),
  code: z.string().min(1).max(2048).optional(),
  error: z.string().max(200).optional(),
  error_description: z.string().max(2000).optional(),
});

/**
 * Where HubSpot sends the browser after consent (GET), or a form post (POST). Anonymous: only the
 * signed, single-use `state` is trusted. Answers a small HTML page either way.
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
    try {
      const done = await completeAuthorization(getHubSpotServices(), { code: params.data.code, state: params.data.state, error: params.data.error }, log);
      return callbackPage({
        status: 200,
        connected: true,
        title: 'HubSpot connected',
        message: `The HubSpot account ${done.hubDomain ?? done.hubId} is connected. The first synchronisation has started.`,
      });
    } catch (err) {
      if (err instanceof AppError && err.expose) {
        log.warn('HubSpot connection refused', { code: err.code, status: err.status });
        return callbackPage({ status: err.status, connected: false, title: 'HubSpot was not connected', message: err.message });
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
