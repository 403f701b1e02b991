import { HttpRequest, InvocationContext } from '@azure/functions';
import { SignJWT } from 'jose';
import { z } from 'zod';
import { ApiAuthenticator } from '../../../src/platform/http/auth';
import { httpHandler } from '../../../src/platform/http/handler';
import { problemResponse } from '../../../src/platform/http/problem';
import { AppError, ValidationError } from '../../../src/platform/errors';
import { Logger, registerSecret, redactString, type LogSink } from '../../../src/platform/logging';
import type { Services } from '../../../src/platform/services';
import { RedactingSecretStore } from '../../../src/secrets/redactingSecretStore';

const JWT_SECRET = 'unit-jwt-secret-0123456789-abcdefghijklmnopq';
const REFRESH_TOKEN = 'rt-7f3a9c2e-11aa-4b8e-9d0c-5e6f7a8b9c0d';
const CLIENT_SECRET = 'cs~Q8x.Zz-abcdefghijklmnopqrstuvwxyz012345';
const TEAMS_URL = 'https://contoso.webhook.office.com/webhookb2/1111-2222@3333/IncomingWebhook/abcdef0123456789/4444-5555';
const WORKFLOW_URL = 'https://prod-01.westeurope.logic.azure.com:443/workflows/abc/triggers/manual/paths/invoke?api-version=2016-06-01&sp=%2Ftriggers&sv=1.0&sig=SIGNATUREvalue123456';
const PRIVATE_APP_TOKEN = 'pat-na1-11111111-2222-3333-4444-555555555555';

/** Every secret we feed in; none may be found in anything captured. */
const SECRETS = [JWT_SECRET, REFRESH_TOKEN, CLIENT_SECRET, TEAMS_URL, WORKFLOW_URL, PRIVATE_APP_TOKEN, 'SIGNATUREvalue123456', 'abcdef0123456789'];

function capture(): { sink: LogSink; lines: string[] } {
  const lines: string[] = [];
  const push = (m: string) => lines.push(m);
  return { sink: { debug: push, info: push, warn: push, error: push }, lines };
}

function expectClean(text: string): void {
  for (const s of SECRETS) expect(text).not.toContain(s);
}

describe('redaction on every log path', () => {
  beforeAll(() => {
    registerSecret(REFRESH_TOKEN);
    registerSecret(CLIENT_SECRET);
    registerSecret(JWT_SECRET);
  });

  it('masks registered values, sensitive field names and secret shapes in every Logger level', () => {
    const { sink, lines } = capture();
    const log = new Logger(sink, { tenantId: 't1', correlationId: 'c1' }, 'debug');
    const payload = {
      note: `refresh failed for ${REFRESH_TOKEN}`,
      refresh_token: 'anything-at-all-here',
      nested: { deeper: [{ webhookUrl: TEAMS_URL }, `posting to ${WORKFLOW_URL}`] },
      headers: { Authorization: `Bearer ${PRIVATE_APP_TOKEN}` },
      url: `https://app.example/callback?code=abc123456789&state=xyz`,
      text: `token is ${PRIVATE_APP_TOKEN} and the hook is ${TEAMS_URL}`,
    };
    log.debug('debug line', payload);
    log.info('info line', payload);
    log.warn(`warn line with ${CLIENT_SECRET}`, payload);
    log.error('error line', { error: new Error(`boom ${REFRESH_TOKEN}`, { cause: new Error(`inner ${CLIENT_SECRET}`) }) });
    log.child({ integrationId: 'i1', clientSecret: CLIENT_SECRET }).info('child line');
    expect(lines).toHaveLength(5);
    for (const line of lines) {
      expectClean(line);
      const record = JSON.parse(line);
      expect(record.tenantId).toBe('t1');
      expect(record.correlationId).toBe('c1');
    }
    expect(lines.join('\n')).not.toContain('abc123456789');
    // Masks, not blanks: the reader can still see that something was there.
    expect(lines[1]).toContain('[REDACTED]');
    expect(lines[1]).toContain('[REDACTED-WEBHOOK-URL]');
  });

  it('keeps useful non-secret content', () => {
    expect(redactString('tenant t1 synced 42 tickets')).toBe('tenant t1 synced 42 tickets');
  });

  it('problem bodies never carry secrets, for exposed and unexposed errors', () => {
    const bodies = [
      problemResponse(new Error(`SDK failed calling ${WORKFLOW_URL} with ${CLIENT_SECRET}`)),
      problemResponse(new AppError({ status: 502, code: 'upstream', title: 'Upstream failed', detail: `token ${REFRESH_TOKEN} rejected` })),
      problemResponse(new ValidationError('bad', [{ location: 'body', path: 'webhook_url', message: `not accepted: ${TEAMS_URL}` }])),
    ].map((r) => String(r.body));
    for (const b of bodies) expectClean(b);
    expect(JSON.parse(bodies[0] as string)).toMatchObject({ status: 500, detail: 'An unexpected error occurred.' });
  });

  it('the HTTP handler logs failures with correlation ids and without secrets, and answers problem JSON', async () => {
    const logged: string[] = [];
    const services = {
      config: { logLevel: 'debug' },
      auth: new ApiAuthenticator({ kind: 'secret', secret: new TextEncoder().encode(JWT_SECRET), tenantClaim: 'tenant_id', maxAgeSeconds: 3600 }),
    } as unknown as Services;
    const handler = httpHandler(
      { auth: 'tenant', params: z.object({ tenant_id: z.string() }) },
      async () => {
        throw new Error(`Graph said no to ${CLIENT_SECRET} at ${TEAMS_URL}`);
      },
      () => services,
    );
    const token = await new SignJWT({ tenant_id: 't1' }).setProtectedHeader({ alg: 'HS256' }).setIssuedAt().setExpirationTime('5m').sign(new TextEncoder().encode(JWT_SECRET));
    const request = new HttpRequest({
      method: 'POST',
      url: `http://localhost/api/x/t1?code=${PRIVATE_APP_TOKEN}`,
      headers: { authorization: `Bearer ${token}`, 'x-correlation-id': 'corr-9' },
      params: { tenant_id: 't1' },
      body: { string: JSON.stringify({ access_token: PRIVATE_APP_TOKEN }) },
    });
    const context = new InvocationContext({ functionName: 'fn', invocationId: 'inv-1', logHandler: (_level, ...args) => logged.push(args.map(String).join(' ')) });
    const response = await handler(request, context);
    expect(response.status).toBe(500);
    const text = [String(response.body), ...logged].join('\n');
    expectClean(text);
    expect(text).not.toContain(token);
    const failure = logged.map((l) => JSON.parse(l)).find((r) => r.msg === 'request failed');
    expect(failure).toMatchObject({ level: 'error', correlationId: 'corr-9', tenantId: 't1', functionName: 'fn' });
    expect(failure.error.message).toContain('Graph said no to [REDACTED]');
  });
});

describe('secret store values reach the redactor', () => {
  it('a value read from or written to the store is masked in later log lines', async () => {
    const values = new Map<string, string>([['t-read', 'opaque-access-token-AAAA1111']]);
    const store = new RedactingSecretStore({
      kind: 'local',
      get: async (n: string) => values.get(n),
      set: async (n: string, v: string) => void values.set(n, v),
      delete: async (n: string) => void values.delete(n),
      healthCheck: async () => true,
    });
    await store.get('t-read');
    await store.set('t-write', 'opaque-refresh-token-BBBB2222');
    const { sink, lines } = capture();
    new Logger(sink).info('calling with opaque-access-token-AAAA1111 after storing opaque-refresh-token-BBBB2222');
    expect(lines[0]).not.toContain('opaque-access-token-AAAA1111');
    expect(lines[0]).not.toContain('opaque-refresh-token-BBBB2222');
    expect(lines[0]).toContain('calling with [REDACTED] after storing [REDACTED]');
  });
});
