import http from 'node:http';
import https from 'node:https';

export interface BrowserResponse {
  url: string;
  status: number;
  location: string | undefined;
  /** Raw `Set-Cookie` values of this response. */
  setCookies: string[];
  contentType: string | undefined;
  text: string;
}

/**
 * Just enough of a browser for the OAuth tests: GETs without following redirects unless asked,
 * a cookie jar per host (host-only cookies, as `__Host-` ones are; `Max-Age=0` deletes), and trust in
 * the fakes' self-signed CA. Cookie handling is explicit so the tests can also play another browser
 * (no cookie, someone else's cookie, a replay).
 */
export class TestBrowser {
  readonly jar = new Map<string, Map<string, string>>();

  constructor(private readonly ca?: string) {}

  cookie(host: string, name: string): string | undefined {
    return this.jar.get(host)?.get(name);
  }

  cookieHeader(url: string): string | undefined {
    const jar = this.jar.get(new URL(url).host);
    if (!jar || jar.size === 0) return undefined;
    return [...jar].map(([k, v]) => `${k}=${v}`).join('; ');
  }

  async get(url: string, opts: { cookie?: string | null } = {}): Promise<BrowserResponse> {
    const u = new URL(url);
    const cookie = opts.cookie === null ? undefined : (opts.cookie ?? this.cookieHeader(url));
    const res = await request(u, cookie, this.ca);
    const jar = this.jar.get(u.host) ?? new Map<string, string>();
    this.jar.set(u.host, jar);
    for (const sc of res.setCookies) {
      const [pair, ...attrs] = sc.split(';');
      const eq = (pair ?? '').indexOf('=');
      const name = (pair ?? '').slice(0, eq).trim();
      const value = (pair ?? '').slice(eq + 1).trim();
      if (attrs.some((a) => /^\s*max-age\s*=\s*0\s*$/i.test(a)) || value === '') jar.delete(name);
      else jar.set(name, value);
    }
    return res;
  }

  /** Follows redirects (GET) and returns every hop, the last one being the page that stopped. */
  async follow(url: string, maxHops = 10): Promise<BrowserResponse[]> {
    const hops: BrowserResponse[] = [];
    let next: string | undefined = url;
    while (next && hops.length < maxHops) {
      const res = await this.get(next);
      hops.push(res);
      next = res.status >= 300 && res.status < 400 && res.location ? new URL(res.location, next).toString() : undefined;
    }
    return hops;
  }
}

function request(u: URL, cookie: string | undefined, ca: string | undefined): Promise<BrowserResponse> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> = { accept: 'text/html' };
    if (cookie) headers.cookie = cookie;
    const done = (res: http.IncomingMessage) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () =>
        resolve({
          url: u.toString(),
          status: res.statusCode ?? 0,
          location: res.headers.location,
          setCookies: res.headers['set-cookie'] ?? [],
          contentType: res.headers['content-type'],
          text: Buffer.concat(chunks).toString('utf8'),
        }),
      );
      res.on('error', reject);
    };
    const req = u.protocol === 'https:' ? https.get(u, { headers, ...(ca ? { ca } : {}) }, done) : http.get(u, { headers }, done);
    req.on('error', reject);
  });
}
