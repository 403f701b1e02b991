import { app } from '@azure/functions';
import { z } from 'zod';
import { getTeamsServices, snoozePage } from '../connectors/teams';
import { InvalidSignedTokenError } from '../platform/signedTokens';
import { httpHandler } from '../platform/http';

/**
 * The Snooze button of an SLA warning card opens this in a browser. Anonymous: the signed, expiring,
 * single-use token is the authorisation, and names the tenant and ticket.
 */
app.http('teamsSnooze', {
  methods: ['GET'],
  route: 'teams/snooze',
  authLevel: 'anonymous',
  handler: httpHandler({ auth: 'anonymous', summary: 'Snooze link of an SLA warning card (signed, expiring, single-use token); answers an HTML page', query: z.strictObject({ token: z.string().min(1).max(4096) }) }, async ({ query, services, log }) => {
    try {
      const done = await getTeamsServices(services).snooze.redeem(query.token);
      log.info('ticket snoozed', { tenantId: done.tenant, ticketId: done.ticketId, until: done.until.toISOString() });
      const page = snoozePage({
        status: 200,
        title: 'Snoozed',
        message: `SLA warnings for ticket ${done.ticketId} are snoozed for ${done.minutes} minutes, until ${done.until.toISOString().slice(0, 16).replace('T', ' ')} UTC. SLA breaches are still posted.`,
      });
      return { status: page.status, body: page.body, headers: page.headers };
    } catch (err) {
      if (!(err instanceof InvalidSignedTokenError)) throw err;
      log.warn('snooze link refused', { reason: err.reason });
      const page = snoozePage({ status: err.reason === 'invalid' || err.reason === 'wrong_purpose' ? 400 : 410, title: 'This snooze link cannot be used', message: err.message });
      return { status: page.status, body: page.body, headers: page.headers };
    }
  }),
});
