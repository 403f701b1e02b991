import { PreconditionFailedError } from '../../platform/errors';
import type { Integration, IntegrationId, IntegrationRow, IntegrationsRepository, TenantId } from '../../storage';

type Patch = Partial<Omit<IntegrationRow, 'createdAt' | 'type'>>;

/**
 * Read-modify-write of an Integrations row under its ETag, retried on a lost race. `patch` sees the
 * current row and may return undefined to leave it alone (say, it is already disconnected).
 */
export async function updateIntegration(
  repo: IntegrationsRepository,
  tenant: TenantId,
  id: IntegrationId,
  patch: (current: Integration) => Patch | undefined,
): Promise<Integration | undefined> {
  for (let attempt = 0; attempt < 8; attempt++) {
    const current = await repo.get(tenant, id);
    if (!current) return undefined;
    const change = patch(current);
    if (!change) return current;
    try {
      const etag = await repo.update(tenant, id, change, current.etag);
      return { ...current, ...change, etag };
    } catch (err) {
      if (err instanceof PreconditionFailedError) continue;
      throw err;
    }
  }
  throw new PreconditionFailedError('the integration kept changing while it was being updated');
}

/** `needs_reauth` at once on a dead grant; a disconnected integration stays disconnected. */
export async function markNeedsReauth(repo: IntegrationsRepository, tenant: TenantId, id: IntegrationId, reason: string): Promise<void> {
  const now = new Date().toISOString();
  await updateIntegration(repo, tenant, id, (current) =>
    current.status === 'disconnected' || current.status === 'needs_reauth'
      ? undefined
      : { status: 'needs_reauth', lastError: reason.slice(0, 500), lastRefreshFailure: now },
  );
}
