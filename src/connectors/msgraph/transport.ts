import http from 'node:http';
import https from 'node:https';
import type { Context, Middleware } from '@microsoft/microsoft-graph-client';

const NULL_BODY_STATUSES = new Set([101, 204, 205, 304]);

/**
 * The last link of the Graph client's middleware chain when a CA must be trusted explicitly (a local
 * HTTPS fake in tests, a private endpoint): the stock handler uses global `fetch`, which takes no
 * per-client CA. Same contract as the stock `HTTPMessageHandler`: performs `context.request` and
 * leaves a WHATWG `Response` in `context.response`.
 */
export class AgentTransport implements Middleware {
  constructor(private readonly agent: https.Agent) {}

  async execute(context: Context): Promise<void> {
    const request = context.request;
    const target = typeof request === 'string' ? request : request.url;
    const options = context.options ?? {};
    const headers = new Headers(options.headers as HeadersInit | undefined);
    const body = options.body as string | Buffer | Uint8Array | undefined | null;
    const url = new URL(target);
    const lib = url.protocol === 'https:' ? https : http;
    context.response = await new Promise<Response>((resolve, reject) => {
      const req = lib.request(
        url,
        {
          method: options.method ?? 'GET',
          headers: Object.fromEntries(headers.entries()),
          ...(url.protocol === 'https:' ? { agent: this.agent } : {}),
          ...(options.signal ? { signal: options.signal as AbortSignal } : {}),
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('error', reject);
          res.on('end', () => {
            const status = res.statusCode ?? 500;
            const out = new Headers();
            for (const [k, v] of Object.entries(res.headers)) {
              if (Array.isArray(v)) for (const item of v) out.append(k, item);
              else if (v !== undefined) out.set(k, v);
            }
            resolve(new Response(NULL_BODY_STATUSES.has(status) ? null : Buffer.concat(chunks), { status, statusText: res.statusMessage ?? '', headers: out }));
          });
        },
      );
      req.on('error', reject);
      if (body !== undefined && body !== null) req.write(body);
      req.end();
    });
  }
}
