import { randomUUID } from 'node:crypto';
import { z } from 'zod';
import { type IntegrationId, type TenantId, partitionKey, integrationId as toIntegrationId } from '../keys';
import type { TenantTable } from '../tenantTable';

export const INTEGRATION_TYPES = ['hubspot', 'msgraph', 'teams', 'jira'] as const;
export type IntegrationType = (typeof INTEGRATION_TYPES)[number];

export const INTEGRATION_STATUSES = ['pending', 'active', 'needs_reauth', 'error', 'disconnected'] as const;
export type IntegrationStatus = (typeof INTEGRATION_STATUSES)[number];

/** What an Integrations row holds (PartitionKey = tenantId, RowKey = integrationId). */
export const integrationRowSchema = z.object({
  type: z.enum(INTEGRATION_TYPES),
  status: z.enum(INTEGRATION_STATUSES),
  externalAccountId: z.string().optional(),
  externalAccountName: z.string().optional(),
  scopes: z.string().optional(),
  secretName: z.string().optional(),
  createdAt: z.string(),
  updatedAt: z.string(),
  lastSyncAt: z.string().optional(),
  lastError: z.string().optional(),
  credentialsExpiresAt: z.string().optional(),
  lastRefreshSuccess: z.string().optional(),
  lastRefreshFailure: z.string().optional(),
  refreshAttempts: z.number().int().optional(),
});
export type IntegrationRow = z.infer<typeof integrationRowSchema>;

export interface Integration extends IntegrationRow {
  tenantId: TenantId;
  integrationId: IntegrationId;
  etag: string;
}

type Stored = IntegrationRow & Record<string, string | number | boolean | Date | null | undefined>;

/** Integrations of a tenant. Every method takes the tenant first: there is no cross-tenant read here. */
export class IntegrationsRepository {
  constructor(private readonly table: TenantTable<Stored>) {}

  async create(tenant: TenantId, init: Omit<IntegrationRow, 'createdAt' | 'updatedAt'> & { integrationId?: IntegrationId }): Promise<Integration> {
    const id = init.integrationId ?? toIntegrationId(randomUUID());
    const now = new Date().toISOString();
    const { integrationId: _ignored, ...rest } = init;
    const row = integrationRowSchema.parse({ ...rest, createdAt: now, updatedAt: now });
    const etag = await this.table.create(partitionKey.tenant(tenant), id, row as Stored);
    return { ...row, tenantId: tenant, integrationId: id, etag };
  }

  async get(tenant: TenantId, id: IntegrationId): Promise<Integration | undefined> {
    const row = await this.table.get(partitionKey.tenant(tenant), id);
    if (!row) return undefined;
    return { ...integrationRowSchema.parse(row.data), tenantId: tenant, integrationId: id, etag: row.etag };
  }

  async list(tenant: TenantId, filter?: { type?: IntegrationType }): Promise<Integration[]> {
    const out: Integration[] = [];
    for await (const row of this.table.all(partitionKey.tenant(tenant))) {
      const parsed = integrationRowSchema.safeParse(row.data);
      if (!parsed.success) continue;
      if (filter?.type && parsed.data.type !== filter.type) continue;
      out.push({ ...parsed.data, tenantId: tenant, integrationId: row.rowKey as IntegrationId, etag: row.etag });
    }
    return out;
  }

  /** Merges `patch` if the row is unchanged since `etag` was read; a lost race throws PreconditionFailedError. */
  async update(tenant: TenantId, id: IntegrationId, patch: Partial<Omit<IntegrationRow, 'createdAt' | 'type'>>, etag: string): Promise<string> {
    return this.table.update(partitionKey.tenant(tenant), id, { ...patch, updatedAt: new Date().toISOString() } as Partial<Stored>, etag);
  }
}
