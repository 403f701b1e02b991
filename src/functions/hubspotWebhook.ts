import { app } from '@azure/functions';
import { fanOut, getHubSpotServices, WEBHOOK_CLAIM_STALE_MS, MAX_WEBHOOK_BODY_BYTES, verifyHubSpotSignature, webhookBatchSchema } from '../connectors/hubspot';
import { NotFoundError, ServiceUnavailableError, UnauthorizedError, ValidationError } from '../platform/errors';
import { httpHandler, readBodyBounded } from '../platform/http';

/**
 * HubSpot's webhook deliveries. Anonymous; the v3 signature over the exact raw body and the public
 * URL is the authentication. Fast on purpose (HubSpot retries after 5 s): verify, route to the
 * integrations of the portal, drop what was already queued, queue, answer 204.
 */
app.http('hubspotWebhook', {
  methods: ['POST'],
  route: 'webhooks/hubspot',
  authLevel: 'anonymous',
  handler: httpHandler({ auth: 'anonymous', summary: 'HubSpot webhook deliveries (v3 signature); queued per integration, 204' }, async ({ request, services, log, correlationId }) => {
    const secret = services.config.hubspot.oauth?.clientSecret;
    if (!secret) throw new NotFoundError('HubSpot webhooks are not configured in this deployment.');
    const body = await readBodyBounded(request, MAX_WEBHOOK_BODY_BYTES);

    const check = verifyHubSpotSignature({
      method: request.method,
      requestUrl: request.url,
      publicBaseUrl: services.config.publicBaseUrl,
      body,
      header: (n) => request.headers.get(n),
      clientSecret: secret,
      acceptLegacy: services.config.hubspot.acceptLegacySignatures,
      now: Date.now(),
    });
    if (!check.ok) {
      log.warn('HubSpot webhook refused', { reason: check.reason, bytes: body.length });
      throw new UnauthorizedError('The webhook signature is missing, stale or wrong.');
    }

    let json: unknown;
    try {
      json = JSON.parse(body.toString('utf8'));
    } catch {
      throw new ValidationError('The body is not valid JSON.', [{ location: 'body', path: '', message: 'malformed JSON' }]);
    }
    const batch = webhookBatchSchema.safeParse(json);
    if (!batch.success) {
      throw new ValidationError('The body is not a HubSpot event batch.', batch.error.issues.slice(0, 10).map((i) => ({ location: 'body', path: i.path.join('.'), message: i.message })));
    }
    const hs = getHubSpotServices();
    const result = await fanOut({ accountIndex: hs.accountIndex, processed: services.processed, queues: services.queues, log }, batch.data, correlationId);
    log.info('HubSpot webhook accepted', { signature: check.version, ...result });
    // Everything else is queued; these events are held by a handler that may have died before queueing
    // them. HubSpot retries a failed delivery, and by then the claims are confirmed or stale.
    if (result.inProgress > 0) throw new ServiceUnavailableError(`${result.inProgress} event(s) of this delivery are still being handled; deliver it again later.`, WEBHOOK_CLAIM_STALE_MS / 1000);
    return { status: 204 };
  }),
});
