import { randomUUID } from 'node:crypto';
import type { Client } from '@microsoft/microsoft-graph-client';
import { AppError, ConflictError, NotFoundError } from '../../platform/errors';
import type { Logger } from '../../platform/logging';
import { partitionKey, QUEUES, type Integration, type IntegrationId, type TenantId } from '../../storage';
import { inboxDelta } from './delta';
import { isNotFound, toAppError } from './errors';
import { requireGraphIntegration } from './onboarding';
import type { GraphServices } from './services';
import type { Mailbox, MailboxRow, Subscription } from './store';
import { getUser } from './users';
import type { GraphWorkItemInput } from './workItems';

/** A tenant watches a handful of support mailboxes, not its whole organisation. */
export const MAX_MAILBOXES_PER_INTEGRATION = 50;
const DELTA_LEASE_MS = 5 * 60_000;
/** After an expired delta link, look back this far before the last successful run. */
const RESYNC_OVERLAP_MS = 60 * 60_000;

export interface ActiveGraphIntegration extends Integration {
  externalAccountId: string;
}

export async function requireActiveIntegration(gs: GraphServices, tenant: TenantId, integration: IntegrationId): Promise<ActiveGraphIntegration> {
  const found = await requireGraphIntegration(gs, tenant, integration);
  if (found.status !== 'active' || !found.externalAccountId) {
    throw new AppError({ status: 409, code: 'integration-not-active', title: 'The integration is not connected', detail: `The Microsoft Graph integration is ${found.status}; complete admin consent first.` });
  }
  return found as ActiveGraphIntegration;
}

/** Renew when less than this is left: half the lifetime, at most a day. */
function renewThresholdMs(lifetimeMinutes: number): number {
  return Math.min(24 * 3600_000, (lifetimeMinutes * 60_000) / 2);
}

/**
 * Makes sure the mailbox has a live subscription: renews one that expires soon, recreates one Graph
 * no longer has (expired, removed), creates one when there is none.
 */
export async function ensureSubscription(gs: GraphServices, client: Client, mailbox: Mailbox, log: Logger): Promise<{ subscription: Subscription; action: 'kept' | 'renewed' | 'created' }> {
  const existing = mailbox.subscriptionId ? await gs.subscriptionsRepo.get(mailbox.tenantId, mailbox.subscriptionId) : undefined;
  if (existing) {
    if (await gs.subscriptions.exists(client, existing.subscriptionId)) {
      const left = Date.parse(existing.expiresAt) - Date.now();
      if (left > renewThresholdMs(gs.subscriptions.lifetimeMinutes)) return { subscription: existing, action: 'kept' };
      try {
        const expiresAt = await gs.subscriptions.renew(client, existing);
        await gs.mailboxes.upsert(mailbox.tenantId, mailbox.integrationId, mailbox.address, { subscriptionExpiresAt: expiresAt, status: 'active' });
        log.info('graph subscription renewed', { mailbox: mailbox.address, subscriptionId: existing.subscriptionId, expiresAt });
        return { subscription: { ...existing, expiresAt }, action: 'renewed' };
      } catch (err) {
        if (!isNotFound(err)) throw err;
      }
    }
    log.warn('graph subscription gone; recreating', { mailbox: mailbox.address, subscriptionId: existing.subscriptionId });
    await gs.subscriptions.forget(existing);
  }
  const created = await gs.subscriptions.create(client, {
    tenant: mailbox.tenantId,
    integration: mailbox.integrationId,
    entraTenantId: mailbox.entraTenantId,
    mailbox: mailbox.address,
    userId: mailbox.userId,
  });
  await gs.mailboxes.upsert(mailbox.tenantId, mailbox.integrationId, mailbox.address, { subscriptionId: created.subscriptionId, subscriptionExpiresAt: created.expiresAt, status: 'active', lastError: '' });
  log.info('graph subscription created', { mailbox: mailbox.address, subscriptionId: created.subscriptionId, expiresAt: created.expiresAt });
  return { subscription: created, action: 'created' };
}

export class MailboxBusyError extends AppError {
  constructor() {
    super({ status: 503, code: 'mailbox-sync-busy', title: 'A sync of this mailbox is running', detail: 'Another instance is running the delta sync of this mailbox; try again shortly.', headers: { 'Retry-After': '10' } });
  }
}

/**
 * Runs the inbox delta under a per-mailbox lease, queues every new message for the worker (which
 * de-duplicates), then stores the link. Queue first, link second: a crash in between replays, never skips.
 */
export async function syncMailbox(gs: GraphServices, client: Client, mailbox: Mailbox, log: Logger): Promise<{ queued: number; restarted: boolean }> {
  const { leases, queues } = gs.services;
  const lease = await leases.tryAcquire(partitionKey.integration(mailbox.tenantId, mailbox.integrationId), `graph-delta:${mailbox.address}`, DELTA_LEASE_MS, randomUUID());
  if (!lease) throw new MailboxBusyError();
  try {
    const fresh = (await gs.mailboxes.get(mailbox.tenantId, mailbox.integrationId, mailbox.address)) ?? mailbox;
    const sinceMs = Math.max(Date.parse(fresh.watchedSince), fresh.lastDeltaAt ? Date.parse(fresh.lastDeltaAt) - RESYNC_OVERLAP_MS : 0);
    const startedAt = new Date().toISOString();
    const res = await inboxDelta(client, { userId: fresh.userId, link: fresh.deltaLink, since: new Date(sinceMs) });
    for (const id of res.messageIds) {
      const item: GraphWorkItemInput = { kind: 'message', tenantId: fresh.tenantId, integrationId: fresh.integrationId, mailbox: fresh.address, messageId: id, via: 'delta' };
      await queues.send(QUEUES.graphNotifications, item);
    }
    await gs.mailboxes.upsert(fresh.tenantId, fresh.integrationId, fresh.address, { deltaLink: res.link, lastDeltaAt: startedAt });
    if (res.restarted) log.warn('graph delta link expired; resynced from a time window', { mailbox: fresh.address, since: new Date(sinceMs).toISOString() });
    log.info('graph delta ran', { mailbox: fresh.address, queued: res.messageIds.length, complete: res.complete });
    return { queued: res.messageIds.length, restarted: res.restarted };
  } finally {
    await leases.release(lease).catch(() => undefined);
  }
}

/**
 * Starts watching a support mailbox: checks it exists in the customer's tenant, records it, creates its
 * subscription (Graph validates our endpoint while this waits) and takes the delta baseline. Watching
 * an already watched mailbox returns it unchanged.
 */
export async function watchMailbox(gs: GraphServices, tenant: TenantId, integrationId: IntegrationId, address: string, log: Logger): Promise<{ mailbox: Mailbox; created: boolean }> {
  const integration = await requireActiveIntegration(gs, tenant, integrationId);
  const normalised = address.trim().toLowerCase();
  const existing = await gs.mailboxes.get(tenant, integrationId, normalised);
  if (existing?.status === 'active' && existing.subscriptionId) return { mailbox: existing, created: false };
  if (!existing && (await gs.mailboxes.list(tenant, integrationId)).length >= MAX_MAILBOXES_PER_INTEGRATION) {
    throw new ConflictError(`An integration watches at most ${MAX_MAILBOXES_PER_INTEGRATION} mailboxes.`);
  }
  const client = gs.client(integration.externalAccountId);
  let user;
  try {
    user = await getUser(client, normalised);
  } catch (err) {
    throw toAppError(err, 'looking up the mailbox');
  }
  if (!user) throw new NotFoundError('No such mailbox in the connected Microsoft 365 organisation.');

  const now = new Date().toISOString();
  const row: MailboxRow = {
    address: normalised,
    userId: user.id,
    entraTenantId: integration.externalAccountId,
    status: 'pending',
    watchedSince: existing?.watchedSince ?? now,
    createdAt: existing?.createdAt ?? now,
    updatedAt: now,
    ...(existing?.subscriptionId ? { subscriptionId: existing.subscriptionId } : {}),
    ...(existing?.deltaLink ? { deltaLink: existing.deltaLink } : {}),
    ...(existing?.lastDeltaAt ? { lastDeltaAt: existing.lastDeltaAt } : {}),
  };
  await gs.mailboxes.replace(tenant, integrationId, row);
  const mailbox = (await gs.mailboxes.get(tenant, integrationId, normalised)) as Mailbox;
  try {
    await ensureSubscription(gs, client, mailbox, log);
  } catch (err) {
    await gs.mailboxes.upsert(tenant, integrationId, normalised, { status: 'error', lastError: 'could not create the Graph subscription' });
    log.error('graph subscription could not be created', { mailbox: normalised, error: toAppError(err, 'creating the subscription') });
    throw toAppError(err, 'creating the subscription');
  }
  try {
    await syncMailbox(gs, client, (await gs.mailboxes.get(tenant, integrationId, normalised)) as Mailbox, log);
  } catch (err) {
    // The timer's delta run takes the baseline later; the watch itself stands.
    log.warn('graph delta baseline failed; the timer will retry', { mailbox: normalised, error: toAppError(err, 'the delta baseline') });
  }
  return { mailbox: (await gs.mailboxes.get(tenant, integrationId, normalised)) as Mailbox, created: !existing };
}

export async function unwatchMailbox(gs: GraphServices, tenant: TenantId, integrationId: IntegrationId, address: string, log: Logger): Promise<void> {
  const integration = await requireGraphIntegration(gs, tenant, integrationId);
  const mailbox = await gs.mailboxes.get(tenant, integrationId, address);
  if (!mailbox) throw new NotFoundError('This mailbox is not watched.');
  if (mailbox.subscriptionId) {
    const sub = await gs.subscriptionsRepo.get(tenant, mailbox.subscriptionId);
    const client = integration.status === 'active' && integration.externalAccountId && gs.factory ? gs.client(integration.externalAccountId) : undefined;
    if (sub) {
      try {
        await gs.subscriptions.remove(client, sub);
      } catch (err) {
        throw toAppError(err, 'deleting the subscription');
      }
    }
  }
  await gs.mailboxes.delete(tenant, integrationId, mailbox.address);
  log.info('graph mailbox unwatched', { mailbox: mailbox.address });
}

export function mailboxView(m: Mailbox): Record<string, unknown> {
  return {
    address: m.address,
    status: m.status,
    subscription_id: m.subscriptionId ?? null,
    subscription_expires_at: m.subscriptionExpiresAt ?? null,
    watched_since: m.watchedSince,
    last_delta_at: m.lastDeltaAt ?? null,
    last_error: m.lastError || null,
  };
}
