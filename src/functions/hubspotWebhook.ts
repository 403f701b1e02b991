import { app } from '@azure/functions';
import { MAX_WEBHOOK_BODY_BYTES, receiveHubSpotDelivery } from '../connectors/hubspot';
import { NotFoundError } from '../platform/errors';
import { httpHandler, readBodyBounded } from '../platform/http';

/**
 * HubSpot's webhook deliveries. Anonymous; the v3 signature over the exact raw body and the public
 * URL is the authentication. Fast on purpose (HubSpot retries after 5 s): verify, write the delivery
 * to `hubspot-webhooks` (one message), answer 204; fan-out and de-duplication happen in its worker.
 */
app.http('hubspotWebhook', {
  methods: ['POST'],
  route: 'webhooks/hubspot',
  authLevel: 'anonymous',
  handler: httpHandler({ auth: 'anonymous', summary: 'HubSpot webhook deliveries (v3 signature); queued as received, 204' }, async ({ request, services, log, context }) => {
    const secret = services.config.hubspot.oauth?.clientSecret;
    if (!secret) throw new NotFoundError('HubSpot webhooks are not configured in this deployment.');
    const body = await readBodyBounded(request, MAX_WEBHOOK_BODY_BYTES);

    const deps = { queues: services.queues, log, publicBaseUrl: services.config.publicBaseUrl, clientSecret: secret, acceptLegacy: services.config.hubspot.acceptLegacySignatures };
    // The invocation id, not the caller's correlation header: it owns this delivery's claims downstream.
    await receiveHubSpotDelivery(deps, { method: request.method, url: request.url, body, header: (n) => request.headers.get(n) }, context.invocationId);
    return { status: 204 };
  }),
});
