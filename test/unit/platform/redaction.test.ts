import { HttpRequest, InvocationContext } from '@azure/functions';
import { SignJWT } from 'jose';
import { z } from 'zod';
import { ApiAuthenticator } from '../../../src/platform/http/auth';
import { httpHandler } from '../../../src/platform/http/handler';
import { problemResponse } from '../../../src/platform/http/problem';
import { AppError, ValidationError } from '../../../src/platform/errors';
import fc from 'fast-check';
import { Logger, registerSecret, redactString, redactValue, type LogSink } from '../../../src/platform/logging';
import { MAX_FIELD_CHARS } from '../../../src/platform/logging/redact';
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

/** The patterns as they were: quadratic on some inputs, but the reference for what must be masked. */
const OLD_SHAPES: Array<[RegExp, string]> = [
  [/https?:\/\/[^\s"'<>]*(?:webhook\.office\.com|\.logic\.azure\.com|powerplatform\.com|powerautomate\.com)[^\s"'<>]*/gi, '[REDACTED-WEBHOOK-URL]'],
  [/\bBearer\s+[A-Za-z0-9._~+/=-]+/gi, 'Bearer [REDACTED]'],
  [/\beyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*/g, '[REDACTED]'],
  [/([?&](?:code|sig|signature|token|access_token|refresh_token|id_token|client_secret|key|state|validationToken)=)[^&\s"'<>]+/gi, '$1[REDACTED]'],
  [/\b(AccountKey|SharedAccessKey|SharedAccessSignature|Password|pwd)=[^;\s"']+/gi, '$1=[REDACTED]'],
  [/\bpat-[a-z0-9]{2,4}-[A-Za-z0-9-]{20,}/g, '[REDACTED]'],
];
const oldRedact = (s: string) => OLD_SHAPES.reduce((out, [re, r]) => out.replace(re, r), s);
const joined = (alphabet: string[], maxLength: number) => fc.array(fc.constantFrom(...alphabet), { maxLength }).map((a) => a.join(''));
const B64URL = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'.split('');
const b64url = (min: number, max: number) => fc.array(fc.constantFrom(...B64URL), { minLength: min, maxLength: max }).map((a) => a.join(''));

describe('redaction runs in linear time on hostile text (issue: quadratic webhook-URL and JWT patterns)', () => {
  const JWT = 'eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ0ZW5hbnQtYSJ9.c2lnbmF0dXJlLXZhbHVlLTAxMjM0NTY3ODk';

  it("'http://' × 10,000 and × 100,000 come back unchanged, and a webhook URL after them is still masked", () => {
    for (const n of [10_000, 100_000]) {
      const flood = 'http://'.repeat(n);
      expect(redactString(flood)).toBe(flood);
      expect(redactString(`${flood} ${TEAMS_URL}`)).toBe(`${flood} [REDACTED-WEBHOOK-URL]`);
      // One run of non-delimiters: masked from its first scheme, as the old pattern did.
      expect(redactString(`${flood}x.webhook.office.com/abc`)).toBe('[REDACTED-WEBHOOK-URL]');
    }
  });

  it("JWT floods (72 KB and 720 KB of '-eyJ…' candidates) come back unchanged, and a JWT among them is masked", () => {
    for (const n of [8_001, 80_001]) {
      for (const unit of ['-eyJaaaaa', 'eyJ', '-eyJab.', 'eyJaaaaa.bb.', '=eyJ']) {
        const flood = unit.repeat(n);
        expect(redactString(flood)).toBe(flood);
        expect(redactString(`${flood} ${JWT} ${flood}`)).toBe(`${flood} [REDACTED] ${flood}`);
      }
      // Every three dot-separated parts of this one are JWT-shaped, and masked as such.
      expect(redactString('eyJaaaaa.'.repeat(n))).toBe('[REDACTED].'.repeat(n / 3));
      const flood = '-eyJaaaaa'.repeat(n);
      expect(redactString(flood)).toBe(flood);
      expect(redactString(`${flood} ${JWT}`)).toBe(`${flood} [REDACTED]`);
      // Glued on with a `-`, the JWT continues the flood's first part, so the token starts at its first `eyJ`.
      expect(redactString(`${flood}-${JWT}`)).toBe('-[REDACTED]');
    }
  });

  it('a repeated Bearer prefix still masks the token after it', () => {
    expect(redactString('Authorization: Bearer Bearer abc.def-123 next')).toBe('Authorization: Bearer Bearer [REDACTED] next');
    expect(redactString('bearer\tBEARER  Bearer xyz0123456789')).toBe('bearer\tBEARER  Bearer [REDACTED]');
    expect(redactString('Bearer Bearer')).toBe('Bearer [REDACTED]');
  });

  it('floods of the other patterns’ prefixes are redacted correctly too', () => {
    const n = 100_000;
    expect(redactString('Bearer '.repeat(n))).toBe('Bearer '.repeat(n));
    expect(redactString(`${'Bearer '.repeat(n)}tok-123`)).toBe(`${'Bearer '.repeat(n)}[REDACTED]`);
    expect(redactString('Bearer x '.repeat(n))).toBe('Bearer [REDACTED] '.repeat(n));
    expect(redactString('?code=x'.repeat(n))).toBe('?code=[REDACTED]');
    expect(redactString('AccountKey=a'.repeat(n))).toBe('AccountKey=[REDACTED]');
    expect(redactString('pat-na1-'.repeat(n))).toBe('[REDACTED]');
    expect(redactString('='.repeat(n))).toBe('='.repeat(n));
    expect(redactString('&'.repeat(n))).toBe('&'.repeat(n));
  });

  it('masks exactly what the old patterns masked (short strings, where the old ones are fast)', () => {
    const alphabet = ['http://', 'https://', 'HTTPS://', 'webhook.office.com', '.logic.azure.com', 'powerautomate.com', 'eyJ', 'eyJhbGci', 'abcde', 'xy',
      '.', '-', '_', ' ', '"', "'", '<', '/', 'Bearer ', 'bearer\t', '?code=', '&state=', 'AccountKey=', ';', 'pat-na1-', '0123456789abcdefghij', '=', '[', 'İ'];
    // Except by design: a repeated `Bearer` prefix now masks the token after it (tested below).
    const noRepeatedBearer = joined(alphabet, 16).filter((s) => !/bearer\s+bearer/i.test(s));
    fc.assert(fc.property(noRepeatedBearer, (s) => redactString(s) === oldRedact(s)), { numRuns: 20_000 });
    // JWT edge cases (parts just long enough or one short, several candidates per part, dots in a row).
    fc.assert(fc.property(joined(['eyJ', 'abcde', 'ab', 'a', '.', '-', '_', ' ', 'eyJaaaaa', '..'], 14), (s) => redactString(s) === oldRedact(s)), { numRuns: 20_000 });
  });

  it('a secret embedded anywhere in arbitrary text, after adversarial prefixes, never appears in the output', () => {
    const noise = joined(['http://', 'https://', 'eyJ', '-eyJ', 'eyJaaaaa.', '=', '==', 'Bearer ', 'Bearer', '?code=', '&state=', '&', '?', 'pat-na1-', 'AccountKey=',
      '.webhook.office.com', '"', "'", '<', '>', ' ', '\n', '-', '.', '/', 'x', 'İ', '[REDACTED]'], 40);
    const surrounding = fc.tuple(fc.oneof(noise, fc.string({ maxLength: 20 })), fc.oneof(noise, fc.string({ maxLength: 20 })));
    // [text that carries the secret, the parts that must not survive]
    const secrets: fc.Arbitrary<[string, string[]]> = fc.oneof(
      fc.tuple(b64url(5, 30), b64url(5, 30), b64url(10, 40)).map(([h, p, s]): [string, string[]] => [` eyJ${h}.${p}.${s} `, [`eyJ${h}.${p}`, s]]),
      b64url(16, 40).map((t): [string, string[]] => [` Bearer ${t} `, [t]]),
      fc.tuple(b64url(16, 40), b64url(16, 40)).map(([c, st]): [string, string[]] => [` https://app.example/api/hubspot/oauth/callback?code=${c}&state=${st} `, [c, st]]),
      b64url(12, 30).map((p): [string, string[]] => [` https://contoso.webhook.office.com/webhookb2/${p}/IncomingWebhook/x `, [p]]),
      fc.uuid().map((u): [string, string[]] => [` pat-na1-${u} `, [u]]),
      // Registered values are masked wherever they are, even glued to the text around them.
      b64url(12, 30).map((k): [string, string[]] => {
        registerSecret(`known~${k}`);
        return [`known~${k}`, [`known~${k}`]];
      }),
    );
    fc.assert(
      fc.property(surrounding, secrets, ([before, after], [secret, parts]) => {
        const text = before + secret + after;
        const { sink, lines } = capture();
        new Logger(sink).warn(text, { detail: text, nested: [{ message: text }] });
        for (const out of [redactString(text), lines[0] as string]) for (const part of parts) if (out.includes(part)) return false;
        return true;
      }),
      { numRuns: 3_000 },
    );
  });

  it('a very long field is cut before redaction, at the whitespace before the token it would split, with a marker', () => {
    const JWT_PARTS = ['eyJhbGciOiJIUzI1NiJ9', 'c2lnbmF0dXJlLXZhbHVlLTAxMjM0NTY3ODk'];
    fc.assert(
      fc.property(fc.integer({ min: MAX_FIELD_CHARS - JWT.length - 5, max: MAX_FIELD_CHARS + 5 }), (at) => {
        const text = 'a '.repeat(at / 2) + 'b'.repeat(at % 2) + ` ${JWT} ` + 'z '.repeat(MAX_FIELD_CHARS);
        const out = (redactValue({ detail: text }) as { detail: string }).detail;
        expect(out.length).toBeLessThan(MAX_FIELD_CHARS + 100);
        expect(out).toMatch(/…\[truncated \d+ characters\]$/);
        for (const p of JWT_PARTS) expect(out).not.toContain(p);
        return true;
      }),
      { numRuns: 200 },
    );
    const unbroken = 'q'.repeat(MAX_FIELD_CHARS * 2);
    expect(redactValue(unbroken)).toBe(`…[truncated ${MAX_FIELD_CHARS * 2} characters]`);
    expect(redactValue('short text')).toBe('short text');
  });
});

describe('what an operator needs is kept (issue 18): error codes, statuses, ids', () => {
  const record = (fields: Record<string, unknown>) => {
    const { sink, lines } = capture();
    new Logger(sink, { tenantId: 't1', integrationId: 'i-42' }).warn('request rejected', fields);
    return JSON.parse(lines[0] as string) as Record<string, unknown>;
  };

  it.each(['integration-not-active', 'AADSTS50020', 'invalid_grant', 'forbidden', 'token-invalid', 'ErrorItemNotFound', 'InvalidAuthenticationToken',
    'Request_ResourceNotFound', 'ECONNREFUSED', 'ERR_INVALID_ARG_TYPE', 'TableNotFound', '403', 'E11000'])('a refused request keeps code %s', (code) => {
    expect(record({ status: 409, code, detail: 'The integration is not active.' })).toMatchObject({ status: 409, code, tenantId: 't1', integrationId: 'i-42' });
  });

  it('numeric codes, statuses and the codes of errors and of upstream error bodies are kept', () => {
    const err = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:9'), { code: 'ECONNREFUSED', status: 503 });
    const r = record({ code: 429, upstream: { error: { code: 'ApplicationThrottled', message: 'slow down' } }, error: err });
    expect(r).toMatchObject({ code: 429, upstream: { error: { code: 'ApplicationThrottled' } }, error: { code: 'ECONNREFUSED', status: 503 } });
  });

  it.each([
    ['a HubSpot-style authorization code', 'na1-3f2a1b4c-11aa-4b8e-9d0c-5e6f7a8b9c0d'],
    ['a long Microsoft-style code', `M.C507_BAY.2.U.${'Ab3'.repeat(40)}`],
    ['random base64url', 'Xk9Lm2pQ7rT0vW3yZ'],
    ['random mixed case', 'QxZkWpLmAbCd'],
    ['letters and digits interleaved', 'a1b2c3d4e5'],
  ])('masks a code field that carries %s', (_what, code) => {
    const r = record({ code });
    expect(r.code).toBe('[REDACTED]');
    expect(JSON.stringify(r)).not.toContain(code);
  });

  it('generated HubSpot-style codes are masked', () => {
    fc.assert(fc.property(fc.uuid(), (u) => (record({ code: `na1-${u}` }).code === '[REDACTED]')), { numRuns: 500, seed: 18 });
  });

  it('code and state in an OAuth context are masked even when short', () => {
    const r = record({
      query: { code: 'abcdef', state: 'opaque', error: 'access_denied' },
      callback: { code: 'forbidden' },
      params: { state: 'xyz' },
      exchange: { grant_type: 'authorization_code', code: 'short', redirect_uri: 'https://app/cb' },
      sibling: { code: 'looks-like-a-slug', state: 'st' },
      authCode: 'invalid',
    });
    expect(r).toMatchObject({
      query: { code: '[REDACTED]', state: '[REDACTED]', error: 'access_denied' },
      callback: { code: '[REDACTED]' },
      params: { state: '[REDACTED]' },
      exchange: { grant_type: 'authorization_code', code: '[REDACTED]', redirect_uri: 'https://app/cb' },
      sibling: { code: '[REDACTED]', state: '[REDACTED]' },
      authCode: '[REDACTED]',
    });
  });

  it('a state field outside an OAuth context is kept (integration state), and OAuth parameters in URLs are masked', () => {
    const r = record({ state: 'needs_reauth', url: 'https://app.example/api/hubspot/oauth/callback?code=na1-abc-123&state=eyJzIjoxfQ' });
    expect(r.state).toBe('needs_reauth');
    expect(r.url).toBe('https://app.example/api/hubspot/oauth/callback?code=[REDACTED]&state=[REDACTED]');
  });

  it('a kept code is still redacted as text', () => {
    registerSecret('Registeredsecretvalue');
    expect(record({ code: 'Registeredsecretvalue' }).code).toBe('[REDACTED]');
  });
});
