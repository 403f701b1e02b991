import type { HttpResponseInit } from '@azure/functions';

/** Escapes text for HTML element content and attribute values. */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"'`=/]/g, (c) => `&#${c.charCodeAt(0)};`);
}

/**
 * The small page a browser lands on (OAuth and admin-consent callbacks, the Teams snooze link).
 * Everything printed is escaped, nothing secret is passed in, and the headers forbid scripts, framing
 * and Referer leaks: these URLs can carry a code, a state or a token.
 */
export function htmlPage(opts: { status: number; title: string; message: string; tone?: 'ok' | 'fail'; footer?: string }): HttpResponseInit {
  const cls = opts.tone ? ` class="${opts.tone}"` : '';
  const footer = opts.footer ? `\n<p>${escapeHtml(opts.footer)}</p>` : '';
  const body = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><meta name="robots" content="noindex">
<title>${escapeHtml(opts.title)}</title>
<style>body{font-family:system-ui,sans-serif;max-width:36rem;margin:4rem auto;padding:0 1rem;color:#222}h1{font-size:1.4rem}.ok{color:#0a7d32}.fail{color:#b00020}</style>
</head><body>
<h1${cls}>${escapeHtml(opts.title)}</h1>
<p>${escapeHtml(opts.message)}</p>${footer}
</body></html>
`;
  return {
    status: opts.status,
    body,
    headers: {
      'Content-Type': 'text/html; charset=utf-8',
      'Cache-Control': 'no-store',
      'Content-Security-Policy': "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
      'X-Content-Type-Options': 'nosniff',
      'Referrer-Policy': 'no-referrer',
    },
  };
}
