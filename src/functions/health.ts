import { app } from '@azure/functions';
import { cachedHealth } from '../platform/health';
import { httpHandler, json } from '../platform/http';

app.http('health', {
  methods: ['GET'],
  route: 'health',
  authLevel: 'anonymous',
  handler: httpHandler({ auth: 'anonymous' }, async ({ services }) => {
    const report = await cachedHealth(services);
    return json(report.status === 'healthy' ? 200 : 503, report);
  }),
});
