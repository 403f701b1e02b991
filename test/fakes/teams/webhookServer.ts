import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { randomBytes } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { registerSecret } from '../../helpers/secretScan';
import { checkEnvelope, MAX_WEBHOOK_BYTES } from './cardValidator';

/**
 * A stand-in for Teams channel webhooks, speaking their wire protocol:
 * - `POST /workflows/<channel>?sig=…` behaves like a Workflows "webhook request received" trigger
 *   (202, empty body);
 * - `POST /webhookb2/<channel>` like a legacy incoming webhook (200 with body `1`; when throttled it
 *   can answer 200 with "…HTTP error 429" in the body, as legacy connectors did).
 * Each post is checked (envelope, version, actions, mentions, official schema and parser, 28 KB) and
 * recorded. Teams' documented connector rate limits are enforced per channel: a post over them is
 * answered 429 and counted as a violation. Failures can be injected per channel.
 */

export type Injected = '429' | '429-body' | '500' | '502' | '503' | '400' | '404';

export interface ReceivedPost {
  channel: string;
  kind: 'workflows' | 'incoming-webhook';
  at: number;
  status: number;
  outcome: 'accepted' | 'invalid' | 'injected' | 'throttled' | 'too-large';
  bytes: number;
  card: Record<string, unknown> | undefined;
  errors: string[];
  schemaChecked: boolean;
  /** From the card's first container id (`notification-<id>`). */
  notificationId: string | undefined;
}

export const TEAMS_LIMITS: ReadonlyArray<{ limit: number; ms: number }> = [
  { limit: 4, ms: 1_000 },
  { limit: 60, ms: 30_000 },
  { limit: 100, ms: 3_600_000 },
  { limit: 150, ms: 7_200_000 },
  { limit: 1_800, ms: 86_400_000 },
];

interface ChannelBehaviour {
  script: Injected[];
  every?: { n: number; response: Injected; seen: number };
  always?: Injected;
  /** Scripted answers for the cards of one ticket (by the card's "Ticket" fact), in order. */
  byTicket: Map<string, Injected[]>;
  arrivals: number[];
  violations: number;
}

export interface FakeTeams {
  baseUrl: string;
  /** A webhook URL for `channel`, with a random `sig` like the real ones. */
  url(channel: string, kind?: 'workflows' | 'incoming-webhook'): string;
  posts(channel?: string): ReceivedPost[];
  /** Posts that were accepted (what a channel shows). */
  accepted(channel?: string): ReceivedPost[];
  /** Answers the next posts to `channel` with these, in order. */
  inject(channel: string, ...responses: Injected[]): void;
  /** Answers the next posts to `channel` of cards for `ticketId` (the card's "Ticket" fact) with these, in order. */
  injectForTicket(channel: string, ticketId: string, ...responses: Injected[]): void;
  /** Answers every `n`-th post to `channel` with `response`. */
  failEvery(channel: string, n: number, response: Injected): void;
  /** Answers every post to `channel` with `response` (undefined: stop). */
  failAlways(channel: string, response: Injected | undefined): void;
  /** Posts that arrived while the channel was over a documented limit. */
  violations(channel?: string): number;
  reset(): void;
  stop(): Promise<void>;
}

export async function startFakeTeams(): Promise<FakeTeams> {
  const behaviours = new Map<string, ChannelBehaviour>();
  const posts: ReceivedPost[] = [];
  const behaviour = (channel: string): ChannelBehaviour => {
    let b = behaviours.get(channel);
    if (!b) {
      b = { script: [], byTicket: new Map(), arrivals: [], violations: 0 };
      behaviours.set(channel, b);
    }
    return b;
  };

  const server: Server = createServer((req, res) => {
    void handle(req, res).catch(() => {
      res.statusCode = 500;
      res.end();
    });
  });

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const m = /^\/(workflows|webhookb2)\/([a-z0-9-]+)$/.exec(url.pathname);
    if (!m || req.method !== 'POST') {
      res.writeHead(404).end();
      return;
    }
    const kind = m[1] === 'workflows' ? 'workflows' : 'incoming-webhook';
    const channel = m[2] as string;
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const raw = Buffer.concat(chunks);
    const at = Date.now();
    const b = behaviour(channel);
    const record = (status: number, outcome: ReceivedPost['outcome'], extra: Partial<ReceivedPost> = {}) => {
      posts.push({ channel, kind, at, status, outcome, bytes: raw.length, card: undefined, errors: [], schemaChecked: false, notificationId: undefined, ...extra });
    };

    // Every request counts against the limits, as Teams counts what reaches it.
    b.arrivals.push(at);
    const over = TEAMS_LIMITS.find((l) => b.arrivals.filter((t) => t > at - l.ms).length > l.limit);
    if (over) {
      b.violations++;
      if (process.env.FAKE_TEAMS_DEBUG) console.log(`fake teams: ${channel} over ${over.limit}/${over.ms}ms at ${at}: ${b.arrivals.filter((t) => t > at - over.ms).map((t) => t - at).join(',')}`);
      record(429, 'throttled');
      throttled(res, kind, '429');
      return;
    }

    const injected = b.always ?? b.script.shift() ?? byTicket(b, raw) ?? nextEvery(b);
    if (injected) {
      const status = injected === '429-body' ? 200 : Number(injected);
      record(status, 'injected');
      throttled(res, kind, injected);
      return;
    }

    if (raw.length > MAX_WEBHOOK_BYTES) {
      record(413, 'too-large');
      res.writeHead(413, { 'content-type': 'text/plain' }).end('Request Entity Too Large');
      return;
    }
    if (!/^application\/json\b/i.test(req.headers['content-type'] ?? '')) {
      record(400, 'invalid', { errors: ['content-type must be application/json'] });
      res.writeHead(400, { 'content-type': 'text/plain' }).end('Bad payload');
      return;
    }
    let body: unknown;
    try {
      body = JSON.parse(raw.toString('utf8'));
    } catch {
      record(400, 'invalid', { errors: ['body is not JSON'] });
      res.writeHead(400, { 'content-type': 'text/plain' }).end('Bad payload');
      return;
    }
    const check = checkEnvelope(body);
    const notificationId = firstContainerId(check.card);
    if (check.errors.length > 0) {
      record(400, 'invalid', { card: check.card, errors: check.errors, schemaChecked: check.schemaChecked, notificationId });
      res.writeHead(400, { 'content-type': 'text/plain' }).end('Bad payload: ' + check.errors.join('; '));
      return;
    }
    record(kind === 'workflows' ? 202 : 200, 'accepted', { card: check.card, schemaChecked: check.schemaChecked, notificationId });
    if (kind === 'workflows') res.writeHead(202).end();
    else res.writeHead(200, { 'content-type': 'text/plain' }).end('1');
  }

  function byTicket(b: ChannelBehaviour, raw: Buffer): Injected | undefined {
    if (b.byTicket.size === 0) return undefined;
    const ticket = ticketFact(raw);
    return ticket === undefined ? undefined : b.byTicket.get(ticket)?.shift();
  }

  function nextEvery(b: ChannelBehaviour): Injected | undefined {
    if (!b.every) return undefined;
    b.every.seen++;
    return b.every.seen % b.every.n === 0 ? b.every.response : undefined;
  }

  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  const baseUrl = `http://127.0.0.1:${port}`;

  return {
    baseUrl,
    url: (channel, kind = 'workflows') => {
      const sig = randomBytes(16).toString('hex');
      const url = kind === 'workflows' ? `${baseUrl}/workflows/${channel}?api-version=2016-06-01&sig=${sig}` : `${baseUrl}/webhookb2/${channel}`;
      if (kind === 'workflows') registerSecret(sig, `Teams webhook sig of ${channel}`);
      registerSecret(url, `Teams webhook URL of ${channel}`);
      return url;
    },
    posts: (channel) => posts.filter((p) => channel === undefined || p.channel === channel),
    accepted: (channel) => posts.filter((p) => p.outcome === 'accepted' && (channel === undefined || p.channel === channel)),
    inject: (channel, ...responses) => behaviour(channel).script.push(...responses),
    injectForTicket: (channel, ticketId, ...responses) => {
      const b = behaviour(channel);
      b.byTicket.set(ticketId, [...(b.byTicket.get(ticketId) ?? []), ...responses]);
    },
    failEvery: (channel, n, response) => {
      behaviour(channel).every = { n, response, seen: 0 };
    },
    failAlways: (channel, response) => {
      const b = behaviour(channel);
      if (response) b.always = response;
      else delete b.always;
    },
    violations: (channel) => [...behaviours.entries()].filter(([c]) => channel === undefined || c === channel).reduce((n, [, b]) => n + b.violations, 0),
    reset: () => {
      posts.length = 0;
      behaviours.clear();
    },
    stop: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

function throttled(res: ServerResponse, kind: 'workflows' | 'incoming-webhook', what: Injected): void {
  if (what === '429-body') {
    // What legacy connectors did: success status, the throttling in the text.
    res.writeHead(200, { 'content-type': 'text/plain' }).end('Webhook message delivery failed with error: Microsoft Teams endpoint returned HTTP error 429 with ContextId tcid=0');
    return;
  }
  if (what === '429') {
    res.writeHead(429, { 'content-type': 'text/plain', 'retry-after': '1' }).end(kind === 'workflows' ? '{"error":{"code":"TooManyRequests"}}' : 'Too many requests');
    return;
  }
  res.writeHead(Number(what), { 'content-type': 'text/plain' }).end(`injected ${what}`);
}

/** The value of the card's "Ticket" fact, read leniently (a malformed body has none). */
function ticketFact(raw: Buffer): string | undefined {
  try {
    const env = JSON.parse(raw.toString('utf8')) as { attachments?: Array<{ content?: { body?: Array<{ type?: string; facts?: Array<{ title?: string; value?: string }> }> } }> };
    const facts = env.attachments?.[0]?.content?.body?.find((e) => e.type === 'FactSet')?.facts;
    return facts?.find((f) => f.title === 'Ticket')?.value;
  } catch {
    return undefined;
  }
}

function firstContainerId(card: Record<string, unknown> | undefined): string | undefined {
  const body = card?.body;
  if (!Array.isArray(body)) return undefined;
  const first = body[0] as { id?: unknown } | undefined;
  return typeof first?.id === 'string' && first.id.startsWith('notification-') ? first.id.slice('notification-'.length) : undefined;
}
