import { HttpRequest, InvocationContext } from '@azure/functions';
import { z } from 'zod';
import { httpHandler } from '../../../src/platform/http';
import { PayloadTooLargeError, readBodyBounded } from '../../../src/platform/http/body';
import type { Services } from '../../../src/platform/services';

const CHUNK = 64 * 1024;

/** A lazily generated stream of `total` bytes that records how much the consumer pulled. */
function lazyStream(total: number): { stream: ReadableStream<Uint8Array>; pulled: () => number; cancelled: () => boolean } {
  let sent = 0;
  let cancelled = false;
  const stream = new ReadableStream<Uint8Array>(
    {
      pull(controller) {
        if (sent >= total) return controller.close();
        const n = Math.min(CHUNK, total - sent);
        sent += n;
        controller.enqueue(new Uint8Array(n).fill(0x61));
      },
      cancel() {
        cancelled = true;
      },
    },
    { highWaterMark: 0 },
  );
  return { stream, pulled: () => sent, cancelled: () => cancelled };
}

const streamRequest = (stream: ReadableStream<Uint8Array>, headers: Record<string, string> = {}) =>
  new Request('http://localhost/api/x', { method: 'POST', body: stream, headers, duplex: 'half' } as RequestInit);

describe('readBodyBounded', () => {
  it('returns a body of exactly the limit and refuses one byte more', async () => {
    const at = new HttpRequest({ method: 'POST', url: 'http://localhost/x', body: { bytes: new Uint8Array(1000).fill(1) } });
    expect((await readBodyBounded(at, 1000)).length).toBe(1000);
    const over = new HttpRequest({ method: 'POST', url: 'http://localhost/x', body: { bytes: new Uint8Array(1001).fill(1) } });
    await expect(readBodyBounded(over, 1000)).rejects.toBeInstanceOf(PayloadTooLargeError);
  });

  it('stops reading a 50 MB stream without Content-Length just past the limit and cancels it', async () => {
    const s = lazyStream(50 * 1024 * 1024);
    const limit = 256 * 1024;
    await expect(readBodyBounded(streamRequest(s.stream), limit)).rejects.toMatchObject({ status: 413, code: 'payload-too-large' });
    // The limit plus the one chunk that crossed it (and what the stream had queued): nowhere near 50 MB.
    expect(s.pulled()).toBeLessThanOrEqual(limit + 2 * CHUNK);
    expect(s.cancelled()).toBe(true);
  });

  it('does not trust a Content-Length smaller than the body', async () => {
    const s = lazyStream(10 * 1024 * 1024);
    await expect(readBodyBounded(streamRequest(s.stream, { 'content-length': '10' }), 4096)).rejects.toBeInstanceOf(PayloadTooLargeError);
    expect(s.pulled()).toBeLessThanOrEqual(4096 + 2 * CHUNK);
    // The same lie in the Functions library's own request type.
    const lying = new HttpRequest({ method: 'POST', url: 'http://localhost/x', headers: { 'content-length': '10' }, body: { bytes: new Uint8Array(5000) } });
    await expect(readBodyBounded(lying, 4096)).rejects.toBeInstanceOf(PayloadTooLargeError);
  });

  it('refuses a declared Content-Length above the limit before reading a byte', async () => {
    const s = lazyStream(10 * 1024 * 1024);
    await expect(readBodyBounded(streamRequest(s.stream, { 'content-length': String(10 * 1024 * 1024) }), 4096)).rejects.toBeInstanceOf(PayloadTooLargeError);
    expect(s.pulled()).toBe(0);
    expect(s.cancelled()).toBe(true);
  });

  it('reads an empty or absent body as empty', async () => {
    expect((await readBodyBounded(new HttpRequest({ method: 'POST', url: 'http://localhost/x' }), 10)).length).toBe(0);
    expect((await readBodyBounded(new HttpRequest({ method: 'GET', url: 'http://localhost/x' }), 10)).length).toBe(0);
  });
});

describe('httpHandler body limit', () => {
  const services = { config: { logLevel: 'error' } } as unknown as Services;
  let calls = 0;
  const handler = httpHandler({ auth: 'anonymous', body: z.object({ a: z.string() }), maxBodyBytes: 1024 }, async ({ body }) => (calls++, { status: 200, jsonBody: body }), () => services);
  const context = () => new InvocationContext({ functionName: 'test', invocationId: 'inv-1' });

  it('answers a body past the limit with 413 problem JSON whatever Content-Length says, without calling the route', async () => {
    for (const headers of [{}, { 'content-length': '12' }] as Array<Record<string, string>>) {
      const request = new HttpRequest({ method: 'POST', url: 'http://localhost/api/x', headers: { 'content-type': 'application/json', ...headers }, body: { string: JSON.stringify({ a: 'x'.repeat(2000) }) } });
      const res = await handler(request, context());
      expect(res.status).toBe(413);
      expect(JSON.parse(String(res.body))).toMatchObject({ status: 413, title: 'Payload too large' });
      expect(new Headers(res.headers as HeadersInit).get('content-type')).toBe('application/problem+json');
    }
    expect(calls).toBe(0);
    const ok = new HttpRequest({ method: 'POST', url: 'http://localhost/api/x', headers: { 'content-type': 'application/json' }, body: { string: '{"a":"b"}' } });
    expect((await handler(ok, context())).status).toBe(200);
    expect(calls).toBe(1);
  });
});
