import { app } from '@azure/functions';
import { z } from 'zod';
import { freeBusy, getGraphServices, scheduleRequestSchema, scheduleResponseSchema } from '../connectors/msgraph';
import { httpHandler, json } from '../platform/http';
import { integrationIdSchema, tenantIdSchema } from '../storage';

/** Free/busy of up to 100 people of the connected organisation (POST: the addresses stay out of URLs and logs). */
app.http('msgraphScheduleGet', {
  methods: ['POST'],
  route: 'msgraph/calendar/schedule/{tenant_id}/{integration_id}',
  authLevel: 'function',
  handler: httpHandler(
    {
      auth: 'tenant',
      summary: 'Free/busy (getSchedule) of up to 100 addresses over at most 62 days',
      params: z.object({ tenant_id: tenantIdSchema, integration_id: integrationIdSchema }),
      body: scheduleRequestSchema,
      maxBodyBytes: 64 * 1024,
      response: { status: 200, schema: scheduleResponseSchema },
    },
    async ({ params, body }) => json(200, await freeBusy(getGraphServices(), params.tenant_id, params.integration_id, body)),
  ),
});
