import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { app } from '@azure/functions';
import { httpHandler } from '../platform/http';

// Compiled to dist/src/functions; openapi.json sits at the app root, deployed with the app.
const OPENAPI_FILE = path.join(__dirname, '..', '..', '..', 'openapi.json');
let cached: string | undefined;

app.http('openapi', {
  methods: ['GET'],
  route: 'openapi.json',
  authLevel: 'anonymous',
  handler: httpHandler({ auth: 'anonymous', summary: 'This API as OpenAPI 3.1' }, async () => {
    cached ??= await readFile(OPENAPI_FILE, 'utf8');
    return { status: 200, headers: { 'Content-Type': 'application/json', 'Cache-Control': 'public, max-age=300' }, body: cached };
  }),
});
