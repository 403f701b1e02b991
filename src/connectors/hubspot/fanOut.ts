import { faultPoint } from '../../platform/faultPoints';
import type { Logger } from '../../platform/logging';
import { QUEUES, splitIntoMessages, type ProcessedStore, type QueueSender } from '../../storage';
import type { AccountIndex, PortalLink } from './accountIndex';
import { WEBHOOK_CLAIM_SOURCE, WEBHOOK_CLAIM_STALE_MS, webhookClaimId, type HubSpotEventsMessage, type QueuedEvent } from './events';
import type { DeliveryEvent, HubSpotDeliveryMessage } from './intake';

export interface FanOutResult {
  received: number;
  /** Events queued to `hubspot-events`, counted once per integration. */
  queued: number;
  /** Events an integration had already been sent (a redelivery, or the same event in another delivery). */
  duplicates: number;
  /** Events held, unconfirmed, by another delivery's fan-out that may still be at work: sent again later. */
  deferred: number;
  /** Events of portals no integration is connected to. */
  unrouted: number;
  messages: number;
}

export interface FanOutDeps {
  accountIndex: AccountIndex;
  processed: ProcessedStore;
  queues: QueueSender;
  log: Logger;
  /** How long deferred events wait; `DEFER_SECONDS` unless a test wants to read them at once. */
  deferSeconds?: number;
}

/** A deferred part comes back after the claims that held it have been confirmed or gone stale. */
export const DEFER_SECONDS = Math.ceil(WEBHOOK_CLAIM_STALE_MS / 1000) + 5;

/**
 * The `hubspot-webhooks` worker: routes one queued delivery (part) to every integration connected to
 * each portal it names (two tenants may share a portal), minus the events that integration has already
 * been sent, as `hubspot-events` messages (one per integration, more only past 64 KiB).
 *
 * De-duplication is a provisional claim per (integration, event) in that tenant's Processed partition,
 * taken for the whole part in one entity-group transaction (`claimMany`), owned by the delivery. Claims
 * become final (`confirm`) only once their message is queued: if queueing fails they are given back and
 * the error surfaces, so the queue retries the part; if the process dies in between, the retry of this
 * same message owns those claims and takes them over at once, so the fan-out completes exactly once.
 * Events claimed but unconfirmed by ANOTHER delivery (its fan-out may be at work right now) are neither
 * queued nor dropped: they go back on `hubspot-webhooks` with a delay, by when that claim is confirmed
 * (a duplicate then) or stale (taken over). The event worker is idempotent besides, so at worst an event
 * is read twice, never announced twice.
 */
export async function fanOut(deps: FanOutDeps, message: HubSpotDeliveryMessage): Promise<FanOutResult> {
  const result: FanOutResult = { received: message.events.length, queued: 0, duplicates: 0, deferred: 0, unrouted: 0, messages: 0 };
  const byPortal = new Map<string, DeliveryEvent[]>();
  for (const e of message.events) {
    const list = byPortal.get(e.portalId) ?? [];
    list.push(e);
    byPortal.set(e.portalId, list);
  }
  const deferred: DeliveryEvent[] = [];
  for (const [portalId, list] of byPortal) {
    const links = await deps.accountIndex.integrationsOf(portalId);
    if (links.length === 0) {
      result.unrouted += list.length;
      continue;
    }
    const events = list.map(({ portalId: _p, ...e }): QueuedEvent => e);
    const held = new Set<string>();
    await Promise.all(
      links.map(async (link) => {
        const r = await fanOutToIntegration(deps, link, events, message.deliveryId);
        result.queued += r.queued;
        result.duplicates += r.duplicates;
        result.messages += r.messages;
        for (const k of r.held) held.add(k);
      }),
    );
    for (const e of list) if (held.has(e.key)) deferred.push(e);
  }
  if (deferred.length > 0) {
    // Same delivery id: should this part die before its claims, its retry still owns them.
    const delaySeconds = deps.deferSeconds ?? DEFER_SECONDS;
    await deps.queues.sendIntake(QUEUES.hubspotWebhooks, { ...message, events: deferred }, { visibilityTimeoutSeconds: delaySeconds });
    faultPoint('hubspot.fanout.defer');
    result.deferred = deferred.length;
    deps.log.info('HubSpot webhook events deferred: held by another delivery', { events: deferred.length, delaySeconds });
  }
  return result;
}

async function fanOutToIntegration(deps: FanOutDeps, link: PortalLink, events: QueuedEvent[], owner: string): Promise<{ queued: number; duplicates: number; messages: number; held: string[] }> {
  const claimId = (e: QueuedEvent) => webhookClaimId(link.integrationId, e.key);
  const outcome = await deps.processed.claimMany(WEBHOOK_CLAIM_SOURCE, link.tenantId, events.map((e) => ({ id: claimId(e), note: e.eventId })), { staleAfterMs: WEBHOOK_CLAIM_STALE_MS, owner });
  faultPoint('hubspot.fanout.claim');
  const fresh = events.filter((e) => outcome.get(claimId(e)) === 'claimed');
  const held = events.filter((e) => outcome.get(claimId(e)) === 'pending').map((e) => e.key);
  const duplicates = events.length - fresh.length - held.length;
  const messages = splitIntoMessages(QUEUES.hubspotEvents, fresh, (part): HubSpotEventsMessage => ({ tenantId: link.tenantId, integrationId: link.integrationId, portalId: link.portalId, deliveryId: owner, events: part }));
  for (const m of messages) {
    try {
      await deps.queues.send(QUEUES.hubspotEvents, m);
    } catch (err) {
      // Not queued: give back the claims of everything not queued yet, so the retry finds them free.
      const unsent = messages.slice(messages.indexOf(m)).flatMap((x) => x.events.map(claimId));
      await deps.processed.releaseMany(WEBHOOK_CLAIM_SOURCE, link.tenantId, unsent).catch(() => undefined);
      throw err;
    }
    faultPoint('hubspot.fanout.queue');
    // Queued: the claims are final. Should this write fail, the events are queued all the same and the
    // claims only stay provisional (this delivery's retry would queue them again, which is harmless).
    await deps.processed
      .confirm(WEBHOOK_CLAIM_SOURCE, link.tenantId, m.events.map(claimId))
      .catch((err: unknown) => deps.log.warn('could not confirm webhook event claims', { tenantId: link.tenantId, integrationId: link.integrationId, events: m.events.length, error: err }));
    faultPoint('hubspot.fanout.confirm');
  }
  return { queued: fresh.length, duplicates, messages: messages.length, held };
}
