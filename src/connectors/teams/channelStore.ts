import { createHash, randomBytes } from 'node:crypto';
import { z } from 'zod';
import { ConflictError, NotFoundError, PreconditionFailedError } from '../../platform/errors';
import { tenantSecretName } from '../../secrets/names';
import type { SecretStore } from '../../secrets/types';
import { integrationId, partitionKey, type IntegrationId, type TenantId } from '../../storage/keys';
import type { IntegrationsRepository, IntegrationStatus } from '../../storage/repositories/integrations';
import type { Row, RowData, TenantTable } from '../../storage/tenantTable';
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
  /** Being removed: no longer used; the row goes once its secrets are deleted. */
  deleting?: boolean;
  /** Secrets of replaced URLs not deleted yet (space-separated names): referenced here until they are. */
  retiredSecrets?: string;
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
  deleting: z.boolean().optional(),
  retiredSecrets: z.string().optional(),
});

type ParsedRow = z.infer<typeof channelRowSchema>;

const names = (list: string | undefined): string[] => (list ?? '').split(' ').filter((n) => n !== '');

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

function toChannel(name: ChannelName, data: ParsedRow): Channel {
  const { deleting: _deleting, retiredSecrets: _retired, ...rest } = data;
  return { ...rest, name };
}

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

  /**
   * Hashed, so any channel name fits Key Vault's naming rules and the vault listing does not show team
   * names. Versioned: every new URL gets a new secret name, and the row says which one is current. Every
   * instance caches secrets by name (Key Vault: 5 min), so a replaced URL can never be served from a cache
   * once the row names its successor, and the next read of the row (each delivery reads it) switches.
   */
  static secretName(tenant: TenantId, name: ChannelName, version: string): string {
    const digest = createHash('sha256').update(name).digest('hex').slice(0, 20);
    return tenantSecretName(tenant, TEAMS_INTEGRATION_ID, `channel-${digest}-${version}`);
  }

  /** The tenant's channels in use; rows left half-removed or with replaced secrets are finished on the way. */
  async list(tenant: TenantId): Promise<Channel[]> {
    const out: Channel[] = [];
    const unfinished: Array<Row<ChannelRow>> = [];
    for await (const row of this.table.all(partitionKey.tenant(tenant))) {
      const parsed = channelRowSchema.safeParse(row.data);
      if (!parsed.success) continue;
      if (parsed.data.deleting || names(parsed.data.retiredSecrets).length > 0) unfinished.push(row);
      if (!parsed.data.deleting) out.push(toChannel(row.rowKey, parsed.data));
    }
    // Retried here rather than on a timer: a failed secret delete stays recorded on its row until one succeeds.
    for (const row of unfinished) await this.#finish(tenant, row).catch(() => undefined);
    return out;
  }

  async get(tenant: TenantId, name: ChannelName): Promise<Channel | undefined> {
    const row = await this.table.get(partitionKey.tenant(tenant), name);
    if (!row) return undefined;
    const parsed = channelRowSchema.safeParse(row.data);
    return parsed.success && !parsed.data.deleting ? toChannel(name, parsed.data) : undefined;
  }

  /**
   * A new secret (a new name) first, then the row names it and keeps the previous ones as retired, then
   * they are deleted. A row never names a secret that does not exist, and every secret is named by a row
   * until it is deleted. A new URL clears the failing flag.
   */
  async put(tenant: TenantId, name: ChannelName, target: WebhookTarget): Promise<Channel> {
    forgetDeploymentHealth();
    const secretName = ChannelStore.secretName(tenant, name, randomBytes(5).toString('hex'));
    await this.secrets.set(secretName, target.url, { contentType: 'text/uri-list', tags: { kind: 'teams-webhook' } });
    const pk = partitionKey.tenant(tenant);
    for (let attempt = 0; ; attempt++) {
      const existing = await this.table.get(pk, name);
      const old = existing ? channelRowSchema.safeParse(existing.data) : undefined;
      const retired = old?.success ? [...new Set([old.data.secretName, ...names(old.data.retiredSecrets)])] : [];
      const now = this.now().toISOString();
      const row: ChannelRow = {
        secretName,
        kind: target.kind,
        createdAt: old?.success && !old.data.deleting ? old.data.createdAt : now,
        updatedAt: now,
        failing: false,
        consecutiveFailures: 0,
        deleting: false,
        retiredSecrets: retired.join(' '),
      };
      try {
        const etag = existing ? await this.table.update(pk, name, row, existing.etag, 'Replace') : await this.table.create(pk, name, row);
        await this.#finish(tenant, { partitionKey: pk, rowKey: name, etag, data: row }).catch(() => undefined);
        return toChannel(name, row);
      } catch (err) {
        if (!(err instanceof PreconditionFailedError || err instanceof ConflictError) || attempt >= 4) {
          // Nothing names the new secret: don't leave it behind.
          await this.secrets.delete(secretName).catch(() => undefined);
          throw err;
        }
      }
    }
  }

  /**
   * Marks the row removed (nothing uses the channel from then on), deletes its secrets, then the row. A
   * failed secret delete throws and leaves the marked row naming the secret; a repeated delete, or any
   * `list`, finishes the job. True when there was such a channel (also one already being removed).
   */
  async delete(tenant: TenantId, name: ChannelName, attempt = 0): Promise<boolean> {
    forgetDeploymentHealth();
    const pk = partitionKey.tenant(tenant);
    const row = await this.table.get(pk, name);
    if (!row || !channelRowSchema.safeParse(row.data).success) return false;
    let marked = row;
    if (row.data.deleting !== true) {
      try {
        const etag = await this.table.update(pk, name, { deleting: true }, row.etag, 'Merge');
        marked = { ...row, etag, data: { ...row.data, deleting: true } };
      } catch (err) {
        // Changed meanwhile (a put, an outcome): read it again and mark that.
        if (err instanceof PreconditionFailedError && attempt < 4) return this.delete(tenant, name, attempt + 1);
        throw err;
      }
    }
    await this.#finish(tenant, marked);
    return true;
  }

  /** Names of every channel row, those being removed included (for "remove all"). */
  async names(tenant: TenantId): Promise<ChannelName[]> {
    const out: ChannelName[] = [];
    for await (const row of this.table.all(partitionKey.tenant(tenant))) out.push(row.rowKey);
    return out;
  }

  /** Deletes what a row no longer uses: its retired secrets, and for a row being removed its secret and itself. */
  async #finish(tenant: TenantId, row: Row<ChannelRow>): Promise<void> {
    const parsed = channelRowSchema.safeParse(row.data);
    if (!parsed.success) return;
    const retired = names(parsed.data.retiredSecrets);
    const doomed = parsed.data.deleting ? [parsed.data.secretName, ...retired] : retired;
    for (const secret of doomed) await this.secrets.delete(secret);
    const pk = partitionKey.tenant(tenant);
    try {
      // Conditional: a put that replaced the row meanwhile keeps it (and has our secrets as its retired ones).
      if (parsed.data.deleting) await this.table.delete(pk, row.rowKey, row.etag);
      else if (retired.length > 0) await this.table.update(pk, row.rowKey, { retiredSecrets: '' }, row.etag, 'Merge');
    } catch (err) {
      if (!(err instanceof PreconditionFailedError || err instanceof NotFoundError)) throw err;
    }
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
