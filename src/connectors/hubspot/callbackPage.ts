/** Escapes text for HTML element content and attribute values. */
export function escapeHtml(s: string): string {
  return s.replace(/[&<>"'`=/]/g, (c) => `&#${c.charCodeAt(0)};`);
}

/**
 * The small page the browser lands on after HubSpot's consent screen. Everything interpolated is
 * escaped; nothing secret is ever passed in. No script, no external resources (CSP forbids both).
 */
export function callbackPage(opts: { status: number; connected: boolean; title: string; message: string }): { status: number; body: string; headers: Record<string, string> } {
  const body = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(opts.title)}</title>
<style>body{font-family:system-ui,sans-serif;max-width:36rem;margin:4rem auto;padding:0 1rem;color:#222}h1{font-size:1.4rem}.ok{color:#0a7d32}.fail{color:#b00020}</style>
</head><body>
<h1 class="${opts.connected ? 'ok' : 'fail'}">${escapeHtml(opts.title)}</h1>
<p>${escapeHtml(opts.message)}</p>
<p>You can close this window.</p>
</body></html>
`;
  return {
    status: opts.status,
    body,
    headers: {
      'Content-Type': 'text/html; charset=utf-8',
      'Cache-Control': 'no-store',
      'Content-Security-Policy': "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'",
      'X-Content-Type-Options': 'nosniff',
      'Referrer-Policy': 'no-referrer',
    },
  };
}
