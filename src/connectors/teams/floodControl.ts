import { createHash } from 'node:crypto';
import { z } from 'zod';
import { ConflictError, PreconditionFailedError, ServiceUnavailableError } from '../../platform/errors';
import { escapeKeyPart, partitionKey, type TenantId } from '../../storage/keys';
import type { ExpiryIndex } from '../../storage/expiry';
import type { RowData, TenantTable } from '../../storage/tenantTable';
import { DEFAULT_FLOOD_WINDOW_MINUTES, DEFAULT_GATHER_SECONDS, type NotificationKind } from './schemas';

/**
 * Per-tenant state that must hold across instances, in `TeamsState` (PartitionKey tenant): settings,
 * flood-control windows and snoozes. Every read-modify-write is conditional on the ETag and re-read on a
 * lost race, so two instances handling the same burst still agree on a single card.
 *
 * RowKeys: `settings`, `flood:<kind>:<ticket>`, `snooze:<ticket>`, `snoozelink:<id>`, `fallback`,
 * `idem:<sha256 of an Idempotency-Key>`.
 */
export interface StateRow extends RowData {
  // settings
  floodWindowMinutes?: number;
  gatherSeconds?: number;
  useFallback?: boolean;
  // flood window
  windowStart?: number;
  notificationId?: string;
  latestNotificationId?: string;
  count?: number;
  lastAt?: number;
  // snooze
  until?: number;
  snoozedAt?: number;
  // snooze link
  linkTicketId?: string;
  linkNotificationId?: string;
  linkMinutes?: number;
  linkExpiresAt?: number;
  linkUsedAt?: number;
  // idempotency key of a notify request
  idemNotificationId?: string;
  idemCreatedAt?: number;
  // fallback webhook status
  lastPostAt?: string;
  lastPostOutcome?: string;
  lastError?: string;
}

export interface TeamsSettings {
  floodWindowMinutes: number;
  gatherSeconds: number;
  /** The tenant opted in to the deployment's fallback webhook (off unless set). */
  useFallback: boolean;
}

export type Admission =
  | { decision: 'new'; floodKey: string; tookOverFrom?: string }
  | { decision: 'collapsed'; floodKey: string; into: string; count: number };

export interface FloodWindow {
  notificationId: string;
  latestNotificationId: string;
  count: number;
  windowStart: number;
}

/**
 * How long a window's opener may take from opening it to recording its notification (two storage writes,
 * milliseconds when healthy) before a notification that would be counted on its card takes the window
 * over instead. An opener that was only slow, not dead, still posts its own card: one card more, never one less.
 */
export const OPENER_GRACE_MS = 3_000;

// Under a burst every writer but one loses each round; with jittered pauses 30 rounds absorb dozens of
// simultaneous notifications for one ticket.
const MAX_RACES = 30;

function backoff(race: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, Math.random() * Math.min(250, 5 * 2 ** race)));
}

const floodRowSchema = z.object({
  windowStart: z.number(),
  notificationId: z.string(),
  latestNotificationId: z.string(),
  count: z.number().int(),
});

/**
 * Flood and snooze rows are deleted once they can no longer change a decision: a flood window lasts at
 * most 24 h (`flood_window_minutes` ≤ 1440), so its row goes 2 days after the window opened; a snooze
 * row goes a day after the snooze ends.
 */
export const FLOOD_ROW_RETENTION_MS = 2 * 24 * 3600_000;
export const SNOOZE_ROW_RETENTION_AFTER_MS = 24 * 3600_000;
/** A snooze link row is kept this long after the link expired (24 h after it was made), used or not. */
export const SNOOZE_LINK_ROW_RETENTION_AFTER_MS = 24 * 3600_000;
/** An Idempotency-Key of `POST /api/teams/notify` names its notification for 2 days (the engine's retries are minutes). */
export const IDEMPOTENCY_KEY_RETENTION_MS = 2 * 24 * 3600_000;
const EXPIRY_KIND = 'teams-state';

export class TeamsState {
  constructor(
    private readonly table: TenantTable<StateRow>,
    private readonly now: () => number = Date.now,
    private readonly expiry?: ExpiryIndex,
  ) {
    expiry?.register(EXPIRY_KIND, {
      table,
      partition: (t) => partitionKey.tenant(t),
      expired: (data, now, part) => {
        if (part === 'flood') return typeof data.windowStart === 'number' && data.windowStart + FLOOD_ROW_RETENTION_MS <= now;
        if (part === 'snooze') return typeof data.until === 'number' && data.until + SNOOZE_ROW_RETENTION_AFTER_MS <= now;
        if (part === 'snoozelink') return typeof data.linkExpiresAt === 'number' && data.linkExpiresAt + SNOOZE_LINK_ROW_RETENTION_AFTER_MS <= now;
        if (part === 'idem') return typeof data.idemCreatedAt === 'number' && data.idemCreatedAt + IDEMPOTENCY_KEY_RETENTION_MS <= now;
        return false;
      },
    });
  }

  async settings(tenant: TenantId): Promise<TeamsSettings> {
    const row = await this.table.get(partitionKey.tenant(tenant), 'settings');
    return {
      floodWindowMinutes: row?.data.floodWindowMinutes ?? DEFAULT_FLOOD_WINDOW_MINUTES,
      gatherSeconds: row?.data.gatherSeconds ?? DEFAULT_GATHER_SECONDS,
      useFallback: row?.data.useFallback === true,
    };
  }

  async saveSettings(tenant: TenantId, patch: Partial<TeamsSettings>): Promise<TeamsSettings> {
    const data: Partial<StateRow> = {};
    if (patch.floodWindowMinutes !== undefined) data.floodWindowMinutes = patch.floodWindowMinutes;
    if (patch.gatherSeconds !== undefined) data.gatherSeconds = patch.gatherSeconds;
    if (patch.useFallback !== undefined) data.useFallback = patch.useFallback;
    if (Object.keys(data).length > 0) await this.table.upsert(partitionKey.tenant(tenant), 'settings', data, 'Merge');
    return this.settings(tenant);
  }

  static floodKey(kind: NotificationKind, ticketId: string): string {
    return `flood:${kind}:${escapeKeyPart(ticketId)}`;
  }

  /**
   * Decides whether a notification opens a new window (its own card) or is counted on the card of the
   * window already open for the same ticket and kind. Windows are fixed: they start with the first
   * notification and last `windowMs`.
   */
  async admit(tenant: TenantId, kind: NotificationKind, ticketId: string, notificationId: string, windowMs: number, opts: { openerRecorded?: (openerId: string) => Promise<boolean> } = {}): Promise<Admission> {
    const pk = partitionKey.tenant(tenant);
    const rk = TeamsState.floodKey(kind, ticketId);
    for (let race = 0; race < MAX_RACES; race++) {
      const now = this.now();
      const fresh: Partial<StateRow> = { windowStart: now, notificationId, latestNotificationId: notificationId, count: 1, lastAt: now };
      const row = await this.table.get(pk, rk);
      try {
        if (!row) {
          await this.expiry?.schedule(tenant, EXPIRY_KIND, 'flood', rk, now + FLOOD_ROW_RETENTION_MS);
          await this.table.create(pk, rk, fresh as StateRow);
          return { decision: 'new', floodKey: rk };
        }
        const open = floodRowSchema.safeParse(row.data);
        // The window this very notification opened (its request is being retried under its Idempotency-Key).
        if (open.success && open.data.notificationId === notificationId && now < open.data.windowStart + windowMs) return { decision: 'new', floodKey: rk };
        if (!open.success || now >= open.data.windowStart + windowMs) {
          await this.expiry?.schedule(tenant, EXPIRY_KIND, 'flood', rk, now + FLOOD_ROW_RETENTION_MS);
          await this.table.update(pk, rk, fresh, row.etag, 'Replace');
          return { decision: 'new', floodKey: rk };
        }
        // A window whose opener never recorded its notification belongs to a request that died between
        // opening it and queueing its card (the record is written after the message): counting this one on
        // that card would lose it. Give a live opener the grace to finish, then take the window over.
        if (opts.openerRecorded && !(await opts.openerRecorded(open.data.notificationId))) {
          if (now < open.data.windowStart + OPENER_GRACE_MS) {
            await new Promise((r) => setTimeout(r, Math.min(250, open.data.windowStart + OPENER_GRACE_MS - now)));
            race--;
            continue;
          }
          // The dead opener's slot is this one's: most often it is the engine's retry of the same notification.
          await this.table.update(pk, rk, { ...fresh, windowStart: open.data.windowStart, count: open.data.count }, row.etag, 'Replace');
          return { decision: 'new', floodKey: rk, tookOverFrom: open.data.notificationId };
        }
        const count = open.data.count + 1;
        await this.table.update(pk, rk, { count, lastAt: now, latestNotificationId: notificationId }, row.etag, 'Merge');
        return { decision: 'collapsed', floodKey: rk, into: open.data.notificationId, count };
      } catch (err) {
        if (!(err instanceof ConflictError || err instanceof PreconditionFailedError)) throw err;
        await backoff(race);
      }
    }
    throw new ServiceUnavailableError('Too many concurrent notifications for one ticket; try again.', 1);
  }

  /**
   * The notification an Idempotency-Key stands for: `candidate` when this is the key's first use, else the
   * id its first use chose (whatever became of that request: the caller goes on with that id).
   */
  async idempotentId(tenant: TenantId, key: string, candidate: string): Promise<string> {
    const pk = partitionKey.tenant(tenant);
    const rk = idemKey(key);
    const existing = await this.table.get(pk, rk);
    if (typeof existing?.data.idemNotificationId === 'string') return existing.data.idemNotificationId;
    const now = this.now();
    await this.expiry?.schedule(tenant, EXPIRY_KIND, 'idem', rk, now + IDEMPOTENCY_KEY_RETENTION_MS);
    try {
      await this.table.create(pk, rk, { idemNotificationId: candidate, idemCreatedAt: now });
      return candidate;
    } catch (err) {
      if (!(err instanceof ConflictError)) throw err;
      const won = await this.table.get(pk, rk);
      if (typeof won?.data.idemNotificationId !== 'string') throw err;
      return won.data.idemNotificationId;
    }
  }

  /** Frees a key whose request failed before anything was queued, so its retry starts afresh. */
  async forgetIdempotencyKey(tenant: TenantId, key: string, notificationId: string): Promise<void> {
    const pk = partitionKey.tenant(tenant);
    const row = await this.table.get(pk, idemKey(key));
    if (row?.data.idemNotificationId !== notificationId) return;
    await this.table.delete(pk, idemKey(key), row.etag).catch((err: unknown) => {
      if (!(err instanceof PreconditionFailedError)) throw err;
    });
  }

  /** The window a card stands for, if it is still the one `notificationId` opened. */
  async window(tenant: TenantId, floodKey: string, notificationId: string): Promise<FloodWindow | undefined> {
    const row = await this.table.get(partitionKey.tenant(tenant), floodKey);
    const parsed = floodRowSchema.safeParse(row?.data);
    if (!parsed.success || parsed.data.notificationId !== notificationId) return undefined;
    return parsed.data;
  }

  /**
   * Closes the window of a card that could not be delivered, so the next notification for the ticket
   * gets a card of its own instead of being counted on one nobody saw.
   */
  async closeWindow(tenant: TenantId, floodKey: string, notificationId: string): Promise<void> {
    const pk = partitionKey.tenant(tenant);
    const row = await this.table.get(pk, floodKey);
    if (!row || row.data.notificationId !== notificationId) return;
    try {
      await this.table.delete(pk, floodKey, row.etag);
    } catch (err) {
      if (!(err instanceof PreconditionFailedError)) throw err;
    }
  }

  /** Snoozes a ticket's SLA warnings until `until` (epoch ms); a longer snooze already in place is kept. */
  async snooze(tenant: TenantId, ticketId: string, until: number): Promise<number> {
    const pk = partitionKey.tenant(tenant);
    const rk = `snooze:${escapeKeyPart(ticketId)}`;
    for (let race = 0; race < MAX_RACES; race++) {
      const row = await this.table.get(pk, rk);
      try {
        if (!row) {
          await this.expiry?.schedule(tenant, EXPIRY_KIND, 'snooze', rk, until + SNOOZE_ROW_RETENTION_AFTER_MS);
          await this.table.create(pk, rk, { until, snoozedAt: this.now() });
          return until;
        }
        const kept = Math.max(row.data.until ?? 0, until);
        if (kept !== row.data.until) await this.expiry?.schedule(tenant, EXPIRY_KIND, 'snooze', rk, kept + SNOOZE_ROW_RETENTION_AFTER_MS);
        await this.table.update(pk, rk, { until: kept, snoozedAt: this.now() }, row.etag, 'Merge');
        return kept;
      } catch (err) {
        if (!(err instanceof ConflictError || err instanceof PreconditionFailedError)) throw err;
        await backoff(race);
      }
    }
    throw new ServiceUnavailableError('Could not record the snooze; try again.', 1);
  }

  /** Epoch ms until which the ticket's SLA warnings are snoozed, if a snooze is active. */
  async snoozedUntil(tenant: TenantId, ticketId: string): Promise<number | undefined> {
    const row = await this.table.get(partitionKey.tenant(tenant), `snooze:${escapeKeyPart(ticketId)}`);
    const until = row?.data.until;
    return until !== undefined && until > this.now() ? until : undefined;
  }

  async createSnoozeLink(tenant: TenantId, id: string, link: { ticketId: string; notificationId: string; minutes: number; expiresAt: number }): Promise<void> {
    // Entered in the expiry index first, as every claim and state row is: a crash after it leaves no row behind forever.
    await this.expiry?.schedule(tenant, EXPIRY_KIND, 'snoozelink', `snoozelink:${id}`, link.expiresAt + SNOOZE_LINK_ROW_RETENTION_AFTER_MS);
    await this.table.create(partitionKey.tenant(tenant), `snoozelink:${id}`, {
      linkTicketId: link.ticketId,
      linkNotificationId: link.notificationId,
      linkMinutes: link.minutes,
      linkExpiresAt: link.expiresAt,
    });
  }

  async snoozeLink(tenant: TenantId, id: string): Promise<{ ticketId: string; minutes: number; expiresAt: number; usedAt: number | undefined; etag: string } | undefined> {
    const row = await this.table.get(partitionKey.tenant(tenant), `snoozelink:${id}`);
    const d = row?.data;
    if (!row || !d || typeof d.linkTicketId !== 'string' || typeof d.linkMinutes !== 'number' || typeof d.linkExpiresAt !== 'number') return undefined;
    return { ticketId: d.linkTicketId, minutes: d.linkMinutes, expiresAt: d.linkExpiresAt, usedAt: d.linkUsedAt, etag: row.etag };
  }

  /** Marks a link used, if it is still as read (`etag`); false when another click used it first. */
  async useSnoozeLink(tenant: TenantId, id: string, etag: string): Promise<boolean> {
    try {
      await this.table.update(partitionKey.tenant(tenant), `snoozelink:${id}`, { linkUsedAt: this.now() }, etag, 'Merge');
      return true;
    } catch (err) {
      if (err instanceof PreconditionFailedError) return false;
      throw err;
    }
  }

  async fallbackStatus(tenant: TenantId): Promise<{ lastPostAt?: string; lastPostOutcome?: string; lastError?: string } | undefined> {
    const row = await this.table.get(partitionKey.tenant(tenant), 'fallback');
    if (!row) return undefined;
    const { lastPostAt, lastPostOutcome, lastError } = row.data;
    return { ...(lastPostAt ? { lastPostAt } : {}), ...(lastPostOutcome ? { lastPostOutcome } : {}), ...(lastError ? { lastError } : {}) };
  }

  async recordFallbackOutcome(tenant: TenantId, outcome: { ok: boolean; at: Date; reason?: string }): Promise<void> {
    await this.table.upsert(
      partitionKey.tenant(tenant),
      'fallback',
      { lastPostAt: outcome.at.toISOString(), lastPostOutcome: outcome.ok ? 'ok' : 'failed', lastError: outcome.ok ? '' : (outcome.reason ?? 'unknown') },
      'Merge',
    );
  }
}

function idemKey(key: string): string {
  return `idem:${createHash('sha256').update(key, 'utf8').digest('hex')}`;
}
