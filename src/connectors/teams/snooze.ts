import { z } from 'zod';
import type { SignedTokens } from '../../platform/signedTokens';
import { tenantId as toTenantId, type TenantId } from '../../storage/keys';
import { SNOOZE_MINUTES } from './cards';
import type { TeamsState } from './floodControl';
import type { HttpResponseInit } from '@azure/functions';
import { htmlPage } from '../../platform/http/htmlPage';

export const SNOOZE_PURPOSE = 'teams-snooze';
/** How long a card's snooze link can be used: long enough for someone to see the card, short enough not to linger. */
export const SNOOZE_LINK_TTL_SECONDS = 24 * 3600;

const claimsSchema = z.object({ tk: z.string().min(1).max(128), n: z.string().max(64), m: z.number().int().min(1).max(1440) });

/**
 * The Snooze button of an SLA warning card. Webhook-posted cards cannot carry `Action.Submit`, so the
 * button is an `Action.OpenUrl` to our anonymous `GET /api/teams/snooze?token=…`; the token is signed,
 * expiring, bound to the purpose `teams-snooze` and to one tenant and ticket, and works once.
 */
export class SnoozeLinks {
  constructor(
    private readonly tokens: SignedTokens,
    private readonly state: TeamsState,
    private readonly publicBaseUrl: string,
    private readonly now: () => number = Date.now,
  ) {}

  async link(tenant: TenantId, ticketId: string, notificationId: string, ttlSeconds: number = SNOOZE_LINK_TTL_SECONDS): Promise<string> {
    const token = await this.tokens.sign(SNOOZE_PURPOSE, tenant, { tk: ticketId, n: notificationId, m: SNOOZE_MINUTES }, ttlSeconds);
    return `${this.publicBaseUrl}/api/teams/snooze?token=${encodeURIComponent(token)}`;
  }

  /** Verifies and consumes the token, then records the snooze. Throws `InvalidSignedTokenError` for a bad, expired or used link. */
  async redeem(token: string): Promise<{ tenant: TenantId; ticketId: string; until: Date; minutes: number }> {
    const claims = await this.tokens.verify(SNOOZE_PURPOSE, token, { singleUse: true });
    const parsed = claimsSchema.parse(claims);
    const tenant = toTenantId(claims.tenant_id);
    const until = await this.state.snooze(tenant, parsed.tk, this.now() + parsed.m * 60_000);
    return { tenant, ticketId: parsed.tk, until: new Date(until), minutes: parsed.m };
  }
}

/** The small page the browser shows after the click. */
export function snoozePage(opts: { status: number; title: string; message: string }): HttpResponseInit {
  return htmlPage(opts);
}
