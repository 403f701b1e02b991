import type { HttpResponseInit } from '@azure/functions';
import { htmlPage } from '../../platform/http/htmlPage';

/** The page the browser lands on after HubSpot's consent screen. */
export function callbackPage(opts: { status: number; connected: boolean; title: string; message: string }): HttpResponseInit {
  return htmlPage({ status: opts.status, title: opts.title, message: opts.message, tone: opts.connected ? 'ok' : 'fail', footer: 'You can close this window.' });
}
