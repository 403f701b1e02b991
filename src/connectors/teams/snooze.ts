import { randomBytes } from 'node:crypto';
import { z } from 'zod';
import type { HttpResponseInit } from '@azure/functions';
import { AppError } from '../../platform/errors';
import { escapeHtml, htmlPage } from '../../platform/http/htmlPage';
import { tenantIdSchema, type TenantId } from '../../storage/keys';
import { SNOOZE_MINUTES } from './cards';
import type { TeamsState } from './floodControl';

/** How long a card's snooze link can be used: long enough for someone to see the card, short enough not to linger. */
export const SNOOZE_LINK_TTL_SECONDS = 24 * 3600;

/** 16 random bytes, base64url: unguessable, and short enough for a path segment. */
export const snoozeLinkIdSchema = z.string().regex(/^[A-Za-z0-9_-]{22}$/, 'must be a snooze link id');

/** Path parameters of both snooze routes. */
export const snoozeParamsSchema = z.object({ tenant_id: tenantIdSchema, link_id: snoozeLinkIdSchema });

export class SnoozeLinkError extends AppError {
  readonly reason: 'unknown' | 'expired' | 'used';
  constructor(reason: 'unknown' | 'expired' | 'used') {
    const detail = { unknown: 'The link is not valid.', expired: 'The link has expired.', used: 'The link has already been used.' }[reason];
    super({ status: reason === 'unknown' ? 404 : 410, code: `snooze-link-${reason}`, title: 'This snooze link cannot be used', detail });
    this.reason = reason;
  }
}

/**
 * The Snooze button of an SLA warning card. Webhook-posted cards cannot carry `Action.Submit`, so the
 * button is an `Action.OpenUrl`, and what it opens is recorded by request telemetry (the platform logs
 * request URLs). So the URL carries no signed token: it names the tenant and a short random id of a row in
 * `TeamsState` (`snoozelink:<id>`) holding the ticket, the expiry and whether it was used.
 * `GET /api/teams/snooze/{tenant}/{id}` only shows a confirm page (link previewers and mail scanners GET
 * links; that must not snooze); its form `POST`s to the same path, which snoozes once. The id is the
 * capability: single-use, 24 h, looked up only in its own tenant's partition.
 */
export class SnoozeLinks {
  constructor(
    private readonly state: TeamsState,
    private readonly publicBaseUrl: string,
    private readonly now: () => number = Date.now,
  ) {}

  async link(tenant: TenantId, ticketId: string, notificationId: string, ttlSeconds: number = SNOOZE_LINK_TTL_SECONDS): Promise<string> {
    const id = randomBytes(16).toString('base64url');
    await this.state.createSnoozeLink(tenant, id, { ticketId, notificationId, minutes: SNOOZE_MINUTES, expiresAt: this.now() + ttlSeconds * 1000 });
    return `${this.publicBaseUrl}/api/teams/snooze/${encodeURIComponent(tenant)}/${id}`;
  }

  /** What the link would do, without using it. Throws `SnoozeLinkError`. */
  async inspect(tenant: TenantId, id: string): Promise<{ ticketId: string; minutes: number }> {
    const link = await this.#usable(tenant, id);
    return { ticketId: link.ticketId, minutes: link.minutes };
  }

  /** Records the snooze, then uses up the link. Throws `SnoozeLinkError` for an unknown, expired or used link. */
  async redeem(tenant: TenantId, id: string): Promise<{ tenant: TenantId; ticketId: string; until: Date; minutes: number }> {
    const link = await this.#usable(tenant, id);
    // Snooze first: it is idempotent (a longer snooze is kept), so a crash before the link is marked used
    // leaves a link that can be clicked again, never a used link that snoozed nothing.
    const until = await this.state.snooze(tenant, link.ticketId, this.now() + link.minutes * 60_000);
    if (!(await this.state.useSnoozeLink(tenant, id, link.etag))) throw new SnoozeLinkError('used');
    return { tenant, ticketId: link.ticketId, until: new Date(until), minutes: link.minutes };
  }

  async #usable(tenant: TenantId, id: string) {
    const link = await this.state.snoozeLink(tenant, id);
    if (!link) throw new SnoozeLinkError('unknown');
    if (link.usedAt !== undefined) throw new SnoozeLinkError('used');
    if (link.expiresAt <= this.now()) throw new SnoozeLinkError('expired');
    return link;
  }
}

const PAGE_HEADERS = {
  'Content-Type': 'text/html; charset=utf-8',
  'Cache-Control': 'no-store',
  // As htmlPage's, except that the one form may post back to us.
  'Content-Security-Policy': "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
  'X-Content-Type-Options': 'nosniff',
  'Referrer-Policy': 'no-referrer',
};

/** The page a click on Snooze opens: what it will do, and a button that POSTs to the same URL. */
export function snoozeConfirmPage(opts: { ticketId: string; minutes: number }): HttpResponseInit {
  const body = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><meta name="robots" content="noindex">
<title>Snooze SLA warnings</title>
<style>body{font-family:system-ui,sans-serif;max-width:36rem;margin:4rem auto;padding:0 1rem;color:#222}h1{font-size:1.4rem}button{font-size:1rem;padding:.5rem 1rem}</style>
</head><body>
<h1>Snooze SLA warnings</h1>
<p>${escapeHtml(`Snooze SLA warnings for ticket ${opts.ticketId} for ${opts.minutes} minutes? SLA breaches are still posted.`)}</p>
<form method="post"><button type="submit">Snooze ${opts.minutes} min</button></form>
</body></html>
`;
  return { status: 200, body, headers: PAGE_HEADERS };
}

/** The small page the browser shows after the click, or for a link that cannot be used. */
export function snoozePage(opts: { status: number; title: string; message: string }): HttpResponseInit {
  return htmlPage(opts);
}

/** The page for a link that cannot be used; anything else is rethrown (a 5xx problem). */
export function snoozeRefusal(err: unknown, log: { warn(message: string, fields?: Record<string, unknown>): void }): HttpResponseInit {
  if (!(err instanceof SnoozeLinkError)) throw err;
  log.warn('snooze link refused', { reason: err.reason });
  return snoozePage({ status: err.status, title: 'This snooze link cannot be used', message: err.message });
}
