import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Client } from '@microsoft/microsoft-graph-client';
import { z } from 'zod';
import { tenantSecretName, type SecretStore } from '../../secrets';
import type { IntegrationId, TenantId } from '../../storage';
import { graphStatus, isNotFound } from './errors';
import { pathSegment } from './messages';
import type { Subscription, SubscriptionRepository } from './store';

/** Outlook's documented maximum for message subscriptions without resource data. */
export const DOCUMENTED_MAX_MINUTES = 4230;

const subscriptionResponseSchema = z.object({ id: z.string().min(1), expirationDateTime: z.string() }).loose();

export interface SubscriptionTarget {
  tenant: TenantId;
  integration: IntegrationId;
  entraTenantId: string;
  mailbox: string;
  userId: string;
}

export interface SubscriptionServiceOptions {
  secrets: SecretStore;
  repo: SubscriptionRepository;
  publicBaseUrl: string;
  lifetimeMinutes: number;
  now?: () => number;
}

export function clientStateHash(clientState: string): string {
  return createHash('sha256').update(clientState, 'utf8').digest('hex');
}

/** Compares the SHA-256 of what arrived with the stored hash in constant time. */
export function clientStateMatches(received: string | null | undefined, storedHash: string): boolean {
  if (typeof received !== 'string' || received.length === 0 || received.length > 256) return false;
  const a = Buffer.from(clientStateHash(received), 'hex');
  const b = Buffer.from(storedHash, 'hex');
  return a.length === b.length && timingSafeEqual(a, b);
}

/**
 * Graph subscriptions on a mailbox's inbox: created with a fresh random `clientState` (kept in the
 * secret store, only its hash in the Subscriptions table), immutable ids, and a lifecycle URL;
 * renewed, reauthorized and removed. Graph validates both URLs with a POST before it answers the
 * create, so the app must be reachable at `publicBaseUrl` while this runs.
 */
export class SubscriptionService {
  readonly #now: () => number;
  /** The longest lifetime Graph accepted in this process; starts at what is configured. */
  #lifetimeMinutes: number;

  constructor(private readonly opts: SubscriptionServiceOptions) {
    this.#now = opts.now ?? Date.now;
    this.#lifetimeMinutes = opts.lifetimeMinutes;
  }

  get notificationUrl(): string {
    return `${this.opts.publicBaseUrl}/api/webhooks/graph`;
  }

  get lifecycleNotificationUrl(): string {
    return `${this.opts.publicBaseUrl}/api/webhooks/graph/lifecycle`;
  }

  get lifetimeMinutes(): number {
    return this.#lifetimeMinutes;
  }

  resourceFor(userId: string): string {
    return `users/${userId}/mailFolders('inbox')/messages`;
  }

  async create(client: Client, target: SubscriptionTarget): Promise<Subscription> {
    const clientState = randomBytes(32).toString('base64url');
    const secretName = tenantSecretName(target.tenant, target.integration, `gsub-${randomBytes(12).toString('hex')}`);
    await this.opts.secrets.set(secretName, clientState, { contentType: 'text/plain' });
    const resource = this.resourceFor(target.userId);
    try {
      const created = await this.#withLifetimeFallback((minutes) =>
        client.api('/subscriptions').post({
          changeType: 'created',
          notificationUrl: this.notificationUrl,
          lifecycleNotificationUrl: this.lifecycleNotificationUrl,
          resource,
          expirationDateTime: this.#expiry(minutes),
          clientState,
          latestSupportedTlsVersion: 'v1_2',
        }),
      );
      const body = subscriptionResponseSchema.parse(created);
      const row = {
        integrationId: target.integration,
        mailbox: target.mailbox.toLowerCase(),
        entraTenantId: target.entraTenantId,
        resource,
        expiresAt: body.expirationDateTime,
        clientStateHash: clientStateHash(clientState),
        clientStateSecret: secretName,
        createdAt: new Date(this.#now()).toISOString(),
      };
      await this.opts.repo.put(target.tenant, body.id, row);
      return { ...row, tenantId: target.tenant, subscriptionId: body.id };
    } catch (err) {
      await this.opts.secrets.delete(secretName).catch(() => undefined);
      throw err;
    }
  }

  /** Extends the expiry; renewing also reauthorizes. Throws the Graph 404 when the subscription is gone. */
  async renew(client: Client, sub: Subscription): Promise<string> {
    const res = await this.#withLifetimeFallback((minutes) => client.api(`/subscriptions/${pathSegment(sub.subscriptionId)}`).patch({ expirationDateTime: this.#expiry(minutes) }));
    const body = subscriptionResponseSchema.parse(res);
    await this.opts.repo.setExpiry(sub.tenantId, sub.subscriptionId, body.expirationDateTime);
    return body.expirationDateTime;
  }

  async reauthorize(client: Client, sub: Subscription): Promise<void> {
    await client.api(`/subscriptions/${pathSegment(sub.subscriptionId)}/reauthorize`).post({});
  }

  /** True when Graph still has it. */
  async exists(client: Client, subscriptionId: string): Promise<boolean> {
    try {
      await client.api(`/subscriptions/${pathSegment(subscriptionId)}`).get();
      return true;
    } catch (err) {
      if (isNotFound(err)) return false;
      throw err;
    }
  }

  /** Deletes at Graph (a missing one is fine), then our row and its secret. */
  async remove(client: Client | undefined, sub: Subscription): Promise<void> {
    if (client) {
      try {
        await client.api(`/subscriptions/${pathSegment(sub.subscriptionId)}`).delete();
      } catch (err) {
        if (!isNotFound(err)) throw err;
      }
    }
    await this.forget(sub);
  }

  /** Drops our record of a subscription Graph no longer has. */
  async forget(sub: Subscription): Promise<void> {
    await this.opts.repo.delete(sub.tenantId, sub.subscriptionId);
    await this.opts.secrets.delete(sub.clientStateSecret).catch(() => undefined);
  }

  async verify(tenant: TenantId, subscriptionId: string, clientState: string | null | undefined): Promise<Subscription | undefined> {
    const sub = await this.opts.repo.get(tenant, subscriptionId);
    if (!sub) return undefined;
    return clientStateMatches(clientState, sub.clientStateHash) ? sub : undefined;
  }

  #expiry(minutes: number): string {
    return new Date(this.#now() + minutes * 60_000).toISOString();
  }

  /**
   * Asks for the configured lifetime; when Graph answers "expiration can only be N minutes in the
   * future", asks again with N (or the documented 4230) and remembers it for this process.
   */
  async #withLifetimeFallback<T>(call: (minutes: number) => Promise<T>): Promise<T> {
    try {
      return await call(this.#lifetimeMinutes);
    } catch (err) {
      const message = err instanceof Error ? err.message : '';
      const m = /expiration can only be (\d+) minutes/i.exec(message);
      if (graphStatus(err) !== 400 || !m) throw err;
      const allowed = Math.min(Number(m[1]) || DOCUMENTED_MAX_MINUTES, DOCUMENTED_MAX_MINUTES);
      if (allowed >= this.#lifetimeMinutes) throw err;
      this.#lifetimeMinutes = Math.max(45, allowed - 1);
      return call(this.#lifetimeMinutes);
    }
  }
}
