import { app } from '@azure/functions';
import { getTeamsServices, snoozeConfirmPage, snoozeParamsSchema, snoozeRefusal } from '../connectors/teams';
import { httpHandler } from '../platform/http';

/**
 * The Snooze button of an SLA warning card opens this in a browser. Anonymous: the link's random id is
 * the authorisation (single-use, 24 h, in the tenant's own partition). A GET only shows what the link
 * would do and a button that POSTs (`teamsSnoozeConfirm`); link previewers and mail scanners GET links,
 * and that must not snooze.
 */
app.http('teamsSnooze', {
  methods: ['GET'],
  route: 'teams/snooze/{tenant_id}/{link_id}',
  authLevel: 'anonymous',
  handler: httpHandler(
    { auth: 'anonymous', summary: 'Snooze link of an SLA warning card: a confirm page whose button POSTs (a GET never snoozes); answers HTML', params: snoozeParamsSchema },
    async ({ params, services, log }) => {
      try {
        return snoozeConfirmPage(await getTeamsServices(services).snooze.inspect(params.tenant_id, params.link_id));
      } catch (err) {
        return snoozeRefusal(err, log);
      }
    },
  ),
});
