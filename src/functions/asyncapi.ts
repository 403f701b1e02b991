import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { app } from '@azure/functions';
import { httpHandler } from '../platform/http';

// Compiled to dist/src/functions; asyncapi.json sits at the app root, deployed with the app.
const ASYNCAPI_FILE = path.join(__dirname, '..', '..', '..', 'asyncapi.json');
let cached: string | undefined;

app.http('asyncapi', {
  methods: ['GET'],
  route: 'asyncapi.json',
  authLevel: 'anonymous',
  handler: httpHandler({ auth: 'anonymous', summary: 'The events sent on engine-events, as AsyncAPI 3.0' }, async () => {
    cached ??= await readFile(ASYNCAPI_FILE, 'utf8');
    return { status: 200, headers: { 'Content-Type': 'application/json', 'Cache-Control': 'public, max-age=300' }, body: cached };
  }),
});
