import { randomBytes } from 'node:crypto';
import { odata } from '@azure/data-tables';
import { z } from 'zod';
import { NotFoundError } from '../../platform/errors';
import { partitionKey, type TenantId } from '../../storage/keys';
import type { ExpiryIndex } from '../../storage/expiry';
import type { RowData, TenantTable } from '../../storage/tenantTable';
import { NOTIFICATION_KINDS, notificationSchema, type Notification, type NotificationKind } from './schemas';

export const NOTIFICATION_STATUSES = ['queued', 'collapsed', 'suppressed', 'sent', 'failed'] as const;
export type NotificationStatus = (typeof NOTIFICATION_STATUSES)[number];

/** Which webhook a notification went to: one of the tenant's channels, or the deployment's fallback. */
export const FALLBACK_CHANNEL = 'fallback';

export interface NotificationRow extends RowData {
  kind: NotificationKind;
  ticketId: string;
  channel: string;
  status: NotificationStatus;
  createdAt: string;
  /** The validated notification as JSON; the card is built from it at send time. */
  payload: string;
  correlationId?: string;
  /** The notification whose card this one was counted on (status `collapsed`). */
  collapsedInto?: string;
  /** Why a notification was not sent (`snoozed`) or failed. */
  reason?: string;
  floodKey?: string;
  attempts?: number;
  lastAttemptAt?: string;
  /** Set when a post starts, cleared when its outcome is written: still set after a crash mid-post. */
  attemptOpen?: boolean;
  /** The card was posted after an attempt that may already have shown it (flagged on the card). */
  possibleRepeat?: boolean;
  sentAt?: string;
  /** How many notifications the sent card stood for. */
  count?: number;
  truncated?: boolean;
}

const rowSchema = z.object({
  kind: z.enum(NOTIFICATION_KINDS),
  ticketId: z.string(),
  channel: z.string(),
  status: z.enum(NOTIFICATION_STATUSES),
  createdAt: z.string(),
  payload: z.string(),
  correlationId: z.string().optional(),
  collapsedInto: z.string().optional(),
  reason: z.string().optional(),
  floodKey: z.string().optional(),
  attempts: z.number().int().optional(),
  lastAttemptAt: z.string().optional(),
  attemptOpen: z.boolean().optional(),
  possibleRepeat: z.boolean().optional(),
  sentAt: z.string().optional(),
  count: z.number().int().optional(),
  truncated: z.boolean().optional(),
});

export type NotificationRecord = Omit<z.infer<typeof rowSchema>, 'payload'> & {
  id: string;
  notification: Notification;
};

const MAX_TS = 9_999_999_999_999;

/** `n-<inverted ms>-<random>`: sorts newest first within the tenant's partition. */
export function newNotificationId(now: number = Date.now()): string {
  return `n-${String(MAX_TS - now).padStart(13, '0')}-${randomBytes(6).toString('hex')}`;
}

/** When `newNotificationId` made the id (epoch ms). */
export function notificationCreatedAt(id: string): number {
  return MAX_TS - Number(id.slice(2, 15));
}

/**
 * How long a notification's record is kept (what `GET /api/teams/notifications` shows): 30 days, far
 * beyond the 7 days its teams-cards message can live on the queue, so no record goes while in flight.
 */
export const NOTIFICATION_LOG_RETENTION_MS = 30 * 24 * 3600_000;
const EXPIRY_KIND = 'teams-notification';

/**
 * The record of every notification the engine asked for (`TeamsNotifications`, PartitionKey tenant,
 * RowKey notification id): what it was, where it was routed, and what became of it.
 */
export class NotificationLog {
  constructor(
    private readonly table: TenantTable<NotificationRow>,
    private readonly expiry?: ExpiryIndex,
  ) {
    expiry?.register(EXPIRY_KIND, {
      table,
      partition: (t) => partitionKey.tenant(t),
      expired: (data, now) => typeof data.createdAt === 'string' && Date.parse(data.createdAt) + NOTIFICATION_LOG_RETENTION_MS <= now,
    });
  }

  async create(tenant: TenantId, id: string, row: NotificationRow): Promise<void> {
    await this.expiry?.schedule(tenant, EXPIRY_KIND, '', id, Date.parse(row.createdAt) + NOTIFICATION_LOG_RETENTION_MS);
    await this.table.create(partitionKey.tenant(tenant), id, row);
  }

  async get(tenant: TenantId, id: string): Promise<NotificationRecord | undefined> {
    const row = await this.table.get(partitionKey.tenant(tenant), id);
    return row ? toRecord(id, row.data) : undefined;
  }

  /** Merges `patch`; false when the record does not exist. */
  async update(tenant: TenantId, id: string, patch: Partial<NotificationRow>): Promise<boolean> {
    try {
      await this.table.update(partitionKey.tenant(tenant), id, patch, '*');
      return true;
    } catch (err) {
      if (err instanceof NotFoundError) return false;
      throw err;
    }
  }

  /** Newest first. */
  async list(tenant: TenantId, opts: { ticketId?: string; limit: number }): Promise<NotificationRecord[]> {
    const out: NotificationRecord[] = [];
    const filter = opts.ticketId === undefined ? undefined : odata`ticketId eq ${opts.ticketId}`;
    for await (const row of this.table.all(partitionKey.tenant(tenant), filter)) {
      const rec = toRecord(row.rowKey, row.data);
      if (rec) out.push(rec);
      if (out.length >= opts.limit) break;
    }
    return out;
  }
}

function toRecord(id: string, data: unknown): NotificationRecord | undefined {
  const parsed = rowSchema.safeParse(data);
  if (!parsed.success) return undefined;
  const { payload, ...rest } = parsed.data;
  let json: unknown;
  try {
    json = JSON.parse(payload);
  } catch {
    return undefined;
  }
  const notification = notificationSchema.safeParse(json);
  if (!notification.success) return undefined;
  return { ...rest, id, notification: notification.data };
}
