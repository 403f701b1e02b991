import { z } from 'zod';
import { integrationIdSchema, tenantIdSchema } from '../../storage';

const base = {
  tenantId: tenantIdSchema,
  integrationId: integrationIdSchema,
  /** The watched mailbox (lower-cased address), as the Subscriptions / GraphMailboxes rows name it. */
  mailbox: z.string().min(3).max(320),
};

/** Ids per `messages` work item; the router also keeps each under the queue's 64 KiB. */
export const MAX_MESSAGES_PER_ITEM = 100;

export const LIFECYCLE_EVENTS = ['reauthorizationRequired', 'subscriptionRemoved', 'missed'] as const;
export type LifecycleEvent = (typeof LIFECYCLE_EVENTS)[number];

/**
 * Messages on `graph-notifications`. Ids only: the worker reads the mail from Graph itself, so a
 * message never carries mail content or a secret.
 * - `message`: a new mail (from a change notification or a delta run) to turn into an event;
 * - `lifecycle`: a verified lifecycle notification to act on;
 * - `maintain`: the timer's per-mailbox job: renew or recreate the subscription, run the delta backstop;
 * - `messages`: several `message`s of one mailbox, as the notification router groups a delivery.
 */
export const graphWorkItemSchema = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('message'), ...base, messageId: z.string().min(1).max(1024), via: z.enum(['notification', 'delta']), subscriptionId: z.string().max(128).optional() }),
  z.object({ kind: z.literal('lifecycle'), ...base, subscriptionId: z.string().min(1).max(128), event: z.enum(LIFECYCLE_EVENTS) }),
  z.object({ kind: z.literal('maintain'), ...base }),
  /** New mails of one mailbox from one notification delivery: `message` for each, in one queue message. */
  z.object({ kind: z.literal('messages'), ...base, messageIds: z.array(z.string().min(1).max(1024)).min(1).max(MAX_MESSAGES_PER_ITEM), via: z.literal('notification'), subscriptionId: z.string().max(128).optional() }),
]);
export type GraphWorkItem = z.infer<typeof graphWorkItemSchema>;
export type GraphWorkItemInput = z.input<typeof graphWorkItemSchema>;
