import { z } from 'zod';
import { ConflictError } from '../../platform/errors';
import {
  escapeKeyPart,
  integrationId as toIntegrationId,
  partitionKey,
  tenantId as toTenantId,
  unescapeKeyPart,
  type IntegrationId,
  type Row,
  type TenantId,
  type TenantTable,
} from '../../storage';

/**
 * Graph state in Table Storage, tenant-first:
 * - GraphMailboxes: PK `<tenant>:<integration>`, RK mailbox address → user id, subscription, delta link;
 * - Subscriptions: PK tenant, RK Graph subscription id → mailbox, expiry, SHA-256 of the clientState;
 * - Conversations: PK tenant, RK conversation id → the ticket request it started, last message seen;
 * - AccountIndex: PK `msgraph:<Entra tenant>`, RK `<tenant>:<integration>`: a notification names only
 *   its Entra tenant and subscription, so this is where a delivery finds the tenants to look in.
 */

type Cells = Record<string, string | number | boolean | Date | null | undefined>;

export const mailboxRowSchema = z.object({
  address: z.string(),
  userId: z.string(),
  entraTenantId: z.string(),
  status: z.enum(['pending', 'active', 'error']),
  subscriptionId: z.string().optional(),
  subscriptionExpiresAt: z.string().optional(),
  deltaLink: z.string().optional(),
  lastDeltaAt: z.string().optional(),
  watchedSince: z.string(),
  lastError: z.string().optional(),
  createdAt: z.string(),
  updatedAt: z.string(),
});
export type MailboxRow = z.infer<typeof mailboxRowSchema>;
export interface Mailbox extends MailboxRow {
  tenantId: TenantId;
  integrationId: IntegrationId;
  etag: string;
}

export const subscriptionRowSchema = z.object({
  integrationId: z.string(),
  mailbox: z.string(),
  entraTenantId: z.string(),
  resource: z.string(),
  expiresAt: z.string(),
  /** Hex SHA-256 of the clientState; the value itself is in the secret store. */
  clientStateHash: z.string().regex(/^[0-9a-f]{64}$/),
  clientStateSecret: z.string(),
  createdAt: z.string(),
});
export type SubscriptionRow = z.infer<typeof subscriptionRowSchema>;
export interface Subscription extends SubscriptionRow {
  tenantId: TenantId;
  subscriptionId: string;
}

export const conversationRowSchema = z.object({
  integrationId: z.string(),
  mailbox: z.string(),
  /** Id of the `ticket.create_requested` event this conversation started; comments point at it. */
  ticketRef: z.string(),
  /** The engine's ticket id, once it told us (on a reply). */
  ticketId: z.string().optional(),
  /** Idempotency key of the message that created the row (a retry of that message is still the creator). */
  firstMessageKey: z.string(),
  /**
   * Lower-case address of who asked for the ticket (the sender of the first message): the engine's
   * replies go to them, not to whoever wrote last in the conversation. Rows written before this field
   * existed find it through `firstMessageKey` in the thread.
   */
  requester: z.string().optional(),
  subject: z.string().optional(),
  lastMessageId: z.string().optional(),
  lastMessageAt: z.string().optional(),
  createdAt: z.string(),
});
export type ConversationRow = z.infer<typeof conversationRowSchema>;

const normaliseAddress = (a: string) => a.trim().toLowerCase();

export class MailboxRepository {
  constructor(private readonly table: TenantTable<Cells>) {}

  async get(tenant: TenantId, integration: IntegrationId, address: string): Promise<Mailbox | undefined> {
    const row = await this.table.get(partitionKey.integration(tenant, integration), escapeKeyPart(normaliseAddress(address)));
    return row ? this.#toMailbox(tenant, integration, row) : undefined;
  }

  async list(tenant: TenantId, integration: IntegrationId): Promise<Mailbox[]> {
    const out: Mailbox[] = [];
    for await (const row of this.table.all(partitionKey.integration(tenant, integration))) {
      const m = this.#toMailbox(tenant, integration, row);
      if (m) out.push(m);
    }
    return out;
  }

  /**
   * Every watched mailbox of every tenant, for the maintenance timer only: it is the one caller that
   * must see across tenants. Each row carries its tenant and integration, and all work after this uses
   * those. Tenant ids start with a letter or digit, so '0' ≤ PK < '{' spans them all.
   */
  async *allTenants(): AsyncGenerator<Mailbox> {
    for await (const row of this.table.range({ from: '0', to: '{' })) {
      const [t, i] = (row.partitionKey as string).split(':');
      if (!t || !i) continue;
      let tenant: TenantId;
      let integration: IntegrationId;
      try {
        tenant = toTenantId(t);
        integration = toIntegrationId(i);
      } catch {
        continue;
      }
      const m = this.#toMailbox(tenant, integration, row);
      if (m) yield m;
    }
  }

  async upsert(tenant: TenantId, integration: IntegrationId, address: string, data: Partial<MailboxRow>): Promise<void> {
    await this.table.upsert(partitionKey.integration(tenant, integration), escapeKeyPart(normaliseAddress(address)), { ...data, updatedAt: new Date().toISOString() });
  }

  /** Removes fields (Table Storage merge cannot unset): rewrites the row without them. */
  async replace(tenant: TenantId, integration: IntegrationId, row: MailboxRow): Promise<void> {
    await this.table.upsert(partitionKey.integration(tenant, integration), escapeKeyPart(normaliseAddress(row.address)), { ...row, updatedAt: new Date().toISOString() }, 'Replace');
  }

  async delete(tenant: TenantId, integration: IntegrationId, address: string): Promise<void> {
    await this.table.delete(partitionKey.integration(tenant, integration), escapeKeyPart(normaliseAddress(address)));
  }

  #toMailbox(tenant: TenantId, integration: IntegrationId, row: Row<Cells>): Mailbox | undefined {
    const parsed = mailboxRowSchema.safeParse(row.data);
    if (!parsed.success) return undefined;
    return { ...parsed.data, tenantId: tenant, integrationId: integration, etag: row.etag };
  }
}

export class SubscriptionRepository {
  constructor(private readonly table: TenantTable<Cells>) {}

  async get(tenant: TenantId, subscriptionId: string): Promise<Subscription | undefined> {
    const row = await this.table.get(partitionKey.tenant(tenant), escapeKeyPart(subscriptionId));
    if (!row) return undefined;
    const parsed = subscriptionRowSchema.safeParse(row.data);
    return parsed.success ? { ...parsed.data, tenantId: tenant, subscriptionId } : undefined;
  }

  async put(tenant: TenantId, subscriptionId: string, row: SubscriptionRow): Promise<void> {
    await this.table.upsert(partitionKey.tenant(tenant), escapeKeyPart(subscriptionId), subscriptionRowSchema.parse(row), 'Replace');
  }

  async setExpiry(tenant: TenantId, subscriptionId: string, expiresAt: string): Promise<void> {
    await this.table.upsert(partitionKey.tenant(tenant), escapeKeyPart(subscriptionId), { expiresAt });
  }

  async delete(tenant: TenantId, subscriptionId: string): Promise<void> {
    await this.table.delete(partitionKey.tenant(tenant), escapeKeyPart(subscriptionId));
  }
}

export class ConversationRepository {
  constructor(private readonly table: TenantTable<Cells>) {}

  async get(tenant: TenantId, conversationId: string): Promise<ConversationRow | undefined> {
    const row = await this.table.get(partitionKey.tenant(tenant), escapeKeyPart(conversationId));
    if (!row) return undefined;
    const parsed = conversationRowSchema.safeParse(row.data);
    return parsed.success ? parsed.data : undefined;
  }

  /** Inserts the row; `false` if the conversation already had one (someone else started it). */
  async tryCreate(tenant: TenantId, conversationId: string, row: ConversationRow): Promise<boolean> {
    try {
      await this.table.create(partitionKey.tenant(tenant), escapeKeyPart(conversationId), conversationRowSchema.parse(row));
      return true;
    } catch (err) {
      if (err instanceof ConflictError) return false;
      throw err;
    }
  }

  async touch(tenant: TenantId, conversationId: string, patch: Partial<ConversationRow>): Promise<void> {
    await this.table.upsert(partitionKey.tenant(tenant), escapeKeyPart(conversationId), patch);
  }
}

export interface AccountLink {
  tenantId: TenantId;
  integrationId: IntegrationId;
}

/** Entra tenant → our integrations, kept per instance: notification floods name the same few tenants. */
export const LINKS_TTL_MS = 15_000;

/** A per-instance cache of `AccountIndex.lookup`, negative answers included. */
export class EntraLinkCache {
  readonly #entries = new Map<string, { at: number; links: Promise<AccountLink[]> }>();
  constructor(private readonly now: () => number = Date.now) {}

  /** Forgets a tenant (this instance linked or unlinked it). */
  forget(entra: string): void {
    this.#entries.delete(entra.toLowerCase());
  }

  /** Concurrent callers for the same tenant share one read. `read` is only called on a miss. */
  get(entra: string, read: () => Promise<AccountLink[]>): { links: Promise<AccountLink[]>; miss: boolean } {
    const hit = this.#entries.get(entra);
    if (hit && this.now() - hit.at < LINKS_TTL_MS) return { links: hit.links, miss: false };
    const links = read();
    this.#entries.set(entra, { at: this.now(), links });
    // A failed read is not remembered.
    links.catch(() => this.#entries.delete(entra));
    if (this.#entries.size > 10_000) this.#entries.delete(this.#entries.keys().next().value as string);
    return { links, miss: true };
  }
}

export class AccountIndex {
  /** For the notification router (`lookup` itself always reads). */
  readonly cache = new EntraLinkCache();

  constructor(private readonly table: TenantTable<Cells>) {}

  async link(entraTenantId: string, tenant: TenantId, integration: IntegrationId): Promise<void> {
    await this.table.upsert(partitionKey.accountIndex('msgraph', entraTenantId.toLowerCase()), escapeKeyPart(`${tenant}:${integration}`), {
      tenantId: tenant,
      integrationId: integration,
      linkedAt: new Date().toISOString(),
    });
    this.cache.forget(entraTenantId);
  }

  async unlink(entraTenantId: string, tenant: TenantId, integration: IntegrationId): Promise<void> {
    await this.table.delete(partitionKey.accountIndex('msgraph', entraTenantId.toLowerCase()), escapeKeyPart(`${tenant}:${integration}`));
    this.cache.forget(entraTenantId);
  }

  async lookup(entraTenantId: string): Promise<AccountLink[]> {
    const out: AccountLink[] = [];
    for await (const row of this.table.all(partitionKey.accountIndex('msgraph', entraTenantId.toLowerCase()))) {
      const [t, i] = unescapeKeyPart(row.rowKey).split(':');
      try {
        out.push({ tenantId: toTenantId(t ?? ''), integrationId: toIntegrationId(i ?? '') });
      } catch {
        // not one of ours
      }
    }
    return out;
  }
}
