import { createHash } from 'node:crypto';
import { z } from 'zod';
import { NotFoundError, PreconditionFailedError } from '../../platform/errors';
import { tenantSecretName } from '../../secrets/names';
import type { SecretStore } from '../../secrets/types';
import { integrationId, partitionKey, type IntegrationId, type TenantId } from '../../storage/keys';
import type { IntegrationsRepository, IntegrationStatus } from '../../storage/repositories/integrations';
import type { RowData, TenantTable } from '../../storage/tenantTable';
import { WEBHOOK_KINDS, type ChannelName, type WebhookKind } from './schemas';
import type { WebhookTarget } from './webhookUrl';
import { forgetDeploymentHealth } from './healthCache';

/** The fixed integration id of a tenant's Teams integration: one per tenant, holding all its channels. */
export const TEAMS_INTEGRATION_ID: IntegrationId = integrationId('teams');

export interface ChannelRow extends RowData {
  secretName: string;
  kind: WebhookKind;
  createdAt: string;
  updatedAt: string;
  lastPostAt?: string;
  lastPostOutcome?: 'ok' | 'failed';
  /** Why the last post failed, as we describe it (status and class), never the URL or the response body. */
  lastError?: string;
  failing: boolean;
  consecutiveFailures: number;
}

const channelRowSchema = z.object({
  secretName: z.string(),
  kind: z.enum(WEBHOOK_KINDS),
  createdAt: z.string(),
  updatedAt: z.string(),
  lastPostAt: z.string().optional(),
  lastPostOutcome: z.enum(['ok', 'failed']).optional(),
  lastError: z.string().optional(),
  failing: z.boolean().default(false),
  consecutiveFailures: z.number().int().default(0),
});

export interface Channel {
  name: ChannelName;
  secretName: string;
  kind: WebhookKind;
  createdAt: string;
  updatedAt: string;
  lastPostAt?: string | undefined;
  lastPostOutcome?: 'ok' | 'failed' | undefined;
  lastError?: string | undefined;
  failing: boolean;
  consecutiveFailures: number;
}

export type PostOutcome = { ok: true; at: Date } | { ok: false; at: Date; reason: string; failing: boolean };

/**
 * A tenant's channels: the webhook URL of each lives in the secret store (it is a credential), the row
 * in `TeamsChannels` (PartitionKey tenant, RowKey channel name) keeps only its secret's name and how its
 * last post went. The tenant's `Integrations` row (type `teams`) mirrors the channels' health, so the
 * integrations listing shows a failing channel.
 */
export class ChannelStore {
  constructor(
    private readonly table: TenantTable<ChannelRow>,
    private readonly secrets: SecretStore,
    private readonly integrations: IntegrationsRepository,
    private readonly now: () => Date = () => new Date(),
  ) {}

  /** Hashed, so any channel name fits Key Vault's naming rules and the vault listing does not show team names. */
  static secretName(tenant: TenantId, name: ChannelName): string {
    const digest = createHash('sha256').update(name).digest('hex').slice(0, 24);
    return tenantSecretName(tenant, TEAMS_INTEGRATION_ID, `channel-${digest}`);
  }

  async list(tenant: TenantId): Promise<Channel[]> {
    const out: Channel[] = [];
    for await (const row of this.table.all(partitionKey.tenant(tenant))) {
      const parsed = channelRowSchema.safeParse(row.data);
      if (parsed.success) out.push({ ...parsed.data, name: row.rowKey });
    }
    return out;
  }

  async get(tenant: TenantId, name: ChannelName): Promise<Channel | undefined> {
    const row = await this.table.get(partitionKey.tenant(tenant), name);
    if (!row) return undefined;
    const parsed = channelRowSchema.safeParse(row.data);
    return parsed.success ? { ...parsed.data, name } : undefined;
  }

  /** Secret first, then the row: a row never names a secret that does not exist. A new URL clears the failing flag. */
  async put(tenant: TenantId, name: ChannelName, target: WebhookTarget): Promise<Channel> {
    forgetDeploymentHealth();
    const secretName = ChannelStore.secretName(tenant, name);
    await this.secrets.set(secretName, target.url, { contentType: 'text/uri-list', tags: { kind: 'teams-webhook' } });
    const now = this.now().toISOString();
    const existing = await this.get(tenant, name);
    const row: ChannelRow = {
      secretName,
      kind: target.kind,
      createdAt: existing?.createdAt ?? now,
      updatedAt: now,
      failing: false,
      consecutiveFailures: 0,
    };
    await this.table.upsert(partitionKey.tenant(tenant), name, row, 'Replace');
    return { ...row, name };
  }

  /** Row first, then the secret: once the row is gone nothing posts to the channel. */
  async delete(tenant: TenantId, name: ChannelName): Promise<boolean> {
    forgetDeploymentHealth();
    const existing = await this.get(tenant, name);
    if (!existing) return false;
    await this.table.delete(partitionKey.tenant(tenant), name);
    await this.secrets.delete(existing.secretName);
    return true;
  }

  async webhookUrl(channel: Channel): Promise<string | undefined> {
    return this.secrets.get(channel.secretName);
  }

  /** Records how a post went; a channel deleted meanwhile stays deleted (no upsert). */
  async recordOutcome(tenant: TenantId, name: ChannelName, outcome: PostOutcome): Promise<void> {
    forgetDeploymentHealth();
    const current = await this.get(tenant, name);
    if (!current) return;
    const patch: Partial<ChannelRow> = outcome.ok
      ? { lastPostAt: outcome.at.toISOString(), lastPostOutcome: 'ok', lastError: '', failing: false, consecutiveFailures: 0 }
      : {
          lastPostAt: outcome.at.toISOString(),
          lastPostOutcome: 'failed',
          lastError: outcome.reason,
          failing: current.failing || outcome.failing,
          consecutiveFailures: current.consecutiveFailures + 1,
        };
    try {
      await this.table.update(partitionKey.tenant(tenant), name, patch, '*');
    } catch (err) {
      if (err instanceof NotFoundError) return;
      throw err;
    }
    if (outcome.ok ? current.failing : outcome.failing && !current.failing) await this.syncIntegration(tenant);
  }

  /**
   * Makes the tenant's `teams` integration row agree with its channels: `active`, `error` (naming the
   * failing channels and why) or `disconnected` when none is left. Created on first use.
   */
  async syncIntegration(tenant: TenantId): Promise<void> {
    for (let attempt = 0; attempt < 5; attempt++) {
      const channels = await this.list(tenant);
      const failing = channels.filter((c) => c.failing);
      const status: IntegrationStatus = channels.length === 0 ? 'disconnected' : failing.length > 0 ? 'error' : 'active';
      const lastError = failing.length > 0 ? failing.map((c) => `channel ${c.name} failing: ${c.lastError ?? 'unknown'}`).join('; ').slice(0, 1000) : '';
      const row = await this.integrations.get(tenant, TEAMS_INTEGRATION_ID);
      try {
        if (!row) {
          if (channels.length === 0) return;
          await this.integrations.create(tenant, { integrationId: TEAMS_INTEGRATION_ID, type: 'teams', status, ...(lastError ? { lastError } : {}) });
        } else {
          if (row.status === status && (row.lastError ?? '') === lastError) return;
          await this.integrations.update(tenant, TEAMS_INTEGRATION_ID, { status, lastError }, row.etag);
        }
        return;
      } catch (err) {
        // Another instance changed it between our read and write; read again and recompute.
        if (err instanceof PreconditionFailedError || (err as { status?: number }).status === 409) continue;
        throw err;
      }
    }
  }
}
