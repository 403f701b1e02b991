import { z } from 'zod';
import { integrationIdSchema, partitionKey, tenantIdSchema, unescapeKeyPart, type IntegrationId, type TenantId, type TenantTable } from '../../storage';

export interface AccountIndexRow extends Record<string, string | number | boolean | Date | null | undefined> {
  tenantId: string;
  integrationId: string;
  connectedAt: string;
}

const rowSchema = z.object({ tenantId: tenantIdSchema, integrationId: integrationIdSchema });

export interface PortalLink {
  tenantId: TenantId;
  integrationId: IntegrationId;
  portalId: string;
}

const TYPE = 'hubspot';

/**
 * Portal → integrations (AccountIndex, PartitionKey `hubspot:<portalId>`, RowKey `<tenant>:<integration>`).
 * Webhooks name only a portal; this is how one delivery reaches every tenant connected to it. Rows are
 * written when an integration is connected and removed when it is disconnected, so the index is also
 * the list of connected HubSpot integrations for the timers.
 */
export class AccountIndex {
  #cache = new Map<string, { at: number; links: PortalLink[] }>();

  constructor(
    private readonly table: TenantTable<AccountIndexRow>,
    /** Webhook bursts hit the same portal; a short cache saves a read per delivery. 0 disables. */
    private readonly cacheMs: number = 15_000,
  ) {}

  async link(portalId: string, tenant: TenantId, integration: IntegrationId): Promise<void> {
    await this.table.upsert(partitionKey.accountIndex(TYPE, portalId), `${tenant}:${integration}`, { tenantId: tenant, integrationId: integration, connectedAt: new Date().toISOString() }, 'Replace');
    this.#cache.delete(portalId);
  }

  async unlink(portalId: string, tenant: TenantId, integration: IntegrationId): Promise<void> {
    await this.table.delete(partitionKey.accountIndex(TYPE, portalId), `${tenant}:${integration}`);
    this.#cache.delete(portalId);
  }

  /** Integrations connected to a portal. Callers re-check each integration's status before acting. */
  async integrationsOf(portalId: string): Promise<PortalLink[]> {
    const cached = this.#cache.get(portalId);
    if (cached && Date.now() - cached.at < this.cacheMs) return cached.links;
    const links: PortalLink[] = [];
    for await (const row of this.table.all(partitionKey.accountIndex(TYPE, portalId))) {
      const parsed = rowSchema.safeParse(row.data);
      if (parsed.success) links.push({ tenantId: parsed.data.tenantId, integrationId: parsed.data.integrationId, portalId });
    }
    if (this.cacheMs > 0) this.#cache.set(portalId, { at: Date.now(), links });
    return links;
  }

  /** Every connected HubSpot integration, portal by portal (timers: daily token refresh, sync schedule). */
  async *all(): AsyncGenerator<PortalLink> {
    const prefix = `${TYPE}:`;
    for await (const row of this.table.range({ from: prefix, to: `${TYPE};` })) {
      const parsed = rowSchema.safeParse(row.data);
      if (!parsed.success) continue;
      const portalId = unescapeKeyPart(row.partitionKey.slice(prefix.length));
      yield { tenantId: parsed.data.tenantId, integrationId: parsed.data.integrationId, portalId };
    }
  }
}
