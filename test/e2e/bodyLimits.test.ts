import { mkdtempSync, rmSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import { Readable } from 'node:stream';
import { TableClient } from '@azure/data-tables';
import { QueueServiceClient } from '@azure/storage-queue';
import { startAzurite, type AzuriteInstance } from '../../runner/azurite';
import { ALL_QUEUES, ALL_TABLES } from '../../src/storage/names';
import { TEST_JWT_SECRET, tenantToken } from '../helpers/jwt';
import { localAppEnv, startRunner, type RunningHost } from '../helpers/runner';

const HOST_LIMIT = 2 * 1024 * 1024;
const CHUNK = 64 * 1024;

interface StreamedAnswer {
  status: number;
  body: string;
  contentType: string | undefined;
  /** Bytes the client had produced when the answer arrived. */
  sentWhenAnswered: number;
  total: number;
}

/**
 * POSTs `total` bytes as a chunked stream (no Content-Length), produced on demand, and resolves with the
 * answer and how much had been produced by then. The client stops sending once answered.
 */
function postStream(url: string, total: number, headers: Record<string, string> = {}): Promise<StreamedAnswer> {
  let produced = 0;
  const source = new Readable({
    highWaterMark: CHUNK,
    read() {
      if (produced >= total) return this.push(null);
      const n = Math.min(CHUNK, total - produced);
      produced += n;
      this.push(Buffer.alloc(n, '{'));
    },
  });
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method: 'POST', headers: { 'content-type': 'application/json', 'transfer-encoding': 'chunked', ...headers } }, (res) => {
      const sentWhenAnswered = produced;
      source.unpipe(req);
      source.destroy();
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8'), contentType: res.headers['content-type'], sentWhenAnswered, total }));
      res.on('error', reject);
    });
    // The server may close its side while we are still writing; the answer is what counts.
    req.on('error', (err) => (produced < total ? undefined : reject(err)));
    source.pipe(req);
  });
}

/** One raw HTTP/1.1 request, for framing a well-behaved client would not send. */
function rawRequest(port: number, text: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1', () => socket.write(text));
    let out = '';
    socket.on('data', (c) => (out += c.toString('latin1')));
    socket.on('end', () => resolve(out));
    socket.on('close', () => resolve(out));
    socket.on('error', (err) => (out ? resolve(out) : reject(err)));
    socket.setTimeout(20_000, () => socket.destroy(new Error('no answer')));
  });
}

/**
 * Bodies without a Content-Length (chunked) or with a false one, through the local runner: every route
 * that reads a body answers 413 past its limit, the host cap stops reading a huge stream long before the
 * client is done, and nothing reaches a table or a queue.
 */
describe('request body limits through the runner', () => {
  let azurite: AzuriteInstance;
  let host: RunningHost;
  let secretDir: string;
  const port = () => Number(new URL(host.url).port);

  beforeAll(async () => {
    secretDir = mkdtempSync(`${os.tmpdir()}/itil-secrets-`);
    azurite = await startAzurite();
    host = await startRunner({
      env: {
        ...localAppEnv({ storage: azurite.connectionString, secretKey: randomBytes(32).toString('base64'), secretDir, jwtSecret: TEST_JWT_SECRET, publicBaseUrl: 'http://localhost:7071' }),
        FUNCTIONS_REQUEST_BODY_SIZE_LIMIT: String(HOST_LIMIT),
        HUBSPOT_CLIENT_ID: 'hs-client-id',
        HUBSPOT_CLIENT_SECRET: 'hs-client-secret-for-body-limits',
        HUBSPOT_REDIRECT_URI: 'http://localhost:7071/api/hubspot/oauth/callback',
        MSGRAPH_CLIENT_ID: 'graph-client-id',
        MSGRAPH_CLIENT_SECRET: 'graph-client-secret',
      },
    });
  }, 90_000);

  afterAll(async () => {
    await host?.stop();
    await azurite?.stop();
    rmSync(secretDir, { recursive: true, force: true });
  });

  async function storageIsEmpty(): Promise<void> {
    const queues = QueueServiceClient.fromConnectionString(azurite.connectionString);
    for (const q of ALL_QUEUES) {
      const props = await queues.getQueueClient(q).getProperties();
      expect({ queue: q, messages: props.approximateMessagesCount }).toEqual({ queue: q, messages: 0 });
    }
    for (const t of ALL_TABLES) {
      const client = TableClient.fromConnectionString(azurite.connectionString, t, { allowInsecureConnection: true });
      const page = await client.listEntities().byPage({ maxPageSize: 1 }).next();
      const rows = page.done ? [] : page.value;
      expect({ table: t, rows: rows.length }).toEqual({ table: t, rows: 0 });
    }
  }

  it('a 50 MB chunked stream to the HubSpot webhook is answered 413 long before the client has sent it', async () => {
    const answer = await postStream(`${host.url}/api/webhooks/hubspot`, 50 * 1024 * 1024);
    expect(answer.status).toBe(413);
    expect(answer.contentType).toMatch(/^application\/problem\+json/);
    expect(JSON.parse(answer.body)).toMatchObject({ status: 413 });
    // The runner stopped reading at its cap: what the client produced is the cap plus what the socket
    // buffers took, not the stream.
    expect(answer.sentWhenAnswered).toBeLessThan(answer.total / 2);
  }, 60_000);

  it.each([
    ['the HubSpot webhook (256 KiB)', '/api/webhooks/hubspot', 300 * 1024, {}],
    ['the Graph change notifications (1 MiB)', '/api/webhooks/graph', 1536 * 1024, {}],
    ['the Graph lifecycle notifications (1 MiB)', '/api/webhooks/graph/lifecycle', 1536 * 1024, {}],
    ['the HubSpot OAuth callback form (16 KiB)', '/api/hubspot/oauth/callback', 64 * 1024, { 'content-type': 'application/x-www-form-urlencoded' }],
  ])('a chunked body past the limit of %s is refused', async (_what, route, size, headers) => {
    const answer = await postStream(`${host.url}${route}`, size, headers);
    if (route.includes('oauth')) {
      // The callback answers a browser: its page for a missing sign-in state.
      expect(answer.status).toBe(400);
      expect(answer.body).toMatch(/HubSpot was not connected/);
    } else {
      expect(answer.status).toBe(413);
      expect(JSON.parse(answer.body)).toMatchObject({ status: 413, title: 'Payload too large' });
    }
  }, 60_000);

  it('a management route (teams notify, 64 KiB) refuses a chunked body past its limit before anything is queued', async () => {
    const answer = await postStream(`${host.url}/api/teams/notify/tenant-a`, 100 * 1024, {
      authorization: `Bearer ${await tenantToken('tenant-a')}`,
      'x-functions-key': host.functionKey,
    });
    expect(answer.status).toBe(413);
    expect(JSON.parse(answer.body)).toMatchObject({ status: 413, title: 'Payload too large' });
  }, 60_000);

  it('a Content-Length far above the limit is refused before the body is sent', async () => {
    const out = await rawRequest(port(), `POST /api/webhooks/hubspot HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: 999999999\r\n\r\n{}`);
    expect(out).toMatch(/^HTTP\/1\.1 413 /);
  });

  it('a Content-Length that contradicts a chunked body is refused (framing a proxy could read differently)', async () => {
    const body = Buffer.alloc(300 * 1024, '{').toString('latin1');
    const chunked = `${body.length.toString(16)}\r\n${body}\r\n0\r\n\r\n`;
    const out = await rawRequest(port(), `POST /api/webhooks/hubspot HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: 10\r\nTransfer-Encoding: chunked\r\n\r\n${chunked}`);
    expect(out).toMatch(/^HTTP\/1\.1 4\d\d /);
  });

  it('left every table and queue empty', async () => {
    await storageIsEmpty();
  });
});
