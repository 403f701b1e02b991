import { app } from '@azure/functions';
import { getTeamsServices, snoozePage, snoozeParamsSchema, snoozeRefusal } from '../connectors/teams';
import { httpHandler } from '../platform/http';

/** The confirm page's button (`teamsSnooze`): snoozes the ticket's SLA warnings, once. No body is read. */
app.http('teamsSnoozeConfirm', {
  methods: ['POST'],
  route: 'teams/snooze/{tenant_id}/{link_id}',
  authLevel: 'anonymous',
  handler: httpHandler(
    { auth: 'anonymous', summary: "The snooze confirm page's button: snoozes the ticket's SLA warnings for 30 minutes, once; answers HTML", params: snoozeParamsSchema },
    async ({ request, params, services, log }) => {
      // A browser says where a form post came from; only our own confirm page may post here.
      const site = request.headers.get('sec-fetch-site');
      if (site !== null && site !== 'same-origin' && site !== 'none') {
        log.warn('snooze post refused', { reason: 'cross-site', site });
        return snoozePage({ status: 403, title: 'This snooze link cannot be used', message: 'Open the link from the card and use its button.' });
      }
      try {
        const done = await getTeamsServices(services).snooze.redeem(params.tenant_id, params.link_id);
        log.info('ticket snoozed', { tenantId: done.tenant, ticketId: done.ticketId, until: done.until.toISOString() });
        return snoozePage({
          status: 200,
          title: 'Snoozed',
          message: `SLA warnings for ticket ${done.ticketId} are snoozed for ${done.minutes} minutes, until ${done.until.toISOString().slice(0, 16).replace('T', ' ')} UTC. SLA breaches are still posted.`,
        });
      } catch (err) {
        return snoozeRefusal(err, log);
      }
    },
  ),
});
