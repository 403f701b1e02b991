import { createHash, randomBytes } from 'node:crypto';
import path from 'node:path';
import { startAzurite, type AzuriteInstance } from '../../runner/azurite';
import { nextMessage, queueLength, ROOT, sendRaw, startRunner, type RunningHost } from '../helpers/runner';

const APP = path.join(ROOT, 'test', 'fixtures', 'runner-app');
const b64 = (s: string) => Buffer.from(s, 'utf8').toString('base64');

describe('local runner (fixture app through the @azure/functions-core hook)', () => {
  let azurite: AzuriteInstance;
  let host: RunningHost;

  beforeAll(async () => {
    azurite = await startAzurite();
    host = await startRunner({ appDir: APP, env: { AzureWebJobsStorage: azurite.connectionString } });
  });

  afterAll(async () => {
    await host?.stop();
    await azurite?.stop();
  });

  it('prints a table of every registered function with its trigger and route, schedule or queue', () => {
    const out = host.output();
    expect(out).toMatch(/echo\s+http\s+POST,PUT \/api\/echo\/\{id\}\/\{\*rest\}\s+function/);
    expect(out).toMatch(/tick\s+timer\s+\*\/2 \* \* \* \* \*/);
    expect(out).toMatch(/work\s+queue\s+work-items/);
  });

  it('serves HTTP triggers with route params, the api/ prefix and the raw body byte for byte', async () => {
    const body = Buffer.concat([randomBytes(4096), Buffer.from([0xff, 0xfe, 0x00, 0xc3])]);
    const res = await fetch(`${host.url}/api/echo/abc/x/y%20z?q=1`, {
      method: 'POST',
      headers: { 'x-functions-key': host.functionKey, 'content-type': 'application/octet-stream' },
      body,
    });
    expect(res.status).toBe(201);
    expect(res.headers.get('x-fixture')).toBe('yes');
    const json = (await res.json()) as Record<string, unknown>;
    expect(json.sha256).toBe(createHash('sha256').update(body).digest('hex'));
    expect(json.length).toBe(body.length);
    expect(json.params).toEqual({ id: 'abc', rest: 'x/y z' });
    expect(json.query).toEqual({ q: '1' });
    expect(json.method).toBe('POST');
  });

  it('writes response cookies with their attributes, as the Functions host does, and passes the request Cookie header', async () => {
    const res = await fetch(`${host.url}/api/cookies`, { headers: { cookie: 'x=1; y=2' } });
    expect(res.headers.getSetCookie()).toEqual(['__Host-a=x1; Path=/; Max-Age=600; Secure; HttpOnly; SameSite=Lax', 'b=; Path=/; Max-Age=0']);
    expect(await res.json()).toEqual({ cookie: 'x=1; y=2' });
  });

  it('runs pre- and post-invocation hooks around the handler', async () => {
    const res = await fetch(`${host.url}/api/echo/a/b`, { method: 'PUT', headers: { 'x-functions-key': host.functionKey }, body: 'x' });
    expect(res.headers.get('x-hooked')).toBe('yes');
  });

  it('writes queue output bindings set through extraOutputs', async () => {
    await fetch(`${host.url}/api/echo/out-1/z`, { method: 'POST', headers: { 'x-functions-key': host.functionKey }, body: '{}' });
    const seen: string[] = [];
    for (let i = 0; i < 5; i++) {
      const text = await nextMessage(azurite.connectionString, 'echoed');
      seen.push(JSON.parse(text).id);
      if (seen.includes('out-1')) break;
    }
    expect(seen).toContain('out-1');
  });

  it('honours authLevel function: no key → 401, header or ?code= → 200, master key accepted, admin needs the master key', async () => {
    expect((await fetch(`${host.url}/api/echo/a/b`, { method: 'POST', body: 'x' })).status).toBe(401);
    expect((await fetch(`${host.url}/api/echo/a/b`, { method: 'POST', body: 'x', headers: { 'x-functions-key': 'wrong' } })).status).toBe(401);
    expect((await fetch(`${host.url}/api/echo/a/b?code=${host.functionKey}`, { method: 'POST', body: 'x' })).status).toBe(201);
    expect((await fetch(`${host.url}/api/echo/a/b`, { method: 'POST', body: 'x', headers: { 'x-functions-key': host.masterKey } })).status).toBe(201);
    expect((await fetch(`${host.url}/api/admin-only`, { headers: { 'x-functions-key': host.functionKey } })).status).toBe(401);
    expect((await fetch(`${host.url}/api/admin-only`, { headers: { 'x-functions-key': host.masterKey } })).status).toBe(200);
  });

  it('matches methods and route constraints; unknown routes are 404', async () => {
    expect((await fetch(`${host.url}/api/echo/a/b`, { headers: { 'x-functions-key': host.functionKey } })).status).toBe(404);
    expect(await (await fetch(`${host.url}/api/items/42`)).json()).toEqual({ id: 42, route: 'int' });
    expect(await (await fetch(`${host.url}/api/items/widget`)).json()).toEqual({ name: 'widget', route: 'name' });
    expect((await fetch(`${host.url}/api/nothing-here`)).status).toBe(404);
    expect((await fetch(`${host.url}/echo/a/b`, { method: 'POST', headers: { 'x-functions-key': host.functionKey } })).status).toBe(404);
  });

  it('answers an unhandled exception with a bare 500 that reveals nothing', async () => {
    const res = await fetch(`${host.url}/api/boom`);
    expect(res.status).toBe(500);
    expect(await res.text()).toBe('');
  });

  it('fires timer triggers on their six-field NCRONTAB schedule', async () => {
    const tick = JSON.parse(await nextMessage(azurite.connectionString, 'timer-ticks', 10_000));
    expect(tick.isPastDue).toBe(false);
    expect(tick.hasStatus).toBe(true);
  });

  it('runs a non-HTTP function on demand through the admin endpoint, with the master key only', async () => {
    expect((await fetch(`${host.url}/admin/functions/tick`, { method: 'POST', body: '{}', headers: { 'x-functions-key': host.functionKey } })).status).toBe(401);
    const res = await fetch(`${host.url}/admin/functions/tick`, { method: 'POST', body: '{}', headers: { 'x-functions-key': host.masterKey, 'content-type': 'application/json' } });
    expect(res.status).toBe(202);
  });

  it('decodes base64 queue messages and passes dequeueCount in trigger metadata, retrying after a failure', async () => {
    const message = { id: 'retry-once', failTimes: 1 };
    await sendRaw(azurite.connectionString, 'work-items', b64(JSON.stringify(message)));
    const result = JSON.parse(await nextMessage(azurite.connectionString, 'work-results', 20_000));
    expect(result.id).toBe('retry-once');
    expect(result.dequeueCount).toBe(2);
    expect(result.typeofDequeueCount).toBe('number');
    expect(result.received).toEqual(message);
    expect(typeof result.messageId).toBe('string');
    // host.json visibilityTimeout is 1 s: the failed attempt must not have been retried sooner.
    expect(result.processedAt - Date.parse(result.insertionTime)).toBeGreaterThanOrEqual(900);
  });

  it('moves a message to <queue>-poison, unchanged, after maxDequeueCount failures', async () => {
    const text = b64(JSON.stringify({ id: 'always-fails', failTimes: 99 }));
    await sendRaw(azurite.connectionString, 'work-items', text);
    const poisoned = await nextMessage(azurite.connectionString, 'work-items-poison', 30_000, 'none');
    expect(poisoned).toBe(text);
    expect(host.output()).toMatch(/failed 3 times; moving to work-items-poison/);
    expect(await queueLength(azurite.connectionString, 'work-results')).toBe(0);
  });

  it('poisons a message whose encoding does not match host.json messageEncoding', async () => {
    const plain = JSON.stringify({ id: 'not-base64 !', failTimes: 0 });
    await sendRaw(azurite.connectionString, 'work-items', plain);
    const poisoned = await nextMessage(azurite.connectionString, 'work-items-poison', 30_000, 'none');
    expect(poisoned).toBe(plain);
    expect(host.output()).toMatch(/not valid base64/);
  });
});
