import { app } from '@azure/functions';
import { z } from 'zod';
import { calendarEventRequestSchema, calendarEventResponseSchema, createCalendarEvent, getGraphServices } from '../connectors/msgraph';
import { httpHandler, json } from '../platform/http';
import { integrationIdSchema, tenantIdSchema } from '../storage';

/** The engine books time on a user's or a shared calendar of the connected organisation. */
app.http('msgraphCalendarEventsCreate', {
  methods: ['POST'],
  route: 'msgraph/calendar/events/{tenant_id}/{integration_id}',
  authLevel: 'function',
  handler: httpHandler(
    {
      auth: 'tenant',
      summary: "Create an event on a user's or shared calendar (transaction_id makes a retry safe)",
      params: z.object({ tenant_id: tenantIdSchema, integration_id: integrationIdSchema }),
      body: calendarEventRequestSchema,
      maxBodyBytes: 128 * 1024,
      response: { status: 201, schema: calendarEventResponseSchema, description: 'The event Graph created' },
    },
    async ({ params, body }) => json(201, await createCalendarEvent(getGraphServices(), params.tenant_id, params.integration_id, body)),
  ),
});
